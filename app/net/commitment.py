"""Storage Commitment Push Model (spec §4.2.1.3.2, §4.2.1.3.3, §4.2.1.4.2; Tables 4-9 to
4-13, 4-44, 4-45), SCU and SCP.

SCU: an N-ACTION asks a node to commit to keep instances (one request per bundle, or per
instance); its N-EVENT-REPORT is taken on the same association if it comes within 3 s,
otherwise on a later association that our node accepts. Every instance ends "committed" or
"commit failed" (with the reason) in the commit_item table, and a study every instance of
which a node committed is recorded in the commitment table (what deletion and the
watermark trust).

SCP: an N-ACTION is accepted at once; each referenced instance is checked (SOP class and
instance UID must both match a stored instance) and the N-EVENT-REPORT goes on a new
association to the requesting node (a configured one), repeated if it fails (Table 4-13).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sqlalchemy import func, insert, select, update

from app import events
from app.dicom.transfer_syntaxes import UNCOMPRESSED
from app.dicom.uids import new_uid
from app.store.schema import commit_item, commitment, instance, series, study

log = logging.getLogger(__name__)

PUSH_MODEL = "1.2.840.10008.1.20.1"
PUSH_MODEL_INSTANCE = "1.2.840.10008.1.20.1.1"  # the well-known SOP instance
REQUEST_COMMITMENT = 1                           # N-ACTION Action Type ID
EVENT_ALL_COMMITTED, EVENT_SOME_FAILED = 1, 2     # N-EVENT-REPORT Event Type IDs
# Failure Reasons (PS3.3 C.14.1.1), what the SCP answers per instance
NO_SUCH_INSTANCE, CLASS_INSTANCE_CONFLICT, PROCESSING_FAILURE = 0x0112, 0x0119, 0x0110
REPORT_RETRIES, REPORT_INTERVAL = 3, 10.0
SAME_ASSOCIATION_WAIT = 3.0                      # §4.2.1.3.2.1

PENDING, COMMITTED, FAILED = "pending", "committed", "failed"


def scp_contexts() -> list[tuple[str, tuple[str, ...]]]:
    return [(PUSH_MODEL, UNCOMPRESSED)]


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- SCU --------------------------------------------------------------------------------------
def action_information(transaction_uid: str, items: list[tuple]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    refs = []
    for sop_class, sop_instance, *_ in items:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop_instance
        refs.append(ref)
    ds.ReferencedSOPSequence = Sequence(refs)
    return ds


def record_request(engine, transaction_uid: str, node_name: str, items: list[tuple]) -> None:
    """``items``: (SOP class, SOP instance[, the archived instance it stands for])."""
    with engine.begin() as conn:
        conn.execute(insert(commit_item), [{"transaction_uid": transaction_uid, "node": node_name,
                                            "sop_class": i[0], "sop_instance": i[1],
                                            "archived_instance": i[2] if len(i) > 2 else i[1],
                                            "state": PENDING, "requested_at": _now()} for i in items])


def record_report(engine, report: Dataset) -> tuple[int, int]:
    """Apply an N-EVENT-REPORT's lists to the items of its transaction: (committed, failed).
    Studies now wholly committed by that node go into the commitment table."""
    uid = str(report.get("TransactionUID", ""))
    done = [(str(r.get("ReferencedSOPClassUID", "")), str(r.get("ReferencedSOPInstanceUID", "")), COMMITTED, None)
            for r in report.get("ReferencedSOPSequence", [])]
    failed = [(str(r.get("ReferencedSOPClassUID", "")), str(r.get("ReferencedSOPInstanceUID", "")), FAILED,
               f"0x{int(r.get('FailureReason', PROCESSING_FAILURE)):04X}")
              for r in report.get("FailedSOPSequence", [])]
    with engine.begin() as conn:
        node = conn.execute(select(commit_item.c.node).where(commit_item.c.transaction_uid == uid)).scalar()
        if node is None:
            log.warning("storage commitment report for unknown transaction %s ignored", uid)
            return 0, 0
        for sop_class, sop_instance, state, reason in done + failed:
            conn.execute(update(commit_item).where(commit_item.c.transaction_uid == uid,
                                                   commit_item.c.sop_instance == sop_instance)
                         .values(state=state, reason=reason, answered_at=_now()))
        archived = dict(conn.execute(select(commit_item.c.sop_instance, commit_item.c.archived_instance).where(
            commit_item.c.transaction_uid == uid)).all())
        _record_committed_studies(conn, node, [archived.get(i) or i for _, i, _, _ in done])
        studies = _studies_of(conn, [archived.get(i) or i for _, i, _, _ in done + failed])
    log.info("storage commitment %s from %s: %d committed, %d failed", uid, node, len(done), len(failed))
    events.publish("commitment-updated", studies)  # the browser's Archived column
    return len(done), len(failed)


def _studies_of(conn, instances: list[str]) -> list[str]:
    if not instances:
        return []
    return list(conn.execute(select(study.c.StudyInstanceUID).distinct()
                             .join(series, series.c.study_id == study.c.id)
                             .join(instance, instance.c.series_id == series.c.id)
                             .where(instance.c.SOPInstanceUID.in_(instances))).scalars())


def _record_committed_studies(conn, node: str, instances: list[str]) -> None:
    """A study goes into the commitment table once every instance we hold of it is committed
    by ``node`` (the deletion and the watermark trust that table): the last answer about
    everything that stands for it there (itself, or each frame it was split into) "committed"."""
    if not instances:
        return
    for uid in _studies_of(conn, instances):
        held = conn.execute(select(instance.c.SOPInstanceUID).join(series, instance.c.series_id == series.c.id)
                            .join(study, series.c.study_id == study.c.id)
                            .where(study.c.StudyInstanceUID == uid)).scalars().all()
        last: dict[tuple[str, str], str] = {}
        for archived, sent, state in conn.execute(select(
                commit_item.c.archived_instance, commit_item.c.sop_instance, commit_item.c.state).where(
                commit_item.c.node == node, commit_item.c.archived_instance.in_(held)).order_by(commit_item.c.id)):
            last[(archived, sent)] = state
        committed = {a for a, _ in last} - {a for (a, _), state in last.items() if state != COMMITTED}
        if held and committed >= set(held):
            conn.execute(insert(commitment).values(study_uid=uid, node=node, instances=len(held),
                                                   committed_at=_now()))


def item_states(engine, transaction_uid: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(commit_item.c.state, func.count()).where(
            commit_item.c.transaction_uid == transaction_uid).group_by(commit_item.c.state))
        return {state: n for state, n in rows}


def request(archive, node, items: list[tuple[str, str]]) -> tuple[str, bool]:
    """N-ACTION for ``items`` (SOP class, SOP instance) to ``node``: (transaction UID,
    whether the report already came on the same association). Raises AssociationFailed
    (retried by the job, Table 4-11) or CommitRefused (Table 4-10: a failure status)."""
    from pynetdicom import build_context, evt

    from app.net.remote import AssociationFailed, open_association, scu_ae
    transaction = new_uid()
    record_request(archive.engine, transaction, node.name, items)
    got = threading.Event()

    def on_report(event):
        report = event.event_information
        record_report(archive.engine, report)
        if str(report.get("TransactionUID", "")) == transaction:
            got.set()
        return 0x0000, None

    ae = scu_ae(archive.settings)
    assoc = open_association(ae, archive.settings, node, [build_context(PUSH_MODEL, list(UNCOMPRESSED))],
                             evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    try:
        status, _ = assoc.send_n_action(action_information(transaction, items), REQUEST_COMMITMENT,
                                        PUSH_MODEL, PUSH_MODEL_INSTANCE)
        if not status or "Status" not in status:
            raise AssociationFailed(f"{node.aet} did not answer the commitment request in time or dropped the "
                                    "association")
        code = int(status.Status)
        if code != 0x0000:
            _fail_all(archive.engine, transaction, f"N-ACTION status 0x{code:04X}")
            raise CommitRefused(f"{node.aet} refused the storage commitment request (status 0x{code:04X}); "
                                "the instances are marked 'commit failed'")
        got.wait(SAME_ASSOCIATION_WAIT)
    finally:
        if assoc.is_established:
            assoc.release()
    return transaction, got.is_set()


class CommitRefused(Exception):
    pass


def _fail_all(engine, transaction: str, reason: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(commit_item).where(commit_item.c.transaction_uid == transaction,
                                               commit_item.c.state == PENDING)
                     .values(state=FAILED, reason=reason, answered_at=_now()))


def handle_report(event, archive):
    """EVT_N_EVENT_REPORT on an association a commitment SCP opened to us (the report of an
    earlier request): recorded, then answered Success (Table 4-13)."""
    try:
        if str(event.request.AffectedSOPClassUID) != PUSH_MODEL:
            return 0x0112, None
        record_report(archive.engine, event.event_information)
    except Exception:  # noqa: BLE001 - answered as a processing failure: the SCP repeats it
        log.exception("storage commitment report from %s could not be recorded", event.assoc.requestor.ae_title)
        return 0x0110, None
    return 0x0000, None


# -- SCP --------------------------------------------------------------------------------------
def handle_action(event, archive):
    """EVT_N_ACTION: accepted at once (a malformed request is refused); the check and the
    N-EVENT-REPORT follow on a new association to the requester."""
    caller = event.assoc.requestor.ae_title
    req = event.request
    if str(req.RequestedSOPClassUID) != PUSH_MODEL or req.ActionTypeID != REQUEST_COMMITMENT:
        return 0x0123, None  # no such action type
    try:
        info = event.action_information
        transaction = str(info.TransactionUID)
        refs = [(str(r.ReferencedSOPClassUID), str(r.ReferencedSOPInstanceUID)) for r in info.ReferencedSOPSequence]
    except Exception as exc:  # noqa: BLE001 - missing Transaction UID or references
        log.warning("storage commitment request from %s refused: %s", caller, exc)
        return 0x0120, None  # missing attribute
    from app.store import nodes
    node = next((n for n in nodes.list_nodes(archive.engine) if n.aet == caller), None)
    if node is None:
        log.error("storage commitment request %s from %s: it is not a configured remote node, so there is "
                  "nowhere to send the report (add it with 'lightbox nodes add')", transaction, caller)
        return 0x0110, None
    log.info("storage commitment request %s from %s for %d instance(s)", transaction, caller, len(refs))
    threading.Thread(target=_report, args=(archive, node, transaction, refs), daemon=True,
                     name=f"commit-report-{transaction[-8:]}").start()
    return 0x0000, None


def check(engine, refs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """(committed, failed with the reason): both UIDs must match a stored instance."""
    uids = [i for _, i in refs]
    with engine.connect() as conn:
        held = dict(conn.execute(select(instance.c.SOPInstanceUID, instance.c.SOPClassUID)
                                 .where(instance.c.SOPInstanceUID.in_(uids))).all()) if uids else {}
    ok, failed = [], []
    for sop_class, sop_instance in refs:
        if sop_instance not in held:
            failed.append((sop_class, sop_instance, NO_SUCH_INSTANCE))
        elif held[sop_instance] != sop_class:
            failed.append((sop_class, sop_instance, CLASS_INSTANCE_CONFLICT))
        else:
            ok.append((sop_class, sop_instance))
    return ok, failed


def event_information(transaction: str, ok: list, failed: list) -> Dataset:
    ds = action_information(transaction, ok)
    if not ok:
        del ds.ReferencedSOPSequence
    if failed:
        items = []
        for sop_class, sop_instance, reason in failed:
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID, item.FailureReason = \
                sop_class, sop_instance, reason
            items.append(item)
        ds.FailedSOPSequence = Sequence(items)
    return ds


def _report(archive, node, transaction: str, refs: list[tuple[str, str]]) -> None:
    """The N-EVENT-REPORT on a new association (we take the SCP role of the push model),
    repeated until the requester answers Success (Table 4-13)."""
    from pynetdicom import build_context, build_role

    from app.net.remote import AssociationFailed, open_association, scu_ae
    archive.settle()  # what was acknowledged just before is indexed
    ok, failed = check(archive.engine, refs)
    info = event_information(transaction, ok, failed)
    event_type = EVENT_SOME_FAILED if failed else EVENT_ALL_COMMITTED
    for attempt in range(1, REPORT_RETRIES + 2):
        try:
            ae = scu_ae(archive.settings)
            assoc = open_association(ae, archive.settings, node, [build_context(PUSH_MODEL, list(UNCOMPRESSED))],
                                     ext_neg=[build_role(PUSH_MODEL, scp_role=True)])
            try:
                status, _ = assoc.send_n_event_report(info, event_type, PUSH_MODEL, PUSH_MODEL_INSTANCE)
            finally:
                if assoc.is_established:
                    assoc.release()
            code = int(status.Status) if status and "Status" in status else None
            if code == 0x0000:
                log.info("storage commitment %s reported to %s: %d committed, %d failed", transaction, node.aet,
                         len(ok), len(failed))
                return
            log.warning("storage commitment report %s to %s answered %s", transaction, node.aet,
                        f"0x{code:04X}" if code is not None else "nothing")
        except (AssociationFailed, ValueError, RuntimeError) as exc:
            log.warning("storage commitment report %s to %s failed (attempt %d): %s", transaction, node.aet,
                        attempt, exc)
        if attempt <= REPORT_RETRIES:
            time.sleep(REPORT_INTERVAL)
    log.error("storage commitment report %s to %s given up after %d attempts", transaction, node.aet,
              REPORT_RETRIES + 1)
