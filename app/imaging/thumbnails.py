"""Series thumbnails for the browser: the middle image of a series, windowed as its file
says, made once in the background and cached as PNG in the data home.

Pixels go through the viewer's pipeline (app.imaging.pixels): modality LUT, the file's
first window (else min/max), MONOCHROME1 and presentation LUT, colour and palettes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine

from app.imaging.png import encode_png
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
    """The middle frame of ``ds`` through the viewer's pipeline (app.imaging.pixels)."""
    from app.imaging import pixels
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return pixels.render(ds, frames // 2)


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
    tmp.write_bytes(encode_png(img))
    tmp.replace(out)
    return out
