"""Hanging protocol stages in the viewer: the protocol the engine chose for the study
(app.imaging.hanging), its stages stepped with one key in any viewport (Space forward,
Shift+Space back; app.ui.viewer.viewport) or the toolbar's stage list, each laid out by app.imaging.stage_layout exactly as
'lightbox hang' draws it: mammograms mirrored, chest walls on the centre lines, "same"
size across detectors, true size; the current layout can be saved as a protocol of the
user's own (<home>/hanging/)."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import shiboken6
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QInputDialog, QLabel

from app.imaging import hanging
from app.imaging.stage_layout import grid
from app.imaging.series import ImageError, SeriesImages
from app.ui.background import run_in_background

log = logging.getLogger(__name__)


class StageController(QObject):
    stageShown = Signal(int)  # every viewport of the stage has its first image

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.hung = None
        self.index = -1
        self.shown_at: float | None = None  # monotonic time the last stage was painted
        self._generation = 0
        self.cad_shown = ""  # CAD marks: "" hidden, "required", "all"
        self.priors_job: int | None = None  # the job fetching the study's priors from the archive
        self.pool = _stage_pool()
        self.study_uid: str | None = None
        window.addToolBarBreak()  # a row of its own: the tools' row is full on a 1400 px window
        bar = window.addToolBar("Stages")
        bar.setObjectName("stages")
        self.protocol_label = QLabel(" Protocol: — ")
        bar.addWidget(self.protocol_label)
        self.box = QComboBox()
        self.box.setMinimumContentsLength(24)
        self.box.setToolTip("Stages of the hanging protocol (Space: next, Shift+Space: previous)")
        self.box.activated.connect(self.show_stage)
        bar.addWidget(self.box)
        self.priors_label = QLabel("")  # what fetching the priors from the archive gave
        save = QAction("Save layout as protocol…", window, triggered=self.save_layout)
        save.setToolTip("Keep this stage's layout as a hanging protocol of your own")
        bar.addAction(save)
        bar.addWidget(self.priors_label)

    @property
    def active(self) -> bool:
        return self.hung is not None and self.index >= 0

    def start(self, study_uid: str) -> None:
        """Hang ``study_uid`` (off the GUI thread: headers are read); a protocol other than
        the generic one is applied at once."""
        from app.imaging.study_hanging import hang_study
        archive = self.window.archive
        user_folder = archive.home / "hanging"
        self.study_uid = study_uid
        run_in_background(lambda: hang_study(archive, study_uid, user_folder), self._hung, self.pool)
        self._fetch_priors(study_uid)

    def _fetch_priors(self, study_uid: str) -> None:
        """The study's priors from the archive (hanging.priors_node) as a job of the jobs
        panel; the study hangs at once with what is here, and again when they arrive."""
        window = self.window
        archive = window.archive
        name = archive.settings["hanging.priors_node"]
        jobs, updates = getattr(window, "jobs", None), getattr(window, "job_updates", None)
        if not name or jobs is None or updates is None:
            return
        from app.jobs import priors_job
        count, method = archive.settings["hanging.priors_count"], archive.settings["hanging.priors_method"]
        actor = getattr(window, "actor", None)

        def submit() -> int:
            from app.store import audit, nodes
            from app.store.query import search
            if nodes.get_node(archive.engine, name) is None:
                raise ValueError(f"hanging.priors_node '{name}' is not a configured remote node: set it in the "
                                 "settings to one of the remote nodes")
            rows = search(archive.engine, "study", {"StudyInstanceUID": study_uid})
            patient = str(rows[0].get("PatientName") or "") if rows else ""
            job_id = jobs.submit(priors_job.KIND, priors_job.title(name, patient.replace("^", " ").strip()),
                                 priors_job.params(name, study_uid, count, method), owner=actor,
                                 group=priors_job.group(name))
            audit.log(archive.engine, actor or "workstation", "retrieve",
                      f"priors from {name} by {method}, job {job_id}", study_uid=study_uid)
            return job_id

        def submitted(job_id, error) -> None:
            if window._closing:
                return
            if error is not None:
                self.priors_label.setText(f" ⚠ The priors cannot be fetched: {error}")
                return
            self.priors_job = job_id
            self.priors_label.setText(f" Fetching prior studies from {name} (see the jobs panel)…")
        updates.connect(self._job_updated)
        run_in_background(submit, submitted)

    def _job_updated(self, job: dict) -> None:
        from app.jobs import priors_job
        from app.jobs.queue import DONE, FAILED
        # by what it fetches, not its id: it may end before its id is back from the database
        if job.get("kind") != priors_job.KIND or (job.get("params") or {}).get("study") != self.study_uid \
                or getattr(self.window, "_closing", True):
            return
        if job["status"] == FAILED:
            self.priors_label.setText(" ⚠ Priors not fetched: showing those held here")
            self.priors_label.setToolTip(job["message"])
        elif job["status"] == DONE:
            self.priors_label.setText(f" Priors: {job['message']}")
            if job.get("done"):  # something arrived: hang again, with it
                from app.imaging.study_hanging import hang_study
                archive, study = self.window.archive, self.study_uid
                run_in_background(lambda: hang_study(archive, study, archive.home / "hanging"), self._rehung)

    def _rehung(self, hung, error) -> None:
        """The study hung again once its priors arrived: the reader stays on the stage they
        are on (by name), or, on the first stage still, sees the new first one."""
        if error is not None or getattr(self.window, "_closing", False) or not shiboken6.isValid(self.box):
            return
        stage = self.current_stage()
        self._take(hung)
        names = [st.name for st in hung.stages]
        keep = self.index > 0 and stage is not None and stage.name in names
        if hung.stages:
            self.show_stage(names.index(stage.name) if keep else 0)

    def _hung(self, hung, error) -> None:
        if getattr(self.window, "_closing", False) or not shiboken6.isValid(self.box):
            return
        if error is not None:
            log.warning("no hanging protocol: %s", error)
            self.protocol_label.setText(" Protocol: — ")
            self._series_in_order()
            return
        self._take(hung)
        problems = sorted({p for sets in [hung.studies.current] for s in sets for p in s.problems})
        if problems:
            self.window.status.setText("⚠ " + "; ".join(problems[:3]))
        if hung.protocol.id != "generic" and hung.stages:
            self.show_stage(0)
        else:
            self._series_in_order()

    def _take(self, hung) -> None:
        priors = [sets[0].study_uid for sets in hung.studies.priors if sets]
        if priors:  # the strip lists the priors' series too
            self.window._load_series([self.study_uid] + priors)
        self.hung = hung
        self.protocol_label.setText(f" Protocol: {hung.protocol.name} ")
        self.box.clear()
        for i, stage in enumerate(hung.stages):
            self.box.addItem(f"{i + 1}. {stage.name}")

    def _series_in_order(self) -> None:
        """No protocol of its own for this study: the viewer's plain hanging, series in order."""
        self.window.hanging_active = False
        self.window._fill_empty_viewports()

    def step(self, delta: int) -> None:
        if self.hung is None or not self.hung.stages:
            return
        self.show_stage(max(0, min(len(self.hung.stages) - 1, self.index + delta)))

    def show_stage(self, index: int) -> None:
        """Lay out stage ``index``: its grid, then every display set opened off the GUI
        thread and placed once all are there (the "same" size needs them all)."""
        if self.hung is None or not 0 <= index < len(self.hung.stages):
            return
        self.index = index
        self._generation += 1
        generation = self._generation
        self.box.setCurrentIndex(index)
        stage = self.hung.stages[index]
        window = self.window
        cache_mb = window.archive.settings["viewer.cache_mb"]
        files = [self.hung.files.get(hv.display_set.uid) if hv.display_set else None for hv in stage.viewports]
        host = window.grid_host
        approx = grid(stage.rows, stage.columns, (host.width(), host.height()))  # the widgets settle later
        mm = 1.0 / window.viewports[0]._screen_pixels_per_mm() if window.viewports else 25.4 / 96
        viewports: list = []  # filled below, once the grid is laid out
        known = self.hung.headers

        def open_one(paths):
            if not paths:
                return None
            images = SeriesImages(list(paths), cache_mb=cache_mb, headers=known)
            return images, len(images) // 2

        def open_all():
            # headers first (the placement needs only them), then each image decoded and made
            # into its texture as one task, side by side: the decoders release the interpreter
            # lock, and a screening overview is eight 13-megapixel JPEG lossless images
            opened = [open_one(paths) for paths in files]
            with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
                _prepare_textures(stage, opened, approx, mm, pool)
            return opened

        def done(opened, error) -> None:
            if window._closing or generation != self._generation:
                for item in opened or []:
                    if item is not None:
                        item[0].close()
                return
            if error is not None:
                window.status.setText(f"The stage cannot be shown: {error}")
                return
            self._place(stage, viewports, opened)
        run_in_background(open_all, done, self.pool)
        # the grid's widgets are made while the images decode
        window.hanging_active = True
        window.set_layout(stage.rows, stage.columns)
        window.show_layout_name(stage.rows, stage.columns)
        viewports[:] = window.visible_viewports()
        for vp, hv in zip(viewports, stage.viewports):
            vp.series_uid = hv.display_set.uid if hv.display_set else None
            if hv.display_set is None:
                vp.clear()
        # while the images decode, the new viewports draw once (one per turn of the event loop)
        for i, vp in enumerate(viewports):
            QTimer.singleShot(i, lambda vp=vp: shiboken6.isValid(vp) and generation == self._generation
                              and vp.warm_up())

    def _place(self, stage, viewports, opened) -> None:
        from app.imaging.stage_layout import place
        headers, shapes = _headers_and_shapes(opened)
        rects = []
        for vp in viewports:
            w, h = vp._view_size()
            rects.append((0, 0, w, h))
        mm = 1.0 / viewports[0]._screen_pixels_per_mm() if viewports else 25.4 / 96
        placements = place(stage, headers, shapes, rects, mm)
        for vp, hv, item, p, header in zip(viewports, stage.viewports, opened, placements, headers):
            if item is None or not shiboken6.isValid(vp):
                continue
            images, middle = item
            if vp.images is not None:
                vp.images.close()
            label = hv.display_set.label if hv.display_set else ""
            if hv.display_set is not None and hv.display_set.study_date:
                d = hv.display_set.study_date
                label += f"  {d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 else f"  {d}"
            vp.link_group = hv.viewport.link
            # drawn with the image by set_series below
            vp.cad_marks = self.hung.marks_on(hv.display_set.uid) if hv.display_set else []
            vp.cad_summary, vp.cad_shown = self._cad_summary(), self.cad_shown
            vp.text_outside = "right" if p.pinned == "left" else "left"
            vp.text_narrow = p.rect[2] < 700  # two columns of Table 8-14 text need about that
            vp.set_series(images, label, index=middle,
                          view=(p.rotation, p.flip, p.zoom if header is not None else None, p.pan))
            vp.hang_base = (p.zoom, p.pan, p.pinned)  # what the stage placed: linked moves are relative to it
        self.shown_at = time.monotonic()
        self.stageShown.emit(self.index)

    def _cad_summary(self) -> str:
        return self.hung.cad_text() if self.hung is not None else ""

    def toggle_cad(self, with_optional: bool = False) -> None:
        """K: CAD marks on every viewport of the stage on or off; Shift+K: also the optional
        ones ("Presentation Optional")."""
        wanted = "all" if with_optional else "required"
        self.cad_shown = "" if self.cad_shown == wanted else wanted
        if self.hung is not None and not self.hung.cad and self.cad_shown:
            self.window.status.setText("This study has no CAD report.")
        for vp in self.window.visible_viewports():
            vp.cad_summary = self._cad_summary()
            vp.show_cad(self.cad_shown)

    def follow(self, leader) -> None:
        """The viewports of the leader's link group (a protocol's pair or quartet) take its
        window, its zoom relative to where the stage placed each, its pan, mirrored across
        the centre line for the other breast, its relative depth in a volume and its slab:
        the two sides move as one."""
        base = getattr(leader, "hang_base", None)
        if base is None or leader.zoom is None or not base[0]:
            return
        scale = leader.zoom / base[0]
        moved = ((leader.pan[0] - base[1][0]) * leader.zoom, (leader.pan[1] - base[1][1]) * leader.zoom)  # screen px
        for vp in self.window.visible_viewports():
            other = getattr(vp, "hang_base", None)
            if vp is leader or other is None or vp.images is None or not other[0] \
                    or getattr(vp, "link_group", None) != leader.link_group:
                continue
            zoom = other[0] * scale
            mirrored = {base[2], other[2]} == {"left", "right"}
            pan = (other[1][0] + (-moved[0] if mirrored else moved[0]) / zoom, other[1][1] + moved[1] / zoom)
            window_changed = leader.window is not None and vp.window != leader.window
            # tomosynthesis: the same relative depth (slice index over slice count), so a pair,
            # or current and prior, of different slice counts scroll together
            target = vp.index
            if leader.image_count() > 1 and vp.image_count() > 1:
                depth = leader.index / (leader.image_count() - 1)
                target = round(depth * (vp.image_count() - 1))
            slab_changed = vp.image_count() > 1 and leader.image_count() > 1 and \
                (vp.slab, vp.slab_mode) != (leader.slab, leader.slab_mode)
            if (vp.zoom, vp.pan) == (zoom, pan) and not window_changed and target == vp.index and not slab_changed:
                continue
            vp.zoom, vp.pan = zoom, pan
            if slab_changed:  # the pair's slabs alike
                vp.slab, vp.slab_mode = leader.slab, leader.slab_mode
            if window_changed:
                vp.window = leader.window
            if window_changed or slab_changed or target != vp.index:
                vp.show_image(target)
            else:
                vp._refresh_view()

    def point_at(self, source, point) -> None:
        """A click on an image of the stage: a cross-hair on it and at the same spot of the
        other images of that breast and view in its study (app.imaging.breast_points); a
        tomosynthesis volume clicked from a 2D view goes to the slice where the spot is
        sharpest. ``point`` None (Escape) takes the cross-hairs away."""
        from app.imaging import breast_points
        if not self.active or source.images is None or not getattr(self.window, "hanging_active", False):
            return
        shown = _shown(source)
        if shown is None:
            return
        header, shape = shown
        study = str(header.get("StudyInstanceUID", ""))
        marked = 0
        for vp in self.window.visible_viewports():
            if vp.images is None or not len(vp.images):
                continue
            if vp is source:
                vp.set_crosshair(point)
                continue
            shown = _shown(vp)
            if shown is None:
                continue
            other, other_shape = shown
            if str(other.get("StudyInstanceUID", "")) != study or not breast_points.same_view(header, other):
                continue
            spot = breast_points.corresponding_point(header, shape, point, other, other_shape) \
                if point is not None else None
            vp.set_crosshair(spot)
            if spot is not None and vp.image_count() > 1 and source.image_count() == 1:
                marked += 1
                self._go_to_focus(vp, spot)
        if point is not None and marked:
            self.window.status.setText("Cross-hair on the tomosynthesis slices of this view; finding the slice in focus…")

    def _go_to_focus(self, vp, spot) -> None:
        from app.imaging.breast_points import sharpest_slice
        images, generation = vp.images, self._generation

        def done(index, error) -> None:
            if error is not None or generation != self._generation or not shiboken6.isValid(vp) \
                    or vp.images is not images or vp.crosshair != spot:
                return
            vp.show_image(index)
            self.window.status.setText(f"Slice {index + 1} of {len(images)}: the clicked spot is sharpest there.")
        run_in_background(lambda: sharpest_slice(images.stored, len(images), spot), done)

    def current_stage(self) -> hanging.HungStage | None:
        if self.hung is None or self.index < 0:
            return None
        return self.hung.stages[self.index]

    def save_layout(self) -> None:
        stage = self.current_stage()
        if stage is None:
            self.window.status.setText("No hanging protocol stage is shown: nothing to save.")
            return
        name, ok = QInputDialog.getText(self.window, "Save layout as protocol", "Name of the new protocol:")
        if not ok or not name.strip():
            return
        self.save_as(name.strip())

    def save_as(self, name: str):
        protocol = hanging.layout_protocol(name, self.current_stage())
        path = hanging.save_protocol(protocol, self.window.archive.home / "hanging")
        self.window.status.setText(f"Saved as hanging protocol '{name}' ({path}).")
        return path


