"""Export to CD/DVD/USB (app.media.export, spec §5) checked by real validators: every
DICOMDIR and object by dicom3tools dciodvfy (errors fail), the ISO image by isoinfo, the
DICOMDIR read back by DCMTK (dcmdump, and dcmmkdir re-scanning the folder); JPEG 2000 decoded
and compared with the originals; de-identified objects keep their references; a set larger
than the medium is split into volumes; a USB stick that holds a File-set is added to (FSU)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, generate_uid

from app.dicom.uids import IMPLEMENTATION_CLASS_UID
from app.media.export import ExportError, ExportOptions, Item, export
from app.media.medium import open_medium
from conftest import ROOT, lightbox, require

sys.path.insert(0, str(ROOT / "tests"))
from gsps_samples import gsps, image  # noqa: E402
from gsps_samples import save as save_sample  # noqa: E402
from mammo_samples import cad_report, finding, mammogram, tomo_volume  # noqa: E402

pytestmark = pytest.mark.peers


def _items(tmp_path, datasets) -> list[Item]:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    out = []
    for i, ds in enumerate(datasets):
        path = folder / f"{i}.dcm"
        if getattr(ds, "file_meta", None) is not None and "TransferSyntaxUID" in ds.file_meta \
                and ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.save_as(path, enforce_file_format=True)
        else:
            save_sample(ds, path)
        out.append(Item(str(path), str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.StudyInstanceUID),
                        str(ds.SeriesInstanceUID)))
    return out


def _valid_ct(ds, patient) -> None:
    """The sample CT made a complete CT Image (dciodvfy), of ``patient``'s."""
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        setattr(ds, keyword, patient.get(keyword))
    ds.pop("SpecificCharacterSet", None)
    ds.ImageType, ds.Manufacturer, ds.Laterality = ["ORIGINAL", "PRIMARY", "AXIAL"], "Lightbox tests", ""
    ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, 0]
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = generate_uid(), ""
    ds.KVP, ds.AcquisitionNumber, ds.SliceThickness, ds.PatientPosition = 120, 1, 1.0, "HFS"


def _study(study=None):
    """A mammography study (2 views, a tomosynthesis volume), a CT series (one image stored
    in JPEG 2000) and a presentation state on the CT: every object complete for dciodvfy."""
    study = study or generate_uid()
    views = [mammogram("L", "CC", study=study), mammogram("R", "CC", study=study)]
    ct = [image(study=study, series=(series := generate_uid())) for _ in range(2)]
    for n, ds in enumerate(ct, 1):
        _valid_ct(ds, views[0])
        ds.InstanceNumber = n
    ct[1].FrameOfReferenceUID = ct[0].FrameOfReferenceUID
    stored_j2k = ct[1].copy()
    stored_j2k.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    ps = gsps([ct[0]])
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "StudyDate", "StudyTime", "StudyID", "AccessionNumber"):
        setattr(ps, keyword, ct[0].get(keyword))
    ps.StudyInstanceUID, ps.Laterality = study, ""
    sr = cad_report(study, [finding("F-01775", "SRT", "Calcification Cluster", image=str(views[0].SOPInstanceUID),
                                    points=[10.0, 10.0, 20.0, 10.0, 20.0, 20.0, 10.0, 20.0, 10.0, 10.0])],
                    image_series=str(views[0].SeriesInstanceUID))
    return [*views, tomo_volume("L", "CC", study=study), ct[0], stored_j2k, ps, sr], series


