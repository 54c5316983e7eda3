"""C-MOVE and C-GET SCP against real clients: DCMTK movescu (to a DCMTK storescp that is a
configured remote node) and getscu, and Orthanc querying and retrieving through its REST API
(spec §4.2.1.4.4, Tables 4-50 to 4-52; C-GET beyond the reference)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from conftest import ROOT, dcmtk, free_port, lightbox, ls_json, run_dcmtk, wait_port
from peerutil import ct_dataset, run_tool, save, storescu

pytestmark = pytest.mark.peers
PEERS = ROOT.parent / "shared" / "peers" / "peers"


def _pixels_digest(path: Path) -> str:
    return hashlib.sha256(pydicom.dcmread(path).pixel_array.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def archive_node(tmp_path_factory):
    """A node with two studies (one of them JPEG lossless as stored), a storescp that only
    takes implicit VR little endian as remote node PLAIN, and an accept-all one as STORESCP."""
    from conftest import NodeProcess
    work = tmp_path_factory.mktemp("retrieve")
    home = work / "home"
    home.mkdir()
    lightbox(home, "config", "set", "policy.check_calling_ae", "false")
    files, digests = [], {}
    studies = {"plain": generate_uid(), "jpeg": generate_uid()}
    for name, study in studies.items():
        series = generate_uid()
        for i in range(4):
            ds = ct_dataset(study, series, generate_uid(), i + 1, size=64, seed=i)
            path = save(ds, work / f"{name}{i}.dcm")
            if name == "jpeg":
                target = work / f"{name}{i}-j.dcm"
                run_dcmtk("dcmcjpeg", "+e1", str(path), str(target), check=True)
                path = target
            files.append(path)
            digests[pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID] = _pixels_digest(path)
    node = NodeProcess(home).start()
    for group, opts in ((files[:4], ()), (files[4:], ("-xs",))):  # the JPEG files as they are
        out = storescu(node, *group, opts=opts)
        assert out.returncode == 0, out.stdout
    peers = {}
    for name, opts in (("PLAIN", ["+xi"]), ("STORESCP", ["+xa"]), ("DROPPER", ["+xa", "--abort-after"])):
        folder = work / name
        folder.mkdir()
        port = free_port()
        proc = subprocess.Popen([dcmtk("storescp"), *opts, "-aet", name, "-od",
                                 str(folder), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(port, "127.0.0.1", proc=proc)
        lightbox(home, "nodes", "add", name, "--aet", name, "--host", "127.0.0.1", "--port", str(port))
        peers[name] = (proc, folder, port)
    closed = free_port()  # a configured node nobody listens on
    lightbox(home, "nodes", "add", "GONE", "--aet", "GONE", "--host", "127.0.0.1", "--port", str(closed))
    yield {"node": node, "studies": studies, "digests": digests, "peers": peers, "work": work}
    node.kill()
    for proc, _, _ in peers.values():
        proc.kill()
        proc.wait(10)


def movescu(node, dest: str, *keys: str) -> subprocess.CompletedProcess:
    args = ["-d", "-S", "-aet", "MOVESCU", "-aec", node.aet, "-aem", dest]
    for k in keys:
        args += ["-k", k]
    return run_tool("movescu", *args, node.host, str(node.port), timeout=120)


def statuses(output: str) -> list[str]:
    """Every DIMSE status of the responses, as DCMTK's debug output prints them (0xFF00...)."""
    return ["0x" + s.upper() for s in re.findall(r"DIMSE Status\s*: 0x([0-9a-fA-F]{4})", output)]


def final_status(output: str) -> str:
    found = statuses(output)
    return found[-1] if found else ""


def counts(output: str) -> tuple[int, int, int, int]:
    """(remaining, completed, failed, warning) of the final response."""
    final = output[output.rfind("Received Final"):]
    values = []
    for what in ("Remaining", "Completed", "Failed", "Warning"):
        m = re.search(rf"{what} Suboperations\s*: (\w+)", final)
        values.append(int(m.group(1)) if m and m.group(1).isdigit() else 0)
    return tuple(values)


def received(folder: Path) -> dict[str, Path]:
    return {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in folder.iterdir() if p.is_file()}


def test_move_study_to_a_configured_node(archive_node):
    node, study = archive_node["node"], archive_node["studies"]["plain"]
    _, folder, _ = archive_node["peers"]["STORESCP"]
    out = movescu(node, "STORESCP", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}")
    assert final_status(out.stdout) == "0x0000", out.stdout
    assert counts(out.stdout) == (0, 4, 0, 0)
    assert statuses(out.stdout).count("0xFF00") == 4  # one pending response per sub-operation
    got = received(folder)
    assert len(got) == 4 and all(_pixels_digest(p) == archive_node["digests"][uid] for uid, p in got.items())