_POOL: QThreadPool | None = None


def _stage_pool() -> QThreadPool:
    """Threads for what the reader waits on (hanging a study, opening a stage), not queued
    behind thumbnails and other work in the application's pool; one for all viewers, never
    deleted with a window (a pool's deletion waits for its tasks)."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(2)
    return _POOL


def _shown(vp):
    """(header, (rows, columns)) of the image a viewport shows; None if it cannot be read."""
    try:
        return vp.images.header(vp.index), vp.images.stored(vp.index).shape[:2]
    except ImageError:
        return None


def _headers_and_shapes(opened) -> tuple[list, list]:
    """Header and (rows, columns) of the image each viewport shows first, from its header
    (the pixels need not be decoded yet); None for an empty viewport or an image that cannot
    be read (the viewport says why)."""
    headers, shapes = [], []
    for item in opened:
        try:
            header = item[0].header(item[1]) if item else None
            shape = (int(header.Rows), int(header.Columns)) if header is not None else None
        except Exception:  # noqa: BLE001
            header, shape = None, None
        headers.append(header)
        shapes.append(shape)
    return headers, shapes


def _prepare_textures(stage, opened, rects, mm: float, pool) -> None:
    """Each image decoded and made into its texture as its viewport will ask for it (window,
    size reduction for the placement in ``rects``), off the GUI thread, one task per image;
    a viewport whose final size asks for another reduction makes its own."""
    from app.imaging import pixels, scene
    from app.imaging.stage_layout import place
    headers, shapes = _headers_and_shapes(opened)

    def prepare(args) -> None:
        item, header, p = args
        if item is None or header is None:
            return
        images, middle = item
        try:
            images.stored(middle)
            window = next(iter(pixels.file_presets(header)), None)
            if window is None and not pixels.is_color(header):
                window = pixels.default_window(header, images.stored(middle))
            images.texture(middle, window, False, scene.reduction_factor(p.zoom))
        except Exception:  # noqa: BLE001 - made (or explained) by the viewport
            pass
    list(pool.map(prepare, zip(opened, headers, place(stage, headers, shapes, rects, mm))))
