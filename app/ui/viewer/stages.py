"""Hanging protocol stages in the viewer: the protocol the engine chose for the study
(app.imaging.hanging), its stages stepped with one key in any viewport (Space forward,
Shift+Space back; app.ui.viewer.viewport) or the toolbar's stage list, each laid out by app.imaging.stage_layout exactly as
'lightbox hang' draws it: mammograms mirrored, chest walls on the centre lines, "same"
size across detectors, true size; the current layout can be saved as a protocol of the
user's own (<home>/hanging/)."""

from __future__ import annotations

import logging
import time

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QInputDialog, QLabel

from app.imaging import hanging
from app.imaging.series import SeriesImages
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
        save = QAction("Save layout as protocol…", window, triggered=self.save_layout)
        save.setToolTip("Keep this stage's layout as a hanging protocol of your own")
        bar.addAction(save)

    @property
    def active(self) -> bool:
        return self.hung is not None and self.index >= 0

    def start(self, study_uid: str) -> None:
        """Hang ``study_uid`` (off the GUI thread: headers are read); a protocol other than
        the generic one is applied at once."""
        from app.imaging.study_hanging import hang_study
        archive = self.window.archive
        user_folder = archive.home / "hanging"
        run_in_background(lambda: hang_study(archive, study_uid, user_folder), self._hung)

    def _hung(self, hung, error) -> None:
        if getattr(self.window, "_closing", False) or not shiboken6.isValid(self.box):
            return
        if error is not None:
            log.warning("no hanging protocol: %s", error)
            self.protocol_label.setText(" Protocol: — ")
            return
        self.hung = hung
        self.protocol_label.setText(f" Protocol: {hung.protocol.name} ")
        self.box.clear()
        for i, stage in enumerate(hung.stages):
            self.box.addItem(f"{i + 1}. {stage.name}")
        problems = sorted({p for sets in [hung.studies.current] for s in sets for p in s.problems})
        if problems:
            self.window.status.setText("⚠ " + "; ".join(problems[:3]))
        if hung.protocol.id != "generic" and hung.stages:
            self.show_stage(0)

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
        window.hanging_active = True
        window.set_layout(stage.rows, stage.columns)
        window.show_layout_name(stage.rows, stage.columns)
        viewports = window.visible_viewports()
        for vp, hv in zip(viewports, stage.viewports):
            vp.series_uid = hv.display_set.uid if hv.display_set else None
            if hv.display_set is None:
                vp.close_series()
        cache_mb = window.archive.settings["viewer.cache_mb"]
        files = [self.hung.files.get(hv.display_set.uid) if hv.display_set else None for hv in stage.viewports]

        def open_all():
            opened = []
            for paths in files:
                if not paths:
                    opened.append(None)
                    continue
                images = SeriesImages(list(paths), cache_mb=cache_mb)
                middle = len(images) // 2
                try:
                    images.stored(middle)  # decoded here, not on the GUI thread
                except Exception:  # noqa: BLE001 - the viewport says why
                    pass
                opened.append((images, middle))
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
        run_in_background(open_all, done)

    def _place(self, stage, viewports, opened) -> None:
        from app.imaging.stage_layout import place
        headers, shapes = [], []
        for item in opened:
            if item is None:
                headers.append(None)
                shapes.append(None)
                continue
            images, middle = item
            try:
                headers.append(images.header(middle))
                shapes.append(images.stored(middle).shape[:2])
            except Exception:  # noqa: BLE001 - shown empty with the reason by the viewport
                headers.append(None)
                shapes.append(None)
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
            vp.set_series(images, label)
            vp.rotation, vp.flip = p.rotation, p.flip
            vp.zoom = p.zoom if header is not None else None
            vp.pan = p.pan
            vp.link_group = hv.viewport.link
            vp.show_image(middle)
        self.shown_at = time.monotonic()
        self.stageShown.emit(self.index)

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
