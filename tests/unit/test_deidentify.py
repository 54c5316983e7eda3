"""De-identification (spec §5.5.1, Tables 5-6 and 5-7): every standard attribute of the table at
each level against its row, UIDs mapped alike across the files of an export (references of a
presentation state follow the image), private blocks per level, the marks of a de-identified
instance, warnings, the UID map kept as CSV, and a de-identified CT that dciodvfy accepts."""

from __future__ import annotations

import copy
import subprocess
import sys

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from app.dicom.uids import is_valid_uid
from app.media.deidentify import LEVELS, METHOD_CODES, UidMap, deidentify, rules
from app.resources import read_tsv
from conftest import ROOT, require

sys.path.insert(0, str(ROOT / "tests" / "peers"))
from peerutil import ct_dataset, save  # noqa: E402

GSPS = "1.2.840.10008.5.1.4.1.1.11.1"
OVERLAYS = range(0x6000, 0x6020, 2)


def _table() -> list[tuple[int, dict[str, str], str]]:
    """(tag, {level: Yes|No}, action) for each tag Table 5-6 names, overlay groups expanded;
    the curve groups as the two elements the test dataset has of group 5000."""
    rows = []
    for tag, _name, full, reduced, service, action, _comment in read_tsv("spec", "deidentification.tsv"):
        answers = dict(zip(LEVELS, (full, reduced, service)))
        group, element = tag.strip("()").split(",")
        if group == "50xx":
            tags = [0x50000005, 0x50003000]
        elif group == "60xx":
            tags = [(g << 16) | int(element, 16) for g in OVERLAYS]
        else:
            tags = [int(group + element, 16)]
        rows += [(t, answers, action) for t in tags]
    return rows


def _value(vr: str):
    """A plausible value of ``vr``."""
    texts = {"AE": "STATION1", "AS": "045Y", "CS": "VALUE", "DA": "20240102", "DS": "1.5",
             "DT": "20240102101010", "IS": "3", "LO": "Some Text", "LT": "Some text", "PN": "Doe^John",
             "SH": "TEXT", "ST": "Some text", "TM": "101010", "UC": "text", "UR": "http://example.org",
             "UT": "Some text"}
    if vr in texts:
        return texts[vr]
    if vr == "UI":
        return generate_uid()
    if vr in ("FL", "FD"):
        return 1.5
    if vr in ("SL", "SS", "SV", "UL", "US", "UV"):
        return 1
    if vr == "AT":
        return 0x00100010
    if vr == "SQ":
        item = Dataset()
        item.CodeValue = "C1"
        item.ReferencedSOPClassUID = CTImageStorage
        item.ReferencedSOPInstanceUID = generate_uid()
        return Sequence([item])
    return b"\x01\x02"  # OB, OW, UN...


def _every_attribute() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    for tag, _answers, _action in _table():
        vr = dictionary_VR(tag).split(" or ")[0]
        if tag >> 16 == 0x0002:
            continue
        ds.add_new(tag, vr, _value(vr))
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for g in OVERLAYS:  # the rest of a real overlay plane
        ds.add_new((g << 16) | 0x0010, "US", 4)
        ds.add_new((g << 16) | 0x0011, "US", 4)
    return ds


def _element(ds: Dataset, tag: int):
    return (ds.file_meta if tag >> 16 == 0x0002 else ds).get(tag)


@pytest.mark.parametrize("level", LEVELS)
def test_every_attribute_of_table_5_6(level):
    before = _every_attribute()
    after = copy.deepcopy(before)
    uids = UidMap()
    deidentify(after, level, uids)
    for tag, answers, action in _table():
        old, new = _element(before, tag), _element(after, tag)
        what = f"{level}: ({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword_for_tag(tag)} {action}"
        if answers[level] == "No":
            assert new == old, what
            continue
        if action == "X":
            assert new is None, what
        elif action == "Z":
            assert new is not None and new.value in ("", None, b""), what
        elif action == "D":
            assert new.value and new.value != old.value, what
        elif action == "U" and old.VR == "SQ":
            inside, original = new.value[0].ReferencedSOPInstanceUID, old.value[0].ReferencedSOPInstanceUID
            assert inside == uids.new(original) != original, what
            assert new.value[0].ReferencedSOPClassUID == CTImageStorage, what
        else:
            assert action == "U", what
            assert new.value == uids.new(old.value) != old.value and is_valid_uid(new.value), what
    if level != "service":  # an overlay plane without its data goes whole; the curve groups too
        assert not [t for t in after.keys() if t.group in OVERLAYS or 0x5000 <= t.group < 0x5020]
    assert after.SOPClassUID == CTImageStorage
    assert after.file_meta.MediaStorageSOPClassUID == CTImageStorage
    assert after.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_rules_repeat_the_overlay_rows_for_every_overlay_group():
    full = rules("full")
    assert all(full.actions[(g << 16) | 0x3000] == "X" for g in OVERLAYS)
    assert rules("service").private_kept is None
    with pytest.raises(ValueError):
        rules("partial")


