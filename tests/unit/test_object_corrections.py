"""Corrections of one object (app.dicom.corrections): patient data, a study moved to a
procedure or another patient, Patient Position; attribute by attribute, each change in the
Original Attributes Sequence with its reason, and the object still valid for dciodvfy."""

from __future__ import annotations

import subprocess
from datetime import datetime

import pydicom
import pytest
from pydicom.uid import generate_uid

from conftest import require
from app.dicom.corrections import CorrectionError, age, correct_patient, correct_position, move_study
from tests.mammo_samples import mammogram
from tests.peers.peerutil import ct_dataset, save

WHEN = datetime(2026, 11, 27, 14, 30, 5)


def _ct(position: str = "HFS"):
    ds = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=16)
    ds.ReferringPhysicianName, ds.Manufacturer, ds.KVP, ds.AcquisitionNumber = "", "SIEMENS", 120, 1
    ds.PatientPosition, ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = position, generate_uid(), ""
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [-120.5, -80.25, 35.0], [1, 0, 0, 0, 1, 0]
    ds.SliceLocation, ds.Laterality = 35.0, ""
    ds.DataCollectionCenterPatient = [0.0, -80.25, 35.0]
    ds.ReconstructionTargetCenterPatient = [10.0, -70.0, 35.0]
    return ds


