"""The local copy of the RIS worklists (spec §4.2.1.3.6): what each provider's last good
query returned, compared with what was kept. New items are inserted, changed ones updated,
items of the query's scope that the provider no longer returns are marked vanished (never
deleted: a study may already have been acquired for one). One transaction per query, so a
query that fails half way changes nothing."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Engine

from app.store.schema import worklist_item, worklist_query

log = logging.getLogger(__name__)
_SYNC_LOCK = threading.Lock()

SCHEDULED, VANISHED = "scheduled", "vanished"
# the columns of worklist_item filled from an item: keyword -> path in the item
COLUMNS = {
    "PatientName": ("PatientName",), "PatientID": ("PatientID",), "PatientBirthDate": ("PatientBirthDate",),
    "PatientSex": ("PatientSex",), "AccessionNumber": ("AccessionNumber",),
    "StudyInstanceUID": ("StudyInstanceUID",), "RequestedProcedureID": ("RequestedProcedureID",),
    "RequestedProcedureDescription": ("RequestedProcedureDescription",),
    "RequestedProcedurePriority": ("RequestedProcedurePriority",),
    **{k: ("ScheduledProcedureStepSequence", k) for k in (
        "ScheduledProcedureStepID", "ScheduledProcedureStepDescription", "Modality", "ScheduledStationAETitle",
        "ScheduledStationName", "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
        "ScheduledPerformingPhysicianName")},
}


def value(ds: Dataset, path: tuple[str, ...]) -> str:
    """The text of ``path`` in ``ds`` (first item of each sequence; several values joined
    by backslashes; a person name in its first, alphabetic, form too)."""
    holder = ds
    for keyword in path[:-1]:
        seq = holder.get(keyword)
        if not seq:
            return ""
        holder = seq[0]
    elem = holder.get(path[-1])
    if elem is None or elem in ("", None):
        return ""
    if isinstance(elem, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in elem)
    return str(elem)


def item_key(ds: Dataset) -> str:
    """What identifies a scheduled procedure step across queries."""
    return "|".join(value(ds, p) for p in (("StudyInstanceUID",), ("RequestedProcedureID",),
                                           ("ScheduledProcedureStepSequence", "ScheduledProcedureStepID")))


def _row(ds: Dataset) -> dict:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    out = {column: value(ds, path) or None for column, path in COLUMNS.items()}
    # the item encoded as it came, its Specific Character Set with it: a third of the time
    # DICOM JSON takes, and compared byte for byte to see whether it changed
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    out["item"] = fp.getvalue()
    return out


def sync(engine: Engine, node: str, items: list[Dataset], scope) -> dict:
    """Keep what ``node`` returned for ``scope`` (app.net.worklist.Scope)."""
    now = datetime.now(timezone.utc)
    rows = {}
    skipped = 0
    for ds in items:
        key = item_key(ds)
        try:
            if not value(ds, ("StudyInstanceUID",)) or not key.strip("|"):
                raise ValueError("no Study Instance UID")
            rows[key] = _row(ds)
        except Exception as exc:  # noqa: BLE001 - one malformed item does not lose the others
            skipped += 1
            log.warning("worklist item of %s not kept (%s): %s", node, exc, key or "no identity")
    added, changed, seen, gone = [], [], [], []
    # the poller and the dialog's Refresh may answer at once: one comparison at a time
    with _SYNC_LOCK, engine.begin() as conn:
        kept = {r.item_key: r for r in conn.execute(
            select(worklist_item.c.id, worklist_item.c.item_key, worklist_item.c.status, worklist_item.c.item,
                   worklist_item.c.Modality, worklist_item.c.ScheduledStationAETitle,
                   worklist_item.c.ScheduledProcedureStepStartDate).where(worklist_item.c.node == node))}
        for key, row in rows.items():
            old = kept.get(key)
            if old is None:
                added.append({**row, "node": node, "item_key": key, "status": SCHEDULED, "first_seen": now,
                              "last_seen": now, "changed_at": now})
            elif old.item != row["item"] or old.status != SCHEDULED:
                changed.append({**row, "row_id": old.id, "status": SCHEDULED, "last_seen": now, "changed_at": now})
            else:
                seen.append(old.id)
        for key, old in kept.items():
            if key not in rows and old.status == SCHEDULED and \
                    scope.covers(old.Modality, old.ScheduledStationAETitle, old.ScheduledProcedureStepStartDate):
                gone.append(old.id)
        # one statement per kind of change, each executed for all its rows
        if added:
            conn.execute(insert(worklist_item), added)
        if changed:
            conn.execute(update(worklist_item).where(worklist_item.c.id == bindparam("row_id")), changed)
        for ids, values in ((seen, {"last_seen": now}), (gone, {"status": VANISHED, "changed_at": now})):
            for i in range(0, len(ids), 500):
                conn.execute(update(worklist_item).where(worklist_item.c.id.in_(ids[i:i + 500])).values(**values))
        _record(conn, node, now, success=True, count=len(rows))
    return {"items": len(rows), "new": len(added), "changed": len(changed), "vanished": len(gone),
            "skipped": skipped}


def record_failure(engine: Engine, node: str, error: str) -> None:
    with engine.begin() as conn:
        _record(conn, node, datetime.now(timezone.utc), success=False, error=error)


def _record(conn, node: str, now: datetime, *, success: bool, count: int | None = None, error: str = "") -> None:
    values = {"last_attempt": now, "last_error": None if success else error}
    if success:
        values.update(last_success=now, last_count=count)
    if conn.execute(update(worklist_query).where(worklist_query.c.node == node).values(**values)).rowcount == 0:
        conn.execute(insert(worklist_query).values(node=node, **values))


def status(engine: Engine) -> dict[str, dict]:
    """Each provider's last query: node -> {last_attempt, last_success, last_count, last_error}."""
    with engine.connect() as conn:
        return {r.node: dict(r._mapping) for r in conn.execute(select(worklist_query))}


