"""Archiving and group commit of index rows.

All index writes of a process go through one thread. It takes the journal entries waiting
(up to ``node.index_batch``, spec Table 4-53 "number of image collection before saving to
database"), links each into the archive (a duplicate SOP Instance UID keeps the stored
instance), fsyncs the folders once, writes the rows in one transaction, commits once, and
only then removes the journal entries (app.store.journal). C-STORE responses do not wait
for this: the journal entry was durable before them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from app import events
from app.store.files import FileStore, UidLocks
from app.store.schema import instance, patient, series, study

log = logging.getLogger(__name__)


@dataclass
class IndexRecord:
    patient: dict
    study: dict
    series: dict
    instance: dict


_INSERT_IGNORE: dict[tuple[str, str], object] = {}


def _insert_ignore_stmt(dialect: str, table):
    """INSERT ... ON CONFLICT DO NOTHING, built once per table: executed with a parameter
    dict it reuses SQLAlchemy's compiled form instead of compiling 60 columns per row."""
    key = (dialect, table.name)
    if key not in _INSERT_IGNORE:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        _INSERT_IGNORE[key] = insert(table).on_conflict_do_nothing()
    return _INSERT_IGNORE[key]


def insert_ignore(conn: Connection, table, values: dict) -> int:
    """INSERT that silently skips a row violating a unique constraint; returns rows inserted."""
    name = conn.dialect.name
    if name not in ("sqlite", "postgresql"):  # other databases: plain insert in a savepoint
        try:
            with conn.begin_nested():
                return conn.execute(table.insert(), values).rowcount
        except IntegrityError:
            return 0
    return conn.execute(_insert_ignore_stmt(name, table), values).rowcount


_ID_BY_UID = {
    t.name: select(t.c.id).where(t.c[col] == bindparam("key"))
    for t, col in ((study, "StudyInstanceUID"), (series, "SeriesInstanceUID"), (instance, "SOPInstanceUID"))
}
_PATIENT_ID = select(patient.c.id).where(patient.c.PatientID == bindparam("pid"),
                                         patient.c.IssuerOfPatientID == bindparam("issuer"))


def _find(conn: Connection, table, key: dict):
    if table is patient:
        return conn.execute(_PATIENT_ID, {"pid": key["PatientID"], "issuer": key["IssuerOfPatientID"]}).scalar()
    (value,) = key.values()
    return conn.execute(_ID_BY_UID[table.name], {"key": value}).scalar()


def _get_or_create(conn: Connection, table, key: dict, values: dict, cache: dict | None) -> int:
    ck = (table.name, *key.values())
    if cache is not None and ck in cache:
        return cache[ck]
    rid = _find(conn, table, key)
    if rid is None:
        insert_ignore(conn, table, values)
        rid = _find(conn, table, key)
    if cache is not None:
        if len(cache) > 10000:
            cache.clear()
        cache[ck] = rid
    return rid


def index_one(conn: Connection, rec: IndexRecord, cache: dict | None = None) -> bool:
    """Index one instance; False if its SOP Instance UID was already indexed.

    ``cache`` maps patient/study/series keys to row ids: every instance of a series would
    otherwise look the same three rows up again. A stale id (a row deleted meanwhile) makes
    the insert fail, and the caller retries without the cache.
    """
    sop_uid = rec.instance["SOPInstanceUID"]
    if _find(conn, instance, {"SOPInstanceUID": sop_uid}) is not None:
        return False  # a duplicate creates no patient/study/series rows either
    p = dict(rec.patient)
    # '' instead of NULL so (PatientID, Issuer) is unique on every database
    p["PatientID"] = p.get("PatientID") or ""
    p["IssuerOfPatientID"] = p.get("IssuerOfPatientID") or ""
    pid = _get_or_create(conn, patient, {"PatientID": p["PatientID"], "IssuerOfPatientID": p["IssuerOfPatientID"]},
                         p, cache)
    st = {**rec.study, "patient_id": pid}
    stid = _get_or_create(conn, study, {"StudyInstanceUID": st["StudyInstanceUID"]}, st, cache)
    se = {**rec.series, "study_id": stid}
    seid = _get_or_create(conn, series, {"SeriesInstanceUID": se["SeriesInstanceUID"]}, se, cache)
    return insert_ignore(conn, instance, {**rec.instance, "series_id": seid}) == 1


@dataclass
class Indexed:
    inserted: bool  # False: a duplicate SOP Instance UID, the stored instance was kept
    path: str       # archive path of the instance that is kept