def _image() -> Dataset:
    ds = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=8)
    ds.FrameOfReferenceUID = generate_uid()
    return ds


def _presentation_state(image: Dataset) -> Dataset:
    ps = Dataset()
    ps.SOPClassUID = GSPS
    ps.SOPInstanceUID = generate_uid()
    ps.StudyInstanceUID = image.StudyInstanceUID
    ps.SeriesInstanceUID = generate_uid()
    ps.PatientName, ps.PatientID = image.PatientName, image.PatientID
    ref = Dataset()
    ref.ReferencedSOPClassUID = image.SOPClassUID
    ref.ReferencedSOPInstanceUID = image.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = image.SeriesInstanceUID
    series.ReferencedImageSequence = [ref]
    ps.ReferencedSeriesSequence = [series]
    return ps


def test_full_maps_references_to_the_images_new_uids_whichever_file_comes_first():
    image = _image()
    ps = _presentation_state(image)
    original = copy.deepcopy(image)
    uids = UidMap()
    deidentify(ps, "full", uids)  # the reference before the image it points at
    deidentify(image, "full", uids)
    series = ps.ReferencedSeriesSequence[0]
    assert series.ReferencedImageSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID != original.SOPInstanceUID
    assert series.SeriesInstanceUID == image.SeriesInstanceUID != original.SeriesInstanceUID
    assert ps.StudyInstanceUID == image.StudyInstanceUID != original.StudyInstanceUID
    assert image.FrameOfReferenceUID != original.FrameOfReferenceUID
    assert series.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage
    assert (image.SOPClassUID, ps.SOPClassUID) == (CTImageStorage, GSPS)
    assert dict(uids.items())[original.SOPInstanceUID] == image.SOPInstanceUID


@pytest.mark.parametrize("level", ["reduced", "service"])
def test_reduced_and_service_keep_uids(level):
    image = _image()
    ps = _presentation_state(image)
    original = copy.deepcopy(ps)
    deidentify(ps, level, UidMap())
    assert ps.SOPInstanceUID == original.SOPInstanceUID
    assert ps.ReferencedSeriesSequence == original.ReferencedSeriesSequence


def test_one_patient_one_pseudonym():
    uids = UidMap()
    a, b, other = _image(), _image(), _image()
    other.PatientID = "SOMEONE ELSE"
    for ds in (a, b, other):
        deidentify(ds, "full", uids)
    assert a.PatientID == b.PatientID != other.PatientID
    assert a.PatientID.startswith("ANON") and "GEN001" not in a.PatientID
    assert a.PatientName == "ANONYMOUS"
    given = _image()
    deidentify(given, "reduced", uids, patient_name="Study^Subject^7", patient_id="SUBJ7")
    assert (given.PatientName, given.PatientID) == ("Study^Subject^7", "SUBJ7")


def _private(block: int = 0x10) -> Dataset:
    """A Siemens CSA header block at ``block`` of group 0029, and another vendor's block."""
    ds = _image()
    ds.add_new((0x0029 << 16) | block, "LO", "SIEMENS CSA HEADER")
    start = 0x00290000 | (block << 8)
    ds.add_new(start | 0x08, "CS", "IMAGE NUM 4")
    ds.add_new(start | 0x10, "OB", b"SV10\4\3\2\1")
    ds.add_new(start | 0x0C, "LO", "not in Table 5-7")
    other = ds.private_block(0x0029, "ACME 1.1", create=True)
    other.add_new(0x01, "LO", "Doe^John's private note")
    ds.private_block(0x0009, "OTHER VENDOR", create=True).add_new(0x02, "SH", "X")
    return ds


@pytest.mark.parametrize("block", [0x10, 0x12])
def test_private_attributes_per_level(block):
    full, reduced, service = (_private(block) for _ in LEVELS)
    for ds, level in zip((full, reduced, service), LEVELS):
        before = copy.deepcopy(ds)
        deidentify(ds, level, UidMap())
        if level == "service":
            assert [e for e in ds if e.tag.is_private] == [e for e in before if e.tag.is_private]
    assert not [t for t in full.keys() if t.is_private]
    start = 0x00290000 | (block << 8)
    kept = {t for t in reduced.keys() if t.is_private}
    assert kept == {0x00290000 | block, start | 0x08, start | 0x10}
    assert reduced[start | 0x10].value == b"SV10\4\3\2\1"


