"""Media import (spec §5.2.1.2.1 "Browse Directory Information", §5.2.1.2.2 "Import into
Application"): a DICOMDIR written by DCMTK dcmmkdir, on a folder and inside an ISO 9660 image
(read without mounting), browsed — patients, studies, series, icon images — and imported
through the one store pipeline; damaged media read file by file, with every file that
cannot be read reported with the reason.

The ISO images are built with pycdlib (a dependency already): CI installs no genisoimage
or xorriso, and isoinfo comes with genisoimage."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pycdlib
import pytest
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from app.media.medium import import_medium, open_medium
from app.store.archive import Archive
from conftest import ls_json, run_dcmtk
from peerutil import ct_dataset, dataset_differences, read, save

pytestmark = pytest.mark.peers

SIZE = 32


def _image(study: str, series: str, number: int, series_number: int, patient: tuple[str, str]):
    ds = ct_dataset(study, series, generate_uid(), number, size=SIZE, series_number=series_number,
                    patient_name=patient[0], patient_id=patient[1])
    # bright top-left quadrant: the icon shows whether it was decoded the right way round
    pixels = np.full((SIZE, SIZE), 100, np.uint16)
    pixels[:SIZE // 2, :SIZE // 2] = 4000
    ds.PixelData = pixels.tobytes()
    return ds


def _write_files(root: Path) -> list[dict]:
    """Two patients with a study of two series of two CT images each, under ISO 9660 level 1
    names (upper case, at most 8 characters, no extension) as on a disc."""
    expected = []
    for p, patient in enumerate((("Media^Anna", "MED001"), ("Media^Bert", "MED002")), 1):
        study = generate_uid()
        for s in (1, 2):
            series = generate_uid()
            for n in (1, 2):
                ds = _image(study, series, n, s, patient)
                ds.StudyDescription = f"study of {patient[0]}"
                file_id = f"DICOM/PAT{p}/SER{s}/IMG{n:04d}"
                (root / file_id).parent.mkdir(parents=True, exist_ok=True)
                save(ds, root / file_id)
                expected.append(dict(file_id=file_id, patient=patient, study=study, series=series,
                                     sop=ds.SOPInstanceUID, number=n, series_number=s,
                                     description=ds.StudyDescription))
    return expected


def _dcmmkdir(root: Path, *extra: str) -> None:
    """DCMTK's DICOMDIR of everything under ROOT/DICOM: the CT/MR profile, with icon images
    (64x64, 8 bits, as that profile fixes them)."""
    run_dcmtk("dcmmkdir", "--ct-and-mr", "--add-icon-image", "--recurse", "--input-directory", str(root),
              "--output-file", str(root / "DICOMDIR"), *extra, "DICOM", check=True)
    assert (root / "DICOMDIR").stat().st_size > 0


@pytest.fixture(scope="module")
def medium_source(tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("medium") / "CDROM"
    root.mkdir()
    expected = _write_files(root)
    _dcmmkdir(root)
    return root, expected


@pytest.fixture
def medium(medium_source, tmp_path) -> tuple[Path, list[dict]]:
    """A copy of the medium to damage."""
    root, expected = medium_source
    copy = tmp_path / "CDROM"
    shutil.copytree(root, copy)
    return copy, expected


def _tree(m) -> dict:
    """The medium's records as {patient id: {study uid: {series uid: {sop: file id}}}}."""
    return {p.patient_id: {st.uid: {se.uid: {i.sop_instance_uid: i.file_id for i in se.instances}
                                    for se in st.series} for st in p.studies} for p in m.records}


def _expected_tree(expected: list[dict]) -> dict:
    out: dict = {}
    for e in expected:
        out.setdefault(e["patient"][1], {}).setdefault(e["study"], {}).setdefault(e["series"], {})[e["sop"]] = \
            e["file_id"]
    return out


def _import(home: Path, m, select=None):
    archive = Archive(home)
    try:
        summary = import_medium(archive.ingest, m, select)
    finally:
        archive.close()
    return summary


