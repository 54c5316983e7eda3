"""A film sheet composed into the one page the printer gets (STANDARD\\1,1; spec
§4.2.1.3.7): the film's size (Table 4-31, resources/spec/film_sizes.tsv) and orientation at
the printer's resolution give the page in pixels; a layout of rows x columns gives the
boxes; each image is fitted into its box (aspect kept, centred) or shown at true size
(mm for mm on film, a mammogram's Imager Pixel Spacing), as 8- or 12-bit grey values.
The preview shows this very array."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from app.resources import read_tsv

MM_PER_INCH = 25.4


class FilmError(ValueError):
    """A film that cannot be composed, for the user."""


@cache
def film_sizes() -> dict[str, tuple[float, float]]:
    return {size: (float(w), float(h)) for size, w, h in read_tsv("spec", "film_sizes.tsv")}


def page_shape(film_size: str, orientation: str, dpi: float) -> tuple[int, int]:
    """(rows, columns) of the page for ``film_size`` in ``orientation`` (PORTRAIT: the long
    side vertical) at ``dpi`` dots per inch."""
    if film_size not in film_sizes():
        raise FilmError(f"film size {film_size} is not one of {', '.join(film_sizes())} (spec Table 4-31)")
    w, h = film_sizes()[film_size]
    if orientation.upper() == "LANDSCAPE":
        w, h = h, w
    elif orientation.upper() != "PORTRAIT":
        raise FilmError(f"film orientation {orientation}: PORTRAIT or LANDSCAPE")
    return round(h / MM_PER_INCH * dpi), round(w / MM_PER_INCH * dpi)


def parse_layout(text: str) -> tuple[int, int]:
    """'4x5' -> (4 rows, 5 columns)."""
    try:
        rows, columns = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise FilmError(f"layout {text}: rows x columns, e.g. 2x2") from None
    if not (1 <= rows <= 10 and 1 <= columns <= 10):
        raise FilmError(f"layout {rows}x{columns}: 1 to 10 rows and columns")
    return rows, columns


@dataclass(frozen=True)
class Box:
    top: int
    left: int
    height: int
    width: int


def boxes(shape: tuple[int, int], rows: int, columns: int, gap: int = 0) -> list[Box]:
    """The image boxes of a rows x columns layout on a page of ``shape``, row by row, ``gap``
    pixels between them; the pixels a division leaves over go to the last row / column."""
    if not (1 <= rows <= 10 and 1 <= columns <= 10):
        raise FilmError(f"layout {rows}x{columns}: 1 to 10 rows and columns")
    height, width = shape
    bh, bw = (height - gap * (rows - 1)) // rows, (width - gap * (columns - 1)) // columns
    if bh < 1 or bw < 1:
        raise FilmError(f"a {rows}x{columns} layout does not fit a page of {width}x{height} pixels")
    return [Box(r * (bh + gap), c * (bw + gap), bh, bw) for r in range(rows) for c in range(columns)]


def resample(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``img`` (grey, any integer type; or RGB) at ``shape`` (rows, columns): the mean of the
    pixels each page pixel covers when it shrinks, bilinear when it grows; integers kept."""
    from PIL import Image
    if tuple(img.shape[:2]) == tuple(shape):
        return img.copy()
    if img.ndim == 3:
        return np.stack([resample(img[..., c], shape) for c in range(img.shape[2])], axis=-1)
    src = Image.fromarray(img.astype(np.float32), mode="F")
    shrink = shape[0] < img.shape[0] or shape[1] < img.shape[1]
    out = src.resize((shape[1], shape[0]), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)
    return np.clip(np.rint(np.asarray(out)), np.iinfo(img.dtype).min, np.iinfo(img.dtype).max).astype(img.dtype)


def fitted_shape(image_shape: tuple[int, int], box: Box, scale: float | None = None) -> tuple[int, int]:
    """The image's size in a box: ``scale`` page pixels per image pixel (true size), else as
    large as the box allows with its aspect kept."""
    rows, columns = image_shape[:2]
    if scale is None:
        scale = min(box.height / rows, box.width / columns)
    return max(1, round(rows * scale)), max(1, round(columns * scale))


def place(page: np.ndarray, img: np.ndarray, box: Box, scale: float | None = None) -> None:
    """Draw ``img`` into ``box`` of ``page``, centred (cropped to the box when true size
    makes it larger)."""
    h, w = fitted_shape(img.shape, box, scale)
    shown = resample(img, (h, w))
    top, left = box.top + (box.height - h) // 2, box.left + (box.width - w) // 2
    # crop what falls outside the box (a true-size image larger than its box)
    r0, c0 = max(0, box.top - top), max(0, box.left - left)
    r1, c1 = min(h, box.top + box.height - top), min(w, box.left + box.width - left)
    page[top + r0:top + r1, left + c0:left + c1] = shown[r0:r1, c0:c1]


def true_size_scale(mm_per_pixel: float, dpi: float) -> float:
    """Page pixels per image pixel that print the image mm for mm."""
    return mm_per_pixel / MM_PER_INCH * dpi


def compose(images: list[np.ndarray | None], shape: tuple[int, int], rows: int, columns: int, *,
            bits: int = 12, gap: int = 0, background: int = 0,
            scales: list[float | None] | None = None, color: bool = False) -> np.ndarray:
    """The page: ``images`` (display values 0..2**bits-1, already windowed; None leaves a box
    empty) placed in a rows x columns layout on a page of ``shape``. ``color``: an RGB page
    of 8 bits (Table 4-36); grey images are put on it as grey."""
    if bits not in (8, 12) or (color and bits != 8):
        raise FilmError("a print page has 8 or 12 bits, a colour page 8 (spec Tables 4-34/4-36)")
    dtype = np.uint8 if bits == 8 else np.uint16
    page = np.full((*shape, 3) if color else shape, background, dtype=dtype)
    if color:
        images = [img if img is None or img.ndim == 3 else np.repeat(img[..., None], 3, axis=2) for img in images]
    elif any(img is not None and img.ndim == 3 for img in images):
        raise FilmError("colour images go to a colour printer (Basic Color Print), not this grayscale film")
    layout = boxes(shape, rows, columns, gap)
    if len(images) > len(layout):
        raise FilmError(f"{len(images)} images do not fit a {rows}x{columns} film ({len(layout)} boxes)")
    for i, img in enumerate(images):
        if img is not None:
            place(page, img.astype(page.dtype, copy=False), layout[i], (scales or [None] * len(images))[i])
    return page


def print_values(header, stored: np.ndarray, bits: int, window=None, *, invert: bool = False,
                 color: bool = False) -> np.ndarray:
    """An image as it is printed: its modality values through its window (the file's first,
    or the one given) onto 2**bits grey levels, polarity as the viewer shows it (``invert``:
    the reader inverted it). A colour image: its RGB values, for a colour film only."""
    from app.imaging import pixels
    if pixels.is_color(header):
        if not color:
            raise FilmError("colour images go to a colour printer (Basic Color Print), not this grayscale film")
        return pixels.color(header, stored)
    if bits == 8:
        return pixels.display(header, stored, window, invert=invert)
    window = window or pixels.default_window(header, stored)
    top = float(2 ** bits - 1)
    y = pixels.apply_window(pixels.modality_values(header, stored), window, out_max=top)
    shape = str(header.get("PresentationLUTShape", "") or "").strip().upper()
    inverse = shape == "INVERSE" or (
        shape not in ("INVERSE", "IDENTITY")
        and str(header.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1")
    if inverse != invert:
        y = top - y
    return np.clip(np.rint(y), 0, top).astype(np.uint16)