@pytest.mark.parametrize("level", LEVELS)
def test_marked_as_deidentified(level):
    ds = _image()
    deidentify(ds, level, UidMap())
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == f"Lightbox {level.capitalize()} (spec Table 5-6)"
    codes = [(c.CodingSchemeDesignator, c.CodeValue) for c in ds.DeidentificationMethodCodeSequence]
    expected = {"full": ["113100"], "reduced": ["113100", "113108", "113106", "113110"],
                "service": ["113100", "113111"]}[level]
    assert codes == [("DCM", v) for v in expected]
    assert [v for v, _meaning in METHOD_CODES[level]] == expected


def test_a_second_deidentification_adds_to_the_first():
    ds = _image()
    deidentify(ds, "service", UidMap())
    deidentify(ds, "full", UidMap())
    assert list(ds.DeidentificationMethod) == ["Lightbox Service (spec Table 5-6)", "Lightbox Full (spec Table 5-6)"]
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113111"]


def test_warnings():
    ds = _image()
    assert deidentify(copy.deepcopy(ds), "full", UidMap()).warnings == []
    ds.BurnedInAnnotation = "YES"
    warnings = deidentify(ds, "service", UidMap()).warnings
    assert warnings == ["Burned In Annotation is YES: the pixels may show the patient's name"]
    sr = Dataset()
    sr.ContentSequence = [Dataset()]
    assert "Content Sequence removed" in deidentify(sr, "full", UidMap()).warnings[0]


def test_uid_map_kept_as_csv(tmp_path):
    uids = UidMap()
    originals = [generate_uid() for _ in range(3)]
    news = [uids.new(u) for u in originals]
    assert uids.new(originals[0]) == news[0] and len(set(news)) == 3
    assert uids.new(originals[1] + "\0") == news[1]  # a UID's padding is no part of it
    name = uids.pseudonym("PAT,1")
    uids.save(tmp_path / "map.csv")
    again = UidMap.load(tmp_path / "map.csv")
    assert again.items() == uids.items() == list(zip(originals, news))
    assert again.pseudonym("PAT,1") == name
    assert all(n.startswith("2.25.") for n in news)  # Lightbox's UIDs, no product's root


def _valid_ct(study: str, series: str, sop: str) -> Dataset:
    """A CT Image dciodvfy accepts, with identifying attributes, an overlay and Siemens
    private blocks."""
    ds = ct_dataset(study, series, sop, 1, size=16)
    ds.ReferringPhysicianName = "Who^Sent"
    ds.PatientPosition = "HFS"
    ds.Laterality = ""
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "Lightbox Tests"
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.InstitutionName = "Saint Somewhere"
    ds.StationName = "CT01"
    ds.OperatorsName = "Op^Erator"
    ds.DeviceSerialNumber = "SN1234"
    ds.SeriesDate, ds.SeriesTime = "20240102", "101500"
    ds.ContentDate, ds.ContentTime = "20240102", "101600"
    ds.AcquisitionDate, ds.AcquisitionTime = "20240102", "101530"
    ds.PatientAge, ds.PatientWeight = "054Y", 70
    for element, vr, value in ((0x0010, "US", 16), (0x0011, "US", 16), (0x0040, "CS", "G"),
                               (0x0050, "SS", [1, 1]), (0x0100, "US", 1), (0x0102, "US", 0),
                               (0x3000, "OW", b"\xff" * 32)):
        ds.add_new(0x60000000 | element, vr, value)
    csa = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    csa.add_new(0x08, "CS", "IMAGE NUM 4")
    csa.add_new(0x10, "OB", b"SV10\4\3\2\1")
    ds.private_block(0x0029, "ACME 1.1", create=True).add_new(0x01, "LO", "note")
    return ds


def _dciodvfy_errors(path) -> list[str]:
    run = subprocess.run([require("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("level", ["full", "reduced"])
def test_deidentified_ct_passes_dciodvfy(tmp_path, level):
    source = save(_valid_ct(generate_uid(), generate_uid(), generate_uid()), tmp_path / "ct.dcm")
    assert _dciodvfy_errors(source) == []  # so every error below would be de-identification's
    ds = pydicom.dcmread(source)
    original = copy.deepcopy(ds)
    deidentify(ds, level, UidMap())
    ds.save_as(tmp_path / "out.dcm", enforce_file_format=True)
    assert _dciodvfy_errors(tmp_path / "out.dcm") == []
    back = pydicom.dcmread(tmp_path / "out.dcm")
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert (back.SOPInstanceUID != original.SOPInstanceUID) == (level == "full")
    assert back.PatientName != original.PatientName and "InstitutionName" not in back
    assert (back.StudyDate == "") == (level == "full")
    assert 0x60000010 not in back and back.PixelData == original.PixelData
