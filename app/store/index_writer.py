"""Group commit of index rows.

All index writes of a process go through one thread. It takes whatever records are waiting
(up to ``node.index_batch``, spec Table 4-53 "number of image collection before saving to
database"), writes them in one transaction and commits once, then releases every waiting
C-STORE. One association pays one commit per image; twelve pay one commit per batch.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from app import events
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


class IndexWriter:
    def __init__(self, engine: Engine, batch: int = 20):
        self.engine = engine
        self.batch = max(1, batch)
        self._queue: queue.Queue = queue.Queue()
        self._ids: dict = {}  # only touched by the writer thread
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self._thread.start()

    def lookup(self, sop_uid: str) -> str | None:
        """Archive path of an indexed instance, or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(instance.c.path).where(instance.c.SOPInstanceUID == sop_uid)).scalar()

    def submit(self, rec: IndexRecord) -> Future:
        fut: Future = Future()
        self._queue.put((rec, fut))
        return fut

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list, cached: bool = True) -> None:
        try:
            with self.engine.begin() as conn:
                results = [index_one(conn, rec, self._ids if cached else None) for rec, _ in batch]
        except Exception:
            self._ids.clear()
            if cached:
                self._commit(batch, cached=False)
                return
            if len(batch) == 1:
                log.exception("index commit failed")
                batch[0][1].set_exception(RuntimeError("the archive index could not be written"))
                return
            # One bad record must not fail the others: retry one by one.
            for one in batch:
                self._commit([one], cached=False)
            return
        for (rec, fut), inserted in zip(batch, results):
            fut.set_result(inserted)
        events.publish("instances-added", [rec.instance["SOPInstanceUID"] for (rec, _), ok in zip(batch, results) if ok])
