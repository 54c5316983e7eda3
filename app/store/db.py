"""Database engine: SQLite in the data home by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from app.config import make_home
from app.store.schema import ensure_columns, ensure_indexes, metadata


def database_url(home: Path, explicit: str | None = None) -> str:
    return explicit or os.environ.get("LIGHTBOX_DB") or f"sqlite:///{home / 'lightbox.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (the browser, 'ls') run while the node writes. synchronous=FULL
    # makes every commit durable before the index writer drops the journal entry it covers.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def open_engine(home: Path, url: str | None = None) -> Engine:
    url = database_url(home, url)
    if url.startswith("sqlite"):
        make_home(home)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    ensure_columns(engine)
    ensure_indexes(engine)
    return engine
