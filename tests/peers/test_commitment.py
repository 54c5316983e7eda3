"""Storage commitment (spec §4.2.1.3.2-3, §4.2.1.4.2) both ways with Orthanc, a real
commitment SCP and SCU: `lightbox send --commit` learns for certain what Orthanc keeps (and
what it lost), and Orthanc asking Lightbox gets every instance checked by class and UID."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from pydicom.uid import generate_uid

from conftest import ROOT, NodeProcess, free_port, lightbox
from peerutil import ct_dataset, save

pytestmark = pytest.mark.peers
PEERS = ROOT.parent / "shared" / "peers" / "peers"
CT = "1.2.840.10008.5.1.4.1.1.2"


def _rest(base: str, path: str, body=None, method=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture
def setup(tmp_path):
    """A home (AE as registered in Orthanc, listening on the port Orthanc calls back) with a
    3-image study, Orthanc as node PACS."""
    home = tmp_path / "home"
    home.mkdir()
    our_aet = lightbox(home, "config", "get", "node.aet").stdout.strip()
    our_port, dicom_port, http_port = free_port(), free_port(), free_port()
    for key, value in (("node.port", our_port), ("commit.delay", 0), ("commit.report_timeout", 60),
                       ("node.workers", 1)):
        lightbox(home, "config", "set", key, str(value))
    env = dict(os.environ, WS_AET=our_aet, WS_HOST="127.0.0.1", WS_PORT=str(our_port))
    script = PEERS / "qr_scp.sh"
    run = subprocess.run(["bash", str(script), str(dicom_port), str(tmp_path / "orthanc"), str(http_port)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    study, series = generate_uid(), generate_uid()
    files = [save(ct_dataset(study, series, generate_uid(), i + 1, size=16), tmp_path / f"{i}.dcm") for i in range(3)]
    lightbox(home, "import", *map(str, files))
    lightbox(home, "nodes", "add", "PACS", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", str(dicom_port))
    yield {"home": home, "study": study, "base": f"http://127.0.0.1:{http_port}", "our_port": our_port,
           "our_aet": our_aet, "files": files}
    subprocess.run(["bash", str(script), "stop", str(tmp_path / "orthanc")], capture_output=True, timeout=60)


def _archived(home, study) -> str:
    """What the browser's Archived column shows for the study."""
    from app.store.archive import Archive
    from app.store.browse import archive_states
    archive = Archive(home)
    try:
        return archive_states(archive.engine, [study]).get(study, "")
    finally:
        archive.close()


def _sop_instances(home, study) -> list[dict]:
    return json.loads(lightbox(home, "ls", "--level", "instance", "--json", "-k", f"StudyInstanceUID={study}").stdout)


def test_send_with_commitment_and_then_delete_safely(setup):
    """The report (on the association Orthanc opens back to us: the command receives while
    it runs) marks every instance committed; the study is then deletable without --force."""
    home = setup["home"]
    refused = lightbox(home, "delete", "--study", setup["study"], check=False)
    assert refused.returncode != 0 and "committed" in (refused.stderr + refused.stdout).lower()
    proc = lightbox(home, "send", "PACS", "--study", setup["study"], "--commit", "--json", check=False, timeout=180)
    job = json.loads(proc.stdout)
    assert proc.returncode == 0 and job["kind"] == "commit" and job["status"] == "done", (job, proc.stderr)
    assert job["message"] == "ORTHANC committed to keep all 3 instance(s)"
    assert "3 sent to ORTHANC; storage commitment asked for in 0 s" in proc.stderr
    assert _archived(home, setup["study"]) == "✓ PACS"
    gone = lightbox(home, "delete", "--study", setup["study"], check=False)
    assert gone.returncode == 0, gone.stderr


