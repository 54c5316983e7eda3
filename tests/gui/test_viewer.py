"""The viewer in a real X server with Mesa OpenGL: open a CT series from the archive, scroll,
window, zoom, change the layout; screenshots come from the screen (GL views)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.imaging import pixels
from app.store.archive import Archive
from app.store.query import search
from app.ui.viewer.window import ViewerWindow
from conftest import pdf_document, screen_shot
from tests.peers.peerutil import ct_dataset, save



@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "home")
    (tmp_path / "in").mkdir()
    study, frame_of_reference = generate_uid(), generate_uid()
    for series_no, n in ((1, 12), (2, 3)):
        series = generate_uid()
        for i in range(n):
            ds = ct_dataset(study, series, generate_uid(), n - i, size=128, seed=i, series_number=series_no)
            yy, xx = np.mgrid[0:128, 0:128]
            disc = ((yy - 64) ** 2 + (xx - 64) ** 2 < (20 + 3 * i) ** 2)  # grows along z
            arr = np.where(disc, 1024 + 60, 1024 - 900).astype(np.uint16)
            ds.PixelData = arr.tobytes()
            ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
            ds.WindowCenter, ds.WindowWidth = 40, 400
            ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, float(i)], [1, 0, 0, 0, 1, 0]
            ds.FrameOfReferenceUID = frame_of_reference
            f = save(ds, tmp_path / "in" / f"{series_no}-{i}.dcm")
            assert a.ingest.store_file(f).ok
    yield a
    a.close()


def open_viewer(qtbot, archive):
    """The viewer on the archive's study, once its first viewport shows the 12-slice series."""
    viewer = ViewerWindow(archive, search(archive.engine, "study", {}))  # deletes itself when closed
    viewer.show()
    qtbot.waitExposed(viewer)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.images is not None and vp.image_count() == 12, timeout=10000)
    return viewer, vp


