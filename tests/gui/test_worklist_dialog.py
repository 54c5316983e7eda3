"""The worklist dialog under Xvfb against DCMTK wlmscpfs: Refresh queries the provider, the
items show with Table 4-24's columns (names in their character sets), the filters narrow
them, the details pane has every return key, a provider that is down is named with the
time of its last good query. Screenshots in tests/artifacts."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt

from app.store.archive import Archive
from app.store.nodes import RemoteNode, add_node
from app.ui.main import MainWindow
from conftest import screen_shot
from tests.worklist_samples import WorklistScp, varied_items, worklist_item


def test_worklist_dialog_refresh_filter_details_and_a_provider_down(qtbot, tmp_path):
    today = dt.date.today()
    items = varied_items(30, today) + [
        worklist_item(patient_name="Müller^Jürgen", patient_id="MUE1", modality="MG", station_aet="LIGHTBOX",
                      start_date=today, charset="ISO_IR 192", accession="ACC-MUE", study_uid="1.2.826.0.1.3680043.10.9.1")]
    scp = WorklistScp(tmp_path / "ris", items)
    archive = Archive(tmp_path / "home")
    try:
        archive.settings.set("node.aet", "LIGHTBOX")
        archive.settings.set("worklist.own_aet_only", False)
        archive.settings.set("worklist.days_past", 3)
        archive.settings.set("worklist.days_future", 3)
        add_node(archive.engine, RemoteNode("RIS", scp.aet, "127.0.0.1", scp.port, ("worklist",)))
        win = MainWindow(archive, None, None)
        qtbot.addWidget(win)
        win.show()
        win.open_worklist()
        dialog = win.worklist_dialog
        qtbot.waitExposed(dialog)
        qtbot.waitUntil(lambda: "No worklist provider has been queried yet" in dialog.providers.text(), timeout=5000)
        dialog.refresh()
        qtbot.waitUntil(lambda: dialog.model.rowCount() == 31, timeout=30000)
        headers = [dialog.model.headerData(i, Qt.Horizontal) for i in range(dialog.model.columnCount())]
        for wanted in ("Date", "Modality", "Patient's Name", "Patient ID", "Accession", "Procedure",
                       "Step ID", "Scheduled Station Name", "Performing physician", "Priority", "Allergies",
                       "Pregnancy Status", "Special Needs"):
            assert wanted in headers, wanted
        assert "RIS</b>: last successful query" in dialog.providers.text() and "(31 items)" in dialog.providers.text()
        dialog.search.setText("mue1")  # by Patient ID, case folded
        assert dialog.model.rowCount() == 1
        assert dialog.model.data(dialog.model.index(0, headers.index("Patient's Name"))) == "Müller, Jürgen"
        dialog.table.selectRow(0)
        found = dialog.details.findItems("Accession Number", Qt.MatchExactly | Qt.MatchRecursive, 0)
        assert found and found[0].text(1) == "ACC-MUE"
        assert dialog.details.findItems("Scheduled Procedure Step ID", Qt.MatchExactly | Qt.MatchRecursive, 0)
        dialog.search.setText("")
        dialog.modality.setCurrentText("CT")
        assert 0 < dialog.model.rowCount() < 31
        assert all(dialog.model.rows[i]["Modality"] == "CT" for i in range(dialog.model.rowCount()))
        dialog.modality.setCurrentIndex(0)
        dialog.ours.setChecked(True)
        assert all(r["ScheduledStationAETitle"] == "LIGHTBOX" for r in dialog.model.rows)
        dialog.ours.setChecked(False)
        qtbot.wait(100)
        screen_shot(dialog, "worklist_dialog.png", from_screen=False)
        scp.stop()
        dialog.refresh()
        qtbot.waitUntil(lambda: "last attempt failed" in dialog.providers.text(), timeout=30000)
        assert dialog.model.rowCount() == 31  # the last good list stays
        screen_shot(dialog, "worklist_dialog_provider_down.png", from_screen=False)
        dialog.close()
    finally:
        scp.stop()
        archive.close()
