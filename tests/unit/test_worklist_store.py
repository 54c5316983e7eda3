"""The local copy of a worklist (app.store.worklist): what a provider's answers change.
wlmscpfs never returns a malformed item (it drops files that lack a type 1 key), so the
malformed answer some RIS send is made here."""

from __future__ import annotations

from app.net.worklist import Scope
from app.store import worklist
from app.store.archive import Archive
from tests.worklist_samples import worklist_item

SCOPE = Scope("*", "*", "20260101", "20261231")


def _item(pid: str, **kw):
    return worklist_item(patient_name=f"Pat^{pid}", patient_id=pid, start_date="20260310", accession=f"A{pid}",
                         sps_id=f"S{pid}", requested_procedure_id=f"R{pid}", study_uid=f"1.2.3.{pid}", **kw)


def test_a_malformed_item_is_left_out_and_the_others_kept(tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        broken = _item("9")
        broken.StudyInstanceUID = ""
        no_sequence = _item("8")
        del no_sequence.ScheduledProcedureStepSequence
        no_sequence.StudyInstanceUID = ""
        result = worklist.sync(archive.engine, "RIS", [_item("1"), broken, _item("2"), no_sequence], SCOPE)
        assert (result["items"], result["new"], result["skipped"]) == (2, 2, 2)
        assert {r["PatientID"] for r in worklist.items(archive.engine)} == {"1", "2"}
    finally:
        archive.close()


def test_items_outside_the_scope_of_a_query_do_not_vanish(tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        worklist.sync(archive.engine, "RIS", [_item("1", modality="CT"), _item("2", modality="MG")], SCOPE)
        result = worklist.sync(archive.engine, "RIS", [_item("2", modality="MG")], Scope("MG", "*", "20260101", "20261231"))
        assert result["vanished"] == 0
        result = worklist.sync(archive.engine, "RIS", [_item("2", modality="MG")], SCOPE)
        assert result["vanished"] == 1
        kept = {r["PatientID"]: r["status"] for r in worklist.items(archive.engine, include_vanished=True)}
        assert kept == {"1": "vanished", "2": "scheduled"}
        # back again: scheduled, counted as changed
        result = worklist.sync(archive.engine, "RIS", [_item("1", modality="CT"), _item("2", modality="MG")], SCOPE)
        assert (result["changed"], result["new"]) == (1, 0)
    finally:
        archive.close()


def test_a_study_shows_the_procedure_it_was_acquired_for(tmp_path):
    """Matched by Study Instance UID, else Accession Number, else Patient ID with the
    Requested Procedure ID as Study ID (the browser's 'Scheduled procedure' column)."""
    from app.store.browse import StudyFilter, studies
    from tests.peers.peerutil import ct_dataset, save
    archive = Archive(tmp_path / "home")
    try:
        worklist.sync(archive.engine, "RIS", [_item("1", modality="CT"), _item("2", modality="CT"),
                                              _item("3", modality="CT")], SCOPE)
        made = {}
        for label, uid, accession, pid, study_id in (("uid", "1.2.3.1", "", "X", "9"),
                                                     ("accession", "1.2.99.2", "A2", "Y", "9"),
                                                     ("procedure", "1.2.99.3", "", "3", "R3"),
                                                     ("none", "1.2.99.4", "A7", "3", "R7")):
            ds = ct_dataset(uid, f"{uid}.1", f"{uid}.1.1", 1, size=8, patient_id=pid)
            ds.AccessionNumber, ds.StudyID = accession, study_id
            assert archive.ingest.store_file(save(ds, tmp_path / f"{label}.dcm")).ok
            made[label] = uid
        rows = {r["StudyInstanceUID"]: r for r in studies(archive.engine, StudyFilter())}
        found = worklist.procedures_for(archive.engine, list(rows.values()))
        assert {k: found[made[k]]["matched_by"] for k in ("uid", "accession", "procedure")} == {
            "uid": "Study Instance UID", "accession": "Accession Number",
            "procedure": "Patient ID and Requested Procedure ID"}
        assert made["none"] not in found
        assert rows[made["uid"]]["_procedure"].endswith("(R1/S1)") and rows[made["none"]]["_procedure"] == ""
    finally:
        archive.close()