def test_move_decompresses_for_a_destination_that_takes_only_uncompressed(archive_node):
    node, study = archive_node["node"], archive_node["studies"]["jpeg"]
    _, folder, _ = archive_node["peers"]["PLAIN"]
    out = movescu(node, "PLAIN", "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study}",
                  f"SeriesInstanceUID={_series_of(archive_node, study)}")
    assert final_status(out.stdout) == "0x0000", out.stdout
    got = received(folder)
    assert len(got) == 4
    for uid, path in got.items():
        assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
        assert _pixels_digest(path) == archive_node["digests"][uid]  # lossless: the same pixels


def _stored(archive_node) -> dict[str, Path]:
    home = archive_node["node"].home
    return {r["SOPInstanceUID"]: home / "archive" / r["path"] for r in ls_json(home, "instance")}


def test_move_sends_the_stored_data_set_unchanged(archive_node):
    """A destination that takes the stored transfer syntax (JPEG lossless here) gets the data
    set exactly as archived, byte for byte: not decompressed, not re-encoded."""
    from app.dicom.encoding import split_part10
    node, study = archive_node["node"], archive_node["studies"]["jpeg"]
    _, folder, _ = archive_node["peers"]["STORESCP"]
    out = movescu(node, "STORESCP", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}")
    assert final_status(out.stdout) == "0x0000" and counts(out.stdout) == (0, 4, 0, 0), out.stdout
    stored = _stored(archive_node)
    got = {uid: p for uid, p in received(folder).items() if uid in archive_node["digests"] and
           pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID == study}
    assert len(got) == 4
    for uid, path in got.items():
        sent, kept = path.read_bytes(), stored[uid].read_bytes()
        assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
        assert sent[split_part10(sent)[1]:] == kept[split_part10(kept)[1]:]


def test_a_lost_file_is_a_failed_sub_operation(archive_node, tmp_path):
    """An archived file gone from the disk: that sub-operation fails (B000, the others
    complete), the log names the file, and the node keeps serving."""
    from conftest import NodeProcess
    home = tmp_path / "lost"
    home.mkdir()
    lightbox(home, "config", "set", "policy.check_calling_ae", "false")
    study, series = generate_uid(), generate_uid()
    files = [save(ct_dataset(study, series, generate_uid(), i + 1, size=32, seed=i), tmp_path / f"l{i}.dcm")
             for i in range(3)]
    node = NodeProcess(home).start()
    try:
        assert storescu(node, *files).returncode == 0
        _, folder, port = archive_node["peers"]["STORESCP"]
        lightbox(home, "nodes", "add", "STORESCP", "--aet", "STORESCP", "--host", "127.0.0.1", "--port", str(port))
        rows = ls_json(home, "instance")
        lost = home / "archive" / rows[1]["path"]
        lost.unlink()
        out = movescu(node, "STORESCP", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}")
        assert final_status(out.stdout) == "0xB000" and counts(out.stdout) == (0, 2, 1, 0), out.stdout
        assert str(lost) in node.output() or str(lost) in (home / "logs" / "lightbox.log").read_text()
        assert len([p for p in received(folder).values()
                    if pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID == study]) == 2
    finally:
        node.kill()


def test_move_refusals(archive_node):
    node, study = archive_node["node"], archive_node["studies"]["plain"]
    unknown = movescu(node, "NOBODY", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}")
    assert final_status(unknown.stdout) == "0xA801"
    gone = movescu(node, "GONE", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}")
    assert final_status(gone.stdout) == "0xA801"  # configured, but it does not answer
    no_key = movescu(node, "STORESCP", "QueryRetrieveLevel=STUDY")
    assert final_status(no_key.stdout) == "0xA900"
    log = node.output()
    assert "'NOBODY' is not a configured remote node" in log and "needs StudyInstanceUID" in log
    # and the node keeps serving
    assert final_status(movescu(node, "STORESCP", "QueryRetrieveLevel=STUDY",
                                f"StudyInstanceUID={study}").stdout) == "0x0000"


def test_get_returns_the_instances_on_the_same_association(archive_node, tmp_path):
    node = archive_node["node"]
    for name in ("plain", "jpeg"):
        target = tmp_path / name
        target.mkdir()
        out = run_tool("getscu", "-d", "-S", "-aet", "GETSCU", "-aec", node.aet, "-od", str(target),
                       "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={archive_node['studies'][name]}",
                       node.host, str(node.port), timeout=120)
        assert final_status(out.stdout) == "0x0000", out.stdout
        got = received(target)
        assert len(got) == 4 and all(_pixels_digest(p) == archive_node["digests"][u] for u, p in got.items())


