"""The workstation window in a real X server: log in, browse and search the archive, and
see what the embedded node receives appear without a refresh."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from app.net.node import Node
from app.store import users
from app.store.archive import Archive
from app.ui.login import FirstAdminDialog, LoginDialog
from app.ui.main import MainWindow
from tests.conftest import free_port, run_dcmtk, screen_shot
from tests.peers.peerutil import ct_dataset, save

def screenshot(widget, name: str) -> Path:
    return screen_shot(widget, name, from_screen=False)


def _study(tmp_path: Path, name: str, pid: str, study_date: str, modality: str, n: int, description: str):
    study, series = generate_uid(), generate_uid()
    folder = tmp_path / "in" / pid
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ds = ct_dataset(study, series, generate_uid(), i + 1, size=16)
        ds.PatientName, ds.PatientID, ds.StudyDate, ds.Modality = name, pid, study_date, modality
        ds.StudyDescription, ds.AccessionNumber = description, f"ACC{pid}"
        ds.ReferringPhysicianName = "Referrer^Rita"
        save(ds, folder / f"{i}.dcm")
    return folder


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "home")
    a.settings.set("policy.check_calling_ae", "false")
    today = date.today().strftime("%Y%m%d")
    for args in (("Doe^Jane", "P1", today, "CT", 3, "CT THORAX"),
                 ("Doe^John", "P2", "20240105", "MR", 2, "MR KNEE"),
                 ("Müller^Jürgen", "P3", "20231111", "CT", 1, "CT HEAD")):
        for f in sorted(_study(tmp_path, *args).iterdir()):
            assert a.ingest.store_file(f).ok
    yield a
    a.close()


def _shown(win) -> list[str]:
    model = win.browser.studies
    return sorted(model.index(r, 1).data() for r in range(model.rowCount()))


def test_browse_and_search(qtbot, archive):
    user = users.add_user(archive.engine, "rita", "reading", "radiology 1", actor="test")
    win = MainWindow(archive, None, user)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: _shown(win) == ["P1", "P2", "P3"], timeout=5000)
    # the columns a reader expects, formatted for reading
    row = next(r for r in range(3) if win.browser.studies.index(r, 1).data() == "P1")
    cells = [win.browser.studies.index(row, c).data() for c in range(win.browser.studies.columnCount())]
    assert cells[0] == "Doe, Jane" and cells[8] == "CT" and cells[9] == "1" and cells[10] == "3"
    assert cells[11] == "Referrer, Rita"

    qtbot.keyClicks(win.browser.name, "doe")  # wildcard appended, case-insensitive
    qtbot.waitUntil(lambda: _shown(win) == ["P1", "P2"], timeout=5000)
    win.browser.modality.setCurrentText("MR")
    qtbot.waitUntil(lambda: _shown(win) == ["P2"], timeout=5000)
    win.browser.clear_search()
    qtbot.waitUntil(lambda: _shown(win) == ["P1", "P2", "P3"], timeout=5000)
    win.browser.date_preset.setCurrentText("Today")
    qtbot.waitUntil(lambda: _shown(win) == ["P1"], timeout=5000)
    win.browser.clear_search()
    win.browser.name.setText("Mü")  # names in Latin-1 and UTF-8 alike (QtTest types ASCII only)
    qtbot.waitUntil(lambda: _shown(win) == ["P3"], timeout=5000)
    win.browser.clear_search()
    qtbot.waitUntil(lambda: len(_shown(win)) == 3, timeout=5000)

    # patients -> studies: choosing a patient shows only their studies
    assert win.browser.patients.rowCount() == 3
    p2 = next(r for r, p in enumerate(win.browser.patients.rows) if p["PatientID"] == "P2")
    win.browser.patient_view.selectRow(p2)
    assert _shown(win) == ["P2"]
    win.browser.patient_view.clearSelection()
    assert _shown(win) == ["P1", "P2", "P3"]
    row = next(r for r in range(3) if win.browser.studies.index(r, 1).data() == "P1")

    # selecting a study lists its series, with a thumbnail made in the background and cached
    win.browser.study_view.selectRow(row)
    qtbot.waitUntil(lambda: win.browser.series.rowCount() == 1, timeout=5000)
    assert win.browser.series.index(0, 6).data() == "3"
    qtbot.waitUntil(lambda: win.browser.series.index(0, 0).data(Qt.DecorationRole) is not None, timeout=10000)
    icon = win.browser.series.index(0, 0).data(Qt.DecorationRole)
    assert icon.width() == 96 or icon.height() == 96
    assert list((archive.home / "cache" / "thumbnails").glob("*.png"))
    assert win.user_state.text().startswith("rita")
    screenshot(win, "browser.png")


def test_received_study_appears_without_refresh(qtbot, archive, tmp_path):
    port = free_port()
    node = Node(archive, aet="LIGHTBOX", port=port, host="127.0.0.1")
    win = MainWindow(archive, node, None)
    qtbot.addWidget(win)
    win.start_node()
    win.show()
    qtbot.waitExposed(win)
    try:
        assert f"127.0.0.1:{port}" in win.node_state.text()
        qtbot.waitUntil(lambda: win.assoc_state.text() == "0/12 associations", timeout=3000)
        qtbot.waitUntil(lambda: len(_shown(win)) == 3, timeout=5000)
        assert run_dcmtk("storescu", "-aec", "LIGHTBOX", "127.0.0.1", str(port),
                         get_testdata_file("CT_small.dcm")).returncode == 0
        # the node's index writer announces it; the browser searches again (< 1 s)
        qtbot.waitUntil(lambda: len(_shown(win)) == 4, timeout=1500)
        screenshot(win, "browser_after_receive.png")
    finally:
        node.stop(grace=1)


def test_first_start_creates_an_admin_then_login(qtbot, tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        first = FirstAdminDialog(archive.engine)
        qtbot.addWidget(first)
        first.show()
        qtbot.keyClicks(first.name, "alice")
        qtbot.keyClicks(first.full_name, "Alice Admin")
        qtbot.keyClicks(first.password, "correct horse")
        qtbot.keyClicks(first.repeat, "correct horsE")
        first.buttons.button(QDialogButtonBox.Ok).click()
        assert "differ" in first.error.text()
        first.repeat.clear()
        qtbot.keyClicks(first.repeat, "correct horse")
        screenshot(first, "first_admin.png")
        with qtbot.waitSignal(first.accepted, timeout=10000):
            first.buttons.button(QDialogButtonBox.Ok).click()
        assert first.user.name == "alice" and first.user.role == "admin"

        login = LoginDialog(archive.engine)
        qtbot.addWidget(login)
        login.show()
        qtbot.keyClicks(login.name, "alice")
        qtbot.keyClicks(login.password, "wrong one")
        login.buttons.button(QDialogButtonBox.Ok).click()
        qtbot.waitUntil(lambda: "Wrong user name or password" in login.error.text(), timeout=10000)
        screenshot(login, "login_refused.png")
        assert login.password.text() == ""  # never left in the field
        qtbot.keyClicks(login.password, "correct horse")
        with qtbot.waitSignal(login.accepted, timeout=10000):
            qtbot.keyClick(login.password, Qt.Key_Return)
        assert login.user.name == "alice"
    finally:
        archive.close()


def test_import_runs_as_a_job_with_progress(qtbot, archive, tmp_path):
    win = MainWindow(archive, None, users.add_user(archive.engine, "tom", "technologist", "technology 1",
                                                    actor="test"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: len(_shown(win)) == 3, timeout=5000)
    folder = _study(tmp_path, "Roe^Richard", "P9", "20250101", "CR", 40, "CHEST PA")
    (folder / "readme.txt").write_text("not DICOM")
    win.start_import([folder])

    def finished():
        jobs = win.jobs_panel.model.jobs
        return bool(jobs) and jobs[0]["status"] == "done"
    qtbot.waitUntil(finished, timeout=20000)
    job = win.jobs_panel.model.jobs[0]
    assert job["message"] == "40 imported, 0 already present, 1 rejected (not DICOM or unreadable)"
    assert job["owner"] == "tom" and (job["done"], job["total"]) == (41, 41)
    qtbot.waitUntil(lambda: len(_shown(win)) == 4, timeout=5000)  # the browser saw it arrive
    screenshot(win, "import_job.png")
    win.close()


def test_delete_asks_twice_for_a_study_never_archived(qtbot, archive, monkeypatch):
    from PySide6.QtWidgets import QMessageBox
    tom = users.add_user(archive.engine, "tom", "technologist", "technology 1", actor="test")
    win = MainWindow(archive, None, tom)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: len(_shown(win)) == 3, timeout=5000)
    asked: list[str] = []
    answers = {"question": QMessageBox.Yes, "warning": QMessageBox.No}
    monkeypatch.setattr(QMessageBox, "question", lambda _p, title, text, *a: (asked.append(title), answers["question"])[1])
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, title, text, *a: (asked.append(title), answers["warning"])[1])
    row = next(r for r in win.browser.studies.rows if r["PatientID"] == "P2")
    win.delete_studies([row])
    qtbot.waitUntil(lambda: len(asked) == 2, timeout=5000)
    assert asked == ["Delete studies", "Not archived"]  # declined the second time: nothing deleted
    qtbot.wait(300)
    assert len(_shown(win)) == 3
    answers["warning"] = QMessageBox.Yes
    win.delete_studies([row])
    qtbot.waitUntil(lambda: _shown(win) == ["P1", "P3"], timeout=5000)
    assert "Deleted 1 stud" in win.statusBar().currentMessage()

    rita = users.add_user(archive.engine, "rita", "reading", "radiology 1", actor="test")
    reader = MainWindow(archive, None, rita)
    qtbot.addWidget(reader)
    asked.clear()
    reader.delete_studies([row])
    assert asked == ["Delete"]  # told that the role cannot delete


def test_send_to_a_node_runs_as_a_job(qtbot, archive, tmp_path, monkeypatch):
    """"Send to…" on a study: the dialog lists the nodes that take storage, Send queues a job,
    the jobs panel follows it to the end and a real DCMTK storescp has the images."""
    import subprocess

    from app.store import nodes
    from app.store.nodes import RemoteNode
    from app.ui.send_dialog import SendDialog
    from tests.conftest import dcmtk, wait_port
    port = free_port()
    received = tmp_path / "received"
    received.mkdir()
    scp = subprocess.Popen([dcmtk("storescp"), "+xa", "-aet", "PACS", "-od", str(received), str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(port, "127.0.0.1", proc=scp)
        nodes.add_node(archive.engine, RemoteNode("PACS", "PACS", "127.0.0.1", port, ("echo", "store")))
        nodes.add_node(archive.engine, RemoteNode("PRINTER", "PRINTER", "127.0.0.1", 1, ("print",)))
        tom = users.add_user(archive.engine, "tom", "technologist", "technology 1", actor="test")
        win = MainWindow(archive, None, tom)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: len(_shown(win)) == 3, timeout=5000)
        seen = {}

        def exec_(dialog):
            dialog.show()
            qtbot.waitExposed(dialog)
            seen["nodes"] = [dialog.list.item(i).text() for i in range(dialog.list.count())]
            screenshot(dialog, "send_dialog.png")
            return SendDialog.Accepted
        monkeypatch.setattr(SendDialog, "exec", exec_)
        row = next(r for r in win.browser.studies.rows if r["PatientID"] == "P1")
        win.send_studies([row])
        assert seen["nodes"] == [f"PACS — PACS@127.0.0.1:{port}"]  # the printer takes no images

        def finished():
            jobs = win.jobs_panel.model.jobs
            return bool(jobs) and jobs[0]["status"] in ("done", "failed")
        qtbot.waitUntil(finished, timeout=30000)
        job = win.jobs_panel.model.jobs[0]
        assert job["status"] == "done" and job["message"] == "3 sent to PACS", job
        assert job["owner"] == "tom" and job["title"].startswith("Send study ")
        assert len(list(received.iterdir())) == 3
        screenshot(win, "send_job.png")
        win.close()
    finally:
        scp.kill()
        scp.wait(10)