def items(engine: Engine, *, node: str | None = None, include_vanished: bool = False,
          datasets: bool = False) -> list[dict]:
    """The kept items, soonest scheduled first: the columns, and with ``datasets`` the
    whole item as a Dataset in 'dataset' (else only its encoding in 'item': read it with
    item_dataset when it is shown; a list of thousands need not parse them all)."""
    query = select(worklist_item)
    if node:
        query = query.where(worklist_item.c.node == node)
    if not include_vanished:
        query = query.where(worklist_item.c.status == SCHEDULED)
    query = query.order_by(worklist_item.c.ScheduledProcedureStepStartDate,
                           worklist_item.c.ScheduledProcedureStepStartTime, worklist_item.c.id)
    with engine.connect() as conn:
        out = []
        for r in conn.execute(query):
            row = dict(r._mapping)
            if datasets:
                row["dataset"] = item_dataset(row)
            out.append(row)
        return out


def item_dataset(row: dict) -> Dataset:
    """The whole item of a kept row."""
    from io import BytesIO

    from pydicom.filereader import read_dataset
    return read_dataset(BytesIO(row["item"]), False, True)


def forget(engine: Engine, node: str) -> int:
    """Drop a provider's items (it is no longer configured)."""
    with engine.begin() as conn:
        conn.execute(delete(worklist_query).where(worklist_query.c.node == node))
        return conn.execute(delete(worklist_item).where(worklist_item.c.node == node)).rowcount


def procedures_for(engine: Engine, studies: list[dict]) -> dict[str, dict]:
    """The scheduled procedure each study (rows with StudyInstanceUID, AccessionNumber,
    PatientID, StudyID) was acquired for: the worklist item of the same Study Instance UID;
    else of the same Accession Number; else of the same Patient ID whose Requested
    Procedure ID is the study's Study ID (Table 4-24: the Requested Procedure ID is the
    default Study ID). Study UID -> {"item": row, "matched_by": ...}; vanished items count
    (the procedure was done: that is why it left the worklist)."""
    if not studies:
        return {}
    uids = {s["StudyInstanceUID"] for s in studies if s.get("StudyInstanceUID")}
    accessions = {s["AccessionNumber"] for s in studies if s.get("AccessionNumber")}
    patients = {s["PatientID"] for s in studies if s.get("PatientID") and s.get("StudyID")}
    found: list[dict] = []
    columns = [c for c in worklist_item.c if c.name != "item"]
    with engine.connect() as conn:
        if conn.execute(select(worklist_item.c.id).limit(1)).first() is None:
            return {}  # no worklist: the browser's 10,000 studies cost one look
        for column, values in ((worklist_item.c.StudyInstanceUID, uids),
                               (worklist_item.c.AccessionNumber, accessions), (worklist_item.c.PatientID, patients)):
            values = sorted(values)
            for i in range(0, len(values), 500):
                found += [dict(r._mapping) for r in conn.execute(select(*columns).where(column.in_(values[i:i + 500])))]
    by_uid, by_accession, by_patient = {}, {}, {}
    for item in sorted(found, key=lambda r: (r["status"] != SCHEDULED, r["id"])):  # a scheduled one first
        by_uid.setdefault(item["StudyInstanceUID"], item)
        if item["AccessionNumber"]:
            by_accession.setdefault(item["AccessionNumber"], item)
        by_patient.setdefault((item["PatientID"], item["RequestedProcedureID"]), item)
    out = {}
    for s in studies:
        uid = s.get("StudyInstanceUID")
        for matched_by, item in (("Study Instance UID", by_uid.get(uid)),
                                 ("Accession Number", by_accession.get(s.get("AccessionNumber")) if s.get("AccessionNumber") else None),
                                 ("Patient ID and Requested Procedure ID", by_patient.get((s.get("PatientID"), s.get("StudyID")))
                                  if s.get("StudyID") else None)):
            if item is not None:
                out[uid] = {"item": item, "matched_by": matched_by}
                break
    return out


def procedure_text(item: dict) -> str:
    """A worklist item as the browser names it: what was asked for, and its ids."""
    what = item.get("RequestedProcedureDescription") or item.get("ScheduledProcedureStepDescription") or "procedure"
    ids = "/".join(v for v in (item.get("RequestedProcedureID"), item.get("ScheduledProcedureStepID")) if v)
    return f"{what} ({ids})" if ids else what
