"""Study corrections in the archive (spec §4.2.1.3.1.8) from the command line: patient data,
Patient Position, a study moved to a worklist procedure and re-sent to Orthanc (found there
under its new UIDs), patients merged; every object valid for dciodvfy with the change in its
Original Attributes Sequence, the audit trail written, and all-or-nothing: a failure before
the decision changes nothing, an interruption after it is completed at the next start."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import pydicom
import pytest
from pydicom.uid import generate_uid

from app.dicom import corrections
from app.net.worklist import Scope
from app.store import worklist
from app.store.archive import Archive
from app.store.correct import CorrectionFailed, correct_study
from conftest import lightbox, ls_json
from peerutil import OrthancPacs, ct_dataset, save
from tests.worklist_samples import worklist_item

pytestmark = pytest.mark.peers


FRAMES: dict[str, str] = {}  # series -> its frame of reference as acquired


def _ct(study: str, series: str, number: int, patient_id: str = "OLD1"):
    ds = ct_dataset(study, series, generate_uid(), number, size=16, patient_id=patient_id)
    ds.ReferringPhysicianName, ds.Manufacturer, ds.KVP, ds.AcquisitionNumber, ds.Laterality = "", "SIEMENS", 120, 1, ""
    ds.PatientPosition, ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = "HFS", FRAMES.setdefault(series, generate_uid()), ""
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [-100.0, -100.0, float(number)], [1, 0, 0, 0, 1, 0]
    ds.SliceLocation, ds.PatientBirthDate, ds.StudyDate, ds.PatientAge = float(number), "19800101", "20260310", "046Y"
    return ds


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    study = generate_uid()
    series = [generate_uid(), generate_uid()]
    files = [save(_ct(study, series[i % 2], i + 1), tmp_path / f"ct{i}.dcm") for i in range(4)]
    lightbox(home, "import", *map(str, files))
    return home, study, series


def _files(home, study: str) -> list[pydicom.Dataset]:
    rows = ls_json(home, "instance", f"StudyInstanceUID={study}")
    archive = Archive(home)
    try:
        return [pydicom.dcmread(archive.files.absolute(r["path"])) for r in rows]
    finally:
        archive.close()


def _dciodvfy_clean(ds, tmp_path) -> None:
    path = tmp_path / "check.dcm"
    ds.save_as(path, enforce_file_format=True)
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert not errors, "\n".join(errors)


def test_patient_data_and_position_corrected_in_every_object(home, tmp_path):
    home, study, series = home
    out = lightbox(home, "correct", "--study", study, "--patient-name", "DOE^JANE", "--patient-id", "NEW1",
                   "--birth-date", "19900615")
    assert "4 instance(s) corrected" in out.stdout and "delete them there" in out.stderr
    got = _files(home, study)
    assert len(got) == 4
    for ds in got:
        assert (ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientAge) == ("DOE^JANE", "NEW1", "19900615", "035Y")
        old = ds.OriginalAttributesSequence[-1]
        assert old.ReasonForTheAttributeModification == "CORRECT"
        assert old.ModifiedAttributesSequence[0].PatientID == "OLD1"
    _dciodvfy_clean(got[0], tmp_path)
    assert [p["PatientID"] for p in ls_json(home, "patient")] == ["NEW1"]  # the old patient, emptied, is gone
    lightbox(home, "correct", "--study", study, "--position", "FFS")
    got = _files(home, study)
    by_series: dict[str, set] = {}
    for ds in got:
        assert ds.PatientPosition == "FFS" and float(ds.ImagePositionPatient[0]) == 100.0
        assert float(ds.ImagePositionPatient[2]) == -float(ds.InstanceNumber) and "SliceLocation" not in ds
        by_series.setdefault(ds.SeriesInstanceUID, set()).add(ds.FrameOfReferenceUID)
    assert all(len(f) == 1 for f in by_series.values())  # one new frame of reference per series
    assert len({next(iter(f)) for f in by_series.values()} | {FRAMES[s] for s in series}) == 4  # all new
    _dciodvfy_clean(got[0], tmp_path)
    trail = json.loads(lightbox(home, "audit", "--action", "correct", "--json").stdout)
    details = sorted(t["detail"] for t in trail)
    assert len(trail) == 2 and all(t["study_uid"] == study for t in trail)
    assert details[0].startswith("Patient Position corrected to FFS: 4 instance(s); changed ")
    assert details[1].startswith("patient data corrected: 4 instance(s); changed PatientAge, PatientBirthDate")


def test_a_study_moved_to_its_procedure_is_found_in_orthanc_under_the_new_uids(home, tmp_path):
    home, study, _ = home
    archive = Archive(home)
    try:
        item = worklist_item(patient_name="Right^Patient", patient_id="RIGHT1", modality="CT",
                             station_aet="LIGHTBOX", start_date="20260310", accession="ACC-RIGHT",
                             study_uid="1.2.826.0.1.3680043.10.5.55", requested_procedure_id="RP55", sps_id="SP55")
        worklist.sync(archive.engine, "RIS", [item], Scope("*", "*", "20260101", "20261231"))
        item_id = worklist.items(archive.engine)[0]["id"]
        our_aet, our_port = archive.settings["node.aet"], archive.settings["node.port"]
    finally:
        archive.close()
    lightbox(home, "correct", "--study", study, "--to-procedure", str(item_id))
    assert not ls_json(home, "instance", f"StudyInstanceUID={study}")
    moved = _files(home, "1.2.826.0.1.3680043.10.5.55")
    assert len(moved) == 4 and {(d.AccessionNumber, d.PatientID) for d in moved} == {("ACC-RIGHT", "RIGHT1")}
    assert all(d.OriginalAttributesSequence[0].ModifiedAttributesSequence[0].StudyInstanceUID == study for d in moved)
    orthanc = OrthancPacs(tmp_path, our_aet, our_port)
    try:
        lightbox(home, "nodes", "add", "PACS", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port",
                 str(orthanc.dicom_port))
        lightbox(home, "send", "PACS", "--study", "1.2.826.0.1.3680043.10.5.55")
        found = json.loads(lightbox(home, "query", "PACS", "--level", "study", "-k",
                                    "AccessionNumber=ACC-RIGHT", "--json").stdout)
        assert [r["StudyInstanceUID"] for r in found] == ["1.2.826.0.1.3680043.10.5.55"]
        assert found[0]["PatientID"] == "RIGHT1"
    finally:
        orthanc.stop()


def test_patients_merged_without_changing_uids(home, tmp_path):
    home, study, _ = home
    other = generate_uid()
    lightbox(home, "import", str(save(_ct(other, generate_uid(), 1, patient_id="KEEP1"), tmp_path / "keep.dcm")))
    lightbox(home, "correct", "--patient", "OLD1", "--merge-into", "KEEP1")
    assert [p["PatientID"] for p in ls_json(home, "patient")] == ["KEEP1"]
    assert {r["StudyInstanceUID"] for r in ls_json(home, "study")} == {study, other}
    bad = lightbox(home, "correct", "--study", study, check=False)
    assert bad.returncode == 2 and "nothing to correct" in bad.stderr


def test_a_failure_before_the_decision_changes_nothing(home):
    home, study, _ = home
    before = {r["SOPInstanceUID"]: r["path"] for r in ls_json(home, "instance")}
    archive = Archive(home)
    try:
        contents = {p: archive.files.absolute(p).read_bytes() for p in before.values()}
        seen = []

        def change(ds, _series):
            seen.append(ds.SOPInstanceUID)
            if len(seen) == 3:
                raise OSError("disk full")
            return corrections.correct_patient(ds, {"PatientName": "X^Y"}, when=datetime.now())
        with pytest.raises(CorrectionFailed, match="nothing was changed: disk full"):
            correct_study(archive, study, change, actor="test", what="test")
        assert {p: archive.files.absolute(p).read_bytes() for p in before.values()} == contents
        assert not any((home / "corrections").iterdir())
    finally:
        archive.close()
    assert {r["SOPInstanceUID"]: r["path"] for r in ls_json(home, "instance")} == before


def test_an_interruption_after_the_decision_is_completed_at_the_next_start(home, monkeypatch):
    home, study, _ = home
    import app.store.correct as correct_module
    archive = Archive(home)
    real_replace = correct_module.os.replace
    calls = []

    def crash_after_one(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt("power cut")  # half the copies moved, the index untouched
        real_replace(src, dst)
    monkeypatch.setattr(correct_module.os, "replace", crash_after_one)
    with pytest.raises(KeyboardInterrupt):
        correct_study(archive, study, lambda ds, _s: corrections.correct_patient(
            ds, {"PatientName": "AFTER^CRASH"}, when=datetime.now()), actor="test", what="test")
    archive.close()
    monkeypatch.setattr(correct_module.os, "replace", real_replace)
    Archive(home).close()  # the next start completes it
    got = _files(home, study)
    assert len(got) == 4 and {str(d.PatientName) for d in got} == {"AFTER^CRASH"}
    assert not any((home / "corrections").iterdir())
