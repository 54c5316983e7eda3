"""A film sheet as the technologist lays it out in the composer: a layout of boxes, each
holding one image (a file and frame) with the window, zoom and orientation it had in the
viewer, and a header identifying the patient and study on every film. ``render`` turns a
sheet into the page the printer gets (app.film.compose); the composer's preview shows that
very page, so what is seen is what comes out of the camera."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from app.film.compose import (FilmError, boxes, compose, page_shape, parse_layout, print_values,
                              true_size_scale)

HEADER_INCHES = 0.3  # the identification strip at the top of every film
GAP_INCHES = 0.04  # between two image boxes


@dataclass
class Cell:
    """One image box's content."""
    path: str
    frame: int = 0
    center: float | None = None  # window as the reader left it; None: the file's own
    width: float | None = None
    invert: bool = False
    zoom: float = 1.0  # 1: the whole image fits its box; 2: its middle half, twice as large
    rotate: int = 0  # quarter turns clockwise, as the viewer shows it
    flip: bool = False  # mirrored left-right, before the rotation (as the viewer does)
    true_size: bool = False  # mm for mm on film (Imager Pixel Spacing of a mammogram)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Sheet:
    """One film: a layout (rows x columns) and its boxes, row by row (None: empty)."""
    layout: str = "1x1"
    cells: list[Cell | None] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return parse_layout(self.layout)

    def capacity(self) -> int:
        rows, columns = self.shape
        return rows * columns

    def images(self) -> list[Cell]:
        return [c for c in self.cells if c is not None]


@dataclass
class FilmFormat:
    """How every sheet of a job is printed."""
    size: str = "14INX17IN"
    orientation: str = "PORTRAIT"
    dpi: int = 300
    bits: int = 12
    color: bool = False
    header: bool = True


def oriented(img: np.ndarray, rotate: int = 0, flip: bool = False) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(img[:, ::-1] if flip else img, -(rotate % 4)))


def zoomed(img: np.ndarray, zoom: float) -> np.ndarray:
    """The middle 1/zoom of the image (zoom above 1); the whole image otherwise."""
    if zoom <= 1.0:
        return img
    rows, columns = img.shape[:2]
    h, w = max(1, round(rows / zoom)), max(1, round(columns / zoom))
    top, left = (rows - h) // 2, (columns - w) // 2
    return img[top:top + h, left:left + w]


@lru_cache(maxsize=8)
def _read(path: str):
    import pydicom
    try:
        return pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - a file gone or not DICOM: said in the user's words
        raise FilmError(f"cannot read {path}: {exc}") from None


def load(path: str, frame: int = 0):
    """(header, stored values of ``frame``)."""
    from app.imaging import pixels
    ds = _read(path)
    try:
        return ds, pixels.frame_array(ds, frame)
    except Exception as exc:  # noqa: BLE001 - undecodable pixels
        raise FilmError(f"cannot decode the pixels of {path}: {exc}") from None


def pixel_spacing_mm(header) -> float | None:
    """mm per image pixel across the detector: Imager Pixel Spacing for projection images
    (true size on film means the detector's size), else Pixel Spacing."""
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        value = header.get(keyword)
        if value:
            try:
                return float(value[1])
            except (TypeError, ValueError, IndexError):
                continue
    return None


def cell_values(cell: Cell, fmt: FilmFormat) -> tuple[np.ndarray, float | None]:
    """The cell's image as printed (windowed, oriented, zoomed) and its page pixels per image
    pixel when it is printed at true size."""
    from app.imaging.pixels import Window
    header, stored = load(cell.path, cell.frame)
    window = Window(cell.center, cell.width) if cell.center is not None and cell.width else None
    values = print_values(header, stored, fmt.bits, window, invert=cell.invert, color=fmt.color)
    values = zoomed(oriented(values, cell.rotate, cell.flip), cell.zoom)
    scale = None
    if cell.true_size:
        mm = pixel_spacing_mm(header)
        if mm is None:
            raise FilmError(f"{cell.path} has no pixel spacing: it cannot be printed at true size")
        scale = true_size_scale(mm, fmt.dpi) * max(cell.zoom, 1.0)
    return values, scale


