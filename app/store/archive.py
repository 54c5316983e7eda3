"""The local archive of one data home: settings, database, file store and store pipeline."""

from __future__ import annotations

import logging
from pathlib import Path

from app.config import Settings
from app.store.db import open_engine
from app.store.files import FileStore
from app.store.index_writer import IndexWriter
from app.store.ingest import Ingest

log = logging.getLogger(__name__)


class Archive:
    def __init__(self, home: Path, db_url: str | None = None, settings: Settings | None = None):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.settings = settings or Settings.load(home)
        self.engine = open_engine(home, db_url)
        self.files = FileStore(home, self.settings["storage.free_space_floor_mb"])
        if n := self.files.clear_partial():
            log.info("removed %d partial file(s) left by an interrupted write (never acknowledged)", n)
        self.writer = IndexWriter(self.engine, self.settings["node.index_batch"])
        self.ingest = Ingest(self.files, self.writer)

    def reload_settings(self) -> Settings:
        self.settings = Settings.load(self.home)
        self.files.floor = self.settings["storage.free_space_floor_mb"] * 1024 * 1024
        return self.settings

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()