def test_cancel_stops_a_move(archive_node):
    """No DCMTK client sends C-CANCEL: pynetdicom's SCU does, after the first pending response."""
    from pynetdicom import AE
    from pydicom.dataset import Dataset
    node, study = archive_node["node"], archive_node["studies"]["plain"]
    ae = AE(ae_title="CANCELLER")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.2.2.2")
    assoc = ae.associate(node.host, node.port, ae_title=node.aet)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
    statuses = []
    for status, _ in assoc.send_c_move(query, "STORESCP", "1.2.840.10008.5.1.4.1.2.2.2", msg_id=7):
        statuses.append(int(status.Status) if status else None)
        if len(statuses) == 1:
            assoc.send_c_cancel(7, context_id=assoc.accepted_contexts[0].context_id)
    assoc.release()
    assert statuses[-1] == 0xFE00 and len(statuses) < 5, statuses


def test_a_destination_that_drops_the_association_and_a_caller_that_aborts(archive_node):
    """The destination aborts at its first C-STORE: the move ends with the failures counted
    (A702: every sub-operation failed) and a log line; a caller aborting mid-move leaves no
    transfer running; the node keeps serving both kinds of request."""
    from pynetdicom import AE
    from pydicom.dataset import Dataset
    node, study = archive_node["node"], archive_node["studies"]["plain"]
    dropped = movescu(node, "DROPPER", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}")
    assert final_status(dropped.stdout) in ("0xA702", "0xB000"), dropped.stdout
    remaining, completed, failed, _ = counts(dropped.stdout)
    assert completed == 0 and failed == 4 and remaining == 0
    ae = AE(ae_title="ABORTER")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.2.2.2")
    assoc = ae.associate(node.host, node.port, ae_title=node.aet)
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
    for _ in assoc.send_c_move(query, "STORESCP", "1.2.840.10008.5.1.4.1.2.2.2"):
        assoc.abort()
        break
    ok = movescu(node, "STORESCP", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}")
    assert final_status(ok.stdout) == "0x0000" and counts(ok.stdout)[1] == 4


def _series_of(archive_node, study: str) -> str:
    rows = json.loads(lightbox(archive_node["node"].home, "ls", "--level", "series", "--json",
                               "-k", f"StudyInstanceUID={study}").stdout)
    return rows[0]["SeriesInstanceUID"]


# -- Orthanc as a real Q/R client ------------------------------------------------------------
def _rest(url: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


def test_orthanc_queries_and_moves_through_its_rest_api(archive_node, tmp_path):
    node, studies = archive_node["node"], archive_node["studies"]
    dicom_port, http_port = free_port(), free_port()
    env = dict(os.environ, WS_AET=node.aet, WS_HOST="127.0.0.1", WS_PORT=str(node.port))
    script = PEERS / "qr_scp.sh"
    run = subprocess.run(["bash", str(script), str(dicom_port), str(tmp_path / "orthanc"), str(http_port)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    try:
        lightbox(node.home, "nodes", "add", "ORTHANC", "--aet", "ORTHANC", "--host", "127.0.0.1",
                 "--port", str(dicom_port))
        base = f"http://127.0.0.1:{http_port}"
        # C-FIND at study level through Orthanc
        q = _rest(f"{base}/modalities/{node.aet}/query",
                  {"Level": "Study", "Query": {"StudyInstanceUID": "", "PatientName": "Gen*",
                                               "ModalitiesInStudy": "CT", "NumberOfStudyRelatedInstances": ""}})
        answers = _rest(f"{base}{q['Path']}/answers?expand&simplify")
        assert {a["StudyInstanceUID"] for a in answers} == set(studies.values())
        assert all(a["NumberOfStudyRelatedInstances"] == "4" for a in answers)
        # C-MOVE of one study to Orthanc itself
        _rest(f"{base}/modalities/{node.aet}/move",
              {"Level": "Study", "Resources": [{"StudyInstanceUID": studies["jpeg"]}], "TargetAet": "ORTHANC",
               "Synchronous": True})
        deadline = time.time() + 30
        while time.time() < deadline and len(_rest(f"{base}/instances")) < 4:
            time.sleep(0.2)
        moved = _rest(f"{base}/tools/find", {"Level": "Instance", "Query": {"StudyInstanceUID": studies["jpeg"]}})
        assert len(moved) == 4
    finally:
        subprocess.run(["bash", str(script), "stop", str(tmp_path / "orthanc")], capture_output=True, timeout=60)