def header_text(header) -> str:
    """Patient and study identification, one line."""
    from app.dicom import formatting as f

    def text(keyword: str) -> str:
        return str(header.get(keyword, "") or "").strip()
    parts = [f.person_name(text("PatientName")) or "(no name)", f"ID {text('PatientID') or '-'}"]
    parts += [f"born {f.date(text('PatientBirthDate'))}"] if text("PatientBirthDate") else []
    parts += [f.sex(text("PatientSex"))] if f.sex(text("PatientSex")) else []
    study = " ".join(x for x in (f.date(text("StudyDate")), text("StudyDescription")) if x)
    parts += [study] if study else []
    parts += [f"Acc {text('AccessionNumber')}"] if text("AccessionNumber") else []
    parts += [text("InstitutionName")] if text("InstitutionName") else []
    return "   ".join(parts)


def _draw_text(strip: np.ndarray, text: str, top_value: int) -> None:
    """``text`` in white on the strip (grey or RGB), as large as its height allows."""
    from PIL import Image, ImageDraw, ImageFont
    height, width = strip.shape[:2]
    canvas = Image.new("L", (width, height), 0)
    size = max(8, int(height * 0.6))
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(canvas)
    while size > 8 and draw.textlength(text, font=font) > width - height:
        size = int(size * 0.9)
        font = ImageFont.load_default(size=size)
    draw.text((height // 3, height // 2), text, fill=255, font=font, anchor="lm")
    ink = np.asarray(canvas).astype(np.float64) / 255.0
    value = (ink * top_value).round().astype(strip.dtype)
    if strip.ndim == 3:
        value = value[..., None]
    np.maximum(strip, value, out=strip)


def render(sheet: Sheet, fmt: FilmFormat, *, label: str | None = None) -> np.ndarray:
    """The page of one film: the header strip (patient and study of the sheet's first image,
    or ``label``) above the boxes of its layout."""
    rows, columns = sheet.shape
    if len(sheet.cells) > rows * columns:
        raise FilmError(f"{len(sheet.images())} images do not fit a {sheet.layout} film")
    shape, strip, gap = _geometry(fmt)
    values, scales = [], []
    first_header = None
    for cell in sheet.cells:
        if cell is None:
            values.append(None)
            scales.append(None)
            continue
        v, scale = cell_values(cell, fmt)
        values.append(v)
        scales.append(scale)
        if first_header is None:
            first_header = _read(cell.path)
    body = compose(values, (shape[0] - strip, shape[1]), rows, columns, bits=fmt.bits, gap=gap,
                   scales=scales, color=fmt.color)
    if not strip:
        return body
    page = np.zeros((shape[0], shape[1], 3) if fmt.color else shape, dtype=body.dtype)
    page[strip:] = body
    text = label if label is not None else header_text(first_header) if first_header is not None else ""
    if text:
        _draw_text(page[:strip], text, 2 ** fmt.bits - 1)
    return page


def boxes_on_page(sheet: Sheet, fmt: FilmFormat) -> list:
    """Where each box of ``sheet`` lies on its page (app.film.compose.Box, page pixels): the
    composer maps a drop or a click on the preview to a box with it."""
    from app.film.compose import Box
    shape, strip, gap = _geometry(fmt)
    rows, columns = sheet.shape
    return [Box(b.top + strip, b.left, b.height, b.width) for b in boxes((shape[0] - strip, shape[1]), rows, columns, gap)]


def _geometry(fmt: FilmFormat) -> tuple[tuple[int, int], int, int]:
    """(page shape, header strip rows, gap between boxes) in page pixels."""
    shape = page_shape(fmt.size, fmt.orientation, fmt.dpi)
    strip = max(12, round(HEADER_INCHES * fmt.dpi)) if fmt.header else 0
    return shape, strip, max(1, round(GAP_INCHES * fmt.dpi))
