"""Export to CD and USB (app.media.export) of objects that are not images: the DICOMDIR gives
each the directory record of PS3.3 F.5 — KEY OBJECT DOC, ENCAP DOC, RT STRUCTURE SET, RT
PLAN, RT DOSE, WAVEFORM (and IMAGE for the CT they refer to) — under a SERIES record of its
modality, with the keys F.5 requires copied from the instance. Checked by dicom3tools
dciodvfy (the DICOMDIR and every object: errors fail), DCMTK dcmdump, pydicom reading the
record offsets, and the medium read back by app.media.medium. The ISO image is read with
isoinfo, so that the file-level checks do not depend on our own reader."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.media.export import ExportOptions, ExportReport, Item, export
from app.media.medium import open_medium
from conftest import ROOT, dcmtk, require

sys.path.insert(0, str(ROOT / "tests"))
from gsps_samples import save as save_sample  # noqa: E402
from media_samples import new_study, rt_dose, study_objects  # noqa: E402

pytestmark = pytest.mark.peers

# the Directory Record Type (PS3.3 F.5) of each object, by its Modality
RECORD_TYPES = {"CT": "IMAGE", "KO": "KEY OBJECT DOC", "DOC": "ENCAP DOC", "RTSTRUCT": "RT STRUCTURE SET",
                "RTPLAN": "RT PLAN", "RTDOSE": "RT DOSE", "ECG": "WAVEFORM"}
# the Type 1 and Type 2 keys of each record (PS3.3 Tables F.5-4 ff.), copied from the instance
RECORD_KEYS = {
    "IMAGE": ("InstanceNumber",),
    "KEY OBJECT DOC": ("InstanceNumber", "ContentDate", "ContentTime", "ConceptNameCodeSequence"),
    "ENCAP DOC": ("InstanceNumber", "ContentDate", "ContentTime", "DocumentTitle", "ConceptNameCodeSequence",
                  "MIMETypeOfEncapsulatedDocument"),
    "RT STRUCTURE SET": ("InstanceNumber", "StructureSetLabel", "StructureSetDate", "StructureSetTime"),
    "RT PLAN": ("InstanceNumber", "RTPlanLabel", "RTPlanDate", "RTPlanTime"),
    "RT DOSE": ("InstanceNumber", "DoseSummationType"),
    "WAVEFORM": ("InstanceNumber", "ContentDate", "ContentTime"),
}
PROFILES = {"STD-GEN-USB-J2K": "stick", "STD-GEN-CD": "records.iso"}


@dataclass
class Exported:
    profile: str
    volume: Path  # the USB folder or the ISO image
    report: ExportReport
    objects: dict  # Modality -> the dataset exported
    files: dict  # File ID ("/"-separated, upper case; the DICOMDIR "DICOMDIR") -> the file, or its copy from the ISO


def _items(folder: Path, datasets) -> list[Item]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, ds in enumerate(datasets):
        path = save_sample(ds, folder / f"{i}.dcm")
        out.append(Item(str(path), str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.StudyInstanceUID),
                        str(ds.SeriesInstanceUID)))
    return out


def _iso_files(iso: Path, out: Path) -> dict[str, Path]:
    """Every file of the ISO image, extracted with isoinfo (ISO 9660 names: ".;1" dropped)."""
    isoinfo = require("isoinfo")
    names = subprocess.run([isoinfo, "-f", "-i", str(iso)], capture_output=True, text=True, check=True).stdout
    files = {}
    for name in (n for n in names.splitlines() if n.endswith(";1")):
        file_id = re.sub(r"\.?;1$", "", name).lstrip("/").upper()
        data = subprocess.run([isoinfo, "-i", str(iso), "-x", name], capture_output=True, check=True).stdout
        local = out / file_id.replace("/", "_")
        local.write_bytes(data)
        files[file_id] = local
    return files


@pytest.fixture(scope="module", params=list(PROFILES))
def exported(request, tmp_path_factory) -> Exported:
    tmp = tmp_path_factory.mktemp(request.param.lower())
    objects = study_objects()
    destination = tmp / PROFILES[request.param]
    report = export(_items(tmp / "in", objects.values()), ExportOptions(request.param, destination))
    assert report.volumes == [destination], report.volumes
    if destination.is_dir():
        files = {p.relative_to(destination).as_posix().upper(): p for p in destination.rglob("*") if p.is_file()}
    else:
        (tmp / "iso").mkdir()
        files = _iso_files(destination, tmp / "iso")
    assert "DICOMDIR" in files, sorted(files)
    return Exported(request.param, destination, report, objects, files)


def _dciodvfy(path: Path) -> tuple[list[str], str]:
    """dciodvfy's errors, and its whole output."""
    run = subprocess.run([require("dciodvfy"), str(path)], capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    return [line for line in output.splitlines() if line.startswith("Error")], output


def _records(dicomdir: Path) -> tuple[list, dict[int, object]]:
    """The DICOMDIR's records and each one's parent (None at the root), by following the
    offsets of PS3.10 (a record's lower-level entity, its next sibling) from the root."""
    ds = pydicom.dcmread(dicomdir)
    records = list(ds.DirectoryRecordSequence)
    at = {r.seq_item_tell: r for r in records}
    parents: dict[int, object] = {}

    def walk(offset: int, parent) -> None:
        while offset:
            record = at[offset]
            assert id(record) not in parents, "the record offsets form a loop"
            parents[id(record)] = parent
            walk(record.get("OffsetOfReferencedLowerLevelDirectoryEntity", 0), record)
            offset = record.get("OffsetOfTheNextDirectoryRecord", 0)

    walk(ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity, None)
    assert len(parents) == len(records), "records the offsets do not reach"
    return records, parents


def _kind(record) -> str:
    return str(record.DirectoryRecordType).strip()


def _file_id(record) -> list[str]:
    value = record.ReferencedFileID
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def _codes(sequence) -> list[tuple[str, str, str]]:
    return [(str(i.CodeValue), str(i.CodingSchemeDesignator), str(i.CodeMeaning)) for i in sequence or []]


def _value(element):
    """A key's value to compare a record's with its instance's: code sequences as codes."""
    return _codes(element.value) if element.VR == "SQ" else str(element.value if element.value is not None else "")


def _item(item) -> tuple:
    """A content item, as far as the record's Content Sequence is concerned."""
    return (str(item.RelationshipType), str(item.ValueType), _codes(item.get("ConceptNameCodeSequence")),
            _codes(item.get("ConceptCodeSequence")), str(item.get("TextValue", "")))


def test_every_object_goes_on_the_medium(exported):
    report = exported.report
    assert not report.refused, f"{exported.profile}: refused {report.refused}"
    assert report.exported == len(exported.objects) and report.ok, (report.exported, report.verified)


def test_dciodvfy_finds_no_error_in_the_dicomdir_nor_in_any_object(exported):
    failures = {}
    for file_id, path in sorted(exported.files.items()):
        errors, output = _dciodvfy(path)
        if errors:
            failures[file_id] = output
    assert not failures, f"{exported.profile}: dciodvfy finds errors in " + "".join(
        f"\n--- {file_id} ---\n{output}" for file_id, output in failures.items())
    assert len(exported.files) == len(exported.objects) + 1, sorted(exported.files)  # every object, the DICOMDIR


def test_each_object_has_its_record_type_under_a_series_of_its_modality(exported):
    records, parents = _records(exported.files["DICOMDIR"])
    patients = [r for r in records if _kind(r) == "PATIENT"]
    studies = [r for r in records if _kind(r) == "STUDY"]
    assert len(patients) == 1 and len(studies) == 1, [_kind(r) for r in records]  # one patient, one study
    leaves = {str(r.ReferencedSOPInstanceUIDInFile): r for r in records if "ReferencedFileID" in r}
    ours = {str(ds.SOPInstanceUID) for ds in exported.objects.values()}
    problems = [f"a {_kind(r)} record references {uid}, which was not exported" for uid, r in leaves.items()
                if uid not in ours]
    for modality, ds in exported.objects.items():
        uid, expected = str(ds.SOPInstanceUID), RECORD_TYPES[modality]
        record = leaves.get(uid)
        if record is None:
            problems.append(f"{modality}: no record references {uid}")
            continue
        if _kind(record) != expected:
            problems.append(f"{modality}: a {_kind(record)!r} record, not {expected!r}")
        file_id = "/".join(_file_id(record)).upper()
        stored = pydicom.dcmread(exported.files[file_id])
        for key, value in (("ReferencedSOPClassUIDInFile", stored.SOPClassUID),
                           ("ReferencedSOPInstanceUIDInFile", stored.SOPInstanceUID),
                           ("ReferencedTransferSyntaxUIDInFile", stored.file_meta.TransferSyntaxUID)):
            if str(record.get(key, "")) != str(value):
                problems.append(f"{modality}: {key} is {record.get(key)!r}, the file {file_id} holds {value}")
        if str(stored.SOPClassUID) != str(ds.SOPClassUID) or str(stored.SOPInstanceUID) != uid:
            problems.append(f"{modality}: the record references {file_id}, which is another instance")
        for key in RECORD_KEYS[expected]:
            if key not in record:
                problems.append(f"{modality}: the {expected} record lacks {key} (PS3.3 F.5)")
            elif _value(record[key]) != _value(ds[key]):
                problems.append(f"{modality}: the {expected} record's {key} is {_value(record[key])!r}, "
                                f"the instance's {_value(ds[key])!r}")
        if expected == "ENCAP DOC" and record.get("MIMETypeOfEncapsulatedDocument") != "application/pdf":
            problems.append(f"DOC: MIME type {record.get('MIMETypeOfEncapsulatedDocument')!r} in the record")
        if expected == "KEY OBJECT DOC":
            # F.5.26: the record's Content Sequence holds all, and only, the root's HAS CONCEPT MOD items
            wanted = [_item(i) for i in ds.ContentSequence if i.RelationshipType == "HAS CONCEPT MOD"]
            held = [_item(i) for i in record.get("ContentSequence", [])]
            if held != wanted:
                problems.append(f"KO: the KEY OBJECT DOC record's Content Sequence holds {held}, not only the "
                                f"root's HAS CONCEPT MOD items {wanted}")
        series = parents[id(record)]
        if series is None or _kind(series) != "SERIES":
            problems.append(f"{modality}: the record's parent is {series and _kind(series)!r}, not a SERIES record")
            continue
        if series.get("Modality") != modality or series.get("SeriesInstanceUID") != ds.SeriesInstanceUID:
            problems.append(f"{modality}: under the SERIES record of {series.get('Modality')!r} "
                            f"{series.get('SeriesInstanceUID')}")
        study = parents[id(series)]
        if study is not studies[0] or study.StudyInstanceUID != ds.StudyInstanceUID:
            problems.append(f"{modality}: its SERIES record is not under the STUDY record of its study")
        elif parents[id(study)] is not patients[0] or patients[0].PatientID != ds.PatientID:
            problems.append(f"{modality}: its STUDY record is not under the PATIENT record of {ds.PatientID}")
    assert not problems, f"{exported.profile}:\n" + "\n".join(problems)


def test_dcmdump_reads_the_dicomdir_and_names_the_record_types(exported):
    run = subprocess.run([dcmtk("dcmdump"), str(exported.files["DICOMDIR"])], capture_output=True, text=True)
    assert run.returncode == 0 and "E:" not in run.stderr, run.stderr
    kinds = re.findall(r"\(0004,1430\) CS \[([A-Z ]+?) *\]", run.stdout)
    assert sorted(set(kinds)) == sorted({"PATIENT", "STUDY", "SERIES", *RECORD_TYPES.values()}), kinds
    assert "[application/pdf]" in run.stdout


def test_the_medium_imports_back(exported):
    with open_medium(exported.volume) as medium:
        assert not medium.scanned and not medium.problems and not medium.unindexed, \
            (medium.scanned, medium.problems, medium.unindexed)
        found = {i.sop_instance_uid: (se.modality, i.record_type, st.uid, p.patient_id)
                 for p, st, se, i in medium.instances()}
    assert found == {str(ds.SOPInstanceUID): (modality, RECORD_TYPES[modality], str(ds.StudyInstanceUID),
                                              str(ds.PatientID))
                     for modality, ds in exported.objects.items()}


def test_a_dose_grid_jpeg_2000_cannot_code_still_goes_on_a_j2k_medium(tmp_path):
    """Table 5-3 lists Explicit VR Little Endian for RT Dose beside JPEG 2000: a grid of fewer
    than 32 rows or columns (openjpeg's 6 resolution levels need 2^5 pixels a side) is
    written uncompressed, or coded some other lossless way, never left off the stick."""
    study = new_study()
    objects = study_objects(study)
    dose = rt_dose(study, objects["RTPLAN"], objects["CT"], rows=12, cols=16)
    stick = tmp_path / "stick"
    report = export(_items(tmp_path / "in", [objects["CT"], dose]), ExportOptions("STD-GEN-USB-J2K", stick))
    assert not report.refused and report.exported == 2 and report.ok, report.refused
    records, _ = _records(stick / "DICOMDIR")
    record = next(r for r in records if str(r.get("ReferencedSOPInstanceUIDInFile", "")) == str(dose.SOPInstanceUID))
    assert _kind(record) == "RT DOSE"
    path = stick.joinpath(*_file_id(record))
    stored = pydicom.dcmread(path)
    assert record.ReferencedTransferSyntaxUIDInFile == stored.file_meta.TransferSyntaxUID
    assert np.array_equal(stored.pixel_array, dose.pixel_array)  # lossless whatever the syntax
    for checked in (path, stick / "DICOMDIR"):
        errors, output = _dciodvfy(checked)
        assert not errors, output
