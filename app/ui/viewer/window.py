"""The viewer window: a grid of viewports, a series strip with thumbnails, a toolbar with
layouts, window presets and the view tools."""

from __future__ import annotations

import logging

from pathlib import Path

import shiboken6
from PySide6.QtCore import QMimeData, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (QComboBox, QDockWidget, QFileDialog, QGridLayout, QLabel, QListWidget,
                               QListWidgetItem, QMainWindow, QMessageBox, QToolBar, QWidget)

from app.dicom import formatting
from app.imaging import pixels, presentation_state, thumbnails
from app.imaging.series import ImageError, SeriesImages, archive_series
from app.store import browse
from app.ui.background import run_in_background
from app.ui.viewer.viewport import SERIES_MIME, Viewport

log = logging.getLogger(__name__)

LAYOUTS = {"1×1": (1, 1), "1×2": (1, 2), "2×1": (2, 1), "2×2": (2, 2), "2×3": (2, 3), "3×3": (3, 3)}
CUSTOM = "Custom…"


class _SeriesStrip(QListWidget):
    """The series list; a series can be dragged onto a viewport."""

    def __init__(self):
        super().__init__()
        self.setDragEnabled(True)
        self.setDragDropMode(QListWidget.DragOnly)

    def mimeData(self, items):
        data = QMimeData()
        if items:
            data.setData(SERIES_MIME, items[0].data(Qt.UserRole)["SeriesInstanceUID"].encode())
        return data

    def mimeTypes(self):
        return [SERIES_MIME]


