"""The film composer (spec §4.2.1.3.7): the technologist chooses a printer and its film
(size, orientation, layout, medium), drops images into the boxes — from the viewer with the
window, zoom and orientation they had there, from the browser, or as files — and prints.

The preview is the page itself: app.film.sheet.render at the printer's resolution, shown
scaled to the window; Print queues exactly those pages (app.jobs.print_job). Several films
make one job. The printer's status (spec §8.6) is shown with its camera symbol, and a queue
its status stopped is restarted here."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton,
                               QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from app.film.compose import FilmError, film_sizes, parse_layout
from app.film.sheet import Cell, FilmFormat, Sheet, boxes_on_page, render
from app.store import nodes
from app.ui.background import run_in_background
from app.ui.mime import CELLS_MIME, SERIES_MIME, STUDIES_MIME, cells_from_mime

log = logging.getLogger(__name__)

TO_FILE = ""  # the printer entry that writes PDF/PNG pages instead
SYMBOL_COLORS = {"idle": "#2e9d2e", "interact": "#e08a00", "stopped": "#d11f1f", "unknown": "#8a8a8a"}
SYMBOL_NAMES = {"idle": "ready", "interact": "needs attention", "stopped": "queue stopped", "unknown": "unknown"}


def camera_html(symbol: str, printer: str, message: str) -> str:
    """The camera symbol of spec §8.6 (a coloured disc and its name) and the status-bar message."""
    from html import escape
    color = SYMBOL_COLORS.get(symbol, SYMBOL_COLORS["unknown"])
    return (f'<span style="color:{color}; font-size:large">●</span> <b>{escape(printer)}</b> '
            f'<span style="color:{color}">[{SYMBOL_NAMES.get(symbol, symbol)}]</span> {escape(message)}')


class PagePreview(QWidget):
    """The page, scaled to fit; boxes are hit by clicks and drops."""
    boxClicked = Signal(int)
    cellsDropped = Signal(int, object)  # box index, list[Cell]
    seriesDropped = Signal(int, str)  # box index, Series Instance UID (the viewer's series strip)
    studiesDropped = Signal(object)  # Study Instance UIDs (the browser)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setMinimumSize(300, 360)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.page: np.ndarray | None = None
        self._image: QImage | None = None
        self.boxes: list = []
        self.selected: int | None = None
        self.message = ""

    def show_page(self, page: np.ndarray | None, boxes: list, message: str = "") -> None:
        self.page, self.boxes, self.message = page, boxes, message
        self._image = None if page is None else _qimage(page)
        self.update()

    def _target(self) -> QRect:
        if self._image is None:
            return QRect()
        w, h = self._image.width(), self._image.height()
        scale = min(self.width() / w, self.height() / h)
        tw, th = int(w * scale), int(h * scale)
        return QRect((self.width() - tw) // 2, (self.height() - th) // 2, tw, th)

    def box_at(self, pos: QPoint) -> int | None:
        target = self._target()
        if self._image is None or not target.contains(pos):
            return None
        x = (pos.x() - target.x()) * self._image.width() / max(target.width(), 1)
        y = (pos.y() - target.y()) * self._image.height() / max(target.height(), 1)
        for i, b in enumerate(self.boxes):
            if b.left <= x < b.left + b.width and b.top <= y < b.top + b.height:
                return i
        return None

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(60, 60, 64))
        if self._image is None:
            p.setPen(QColor(220, 220, 220))
            p.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self.message or "No film")
            return
        target = self._target()
        p.setRenderHint(QPainter.SmoothPixmapTransform, True)
        p.drawImage(target, self._image)
        sx, sy = target.width() / self._image.width(), target.height() / self._image.height()
        p.setPen(QPen(QColor(90, 90, 110), 1, Qt.DotLine))
        for i, b in enumerate(self.boxes):  # box outlines: where images go (not on the film)
            r = QRect(target.x() + int(b.left * sx), target.y() + int(b.top * sy), int(b.width * sx), int(b.height * sy))
            if i == self.selected:
                p.setPen(QPen(QColor(255, 170, 0), 2))
                p.drawRect(r.adjusted(1, 1, -1, -1))
                p.setPen(QPen(QColor(90, 90, 110), 1, Qt.DotLine))
            else:
                p.drawRect(r)

    def mousePressEvent(self, event) -> None:
        box = self.box_at(event.position().toPoint())
        if box is not None:
            self.selected = box
            self.update()
            self.boxClicked.emit(box)

    def dragEnterEvent(self, event) -> None:
        data = event.mimeData()
        if any(data.hasFormat(m) for m in (CELLS_MIME, SERIES_MIME, STUDIES_MIME)) or data.hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        box = self.box_at(event.position().toPoint())
        data = event.mimeData()
        if data.hasFormat(STUDIES_MIME):
            event.acceptProposedAction()
            self.studiesDropped.emit([u for u in bytes(data.data(STUDIES_MIME).data()).decode().split("\n") if u])
            return
        if data.hasFormat(SERIES_MIME):
            event.acceptProposedAction()
            self.seriesDropped.emit(box if box is not None else -1, bytes(data.data(SERIES_MIME).data()).decode())
            return
        if data.hasFormat(CELLS_MIME):
            cells = cells_from_mime(data.data(CELLS_MIME).data())
        else:
            cells = [Cell(str(Path(u.toLocalFile()))) for u in data.urls() if u.isLocalFile()]
        if cells:
            event.acceptProposedAction()
            self.cellsDropped.emit(box if box is not None else -1, cells)


def _qimage(page: np.ndarray) -> QImage:
    eight = page if page.dtype == np.uint8 else (page >> 4).astype(np.uint8)  # 12 bits shown on 8
    eight = np.ascontiguousarray(eight)
    h, w = eight.shape[:2]
    if eight.ndim == 3:
        return QImage(eight.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return QImage(eight.data, w, h, w, QImage.Format_Grayscale8).copy()


class FilmComposer(QWidget):
    """Compose films and print them. ``jobs``: the application's job queue."""

    def __init__(self, archive, jobs, *, actor: str | None = None, camera_updates=None, parent=None):
        super().__init__(parent, Qt.Window)
        self.setWindowTitle("Film composer")
        self.archive, self.jobs, self.actor = archive, jobs, actor
        self.sheets: list[Sheet] = [Sheet("1x1", [])]
        self.current = 0
        self.selected: int | None = None
        self._render_serial = 0
        self.pages: list[np.ndarray | None] = [None]
        self.last_job: int | None = None
        self._color: dict[str, bool] = {}  # file -> whether it is a colour image (headers read once)

        self.printer = QComboBox()
        self.size = QComboBox()
        self.orientation = QComboBox()
        self.orientation.addItems(["PORTRAIT", "LANDSCAPE"])
        self.layout_box = QComboBox()
        self.layout_box.setEditable(True)
        self.layout_box.setToolTip("Rows x columns; type another, e.g. 3x5")
        self.medium = QComboBox()
        self.header = QCheckBox("Patient / study header")
        self.header.setChecked(True)
        self.camera = QLabel()
        self.camera.setWordWrap(True)
        self.restart = QPushButton("Restart queue")
        self.restart.setVisible(False)
        self.restart.clicked.connect(self._restart_queue)
        top = QHBoxLayout()
        for label, w in (("Printer", self.printer), ("Film", self.size), ("", self.orientation),
                         ("Layout", self.layout_box), ("Medium", self.medium)):
            if label:
                top.addWidget(QLabel(label))
            top.addWidget(w)
        top.addWidget(self.header)
        top.addStretch(1)
        # Table 4-31's film box attributes, the printer's setup by default
        self.magnification = QComboBox()
        self.magnification.addItems(list(nodes.MAGNIFICATIONS))
        self.magnification.setToolTip("How the printer interpolates; the page is sent at its resolution, so NONE")
        self.border = QComboBox()
        for value, text in (("", "printer's default"), ("BLACK", "black"), ("WHITE", "white")):
            self.border.addItem(text, value)
        self.min_density, self.max_density = QSpinBox(), QSpinBox()
        self.min_density.setRange(0, 49)
        self.max_density.setRange(0, 400)
        for box in (self.min_density, self.max_density):
            box.setSpecialValueText("default")  # 0: not sent, the printer's own
            box.setToolTip("Optical density in hundredths of OD (spec Table 4-31); 'default': the printer's")
        density = QHBoxLayout()
        for label, w in (("Magnification", self.magnification), ("Border", self.border),
                         ("Min density", self.min_density), ("Max density", self.max_density)):
            density.addWidget(QLabel(label))
            density.addWidget(w)
        density.addStretch(1)

        self.preview = PagePreview()
        self.preview.boxClicked.connect(self._select)
        self.preview.cellsDropped.connect(self._dropped)
        self.preview.seriesDropped.connect(self._series_dropped)
        self.preview.studiesDropped.connect(self.add_studies)

        cell_bar = QHBoxLayout()
        self.cell_buttons = {}
        for key, text, tip in (("left", "⟲", "Rotate left"), ("right", "⟳", "Rotate right"),
                               ("flip", "⇋", "Mirror left-right"), ("zoom_in", "+", "Zoom in (middle of the image)"),
                               ("zoom_out", "−", "Zoom out"), ("invert", "◐", "Invert"),
                               ("true_size", "1:1", "True size: mm for mm on film (Imager Pixel Spacing)"),
                               ("clear", "✕", "Empty this box")):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, k=key: self._cell_action(k))
            cell_bar.addWidget(b)
            self.cell_buttons[key] = b
        self.cell_label = QLabel("Click a box to change its image")
        cell_bar.addWidget(self.cell_label, 1)

        film_bar = QHBoxLayout()
        self.prev_film = QPushButton("◀")
        self.next_film = QPushButton("▶")
        self.film_label = QLabel()
        add_film = QPushButton("New film")
        remove_film = QPushButton("Remove film")
        self.prev_film.clicked.connect(lambda: self.show_film(self.current - 1))
        self.next_film.clicked.connect(lambda: self.show_film(self.current + 1))
        add_film.clicked.connect(self.add_film)
        remove_film.clicked.connect(self.remove_film)
        self.print_button = QPushButton("Print")
        self.print_button.setDefault(True)
        self.print_button.clicked.connect(self.print_films)
        self.status = QLabel()
        self.status.setWordWrap(True)
        for w in (self.prev_film, self.film_label, self.next_film, add_film, remove_film):
            film_bar.addWidget(w)
        film_bar.addWidget(self.status, 1)
        film_bar.addWidget(self.print_button)

        camera_row = QHBoxLayout()
        camera_row.addWidget(self.camera, 1)
        camera_row.addWidget(self.restart)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(density)
        lay.addLayout(camera_row)
        lay.addWidget(self.preview, 1)
        lay.addLayout(cell_bar)
        lay.addLayout(film_bar)

        self._fill_printers()
        self.printer.currentIndexChanged.connect(self._printer_chosen)
        for box in (self.size, self.orientation, self.medium):
            box.currentIndexChanged.connect(lambda _=0: self.refresh())
        self.layout_box.currentTextChanged.connect(self._layout_chosen)
        self.header.toggled.connect(lambda _=False: self.refresh())
        if camera_updates is not None:
            camera_updates.connect(self._camera_updated)
        self._printer_chosen()
        self.resize(900, 1000)

    # -- printers -------------------------------------------------------------------------
    def _fill_printers(self) -> None:
        self.printer.blockSignals(True)
        self.printer.clear()
        for node in nodes.list_nodes(self.archive.engine):
            if "print" in node.roles:
                self.printer.addItem(f"{node.name} ({node.aet})", node.name)
        self.printer.addItem("File (PDF / PNG)", TO_FILE)
        self.printer.blockSignals(False)

    def node(self) -> nodes.RemoteNode | None:
        name = self.printer.currentData()
        return nodes.get_node(self.archive.engine, name) if name else None

    def setup(self) -> nodes.PrinterSetup:
        node = self.node()
        return node.printer if node else nodes.PrinterSetup(film_sizes=tuple(film_sizes()))

    def _printer_chosen(self, _i: int = 0) -> None:
        setup = self.setup()
        for box, values, keep in ((self.size, setup.film_sizes, self.size.currentText()),
                                  (self.medium, setup.mediums, self.medium.currentText())):
            box.blockSignals(True)
            box.clear()
            box.addItems(list(values))
            if keep in values:
                box.setCurrentText(keep)
            box.blockSignals(False)
        self.magnification.setCurrentText(setup.magnification)
        self.border.setCurrentIndex(max(0, self.border.findData(setup.border_density)))
        self.min_density.setValue(setup.min_density or 0)
        self.max_density.setValue(setup.max_density or 0)
        layout = self.sheets[self.current].layout
        self.layout_box.blockSignals(True)
        self.layout_box.clear()
        self.layout_box.addItems(list(setup.layouts))
        self.layout_box.setCurrentText(layout)
        self.layout_box.blockSignals(False)
        self.print_button.setText("Print" if self.node() else "Save as…")
        self._show_camera()
        self.refresh()

    def _show_camera(self) -> None:
        from app.film import cameras
        from app.jobs import print_job
        node = self.node()
        if node is None:
            self.camera.setText("Print to file: the pages as PDF (film size) or PNG.")
            self.restart.setVisible(False)
            return
        camera = cameras.current().get(node.name)
        stopped = self.jobs.holds().get(print_job.group(node.name))  # read only: no event (it would recurse)
        if camera is None and not stopped:
            self.camera.setText(camera_html("unknown", node.name, "status not known yet (asked when printing)"))
        elif camera is not None:
            self.camera.setText(camera_html(camera.symbol, node.name, camera.message))
        self.restart.setVisible(bool(stopped))

    def _camera_updated(self, camera: dict) -> None:
        node = self.node()
        if node is not None and camera.get("printer") == node.name:
            self._show_camera()

    def _restart_queue(self) -> None:
        from app.jobs import print_job
        from app.store import audit
        node = self.node()
        if node is None:
            return
        print_job.restart(self.jobs, node.name)
        audit.log(self.archive.engine, self.actor or "unknown", "print-restart", node.name)
        self._show_camera()

    # -- the film -------------------------------------------------------------------------
    def film_format(self) -> FilmFormat:
        setup = self.setup()
        return FilmFormat(self.size.currentText() or "14INX17IN", self.orientation.currentText(), setup.dpi,
                          setup.bits, color=setup.color and self._has_color(), header=self.header.isChecked())

    def _has_color(self) -> bool:
        """Whether any image is in colour (a colour film then): headers only, remembered."""
        import pydicom

        from app.imaging import pixels
        known = self._color
        for sheet in self.sheets:
            for cell in sheet.images():
                if cell.path not in known:
                    try:
                        known[cell.path] = pixels.is_color(pydicom.dcmread(cell.path, stop_before_pixels=True))
                    except Exception:  # noqa: BLE001 - unreadable: the render says so
                        known[cell.path] = False
                if known[cell.path]:
                    return True
        return False

    def _layout_chosen(self, text: str) -> None:
        try:
            rows, columns = parse_layout(text)
        except FilmError:
            return  # still being typed
        sheet = self.sheets[self.current]
        layout = f"{rows}x{columns}"
        if layout == sheet.layout:
            return
        self.sheets[self.current] = _relaid(sheet, layout)
        overflow = [c for c in sheet.images()][self.sheets[self.current].capacity():]
        if overflow:
            self._place(overflow, len(self.sheets))
        self.selected = None
        self.refresh()

    def add_images(self, cells: list[Cell]) -> None:
        """Into the first empty boxes of the current film, then onto new films."""
        sheet = self.sheets[self.current]
        first = next((i for i, c in enumerate(sheet.cells + [None] * sheet.capacity()) if c is None), sheet.capacity())
        self._place(cells, self.current, first)
        self.show()
        self.raise_()
        self.refresh()

    def _place(self, cells: list[Cell], film: int, box: int = 0) -> None:
        cells = list(cells)
        while cells:
            if film >= len(self.sheets):
                self.sheets.append(Sheet(self.sheets[-1].layout, []))
                self.pages.append(None)
            sheet = self.sheets[film]
            slots = sheet.cells + [None] * (sheet.capacity() - len(sheet.cells))
            while cells and box < len(slots):  # a box dropped on takes the image in place of its own
                slots[box] = cells.pop(0)
                box += 1
            sheet.cells = _trimmed(slots)
            film, box = film + 1, 0

    def _dropped(self, box: int, cells: list[Cell]) -> None:
        if box < 0:
            self.add_images(cells)
            return
        self._place(cells, self.current, box)
        self.refresh()

    def _series_dropped(self, box: int, uid: str) -> None:
        from app.imaging.series import archive_series_files
        archive = self.archive

        def done(files, error) -> None:
            if error is not None or not files:
                self.status.setText(f"The series cannot be put on film: {error or 'no images in the archive'}")
                return
            self._dropped(box, [Cell(str(f)) for f in files])
        run_in_background(lambda: archive_series_files(archive, uid), done)

    def add_studies(self, study_uids: list[str]) -> None:
        """Every image of the studies, series by series, onto films (the browser's Print…)."""
        from app.imaging.series import archive_series_files
        from app.store.query import iter_matches
        archive = self.archive

        def files() -> list[str]:
            out = []
            for study in study_uids:
                for row in iter_matches(archive.engine, "series", {"StudyInstanceUID": study}, computed=frozenset()):
                    out += [str(f) for f in archive_series_files(archive, row["SeriesInstanceUID"])]
            return out

        def done(found, error) -> None:
            if error is not None or not found:
                self.status.setText(f"Nothing to put on film: {error or 'no images in the archive'}")
                return
            per = self.sheets[self.current].capacity()
            if len(found) > 60 and QMessageBox.question(
                    self, "Film composer", f"{len(found)} images make {-(-len(found) // per)} films of this layout. "
                    "Put them all on film?") != QMessageBox.Yes:
                return
            self.add_images([Cell(f) for f in found])
        run_in_background(files, done)

    def _select(self, box: int) -> None:
        self.selected = box
        cell = self._cell()
        self.cell_label.setText(f"Box {box + 1}: {Path(cell.path).name}" + (f" frame {cell.frame + 1}" if cell.frame else "")
                                + (" — true size" if cell.true_size else "") if cell else f"Box {box + 1}: empty")

    def _cell(self) -> Cell | None:
        sheet = self.sheets[self.current]
        if self.selected is None or self.selected >= len(sheet.cells):
            return None
        return sheet.cells[self.selected]

    def _cell_action(self, key: str) -> None:
        cell = self._cell()
        if cell is None:
            self.status.setText("Click a box with an image first.")
            return
        changed = {"left": lambda c: replace(c, rotate=(c.rotate - 1) % 4),
                   "right": lambda c: replace(c, rotate=(c.rotate + 1) % 4),
                   "flip": lambda c: replace(c, flip=not c.flip),
                   "zoom_in": lambda c: replace(c, zoom=min(c.zoom * 1.25, 8.0)),
                   "zoom_out": lambda c: replace(c, zoom=max(c.zoom / 1.25, 1.0)),
                   "invert": lambda c: replace(c, invert=not c.invert),
                   "true_size": lambda c: replace(c, true_size=not c.true_size),
                   "clear": lambda c: None}[key](cell)
        sheet = self.sheets[self.current]
        sheet.cells[self.selected] = changed
        sheet.cells = _trimmed(sheet.cells)
        self._select(self.selected)
        self.refresh()

    def show_film(self, index: int) -> None:
        if 0 <= index < len(self.sheets):
            self.current, self.selected = index, None
            self.preview.selected = None
            self.layout_box.blockSignals(True)
            self.layout_box.setCurrentText(self.sheets[index].layout)
            self.layout_box.blockSignals(False)
            self.refresh()

    def add_film(self) -> None:
        self.sheets.append(Sheet(self.sheets[self.current].layout, []))
        self.pages.append(None)
        self.show_film(len(self.sheets) - 1)

    def remove_film(self) -> None:
        if len(self.sheets) == 1:
            self.sheets = [Sheet(self.sheets[0].layout, [])]
        else:
            del self.sheets[self.current]
            del self.pages[self.current]
        self.show_film(min(self.current, len(self.sheets) - 1))

    def refresh(self) -> None:
        """Render the current film at the printer's resolution, off the GUI thread."""
        self.pages = (self.pages + [None] * len(self.sheets))[:len(self.sheets)]
        self.film_label.setText(f"Film {self.current + 1} of {len(self.sheets)}")
        self.prev_film.setEnabled(self.current > 0)
        self.next_film.setEnabled(self.current < len(self.sheets) - 1)
        self._render_serial += 1
        serial, sheet, fmt, index = self._render_serial, _copy(self.sheets[self.current]), self.film_format(), self.current

        def done(result, error) -> None:
            if serial != self._render_serial:
                return  # a newer change is being rendered
            if error is not None:
                self.preview.show_page(None, [], f"This film cannot be composed: {error}")
                self.status.setText(str(error))
                return
            page, boxes = result
            self.pages[index] = page
            self.preview.show_page(page, boxes)
            self.preview.selected = self.selected
            h, w = page.shape[:2]
            self.status.setText(f"{fmt.size} {fmt.orientation.lower()}, {w}x{h} pixels at {fmt.dpi} DPI, "
                                f"{'RGB' if page.ndim == 3 else f'{fmt.bits} bits'}; "
                                f"{sum(len(s.images()) for s in self.sheets)} image(s) on {len(self.sheets)} film(s)")
        run_in_background(lambda: (render(sheet, fmt), boxes_on_page(sheet, fmt)), done)

    # -- printing -------------------------------------------------------------------------
    def compose_all(self) -> list[np.ndarray]:
        """Every film's page, as previewed (rendered again where not shown yet)."""
        fmt = self.film_format()
        return [render(_copy(s), fmt) for s in self.sheets if s.images()]

    def film(self):
        """The film box as the technologist set it (Table 4-31; app.net.printing.Film)."""
        from app.net.printing import Film
        return Film(size=self.size.currentText(), orientation=self.orientation.currentText(),
                    medium=self.medium.currentText() or "BLUE FILM", magnification=self.magnification.currentText(),
                    border_density=self.border.currentData() or None, min_density=self.min_density.value() or None,
                    max_density=self.max_density.value() or None)

    def print_films(self) -> None:
        sheets = [s for s in self.sheets if s.images()]
        if not sheets:
            self.status.setText("Drop images onto the film first (from the viewer, the browser or files).")
            return
        node = self.node()
        if node is None:
            self._save_to_file()
            return
        from app.jobs import print_job
        film = self.film()
        what = _patient_of(sheets[0].images()[0].path)
        self.print_button.setEnabled(False)
        self.status.setText("Composing and queueing …")
        archive, jobs, actor = self.archive, self.jobs, self.actor

        def queue() -> int:
            from app.store import audit
            pages = self.compose_all()
            job_id = print_job.submit(jobs, archive, node.name, pages, film, what=what, owner=actor)
            audit.log(archive.engine, actor or "unknown", "print",
                         f"{len(pages)} film(s) {film.size} to {node.name}, job {job_id}")
            return job_id

        def queued(job_id, error) -> None:
            self.print_button.setEnabled(True)
            if error is not None:
                self.status.setText(f"Not printed: {error}")
                return
            self.last_job = job_id
            self.status.setText(f"Queued as job {job_id} for {node.name}: see the jobs panel.")
        run_in_background(queue, queued)

    def _save_to_file(self, path: str | None = None) -> None:
        from app.film.to_file import write_pages
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Print to file", "film.pdf", "PDF (*.pdf);;PNG (*.png)")
            if not path:
                return
        try:
            written = write_pages(self.compose_all(), Path(path), self.film_format().dpi)
        except Exception as exc:  # noqa: BLE001 - a folder not writable, a film that cannot be composed
            QMessageBox.warning(self, "Print to file", f"Not written: {exc}")
            return
        self.status.setText("Written: " + ", ".join(map(str, written)))


def _patient_of(path: str) -> str:
    """'Doe, Jane (P42)': what a print job is called in the jobs panel."""
    import pydicom

    from app.dicom.formatting import person_name
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - the render read it; a name only
        return Path(path).name
    return f"{person_name(str(ds.get('PatientName', '') or '')) or '(no name)'} ({ds.get('PatientID', '') or '-'})"


def _trimmed(cells: list) -> list:
    while cells and cells[-1] is None:
        cells = cells[:-1]
    return cells


def _copy(sheet: Sheet) -> Sheet:
    return Sheet(sheet.layout, list(sheet.cells))


def _relaid(sheet: Sheet, layout: str) -> Sheet:
    """The same images, in order, on another layout (what does not fit goes to the next film)."""
    rows, columns = parse_layout(layout)
    return Sheet(layout, _trimmed(sheet.images()[:rows * columns]))
