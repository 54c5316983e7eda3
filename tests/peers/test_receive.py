"""Receiving from real DCMTK programs: association acceptance (spec §4.2.1.4), C-STORE of
real files in their own transfer syntaxes (Table 4-5, Table 8-1), counts at every level,
character sets (§6) and duplicate SOP Instance UIDs (§4.2.1.4.1.4)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import warnings
from collections import defaultdict
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from app.dicom.sop_classes import storage_scp_classes
from app.dicom.uids import is_valid_uid
from conftest import dcmtk, lightbox, ls_json
from peerutil import (
    STORESCU_TS_OPTION,
    archive_files,
    ct_dataset,
    dataset_differences,
    echoscu,
    ls_utf8,
    read,
    rejected,
    run_tool,
    save,
    store_statuses,
    storescu,
)

pytestmark = pytest.mark.peers

REQUIRED_UIDS = ("SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")



# -- association acceptance ---------------------------------------------------------------
def test_echo_succeeds(node):
    out = echoscu(node)
    assert out.returncode == 0, out.stdout
    assert "Received Echo Response (Success)" in out.stdout


def test_echo_to_wrong_called_ae_is_rejected(node):
    out = echoscu(node, called="WRONG")
    assert out.returncode != 0
    assert rejected(out.stdout), out.stdout
    assert "Called AE Title Not Recognized" in out.stdout
    # the node is unharmed
    assert echoscu(node).returncode == 0


def test_unknown_calling_ae_rejected_until_added_without_restart(node_factory):
    node = node_factory(allow_any=False).start()
    out = echoscu(node, calling="STRANGER")
    assert out.returncode != 0
    assert rejected(out.stdout), out.stdout
    assert "Calling AE Title Not Recognized" in out.stdout
    assert "STRANGER" in node.output()  # the log says whom it turned away

    lightbox(node.home, "nodes", "add", "stranger", "--aet", "STRANGER", "--host", "127.0.0.1", "--port", "11113")
    out = echoscu(node, calling="STRANGER")
    assert out.returncode == 0, out.stdout
    assert "Received Echo Response (Success)" in out.stdout
    # still only configured nodes
    out = echoscu(node, calling="OTHER")
    assert rejected(out.stdout), out.stdout
    assert node.proc.poll() is None


# -- real files in their own transfer syntaxes -------------------------------------------
COVERED_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
                    DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1,
                    JPEG2000Lossless, JPEG2000, RLELossless)


def _dcmtk_reads(path) -> bool:
    """DCMTK parses the file and sees both SOP UIDs as UI (some files hold them as UN)."""
    out = run_tool("dcmdump", "-q", "+P", "0008,0016", "+P", "0008,0018", path, timeout=30)
    return out.returncode == 0 and sum(" UI " in line for line in out.stdout.splitlines()) == 2


TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"


def pydicom_test_files() -> list[tuple[Path, pydicom.Dataset, str]]:
    """pydicom's bundled files with the four UIDs, a Table 8-1 SOP class and a transfer syntax
    we accept; one file per SOP Instance UID, chosen so that every syntax is covered."""
    classes = set(storage_scp_classes())
    candidates = []
    # The files shipped inside pydicom (get_testdata_files() would also try to download
    # pydicom-data from the network, which CI does not have).
    for f in sorted(TEST_FILES.glob("*.dcm")):
        try:
            ds = read(f)
        except Exception:
            continue
        ts = str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", ""))
        if ts not in STORESCU_TS_OPTION:
            continue
        uids = [str(ds.get(k, "")) for k in REQUIRED_UIDS]
        if not all(is_valid_uid(u) for u in uids) or uids[0] not in classes:
            continue
        if not _dcmtk_reads(f):  # e.g. truncated files: DCMTK cannot send them at all
            continue
        candidates.append((Path(f), ds, ts))
    # First give every syntax a file of its own. Several files are one SOP Instance UID in
    # different encodings, so this is a small bipartite matching (augmenting paths).
    chosen: dict[str, tuple] = {}  # SOP Instance UID -> candidate

    def assign(syntax: str, seen: set) -> bool:
        for c in candidates:
            uid = c[1].SOPInstanceUID
            if c[2] != syntax or uid in seen:
                continue
            seen.add(uid)
            if uid not in chosen or assign(chosen[uid][2], seen):
                chosen[uid] = c
                return True
        return False

    for syntax in COVERED_SYNTAXES:
        assign(syntax, set())
    for c in candidates:  # ... then every other distinct instance
        chosen.setdefault(c[1].SOPInstanceUID, c)
    return list(chosen.values())


def test_store_real_files_in_their_own_transfer_syntax(node):
    files = pydicom_test_files()
    syntaxes = {ts for _, _, ts in files}
    assert syntaxes >= set(COVERED_SYNTAXES), f"pydicom test files lack {set(COVERED_SYNTAXES) - syntaxes}"
    sop_classes = {str(ds.SOPClassUID) for _, ds, _ in files}
    assert len(sop_classes) >= 8, sop_classes

    by_ts = defaultdict(list)
    for path, _, ts in files:
        by_ts[ts].append(path)
    for ts, paths in by_ts.items():
        # -R: propose only the SOP classes of these files, with `ts` as the preferred syntax;
        # storescu then sends each file as it is, no conversion.
        out = storescu(node, *paths, opts=("-R", STORESCU_TS_OPTION[ts], "-nh"))
        statuses = store_statuses(out.stdout)
        assert out.returncode == 0, out.stdout
        for p in paths:
            assert statuses.get(str(p)) == "Success", f"{p.name} ({ts}): {statuses.get(str(p))}\n{out.stdout}"
        for line in out.stdout.splitlines():  # sent as stored, never converted
            if "Converting transfer syntax:" in line:
                before, after = line.split(": ", 2)[-1].split(" -> ")
                assert before == after, line

    listed = {r["SOPInstanceUID"]: r for r in ls_json(node.home, "instance")}
    archive = (node.home / "archive").resolve()
    assert len(listed) == len(files)
    for path, source, ts in files:
        row = listed.get(source.SOPInstanceUID)
        assert row is not None, f"{path.name} not listed"
        assert row["TransferSyntaxUID"] == ts, path.name
        assert row["SOPClassUID"] == source.SOPClassUID
        assert row["SeriesInstanceUID"] == source.SeriesInstanceUID
        assert row["StudyInstanceUID"] == source.StudyInstanceUID
        stored_path = (archive / row["path"]).resolve()
        assert stored_path.is_relative_to(archive)
        stored = read(stored_path)
        assert stored.file_meta.TransferSyntaxUID == ts
        assert stored.file_meta.MediaStorageSOPInstanceUID == source.SOPInstanceUID
        assert stored.file_meta.SourceApplicationEntityTitle == "STORESCU"
        assert row["size"] == stored_path.stat().st_size
        if "PixelData" in source:
            assert stored.PixelData == source.PixelData, f"{path.name}: pixel bytes differ"
        assert dataset_differences(source, stored) == [], path.name


# -- a generated study ------------------------------------------------------------------
def test_generated_study_counts(node, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    study = generate_uid()
    series = [generate_uid() for _ in range(3)]
    n = 0
    for s, count in ((0, 20), (1, 10)):
        for i in range(count):
            n += 1
            ds = ct_dataset(study, series[s], generate_uid(), i + 1, series_number=s + 1, size=32)
            save(ds, folder / f"ct{n:03}.dcm")
    for i in range(2):  # one secondary-capture series: a second modality in the study
        ds = ct_dataset(study, series[2], generate_uid(), i + 1, series_number=3, size=32, modality="OT",
                        sop_class=SecondaryCaptureImageStorage)
        save(ds, folder / f"sc{i}.dcm")

    out = storescu(node, folder, opts=("+sd",))
    assert out.returncode == 0, out.stdout
    statuses = store_statuses(out.stdout)
    assert len(statuses) == 32 and set(statuses.values()) == {"Success"}, statuses

    studies = [r for r in ls_json(node.home, "study") if r["StudyInstanceUID"] == study]
    assert len(studies) == 1
    st = studies[0]
    assert st["NumberOfStudyRelatedInstances"] == 32
    assert st["NumberOfStudyRelatedSeries"] == 3
    assert st["ModalitiesInStudy"] == "CT\\OT"
    assert st["PatientName"] == "Gen^Erated"
    assert st["StudyDate"] == "20240102"

    rows = {r["SeriesInstanceUID"]: r for r in ls_json(node.home, "series")}
    assert {uid: rows[uid]["NumberOfSeriesRelatedInstances"] for uid in series} == \
        {series[0]: 20, series[1]: 10, series[2]: 2}
    assert [rows[uid]["Modality"] for uid in series] == ["CT", "CT", "OT"]
    assert [rows[uid]["SeriesNumber"] for uid in series] == ["1", "2", "3"]

    patients = [r for r in ls_json(node.home, "patient") if r["PatientID"] == "GEN001"]
    assert len(patients) == 1 and patients[0]["NumberOfPatientRelatedStudies"] == 1
    assert len(ls_json(node.home, "instance")) == 32
    assert len(archive_files(node.home)) == 32


# -- character sets (spec §6) --------------------------------------------------------
CHARSET_DIR = Path(pydicom.data.__file__).parent / "charset_files"


def test_charset_files_listed_as_decoded(node):
    files, seen_uids, seen_ids = [], set(), set()
    for f in sorted(CHARSET_DIR.glob("*.dcm")):
        ds = read(f)
        if not all(ds.get(k) for k in REQUIRED_UIDS + ("PatientID",)):
            continue
        if ds.SOPInstanceUID in seen_uids or ds.PatientID in seen_ids:
            continue  # same instance/patient in another encoding: one is enough here
        seen_uids.add(ds.SOPInstanceUID)
        seen_ids.add(ds.PatientID)
        files.append((f, ds))
    assert len(files) >= 12
    out = storescu(node, *(f for f, _ in files), opts=("-nh",))
    statuses = store_statuses(out.stdout)
    assert out.returncode == 0, out.stdout
    assert all(statuses.get(str(f)) == "Success" for f, _ in files), statuses

    rows = {r["PatientID"]: r for r in ls_utf8(node.home, "patient")}
    for f, ds in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = str(ds.PatientName)
        assert rows[ds.PatientID]["PatientName"] == expected, f.name
    assert node.proc.poll() is None
    assert "Traceback" not in node.output()


def _with_raw_name(tmp_path: Path, name: str, charset: str | None, raw: bytes, patient_id: str) -> Path:
    """A CT whose Patient Name holds exactly the bytes `raw`, whatever they mean."""
    placeholder = b"Z" * len(raw)
    ds = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=8, patient_id=patient_id,
                    patient_name=placeholder.decode())
    if charset is None:
        del ds.SpecificCharacterSet
    else:
        ds.SpecificCharacterSet = charset
    path = save(ds, tmp_path / name)
    data = path.read_bytes()
    assert data.count(placeholder) == 1
    path.write_bytes(data.replace(placeholder, raw))
    return path


@pytest.mark.parametrize("charset, raw, expected", [
    # 0x81 is a C1 control code: not part of ISO-IR 100 (its G1 set is 0xA0-0xFF)
    ("ISO_IR 100", b"Bad\x81Name^Jos\xe9", "Bad?Name^José"),
    # a control character in ISO 646 and one outside it
    ("ISO_IR 100", b"Ctl\x05Name^A", "Ctl?Name^A"),
    # default repertoire is 7-bit: 0xFC (Latin-1 u-umlaut) is illegal there
    (None, b"M\xfcller^Hans", "M?ller^Hans"),
    ("ISO_IR 6", b"\xc3\x84rger^Eva", "??rger^Eva"),
    # not UTF-8
    ("ISO_IR 192", b"Caf\xc3(^Anne", "Caf?(^Anne"),
])
def test_illegal_characters_become_question_marks(shared_node, tmp_path, charset, raw, expected):
    node = shared_node
    patient_id = "ODD-" + hashlib.sha1(raw).hexdigest()[:8]  # one patient per case on the shared node
    path = _with_raw_name(tmp_path, "odd.dcm", charset, raw, patient_id)
    out = storescu(node, path)
    assert store_statuses(out.stdout).get(str(path)) == "Success", out.stdout
    rows = [r for r in ls_utf8(node.home, "patient") if r["PatientID"] == patient_id]
    assert [r["PatientName"] for r in rows] == [expected]
    inst = [r for r in ls_utf8(node.home, "instance") if r["PatientID"] == patient_id]
    assert len(inst) == 1 and inst[0]["PatientName"] == expected
    # the stored file keeps the bytes as received
    assert raw in (node.home / "archive" / inst[0]["path"]).read_bytes()


# -- duplicates (spec §4.2.1.4.1.4) --------------------------------------------------
def test_duplicate_sop_instance_keeps_the_first(node, tmp_path):
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    first = save(ct_dataset(study, series, sop, 1, seed=1, patient_name="First^Copy", size=16), tmp_path / "a.dcm")
    second = save(ct_dataset(study, series, sop, 1, seed=2, patient_name="Second^Copy", size=16), tmp_path / "b.dcm")
    # same SOP Instance UID filed under another study: must not create a second copy either
    third = save(ct_dataset(generate_uid(), generate_uid(), sop, 1, seed=3, patient_name="Third^Copy", size=16,
                            patient_id="OTHER"), tmp_path / "c.dcm")

    out = storescu(node, first)
    assert store_statuses(out.stdout).get(str(first)) == "Success", out.stdout
    [row] = ls_json(node.home, "instance")
    stored = node.home / "archive" / row["path"]
    digest = hashlib.sha256(stored.read_bytes()).hexdigest()
    mtime = stored.stat().st_mtime_ns

    for dup in (second, third):
        out = storescu(node, dup)
        # ignored, not refused: the sender must not retry forever
        assert store_statuses(out.stdout).get(str(dup)) == "Success", out.stdout

    rows = ls_json(node.home, "instance")
    assert [r["SOPInstanceUID"] for r in rows] == [sop]
    assert rows[0]["PatientName"] == "First^Copy" and rows[0]["path"] == row["path"]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
    assert stored.stat().st_mtime_ns == mtime
    assert read(stored).PixelData == read(first).PixelData
    assert archive_files(node.home) == [stored]
    assert [p["PatientID"] for p in ls_json(node.home, "patient")] == ["GEN001"]
    log = node.output() + (node.home / "logs" / "lightbox.log").read_text(errors="replace")
    assert sum(1 for line in log.splitlines() if "duplicate" in line.lower() and sop in line) >= 2


def test_concurrent_duplicates_keep_file_and_index_consistent(node, tmp_path):
    """Two senders with the same SOP Instance UIDs at the same time: whichever wins, the
    archive keeps one copy per UID and the index describes that copy."""
    study, series, other_series = generate_uid(), generate_uid(), generate_uid()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sources = {}
    for i in range(100):
        uid = generate_uid()
        a = ct_dataset(study, series, uid, i + 1, size=16, seed=i)
        # the second sender's copy has other pixels and numbers; every other one is even
        # filed under another series (another path in the archive)
        b = ct_dataset(study, series if i % 2 else other_series, uid, i + 1001, size=16, seed=1000 + i)
        save(a, tmp_path / "a" / f"{i:03}.dcm")
        save(b, tmp_path / "b" / f"{i:03}.dcm")
        sources[uid] = {1 + i: a, 1001 + i: b}
    procs = [subprocess.Popen([dcmtk("storescu"), "-v", "-aet", f"SENDER{k}", "-aec", node.aet, "+sd",
                               node.host, str(node.port), str(tmp_path / k)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, TCP_NODELAY="1"))
             for k in ("a", "b")]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for out in outputs:
        statuses = store_statuses(out)
        assert len(statuses) == 100 and set(statuses.values()) == {"Success"}, out[-2000:]

    rows = ls_json(node.home, "instance")
    assert sorted(r["SOPInstanceUID"] for r in rows) == sorted(sources)
    assert len(archive_files(node.home)) == 100, "a second copy of some instance stayed in the archive"
    for row in rows:
        stored = read(node.home / "archive" / row["path"])
        assert row["InstanceNumber"] == str(stored.InstanceNumber), "index and file describe different copies"
        source = sources[row["SOPInstanceUID"]][int(stored.InstanceNumber)]
        assert stored.PixelData == source.PixelData
        assert stored.SeriesInstanceUID == source.SeriesInstanceUID


def test_csa_non_image_is_also_kept_as_spatial_registration(node_factory, tmp_path):
    """Spec §4.2.1.3.1.6: a CSA Non-Image object received is kept as it came and as a Spatial
    Registration in a series of its own (valid for dciodvfy, the private content carried
    along); the same object received again makes no second registration."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.3.12.2.1107.5.9.1", generate_uid()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Csa^Carl", "CSA1", "19700101", "M"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "101010", "1", "A1"
    ds.Modality, ds.SeriesNumber, ds.Manufacturer, ds.FrameOfReferenceUID = "MR", 5, "SIEMENS", generate_uid()
    block = ds.private_block(0x0029, "SIEMENS CSA NON-IMAGE", create=True)
    block.add_new(0x08, "CS", "SPEC NUM 4")
    block.add_new(0x10, "OB", b"\x01\x02" * 50)
    path = tmp_path / "csa.dcm"
    ds.save_as(path, enforce_file_format=True)
    node = node_factory().start()
    cfg = tmp_path / "csa.cfg"  # storescu proposes a private class only from a profile
    cfg.write_text("[[TransferSyntaxes]]\n[Uncompressed]\nTransferSyntax1 = LocalEndianExplicit\n\n"
                   "[[PresentationContexts]]\n[CsaContexts]\nPresentationContext1 = 1.3.12.2.1107.5.9.1\\Uncompressed\n\n"
                   "[[Profiles]]\n[Csa]\nPresentationContexts = CsaContexts\n")
    for _ in range(2):
        out = storescu(node, path, opts=("-xf", str(cfg), "Csa"))
        assert out.returncode == 0, out.stdout
    rows = ls_json(node.home, "instance", f"StudyInstanceUID={ds.StudyInstanceUID}")
    by_class = {r["SOPClassUID"]: r for r in rows}
    assert len(rows) == 2 and set(by_class) == {"1.3.12.2.1107.5.9.1", "1.2.840.10008.5.1.4.1.1.66.1"}, rows
    reg_row = by_class["1.2.840.10008.5.1.4.1.1.66.1"]
    assert reg_row["SeriesInstanceUID"] != ds.SeriesInstanceUID and reg_row["Modality"] == "REG"
    reg_path = node.home / "archive" / reg_row["path"]
    reg = pydicom.dcmread(reg_path)
    assert reg.RegistrationSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert reg[0x0029, 0x1010].value == b"\x01\x02" * 50
    check = subprocess.run(["dciodvfy", str(reg_path)], capture_output=True, text=True)
    assert "Error" not in check.stdout + check.stderr, check.stdout + check.stderr