class ViewerWindow(QMainWindow):
    def __init__(self, archive, study_rows: list[dict], parent=None, *, hang: bool = True, jobs=None,
                 job_updates=None, actor: str | None = None, add_to_film=None):
        """``hang``: a single study is hung by its hanging protocol (app.ui.viewer.stages).
        ``jobs`` (app.jobs.queue.JobQueue), ``job_updates`` (a signal of job dicts) and
        ``actor``: the application's, so the study's priors are fetched from the archive as a
        job of the jobs panel (setting hanging.priors_node)."""
        super().__init__(parent)
        self.jobs, self.job_updates, self.actor = jobs, job_updates, actor
        self.add_to_film = add_to_film  # the film composer's add_images (app.ui.film_composer)
        # Deleted when closed: its VTK windows are finalized then and must not be shown again.
        self.setAttribute(Qt.WA_DeleteOnClose)
        self._closing = False  # answers of background work that arrive after closing are dropped
        self.archive = archive
        self.setWindowTitle("Lightbox viewer — " + ", ".join(
            f"{r.get('PatientName') or '?'} {r.get('StudyDate') or ''}" for r in study_rows[:3]))
        self.viewports: list[Viewport] = []
        self.active: Viewport | None = None
        self.series_rows: list[dict] = []
        self.states: list = []  # (series row, PresentationState) of the open studies
        self._prepared: dict[str, SeriesImages] = {}  # series opened ahead, by UID
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.setCentralWidget(self.grid_host)
        self._toolbar()
        self.strip = _SeriesStrip()
        self.strip.setIconSize(QSize(thumbnails.SIZE, thumbnails.SIZE))
        self.strip.itemActivated.connect(self._strip_activated)
        self.strip.itemClicked.connect(self._strip_activated)
        dock = QDockWidget("Series", self)
        dock.setObjectName("series")
        dock.setWidget(self.strip)
        self.addDockWidget(Qt.LeftDockWidgetArea, dock)
        self.status = QLabel()
        self.statusBar().addWidget(self.status, 1)
        self.hanging_active = False  # a protocol stage fills the viewports, not the series order
        from app.ui.viewer.stages import StageController
        self.stages = StageController(self)
        if hang and len(study_rows) == 1:
            # started first, so the study's headers are read while the window is built; the
            # viewports wait for the protocol instead of decoding series in order meanwhile
            self.hanging_active = True
            self.stages.start(study_rows[0]["StudyInstanceUID"])
        self.set_layout(1, 1)
        self.resize(1400, 900)
        self._load_series([r["StudyInstanceUID"] for r in study_rows])

    # -- toolbar ------------------------------------------------------------------------------
    def _toolbar(self) -> None:
        bar = QToolBar("Tools", self)
        bar.setObjectName("tools")
        self.addToolBar(bar)
        self.layout_box = QComboBox()
        self.layout_box.addItems(list(LAYOUTS) + [CUSTOM])
        self.layout_box.currentTextChanged.connect(self._layout_chosen)
        # chosen again, Custom asks again (a change of text alone would not)
        self.layout_box.activated.connect(lambda i: self._custom_layout_dialog()
                                          if self.layout_box.itemText(i) == CUSTOM else None)
        bar.addWidget(QLabel(" Layout "))
        bar.addWidget(self.layout_box)
        self.presets = QComboBox()
        self.presets.setSizeAdjustPolicy(QComboBox.AdjustToContents)  # "C 9000 / W 14000" whole
        self.presets.activated.connect(self._preset_chosen)
        bar.addWidget(QLabel(" Window "))
        bar.addWidget(self.presets)
        self.state_box = QComboBox()
        self.state_box.setToolTip("Apply a presentation state (GSPS) of this series: its window, "
                                  "rotation, displayed area, shutters and annotations")
        self.state_box.activated.connect(self._state_chosen)
        self.state_box.setMinimumContentsLength(14)
        bar.addWidget(QLabel(" Presentation "))
        bar.addWidget(self.state_box)
        bar.addSeparator()
        self.tool_actions = {}
        for label, tool in (("W/L", "window"), ("Distance", "distance"), ("Angle", "angle"), ("ROI", "roi")):
            act = QAction(label, self, checkable=True, triggered=lambda _=False, t=tool: self.set_tool(t))
            bar.addAction(act)
            self.tool_actions[tool] = act
        self.tool_actions["window"].setChecked(True)
        bar.addAction(QAction("Clear", self, triggered=lambda: self._each(Viewport.clear_measurements)))
        self.link = QAction("Link", self, checkable=True, checked=True)
        self.link.setToolTip("Scroll and window together the viewports of one frame of reference")
        bar.addAction(self.link)
        bar.addSeparator()
        save = QAction("Save view…", self, triggered=lambda: self._save_dialog(True))
        save.setToolTip("Save the active viewport as PNG or JPEG, with its image text")
        bar.addAction(save)
        bar.addAction(QAction("Save image only…", self, triggered=lambda: self._save_dialog(False)))
        if self.add_to_film is not None:
            film = QAction("Add to film", self, shortcut=QKeySequence("Ctrl+P"), triggered=self.film_active)
            film.setToolTip("Put the image shown in the active viewport on the film composer, with its window, "
                            "zoom and orientation (Ctrl+P); the series strip's thumbnails can be dragged there too")
            bar.addAction(film)
        bar.addSeparator()
        for label, slot, key in (("Fit", lambda: self._each(Viewport.fit), "F"),
                                 ("1:1", lambda: self._each(Viewport.one_to_one), "1"),
                                 ("Invert", lambda: self._each(Viewport.toggle_invert), "I"),
                                 ("Reset", lambda: self._each(Viewport.reset), "R")):
            act = QAction(label, self, triggered=slot)
            act.setToolTip(f"{label} ({key} in a viewport)")
            bar.addAction(act)

    def film_active(self) -> None:
        cell = self.active.film_cell() if self.active is not None else None
        if cell is not None and self.add_to_film is not None:
            self.add_to_film([cell])

    def show_layout_name(self, rows: int, cols: int) -> None:
        """The layout box says what is shown (a protocol's stage), choosing nothing."""
        name = next((n for n, shape in LAYOUTS.items() if shape == (rows, cols)), CUSTOM)
        self.layout_box.blockSignals(True)
        self.layout_box.setCurrentText(name)
        self.layout_box.blockSignals(False)

    def _layout_chosen(self, text: str) -> None:
        if text in LAYOUTS:
            self.hanging_active = False  # the reader's own layout: series in order again
            self.set_layout(*LAYOUTS[text])

    def _custom_layout_dialog(self) -> None:
        """Rows x columns of the reader's choosing (up to 6 x 6)."""
        from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QSpinBox
        dialog = QDialog(self)
        dialog.setWindowTitle("Custom layout")
        rows, cols = QSpinBox(minimum=1, maximum=6), QSpinBox(minimum=1, maximum=6)
        rows.setValue(self.layout_shape[0])
        cols.setValue(self.layout_shape[1])
        form = QFormLayout(dialog)
        form.addRow("Rows", rows)
        form.addRow("Columns", cols)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        self.custom_dialog = dialog  # reachable by tests
        if dialog.exec() == QDialog.Accepted:
            self.hanging_active = False
            self.set_layout(rows.value(), cols.value())

    def set_tool(self, tool: str) -> None:
        for name, act in self.tool_actions.items():
            act.setChecked(name == tool)
        for vp in self.viewports:
            vp.tool = tool
            vp._drawing = None

    def _each(self, method) -> None:
        if self.active is not None and self.active.images is not None:
            method(self.active)

    def _preset_chosen(self, i: int) -> None:
        window = self.presets.itemData(i)
        if window is not None and self.active is not None:
            self.active.set_window(window)

    def _state_chosen(self, i: int) -> None:
        if self.active is not None and self.active.images is not None:
            self.active.set_presentation(self.state_box.itemData(i))

    def states_for(self, series_uid: str | None) -> list:
        """The presentation states of the open studies that reference a series."""
        return [ps for _, ps in self.states if any(s == series_uid for s, _, _ in ps.references)]

    def _fill_states(self, vp: Viewport) -> None:
        self.state_box.clear()
        self.state_box.addItem("(none)", None)
        for ps in self.states_for(getattr(vp, "series_uid", None)):
            when = " ".join(filter(None, (formatting.date(ps.date), formatting.time(ps.time))))
            self.state_box.addItem(" — ".join(filter(None, (ps.label or "GSPS", ps.description, when))), ps)
        current = next((i for i in range(self.state_box.count()) if self.state_box.itemData(i) is vp.presentation), 0)
        self.state_box.setCurrentIndex(current)
        self.state_box.setEnabled(self.state_box.count() > 1)

    def _read_states(self, rows: list[dict]) -> list:
        """(series row, PresentationState) for every GSPS among the series (read off the GUI
        thread; a state that cannot be read is logged and left out)."""
        import pydicom
        out = []
        for row in rows:
            if row.get("Modality") != "PR":
                continue
            for path in archive_series(self.archive, row["SeriesInstanceUID"])[0]:
                try:
                    ds = pydicom.dcmread(path)
                    if presentation_state.is_presentation_state(ds):
                        out.append((row, presentation_state.parse(ds)))
                except Exception as exc:  # noqa: BLE001 - one bad state must not hide the others
                    log.warning("presentation state %s cannot be read: %s", path, exc)
        return out

    def _fill_presets(self, vp: Viewport) -> None:
        self.presets.clear()
        if vp.images is None or not len(vp.images):
            return
        try:
            header = vp.images.header(vp.index)
        except ImageError:
            return
        for w in pixels.file_presets(header) + pixels.modality_presets(str(header.get("Modality", ""))):
            self.presets.addItem(w.label(), w)

    # -- layout -------------------------------------------------------------------------------
    def set_layout(self, rows: int, cols: int) -> None:
        self.layout_shape = (rows, cols)
        wanted = rows * cols
        while len(self.viewports) < wanted:
            vp = Viewport(self.grid_host)
            vp.tool = next((t for t, a in getattr(self, "tool_actions", {}).items() if a.isChecked()), "window")
            vp.activated.connect(self._activate)
            vp.changed.connect(self._viewport_changed)
            vp.seriesDropped.connect(self._series_dropped)
            vp.stageStep.connect(self.stages.step)
            vp.cadToggle.connect(self.stages.toggle_cad)
            vp.pointed.connect(self.stages.point_at)
            self.viewports.append(vp)
        for vp in self.viewports:
            self.grid.removeWidget(vp)
            vp.hide()
        for i, vp in enumerate(self.viewports[:wanted]):
            self.grid.addWidget(vp, i // cols, i % cols)
            vp.show()
        if self.active is None or self.active not in self.viewports[:wanted]:
            self._activate(self.viewports[0])
        self._fill_empty_viewports()

    def visible_viewports(self) -> list[Viewport]:
        return [vp for vp in self.viewports if vp.isVisible()]

    def _activate(self, vp: Viewport) -> None:
        self.active = vp
        for other in self.viewports:
            other.setStyleSheet("border: 1px solid #f0c040;" if other is vp else "border: 1px solid #333;")
        self._fill_presets(vp)
        self._fill_states(vp)

    def _viewport_changed(self, vp: Viewport) -> None:
        if getattr(self, "_thumbs_requested", True) is False and vp.images is not None:
            QTimer.singleShot(0, self._request_thumbnails)
        if vp is self.active:
            self.status.setText(f"image {vp.index + 1} of {vp.image_count()}"
                                + (f" — {vp.message}" if vp.message else ""))
        if self.link.isChecked() and not getattr(self, "_linking", False) and vp is self.active:
            self._linking = True
            try:
                if self.hanging_active and getattr(vp, "link_group", None):
                    self.stages.follow(vp)  # the protocol's pairs: zoom, pan and window together
                else:
                    self._follow(vp)
            finally:
                self._linking = False

    def _follow(self, leader: Viewport) -> None:
        """Viewports of the leader's frame of reference go to the slice nearest its own and,
        for the same modality, take its window."""
        import numpy as np

        from app.imaging.geometry import normal
        images = leader.images
        if images is None or not len(images) or images.frame_of_reference() is None:
            return
        try:
            header = images.header(leader.index)
            n = normal([float(v) for v in header.ImageOrientationPatient])
        except (AttributeError, TypeError, ValueError):
            n = None
        except ImageError:
            return
        here = images.position(leader.index, n) if n is not None else None
        modality = header.get("Modality")
        for vp in self.visible_viewports():
            if vp is leader or vp.images is None or vp.images.frame_of_reference() != images.frame_of_reference():
                continue
            target = vp.index
            if here is not None:
                try:
                    other = vp.images.header(vp.index)
                    parallel = abs(float(np.dot(normal([float(v) for v in other.ImageOrientationPatient]), n))) > 0.99
                except (AttributeError, TypeError, ValueError, ImageError):
                    parallel = False
                if parallel:
                    target = vp.images.nearest(here, n)
                    target = vp.index if target is None else target
            try:
                same_modality = vp.images.header(0).get("Modality") == modality
            except ImageError:
                same_modality = False
            window = leader.window if same_modality else vp.window
            if target != vp.index or window != vp.window:
                vp.window = window
                vp.show_image(target)

    # -- series -------------------------------------------------------------------------------
    def _load_series(self, study_uids: list[str]) -> None:
        engine = self.archive.engine

        cache_mb = self.archive.settings["viewer.cache_mb"]

        def rows():
            out = []
            for uid in study_uids:
                out += browse.series_of(engine, uid)
            hung = [r for r in out if r.get("Modality") != "PR"]
            if hung and not self.hanging_active:
                # the series hung first is opened in the same stroke: the reader waits for it
                # (a hanging protocol opens its own, and would wait on this decode instead)
                uid = hung[0]["SeriesInstanceUID"]
                self._prepared[uid] = self._open_series(uid, cache_mb)
            self.states = self._read_states(out)
            return out
        run_in_background(rows, self._show_series_list)

    def _show_series_list(self, rows, error) -> None:
        if self._closing:
            for images in self._prepared.values():  # opened while the window closed
                images.close()
            return
        if error is not None:
            self.status.setText(f"The series cannot be read: {error}")
            return
        self.series_rows = rows
        self.strip.clear()
        for row in rows:
            n = row.get("NumberOfSeriesRelatedInstances", 0)
            item = QListWidgetItem(f"{row.get('Modality') or ''} {row.get('SeriesNumber') or ''}\n"
                                   f"{row.get('SeriesDescription') or ''}\n"
                                   f"{n} image{'' if n == 1 else 's'}")
            item.setData(Qt.UserRole, row)
            self.strip.addItem(item)
        self._fill_empty_viewports()
        if self.active is not None:
            self._fill_states(self.active)
        # thumbnails once the first image is on screen (or after 3 s): they must not compete
        # with what the reader is waiting for
        self._thumbs_requested = False
        QTimer.singleShot(3000, self._request_thumbnails)

    def _request_thumbnails(self) -> None:
        if getattr(self, "_thumbs_requested", True) or self._closing:
            return
        self._thumbs_requested = True
        for i in range(self.strip.count()):
            item = self.strip.item(i)
            uid = item.data(Qt.UserRole)["SeriesInstanceUID"]
            # not made once the window has closed (a queue of 13-megapixel decodes otherwise
            # runs on, delaying the next study's)
            run_in_background(lambda uid=uid: None if self._closing else thumbnails.thumbnail(self.archive, uid),
                              lambda path, err, item=item: self._thumb(item, path, err))

    def _thumb(self, item: QListWidgetItem, path, error) -> None:
        # the window may have closed (and its items gone) while the thumbnail was made
        if error is None and path is not None and not self._closing and shiboken6.isValid(item):
            item.setIcon(QIcon(QPixmap(str(path))))

    def _fill_empty_viewports(self) -> None:
        """Hang the series in order into the viewports that show nothing yet (unless a
        hanging protocol stage decides what they show)."""
        if self.hanging_active:
            return
        used = {id(vp) for vp in self.visible_viewports() if vp.images is not None}
        # presentation states are applied to the series they reference, not hung themselves
        queue = [r for r in self.series_rows if r["SeriesInstanceUID"] not in
                 {getattr(vp, "series_uid", None) for vp in self.visible_viewports()} and r.get("Modality") != "PR"]
        for vp in self.visible_viewports():
            if id(vp) in used or not queue:
                continue
            self.load_into(vp, queue.pop(0))

    def _series_dropped(self, vp: Viewport, uid: str) -> None:
        row = next((r for r in self.series_rows if r["SeriesInstanceUID"] == uid), None)
        if row is not None:
            self.load_into(vp, row)

    def save_view(self, path: Path, with_text: bool = True) -> Path:
        """The active viewport as drawn, as PNG or JPEG (by the file's suffix)."""
        img = self.active.snapshot(with_text)
        qimage = QImage(img.data, img.shape[1], img.shape[0], img.shape[1] * 3, QImage.Format_RGB888)
        fmt = "JPG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
        if not qimage.save(str(path), fmt, 95 if fmt == "JPG" else -1):
            raise OSError(f"cannot write {path}")
        return path

    def _save_dialog(self, with_text: bool) -> None:
        if self.active is None or self.active.images is None:
            return
        name, _ = QFileDialog.getSaveFileName(self, "Save the view", "view.png", "PNG (*.png);;JPEG (*.jpg *.jpeg)")
        if name:
            try:
                self.save_view(Path(name), with_text)
                self.status.setText(f"saved {name}")
            except OSError as exc:
                QMessageBox.warning(self, "Save the view", f"{exc}. Choose another folder.")

    def _strip_activated(self, item: QListWidgetItem) -> None:
        if self.active is None:
            return
        row = item.data(Qt.UserRole)
        if row.get("Modality") != "PR":
            self.load_into(self.active, row)
            return
        # a presentation state series: its (first) state, on the series it references
        state = next((ps for r, ps in self.states if r["SeriesInstanceUID"] == row["SeriesInstanceUID"]), None)
        target = next((r for r in self.series_rows for s, _, _ in (state.references if state else ())
                       if r["SeriesInstanceUID"] == s), None)
        if state is None or target is None:
            self.status.setText("This presentation state refers to images that are not in this study's archive"
                                if state is not None else "This presentation state cannot be read (see the log)")
            return
        if getattr(self.active, "series_uid", None) == target["SeriesInstanceUID"] and self.active.images is not None:
            self.active.set_presentation(state)
            self._fill_states(self.active)
        else:
            self.load_into(self.active, target, presentation=state)

    def _key_images(self, images: SeriesImages, series_uid: str, cache_mb: int) -> SeriesImages | None:
        """A Key Object Selection opens as the images it flags (those in the local archive);
        None for anything else, or a KO whose images are all elsewhere (it then shows as its
        content tree, which lists what it references)."""
        from app.imaging import key_objects
        try:
            header = images.header(0) if len(images) else None
        except ImageError:
            return None
        if header is None or not key_objects.is_key_object(header):
            return None
        files, frames, missing = key_objects.archive_files(self.archive, key_objects.referenced_instances(header))
        if not files:
            return None
        if missing:
            log.info("%d key image(s) of series %s are not in the local archive", len(missing), series_uid)
        images.close()
        return SeriesImages(files, frames, cache_mb=cache_mb)

    def load_into(self, vp: Viewport, row: dict, presentation=None) -> None:
        """Open a series in a viewport: its files are listed and its headers read off the GUI
        thread; the first image shows as soon as it is decoded."""
        archive = self.archive
        uid = row["SeriesInstanceUID"]
        vp.series_uid = uid
        title = f"{row.get('Modality') or ''} {row.get('SeriesNumber') or ''} {row.get('SeriesDescription') or ''}"

        def opened(images, error) -> None:
            if self._closing or not shiboken6.isValid(vp):
                if images is not None:
                    images.close()
                return
            if error is not None:
                self.status.setText(f"The series cannot be opened: {error}")
                return
            if getattr(vp, "series_uid", None) != uid:  # replaced meanwhile
                images.close()
                return
            if vp.images is not None:
                vp.images.close()
            vp.set_series(images, title.strip())
            if presentation is not None:
                vp.set_presentation(presentation)
            if vp is self.active:
                self._fill_presets(vp)
                self._fill_states(vp)
        prepared = self._prepared.pop(uid, None)
        if prepared is not None:
            opened(prepared, None)
            return
        cache_mb = archive.settings["viewer.cache_mb"]
        run_in_background(lambda: self._open_series(uid, cache_mb), opened)

    def _open_series(self, uid: str, cache_mb: int) -> SeriesImages:
        """List a series' images and decode the first (a background thread's work)."""
        images = SeriesImages.from_archive(self.archive, uid, cache_mb=cache_mb)
        images = self._key_images(images, uid, cache_mb) or images
        if len(images):
            try:
                images.stored(0)  # decoded here, not on the GUI thread
            except Exception:  # noqa: BLE001 - the viewport shows why
                pass
        return images

    def closeEvent(self, ev) -> None:
        self._closing = True
        for vp in self.viewports:
            vp.close_series()
        for images in self._prepared.values():
            images.close()
        super().closeEvent(ev)
