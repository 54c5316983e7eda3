"""The viewer hangs a screening study by its protocol under Xvfb: the 8-up overview with the
prior first, mirrored (each breast's tissue touching its pair's centre line, read back from
the viewports' own GL drawing), Space steps to the next stage, Shift+Space back, and the
layout can be kept as a protocol of the user's own. Screenshots in tests/artifacts/."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.store.archive import Archive
from app.store.query import search
from app.ui.viewer.window import ViewerWindow
from conftest import screen_shot
from tests.mammo_samples import cad_report, finding, mammogram
from tests.peers.peerutil import save

FOUR = [("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")]


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "home")
    studies = {}
    for date in ("20260310", "20250302"):
        studies[date] = study = generate_uid()
        for lat, view in FOUR:
            mirrored = (lat, view, date) == ("L", "MLO", "20250302")  # a detector that wrote it mirrored
            ds = mammogram(lat, view, study=study, date=date, size=(400, 320),
                           orientation=("P", "F") if mirrored else None)
            assert a.ingest.store_file(save(ds, tmp_path / f"{date}{lat}{view}.dcm")).ok
    extra = mammogram("R", "CC", study=studies["20260310"], date="20260310", size=(400, 320), modifiers=("ID",))
    assert a.ingest.store_file(save(extra, tmp_path / "extra.dcm")).ok
    current = {}  # "RCC" -> SOP Instance UID of the current study's standard views
    for r in search(a.engine, "instance", {"StudyInstanceUID": studies["20260310"]}):
        h = dcmread(a.files.absolute(r["path"]), stop_before_pixels=True)
        if r["SOPInstanceUID"] != str(extra.SOPInstanceUID):
            current[f"{h.ImageLaterality}{h.ViewPosition}"] = r["SOPInstanceUID"]
    report = cad_report(studies["20260310"], [
        finding("F-01775", "SRT", "Calcification Cluster", image=current["RCC"],
                points=[100.0, 150.0, 200.0, 150.0, 200.0, 250.0, 100.0, 250.0, 100.0, 150.0]),
        finding("F-01796", "SRT", "Mammography breast density", image=current["RCC"], intent="111151",
                points=[40.0, 40.0, 80.0, 40.0, 80.0, 80.0, 40.0, 40.0])])
    assert a.ingest.store_file(save(report, tmp_path / "cad.dcm")).ok
    a.current_study = studies["20260310"]
    yield a
    a.close()


def _tissue_at(img: np.ndarray, column: int) -> float:
    h = img.shape[0]
    return float((img[h // 3:2 * h // 3, column, 0] > 120).mean())


def test_screening_hangs_mirrored_and_steps_through_stages(qtbot, archive):
    rows = search(archive.engine, "study", {"StudyInstanceUID": archive.current_study})
    viewer = ViewerWindow(archive, rows)
    viewer.show()
    qtbot.waitExposed(viewer)
    with qtbot.waitSignal(viewer.stages.stageShown, timeout=20000):
        pass
    stage = viewer.stages.current_stage()
    assert stage.name.startswith("Overview") and viewer.layout_shape == (2, 4)
    assert "Screening" in viewer.stages.protocol_label.text()
    viewports = viewer.visible_viewports()
    qtbot.wait(200)
    screen_shot(viewer, "hanging_overview.png")
    for vp, hv in zip(viewports, stage.viewports):
        img = vp.snapshot(with_text=False)
        inner, outer = (img.shape[1] - 1, 0) if hv.display_set.laterality == "R" else (0, img.shape[1] - 1)
        label = f"{hv.display_set.study_date} {hv.display_set.label}"
        assert _tissue_at(img, inner) > 0.5, f"{label}: its tissue does not reach the centre line"
        assert _tissue_at(img, outer) == 0, f"{label}: tissue at the outer edge"
    # the 'same' size: one mm as many screen pixels in every viewport
    mm = [vp.zoom / 0.085 * 1.08 for vp in viewports]
    assert max(mm) == pytest.approx(min(mm))

    with qtbot.waitSignal(viewer.stages.stageShown, timeout=20000):
        QTest.keyClick(viewer.visible_viewports()[0].view, Qt.Key_Space)
    assert viewer.stages.current_stage().name == "Current 4-up" and viewer.layout_shape == (2, 2)
    assert [vp.title.split()[0] for vp in viewer.visible_viewports()] == ["RCC", "LCC", "RMLO", "LMLO"]
    qtbot.wait(200)
    screen_shot(viewer, "hanging_current_4up.png")
    # a pair moves as one: zoom and window shared, the pan mirrored across the centre line;
    # the MLO pair (another link group) stays
    rcc, lcc, rmlo, _ = viewer.visible_viewports()
    viewer._activate(rcc)
    (lcc_zoom, lcc_pan), mlo_zoom = (lcc.zoom, lcc.pan), rmlo.zoom
    rcc.zoom, rcc.pan = rcc.zoom * 1.5, (rcc.pan[0] + 10, rcc.pan[1] + 4)
    rcc._refresh_view()
    assert lcc.zoom == pytest.approx(lcc_zoom * 1.5) and rmlo.zoom == mlo_zoom
    assert lcc.pan[0] == pytest.approx(lcc_pan[0] - 10) and lcc.pan[1] == pytest.approx(lcc_pan[1] + 4)
    from app.imaging.pixels import Window
    rcc.set_window(Window(1500.0, 2500.0, "SIGMOID", ""))
    assert (lcc.window.center, lcc.window.width) == (1500.0, 2500.0) and rmlo.window.center != 1500.0
    # CAD marks on demand: K shows the required ones, Shift+K the optional too, K again hides
    rcc_vp = viewer.visible_viewports()[0]
    assert rcc_vp.cad_marks and not rcc_vp._cad_actors
    QTest.keyClick(rcc_vp.view, Qt.Key_K)
    required = len(rcc_vp._cad_actors)
    assert required > 0 and "CAD: findings (iCAD, Inc. 7.2-H+, 2 marks)" in rcc_vp.text.text("bottom-left")
    img = rcc_vp.snapshot(with_text=False)
    assert ((img[..., 0] > 200) & (img[..., 1] < 140)).sum() > 50  # the red outline is drawn
    screen_shot(viewer, "hanging_cad_marks.png")
    QTest.keyClick(rcc_vp.view, Qt.Key_K, Qt.ShiftModifier)
    assert len(rcc_vp._cad_actors) > required
    QTest.keyClick(rcc_vp.view, Qt.Key_K)
    QTest.keyClick(rcc_vp.view, Qt.Key_K)
    assert rcc_vp._cad_actors == [] and "CAD" not in rcc_vp.text.text("bottom-left")

    with qtbot.waitSignal(viewer.stages.stageShown, timeout=20000):
        QTest.keyClick(viewer.visible_viewports()[0].view, Qt.Key_Space, Qt.ShiftModifier)
    assert viewer.stages.index == 0

    # a stage with empty viewports (one additional view of four places), then back: the
    # emptied viewports draw again
    names = [s.name for s in viewer.stages.hung.stages]
    with qtbot.waitSignal(viewer.stages.stageShown, timeout=20000):
        viewer.stages.show_stage(names.index("Additional views"))
    shown = viewer.visible_viewports()
    assert shown[0].title.startswith("RCC ID") and [vp.images is None for vp in shown] == [False, True, True, True]
    with qtbot.waitSignal(viewer.stages.stageShown, timeout=20000):
        viewer.stages.show_stage(0)
    assert all(vp.images is not None and not vp.finalized for vp in viewer.visible_viewports())

    path = viewer.stages.save_as("My overview")
    saved = json.loads(path.read_text())
    assert saved["id"] == "user-my-overview" and len(saved["stages"][0]["viewports"]) == 8
    viewer.close()


def _tomosynthesis_viewer(qtbot, archive, tmp_path, frames: dict[str, int], size: tuple[int, int]):
    """A tomosynthesis study of the four views (``frames`` slices per side) with their
    synthesized 2D views (one frame of reference with the volume) in a viewer, its first
    stage shown."""
    from tests.mammo_samples import tomo_volume
    study = generate_uid()
    for lat, view in FOUR:
        volume = tomo_volume(lat, view, study=study, frames=frames[lat], size=size)
        synthesized = tomo_volume(lat, view, study=study, generated_2d=True, size=size,
                                  frame_of_reference=volume.FrameOfReferenceUID)
        for ds in (volume, synthesized):
            assert archive.ingest.store_file(save(ds, tmp_path / f"{lat}{view}{ds.NumberOfFrames}.dcm")).ok
    viewer = ViewerWindow(archive, search(archive.engine, "study", {}))
    viewer.show()
    qtbot.waitExposed(viewer)
    with qtbot.waitSignal(viewer.stages.stageShown, timeout=20000):
        pass
    return viewer


def test_tomosynthesis_pair_scrolls_together_by_relative_depth(qtbot, tmp_path):
    """The DBT protocol hangs the CC tomosynthesis pair over its 2D views; scrolling one volume
    takes the other to the same relative depth (volumes of different slice counts), the slice
    text gives n/N and the depth in mm."""
    a = Archive(tmp_path / "home")
    try:
        viewer = _tomosynthesis_viewer(qtbot, a, tmp_path, {"R": 11, "L": 21}, (120, 96))
        assert viewer.stages.hung.protocol.id == "mg-tomosynthesis"
        rcc, lcc, rcc2d, lcc2d = viewer.visible_viewports()
        assert (rcc.image_count(), lcc.image_count(), rcc2d.image_count()) == (11, 21, 1)
        assert (rcc.index, lcc.index) == (5, 10)  # the middle slices
        for vp, inner, outer in ((rcc, -1, 0), (lcc, 0, -1)):  # mirrored, chest walls on the centre line
            img = vp.snapshot(with_text=False)
            assert _tissue_at(img, inner % img.shape[1]) > 0.5 and _tissue_at(img, outer % img.shape[1]) == 0
        viewer._activate(rcc)
        rcc.show_image(10)  # the last slice of the right: the left follows to its last
        assert lcc.index == 20 and rcc2d.index == 0
        rcc.show_image(0)
        assert lcc.index == 0
        assert rcc.text.text("bottom-left").splitlines()[1].startswith("Slice 1/11")
        assert "mm" in rcc.text.text("bottom-left").splitlines()[1]
        # a slab: 5 slices' maximum, then their mean, each over the slices either side
        rcc.show_image(5)
        five = np.stack([rcc.images.stored(i) for i in range(3, 8)])
        QTest.keyClick(rcc.view, Qt.Key_S)
        assert rcc.slab == 2 and np.array_equal(rcc.images.slab(5, 2, "mip"), five.max(axis=0))
        assert (lcc.slab, lcc.slab_mode) == (2, "mip") and rcc2d.slab == 0  # the pair alike; a 2D view has none
        assert "Slab MIP of 5 slices" in rcc.text.text("bottom-left")
        QTest.keyClick(rcc.view, Qt.Key_S, Qt.ShiftModifier)
        assert rcc.slab_mode == "average"
        assert np.array_equal(rcc.images.slab(5, 2, "average"), np.rint(five.mean(axis=0)).astype(five.dtype))
        assert "Slab mean of 5 slices" in rcc.text.text("bottom-left")
        qtbot.wait(100)
        screen_shot(viewer, "hanging_tomosynthesis.png")
        viewer.close()
    finally:
        a.close()


def test_click_on_the_synthesized_view_puts_a_crosshair_on_the_tomosynthesis_slices(qtbot, tmp_path):
    """A click on the synthesized RCC marks the same spot on the RCC volume (one acquisition:
    one frame of reference and grid) and takes the volume to the slice where that spot is
    in focus; the other breast's views are left alone; Escape takes the cross-hairs away."""
    from PySide6.QtCore import QPoint

    from tests.mammo_samples import lesions
    a = Archive(tmp_path / "home")
    try:
        size, n = (160, 128), 15
        viewer = _tomosynthesis_viewer(qtbot, a, tmp_path, {"R": n, "L": n}, size)
        rcc, lcc, rcc2d, lcc2d = viewer.visible_viewports()
        # a lesion away from the middle slice, so the jump is seen
        row, col, depth = max(lesions(size, n), key=lambda lesion: abs(lesion[2] - n // 2))
        assert depth != rcc.index
        x, y = rcc2d.widget_point(col, row)
        QTest.mouseClick(rcc2d.view, Qt.LeftButton, Qt.NoModifier, QPoint(round(x), round(y)))
        assert rcc2d.crosshair == pytest.approx((col, row), abs=1.0)
        assert rcc.crosshair == pytest.approx((col, row), abs=1.0)
        assert lcc.crosshair is None and lcc2d.crosshair is None
        qtbot.waitUntil(lambda: rcc.index == depth, timeout=10000)
        qtbot.wait(100)
        img = rcc.snapshot(with_text=False)
        green = (img[..., 1] > 200) & (img[..., 0] < 150) & (img[..., 2] < 150)
        assert green.sum() > 10  # the cross-hair is drawn
        screen_shot(viewer, "hanging_tomosynthesis_crosshair.png")
        QTest.keyClick(rcc2d.view, Qt.Key_Escape)
        assert rcc.crosshair is None and rcc2d.crosshair is None
        viewer.close()
    finally:
        a.close()


def test_priors_are_fetched_from_the_archive_and_hung(qtbot, tmp_path):
    """With hanging.priors_node set, the viewer hangs the study with what is here, fetches
    the patient's prior from the archive (Orthanc) as a job, and hangs again with it: the
    overview of current and prior comes first."""
    from app.jobs.runners import make_job_queue
    from app.store import nodes
    from app.store.nodes import RemoteNode
    from app.ui.bridge import CoreBridge
    from tests.peers.peerutil import OrthancPacs
    a = Archive(tmp_path / "home")
    orthanc = OrthancPacs(tmp_path, a.settings["node.aet"], 1)  # C-GET: no destination needed
    queue = make_job_queue(a)
    bridge = CoreBridge()
    try:
        current, prior = generate_uid(), generate_uid()
        remote = []
        for study, date in ((current, "20260310"), (prior, "20240302")):
            for lat, view in FOUR:
                path = save(mammogram(lat, view, study=study, date=date, size=(160, 128)), tmp_path / f"{date}{lat}{view}.dcm")
                if study == current:
                    assert a.ingest.store_file(path).ok
                else:
                    remote.append(path)
        orthanc.store(remote)
        nodes.add_node(a.engine, RemoteNode("PACS", "ORTHANC", "127.0.0.1", orthanc.dicom_port, ("find", "get")))
        a.settings.set("hanging.priors_node", "PACS")
        a.settings.set("hanging.priors_method", "get")
        queue.start()
        viewer = ViewerWindow(a, search(a.engine, "study", {"StudyInstanceUID": current}), jobs=queue,
                              job_updates=bridge.jobUpdated, actor="test")
        viewer.show()
        qtbot.waitExposed(viewer)
        qtbot.waitUntil(lambda: viewer.stages.current_stage() is not None, timeout=20000)
        assert viewer.stages.current_stage().name == "Current 4-up"
        qtbot.waitUntil(lambda: viewer.stages.current_stage().name.startswith("Overview"), timeout=60000)
        qtbot.waitUntil(lambda: sum(vp.images is not None for vp in viewer.visible_viewports()) == 8, timeout=20000)
        dates = {hv.display_set.study_date for hv in viewer.stages.current_stage().viewports}
        assert dates == {"20260310", "20240302"}
        assert "Priors: 1 prior study (20240302), 4 instance(s)" in viewer.stages.priors_label.text()
        assert len(search(a.engine, "instance", {"StudyInstanceUID": prior})) == 4
        screen_shot(viewer, "hanging_priors_fetched.png")
        viewer.close()
    finally:
        queue.stop()
        bridge.close()
        orthanc.stop()
        a.close()