def _errors(ds, tmp_path, name: str) -> set[str]:
    path = save(ds, tmp_path / name)
    out = subprocess.run([require("dciodvfy"), str(path)], capture_output=True, text=True)
    return {line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")}


def _valid(ds, tmp_path, name: str) -> None:
    errors = _errors(ds, tmp_path, name)
    assert not errors, "\n".join(sorted(errors))


def _last_original(ds):
    item = ds.OriginalAttributesSequence[-1]
    assert item.ReasonForTheAttributeModification == "CORRECT"
    assert item.AttributeModificationDateTime == "20261127143005" and item.ModifyingSystem.startswith("LIGHTBOX")
    return item.ModifiedAttributesSequence[0]


@pytest.mark.parametrize("birth, on, expected", [("19650412", "20260310", "060Y"), ("20250101", "20260310", "014M"),
                                                 ("20260201", "20260310", "001M"), ("20260215", "20260310", "003W"), ("20260305", "20260310", "005D"),
                                                 ("20240310", "20260310", "002Y"), ("20260311", "20260310", None)])
def test_age_as_dicom_writes_it(birth, on, expected):
    assert age(birth, on) == expected


def test_patient_data_corrected_uids_kept_and_the_old_values_recorded(tmp_path):
    ds = mammogram("R", "CC")
    ds.PatientAge = "060Y"
    uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    changed = correct_patient(ds, {"PatientName": "Doe^Jane", "PatientID": "NEW01", "PatientBirthDate": "19700101",
                                   "PatientSex": "F"}, when=WHEN)
    assert set(changed) == {"PatientName", "PatientID", "PatientBirthDate", "PatientAge"}  # sex was F already
    assert (ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientAge) == ("Doe^Jane", "NEW01", "19700101", "056Y")
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == uids
    old = _last_original(ds)
    assert (old.PatientName, old.PatientID, old.PatientBirthDate, old.PatientAge) == \
        ("Breast^MG001", "MG001", "19650412", "060Y")
    assert "PatientSex" not in old
    _valid(ds, tmp_path, "patient.dcm")
    with pytest.raises(CorrectionError, match="needs a Patient ID"):
        correct_patient(ds, {"PatientID": " "}, when=WHEN)
    with pytest.raises(CorrectionError, match="not patient data"):
        correct_patient(ds, {"StudyInstanceUID": "1.2"}, when=WHEN)


def test_a_study_moved_to_a_procedure_and_to_another_patient(tmp_path):
    ds = _ct()
    old_study, old_accession = ds.StudyInstanceUID, ds.get("AccessionNumber")
    move_study(ds, "1.2.826.0.1.3680043.10.1.77", "ACC77", when=WHEN)
    assert (ds.StudyInstanceUID, ds.AccessionNumber) == ("1.2.826.0.1.3680043.10.1.77", "ACC77")
    old = _last_original(ds)
    assert old.StudyInstanceUID == old_study and (old.AccessionNumber or None) == (old_accession or None)
    new_study = generate_uid()
    move_study(ds, new_study, None, when=WHEN, patient={"PatientName": "Other^Patient", "PatientID": "OTH"})
    assert ds.StudyInstanceUID == new_study and ds.PatientID == "OTH" and len(ds.OriginalAttributesSequence) == 3
    _valid(ds, tmp_path, "moved.dcm")


def test_head_first_to_feet_first_turns_the_geometry_with_the_patient(tmp_path):
    ds = _ct("HFS")
    series_for = generate_uid()
    changed = correct_position(ds, "FFS", series_for, when=WHEN)
    assert ds.PatientPosition == "FFS" and ds.FrameOfReferenceUID == series_for
    assert [float(v) for v in ds.ImagePositionPatient] == [120.5, -80.25, -35.0]
    assert [float(v) for v in ds.ImageOrientationPatient] == [-1, 0, 0, 0, 1, 0]
    assert [float(v) for v in ds.DataCollectionCenterPatient] == [0.0, -80.25, -35.0]
    assert [float(v) for v in ds.ReconstructionTargetCenterPatient] == [-10.0, -70.0, -35.0]
    assert "SliceLocation" not in ds and "SliceLocation" in changed
    old = _last_original(ds)
    assert old.PatientPosition == "HFS" and [float(v) for v in old.ImagePositionPatient] == [-120.5, -80.25, 35.0]
    _valid(ds, tmp_path, "ffs.dcm")
    correct_position(ds, "HFS", generate_uid(), when=WHEN)  # and back: the geometry as it was
    assert [float(v) for v in ds.ImagePositionPatient] == [-120.5, -80.25, 35.0]
    with pytest.raises(CorrectionError, match="between HFS, FFS, HFP, FFP only"):
        correct_position(ds, "HFDL", generate_uid(), when=WHEN)


def test_prone_and_projection_letters_and_xa_angles():
    ds = pydicom.Dataset()
    ds.PatientPosition, ds.PatientOrientation = "HFS", ["L", "P"]
    ds.PositionerPrimaryAngle, ds.PositionerSecondaryAngle = 30.0, -10.0
    correct_position(ds, "HFP", generate_uid(), when=WHEN)
    assert list(ds.PatientOrientation) == ["R", "A"] and float(ds.PositionerPrimaryAngle) == 30.0
    correct_position(ds, "FFP", generate_uid(), when=WHEN)  # head and feet swapped: the angles turn
    assert list(ds.PatientOrientation) == ["L", "A"]
    assert (float(ds.PositionerPrimaryAngle), float(ds.PositionerSecondaryAngle)) == (-30.0, 10.0)


def test_an_enhanced_object_turns_the_geometry_of_its_functional_groups(tmp_path):
    from tests.peers.peerutil import enhanced_mr
    ds = pydicom.dcmread(enhanced_mr(tmp_path / "emr.dcm"))
    ds.PatientPosition = "HFS"
    as_made = _errors(ds, tmp_path, "emr-hfs.dcm")  # the sample is not a complete Enhanced MR
    before = [[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
              for f in ds.PerFrameFunctionalGroupsSequence]
    correct_position(ds, "FFS", generate_uid(), when=WHEN)
    after = [[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
             for f in ds.PerFrameFunctionalGroupsSequence]
    assert after == [[-x, y, -z] for x, y, z in before]
    shared = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    assert [float(v) for v in shared][:3] == [-1.0, 0.0, 0.0]
    old = ds.OriginalAttributesSequence[-1].ModifiedAttributesSequence[0]
    assert [float(v) for v in old.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient] \
        == before[0]
    assert _errors(ds, tmp_path, "emr-ffs.dcm") <= as_made  # the correction adds no error