def _archived(home: Path) -> set[str]:
    return {r["SOPInstanceUID"] for r in ls_json(home)} if (home / "archive").exists() else set()


def _pack_iso(root: Path, out: Path, *, extensions: bool) -> Path:
    """ROOT as an ISO 9660 image: plain level 1 names (IMG0001.;1), or with Joliet and Rock
    Ridge names as well, as disc burners write them."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3 if extensions else None, rock_ridge="1.09" if extensions else None,
            vol_ident="LIGHTBOX")
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        rel = "/" + d.relative_to(root).as_posix()
        iso.add_directory(iso_path=rel, rr_name=d.name if extensions else None,
                          joliet_path=rel if extensions else None)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = "/" + f.relative_to(root).as_posix()
        iso.add_file(str(f), iso_path=rel + ".;1", rr_name=f.name if extensions else None,
                     joliet_path=rel if extensions else None)
    iso.write(str(out))
    iso.close()
    return out


def test_dcmmkdir_medium_is_browsed_and_imported(medium_source, tmp_path):
    root, expected = medium_source
    with open_medium(root) as m:
        assert not m.scanned and m.problems == [] and m.unindexed == []
        assert _tree(m) == _expected_tree(expected)
        by_sop = {e["sop"]: e for e in expected}
        for p in m.records:
            for st in p.studies:
                for se in st.series:
                    for i in se.instances:
                        e = by_sop[i.sop_instance_uid]
                        assert (p.name, p.patient_id) == e["patient"]
                        assert (st.date, st.description) == ("20240102", e["description"])
                        assert (se.modality, se.number) == ("CT", e["series_number"])
                        assert (i.number, i.record_type, i.sop_class_uid) == (e["number"], "IMAGE",
                                                                             "1.2.840.10008.5.1.4.1.1.2")
                        assert i.icon is not None and i.icon.shape == (64, 64) and i.icon.dtype == np.uint8
                        quadrants = [i.icon[:32, :32].mean(), i.icon[:32, 32:].mean(), i.icon[32:, :32].mean()]
                        assert quadrants[0] > 150 and max(quadrants[1:]) < 50, quadrants
        assert m.read(expected[0]["file_id"]) == (root / expected[0]["file_id"]).read_bytes()
        summary = _import(tmp_path / "home", m)
    assert (summary.imported, summary.present, summary.rejected) == (len(expected), 0, [])
    assert _archived(tmp_path / "home") == {e["sop"] for e in expected}
    # the DICOMDIR file itself names the medium too
    with open_medium(root / "DICOMDIR") as again:
        assert _import(tmp_path / "home", again).present == len(expected)


@pytest.mark.parametrize("extensions", [False, True], ids=["iso9660", "joliet-rockridge"])
def test_iso_image_is_read_without_mounting(medium_source, tmp_path, extensions):
    root, expected = medium_source
    # a name that says nothing: the image is recognised by its content
    image = _pack_iso(root, tmp_path / "disc.img", extensions=extensions)
    with open_medium(image) as m:
        assert not m.scanned and m.problems == [] and m.unindexed == []
        assert _tree(m) == _expected_tree(expected)
        assert all(i.icon is not None for *_, i in m.instances())
        summary = _import(tmp_path / "home", m)
    assert (summary.imported, summary.rejected) == (len(expected), [])
    home = tmp_path / "home"
    rows = {r["SOPInstanceUID"]: r for r in ls_json(home)}
    assert set(rows) == {e["sop"] for e in expected}
    for e in expected:  # the instances of the image, not something like them
        stored = read(home / "archive" / rows[e["sop"]]["path"])
        assert dataset_differences(read(root / e["file_id"]), stored) == []


def test_truncated_dicomdir_is_replaced_by_reading_every_file(medium, tmp_path):
    root, expected = medium
    dicomdir = root / "DICOMDIR"
    dicomdir.write_bytes(dicomdir.read_bytes()[:dicomdir.stat().st_size // 2])
    with open_medium(root) as m:
        assert m.scanned
        assert [f for f, _ in m.problems] == ["DICOMDIR"]
        assert "truncated" in m.problems[0][1]
        assert _tree(m) == _expected_tree(expected)  # the hierarchy, read from the files
        assert sorted(m.unindexed) == sorted(e["file_id"] for e in expected)
        summary = _import(tmp_path / "home", m)
    assert summary.imported == len(expected)
    assert [f for f, _ in summary.rejected] == ["DICOMDIR"]
    assert _archived(tmp_path / "home") == {e["sop"] for e in expected}


def test_damaged_medium_imports_what_is_readable_and_says_why_not_the_rest(medium, tmp_path):
    root, expected = medium
    deleted, cut = expected[1], expected[5]
    (root / deleted["file_id"]).unlink()
    data = (root / cut["file_id"]).read_bytes()
    (root / cut["file_id"]).write_bytes(data[:-1000])  # a bad sector's worth of pixel data gone
    (root / "DICOM" / "JUNK").write_bytes(np.random.default_rng(1).bytes(5000))
    (root / "DICOM" / "EMPTY").write_bytes(b"")
    # instances the DICOMDIR does not know: one written after it, one without preamble
    # (a bare data set in Implicit VR), and one cut short
    extra_series = generate_uid()
    extra = _image(expected[0]["study"], extra_series, 1, 3, expected[0]["patient"])
    save(extra, root / "DICOM" / "PAT1" / "LATE")
    bare = _image(expected[0]["study"], extra_series, 2, 3, expected[0]["patient"])
    save(bare, tmp_path / "bare.dcm", ImplicitVRLittleEndian)
    raw = (tmp_path / "bare.dcm").read_bytes()
    (root / "DICOM" / "PAT1" / "BARE").write_bytes(raw[raw.index(b"\x08\x00\x05\x00"):])
    short = _image(expected[0]["study"], extra_series, 3, 3, expected[0]["patient"])
    save(short, tmp_path / "short.dcm")
    (root / "DICOM" / "PAT1" / "SHORT").write_bytes((tmp_path / "short.dcm").read_bytes()[:-700])

    with open_medium(root) as m:
        assert m.scanned  # the DICOMDIR names a file that is not there
        problems = dict(m.problems)
        assert "not on the medium" in problems[deleted["file_id"]]
        assert "not a DICOM file" in problems["DICOM/JUNK"]
        assert "empty" in problems["DICOM/EMPTY"]
        assert "truncated" in problems["DICOM/PAT1/SHORT"] and "(7FE0,0010)" in problems["DICOM/PAT1/SHORT"]
        assert sorted(m.unindexed) == ["DICOM/PAT1/BARE", "DICOM/PAT1/LATE"]
        study = next(st for p in m.records for st in p.studies if st.uid == expected[0]["study"])
        assert len(study.series) == 3  # the files found join the study the DICOMDIR lists
        summary = _import(tmp_path / "home", m)

    rejected = dict(summary.rejected)
    assert set(rejected) == {deleted["file_id"], cut["file_id"], "DICOM/JUNK", "DICOM/EMPTY", "DICOM/PAT1/SHORT"}
    assert "truncated" in rejected[cut["file_id"]]
    want = {e["sop"] for e in expected} - {deleted["sop"], cut["sop"]} | {extra.SOPInstanceUID, bare.SOPInstanceUID}
    assert summary.imported == len(want)
    assert _archived(tmp_path / "home") == want


def test_cut_short_iso_image_reports_the_files_lost(medium_source, tmp_path):
    """An image downloaded half-way: its directories are there, the last files are not."""
    root, expected = medium_source
    image = _pack_iso(root, tmp_path / "disc.iso", extensions=True)
    data = image.read_bytes()
    last = (root / expected[-1]["file_id"]).read_bytes()
    image.write_bytes(data[:data.index(last[128:1024]) + 2048])  # ends inside the last file
    with open_medium(image) as m:
        assert not m.scanned and m.problems == []  # what it names is listed; its bytes are read on import
        summary = _import(tmp_path / "home", m)
    assert summary.imported == len(expected) - 1
    assert [f for f, _ in summary.rejected] == [expected[-1]["file_id"]]
    assert "truncated" in summary.rejected[0][1]
    assert _archived(tmp_path / "home") == {e["sop"] for e in expected[:-1]}


def test_medium_copied_in_lower_case(medium, tmp_path):
    """A disc copied to a stick by a system that lowers the case of every name: the
    DICOMDIR (dicomdir) and the upper-case file IDs it holds are still found."""
    root, expected = medium
    for p in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        p.rename(p.with_name(p.name.lower()))
    with open_medium(root) as m:
        assert not m.scanned and m.problems == []
        assert _tree(m) == {pid: {st: {se: {sop: f.lower() for sop, f in i.items()} for se, i in s.items()}
                                  for st, s in studies.items()}
                            for pid, studies in _expected_tree(expected).items()}
        assert _import(tmp_path / "home", m).imported == len(expected)


def test_selection_imports_only_what_was_chosen(medium_source, tmp_path):
    root, expected = medium_source
    home = tmp_path / "home"
    series = expected[2]["series"]
    with open_medium(root) as m:
        summary = _import(home, m, {series})
        assert (summary.imported, summary.rejected) == (2, [])
        assert _archived(home) == {e["sop"] for e in expected if e["series"] == series}
        one = expected[6]["sop"]
        assert _import(home, m, {one}).imported == 1
        study = expected[0]["study"]
        summary = _import(home, m, {study})
        assert (summary.imported, summary.present) == (2, 2)
    assert _archived(home) == {e["sop"] for e in expected if e["study"] == study} | {one}


def _zip(root: Path, out: Path, *, folder: str = "", damage: str | None = None) -> Path:
    """ROOT as a ZIP archive, its files under FOLDER/ (as portals and colleagues pack a disc);
    DAMAGE: a file ID whose stored bytes are flipped (its CRC then fails)."""
    import zipfile
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            z.write(f, folder + f.relative_to(root).as_posix())
    if damage:
        data = bytearray(out.read_bytes())
        with zipfile.ZipFile(out) as z:
            info = z.getinfo(folder + damage)
        at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.file_size // 2
        data[at] ^= 0xFF
        out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("folder", ["", "Patient CD/"], ids=["at-root", "in-a-folder"])
def test_zip_archive_is_read_in_place_its_dicomdir_wherever_it_sits(medium_source, tmp_path, folder):
    root, expected = medium_source
    archive = _zip(root, tmp_path / "study.download", folder=folder)  # recognised by content, not name
    with open_medium(archive) as m:
        assert not m.scanned and m.problems == [] and m.unindexed == []
        assert {i.sop_instance_uid for *_, i in m.instances()} == {e["sop"] for e in expected}
        assert all(i.icon is not None for *_, i in m.instances())
        summary = _import(tmp_path / "home", m)
    assert (summary.imported, summary.rejected) == (len(expected), [])
    # the same folder unpacked: the DICOMDIR one level down is used, not a file-by-file scan
    unpacked = tmp_path / "copied"
    shutil.copytree(root, unpacked / "Patient CD")
    with open_medium(unpacked) as m:
        assert not m.scanned and len(list(m.instances())) == len(expected)


def test_damaged_zip_member_is_reported_and_the_rest_imported(medium_source, tmp_path):
    root, expected = medium_source
    bad = expected[2]
    archive = _zip(root, tmp_path / "study.zip", damage=bad["file_id"])
    with open_medium(archive) as m:
        summary = _import(tmp_path / "home", m)
    rejected = dict(summary.rejected)
    assert set(rejected) == {bad["file_id"]} and "CRC" in rejected[bad["file_id"]], rejected
    assert _archived(tmp_path / "home") == {e["sop"] for e in expected} - {bad["sop"]}


def test_lightbox_import_of_a_zip_archive(medium_source, tmp_path):
    from conftest import lightbox
    root, expected = medium_source
    out = lightbox(tmp_path / "home", "import", str(_zip(root, tmp_path / "cd.zip", folder="CD/")))
    assert f"imported {len(expected)}, already present 0, rejected 0" in out.stdout, out.stdout
    assert _archived(tmp_path / "home") == {e["sop"] for e in expected}