def test_open_scroll_window_zoom_layout(qtbot, archive):
    rows = search(archive.engine, "study", {})
    viewer = ViewerWindow(archive, rows)  # deletes itself when closed (not handed to qtbot)
    viewer.show()
    qtbot.waitExposed(viewer)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.images is not None and vp.image_count() == 12, timeout=10000)
    assert viewer.strip.count() == 2
    assert vp.index == 0 and vp.window == pixels.Window(40, 400)

    # wheel and keys scroll through the slices, in geometry order (the disc grows)
    QTest.keyClick(vp.view, Qt.Key_Down)
    QTest.keyClick(vp.view, Qt.Key_Down)
    assert vp.index == 2
    QTest.keyClick(vp.view, Qt.Key_End)
    assert vp.index == 11
    QTest.keyClick(vp.view, Qt.Key_Home)
    first = vp.images.display(0, vp.window)
    last = vp.images.display(11, vp.window)
    assert (first > 128).sum() < (last > 128).sum()

    # left drag: window/level; right drag: zoom
    center = QPoint(vp.view.width() // 2, vp.view.height() // 2)
    QTest.mousePress(vp.view, Qt.LeftButton, Qt.NoModifier, center)
    QTest.mouseMove(vp.view, center + QPoint(100, 0))
    QTest.mouseRelease(vp.view, Qt.LeftButton, Qt.NoModifier, center + QPoint(100, 0))
    assert vp.window.width > 400 and vp.window.center == 40
    QTest.keyClick(vp.view, Qt.Key_1)
    assert vp.current_zoom == 1.0
    QTest.keyClick(vp.view, Qt.Key_R)
    assert vp.window == pixels.Window(40, 400) and vp.zoom is None
    qtbot.wait(200)
    screen_shot(viewer, "viewer_1x1.png")

    # 1x2: the second series hangs in the second viewport
    viewer.layout_box.setCurrentText("1×2")
    second = viewer.viewports[1]
    qtbot.waitUntil(lambda: second.images is not None and second.image_count() == 3, timeout=10000)
    qtbot.wait(200)
    screen_shot(viewer, "viewer_1x2.png")

    # a custom layout: rows and columns asked in a dialog
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QSpinBox

    def answer():
        rows, cols = viewer.custom_dialog.findChildren(QSpinBox)
        rows.setValue(1)
        cols.setValue(4)
        viewer.custom_dialog.accept()
    QTimer.singleShot(200, answer)
    viewer.layout_box.activated.emit(viewer.layout_box.findText("Custom…"))
    assert len(viewer.visible_viewports()) == 4 and viewer.layout_shape == (1, 4)
    assert [vp.series_uid for vp in viewer.visible_viewports()[:2]] == [vp.series_uid, second.series_uid]
    viewer.close()  # finalizes its VTK windows (see conftest.close_vtk_windows)


def test_measure_distance_angle_and_roi(qtbot, archive):
    viewer, vp = open_viewer(qtbot, archive)
    spacing = float(vp.images.header(0).PixelSpacing[1])

    # the mouse lands where the image is: the centre of the view is the centre of the image
    c = QPoint(vp.view.width() // 2, vp.view.height() // 2)
    col, row = vp.image_point(c.x(), c.y())
    assert abs(col - 63.5) < 1 and abs(row - 63.5) < 1

    viewer.set_tool("distance")
    m = vp.add_measurement("distance", [(20, 64), (100, 64)])
    assert m.label == f"{80 * spacing:.1f} mm"
    a = vp.add_measurement("angle", [(100, 64), (64, 64), (64, 20)])
    assert a.label == "90.0°"

    # an ellipse ROI drawn with the mouse inside the disc (HU 60) of the first slice
    viewer.set_tool("roi")
    step = int(8 * vp.current_zoom)
    QTest.mousePress(vp.view, Qt.LeftButton, Qt.NoModifier, c - QPoint(step, step))
    QTest.mouseMove(vp.view, c + QPoint(step, step))
    QTest.mouseRelease(vp.view, Qt.LeftButton, Qt.NoModifier, c + QPoint(step, step))
    [roi] = [x for x in vp.measurements[0] if x.kind == "roi"]
    assert roi.label.startswith("mean 60.0  SD 0.0"), roi.label
    assert "mm²" in roi.label
    qtbot.wait(200)
    screen_shot(viewer, "viewer_measure.png")
    # measurements stay with their image
    QTest.keyClick(vp.view, Qt.Key_Down)
    assert 1 not in vp.measurements and len(vp.measurements[0]) == 3
    viewer.close()


def test_rotate_flip_true_size_and_cine(qtbot, archive):
    viewer, vp = open_viewer(qtbot, archive)
    edges = lambda: {name: vp.text.text(name) for name in ("right", "left", "top", "bottom")}
    assert edges() == {"right": "L", "left": "R", "top": "A", "bottom": "P"}  # axial
    right_x, mid_y = vp.view.width() - 5, vp.view.height() // 2
    col_before, _ = vp.image_point(right_x, mid_y)

    QTest.keyClick(vp.view, Qt.Key_H)  # left-right flip: the patient's right is now on the right
    assert edges() == {"right": "R", "left": "L", "top": "A", "bottom": "P"}
    col_after, _ = vp.image_point(right_x, mid_y)
    assert col_before > 100 and col_after < 28
    QTest.keyClick(vp.view, Qt.Key_R)
    QTest.keyClick(vp.view, Qt.Key_Period)  # 90 degrees clockwise: the left edge (R) goes to the top
    assert edges() == {"right": "A", "left": "P", "top": "R", "bottom": "L"}
    QTest.keyClick(vp.view, Qt.Key_R)

    QTest.keyClick(vp.view, Qt.Key_T)  # true size: 0.5 mm pixels on this screen's mm
    dpi = vp.screen().physicalDotsPerInchX()
    assert vp.current_zoom == pytest.approx(0.5 * dpi / 25.4 / vp.view.devicePixelRatioF())

    QTest.keyClick(vp.view, Qt.Key_C)  # cine at the default 10 frames/s (no Frame Time)
    assert vp.cine.isActive() and vp.cine.interval() == 100
    qtbot.waitUntil(lambda: vp.index >= 3, timeout=3000)
    QTest.keyClick(vp.view, Qt.Key_C)
    assert not vp.cine.isActive()
    viewer.close()


def test_linked_scrolling_and_windowing(qtbot, archive):
    viewer, vp = open_viewer(qtbot, archive)
    viewer.layout_box.setCurrentText("1×2")
    other = viewer.viewports[1]
    qtbot.waitUntil(lambda: other.images is not None and other.image_count() == 3, timeout=10000)
    # both series share the frame of reference (same generated study); series 2 has z = 0, 1, 2
    viewer._activate(vp)
    vp.show_image(2)                      # z = 2 in series 1
    assert other.index == 2
    vp.show_image(9)                      # z = 9: series 2 stays at its nearest slice, z = 2
    assert other.index == 2
    vp.set_window(pixels.Window(300, 1500))
    assert other.window == pixels.Window(300, 1500)
    viewer.link.setChecked(False)
    vp.set_window(pixels.Window(40, 80))
    assert other.window == pixels.Window(300, 1500)
    viewer.close()


def test_save_view_drag_a_series_and_cache_setting(qtbot, archive, tmp_path):
    from PySide6.QtGui import QImage

    from app.ui.viewer.viewport import SERIES_MIME
    archive.settings.set("viewer.cache_mb", "64")
    viewer, vp = open_viewer(qtbot, archive)
    assert vp.images._budget == 64 * 2**20

    a = QImage(str(viewer.save_view(tmp_path / "view.png", with_text=True)))
    b = QImage(str(viewer.save_view(tmp_path / "plain.png", with_text=False)))
    jpeg = QImage(str(viewer.save_view(tmp_path / "plain.jpg", with_text=False)))
    w, h = vp.render_window.GetSize()
    assert (a.width(), a.height()) == (b.width(), b.height()) == (jpeg.width(), jpeg.height()) == (w, h)
    assert a != b  # the image text is in one only
    assert b.pixelColor(w // 2, h // 2) == a.pixelColor(w // 2, h // 2)  # the image itself is the same

    # dragging the second series from the strip onto the viewport
    second = viewer.strip.item(1)
    mime = viewer.strip.mimeData([second])
    uid = second.data(Qt.UserRole)["SeriesInstanceUID"]
    assert bytes(mime.data(SERIES_MIME)).decode() == uid
    vp.seriesDropped.emit(vp, uid)
    qtbot.waitUntil(lambda: vp.images is not None and vp.image_count() == 3, timeout=10000)
    viewer.close()


def test_reports_read_as_text_and_waveforms_say_so(qtbot, tmp_path):
    import pydicom.data

    from app.imaging import documents
    files = Path(pydicom.data.__file__).parent / "test_files"
    archive = Archive(tmp_path / "home")
    try:
        assert archive.ingest.store_file(files / "test-SR.dcm").ok
        wave = pydicom.dcmread(files / "CT_small.dcm")
        del wave.PixelData
        wave.SOPClassUID = "1.2.840.10008.5.1.4.1.1.9.1.1"  # 12-lead ECG
        wave.SeriesInstanceUID, wave.SOPInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
        wave.StudyInstanceUID = pydicom.dcmread(files / "test-SR.dcm").StudyInstanceUID
        wave.file_meta.MediaStorageSOPClassUID = wave.SOPClassUID
        wave.file_meta.MediaStorageSOPInstanceUID = wave.SOPInstanceUID
        wave.save_as(tmp_path / "ecg.dcm")
        assert archive.ingest.store_file(tmp_path / "ecg.dcm").ok
        viewer = ViewerWindow(archive, search(archive.engine, "study", {}))
        viewer.show()
        viewer.layout_box.setCurrentText("1×2")
        vps = viewer.viewports[:2]
        qtbot.waitUntil(lambda: all(vp.stack.currentWidget() is vp.document for vp in vps), timeout=10000)
        texts = {vp.document.toPlainText().splitlines()[0] for vp in vps}
        assert "Diagnosis" in texts
        assert any("12-lead ECG Waveform Storage cannot be displayed" in t for t in texts)
        report = next(vp for vp in vps if vp.document.toPlainText().startswith("Diagnosis"))
        assert "    Text Code: A mass of" in report.document.toPlainText()  # the tree, indented
        assert documents.kind(pydicom.dcmread(files / "CT_small.dcm")) == "image"
        screen_shot(viewer, "viewer_report.png")
        viewer.close()
    finally:
        archive.close()


def test_large_image_drawn_from_a_reduced_texture_with_full_resolution_geometry(qtbot, tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        ds = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=2048)
        arr = np.zeros((2048, 2048), np.uint16)
        arr[:, 1024:] = 3000  # left half dark, right half bright
        ds.PixelData, ds.WindowCenter, ds.WindowWidth = arr.tobytes(), 1500, 3000
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        assert archive.ingest.store_file(save(ds, tmp_path / "big.dcm")).ok
        viewer = ViewerWindow(archive, search(archive.engine, "study", {}))
        viewer.show()
        qtbot.waitExposed(viewer)
        vp = viewer.viewports[0]
        qtbot.waitUntil(lambda: vp.images is not None and vp._actor is not None, timeout=15000)
        factor = vp._actor.GetMapper().GetInput().GetSpacing()[0]
        assert factor >= 2 and vp.current_zoom <= 0.5
        # geometry stays in full-resolution pixels: the view's centre is the image's centre
        col, row = vp.image_point(vp.view.width() / 2, vp.view.height() / 2)
        assert abs(col - 1023.5) < factor and abs(row - 1023.5) < factor
        shot = vp.snapshot(with_text=False)
        h, w = shot.shape[:2]
        assert shot[h // 2, w // 2 - 20].max() < 30 and shot[h // 2, w // 2 + 20].min() > 220
        QTest.keyClick(vp.view, Qt.Key_1)  # 1:1: the full-resolution texture again
        assert vp._actor.GetMapper().GetInput().GetSpacing()[0] == 1
        viewer.close()
    finally:
        archive.close()


def test_key_object_selection_opens_as_its_images(qtbot, archive, tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from app.imaging.key_objects import KEY_OBJECT_SELECTION
    instances = search(archive.engine, "instance", {"SeriesNumber": "1"})
    flagged = [instances[3], instances[7]]
    ko = Dataset()
    ko.SOPClassUID, ko.SOPInstanceUID = KEY_OBJECT_SELECTION, generate_uid()
    ko.StudyInstanceUID, ko.SeriesInstanceUID = flagged[0]["StudyInstanceUID"], generate_uid()
    ko.Modality, ko.SeriesNumber, ko.PatientID = "KO", 99, "GEN001"
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "113000", "DCM", "Of Interest"
    ko.ConceptNameCodeSequence = Sequence([name])
    items = []
    for uid in [r["SOPInstanceUID"] for r in flagged] + ["1.2.3.999"]:  # the last is not here
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", uid
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "IMAGE"
        item.ReferencedSOPSequence = Sequence([ref])
        items.append(item)
    ko.ContentSequence = Sequence(items)
    assert archive.ingest.store_file(save(ko, tmp_path / "ko.dcm")).ok

    viewer, vp = open_viewer(qtbot, archive)
    ko_row = next(viewer.strip.item(i).data(Qt.UserRole) for i in range(viewer.strip.count())
                  if viewer.strip.item(i).data(Qt.UserRole)["Modality"] == "KO")
    viewer.load_into(vp, ko_row)
    qtbot.waitUntil(lambda: vp.images is not None and vp.image_count() == 2, timeout=10000)
    shown = [str(vp.images.header(i).SOPInstanceUID) for i in range(2)]
    assert shown == [r["SOPInstanceUID"] for r in flagged]
    viewer.close()


def test_encapsulated_pdf_is_shown_as_a_document(qtbot, tmp_path):
    from pydicom.dataset import Dataset
    archive = Archive(tmp_path / "home")
    try:
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.104.1", generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.Modality, ds.PatientID, ds.DocumentTitle = "DOC", "P1", "Referral letter"
        data = pdf_document("Lightbox")
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        ds.EncapsulatedDocumentLength = len(data)
        ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")
        assert archive.ingest.store_file(save(ds, tmp_path / "doc.dcm")).ok
        viewer = ViewerWindow(archive, search(archive.engine, "study", {}))
        viewer.show()
        vp = viewer.viewports[0]
        qtbot.waitUntil(lambda: vp.pdf_view is not None and vp.stack.currentWidget() is vp.pdf_view, timeout=10000)
        assert vp._pdf.pageCount() == 1
        assert "Lightbox" in vp._pdf.getAllText(0).text()
        qtbot.wait(200)
        screen_shot(viewer, "viewer_pdf.png")
        viewer.close()
    finally:
        archive.close()


def test_presentation_state_applied_when_picked(qtbot, tmp_path):
    """A GSPS of the study is offered for the series it references; picking it (from the
    Presentation box, or its series in the strip) shows its window, rotation, displayed area,
    shutter and annotations; a window drag starts from its window; '(none)' takes it away."""
    from gsps_samples import annotation, graphic, gsps, image, layer, save as save_sample, text

    from app.imaging import presentation_state
    a = Archive(tmp_path / "home")
    study, series = generate_uid(), generate_uid()
    images = []
    for i in range(3):
        ds = image(96, 128, study=study, series=series)
        ds.InstanceNumber, ds.ImagePositionPatient, ds.ImageOrientationPatient = i + 1, [0, 0, i], [1, 0, 0, 0, 1, 0]
        images.append(ds)
        assert a.ingest.store_file(save_sample(ds, tmp_path / f"im{i}.dcm")).ok
    state = gsps(images, window=(1000, 500), rotation=90, area=((17, 9), (112, 88)),
                 circular=((48, 64), 40), layers=[layer("MARKS", 1, lab=(63569, 27499, 57054))],
                 annotations=[annotation("MARKS", graphics=[graphic("POLYLINE", [(40, 30), (90, 60)])],
                                         texts=[text("lesion", anchor=(90, 60), box=((95, 20), (125, 30)))])],
                 label="REVIEW")
    assert a.ingest.store_file(save_sample(state, tmp_path / "ps.dcm")).ok
    viewer = ViewerWindow(a, search(a.engine, "study", {}))
    viewer.show()
    qtbot.waitExposed(viewer)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.images is not None and vp.image_count() == 3, timeout=10000)
    assert vp.series_uid == series  # the state's own series is not hung
    qtbot.waitUntil(lambda: viewer.state_box.count() == 2, timeout=5000)
    plain = vp.snapshot(with_text=False)

    viewer.state_box.setCurrentIndex(1)
    viewer.state_box.activated.emit(1)
    assert vp.presentation is not None and vp.presentation.label == "REVIEW"
    assert (vp.rotation, vp.flip) == (90, False) and vp.window is None
    assert vp.area == (16, 8, 112, 88)
    assert "GSPS REVIEW" in vp.text.text("bottom-right")
    # the displayed area (96 x 80 pixels, rotated: 80 wide, 96 high) fills the viewport's height
    vw, vh = vp._view_size()
    assert vp.current_zoom == pytest.approx(min(vw / 80, vh / 96))
    # the state's window: HU 1000 +- 250 over stored 0..4095 - 1024; the pipeline's pixels
    header = vp.images.header(0)
    want = presentation_state.display(vp.presentation, header, vp.images.stored(0), header.SOPInstanceUID, 1)
    assert np.array_equal(vp._actor.GetMapper().GetInput().GetPointData().GetScalars().GetNumberOfTuples(),
                          want.size)
    # outside the circular shutter: black; the annotations are drawn (line + label + leader)
    assert want[2, 2] == 0 and want[48, 64] > 0
    assert len(vp._state_actors) == 3
    shown = vp.snapshot(with_text=False)
    assert not np.array_equal(shown, plain)
    colours = shown.reshape(-1, 3)
    assert ((colours[:, 0] > 200) & (colours[:, 1] > 150) & (colours[:, 2] < 80)).any()  # the layer's CIELab yellow
    qtbot.wait(100)
    screen_shot(viewer, "viewer_gsps.png")

    # a window drag starts from the state's window
    center = QPoint(vp.view.width() // 2, vp.view.height() // 2)
    QTest.mousePress(vp.view, Qt.LeftButton, Qt.NoModifier, center)
    QTest.mouseMove(vp.view, center + QPoint(50, 0))
    QTest.mouseRelease(vp.view, Qt.LeftButton, Qt.NoModifier, center + QPoint(50, 0))
    assert vp.window is not None and vp.window.center == 1000 and vp.window.width > 500
    QTest.keyClick(vp.view, Qt.Key_R)  # reset: back to the state as it says
    assert vp.window is None and vp.rotation == 90

    # '(none)': the images as they are
    viewer.state_box.setCurrentIndex(0)
    viewer.state_box.activated.emit(0)
    assert vp.presentation is None and vp.rotation == 0 and vp.area is None and not vp._state_actors
    # the state's series in the strip applies it again
    pr_item = next(viewer.strip.item(i) for i in range(viewer.strip.count())
                   if viewer.strip.item(i).data(Qt.UserRole).get("Modality") == "PR")
    viewer._strip_activated(pr_item)
    assert vp.presentation is not None and vp.rotation == 90
    viewer.close()
    a.close()
