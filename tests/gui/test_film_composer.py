"""The film composer under Xvfb against DCMTK dcmprscp: images dropped from files and a
series (the viewer's series strip), a layout that spills onto a second film, a box turned
and mirrored, the preview equal to the page sent and to what the printer stored, portrait
14x17 kept portrait, a mammogram at true size, and a printer that is down: the job waits
in the queue, the composer stays usable, and the films print when the printer is back.
Screenshots in tests/artifacts."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pydicom
from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDropEvent
from pydicom.uid import generate_uid

from app.film.sheet import Cell, render
from app.jobs.queue import DONE, QUEUED
from app.store.archive import Archive
from app.store.nodes import PrinterSetup, RemoteNode, add_node
from app.ui.main import MainWindow
from app.ui.mime import CELLS_MIME, SERIES_MIME, cells_mime
from conftest import ROOT, free_port, lightbox, screen_shot

sys.path.insert(0, str(ROOT / "tests" / "peers"))
from peerutil import ct_dataset, save  # noqa: E402

SCRIPT = ROOT.parent / "shared" / "peers" / "peers" / "print_scp.sh"


def _printer(port: int, folder) -> None:
    run = subprocess.run(["bash", str(SCRIPT), str(port), str(folder)], env=dict(os.environ),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def _drop(preview, box: int, mime: QMimeData) -> None:
    b = preview.boxes[box]
    target = preview._target()
    sx, sy = target.width() / preview._image.width(), target.height() / preview._image.height()
    point = QPointF(target.x() + (b.left + b.width / 2) * sx, target.y() + (b.top + b.height / 2) * sy)
    preview.dropEvent(QDropEvent(point, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))


def test_compose_drop_preview_print_and_a_printer_that_comes_back(qtbot, tmp_path):
    from tests.mammo_samples import mammogram
    port = free_port()
    home = tmp_path / "home"
    study, series = generate_uid(), generate_uid()
    ct = [save(ct_dataset(study, series, generate_uid(), i + 1, size=96, seed=i, patient_name="Film^Test",
                          patient_id="FILM1"), tmp_path / f"ct{i}.dcm") for i in range(5)]
    lightbox(home, "import", *map(str, ct))
    mg = mammogram("L", "CC", size=(400, 300), patient="MG7")
    mg.save_as(tmp_path / "mg.dcm", enforce_file_format=True)
    archive = Archive(home)
    printed = tmp_path / "printer"
    try:
        archive.settings.set("print.retry_interval", 1)
        add_node(archive.engine, RemoteNode("CAMERA", "PRINTSCP", "127.0.0.1", port, ("print",),
                                            printer=PrinterSetup(dpi=60, film_sizes=("14INX17IN", "8INX10IN"))))
        win = MainWindow(archive, None, None)
        qtbot.addWidget(win)
        win.show()
        composer = win.film_composer()
        qtbot.waitExposed(composer)
        assert [composer.printer.itemData(i) for i in range(composer.printer.count())] == ["CAMERA", ""]
        assert [composer.size.itemText(i) for i in range(composer.size.count())] == ["14INX17IN", "8INX10IN"]
        composer.layout_box.setCurrentText("2x2")
        qtbot.waitUntil(lambda: composer.preview.page is not None and len(composer.preview.boxes) == 4, timeout=10000)
        assert composer.preview.page.shape == (1020, 840)  # 14x17 portrait at 60 DPI: rows > columns

        files = QMimeData()  # a file, turned and mirrored as it was in the viewer
        files.setData(CELLS_MIME, cells_mime([Cell(str(ct[0]), rotate=1, flip=True)]))
        _drop(composer.preview, 0, files)
        strip = QMimeData()  # the viewer's series strip: the whole series from box 2 on
        strip.setData(SERIES_MIME, series.encode())
        _drop(composer.preview, 1, strip)
        qtbot.waitUntil(lambda: len(composer.sheets) == 2, timeout=10000)
        assert [len(s.images()) for s in composer.sheets] == [4, 2]  # 1 + 5 images on 2x2 films
        fmt = composer.film_format()
        assert (fmt.size, fmt.orientation, fmt.dpi, fmt.bits) == ("14INX17IN", "PORTRAIT", 60, 12)
        qtbot.waitUntil(lambda: composer.pages[0] is not None
                        and np.array_equal(composer.pages[0], render(composer.sheets[0], fmt)), timeout=10000)
        assert np.array_equal(composer.preview.page, composer.pages[0])  # the preview is the page
        screen_shot(composer, "film_composer.png", from_screen=False)

        composer.border.setCurrentIndex(composer.border.findData("BLACK"))
        composer.max_density.setValue(250)
        # the printer is down: the job waits in its queue, the composer goes on
        composer.print_films()
        qtbot.waitUntil(lambda: composer.last_job is not None, timeout=10000)
        job_id = composer.last_job
        # queued again between its tries (it runs a few ms every second)
        qtbot.waitUntil(lambda: (j := win.jobs.get(job_id)).status == QUEUED
                        and "waiting for the printer" in (j.message or ""), timeout=15000)
        qtbot.waitUntil(lambda: "not reachable" in composer.camera.text(), timeout=5000)
        assert "CAMERA" in win.camera_state.text()
        screen_shot(composer, "film_composer_printer_down.png", from_screen=False)
        composer.show_film(1)
        qtbot.waitUntil(lambda: composer.pages[1] is not None, timeout=10000)
        expected = [render(s, fmt) for s in composer.sheets]

        _printer(port, printed)  # back: the queued films are sent
        try:
            qtbot.waitUntil(lambda: win.jobs.get(job_id).status == DONE, timeout=30000)
            stored = [pydicom.dcmread(p) for p in (printed / "db").glob("HG*")]
            assert len(stored) == 2 and {h.pixel_array.tobytes() for h in stored} == {e.tobytes() for e in expected}
            box = [pydicom.dcmread(p) for p in (printed / "db").glob("SP*")][0].FilmBoxContentSequence[0]
            assert (box.FilmSizeID, box.FilmOrientation) == ("14INX17IN", "PORTRAIT")
            assert (box.BorderDensity, box.MaxDensity, box.MagnificationType) == ("BLACK", 250, "NONE")
            assert "Film, Test (FILM1)" in win.jobs.get(job_id).title
            qtbot.waitUntil(lambda: "Camera is ready" in composer.camera.text(), timeout=5000)

            # a mammogram at true size on an 8x10 film
            composer.remove_film()
            composer.remove_film()
            composer.size.setCurrentText("8INX10IN")
            composer.layout_box.setCurrentText("1x1")
            composer.add_images([Cell(str(tmp_path / "mg.dcm"))])
            composer._select(0)
            composer.cell_buttons["true_size"].click()
            assert composer.sheets[0].cells[0].true_size
            qtbot.waitUntil(lambda: composer.pages[0] is not None and composer.pages[0].shape == (600, 480)
                            and np.array_equal(composer.pages[0], render(composer.sheets[0], composer.film_format())),
                            timeout=10000)
            screen_shot(composer, "film_composer_true_size.png", from_screen=False)
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop", str(printed)], capture_output=True, timeout=60)
        win.close()
    finally:
        archive.close()


def test_a_stopped_queue_the_viewer_and_the_printer_settings(qtbot, tmp_path):
    """A printer reporting ELEC SW ERROR (spec §8.6.1: queue stopped) — the STAND-IN printer,
    dcmprscp cannot report it: the job stays queued, the composer shows the red camera and
    Restart queue, which sends it once the printer is back to NORMAL. The viewer's Add to
    film carries the window, polarity, rotation and zoom of the active viewport. The node
    editor's printer box saves the printer's setup."""
    from PySide6.QtWidgets import QDialogButtonBox

    from app.imaging import pixels
    from app.imaging.series import archive_series_files
    from app.store import nodes
    from app.store.query import search
    from app.ui.settings_dialog import NodeEditor
    from app.ui.viewer.window import ViewerWindow
    from tests.print_standin import StandinPrinter
    home = tmp_path / "home"
    study, series = generate_uid(), generate_uid()
    ct = [save(ct_dataset(study, series, generate_uid(), i + 1, size=64, seed=i), tmp_path / f"ct{i}.dcm")
          for i in range(3)]
    lightbox(home, "import", *map(str, ct))
    archive = Archive(home)
    with StandinPrinter(printer_status="FAILURE", printer_status_info="ELEC SW ERROR") as printer:
        try:
            archive.settings.set("print.retry_interval", 1)
            add_node(archive.engine, RemoteNode("LASER", printer.aet, "127.0.0.1", printer.port, ("print",),
                                                printer=PrinterSetup(dpi=50)))
            win = MainWindow(archive, None, None)
            qtbot.addWidget(win)
            win.show()
            viewer = ViewerWindow(archive, search(archive.engine, "study", {}),
                                  add_to_film=lambda cells: win.film_composer().add_images(cells))
            viewer.show()
            vp = viewer.viewports[0]
            qtbot.waitUntil(lambda: vp.images is not None and vp.image_count() == 3, timeout=10000)
            vp.set_window(pixels.Window(100, 300))
            vp.toggle_invert()
            vp.rotate(90)
            vp.one_to_one()
            composer = win.film_composer()
            qtbot.waitUntil(lambda: len(composer.preview.boxes) == 1, timeout=10000)
            _drop(composer.preview, 0, vp.image_mime())  # what a Ctrl+drag of the image carries
            viewer.film_active()  # Add to film (Ctrl+P): the next film
            assert len(composer.sheets) == 2
            for sheet in composer.sheets:
                cell = sheet.cells[0]
                assert (cell.center, cell.width, cell.invert, cell.rotate, cell.flip) == (100, 300, True, 1, False)
                assert cell.zoom >= 1.0 and cell.path.endswith(".dcm")
            composer.show_film(1)
            composer.remove_film()
            assert len(composer.sheets) == 1
            viewer.close()
            qtbot.waitUntil(lambda: composer.pages[0] is not None, timeout=10000)
            composer.print_films()
            qtbot.waitUntil(lambda: composer.last_job is not None, timeout=10000)
            job_id = composer.last_job
            qtbot.waitUntil(lambda: "print:LASER" in win.jobs.holds(), timeout=15000)
            # the queue is stopped first, then the job goes back to it
            qtbot.waitUntil(lambda: win.jobs.get(job_id).status == QUEUED, timeout=15000)
            assert "queue stopped" in win.jobs.get(job_id).message
            qtbot.waitUntil(lambda: composer.restart.isVisible(), timeout=5000)
            assert "Camera software problem" in composer.camera.text() and "queue stopped" in composer.camera.text()
            assert "LASER" in win.camera_state.text()
            screen_shot(composer, "film_composer_queue_stopped.png", from_screen=False)
            assert printer.films == []
            printer.printer_status, printer.printer_status_info = "NORMAL", "NORMAL"
            composer.restart.click()
            qtbot.waitUntil(lambda: win.jobs.get(job_id).status == DONE, timeout=15000)
            assert len(printer.films) == 1 and not win.jobs.holds()
            sent = printer.films[0]["images"][0].BasicGrayscaleImageSequence[0]
            assert bytes(sent.PixelData) == composer.pages[0].astype("<u2").tobytes()
            qtbot.waitUntil(lambda: not composer.restart.isVisible(), timeout=5000)

            # a study dragged from the browser: every image of it onto the film, after the one there
            qtbot.waitUntil(lambda: win.browser.studies.rowCount() == 1, timeout=10000)
            drag = win.browser.studies.mimeData([win.browser.studies.index(0, 0)])
            composer.layout_box.setCurrentText("2x2")
            qtbot.waitUntil(lambda: len(composer.preview.boxes) == 4, timeout=10000)
            _drop(composer.preview, 1, drag)
            qtbot.waitUntil(lambda: len(composer.sheets[0].images()) == 4, timeout=10000)
            assert [c.path for c in composer.sheets[0].images()[1:]] == \
                [str(p) for p in archive_series_files(archive, series)]

            editor = NodeEditor(nodes.get_node(archive.engine, "LASER"), win)
            qtbot.addWidget(editor)
            assert editor.printer.isVisible() or editor.roles["print"].isChecked()
            editor.printer.dpi.setValue(320)
            editor.printer.plut.setChecked(True)
            editor.printer.layouts.setText("1x1, 3x4, 4x5")
            editor.show()
            screen_shot(editor, "settings_printer.png", from_screen=False)
            with qtbot.waitSignal(editor.accepted, timeout=10000):
                editor.buttons.button(QDialogButtonBox.Ok).click()
            nodes.add_node(archive.engine, editor.result_node, replace=True)
            saved = nodes.get_node(archive.engine, "LASER").printer
            assert (saved.dpi, saved.presentation_lut, saved.layouts) == (320, True, ("1x1", "3x4", "4x5"))
            editor.printer.layouts.setText("1x1, 12x3")
            editor.buttons.button(QDialogButtonBox.Ok).click()
            qtbot.waitUntil(lambda: "1 to 10 rows" in editor.error.text(), timeout=10000)
            win.close()
        finally:
            archive.close()
