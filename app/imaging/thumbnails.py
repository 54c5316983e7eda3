"""Series thumbnails for the browser: the middle image of a series, windowed as its file
says, made once in the background and cached as PNG in the data home.

The pixel handling is deliberately small: modality LUT and the first VOI window of the
file (pydicom's own functions), MONOCHROME1 inverted, colour as pydicom decodes it. The
viewer's full pixel pipeline supersedes it for display.
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine

from app.store.schema import instance, series

log = logging.getLogger(__name__)

SIZE = 96
CACHE = ("cache", "thumbnails")


def cache_path(home: Path, series_uid: str, size: int = SIZE) -> Path:
    return home.joinpath(*CACHE) / f"{series_uid}-{size}.png"


def _middle_instance(engine: Engine, series_uid: str) -> str | None:
    with engine.connect() as conn:
        rows = conn.execute(select(instance.c.path, instance.c.InstanceNumber)
                            .join(series, series.c.id == instance.c.series_id)
                            .where(series.c.SeriesInstanceUID == series_uid)).all()
    if not rows:
        return None

    def number(row):
        try:
            return int(row.InstanceNumber)
        except (TypeError, ValueError):
            return 0
    rows.sort(key=number)
    return rows[len(rows) // 2].path


def to_8bit(ds) -> np.ndarray:
    """The first frame of ``ds`` as uint8 grey (H, W) or RGB (H, W, 3)."""
    from pydicom.pixels import apply_modality_lut
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        arr = arr[len(arr) // 2]
    if samples == 3:
        arr = arr.astype(np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        return np.clip((arr - lo) * 255.0 / max(hi - lo, 1e-9), 0, 255).astype(np.uint8) if hi > 255 or lo < 0 \
            else arr.astype(np.uint8)
    values = apply_modality_lut(arr, ds).astype(np.float64)
    center, width = _window(ds)
    if center is None:
        lo, hi = np.percentile(values, (0.5, 99.5))
    else:
        lo, hi = center - width / 2, center + width / 2
    out = np.clip((values - lo) * 255.0 / max(hi - lo, 1e-9), 0, 255).astype(np.uint8)
    if str(getattr(ds, "PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        out = 255 - out
    return out


def _window(ds) -> tuple[float | None, float | None]:
    try:
        center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if center is None or width is None:
            return None, None
        center = float(center[0] if hasattr(center, "__len__") and not isinstance(center, str) else center)
        width = float(width[0] if hasattr(width, "__len__") and not isinstance(width, str) else width)
        return (center, width) if width > 0 else (None, None)
    except (TypeError, ValueError, IndexError):
        return None, None


def shrink(img: np.ndarray, size: int) -> np.ndarray:
    """Fit into size x size keeping the aspect ratio: block averages, then nearest."""
    h, w = img.shape[:2]
    factor = max(1, int(max(h, w) / size))
    if factor > 1:
        h2, w2 = h // factor * factor, w // factor * factor
        img = img[:h2, :w2].reshape(h2 // factor, factor, w2 // factor, factor, *img.shape[2:]).mean(axis=(1, 3))
    h, w = img.shape[:2]
    scale = size / max(h, w)
    rows = np.minimum((np.arange(max(1, round(h * scale))) / scale).astype(int), h - 1)
    cols = np.minimum((np.arange(max(1, round(w * scale))) / scale).astype(int), w - 1)
    return img[rows][:, cols].astype(np.uint8)


def png(img: np.ndarray) -> bytes:
    """A minimal PNG (8-bit grey or RGB): no image library needed in the core."""
    h, w = img.shape[:2]
    color_type = 2 if img.ndim == 3 else 0
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def thumbnail(archive, series_uid: str, size: int = SIZE) -> Path | None:
    """The cached thumbnail of a series, made if needed; None for series without a
    displayable image (reports, presentation states, ...) or that cannot be decoded."""
    out = cache_path(archive.home, series_uid, size)
    if out.exists():
        return out
    rel = _middle_instance(archive.engine, series_uid)
    if rel is None:
        return None
    try:
        import pydicom
        ds = pydicom.dcmread(archive.files.absolute(rel))
        if "PixelData" not in ds:
            return None
        img = shrink(to_8bit(ds), size)
    except Exception as exc:  # noqa: BLE001 - an undecodable image just has no thumbnail
        log.info("no thumbnail for series %s: %s", series_uid, exc)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(png(img))
    tmp.replace(out)
    return out
