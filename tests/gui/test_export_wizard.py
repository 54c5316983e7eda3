"""The export wizard under Xvfb: studies from the browser, a series left out, the Patient
(JPEG 2000) profile on a USB folder, Reduced de-identification with the mapping kept, the
job's progress and the verification report; what was written is read back with DCMTK's
dcmmkdir and checked with dciodvfy. Images with burned-in annotation are pointed out before a
de-identified export, and can be left out of it (the wizard and `lightbox export`).
Screenshots in tests/artifacts."""

from __future__ import annotations

import subprocess
import sys

import pydicom
import pytest
from PySide6.QtCore import Qt
from pydicom.uid import JPEG2000Lossless, generate_uid

from app.store.archive import Archive
from app.store.query import search
from app.ui.export_wizard import ExportWizard
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


def _burned_in_study(tmp_path) -> tuple[list[str], str, str]:
    """A study of two series: three screen captures with Burned In Annotation YES (#2) and a
    plain mammogram (#1). The files, and the two Series Instance UIDs (burned-in, clean)."""
    study, burned, clean = generate_uid(), generate_uid(), generate_uid()
    objects = [mammogram("L", "CC", study=study, series=clean)]
    for i in range(3):
        ds = mammogram("R", "MLO", study=study, series=burned)
        ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 2, i + 1, "Annotated views"
        ds.BurnedInAnnotation = "YES"
        objects.append(ds)
    objects[0].SeriesDescription = "Screening"
    files = []
    for i, ds in enumerate(objects):
        ds.save_as(tmp_path / f"b{i}.dcm", enforce_file_format=True)
        files.append(str(tmp_path / f"b{i}.dcm"))
    return files, burned, clean


def test_export_wizard_warns_about_burned_in_annotation(qtbot, tmp_path):
    files, burned, clean = _burned_in_study(tmp_path)
    home = tmp_path / "home"
    lightbox(home, "import", *files)
    archive = Archive(home)
    try:
        from sqlalchemy import select

        from app.store.schema import instance
        with archive.engine.connect() as conn:  # one burned-in file unreadable in the archive: not counted
            path = conn.execute(select(instance.c.path).where(instance.c.InstanceNumber == "3")).scalar_one()
        archive.files.absolute(path).write_bytes(b"not DICOM")
        wizard = ExportWizard(archive, None, search(archive.engine, "study", {}))
        qtbot.addWidget(wizard)
        wizard.show()
        qtbot.waitExposed(wizard)
        tree = wizard.selection.tree
        qtbot.waitUntil(lambda: tree.topLevelItemCount() == 1 and tree.topLevelItem(0).childCount() == 2,
                        timeout=10000)
        wizard.next()
        wizard.next()
        page = wizard.privacy
        assert wizard.currentPage() is page
        assert not page.warning.isVisible() and not page.checking.isVisible()  # no level: nothing to say
        assert wizard.options().leave_out_burned_in is False

        page.buttons["full"].setChecked(True)
        qtbot.waitUntil(page.warning.isVisible, timeout=10000)
        assert not page.checking.isVisible()
        text = page.warning_text.text()
        assert "2 images in 1 series" in text and "#2 Annotated views (MG): 2 images" in text, text
        assert "Screening" not in text and "cannot remove text written in the pixels" in text
        assert page.leave_out.isVisible() and page.leave_out.isChecked()
        assert wizard.options().deidentify == "full" and wizard.options().leave_out_burned_in is True
        screen_shot(wizard, "export_wizard_burned_in.png", from_screen=False)
        page.leave_out.setChecked(False)
        assert wizard.options().leave_out_burned_in is False
        page.leave_out.setChecked(True)

        page.buttons[""].setChecked(True)
        assert not page.warning.isVisible() and wizard.options().leave_out_burned_in is False

        wizard.back()  # the clean series alone: checked anew, nothing found
        wizard.back()
        items = {tree.topLevelItem(0).child(j).data(0, Qt.UserRole): tree.topLevelItem(0).child(j) for j in range(2)}
        items[burned].setCheckState(0, Qt.Unchecked)
        wizard.next()
        wizard.next()
        page.buttons["reduced"].setChecked(True)
        assert page.checking.isVisible()
        qtbot.waitUntil(lambda: not page.checking.isVisible(), timeout=10000)
        assert not page.warning.isVisible()
        wizard.back()  # both series again: the first answer, without reading the files again
        wizard.back()
        items[burned].setCheckState(0, Qt.Checked)
        wizard.next()
        wizard.next()
        assert page.warning.isVisible() and not page.checking.isVisible()
        wizard.close()
    finally:
        archive.close()


def test_lightbox_export_leaves_burned_in_images_out(tmp_path):
    files, burned, clean = _burned_in_study(tmp_path)
    home = tmp_path / "home"
    lightbox(home, "import", *files)
    args = ["export", "--series", burned, "--series", clean, "--media", "usb", "--kind", "patient",
            "--deidentify", "full"]
    out = lightbox(home, *args, "--leave-out-burned-in", "--out", str(tmp_path / "stick"))
    written = [pydicom.dcmread(p) for p in (tmp_path / "stick").rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert len(written) == 1 and written[0].BurnedInAnnotation == "NO", out.stdout
    assert written[0].PatientIdentityRemoved == "YES"
    assert out.stderr.count("left out as asked: its pixels carry burned-in annotation") == 3, out.stderr
    kept = lightbox(home, *args, "--out", str(tmp_path / "stick2"))  # without: all copied, the report warns
    assert len([p for p in (tmp_path / "stick2").rglob("*") if p.is_file() and p.name != "DICOMDIR"]) == 4
    assert kept.stderr.count("Burned In Annotation is YES") == 3, kept.stderr