def test_an_instance_lost_before_the_request_is_marked_commit_failed(setup):
    """Orthanc loses one instance between the send and the (delayed) request: its report
    fails that one with a reason, the job says so, and the study stays protected."""
    home = setup["home"]
    lightbox(home, "config", "set", "commit.delay", "4")
    proc = subprocess.Popen([sys.executable, "-m", "app", "--home", str(home), "send", "PACS", "--study",
                             setup["study"], "--commit", "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_rest(setup["base"], "/instances")) < 3:
            time.sleep(0.1)
        victim = _sop_instances(home, setup["study"])[0]["SOPInstanceUID"]
        found = _rest(setup["base"], "/tools/lookup", victim.encode())
        _rest(setup["base"], f"/instances/{found[0]['ID']}", method="DELETE")
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    job = json.loads(out)
    assert proc.returncode != 0 and job["status"] == "failed", (job, err)
    assert "ORTHANC committed 2 of 3 instance(s); 1 marked 'commit failed'" in job["message"]
    assert _archived(home, setup["study"]) == "✗ PACS: 1 failed"
    refused = lightbox(home, "delete", "--study", setup["study"], check=False)
    assert refused.returncode != 0


def test_orthanc_asks_lightbox_to_commit(setup):
    """As SCP: the request is accepted, each instance checked (class and UID must both match),
    and the report goes to Orthanc on a new association: held ones committed, an unknown one
    (0112) and one with the wrong class (0119) failed."""
    home = setup["home"]
    held = [(r["SOPClassUID"], r["SOPInstanceUID"]) for r in _sop_instances(home, setup["study"])]
    unknown = (CT, generate_uid())
    conflict = ("1.2.840.10008.5.1.4.1.1.4", held[0][1])  # an MR class for a CT instance
    node = NodeProcess(home, aet=setup["our_aet"], port=setup["our_port"]).start()
    try:
        lightbox(home, "nodes", "add", "PACS", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port",
                 str(json.loads(lightbox(home, "nodes", "list", "--json").stdout)[0]["port"]), "--replace")
        modality = next(m for m in _rest(setup["base"], "/modalities") if m != "PACS")
        answer = _rest(setup["base"], f"/modalities/{modality}/storage-commitment",
                       {"DicomInstances": [list(x) for x in held[1:] + [unknown, conflict]]})
        deadline = time.monotonic() + 60
        report = _rest(setup["base"], answer["Path"])
        while report["Status"] == "Pending" and time.monotonic() < deadline:
            time.sleep(0.2)
            report = _rest(setup["base"], answer["Path"])
    finally:
        node.stop()
    assert report["Status"] == "Failure", report
    assert sorted(s["SOPInstanceUID"] for s in report["Success"]) == sorted(i for _, i in held[1:])
    reasons = {f["SOPInstanceUID"]: f["FailureReason"] for f in report["Failures"]}
    assert reasons == {unknown[1]: 0x0112, conflict[1]: 0x0119}, report
    assert "storage commitment request" in node.output() or "storage commitment" in \
        (home / "logs" / "lightbox.log").read_text()


def test_watermark_deletes_only_what_an_archive_committed_to_keep(setup, tmp_path):
    """Above storage.watermark_high the node deletes the committed study (oldest first) and
    keeps the one no archive committed to, saying so in the log."""
    home = setup["home"]
    study, series = generate_uid(), generate_uid()
    kept = save(ct_dataset(study, series, generate_uid(), 1, size=16, patient_id="KEEP"), tmp_path / "keep.dcm")
    lightbox(home, "import", str(kept))
    proc = lightbox(home, "send", "PACS", "--study", setup["study"], "--commit", "--json", check=False, timeout=180)
    assert json.loads(proc.stdout)["status"] == "done", proc.stderr
    for key, value in (("storage.watermark_high", 1), ("storage.watermark_low", 0), ("storage.watermark_check", 1)):
        lightbox(home, "config", "set", key, str(value))  # any real disk is fuller than 1 %
    node = NodeProcess(home, aet=setup["our_aet"], port=setup["our_port"]).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _sop_instances(home, setup["study"]):
            time.sleep(0.3)
        time.sleep(1.5)  # one more check: it must leave the uncommitted study alone
    finally:
        node.stop()
    assert _sop_instances(home, setup["study"]) == []
    assert len(_sop_instances(home, study)) == 1
    log = (home / "logs" / "lightbox.log").read_text()
    assert "watermark: disk above 1 % used; 1 committed stud(ies) deleted" in log
    assert "no committed study is left to delete: 1 stud(ies) no archive has committed to keep stay" in log
    audit = lightbox(home, "audit", "--action", "delete", "--json").stdout
    assert "watermark" in audit


def test_auto_archive_routes_what_a_modality_sends_with_commitment(setup, tmp_path):
    """A rule 'from MODALITY to PACS with commitment': the node sends the study once it is
    quiet, Orthanc commits to keep it, and the browser shows it archived; what another AE
    sends, and a rule for another modality, send nothing."""
    home = setup["home"]
    for key, value in (("routing.stable", 1), ("routing.check", 1), ("policy.check_calling_ae", "false")):
        lightbox(home, "config", "set", key, str(value))
    lightbox(home, "routes", "add", "ARCHIVE", "--to", "PACS", "--from-aet", "MODALITY", "--commit")
    lightbox(home, "routes", "add", "MRONLY", "--to", "PACS", "--modality", "MR")
    routes = json.loads(lightbox(home, "routes", "list", "--json").stdout)
    assert [(r["name"], r["from_aet"], r["modality"], r["commit"]) for r in routes] == \
        [("ARCHIVE", "MODALITY", None, True), ("MRONLY", None, "MR", False)]
    study, series = generate_uid(), generate_uid()
    new = [save(ct_dataset(study, series, generate_uid(), i + 1, size=16), tmp_path / f"n{i}.dcm") for i in range(3)]
    other = save(ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=16), tmp_path / "other.dcm")
    node = NodeProcess(home, aet=setup["our_aet"], port=setup["our_port"]).start()
    try:
        from peerutil import storescu
        assert storescu(node, *new, calling="MODALITY").returncode == 0
        assert storescu(node, other, calling="OTHER").returncode == 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _archived(home, study) != "✓ PACS":
            time.sleep(0.3)
    finally:
        node.stop()
    assert _archived(home, study) == "✓ PACS"
    held = {i["MainDicomTags"]["SOPInstanceUID"] for i in _rest(setup["base"], "/instances?expand")}
    assert held == {r["SOPInstanceUID"] for r in _sop_instances(home, study)}  # nothing else went
    assert "rule ARCHIVE: 3 instance(s) of study" in (home / "logs" / "lightbox.log").read_text()
