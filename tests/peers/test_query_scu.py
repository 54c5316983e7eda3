"""`lightbox query` and `lightbox retrieve` (spec §4.2.1.3.4-5, Tables 4-14 to 4-21; C-GET
beyond the reference) against Orthanc as the PACS, and against a Lightbox node for the
failure statuses Orthanc never sends."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from pydicom.uid import generate_uid

from conftest import ROOT, NodeProcess, free_port, lightbox
from peerutil import ct_dataset, save, storescu

pytestmark = pytest.mark.peers
PEERS = ROOT.parent / "shared" / "peers" / "peers"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """Orthanc holding three studies (two patients, one name not ASCII), and a home that
    knows it as node PACS."""
    work = tmp_path_factory.mktemp("qscu")
    home = work / "home"
    home.mkdir()
    our_aet = lightbox(home, "config", "get", "node.aet").stdout.strip()
    dicom_port, http_port, our_port = free_port(), free_port(), free_port()
    lightbox(home, "config", "set", "node.port", str(our_port))
    lightbox(home, "config", "set", "policy.check_calling_ae", "false")
    env = dict(os.environ, WS_AET=our_aet, WS_HOST="127.0.0.1", WS_PORT=str(our_port))
    script = PEERS / "qr_scp.sh"
    run = subprocess.run(["bash", str(script), str(dicom_port), str(work / "orthanc"), str(http_port)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    studies = {}
    files = []
    for label, name, pid, date, modality, n in (("ct", "Gen^Erated", "GEN001", "20240102", "CT", 3),
                                                 ("mr", "Gen^Erated", "GEN001", "20240315", "MR", 2),
                                                 ("muller", "Müller^Jürgen", "MUL001", "20240316", "CT", 1)):
        study, series = generate_uid(), generate_uid()
        studies[label] = (study, series)
        for i in range(n):
            ds = ct_dataset(study, series, generate_uid(), i + 1, size=16, patient_name=name, patient_id=pid,
                            modality=modality)
            ds.StudyDate, ds.SpecificCharacterSet = date, "ISO_IR 100"
            files.append(save(ds, work / f"{label}{i}.dcm"))
    node = NodeProcess(home, aet="ORTHANC", port=dicom_port)  # only to address storescu at Orthanc
    out = storescu(node, *files)
    assert out.returncode == 0, out.stdout
    lightbox(home, "nodes", "add", "PACS", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", str(dicom_port))
    yield {"home": home, "studies": studies, "work": work}
    subprocess.run(["bash", str(script), "stop", str(work / "orthanc")], capture_output=True, timeout=60)


def query(home, node: str, *args: str) -> list[dict]:
    out = lightbox(home, "query", node, *args, "--json")
    return json.loads(out.stdout)


def test_study_level_with_wildcards_dates_and_modalities(pacs):
    rows = query(pacs["home"], "PACS", "--level", "study", "-k", "PatientName=Gen*")
    assert {r["StudyInstanceUID"] for r in rows} == {pacs["studies"]["ct"][0], pacs["studies"]["mr"][0]}
    r = next(r for r in rows if r["StudyInstanceUID"] == pacs["studies"]["ct"][0])
    assert r["PatientID"] == "GEN001" and r["StudyDate"] == "20240102" and r["NumberOfStudyRelatedInstances"] == "3"
    rows = query(pacs["home"], "PACS", "-k", "StudyDate=20240301-20240331")
    assert {r["StudyInstanceUID"] for r in rows} == {pacs["studies"]["mr"][0], pacs["studies"]["muller"][0]}
    rows = query(pacs["home"], "PACS", "-k", "ModalitiesInStudy=MR")
    assert [r["StudyInstanceUID"] for r in rows] == [pacs["studies"]["mr"][0]]


def test_non_ascii_names_round_trip(pacs):
    rows = query(pacs["home"], "PACS", "-k", "PatientName=Müller*")
    assert [r["PatientName"] for r in rows] == ["Müller^Jürgen"]


def test_series_level_hierarchical_and_relational(pacs):
    study, series = pacs["studies"]["ct"]
    rows = query(pacs["home"], "PACS", "--level", "series", "-k", f"StudyInstanceUID={study}")
    assert [(r["SeriesInstanceUID"], r["Modality"], r["NumberOfSeriesRelatedInstances"]) for r in rows] == \
        [(series, "CT", "3")]
    # no Study Instance UID: relational, negotiated (Orthanc answers it)
    rows = query(pacs["home"], "PACS", "--level", "series", "-k", "Modality=MR")
    assert [r["SeriesInstanceUID"] for r in rows] == [pacs["studies"]["mr"][1]]
    rows = query(pacs["home"], "PACS", "--level", "image", "-k", f"StudyInstanceUID={study}",
                 "-k", f"SeriesInstanceUID={series}")
    assert len(rows) == 3 and {r["InstanceNumber"] for r in rows} == {"1", "2", "3"}


def test_failures_are_explained(pacs, tmp_path, node_factory):
    """Table 4-16: a failure status is reported with its meaning; Table 4-17: an unreachable
    node and a refused association are reported; the exit status is non-zero."""
    home = pacs["home"]
    lb_home = tmp_path / "lb"
    lb_home.mkdir()
    node = node_factory(lb_home).start()
    lightbox(home, "nodes", "add", "LB", "--aet", node.aet, "--host", "127.0.0.1", "--port", str(node.port),
             "--replace")
    # a series level key in a study level query: Lightbox answers 0106 (§4.2.1.4.3.4)
    bad = lightbox(home, "query", "LB", "-k", "Modality=CT", check=False)
    assert bad.returncode != 0 and "status 0x0106" in bad.stderr, bad.stderr
    lightbox(home, "nodes", "add", "NOBODY", "--aet", "NOBODY", "--host", "127.0.0.1", "--port", str(free_port()))
    gone = lightbox(home, "query", "NOBODY", check=False)
    assert gone.returncode != 0 and "cannot connect to NOBODY@127.0.0.1" in gone.stderr, gone.stderr
    lightbox(home, "nodes", "add", "WRONGAE", "--aet", "WRONGAE", "--host", "127.0.0.1", "--port", str(node.port))
    rejected = lightbox(home, "query", "WRONGAE", check=False)
    assert rejected.returncode != 0 and "rejected the association" in rejected.stderr, rejected.stderr
    none = lightbox(home, "query", "PACS", "--model", "patient-study", "--level", "series", check=False)
    assert none.returncode != 0 and "has no series level" in none.stderr


def _local(home, study: str) -> list[dict]:
    return json.loads(lightbox(home, "ls", "--level", "instance", "--json", "-k", f"StudyInstanceUID={study}").stdout)


def _retrieve(home, node: str, *args: str) -> tuple[int, dict, str]:
    proc = lightbox(home, "retrieve", node, *args, "--json", check=False, timeout=300)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}, proc.stderr


def test_retrieve_by_move_and_by_get(pacs):
    """C-MOVE to ourselves (the command receives while it runs when no node is up) and C-GET
    over one association: everything arrives through the store pipeline and is listed."""
    home = pacs["home"]
    study, series = pacs["studies"]["ct"]
    rc, job, err = _retrieve(home, "PACS", "--study", study)
    assert rc == 0 and job["status"] == "done", (job, err)
    assert job["message"] == "3 instance(s) retrieved from ORTHANC" and "receiving as" in err
    assert len(_local(home, study)) == 3
    mr = pacs["studies"]["mr"][0]
    rc, job, err = _retrieve(home, "PACS", "--study", mr, "--method", "get")
    assert rc == 0 and job["status"] == "done" and job["total"] == 2, (job, err)
    assert len(_local(home, mr)) == 2


def test_retrieve_a_series_into_a_running_node(pacs):
    """With the node running ('lightbox node' or the GUI), the C-MOVE arrives there."""
    home = pacs["home"]
    study, series = pacs["studies"]["muller"]
    port = int(lightbox(home, "config", "get", "node.port").stdout)
    node = NodeProcess(home, port=port, aet=lightbox(home, "config", "get", "node.aet").stdout.strip()).start()
    try:
        rc, job, err = _retrieve(home, "PACS", "--study", study, "--series", series)
        assert rc == 0 and job["status"] == "done", (job, err)
        assert "receiving as" not in err
        rows = _local(home, study)
        assert len(rows) == 1 and rows[0]["PatientName"] == "Müller^Jürgen"
    finally:
        node.stop()


def test_move_destination_unknown_says_what_to_configure(pacs, tmp_path, node_factory):
    """Table 4-20: a workstation whose storage AE (§4.4.1.2: its own AE title and port) the
    PACS does not know is told exactly what the PACS must be given, and that C-GET needs none
    of it: A801 from a Lightbox node, a general failure (C000) from Orthanc."""
    home = tmp_path / "stranger"
    home.mkdir()
    ours = lightbox(pacs["home"], "config", "get", "node.aet").stdout.strip()
    lightbox(home, "config", "set", "node.aet", ours)                 # a caller the PACS knows ...
    lightbox(home, "config", "set", "services.storage.aet", "OTHERSTORE")  # ... but not this destination
    storage_port = str(free_port())
    lightbox(home, "config", "set", "services.storage.port", storage_port)
    lightbox(home, "config", "set", "node.port", str(free_port()))
    pacs_port = next(n["port"] for n in json.loads(lightbox(pacs["home"], "nodes", "list", "--json").stdout)
                     if n["name"] == "PACS")
    lightbox(home, "nodes", "add", "PACS", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", str(pacs_port))
    rc, job, err = _retrieve(home, "PACS", "--study", pacs["studies"]["ct"][0])
    assert rc != 0 and job.get("status") == "failed", (job, err)
    assert "status 0xC000" in job["message"] and "AE title OTHERSTORE" in job["message"], job["message"]

    lb_home = tmp_path / "lbpacs"
    lb_home.mkdir()
    node = node_factory(lb_home).start()
    lightbox(lb_home, "import", *map(str, sorted(pacs["work"].glob("ct*.dcm"))))
    lightbox(home, "nodes", "add", "LBPACS", "--aet", node.aet, "--host", "127.0.0.1", "--port", str(node.port))
    rc, job, err = _retrieve(home, "LBPACS", "--study", pacs["studies"]["ct"][0])
    assert rc != 0 and job.get("status") == "failed", (job, err)
    assert f"{node.aet} does not know this workstation as a move destination: add AE title OTHERSTORE, " \
           f"host 127.0.0.1, port {storage_port}" in job["message"], job["message"]
    assert "--method get" in job["message"]
