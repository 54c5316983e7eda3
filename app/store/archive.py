"""The local archive of one data home: settings, database, file store and store pipeline."""

from __future__ import annotations

import logging
from pathlib import Path

from app.config import Settings, make_home
from app.store.db import open_engine
from app.store.files import FileStore
from app.store.index_writer import IndexWriter
from app.store.ingest import Ingest
from app.store.journal import Journal

log = logging.getLogger(__name__)


class Archive:
    def __init__(self, home: Path, db_url: str | None = None, settings: Settings | None = None):
        self.home = home
        make_home(home)
        self.settings = settings or Settings.load(home)
        self.engine = open_engine(home, db_url)
        self.files = FileStore(home, self.settings["storage.free_space_floor_mb"])
        self.journal = Journal(home)
        self.writer = IndexWriter(self.engine, self.files, self.settings["node.index_batch"])
        self.ingest = Ingest(self.files, self.journal, self.writer)
        self.adopt_orphans()
        from app.store.correct import recover
        recover(self)  # a correction an interruption left half-way is completed

    def adopt_orphans(self) -> int:
        """Index what processes that died (kill -9, power cut) acknowledged but left in the
        journal; drop their partial writes, which were never acknowledged."""
        replayed, removed = self.journal.adopt_orphans(self.ingest.replay)
        if removed:
            log.info("removed %d partial file(s) left by an interrupted write (never acknowledged)", removed)
        if replayed:
            log.info("indexed %d received instance(s) an interrupted process had acknowledged", replayed)
        return replayed

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every instance acknowledged so far is indexed (readers: ls, queries)."""
        return self.journal.settle(timeout)

    def reload_settings(self) -> Settings:
        self.settings = Settings.load(self.home)
        self.files.floor = self.settings["storage.free_space_floor_mb"] * 1024 * 1024
        return self.settings

    def close(self) -> None:
        self.writer.close()
        self.journal.close()
        self.engine.dispose()
