"""Patient-space geometry of images: slice normals and the order of a series' images.

A series is ordered by position along the slice normal (PS3.3 C.7.6.2.1.1: Image
Position (Patient) and Image Orientation (Patient)) when every image has both and they
share one orientation; otherwise by Instance Number (missing numbers last), as readers
expect from scanners that do not fill the geometry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

ORIENTATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class SliceInfo:
    key: Any                                   # whatever the caller identifies the image by
    position: Sequence[float] | None = None    # Image Position (Patient)
    orientation: Sequence[float] | None = None  # Image Orientation (Patient): row, column cosines
    instance_number: int | None = None


def normal(orientation: Sequence[float]) -> np.ndarray:
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float)
    n = np.cross(row, col)
    length = np.linalg.norm(n)
    if length < 1e-6:
        raise ValueError("Image Orientation (Patient) has parallel row and column directions")
    return n / length


def _valid(values, n: int) -> bool:
    try:
        return values is not None and len(values) == n and all(np.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def order_slices(slices: list[SliceInfo]) -> tuple[list[SliceInfo], str]:
    """(slices in reading order, 'geometry' or 'instance number')."""
    if len(slices) > 1 and all(_valid(s.position, 3) and _valid(s.orientation, 6) for s in slices):
        first = np.asarray(slices[0].orientation, float)
        if all(np.allclose(np.asarray(s.orientation, float), first, atol=ORIENTATION_TOLERANCE) for s in slices):
            try:
                n = normal(first)
            except ValueError:
                n = None
            if n is not None:
                ordered = sorted(slices, key=lambda s: (float(np.dot(np.asarray(s.position, float), n)),
                                                        s.instance_number if s.instance_number is not None else 0))
                return ordered, "geometry"
    return sorted(slices, key=lambda s: (s.instance_number is None, s.instance_number or 0)), "instance number"
