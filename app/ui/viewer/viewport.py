"""One viewport: a series drawn by VTK inside Qt, with the reading tools.

Mouse: wheel scrolls images, left drag windows (horizontal: width, vertical: level) or
measures (the viewer's tools), right drag zooms, middle drag (or Shift + left) pans. Keys:
arrows / Page Up / Page Down scroll, Home / End jump, C cine, I inverts, F fits, 1 shows one
screen pixel per image pixel, T true size, '.' / ',' rotate, H / V flip, R resets, Space /
Shift+Space step the hanging protocol's stages, K toggles CAD marks (Shift+K with the
optional ones), S steps a slab through a volume (5, 11, 21 slices, off; Shift+S: MIP or
mean), Esc drops a measurement being drawn. The image is windowed to 8 bits by the pixel pipeline and drawn through the same
scene code as 'lightbox render' (app.imaging.scene).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QPlainTextEdit, QStackedLayout, QVBoxLayout, QWidget
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleUser
from vtkmodules.vtkRenderingCore import vtkRenderer

from app.imaging import measure, overlays, pixels, presentation_state, scene
from app.imaging.image_text import ViewState, corner_text, orientation_markers, wrap_lines
from app.imaging.series import ImageError, SeriesImages

log = logging.getLogger(__name__)


class _VtkView(QVTKRenderWindowInteractor):
    """The VTK widget; Qt input goes to the viewport's tools instead of VTK's styles."""

    def __init__(self, viewport: "Viewport"):
        super().__init__(viewport)
        self.viewport = viewport

    def Finalize(self):
        if self._RenderWindow is not None:
            super().Finalize()

    def release(self) -> None:
        """Finalize and drop the render window and interactor, so that VTK deletes them now,
        closing the X connection each opened, not at interpreter exit after the X server
        may be gone (Xlib then aborts the process)."""
        self.Finalize()
        self._RenderWindow = self._Iren = None

    def paintEvent(self, ev):
        if not getattr(self.viewport, "finalized", False):  # a finalized VTK window drawn again reopens X, or crashes
            super().paintEvent(ev)

    def resizeEvent(self, ev):
        if not getattr(self.viewport, "finalized", False):
            super().resizeEvent(ev)

    def mousePressEvent(self, ev):
        self.viewport.press(ev)

    def mouseMoveEvent(self, ev):
        self.viewport.drag(ev)

    def mouseReleaseEvent(self, ev):
        self.viewport.release(ev)

    def wheelEvent(self, ev):
        self.viewport.wheel(ev)

    def keyPressEvent(self, ev):
        if not self.viewport.key(ev):
            super().keyPressEvent(ev)

    def dragEnterEvent(self, ev):
        self.viewport.dragEnterEvent(ev)

    def dragMoveEvent(self, ev):
        if ev.mimeData().hasFormat(SERIES_MIME):
            ev.acceptProposedAction()

    def dropEvent(self, ev):
        self.viewport.dropEvent(ev)


from app.ui.mime import SERIES_MIME  # noqa: E402 - beside the class that uses it


class Viewport(QWidget):
    activated = Signal(object)   # this viewport was clicked
    changed = Signal(object)     # image, window, zoom or pan changed (linked viewports listen)
    seriesDropped = Signal(object, str)  # a series dragged from the strip onto this viewport
    stageStep = Signal(int)      # Space / Shift+Space: the hanging protocol's next / previous stage
    cadToggle = Signal(bool)     # K: CAD marks on or off (Shift+K: with the optional ones)
    pointed = Signal(object, object)  # a click (no drag) on the image: (viewport, (column, row))

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = _VtkView(self)
        self.document = QPlainTextEdit(readOnly=True)  # reports and "cannot be displayed"
        self.document.setStyleSheet("background: #111; color: #eee; font-family: monospace;")
        self.stack = QStackedLayout()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.document)
        self.pdf_view = None  # made when a PDF is shown (QtPdf)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(1, 1, 1, 1)
        lay.addLayout(self.stack)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0, 0, 0)
        self.render_window = self.view.GetRenderWindow()
        # No multisampling: it smooths nothing in a 2D image (pixels are drawn unfiltered)
        # and multiplies the fragment work of software OpenGL.
        self.render_window.SetMultiSamples(0)
        self.render_window.AddRenderer(self.renderer)
        self.view.GetRenderWindow().GetInteractor().SetInteractorStyle(vtkInteractorStyleUser())
        self.text = scene.ImageText()
        self.text.add_to(self.renderer)
        self.images: SeriesImages | None = None
        self.title = ""
        self.index = 0
        self.window: pixels.Window | None = None
        self.invert = False
        self.zoom: float | None = None  # None: fit
        self.pan = (0.0, 0.0)           # image pixels
        self.rotation = 0               # degrees clockwise
        self.flip = False               # left-right, before the rotation
        self.text_outside = "left"      # the side of the image text's first column (hanging: the free side)
        self.text_narrow = False        # only that column (a hanging stage's small viewports)
        self.slab = 0                   # slab: images either side of the one shown (0: none)
        self.slab_mode = "mip"          # or "average"
        self.cad_marks: list = []       # CAD marks on the image shown (app.imaging.cad_marks)
        self.cad_shown = ""             # "": hidden; "required"; "all" (the optional ones too)
        self.cad_summary = ""           # what the CAD said, shown with the marks
        self._cad_actors: list = []
        self.crosshair: tuple[float, float] | None = None  # (column, row): the same spot as another view's
        self._crosshair_actors: list = []
        self.cine = QTimer(self, timeout=lambda: self.scroll(1, wrap=True))
        self._actor = None
        self._warm = False  # drawn once: its shaders are compiled (warm_up)
        self._shape = None
        self._drag = None
        self.message = ""
        self.finalized = False  # close_series() released the render window: never draw again
        self.tool = "window"  # or "distance", "angle", "roi"
        self.measurements: dict[int, list[overlays.Measurement]] = {}  # by image index
        self.presentation: presentation_state.PresentationState | None = None  # a GSPS applied
        self.area: tuple[float, float, float, float] | None = None  # its displayed area, fitted
        self._area_source = None  # the DisplayedArea self.area came from
        self._state_actors: list = []
        self._drawing: overlays.Measurement | None = None
        self.setFocusPolicy(Qt.StrongFocus)
        self.view.setFocusPolicy(Qt.StrongFocus)
        self.setAcceptDrops(True)
        self.view.setAcceptDrops(True)

    def _render(self) -> None:
        if not self.finalized:
            self.render_window.Render()

    def warm_up(self) -> None:
        """Draw once what an image needs (a grey image actor, text) while nothing is shown:
        the first drawing in a new OpenGL context compiles its shaders, some 60 ms a viewport
        in software OpenGL, and a hanging stage can use that time while its images decode."""
        if self.finalized or self._warm or self._actor is not None or not self.isVisible():
            return
        import numpy as np
        self._warm = True
        actor = scene.image_actor(np.zeros((2, 2), np.uint8))
        self.renderer.AddActor(actor)
        shown = self.text.text("top-left")
        self.text.set({"top-left": shown or "."}, None)
        self._render()
        self.renderer.RemoveActor(actor)
        self.text.set({"top-left": shown}, None)

    # -- content ----------------------------------------------------------------------------
    def set_series(self, images: SeriesImages, title: str = "", *, index: int = 0,
                   view: tuple[int, bool, float | None, tuple[float, float]] | None = None) -> None:
        """Show ``images`` from image ``index``; ``view``: (rotation, flip, zoom, pan) to show
        it with at once (a hanging protocol's placement), drawn once, not refitted after."""
        self.images, self.title = images, title
        self.index = 0
        self.crosshair = None
        if len(images) and self._show_document(images):
            return
        self.stack.setCurrentWidget(self.view)
        self.window = None
        self.invert = False
        self.zoom, self.pan = None, (0.0, 0.0)
        self.presentation, self.area, self._area_source = None, None, None
        self.rotation, self.flip = 0, False
        if view is not None:
            self.rotation, self.flip, self.zoom, self.pan = view
        else:  # a series opened by the reader: no hanging stage's CAD marks
            self.cad_marks, self.cad_summary = [], ""
        if len(images):
            try:
                self.window = next(iter(pixels.file_presets(images.header(index))), None)
            except ImageError:
                self.window = None
        self.show_image(index)

    def _show_document(self, images: SeriesImages) -> bool:
        """Reports as text, PDFs and non-displayable objects in plain words: True if shown."""
        from app.imaging import documents
        try:
            header = images.header(0)
        except ImageError as exc:
            self.document.setPlainText(str(exc))
            self.stack.setCurrentWidget(self.document)
            return True
        what = documents.kind(header)
        if what == "image":
            return False
        if what == "report":
            texts = []
            for i in range(len(images)):
                try:
                    texts.append(documents.sr_text(images.header(i)))
                except ImageError as exc:
                    texts.append(str(exc))
            self.document.setPlainText(("\n\n" + "─" * 60 + "\n\n").join(texts))
        elif what == "pdf":
            if self._show_pdf(images):
                return True
            self.document.setPlainText(f"PDF document: {header.get('DocumentTitle', '') or '(no title)'} — "
                                       "it cannot be shown: the document in it is damaged or not a PDF.")
        else:
            self.document.setPlainText(documents.not_displayable(header))
        self.stack.setCurrentWidget(self.document)
        return True

    def _show_pdf(self, images: SeriesImages) -> bool:
        """The encapsulated PDF of the first object, in a Qt PDF view."""
        import pydicom
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice
        from PySide6.QtPdf import QPdfDocument
        from PySide6.QtPdfWidgets import QPdfView
        try:
            ds = pydicom.dcmread(images.entries[0].path)
            data = bytes(ds.EncapsulatedDocument)
        except Exception as exc:  # noqa: BLE001 - said in the viewport
            log.warning("cannot read the encapsulated PDF: %s", exc)
            return False
        length = ds.get("EncapsulatedDocumentLength")  # the document may be padded to even length
        if length:
            data = data[:int(length)]
        if self.pdf_view is None:
            self.pdf_view = QPdfView(self)
            self.pdf_view.setPageMode(QPdfView.PageMode.MultiPage)
            self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
            self.stack.addWidget(self.pdf_view)
        self._pdf_bytes = QByteArray(data)
        self._pdf_buffer = QBuffer(self._pdf_bytes)  # kept: the document reads from it
        self._pdf_buffer.open(QIODevice.ReadOnly)
        self._pdf = QPdfDocument(self)
        self._pdf.load(self._pdf_buffer)
        if self._pdf.status() == QPdfDocument.Status.Error or self._pdf.pageCount() < 1:
            return False
        self.pdf_view.setDocument(self._pdf)
        self.stack.setCurrentWidget(self.pdf_view)
        return True

    def image_count(self) -> int:
        return len(self.images) if self.images is not None else 0

    def show_image(self, index: int) -> None:
        if self.images is None or not len(self.images):
            return
        self.index = max(0, min(index, len(self.images) - 1))
        shown = None
        try:
            header = self.images.header(self.index)
            state = self._state(header)
            if state is not None:
                img = self._state_display(state, header)
            else:
                if self.window is None and not pixels.is_color(header):  # the window shown is the one used
                    self.window = pixels.default_window(header, self.images.stored(self.index))
                img = None
                if self.slab and len(self.images) > 1 and not pixels.is_color(header):
                    # a slab through a tomosynthesis volume: its MIP or mean, windowed as one slice
                    img = pixels.display(header, self.images.slab(self.index, self.slab, self.slab_mode), self.window,
                                         invert=self.invert)
                else:
                    factor = self._reduction(self.images.stored(self.index).shape)
                    shown, origin, self._shape = self.images.texture(self.index, self.window, self.invert, factor)
            self.message = self.images.note(self.index)
        except ImageError as exc:
            img, shown, self.message = None, None, str(exc)
        if img is not None:
            self._shape = img.shape
            factor = self._reduction(img.shape)
            shown, origin = scene.reduce(img, factor)
        if shown is not None:
            if self._actor is None or not scene.update_image(self._actor, shown, factor):
                if self._actor is not None:
                    self.renderer.RemoveActor(self._actor)
                self._actor = scene.image_actor(shown, factor, origin)
                self.renderer.AddActor(self._actor)
        self.images.prefetch(self.index)
        self._draw_measurements()
        self._draw_cad()
        self._draw_crosshair()
        self._update_camera()
        self._update_text()
        self._render()
        self.changed.emit(self)

    def image_mime(self):
        """What a Ctrl+drag of the image carries: the film composer's cell of it."""
        from PySide6.QtCore import QMimeData

        from app.ui.mime import CELLS_MIME, cells_mime
        cell = self.film_cell()
        if cell is None:
            return None
        data = QMimeData()
        data.setData(CELLS_MIME, cells_mime([cell]))
        return data

    def film_cell(self):
        """The image shown as the film composer prints it (app.film.sheet.Cell): its window,
        polarity, orientation and zoom (relative to fitting its box, the middle of it kept)."""
        from app.film.sheet import Cell
        if self.images is None or not len(self.images):
            return None
        entry = self.images.entries[self.index]
        w = self.window
        center, width = (w.center, w.width) if w is not None and w.lut is None else (None, None)
        zoom = 1.0
        if self.zoom is not None:
            h, wd = self.images.stored(self.index).shape[:2]
            vw, vh = self._view_size()
            rw, rh = (h, wd) if self.rotation % 180 else (wd, h)
            zoom = max(1.0, self.zoom / min(vw / max(rw, 1), vh / max(rh, 1)))
        return Cell(str(entry.path), entry.frame, center, width, self.invert, zoom, (self.rotation // 90) % 4, self.flip)

    # -- presentation states ----------------------------------------------------------------
    def _reference(self, header) -> tuple[str, int]:
        """(SOP Instance UID, 1-based frame) of the image shown: what a GSPS references."""
        return str(header.get("SOPInstanceUID", "")), self.images.entries[self.index].frame + 1

    def _state(self, header):
        """The presentation state applied, if it references the image shown."""
        ps = self.presentation
        return ps if ps is not None and ps.applies_to(*self._reference(header)) else None

    def set_presentation(self, state) -> None:
        """Apply a Grayscale Softcopy Presentation State (None: show the images as they are):
        its VOI, rotation and flip, displayed area, shutters and annotations."""
        self.presentation = state
        self.window, self.invert, self.pan = None, False, (0.0, 0.0)
        self.zoom, self.area, self._area_source = None, None, None
        spatial = state.spatial() if state is not None else None
        self.rotation, self.flip = (spatial.viewer_rotation, spatial.flip) if spatial else (0, False)
        self.show_image(self.index)

    def _state_display(self, state, header):
        sop, frame = self._reference(header)
        img = presentation_state.display(state, header, self.images.stored(self.index), sop, frame, self.window)
        if self.invert and img.ndim == 2:
            img = 255 - img
        area = state.displayed_area(sop, frame)
        if area is not self._area_source:  # a new displayed area: shown as its size mode says
            self._area_source, self.area, self.pan = area, area.box if area else None, (0.0, 0.0)
            self.zoom = None
            if area is not None and area.size_mode == "MAGNIFY" and area.magnification:
                self.zoom = float(area.magnification)
            elif area is not None and area.size_mode == "TRUE SIZE":
                spacing = area.pixel_spacing or (measure.spacing(header).row, measure.spacing(header).column)
                self.zoom = self._screen_pixels_per_mm() * float(spacing[1])
        return img

    def _state_window(self, header) -> pixels.Window | None:
        """The window a drag starts from under a state: its VOI window, else the range of
        the values its Modality LUT gives."""
        state = self._state(header)
        voi = state.voi(*self._reference(header)) if state is not None else None
        if isinstance(voi, pixels.Window):
            return voi
        values = presentation_state.modality_values(state, header, self.images.stored(self.index)) \
            if state is not None else pixels.modality_values(header, self.images.stored(self.index))
        return pixels.min_max_window(values)

    def _draw_state_annotations(self) -> None:
        for actor in self._state_actors:
            self.renderer.RemoveViewProp(actor)
        self._state_actors = []
        if self._shape is None or self.images is None or not len(self.images):
            return
        try:
            header = self.images.header(self.index)
        except ImageError:
            return
        state = self._state(header)
        if state is None:
            return
        for a in state.annotations(*self._reference(header), size=self._shape[:2]):
            self._state_actors += overlays.annotation_actors(a, self._shape[0])
        for actor in self._state_actors:
            self.renderer.AddViewProp(actor)

    # -- view -------------------------------------------------------------------------------
    def _reduction(self, shape) -> int:
        """How many image pixels per texture pixel: 1 unless the image is shown at half size
        or less (a fitted mammogram), then as many as one screen pixel covers."""
        h, w = shape[:2]
        if self.area is not None:
            w, h = self.area[2] - self.area[0], self.area[3] - self.area[1]
        vw, vh = self._view_size()
        rw, rh = (h, w) if self.rotation % 180 else (w, h)
        zoom = self.zoom if self.zoom is not None else min(vw / max(rw, 1), vh / max(rh, 1))
        return scene.reduction_factor(zoom)

    def _view_size(self) -> tuple[int, int]:
        w, h = self.render_window.GetSize()
        return max(w, 1), max(h, 1)

    def _update_camera(self) -> None:
        if self._shape is None:
            return
        self.current_zoom = scene.fit_camera(self.renderer, self._shape, self._view_size(), self.zoom,
                                             self.rotation, self.flip, self.pan, self.area)

    def _update_text(self) -> None:
        """Image text from resources/image_text.tsv and the orientation markers."""
        if self.images is None or not len(self.images):
            self.text.set({}, None)
            return
        try:
            header = self.images.header(self.index)
        except ImageError as exc:
            self.text.set({"top-left": f"⚠ {exc}"}, None)
            return
        grey = self._shape is not None and len(self._shape) == 2
        position = header.get("SliceLocation")
        try:
            position = f"{float(position):.1f} mm" if position not in (None, "") else ""
        except (TypeError, ValueError):
            position = ""
        state = self._state(header)
        if state is not None and self.window is None:
            window = f"GSPS {state.label}".strip()
        else:
            window = ("VOI LUT" if self.window.lut is not None else
                      f"W {self.window.width:g} L {self.window.center:g}") if self.window and grey else ""
        view = ViewState(self.index + 1, len(self.images), window,
                         f"{getattr(self, 'current_zoom', 1.0):.2f}", position,
                         self.window.name if self.window is not None and grey and state is None else "")
        corners = corner_text(header, view)
        if self.message:
            corners["top-left"] = (corners.get("top-left", "") + f"\n⚠ {self.message}").strip()
        if self.slab and len(self.images) > 1:
            lo, hi = max(0, self.index - self.slab), min(len(self.images) - 1, self.index + self.slab)
            corners["bottom-left"] = (corners.get("bottom-left", "") +
                                      f"\nSlab {'MIP' if self.slab_mode == 'mip' else 'mean'} of {hi - lo + 1} slices").strip()
        if self.cad_shown and self.cad_summary:
            corners["bottom-left"] = (corners.get("bottom-left", "") + f"\n{self.cad_summary}").strip()
        if self.text_outside != "left" or self.text_narrow:
            if self.text_narrow:  # an 8-up's viewport: one column of text, or the two overlap
                chars = max(12, int(self.width() / (0.62 * scene.TEXT_SIZE)))  # what fits across at that size
                corners = {k: wrap_lines(v, chars) for k, v in corners.items() if k.endswith("left")}
            if self.text_outside == "right":  # a left breast pinned to the left edge: the free side
                swap = {"top-left": "top-right", "top-right": "top-left", "bottom-left": "bottom-right",
                        "bottom-right": "bottom-left"}
                corners = {swap.get(k, k): v for k, v in corners.items()}
        right, up = scene.screen_axes(self.rotation, self.flip)
        self.text.set(corners,
                             orientation_markers(header.get("ImageOrientationPatient"), right, up))

    def _draw_cad(self) -> None:
        for actor in self._cad_actors:
            self.renderer.RemoveViewProp(actor)
        self._cad_actors = []
        if not self.cad_shown or self._shape is None:
            return
        for mark in self.cad_marks:
            if mark.optional and self.cad_shown != "all":
                continue
            self._cad_actors += overlays.cad_actors(mark, self._shape[0], self.text_outside, self.rotation, self.flip)
        for actor in self._cad_actors:
            self.renderer.AddViewProp(actor)

    def _draw_crosshair(self) -> None:
        for actor in self._crosshair_actors:
            self.renderer.RemoveViewProp(actor)
        self._crosshair_actors = []
        if self.crosshair is None or self._shape is None:
            return
        self._crosshair_actors = overlays.crosshair_actors(self.crosshair, self._shape[:2])
        for actor in self._crosshair_actors:
            self.renderer.AddViewProp(actor)

    def set_crosshair(self, point: tuple[float, float] | None) -> None:
        """A cross-hair at ``point`` (column, row) on every image of the series; None: none."""
        self.crosshair = point
        self._draw_crosshair()
        self._render()

    def show_cad(self, which: str) -> None:
        """"" hides the CAD marks, "required" shows them, "all" adds the optional ones."""
        self.cad_shown = which
        self._draw_cad()
        self._update_text()
        self._render()

    def set_window(self, window: pixels.Window) -> None:
        self.window = window
        self.show_image(self.index)

    def toggle_invert(self) -> None:
        self.invert = not self.invert
        self.show_image(self.index)

    def fit(self) -> None:
        """Fit the image (under a presentation state: its displayed area) in the viewport."""
        self.zoom, self.pan = None, (0.0, 0.0)
        self._refresh_view()

    def one_to_one(self) -> None:
        self.zoom = 1.0
        self._refresh_view()

    def rotate(self, degrees: int = 90) -> None:
        self.rotation = (self.rotation + degrees) % 360
        self._refresh_view()

    def flip_horizontal(self) -> None:
        self.flip = not self.flip
        self._refresh_view()

    def flip_vertical(self) -> None:  # a left-right flip seen upside down
        self.flip = not self.flip
        self.rotation = (self.rotation + 180) % 360
        self._refresh_view()

    def true_size(self) -> None:
        """One mm of the patient (Pixel Spacing; Imager Pixel Spacing for projection images)
        as one mm on this screen (its physical DPI)."""
        if self.images is None:
            return
        sp = measure.spacing(self.images.header(self.index))
        if sp.unit == "px":
            self.message = "no pixel spacing in this image: true size is not known"
            self._update_text()
            self._render()
            return
        self.zoom = sp.column * self._screen_pixels_per_mm()
        self._refresh_view()

    def _screen_pixels_per_mm(self) -> float:
        """Device-independent pixels per mm of this screen (its physical DPI)."""
        return (self.screen().physicalDotsPerInchX() or 96.0) / 25.4 / self.view.devicePixelRatioF()

    def frame_time_ms(self) -> float:
        """Frame Time, else Cine Rate, else 10 frames per second."""
        header = self.images.header(self.index) if self.images is not None else None
        for keyword, to_ms in (("FrameTime", lambda v: v), ("CineRate", lambda v: 1000.0 / v),
                               ("RecommendedDisplayFrameRate", lambda v: 1000.0 / v)):
            try:
                value = float(header.get(keyword)) if header is not None else 0
            except (TypeError, ValueError):
                continue
            if value > 0:
                return max(10.0, to_ms(value))
        return 100.0

    def toggle_cine(self) -> None:
        if self.cine.isActive():
            self.cine.stop()
        elif self.image_count() > 1:
            self.cine.start(int(self.frame_time_ms()))

    def reset(self) -> None:
        if self.presentation is not None:  # back to what the state says
            self.set_presentation(self.presentation)
            return
        self.rotation, self.flip = 0, False
        self.invert = False
        self.window = next(iter(pixels.file_presets(self.images.header(self.index))), None) if self.images else None
        self.zoom, self.pan = None, (0.0, 0.0)
        self.show_image(self.index)

    def _refresh_view(self) -> None:
        if self._shape is not None and self._actor is not None:
            spacing = self._actor.GetMapper().GetInput().GetSpacing()[0]
            if spacing != self._reduction(self._shape):  # zoomed across a reduction step
                self.show_image(self.index)
                return
        self._update_camera()
        self._update_text()
        self._render()
        self.changed.emit(self)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if self._shape is not None and not self.finalized:
            self._update_camera()
            self._update_text()

    # -- measurements -------------------------------------------------------------------------
    def image_point(self, x: float, y: float) -> tuple[float, float]:
        """(column, row) of the image under widget position (x, y)."""
        ratio = self.view.devicePixelRatioF()
        _, height = self.render_window.GetSize()
        self.renderer.SetDisplayPoint(x * ratio, height - y * ratio, 0)  # continuous: no -1
        self.renderer.DisplayToWorld()
        wx, wy, _, w = self.renderer.GetWorldPoint()
        wx, wy = (wx / w, wy / w) if w else (wx, wy)
        return wx, (self._shape[0] - 1) - wy if self._shape is not None else wy

    def widget_point(self, column: float, row: float) -> tuple[float, float]:
        """Widget position (x, y) of image pixel (column, row): image_point's inverse."""
        ratio = self.view.devicePixelRatioF()
        _, height = self.render_window.GetSize()
        self.renderer.SetWorldPoint(column, (self._shape[0] - 1) - row, 0, 1)
        self.renderer.WorldToDisplay()
        dx, dy, _ = self.renderer.GetDisplayPoint()
        return dx / ratio, (height - dy) / ratio

    def _label(self, m: overlays.Measurement) -> str:
        header = self.images.header(self.index)
        sp = measure.spacing(header)
        if m.kind != "roi" or len(m.points) != 2 or self._shape is None or len(self._shape) != 2:
            return overlays.label_for(m, sp)
        # only the ROI's bounding box is converted to modality values: labels are redrawn
        # while the mouse moves, and a mammogram has 13 million pixels
        (x0, y0), (x1, y1) = m.points
        h, w = self._shape
        c0, c1 = max(0, int(min(x0, x1))), min(w, int(max(x0, x1)) + 2)
        r0, r1 = max(0, int(min(y0, y1))), min(h, int(max(y0, y1)) + 2)
        if c0 >= c1 or r0 >= r1:
            return ""
        values = pixels.modality_values(header, self.images.stored(self.index)[r0:r1, c0:c1])
        box = overlays.Measurement("roi", [(x0 - c0, y0 - r0), (x1 - c0, y1 - r0)])
        return overlays.label_for(box, sp, values)

    def _draw_measurements(self) -> None:
        drawn = [m for items in self.measurements.values() for m in items]
        if self._drawing is not None:
            drawn.append(self._drawing)
        for m in drawn:
            for actor in m.actors:
                self.renderer.RemoveViewProp(actor)
            m.actors = []
        self._draw_state_annotations()
        if self._shape is None:
            return
        current = list(self.measurements.get(self.index, []))
        if self._drawing is not None:
            current.append(self._drawing)
        for m in current:
            m.label = self._label(m)
            m.actors = overlays.actors_for(m, self._shape[0])
            for actor in m.actors:
                self.renderer.AddViewProp(actor)

    def add_measurement(self, kind: str, points: list[tuple[float, float]]) -> overlays.Measurement:
        m = overlays.Measurement(kind, list(points))
        self.measurements.setdefault(self.index, []).append(m)
        self._draw_measurements()
        self._render()
        return m

    def clear_measurements(self) -> None:
        self._drawing = None
        for items in self.measurements.values():
            for m in items:
                for actor in m.actors:
                    self.renderer.RemoveViewProp(actor)
        self.measurements.clear()
        self._render()

    def _measure_press(self, point) -> None:
        if self._drawing is None:
            needed = {"distance": 2, "angle": 3, "roi": 2}[self.tool]
            self._drawing = overlays.Measurement(self.tool, [point, point])
            self._drawing.needed = needed
        elif self.tool == "angle":
            self._drawing.points.append(point)
        self._draw_measurements()
        self._render()

    def _measure_move(self, point) -> None:
        if self._drawing is not None:
            self._drawing.points[-1] = point
            self._draw_measurements()
            self._render()

    def _measure_release(self, point) -> None:
        m = self._drawing
        if m is None:
            return
        m.points[-1] = point
        if len(m.points) >= m.needed:
            self._drawing = None
            self.measurements.setdefault(self.index, []).append(m)
        elif m.kind == "angle":
            m.points.append(point)  # the next arm follows the mouse
        self._draw_measurements()
        self._render()

    # -- input ------------------------------------------------------------------------------
    def scroll(self, step: int, wrap: bool = False) -> None:
        n = self.image_count()
        if wrap and n:
            self.show_image((self.index + step) % n)
        else:
            self.show_image(self.index + step)

    def press(self, ev) -> None:
        self.activated.emit(self)
        self.view.setFocus()
        pos = ev.position()
        button = ev.button()
        if self.tool != "window" and button == Qt.LeftButton and self._shape is not None:
            self._measure_press(self.image_point(pos.x(), pos.y()))
            self._drag = ("measure",)
            return
        if button == Qt.LeftButton and ev.modifiers() & Qt.ControlModifier:
            self._drag = None
            mime = self.image_mime()
            if mime is not None:  # Ctrl+drag: the image as shown, onto the film composer
                from PySide6.QtGui import QDrag
                drag = QDrag(self.view)
                drag.setMimeData(mime)
                drag.exec(Qt.CopyAction)
            return
        if button == Qt.LeftButton and ev.modifiers() & Qt.ShiftModifier:
            button = Qt.MiddleButton
        window = self.window
        if window is None and self.images is not None and len(self.images) and button == Qt.LeftButton:
            try:  # under a presentation state the drag starts from the state's window
                window = self._state_window(self.images.header(self.index))
            except ImageError:
                window = None
        self._drag = (button, pos.x(), pos.y(), window, getattr(self, "current_zoom", 1.0), self.pan)

    def drag(self, ev) -> None:
        if self._drag is None:
            if self._drawing is not None and self._drawing.kind == "angle":
                self._measure_move(self.image_point(ev.position().x(), ev.position().y()))
            return
        if self._drag[0] == "measure":
            self._measure_move(self.image_point(ev.position().x(), ev.position().y()))
            return
        button, x0, y0, window, zoom, pan = self._drag
        dx, dy = ev.position().x() - x0, ev.position().y() - y0
        if button == Qt.LeftButton and window is not None:
            scale = max(window.width, 1.0) / 200.0  # a 200-pixel drag doubles or clears the width
            self.window = pixels.Window(window.center - dy * scale, max(1.0, window.width + dx * scale),
                                        window.function)
            self.show_image(self.index)
        elif button == Qt.RightButton:
            self.zoom = max(0.05, min(40.0, zoom * (1.01 ** -dy)))
            self._refresh_view()
        elif button == Qt.MiddleButton:
            z = getattr(self, "current_zoom", 1.0) or 1.0
            self.pan = (pan[0] + dx / z, pan[1] + dy / z)  # screen right and down, in image pixels
            self._refresh_view()

    def release(self, ev) -> None:
        drag, self._drag = self._drag, None
        pos = ev.position()
        if drag is not None and drag[0] == "measure":
            self._measure_release(self.image_point(pos.x(), pos.y()))
        elif drag is not None and drag[0] == Qt.LeftButton and self._shape is not None \
                and abs(pos.x() - drag[1]) + abs(pos.y() - drag[2]) < 4:  # a click, not a windowing drag
            self.pointed.emit(self, self.image_point(pos.x(), pos.y()))

    def wheel(self, ev) -> None:
        steps = ev.angleDelta().y() // 120 or (1 if ev.angleDelta().y() > 0 else -1 if ev.angleDelta().y() else 0)
        self.scroll(-steps)

    def key(self, ev) -> bool:
        k = ev.key()
        if k in (Qt.Key_Down, Qt.Key_Right):
            self.scroll(1)
        elif k in (Qt.Key_Up, Qt.Key_Left):
            self.scroll(-1)
        elif k == Qt.Key_PageDown:
            self.scroll(10)
        elif k == Qt.Key_PageUp:
            self.scroll(-10)
        elif k == Qt.Key_Home:
            self.show_image(0)
        elif k == Qt.Key_End:
            self.show_image(self.image_count() - 1)
        elif k == Qt.Key_I:
            self.toggle_invert()
        elif k == Qt.Key_F:
            self.fit()
        elif k == Qt.Key_1:
            self.one_to_one()
        elif k == Qt.Key_R:
            self.reset()
        elif k == Qt.Key_T:
            self.true_size()
        elif k == Qt.Key_C:
            self.toggle_cine()
        elif k == Qt.Key_Period:
            self.rotate(90)
        elif k == Qt.Key_Comma:
            self.rotate(-90)
        elif k == Qt.Key_H:
            self.flip_horizontal()
        elif k == Qt.Key_V:
            self.flip_vertical()
        elif k == Qt.Key_S and self.image_count() > 1:
            if ev.modifiers() & Qt.ShiftModifier:
                self.slab_mode = "average" if self.slab_mode == "mip" else "mip"
            else:
                self.slab = {0: 2, 2: 5, 5: 10}.get(self.slab, 0)  # 5, 11, 21 slices, then off
            self.show_image(self.index)
        elif k == Qt.Key_K:
            self.cadToggle.emit(bool(ev.modifiers() & Qt.ShiftModifier))
        elif k == Qt.Key_Space:
            self.stageStep.emit(-1 if ev.modifiers() & Qt.ShiftModifier else 1)
        elif k == Qt.Key_Escape:
            self._drawing = None
            if self.crosshair is not None:
                self.pointed.emit(self, None)  # the cross-hairs of this view go
            self._draw_measurements()
            self._render()
        else:
            return False
        return True

    def snapshot(self, with_text: bool = True):
        """The viewport as drawn (uint8 RGB, row 0 at the top), with or without image text."""
        import numpy as np
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter
        hidden = not with_text
        if hidden:
            self.text.set_visible(False)
        self._render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(self.render_window)
        grab.SetInputBufferTypeToRGB()
        grab.ReadFrontBufferOff()
        grab.Update()
        out = grab.GetOutput()
        w, h, _ = out.GetDimensions()
        img = np.flipud(vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, 3)).copy()
        if hidden:
            self.text.set_visible(True)
            self._render()
        return img

    # -- drag and drop: a series from the strip ------------------------------------------------
    def dragEnterEvent(self, ev):
        if ev.mimeData().hasFormat(SERIES_MIME):
            ev.acceptProposedAction()

    def dropEvent(self, ev):
        uid = bytes(ev.mimeData().data(SERIES_MIME)).decode()
        self.activated.emit(self)
        self.seriesDropped.emit(self, uid)
        ev.acceptProposedAction()

    def clear(self) -> None:
        """Show nothing (a hanging stage's viewport whose selector matched nothing); the
        viewport stays usable."""
        self.cine.stop()
        if self.images is not None:
            self.images.close()
            self.images = None
        self.title, self.index, self._shape = "", 0, None
        if self._actor is not None:
            self.renderer.RemoveActor(self._actor)
            self._actor = None
        self.text.set({}, None)
        self._render()

    def close_series(self) -> None:
        """Release the series and the render window's X/GL resources. Only when the viewport
        goes away: a finalized VTK window must never be painted again."""
        self.cine.stop()
        if self.images is not None:
            self.images.close()
            self.images = None
        self.finalized = True
        for prop in [self._actor, *self._state_actors,
                     *(a for items in self.measurements.values() for m in items for a in m.actors)]:
            if prop is not None:
                self.renderer.RemoveViewProp(prop)
        self.render_window = None
        self.view.release()
