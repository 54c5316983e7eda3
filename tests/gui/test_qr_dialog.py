"""The Query / Retrieve dialog in a real X server against Orthanc as the PACS: search with
the form, see studies (merged over two nodes), expand one into its series, retrieve a
series by C-GET, and retry a failed C-MOVE with C-GET in one click from the jobs panel."""

from __future__ import annotations

import os
import subprocess

import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt

from app.store import nodes, users
from app.store.archive import Archive
from app.store.nodes import RemoteNode
from app.ui.main import MainWindow
from tests.conftest import ROOT, free_port, screen_shot
from tests.peers.peerutil import ct_dataset, run_tool, save

PEERS = ROOT.parent / "shared" / "peers" / "peers"


@pytest.fixture
def pacs(tmp_path):
    archive = Archive(tmp_path / "home")
    dicom_port, http_port = free_port(), free_port()
    env = dict(os.environ, WS_AET=archive.settings["node.aet"], WS_HOST="127.0.0.1", WS_PORT=str(free_port()))
    script = PEERS / "qr_scp.sh"
    run = subprocess.run(["bash", str(script), str(dicom_port), str(tmp_path / "orthanc"), str(http_port)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    studies, files = [], []
    for n, (name, date_, modality) in enumerate((("Gen^Anna", "20240105", "CT"), ("Gen^Bert", "20240210", "MR"))):
        study, series = generate_uid(), generate_uid()
        studies.append((study, series))
        for i in range(2):
            ds = ct_dataset(study, series, generate_uid(), i + 1, size=16, patient_name=name,
                            patient_id=f"PID{n}", modality=modality)
            ds.StudyDate = date_
            files.append(save(ds, tmp_path / f"s{n}_{i}.dcm"))
    out = run_tool("storescu", "-aet", "TEST", "-aec", "ORTHANC", "127.0.0.1", str(dicom_port), *map(str, files))
    assert out.returncode == 0, out.stdout
    nodes.add_node(archive.engine, RemoteNode("PACS", "ORTHANC", "127.0.0.1", dicom_port,
                                              ("echo", "find", "move", "get", "store")))
    # the same PACS under a second name: the enterprise query merges what both answer
    nodes.add_node(archive.engine, RemoteNode("MIRROR", "ORTHANC", "127.0.0.1", dicom_port, ("find",)))
    yield archive, studies
    archive.close()
    subprocess.run(["bash", str(script), "stop", str(tmp_path / "orthanc")], capture_output=True, timeout=60)


def test_search_expand_retrieve_and_retry_with_get(qtbot, pacs):
    archive, studies = pacs
    tom = users.add_user(archive.engine, "tom", "technologist", "technology 1", actor="test")
    win = MainWindow(archive, None, tom)
    qtbot.addWidget(win)
    win.show()
    win.open_query_retrieve()
    dialog = win.qr_dialog
    qtbot.waitExposed(dialog)
    assert [dialog.node_list.item(i).text().split(" — ")[0] for i in range(dialog.node_list.count())] == \
        ["MIRROR", "PACS"]
    for i in range(dialog.node_list.count()):
        dialog.node_list.item(i).setCheckState(Qt.Checked)
    dialog.fields["PatientName"].setText("Gen")
    dialog.search()
    qtbot.waitUntil(lambda: dialog.search_button.isEnabled(), timeout=20000)
    assert dialog.results.topLevelItemCount() == 2, dialog.status.text()
    first = dialog.results.topLevelItem(0)  # newest first
    assert first.text(0) == "Gen Bert" or "Bert" in first.text(0)
    assert first.text(8) == "MIRROR, PACS" and first.text(7) == "2"
    assert "2 studies found" in dialog.status.text()
    older = dialog.results.topLevelItem(1)
    older.setExpanded(True)
    qtbot.waitUntil(lambda: older.childCount() == 1, timeout=20000)
    assert older.child(0).data(0, Qt.UserRole) == studies[0][1]
    assert older.child(0).text(8) == "MIRROR"  # asked of the first node that answers queries
    screen_shot(dialog, "qr_dialog.png", from_screen=False)

    # C-MOVE: nothing listens for this workstation here (no node in this test), so it fails;
    # the jobs panel offers C-GET in one click
    dialog.results.clearSelection()
    first.setSelected(True)
    dialog.method.setCurrentIndex(0)
    dialog.retrieve()
    panel = win.jobs_panel

    def job_is(status):
        jobs = panel.model.jobs
        return bool(jobs) and jobs[0]["status"] == status
    qtbot.waitUntil(lambda: job_is("failed"), timeout=60000)
    assert "this workstation" in panel.model.jobs[0]["message"]
    panel.view.selectRow(0)
    assert panel.get_button.isVisible() and panel.get_button.isEnabled()
    panel.get_button.click()
    qtbot.waitUntil(lambda: job_is("done"), timeout=60000)
    assert panel.model.jobs[0]["title"].endswith("from PACS (C-GET)")  # MIRROR does not retrieve

    # a series by C-GET from the dialog
    dialog.results.clearSelection()
    older.child(0).setSelected(True)
    dialog.method.setCurrentIndex(1)
    dialog.retrieve()
    qtbot.waitUntil(lambda: len(panel.model.jobs) == 2 and job_is("done"), timeout=60000)
    from app.store.query import search
    assert len(search(archive.engine, "instance", {"StudyInstanceUID": studies[0][0]})) == 2
    assert len(search(archive.engine, "instance", {"StudyInstanceUID": studies[1][0]})) == 2
    screen_shot(win, "qr_retrieved.png", from_screen=False)
    dialog.close()
    win.close()
