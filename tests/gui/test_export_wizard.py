"""The export wizard under Xvfb: studies from the browser, a series left out, the Patient
(JPEG 2000) profile on a USB folder, Reduced de-identification with the mapping kept, the
job's progress and the verification report; what was written is read back with DCMTK's
dcmmkdir and checked with dciodvfy. Screenshots in tests/artifacts."""

from __future__ import annotations

import subprocess
import sys

import pydicom
import pytest
from PySide6.QtCore import Qt
from pydicom.uid import JPEG2000Lossless, generate_uid

from app.store.archive import Archive
from app.store.query import search
from app.ui.main import MainWindow
from conftest import ROOT, lightbox, require, screen_shot

sys.path.insert(0, str(ROOT / "tests"))
from mammo_samples import mammogram, tomo_volume  # noqa: E402

pytestmark = pytest.mark.peers


def test_export_wizard_to_usb_de_identified_and_verified(qtbot, tmp_path):
    study = generate_uid()
    objects = [mammogram("L", "CC", study=study), mammogram("R", "CC", study=study), tomo_volume("L", "CC", study=study)]
    files = []
    for i, ds in enumerate(objects):
        ds.save_as(tmp_path / f"{i}.dcm", enforce_file_format=True)
        files.append(str(tmp_path / f"{i}.dcm"))
    home = tmp_path / "home"
    lightbox(home, "import", *files)
    archive = Archive(home)
    try:
        win = MainWindow(archive, None, None)
        qtbot.addWidget(win)
        win.show()
        win.export_studies(search(archive.engine, "study", {}))
        wizard = win.export_wizard
        qtbot.waitExposed(wizard)
        page = wizard.selection
        qtbot.waitUntil(lambda: page.tree.topLevelItemCount() == 1 and page.tree.topLevelItem(0).childCount() == 3,
                        timeout=10000)
        study_item = page.tree.topLevelItem(0)
        left_out = study_item.child(2)
        left_out.setCheckState(0, Qt.Unchecked)  # untick the third series
        assert len(page.series()) == 2
        screen_shot(wizard, "export_wizard_selection.png", from_screen=False)
        wizard.next()
        wizard.medium.media.setCurrentIndex(wizard.medium.media.findData("usb"))
        assert not wizard.medium.standard.isEnabled() and wizard.medium.patient.isChecked()
        assert wizard.medium.profile() == "STD-GEN-USB-J2K"
        wizard.next()
        wizard.privacy.buttons["reduced"].setChecked(True)
        wizard.privacy.keep.setChecked(True)
        wizard.privacy.mapping.setText(str(tmp_path / "map.csv"))
        screen_shot(wizard, "export_wizard_privacy.png", from_screen=False)
        wizard.next()
        stick = tmp_path / "stick"
        wizard.destination.path.setText(str(stick))
        stored = sum((tmp_path / f"{i}.dcm").stat().st_size for i in range(2))
        qtbot.waitUntil(lambda: "MB as stored" in wizard.destination.hint.text(), timeout=10000)
        assert f"About {stored / 1e6:,.0f} MB as stored" in wizard.destination.hint.text()
        wizard.next()  # Export
        qtbot.waitUntil(lambda: wizard.progress.isComplete(), timeout=60000)
        assert wizard.progress.title() == "Export finished", wizard.progress.message.text()
        report = wizard.progress.report.toPlainText()
        assert "2 file(s) read back, all as written" in report, report
        screen_shot(wizard, "export_wizard_report.png", from_screen=False)
        written = [pydicom.dcmread(p) for p in stick.rglob("*") if p.is_file() and p.name != "DICOMDIR"]
        assert len(written) == 2 and all(d.PatientIdentityRemoved == "YES" for d in written)
        assert all(d.file_meta.TransferSyntaxUID == JPEG2000Lossless for d in written)
        assert str(left_out.data(0, Qt.UserRole)) not in {str(d.SeriesInstanceUID) for d in written}
        assert (tmp_path / "map.csv").exists()
        for path in [stick / "DICOMDIR"] + [p for p in stick.rglob("*") if p.is_file() and p.name != "DICOMDIR"]:
            run = subprocess.run([require("dciodvfy"), str(path)], capture_output=True, text=True, timeout=120)
            assert not [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")], path
        rescan = subprocess.run([require("dcmmkdir"), "--general-dvd-j2k", "--recurse", "--input-directory", str(stick),
                                 "--output-file", str(tmp_path / "DICOMDIR.dcmtk"), "PT000000"],
                                capture_output=True, text=True)
        assert rescan.returncode == 0, rescan.stderr
        win.close()
    finally:
        archive.close()
