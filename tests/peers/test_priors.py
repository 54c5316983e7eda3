"""Priors from the archive (issue 7): the hanging of a study fetches the patient's earlier
studies from the node of hanging.priors_node — Orthanc as the PACS — so current and prior
hang side by side; fetched once; an archive that is down leaves the hanging to the priors
held here, with a warning. The viewer runs the same job (tests/gui/test_hanging_viewer.py)."""

from __future__ import annotations

import json

import pytest
from pydicom.uid import generate_uid

from conftest import free_port, lightbox, ls_json
from peerutil import OrthancPacs, ct_dataset, save
from tests.mammo_samples import mammogram

pytestmark = pytest.mark.peers
FOUR = [("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")]


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """Orthanc holding two earlier screening studies of patient MG001 (2025, 2023), a CT of
    hers and a screening of another patient; a home holding her 2026 screening only, that
    knows Orthanc as node PACS."""
    work = tmp_path_factory.mktemp("priors")
    home = work / "home"
    home.mkdir()
    our_aet = lightbox(home, "config", "get", "node.aet").stdout.strip()
    our_port = free_port()
    lightbox(home, "config", "set", "node.port", str(our_port))
    orthanc = OrthancPacs(work, our_aet, our_port)
    studies, remote = {}, []
    for date, patient in (("20260310", "MG001"), ("20250302", "MG001"), ("20230115", "MG001"),
                          ("20240101", "OTHER")):
        studies[(date, patient)] = study = generate_uid()
        for lat, view in FOUR:
            path = save(mammogram(lat, view, study=study, date=date, patient=patient, size=(120, 96)),
                        work / f"{patient}{date}{lat}{view}.dcm")
            if date == "20260310":
                lightbox(home, "import", str(path))
            else:
                remote.append(path)
    ct_study = studies[("20250601", "MG001-CT")] = generate_uid()  # newer than her 2025 screening: not a prior of it
    ct = ct_dataset(ct_study, generate_uid(), generate_uid(), 1, size=16, patient_name="Breast^MG001", patient_id="MG001")
    ct.StudyDate = "20250601"
    remote.append(save(ct, work / "ct.dcm"))
    orthanc.store(remote)
    lightbox(home, "nodes", "add", "PACS", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port))
    lightbox(home, "config", "set", "policy.check_calling_ae", "false")
    yield {"home": home, "studies": studies, "work": work}
    orthanc.stop()


def _hang(home, study: str, *args: str) -> tuple[dict, str]:
    proc = lightbox(home, "hang", "--study", study, "--json", *args, timeout=300)
    return json.loads(proc.stdout), proc.stderr


def test_hang_fetches_the_newest_priors_once_and_hangs_them(pacs):
    home, studies = pacs["home"], pacs["studies"]
    current = studies[("20260310", "MG001")]
    listed, _ = _hang(home, current, "--local")
    assert listed["stages"][0]["name"] == "Current 4-up"  # no prior here yet: no overview
    lightbox(home, "config", "set", "hanging.priors_node", "PACS")
    lightbox(home, "config", "set", "hanging.priors_count", "1")
    listed, err = _hang(home, current)
    assert "1 prior study (20250302), 4 instance(s), retrieved from ORTHANC" in err, err
    assert listed["stages"][0]["name"].startswith("Overview")
    assert len(ls_json(home, "instance", f"StudyInstanceUID={studies[('20250302', 'MG001')]}")) == 4
    assert not ls_json(home, "instance", f"StudyInstanceUID={studies[('20230115', 'MG001')]}")  # only the newest
    assert not ls_json(home, "instance", f"StudyInstanceUID={studies[('20240101', 'OTHER')]}")  # not hers
    assert not ls_json(home, "instance", f"StudyInstanceUID={studies[('20250601', 'MG001-CT')]}")  # not a mammogram
    _, err = _hang(home, current)
    assert "no earlier studies on ORTHANC that are not here already" in err, err
    lightbox(home, "config", "set", "hanging.priors_count", "2")
    lightbox(home, "config", "set", "hanging.priors_method", "get")
    _, err = _hang(home, current)
    assert "1 prior study (20230115), 4 instance(s)" in err, err


def test_an_archive_that_is_down_leaves_the_priors_held_here(pacs, tmp_path):
    home = tmp_path / "home"
    current = generate_uid()
    for lat, view in FOUR:
        lightbox(home, "import", str(save(mammogram(lat, view, study=current, size=(64, 48)), tmp_path / f"{lat}{view}.dcm")))
    lightbox(home, "nodes", "add", "GONE", "--aet", "GONE", "--host", "127.0.0.1", "--port", str(free_port()))
    lightbox(home, "config", "set", "hanging.priors_node", "GONE")
    listed, err = _hang(home, current)
    assert listed["stages"][0]["name"] == "Current 4-up"
    assert "warning: the priors could not be fetched from GONE" in err and "hanging with the priors held here" in err
