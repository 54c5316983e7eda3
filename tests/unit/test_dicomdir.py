"""app.media.dicomdir: the DICOMDIR we write is read by another implementation (pydicom's
FileSet follows the offsets on its own), an existing one is read back into the same tree,
and a record that does not start with its offsets is refused rather than mis-linked."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.media import dicomdir


def _instance(patient: str, study: str, series: str, number: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", generate_uid()
    ds.PatientID, ds.PatientName = patient, f"{patient}^TEST"
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study, "20260101", "120000", "1"
    ds.AccessionNumber, ds.StudyDescription = "", ""
    ds.SeriesInstanceUID, ds.Modality, ds.SeriesNumber = series, "CT", 1
    ds.InstanceNumber = number
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    return ds


def _fileset(tmp_path, layout):
    """Files and a DICOMDIR for {patient: {study: {series: n}}}; the instances by UID."""
    directory = dicomdir.Directory("UNIT TEST")
    made = {}
    n = 0
    for patient, studies in layout.items():
        for study, series in studies.items():
            for uid, count in series.items():
                for number in range(1, count + 1):
                    ds = _instance(patient, study, uid, number)
                    file_id = ("F", f"IM{n:06}")
                    n += 1
                    (tmp_path / "F").mkdir(exist_ok=True)
                    ds.save_as(tmp_path.joinpath(*file_id), enforce_file_format=True)
                    directory.add(dicomdir.records_for(ds, ExplicitVRLittleEndian), file_id)
                    made[str(ds.SOPInstanceUID)] = ds
    return directory, made


LAYOUT = {"P1": {"1.2.1": {"1.2.1.1": 3, "1.2.1.2": 2}, "1.2.2": {"1.2.2.1": 1}},
          "P2": {"1.2.3": {"1.2.3.1": 4}}}


def test_pydicom_reads_the_tree_we_write(tmp_path):
    directory, made = _fileset(tmp_path, LAYOUT)
    directory.write(tmp_path / "DICOMDIR")
    fs = FileSet(tmp_path / "DICOMDIR")
    assert fs.ID == "UNIT TEST"
    assert {str(i.SOPInstanceUID) for i in fs} == set(made)
    for patient, studies in LAYOUT.items():
        for study, series in studies.items():
            for uid, count in series.items():
                found = fs.find(PatientID=patient, StudyInstanceUID=study, SeriesInstanceUID=uid)
                assert len(found) == count
                for instance in found:  # each record points at the file of its instance
                    assert str(instance.load().SOPInstanceUID) == str(instance.SOPInstanceUID)
    records = pydicom.dcmread(tmp_path / "DICOMDIR").DirectoryRecordSequence
    assert [str(r.DirectoryRecordType) for r in records].count("PATIENT") == 2
    assert [str(r.DirectoryRecordType) for r in records].count("SERIES") == 4


def test_an_existing_dicomdir_is_read_and_added_to(tmp_path):
    directory, made = _fileset(tmp_path, LAYOUT)
    directory.write(tmp_path / "DICOMDIR")
    again = dicomdir.Directory.read(tmp_path / "DICOMDIR")
    assert len(again) == len(made) and all(uid in again for uid in made)
    extra = _instance("P1", "1.2.1", "1.2.1.9", 1)  # a new series of a study already there
    extra.save_as(tmp_path / "F" / "NEW", enforce_file_format=True)
    again.add(dicomdir.records_for(extra, ExplicitVRLittleEndian), ("F", "NEW"))
    again.write(tmp_path / "DICOMDIR")
    records = pydicom.dcmread(tmp_path / "DICOMDIR").DirectoryRecordSequence
    kinds = [str(r.DirectoryRecordType) for r in records]
    assert (kinds.count("PATIENT"), kinds.count("STUDY"), kinds.count("SERIES")) == (2, 3, 5)
    assert len(FileSet(tmp_path / "DICOMDIR").find(SeriesInstanceUID="1.2.1.9")) == 1


def test_a_record_without_its_offsets_first_is_refused():
    with pytest.raises(ValueError, match="does not start with its offsets"):
        dicomdir._patch(bytearray(64), 1, 2)


def test_record_types_come_from_the_table():
    assert dicomdir.record_type("1.2.840.10008.5.1.4.1.1.104.1") == ("ENCAP DOC", False)
    assert dicomdir.record_type("1.2.840.10008.5.1.4.1.1.481.5") == ("RT PLAN", False)
    assert dicomdir.record_type("1.2.840.10008.5.1.4.38.1") == ("HANGING PROTOCOL", True)
    assert dicomdir.record_type("1.2.840.10008.5.1.4.1.1.2") == ("IMAGE", False)
