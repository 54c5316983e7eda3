"""Correcting a study from the browser under Xvfb: the context menu's Correct… dialog, patient
data changed, then the study moved to a procedure of the worklist; the reference's warning
asked first; the browser shows the result and the procedure. Screenshots in tests/artifacts."""

from __future__ import annotations

from pydicom.uid import generate_uid
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from app.net.worklist import Scope
from app.store import worklist
from app.store.archive import Archive
from app.store.query import search
from app.ui.main import MainWindow
from conftest import screen_shot
from tests.peers.peerutil import ct_dataset, save
from tests.worklist_samples import worklist_item


def test_correct_from_the_browser(qtbot, tmp_path, monkeypatch):
    archive = Archive(tmp_path / "home")
    try:
        study, series = generate_uid(), generate_uid()
        for i in range(2):
            ds = ct_dataset(study, series, generate_uid(), i + 1, size=16, patient_id="OLD1")
            assert archive.ingest.store_file(save(ds, tmp_path / f"{i}.dcm")).ok
        item = worklist_item(patient_name="Right^Patient", patient_id="RIGHT1", modality="CT", start_date="20260310",
                             accession="ACC-RIGHT", study_uid="1.2.826.0.1.3680043.10.6.1",
                             requested_procedure_id="RP1", sps_id="SP1", requested_description="CT CHEST")
        worklist.sync(archive.engine, "RIS", [item], Scope("*", "*", "20260101", "20261231"))
        warned = []
        monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]) or QMessageBox.Yes)
        failed = []
        monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: failed.append(a[2]))
        win = MainWindow(archive, None, None)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.browser.studies.rowCount() == 1, timeout=10000)

        def fill_patient():
            d = win.correct_dialog
            d.fields["PatientName"].setText("DOE^JANE")
            screen_shot(d, "correct_dialog.png", from_screen=False)
            d._confirm()
        QTimer.singleShot(300, fill_patient)
        win.correct_study(win.browser.studies.rows[0])
        qtbot.waitUntil(lambda: bool(search(archive.engine, "patient", {"PatientID": "OLD1"}))
                        and search(archive.engine, "patient", {"PatientID": "OLD1"})[0]["PatientName"] == "DOE^JANE"
                        or bool(failed), timeout=20000)
        assert not failed
        assert "delete them there" in warned[0]

        def move():
            d = win.correct_dialog
            d.tabs.setCurrentIndex(2)
            d.procedures.selectRow(0)
            screen_shot(d, "correct_dialog_procedure.png", from_screen=False)
            d._confirm()
        qtbot.waitUntil(lambda: win.browser.studies.rowCount() == 1, timeout=10000)
        QTimer.singleShot(300, move)
        win.correct_study(win.browser.studies.rows[0])
        qtbot.waitUntil(lambda: bool(search(archive.engine, "study", {"StudyInstanceUID": "1.2.826.0.1.3680043.10.6.1"})),
                        timeout=20000)
        assert not search(archive.engine, "study", {"StudyInstanceUID": study})
        qtbot.waitUntil(lambda: win.browser.studies.rowCount() == 1
                        and win.browser.studies.rows[0]["StudyInstanceUID"] == "1.2.826.0.1.3680043.10.6.1",
                        timeout=10000)
        row = win.browser.studies.rows[0]
        assert (row["PatientID"], row["AccessionNumber"]) == ("RIGHT1", "ACC-RIGHT")
        assert row["_procedure"] == "CT CHEST (RP1/SP1)"
        screen_shot(win, "browser_after_correction.png", from_screen=False)
    finally:
        archive.close()
