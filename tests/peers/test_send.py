"""`lightbox send` (spec §4.2.1.3.1) against real receivers: DCMTK storescp configured to take
everything, only implicit VR, to abort, to refuse, or to be slow; a Lightbox node that is out
of disk space (A700); Orthanc as the PACS. The job semantics — statuses per Table 4-6,
retries of transient failures only (§4.2.1.3.1.1), resume after an interruption — are
checked end to end through the command line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from conftest import ROOT, NodeProcess, dcmtk, free_port, lightbox, ls_json, run_dcmtk, wait_port
from peerutil import ct_dataset, save

pytestmark = pytest.mark.peers
PEERS = ROOT.parent / "shared" / "peers" / "peers"
CSA_NON_IMAGE = "1.3.12.2.1107.5.9.1"  # private: DCMTK's storescp does not know it


def _pixels(path: Path) -> str:
    return hashlib.sha256(pydicom.dcmread(path).pixel_array.tobytes()).hexdigest()


def _dataset_bytes(path: Path) -> bytes:
    from app.dicom.encoding import split_part10
    data = path.read_bytes()
    return data[split_part10(data)[1]:]


class Storescp:
    def __init__(self, folder: Path, *opts: str, aet: str = "STORESCP", port: int | None = None):
        self.folder, self.opts, self.aet = folder, opts, aet
        self.port = port or free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([dcmtk("storescp"), *opts, "-aet", aet, "-od", str(folder), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, TCP_NODELAY="1"))
        wait_port(self.port, "127.0.0.1", proc=self.proc)

    def received(self) -> dict[str, Path]:
        out = {}
        for p in self.folder.iterdir():
            if p.is_file():
                out[str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)] = p
        return out

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A data home with a plain CT study (4 images), a JPEG lossless one (3) and one whose
    second instance is of a private SOP class; fast retries."""
    work = tmp_path_factory.mktemp("send")
    home = work / "home"
    home.mkdir()
    lightbox(home, "config", "set", "send.retry_interval", "1")
    studies, digests, files = {}, {}, []
    for name, count in (("plain", 4), ("jpeg", 3), ("mixed", 3)):
        study, series = generate_uid(), generate_uid()
        studies[name] = study
        for i in range(count):
            sop_class = CSA_NON_IMAGE if name == "mixed" and i == 1 else "1.2.840.10008.5.1.4.1.1.2"
            path = save(ct_dataset(study, series, generate_uid(), i + 1, size=48, seed=i, sop_class=sop_class),
                        work / f"{name}{i}.dcm")
            if name == "jpeg":
                target = work / f"{name}{i}-j.dcm"
                run_dcmtk("dcmcjpeg", "+e1", str(path), str(target), check=True)
                path = target
            files.append(path)
            digests[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = _pixels(path)
    lightbox(home, "import", *map(str, files))
    stored = {r["SOPInstanceUID"]: home / "archive" / r["path"] for r in ls_json(home, "instance")}
    return {"home": home, "studies": studies, "digests": digests, "stored": stored, "work": work}


def _add(home: Path, name: str, port: int, aet: str | None = None) -> None:
    lightbox(home, "nodes", "add", name, "--aet", aet or name, "--host", "127.0.0.1", "--port", str(port),
             "--replace")


def _send(home: Path, node: str, *args: str) -> tuple[int, dict]:
    proc = lightbox(home, "send", node, *args, "--json", check=False, timeout=300)
    try:
        job = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"send printed no job: {proc.stdout}\n{proc.stderr}") from None
    return proc.returncode, job


def test_send_study_as_stored(home, tmp_path):
    """An accept-all receiver gets each instance exactly as archived (no re-encoding), over
    one association; the job ends done with the count."""
    scp = Storescp(tmp_path / "all", "+xa", aet="ALL")
    try:
        _add(home["home"], "ALL", scp.port)
        for study in ("plain", "jpeg"):
            rc, job = _send(home["home"], "ALL", "--study", home["studies"][study])
            assert rc == 0 and job["status"] == "done", job
            assert job["message"].startswith(f"{job['total']} sent to ALL"), job
        got = scp.received()
        assert len(got) == 7
        for uid, path in got.items():
            assert _dataset_bytes(path) == _dataset_bytes(home["stored"][uid])
    finally:
        scp.stop()