def _errors(path) -> list[str]:
    run = subprocess.run([require("dciodvfy"), str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def _medium_files(out, tmp_path) -> dict[str, bytes]:
    """Every file of the exported medium, read the way a reader would (no mounting)."""
    with open_medium(out) as medium:
        assert not medium.scanned and not medium.problems and not medium.unindexed
        files = {inst.file_id: medium.read(inst.file_id) for *_, inst in medium.instances()}
        files["DICOMDIR"] = medium.read(next(f for f in medium.source.files() if f.upper() == "DICOMDIR"))
    return files


def test_std_gen_cd_iso_passes_the_validators_and_holds_the_originals(tmp_path):
    datasets, _ = _study()
    originals = {str(d.SOPInstanceUID): pydicom.dcmread(i.path) for d, i in zip(datasets, _items(tmp_path, datasets))}
    items = _items(tmp_path, datasets)
    report = export(items, ExportOptions("STD-GEN-CD", tmp_path / "cd.iso", fileset_id="Patient cd 1"))
    assert report.ok and report.exported == 7 and not report.refused, (report.refused, report.verified)
    iso = report.volumes[0]
    listing = subprocess.run(["isoinfo", "-l", "-i", str(iso)], capture_output=True, text=True, check=True).stdout
    names = re.findall(r"\]\s+(\S+)\s*$", listing, re.M)
    assert "DICOMDIR.;1" in names
    for name in names:  # ISO 9660 level 1: upper case, 8 characters
        if name not in (".", ".."):
            assert re.fullmatch(r"[A-Z0-9_]{1,8}(\.;1)?", name), name
    depth = max(len(d.split("/")) - 1 for d in re.findall(r"Directory listing of (\S+)", listing))
    assert depth <= 8
    out = tmp_path / "read"
    out.mkdir()
    for file_id, data in _medium_files(iso, tmp_path).items():
        (out / file_id.replace("/", "_")).write_bytes(data)
    dicomdir = out / "DICOMDIR"
    assert not _errors(dicomdir)
    dump = subprocess.run([require("dcmdump"), str(dicomdir)], capture_output=True, text=True, check=True).stdout
    assert "[PATIENT CD 1]" in dump  # the File-set ID, upper case (CS)
    kinds = set(re.findall(r"\(0004,1430\) CS \[([A-Z ]+)\]", dump))
    assert {"PATIENT", "STUDY", "SERIES", "IMAGE", "PRESENTATION", "SR DOCUMENT"} <= kinds
    assert "IconImageSequence" in dump
    for path in out.iterdir():
        ds = pydicom.dcmread(path)
        assert ds.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID  # Table 5-1
        if path.name == "DICOMDIR":
            continue
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # Table 5-4: uncompressed
        assert not _errors(path), (path, _errors(path))
        if "PixelData" in ds:
            assert np.array_equal(ds.pixel_array, originals[str(ds.SOPInstanceUID)].pixel_array)


def test_usb_j2k_lossless_pixels_identical_dcmmkdir_reads_it_and_a_second_export_adds_to_it(tmp_path):
    datasets, _ = _study()
    items = _items(tmp_path, datasets)
    stick = tmp_path / "stick"
    report = export(items, ExportOptions("STD-GEN-USB-J2K", stick))
    assert report.ok and report.volumes == [stick] and report.exported == 7
    by_uid = {str(d.SOPInstanceUID): d for d in datasets}
    for f in (p for p in stick.rglob("*") if p.is_file() and p.name != "DICOMDIR"):
        ds = pydicom.dcmread(f)
        if "PixelData" in ds:
            assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless  # Table 5-3
            original = by_uid[str(ds.SOPInstanceUID)]
            assert np.array_equal(ds.pixel_array, original.pixel_array)  # lossless: identical
        assert not _errors(f), (f, _errors(f))
    rescan = subprocess.run([require("dcmmkdir"), "--general-dvd-j2k", "--recurse", "--input-directory", str(stick),
                             "--output-file", str(tmp_path / "DICOMDIR.dcmtk"), "PT000000"],
                            capture_output=True, text=True)
    assert rescan.returncode == 0, rescan.stderr  # DCMTK accepts every file of the File-set

    more, _ = _study()  # FSU: the stick already holds a File-set; a second export adds to it
    (tmp_path / "b").mkdir()
    report = export(_items(tmp_path / "b", more), ExportOptions("STD-GEN-USB-J2K", stick))
    assert report.ok
    with open_medium(stick) as medium:
        studies = {st.uid for p in medium.records for st in p.studies}
        assert studies == {str(datasets[0].StudyInstanceUID), str(more[0].StudyInstanceUID)}
        assert len(list(medium.instances())) == 14
    assert not _errors(stick / "DICOMDIR")


def test_a_set_larger_than_the_medium_is_split_into_volumes_studies_whole(tmp_path):
    studies = [_study()[0] for _ in range(3)]
    items = _items(tmp_path, [d for s in studies for d in s])
    sizes = {}
    for i in items:
        sizes.setdefault(i.study, 0)
        sizes[i.study] += len(open(i.path, "rb").read())
    capacity = int(max(sizes.values()) * 1.3)  # one study fits, two do not
    report = export(items, ExportOptions("STD-GEN-DVD", tmp_path / "set.iso", capacity=capacity))
    assert report.ok and len(report.volumes) == 3, report.volumes
    assert [v.name for v in report.volumes] == ["set-1.iso", "set-2.iso", "set-3.iso"]
    seen = []
    for volume in report.volumes:
        with open_medium(volume) as medium:
            uids = {st.uid for p in medium.records for st in p.studies}
            assert len(uids) == 1  # a study is never cut across two media when it fits one
            seen += list(uids)
    assert sorted(seen) == sorted(sizes)
    with pytest.raises(ExportError, match="does not fit a medium"):
        export(items, ExportOptions("STD-GEN-CD", tmp_path / "tiny.iso", capacity=1000))


def test_a_de_identified_export_keeps_its_references_and_passes_dciodvfy(tmp_path):
    datasets, _ = _study()
    ct, ps = datasets[3], datasets[5]
    items = _items(tmp_path, datasets)
    mapping = tmp_path / "map.csv"
    report = export(items, ExportOptions("STD-GEN-CD", tmp_path / "anon.iso", deidentify="full", mapping=mapping,
                                         patient_name="ANON^PATIENT"))
    assert report.ok, report.verified
    text = mapping.read_text()
    assert str(ct.SOPInstanceUID) in text and str(ct.StudyInstanceUID) in text
    new = {}
    for line in text.splitlines()[1:]:
        parts = line.split(",")
        new[parts[0]] = parts[1]
    files = _medium_files(report.volumes[0], tmp_path)
    found = {}
    for file_id, data in files.items():
        path = tmp_path / ("x_" + file_id.replace("/", "_"))
        path.write_bytes(data)
        ds = pydicom.dcmread(path)
        if file_id == "DICOMDIR":
            assert not _errors(path)
            continue
        assert ds.PatientIdentityRemoved == "YES" and str(ds.PatientName) == "ANON^PATIENT"
        assert ds.PatientID != datasets[0].PatientID and str(ds.SOPInstanceUID) not in {str(d.SOPInstanceUID)
                                                                                       for d in datasets}
        assert not _errors(path), (file_id, _errors(path))
        found[str(ds.SOPInstanceUID)] = ds
    new_ps = found[new[str(ps.SOPInstanceUID)]]
    ref = new_ps.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert ref == new[str(ct.SOPInstanceUID)] and ref in found  # the state still points at its image


def test_lightbox_export_of_an_archived_study(tmp_path):
    home = tmp_path / "home"
    datasets, _ = _study()
    items = _items(tmp_path, datasets)
    lightbox(home, "import", *[i.path for i in items])
    out = lightbox(home, "export", "--study", str(datasets[0].StudyInstanceUID), "--media", "cd",
                   "--out", str(tmp_path / "study.iso"))
    assert "done: 7 instances" in out.stdout and "read back and verified" in out.stdout, out.stdout
    assert "7 file(s) read back, all as written" in out.stdout
    again = tmp_path / "home2"  # the disc imported elsewhere, straight from the ISO image
    imported = lightbox(again, "import", str(tmp_path / "study.iso"))
    assert "imported 7, already present 0, rejected 0" in imported.stdout, imported.stdout
    usb = lightbox(home, "export", "--study", str(datasets[0].StudyInstanceUID), "--media", "usb", "--kind", "patient",
                   "--deidentify", "reduced", "--out", str(tmp_path / "usb"))
    assert "as STD-GEN-USB-J2K" in usb.stdout or "read back and verified" in usb.stdout, usb.stdout
    stored = [pydicom.dcmread(p) for p in (tmp_path / "usb").rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert len(stored) == 7 and all(d.PatientIdentityRemoved == "YES" for d in stored)
    assert {str(d.StudyInstanceUID) for d in stored} == {str(datasets[0].StudyInstanceUID)}  # reduced keeps UIDs
    assert any(d.file_meta.TransferSyntaxUID == JPEG2000Lossless for d in stored)  # patient: JPEG 2000
    bad = lightbox(home, "export", "--study", "1.2.3.4", "--out", str(tmp_path / "x.iso"), check=False)
    assert bad.returncode == 2 and "nothing to export" in bad.stderr
    cd_patient = lightbox(home, "export", "--study", str(datasets[0].StudyInstanceUID), "--media", "cd", "--kind",
                          "patient", "--out", str(tmp_path / "y.iso"), check=False)
    assert cd_patient.returncode == 2 and "no patient profile for cd" in cd_patient.stderr


def test_a_stick_whose_dicomdir_dcmmkdir_wrote_is_added_to_and_stays_valid(tmp_path):
    """FSU on another product's File-set: DCMTK's DICOMDIR read, its records and files kept,
    the new study joined to the patient already there, and the result valid for dciodvfy and
    dcmdump."""
    first, _ = _study()
    stick = tmp_path / "stick"
    (stick / "DICOM").mkdir(parents=True)
    for n, ds in enumerate(first[:2]):  # two mammograms, as a modality's CD would hold them
        save_sample(ds, stick / "DICOM" / f"IMG{n:05}")
    made = subprocess.run([require("dcmmkdir"), "--general-purpose", "--recurse", "--input-directory", str(stick),
                           "--fileset-id", "HOSPITAL_CD", "--output-file", str(stick / "DICOMDIR"), "DICOM"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    before = {p: p.read_bytes() for p in (stick / "DICOM").iterdir()}

    second, _ = _study()  # another study of the same patient
    for ds in second:
        ds.PatientID, ds.PatientName = first[0].PatientID, first[0].PatientName
    (tmp_path / "b").mkdir()
    report = export(_items(tmp_path / "b", second), ExportOptions("STD-GEN-USB-J2K", stick))
    assert report.ok and report.exported == 7, (report.refused, report.verified)
    assert {p: p.read_bytes() for p in (stick / "DICOM").iterdir()} == before  # their files untouched
    assert not _errors(stick / "DICOMDIR")
    dicomdir = pydicom.dcmread(stick / "DICOMDIR")
    kinds = [str(r.DirectoryRecordType) for r in dicomdir.DirectoryRecordSequence]
    assert kinds.count("PATIENT") == 1 and kinds.count("STUDY") == 2
    assert dicomdir.FileSetID == "HOSPITAL_CD"  # the File-set keeps its identity
    dump = subprocess.run([require("dcmdump"), str(stick / "DICOMDIR")], capture_output=True, text=True)
    assert dump.returncode == 0 and "DICOM\\IMG00000" in dump.stdout.replace("\\\\", "\\"), dump.stderr
    with open_medium(stick) as medium:
        assert not medium.problems and not medium.unindexed
        assert {i.sop_instance_uid for *_, i in medium.instances()} == {str(d.SOPInstanceUID) for d in first[:2] + second}


def test_a_stick_whose_dicomdir_cannot_be_read_is_left_as_it_was(tmp_path):
    datasets, _ = _study()
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00garbage")
    with pytest.raises(ExportError, match="cannot be read, so it cannot be added to"):
        export(_items(tmp_path, datasets), ExportOptions("STD-GEN-USB-J2K", stick))
    assert [p.name for p in stick.iterdir()] == ["DICOMDIR"]


def _uids(ds, found=None) -> list[tuple[str, str]]:
    """Every (keyword, UID) in ``ds``, at any depth."""
    found = [] if found is None else found
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _uids(item, found)
        elif elem.VR == "UI" and elem.value:
            for v in (elem.value if elem.VM > 1 else [elem.value]):
                found.append((elem.keyword, str(v)))
    return found


def test_a_full_de_identification_maps_every_reference_between_the_exported_objects(tmp_path):
    """KO, RT structure set / plan / dose, a segmentation and a CAD SR keep pointing at the
    exported images under their new UIDs, and no original instance, series, study or frame
    of reference UID is left anywhere in any file."""
    sys.path.insert(0, str(ROOT / "tests"))
    from media_samples import segmentation, study_objects
    objects = study_objects()
    objects["SEG"] = segmentation(objects["CT"], objects["CT"])
    views, _ = _study()
    datasets = [*objects.values(), views[0], views[-1]]  # a mammogram and the CAD SR on it
    originals = {v for d in datasets for k, v in _uids(d) if not k.endswith("ClassUID")
                 and k not in ("CodingSchemeUID", "TransferSyntaxUID")}
    report = export(_items(tmp_path, datasets), ExportOptions("STD-GEN-CD", tmp_path / "anon.iso", deidentify="full"))
    assert report.ok and report.exported == len(datasets), report.refused
    files = _medium_files(report.volumes[0], tmp_path)
    exported, raw = {}, {}
    for file_id, data in files.items():
        if file_id != "DICOMDIR":
            ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
            exported[str(ds.SOPInstanceUID)], raw[str(ds.SOPInstanceUID)] = ds, data
    frames = {str(d.FrameOfReferenceUID) for d in exported.values() if "FrameOfReferenceUID" in d}
    studies = {str(d.StudyInstanceUID) for d in exported.values()}  # RT refers to its study as an instance
    for uid, ds in exported.items():
        left = [(k, v) for k, v in _uids(ds) if v in originals]
        assert not left, (ds.Modality, left)  # nothing of the original identity is left
        for keyword, value in _uids(ds):
            if keyword == "ReferencedSOPInstanceUID":
                assert value in exported or value in studies, (ds.Modality, value)  # resolves on the disc
            if keyword in ("ReferencedFrameOfReferenceUID", "FrameOfReferenceUID"):
                assert value in frames, (ds.Modality, keyword, value)
        if ds.Modality != "SEG":  # the segmentation sample carries references, not a complete IOD
            path = tmp_path / f"{uid}.dcm"
            path.write_bytes(raw[uid])
            assert not _errors(path), (ds.Modality, _errors(path))


def test_a_stick_that_cannot_take_the_new_dicomdir_keeps_what_it_held(tmp_path):
    """A write that fails half-way (here the DICOMDIR cannot be replaced) takes back the files
    it copied: the stick is as it was, its File-set intact."""
    first, _ = _study()
    stick = tmp_path / "stick"
    assert export(_items(tmp_path, first), ExportOptions("STD-GEN-USB-J2K", stick)).ok
    before = {p: p.read_bytes() for p in stick.rglob("*") if p.is_file()}
    folders = {p for p in stick.rglob("*") if p.is_dir()}
    (stick / "DICOMDIR.part").mkdir()  # where the new DICOMDIR would be written first
    second, _ = _study()
    (tmp_path / "b").mkdir()
    with pytest.raises(ExportError, match="What the stick held before is still there"):
        export(_items(tmp_path / "b", second), ExportOptions("STD-GEN-USB-J2K", stick))
    assert {p: p.read_bytes() for p in stick.rglob("*") if p.is_file()} == before
    assert {p for p in stick.rglob("*") if p.is_dir()} == folders | {stick / "DICOMDIR.part"}
    with open_medium(stick) as medium:
        assert not medium.problems and not medium.unindexed and len(list(medium.instances())) == 7


def test_lightbox_export_in_the_design_form(tmp_path):
    """DESIGN.md's command-line contract: --iso FILE | --dir DIR, --profile, --anonymize and
    several studies after one --study."""
    home = tmp_path / "home"
    first, _ = _study()
    second, _ = _study()
    (tmp_path / "b").mkdir()
    paths = [i.path for i in _items(tmp_path, first) + _items(tmp_path / "b", second)]
    lightbox(home, "import", *paths)
    studies = [str(first[0].StudyInstanceUID), str(second[0].StudyInstanceUID)]
    lightbox(home, "export", "--iso", str(tmp_path / "two.iso"), "--profile", "STD-GEN-CD", "--study", *studies)
    with open_medium(tmp_path / "two.iso") as medium:
        assert {st.uid for p in medium.records for st in p.studies} == set(studies)
    lightbox(home, "export", "--dir", str(tmp_path / "stick"), "--anonymize", "full", "--study", *studies)
    written = [pydicom.dcmread(p) for p in (tmp_path / "stick").rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert len(written) == 14 and all(d.PatientIdentityRemoved == "YES" for d in written)
    assert any(d.file_meta.TransferSyntaxUID == JPEG2000Lossless for d in written)  # a stick: STD-GEN-USB-J2K
    wrong = lightbox(home, "export", "--dir", str(tmp_path / "x"), "--profile", "STD-GEN-CD", "--study", studies[0],
                     check=False)
    assert wrong.returncode == 2 and "STD-GEN-CD writes an ISO image: use --iso FILE" in wrong.stderr