class IndexWriter:
    def __init__(self, engine: Engine, files: FileStore, batch: int = 20):
        self.engine = engine
        self.files = files
        self.locks = UidLocks(files.root.parent / "locks")
        self.batch = max(1, batch)
        self._queue: queue.Queue = queue.Queue()
        self._ids: dict = {}  # only touched by the writer thread
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self._thread.start()

    def lookup(self, sop_uid: str) -> str | None:
        """Archive path of an indexed instance, or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(instance.c.path).where(instance.c.SOPInstanceUID == sop_uid)).scalar()

    def submit(self, rec: IndexRecord, entry: Path, *, urgent: bool = False) -> Future:
        """Archive and index the durable journal ``entry``; the future gives :class:`Indexed`.

        Not ``urgent`` (a C-STORE, already acknowledged): the writer waits up to LINGER for
        more entries to share the folder fsyncs and the commit, so that it does not compete
        with the receiving threads' own fsyncs once per image. ``urgent``: someone waits."""
        fut: Future = Future()
        self._queue.put((rec, entry, fut, urgent))
        return fut

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    LINGER = 0.05  # s; what a received instance may wait before it shows in the browser

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item[:3]]
            urgent = item[3]
            deadline = time.monotonic() + self.LINGER
            while len(batch) < self.batch:
                wait = 0 if urgent else deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt[:3])
                urgent = urgent or nxt[3]
            try:
                self._publish(batch)
            except Exception as exc:  # noqa: BLE001 - the entries stay in the journal
                log.exception("could not archive %d received instance(s)", len(batch))
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)

    def _place(self, rec: IndexRecord, entry: Path, placed: dict[str, str]) -> tuple[bool, str]:
        """Give the entry its archive name: (True, path) if new, (False, kept path) if its SOP
        Instance UID is stored already."""
        uid, rel = rec.instance["SOPInstanceUID"], rec.instance["path"]
        if uid in placed:  # the same instance twice in one batch
            return False, placed[uid]
        if self.files.link(entry, rel, replace=False):
            return True, rel
        kept = self.lookup(uid)
        if kept is not None:
            return False, kept
        # The name is taken but not indexed: linked before a crash, never committed. If that
        # copy was acknowledged, it is its own journal entry that is being replayed now.
        self.files.link(entry, rel, replace=True)
        return True, rel

    def _publish(self, batch: list) -> None:
        done: list[tuple[IndexRecord, Path, Future, Indexed]] = []
        with self.locks.hold(rec.instance["SOPInstanceUID"] for rec, _, _ in batch):
            placed: dict[str, str] = {}
            new = []
            for rec, entry, fut in batch:
                try:
                    is_new, path = self._place(rec, entry, placed)
                except OSError as exc:
                    log.error("could not archive received instance %s (kept in %s): %s",
                              rec.instance["SOPInstanceUID"], entry, exc)
                    fut.set_exception(exc)
                    continue
                placed[rec.instance["SOPInstanceUID"]] = path
                if is_new:
                    new.append((rec, entry, fut))
                else:
                    done.append((rec, entry, fut, Indexed(False, path)))
            self.files.sync_folders(rec.instance["path"] for rec, _, _ in new)
            for (rec, entry, fut), result in zip(new, self._index([rec for rec, _, _ in new])):
                if isinstance(result, Exception):
                    fut.set_exception(result)  # the entry stays: indexed at the next start
                    continue
                rel = rec.instance["path"]
                if result:
                    done.append((rec, entry, fut, Indexed(True, rel)))
                    continue
                # indexed meanwhile under another study/series (or by another process)
                kept = self.lookup(rec.instance["SOPInstanceUID"]) or rel
                if kept != rel:
                    self.files.remove(rel)  # ours is an orphan
                done.append((rec, entry, fut, Indexed(False, kept)))
        for rec, entry, fut, result in done:
            if not result.inserted:
                log.info("duplicate SOP Instance UID %s from %s: kept the stored instance",
                         rec.instance["SOPInstanceUID"], rec.instance.get("SourceApplicationEntityTitle") or "import")
            entry.unlink(missing_ok=True)
            fut.set_result(result)
        added = [rec.instance["SOPInstanceUID"] for rec, _, _, r in done if r.inserted]
        if added:
            events.publish("instances-added", added)

    def _index(self, records: list[IndexRecord], cached: bool = True) -> list[bool | Exception]:
        """Index rows in one transaction: per record True (inserted), False (already indexed)
        or the exception that kept it out."""
        if not records:
            return []
        try:
            with self.engine.begin() as conn:
                return [index_one(conn, rec, self._ids if cached else None) for rec in records]
        except Exception as exc:
            self._ids.clear()
            if cached:
                return self._index(records, cached=False)
            if len(records) == 1:
                log.exception("index commit failed")
                return [RuntimeError(f"the archive index could not be written: {exc}")]
            # One bad record must not fail the others: retry one by one.
            return [r for rec in records for r in self._index([rec], cached=False)]