def test_send_decompresses_for_an_uncompressed_only_receiver(home, tmp_path):
    scp = Storescp(tmp_path / "plain", "+xi", aet="IMPLICIT")
    try:
        _add(home["home"], "IMPLICIT", scp.port)
        rc, job = _send(home["home"], "IMPLICIT", "--study", home["studies"]["jpeg"])
        assert rc == 0 and job["status"] == "done", job
        got = scp.received()
        assert len(got) == 3
        for uid, path in got.items():
            assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
            assert _pixels(path) == home["digests"][uid]  # lossless: the same pixels
    finally:
        scp.stop()


def test_a_refused_sop_class_fails_only_that_instance(home, tmp_path):
    """Table 4-6: the job goes on to the end, then fails with the share transferred and why;
    Retry sends only what failed."""
    scp = Storescp(tmp_path / "std", aet="STANDARD")
    try:
        _add(home["home"], "STANDARD", scp.port)
        rc, job = _send(home["home"], "STANDARD", "--study", home["studies"]["mixed"])
        assert rc != 0 and job["status"] == "failed", job
        # the CSA object is refused; the Spatial Registration kept for it on import goes (§4.2.1.3.1.6)
        assert "Sent 3 of 4 (75 %)" in job["message"] and "not accepted by STANDARD" in job["message"], job
        got = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID) for p in scp.received().values()}
        assert got == {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.66.1"} and len(scp.received()) == 3
        assert len(job["state"]["failures"]) == 1 and job["state"]["next"] == 4
    finally:
        scp.stop()


def test_out_of_resources_is_reported_and_nothing_is_lost(home, tmp_path, node_factory):
    """A Lightbox node below its free-space floor answers A700: every instance is tried, the
    job fails saying the remote is out of resources, and the receiving node stays up."""
    full = tmp_path / "full"
    full.mkdir()
    lightbox(full, "config", "set", "storage.free_space_floor_mb", str(10 ** 7))
    node = node_factory(full).start()
    _add(home["home"], "FULL", node.port, aet=node.aet)
    rc, job = _send(home["home"], "FULL", "--study", home["studies"]["plain"])
    assert rc != 0 and job["status"] == "failed", job
    assert "Sent 0 of 4 (0 %)" in job["message"] and "out of resources" in job["message"], job
    assert len(job["state"]["failures"]) == 4


def test_permanent_rejection_is_not_retried(home, tmp_path):
    scp = Storescp(tmp_path / "refuse", "--refuse", aet="REFUSER")
    try:
        _add(home["home"], "REFUSER", scp.port)
        started = time.monotonic()
        rc, job = _send(home["home"], "REFUSER", "--study", home["studies"]["plain"])
        assert rc != 0 and job["status"] == "failed", job
        assert "rejected the association (permanently" in job["message"], job
        assert "Nothing more was sent" in job["message"] and time.monotonic() - started < 20
    finally:
        scp.stop()


def test_transient_failures_are_retried_then_reported(home, tmp_path):
    """A receiver that aborts at every C-STORE: retried send.retries times, send.retry_interval
    apart, then the job fails saying so; nothing was sent."""
    lightbox(home["home"], "config", "set", "send.retries", "2")
    scp = Storescp(tmp_path / "abort", "+xa", "--abort-after", aet="ABORTER")
    try:
        _add(home["home"], "ABORTER", scp.port)
        started = time.monotonic()
        rc, job = _send(home["home"], "ABORTER", "--study", home["studies"]["plain"])
        assert rc != 0 and job["status"] == "failed", job
        assert "aborted the association" in job["message"] and "Gave up after 2 retries" in job["message"], job
        assert time.monotonic() - started >= 2  # two waits of send.retry_interval = 1 s
    finally:
        scp.stop()


def test_a_receiver_back_during_the_retry_gets_everything(home, tmp_path):
    """The receiver drops the association at the first image and is replaced by a working
    one while the job waits to retry: the retry delivers all of it."""
    lightbox(home["home"], "config", "set", "send.retry_interval", "4")
    port = free_port()
    bad = Storescp(tmp_path / "bad", "+xa", "--abort-after", aet="FLAKY", port=port)
    _add(home["home"], "FLAKY", port)
    proc = subprocess.Popen([sys.executable, "-m", "app", "--home", str(home["home"]), "send", "FLAKY",
                             "--study", home["studies"]["plain"], "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    good = None
    try:
        log = home["home"] / "logs" / "lightbox.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "retry 1 of 2" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.1)
        bad.stop()
        good = Storescp(tmp_path / "good", "+xa", aet="FLAKY", port=port)
        out, err = proc.communicate(timeout=120)
        job = json.loads(out)
        assert proc.returncode == 0 and job["status"] == "done", (job, err)
        assert len(good.received()) == 4
    finally:
        lightbox(home["home"], "config", "set", "send.retry_interval", "1")
        proc.kill()
        if good:
            good.stop()


def test_an_interrupted_send_resumes_in_the_node(home, tmp_path):
    """Ctrl-C in the middle of a send leaves the job queued ("resumes at the next start");
    the headless node of the same data home picks it up and delivers the rest."""
    scp = Storescp(tmp_path / "slow", "+xa", "--sleep-during", "1", aet="SLOW")
    try:
        _add(home["home"], "SLOW", scp.port)
        proc = subprocess.Popen([sys.executable, "-m", "app", "--home", str(home["home"]), "send", "SLOW",
                                 "--study", home["studies"]["plain"], "--json"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not scp.received():
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        job = json.loads(out)
        assert job["status"] == "queued" and "resumes at the next start" in job["message"], job
        assert job["done"] < 4
        node = NodeProcess(home["home"]).start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(scp.received()) < 4:
                time.sleep(0.2)
        finally:
            node.stop()
        assert len(scp.received()) == 4
    finally:
        scp.stop()


def test_send_files_to_orthanc(home, tmp_path):
    """Orthanc as the PACS: files (not archived) sent with `lightbox send PATH...` arrive."""
    dicom_port, http_port = free_port(), free_port()
    script = PEERS / "qr_scp.sh"
    our_aet = lightbox(home["home"], "config", "get", "node.aet").stdout.strip()
    env = dict(os.environ, WS_AET=our_aet, WS_HOST="127.0.0.1", WS_PORT=str(free_port()))
    run = subprocess.run(["bash", str(script), str(dicom_port), str(tmp_path / "orthanc"), str(http_port)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    try:
        _add(home["home"], "ORTHANC", dicom_port)
        folder = tmp_path / "files"
        folder.mkdir()
        for uid, path in list(home["stored"].items())[:5]:
            (folder / f"{uid}.dcm").write_bytes(path.read_bytes())
        rc, job = _send(home["home"], "ORTHANC", str(folder))
        assert rc == 0 and job["status"] == "done" and job["total"] == 5, job
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/instances", timeout=30) as r:
            assert len(json.loads(r.read())) == 5
    finally:
        subprocess.run(["bash", str(script), "stop", str(tmp_path / "orthanc")], capture_output=True, timeout=60)


@pytest.mark.parametrize("syntaxes, classes, storescp_opt, expected, decoder", [
    ("jpeg-lossless,explicit", "", "+xs", "1.2.840.10008.1.2.4.70", "dcmdjpeg"),
    ("rle,explicit", "", "+xr", "1.2.840.10008.1.2.5", "dcmdrle"),
    ("j2k-lossless,explicit", "", "+xv", "1.2.840.10008.1.2.4.90", None),
    ("explicit", "", "+xa", "1.2.840.10008.1.2.1", None),           # the JPEG study decompressed
    ("!jpeg-lossless", "", "+xa", "1.2.840.10008.1.2.1", None),     # excluded: stored so, sent decompressed
    ("explicit", "CTImageStorage=rle,explicit", "+xr", "1.2.840.10008.1.2.5", "dcmdrle"),  # the class's own list
])
def test_send_compresses_by_the_node_preference(home, tmp_path, syntaxes, classes, storescp_opt, expected, decoder):
    """§4.2.1.3.1.2: the node's preferred syntax (or its list for the SOP class; '!' excluding
    one), made by a maintained encoder, lossless syntaxes giving back the very pixels (DCMTK's
    decoders where DCMTK has one)."""
    scp = Storescp(tmp_path / "rx", storescp_opt, aet="PREFER")
    try:
        lightbox(home["home"], "nodes", "add", "PREFER", "--aet", "PREFER", "--host", "127.0.0.1",
                 "--port", str(scp.port), "--syntaxes", syntaxes, "--class-syntaxes", classes, "--replace")
        for study in ("plain", "jpeg"):
            rc, job = _send(home["home"], "PREFER", "--study", home["studies"][study])
            assert rc == 0 and job["status"] == "done", job
        got = scp.received()
        assert len(got) == 7
        for uid, path in got.items():
            ts = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
            assert ts == expected, (uid, ts)
            if decoder:
                out = tmp_path / f"{uid}.raw.dcm"
                run_dcmtk(decoder, str(path), str(out), check=True)
                assert _pixels(out) == home["digests"][uid]
            assert _pixels(path) == home["digests"][uid]
    finally:
        scp.stop()


def test_lossy_only_when_nothing_lossless_is_accepted(home, tmp_path):
    """A node preferring JPEG lossy that also takes an uncompressed syntax gets uncompressed
    (the reference's last lossy criterion); 12-bit CT meets JPEG extended's criteria."""
    scp = Storescp(tmp_path / "rx", "+xa", aet="LOSSY")
    try:
        lightbox(home["home"], "nodes", "add", "LOSSY", "--aet", "LOSSY", "--host", "127.0.0.1",
                 "--port", str(scp.port), "--syntaxes", "jpeg-extended,explicit", "--replace")
        rc, job = _send(home["home"], "LOSSY", "--study", home["studies"]["plain"])
        assert rc == 0, job
        assert {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                for p in scp.received().values()} == {"1.2.840.10008.1.2.1"}
    finally:
        scp.stop()
    bad = lightbox(home["home"], "nodes", "add", "X", "--aet", "X", "--host", "127.0.0.1", "--port", "104",
                   "--syntaxes", "jpeg-ls", check=False)
    assert bad.returncode != 0 and "unknown transfer syntax 'jpeg-ls'" in bad.stderr
    cannot = lightbox(home["home"], "nodes", "add", "X", "--aet", "X", "--host", "127.0.0.1", "--port", "104",
                      "--syntaxes", "1.2.840.10008.1.2.4.80", check=False)
    assert cannot.returncode != 0 and "cannot produce" in cannot.stderr


def test_enhanced_mr_is_split_for_a_node_without_it(home, tmp_path):
    """§4.2.1.3.1.5: a node taking MR Image Storage but not Enhanced MR gets one MR image per
    frame: same study and series, new SOP instances, frame pixels and positions, and every
    one a valid MR Image IOD for dicom3tools' dciodvfy."""
    import numpy as np

    from peerutil import enhanced_mr
    emr = pydicom.dcmread(enhanced_mr(tmp_path / "emr.dcm"))
    lightbox(home["home"], "import", str(tmp_path / "emr.dcm"))
    cfg = tmp_path / "mronly.cfg"
    cfg.write_text("[[TransferSyntaxes]]\n[Uncompressed]\nTransferSyntax1 = LocalEndianExplicit\n"
                   "TransferSyntax2 = LittleEndianImplicit\n\n[[PresentationContexts]]\n[MROnlyContexts]\n"
                   "PresentationContext1 = MRImageStorage\\Uncompressed\n"
                   "PresentationContext2 = VerificationSOPClass\\Uncompressed\n\n"
                   "[[Profiles]]\n[MROnly]\nPresentationContexts = MROnlyContexts\n")
    scp = Storescp(tmp_path / "rx", "-xf", str(cfg), "MROnly", aet="MRONLY")
    try:
        _add(home["home"], "MRONLY", scp.port)
        rc, job = _send(home["home"], "MRONLY", "--study", str(emr.StudyInstanceUID))
        assert rc == 0 and job["status"] == "done" and job["message"] == "1 sent to MRONLY", job
        got = [pydicom.dcmread(p) for p in scp.received().values()]
    finally:
        scp.stop()
    assert len(got) == 3
    # what storage commitment will ask the node about: the frames it holds, not the original
    assert sorted(u for _, u in job["state"]["sent_as"]["0"]) == sorted(str(d.SOPInstanceUID) for d in got)
    frames = emr.pixel_array
    for mr in sorted(got, key=lambda d: int(d.InstanceNumber)):
        f = int(mr.InstanceNumber) - 1
        assert mr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and mr.SOPInstanceUID != emr.SOPInstanceUID
        assert (mr.StudyInstanceUID, mr.SeriesInstanceUID) == (emr.StudyInstanceUID, emr.SeriesInstanceUID)
        assert [float(v) for v in mr.ImagePositionPatient] == [0, 0, 3 * f]
        assert np.array_equal(mr.pixel_array, frames[f])
        assert mr.SourceImageSequence[0].ReferencedSOPInstanceUID == emr.SOPInstanceUID
    for path in (tmp_path / "rx").iterdir():
        check = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        assert "Error" not in check.stdout + check.stderr, check.stdout + check.stderr


def _pdf_instance(study: str, path: Path) -> Path:
    from pydicom.dataset import Dataset

    from conftest import pdf_document
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.104.1", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName, ds.DocumentTitle = "DOC", "PK1", "Packed^Pat", "Referral letter"
    data = pdf_document("Lightbox")
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")
    return save(ds, path)


@pytest.mark.parametrize("pack, carrier, contexts", [
    ("sr", "1.2.840.10008.5.1.4.1.1.88.11", "BasicTextSRStorage"),
    ("sc", "1.2.840.10008.5.1.4.1.1.7", "SecondaryCaptureImageStorage"),
])
def test_classes_the_archive_lacks_are_packed_and_come_back(home, tmp_path, pack, carrier, contexts):
    """§4.2.1.3.1.4: an archive taking CT and only the carrier class gets the Encapsulated PDF
    (Table 4-8) packed into a valid Basic Text SR / Secondary Capture (dciodvfy) in the same
    study; commitment would be asked for what it holds; and imported back into a Lightbox the
    packed object is the original again, byte for byte."""
    study = generate_uid()
    pdf_path = _pdf_instance(study, tmp_path / "doc.dcm")
    ct_path = save(ct_dataset(study, generate_uid(), generate_uid(), 1, size=32), tmp_path / "ct.dcm")
    lightbox(home["home"], "import", str(pdf_path), str(ct_path))
    cfg = tmp_path / "carrier.cfg"
    cfg.write_text("[[TransferSyntaxes]]\n[Uncompressed]\nTransferSyntax1 = LocalEndianExplicit\n"
                   "TransferSyntax2 = LittleEndianImplicit\n\n[[PresentationContexts]]\n[Carrier]\n"
                   "PresentationContext1 = CTImageStorage\\Uncompressed\n"
                   f"PresentationContext2 = {contexts}\\Uncompressed\n\n"
                   "[[Profiles]]\n[Carrier]\nPresentationContexts = Carrier\n")
    scp = Storescp(tmp_path / "rx", "-xf", str(cfg), "Carrier", aet="NOPDF")
    node = f"NOPDF{pack.upper()}"
    try:
        lightbox(home["home"], "nodes", "add", node, "--aet", "NOPDF", "--host", "127.0.0.1", "--port",
                 str(scp.port), "--pack", pack)
        rc, job = _send(home["home"], node, "--study", study)
        assert rc == 0 and job["status"] == "done" and job["message"] == "2 sent to NOPDF", job
        got = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID): p for p in scp.received().values()}
    finally:
        scp.stop()
    assert set(got) == {"1.2.840.10008.5.1.4.1.1.2", carrier}
    packed = pydicom.dcmread(got[carrier])
    original = pydicom.dcmread(pdf_path)
    assert packed.StudyInstanceUID == study and packed.PatientID == "PK1"
    assert packed.SeriesInstanceUID != original.SeriesInstanceUID
    assert packed.SeriesDescription == "Packed for archiving: Encapsulated PDF Storage"
    assert job["state"]["sent_as"] == {"0": [[carrier, str(packed.SOPInstanceUID)]]} or \
        job["state"]["sent_as"] == {"1": [[carrier, str(packed.SOPInstanceUID)]]}, job["state"]
    check = subprocess.run(["dciodvfy", str(got[carrier])], capture_output=True, text=True)
    assert "Error" not in check.stdout + check.stderr, check.stdout + check.stderr
    # the way back: what the archive holds, imported, is the original
    back = tmp_path / "back"
    back.mkdir()
    lightbox(back, "import", str(got[carrier]))
    rows = ls_json(back, "instance")
    assert [(r["SOPClassUID"], r["SOPInstanceUID"]) for r in rows] == \
        [("1.2.840.10008.5.1.4.1.1.104.1", str(original.SOPInstanceUID))]
    assert _dataset_bytes(back / "archive" / rows[0]["path"]) == _dataset_bytes(pdf_path)
