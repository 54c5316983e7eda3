"""Measurements on an image: distance and angle in mm, ROI statistics in modality units.

Points are (column, row) in image pixels (floats, pixel centres at integers). The spacing
comes from Pixel Spacing (patient plane); failing that from Imager Pixel Spacing, which is
at the detector and is labelled so (projection images are magnified); failing both the
measurements are in pixels and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spacing:
    row: float      # mm between rows (vertical)
    column: float   # mm between columns (horizontal)
    unit: str       # "mm", "mm (detector)" or "px"


def spacing(ds) -> Spacing:
    for keyword, unit in (("PixelSpacing", "mm"), ("ImagerPixelSpacing", "mm (detector)")):
        value = ds.get(keyword)
        try:
            row, col = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError):
            continue
        if row > 0 and col > 0:
            return Spacing(row, col, unit)
    return Spacing(1.0, 1.0, "px")


def distance(a: tuple[float, float], b: tuple[float, float], sp: Spacing) -> float:
    return math.hypot((b[0] - a[0]) * sp.column, (b[1] - a[1]) * sp.row)


def angle(a: tuple[float, float], vertex: tuple[float, float], b: tuple[float, float], sp: Spacing) -> float:
    """The angle at ``vertex`` between the arms to ``a`` and ``b``, in degrees (0-180),
    measured in patient space (non-square pixels count)."""
    u = np.array([(a[0] - vertex[0]) * sp.column, (a[1] - vertex[1]) * sp.row])
    v = np.array([(b[0] - vertex[0]) * sp.column, (b[1] - vertex[1]) * sp.row])
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(u, v) / (nu * nv))))))


@dataclass(frozen=True)
class RoiStats:
    mean: float
    sd: float
    minimum: float
    maximum: float
    area: float       # in unit²
    pixels: int
    unit: str


def ellipse_mask(shape: tuple[int, int], a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """Pixels whose centres lie in the ellipse inscribed in the box with corners a and b."""
    cx, cy = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    rx, ry = max(abs(b[0] - a[0]) / 2, 0.5), max(abs(b[1] - a[1]) / 2, 0.5)
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    return ((cols - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 <= 1.0


def roi_stats(values: np.ndarray, mask: np.ndarray, sp: Spacing) -> RoiStats | None:
    """Statistics of the modality values under ``mask`` (HU for CT); None if it is empty."""
    inside = np.asarray(values, dtype=np.float64)[mask]
    if inside.size == 0:
        return None
    return RoiStats(float(inside.mean()), float(inside.std(ddof=1)) if inside.size > 1 else 0.0,
                    float(inside.min()), float(inside.max()), inside.size * sp.row * sp.column, int(inside.size),
                    sp.unit)
