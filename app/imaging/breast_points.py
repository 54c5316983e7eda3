"""Where a point of one image of a breast lies in another image of the same view, and the
tomosynthesis slice where it is in focus: a click on a 2D mammogram or a synthesized view
puts a cross-hair on the tomosynthesis slices of that view (issue 7, item 8).

Two images of one acquisition (a volume and the 2D view synthesized from it) share a Frame
of Reference and, usually, their pixel grid: the point is the same pixel. Otherwise (a 2D
exposure beside a volume, different detector binning) the breast is located by what both
images know: its chest wall is at one edge of the image (the row direction says which)
and the detector's centre line runs through its middle, so the point keeps its distance in
mm from the chest wall and from the middle row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydicom.dataset import Dataset

from app.imaging.breast_views import breast_view, image_directions, opposite_direction
from app.imaging.stage_layout import mm_per_pixel


def same_view(a: Dataset, b: Dataset) -> bool:
    """Both images show the same breast in the same view (CC with CC, RMLO with RMLO)."""
    va, vb = breast_view(a), breast_view(b)
    return va.laterality in ("R", "L") and va.laterality == vb.laterality and va.view.label != "?" \
        and va.view.label == vb.view.label


def _wall_column(ds: Dataset, columns: int) -> int | None:
    """The column of the chest wall: the last one when the rows run towards the patient's
    posterior, the first when they run anteriorly; None if the image does not say."""
    directions = image_directions(ds)
    if directions is None:
        return None
    if "P" in directions[0]:
        return columns - 1
    if "A" in directions[0]:
        return 0
    return None


def corresponding_point(src: Dataset, src_shape: tuple[int, int], point: tuple[float, float],
                        dst: Dataset, dst_shape: tuple[int, int]) -> tuple[float, float] | None:
    """(column, row) in ``dst`` of ``point`` (column, row) of ``src``; None when it falls
    outside ``dst``."""
    x, y = point
    for_src, for_dst = str(src.get("FrameOfReferenceUID", "") or ""), str(dst.get("FrameOfReferenceUID", "") or "")
    if for_src and for_src == for_dst and tuple(src_shape[:2]) == tuple(dst_shape[:2]):
        out = (x, y)
    else:
        out = _by_chest_wall(src, src_shape, point, dst, dst_shape)
    if not (0 <= out[0] <= dst_shape[1] - 1 and 0 <= out[1] <= dst_shape[0] - 1):
        return None
    return out


def _by_chest_wall(src, src_shape, point, dst, dst_shape) -> tuple[float, float]:
    x, y = point
    (src_rows, src_cols), (dst_rows, dst_cols) = src_shape[:2], dst_shape[:2]
    mm_src, mm_dst = mm_per_pixel(src)[0], mm_per_pixel(dst)[0]
    # without a spacing in both, the two are taken to span the same breast
    scale = mm_src / mm_dst if mm_src and mm_dst else dst_rows / src_rows
    wall_src, wall_dst = _wall_column(src, src_cols), _wall_column(dst, dst_cols)
    if wall_src is None or wall_dst is None:
        return x * dst_cols / src_cols, y * dst_rows / src_rows
    depth = abs(x - wall_src) * scale  # from the chest wall, in dst pixels
    nx = wall_dst + depth if wall_dst == 0 else wall_dst - depth
    from_middle = (y - (src_rows - 1) / 2) * scale
    down_src, down_dst = image_directions(src)[1], image_directions(dst)[1]
    if down_dst == opposite_direction(down_src):  # one stored upside down relative to the other
        from_middle = -from_middle
    return nx, (dst_rows - 1) / 2 + from_middle


def focus(region: np.ndarray) -> float:
    """How sharp a region is: the variance of its Laplacian (in focus, a calcification or a
    spiculated edge has strong second derivatives; out of focus it is blurred away)."""
    r = region.astype(np.float32)
    if min(r.shape[:2]) < 3:
        return 0.0
    lap = r[1:-1, :-2] + r[1:-1, 2:] + r[:-2, 1:-1] + r[2:, 1:-1] - 4 * r[1:-1, 1:-1]
    return float(lap.var())


def sharpest_slice(slice_at: Callable[[int], np.ndarray], count: int, point: tuple[float, float],
                   radius: int = 24) -> int:
    """The slice of a volume (``slice_at(i)``: its stored values) where the region around
    ``point`` (column, row) is sharpest: where the finding clicked on the 2D view lies."""
    x, y = int(round(point[0])), int(round(point[1]))
    best, best_focus = count // 2, -1.0
    for i in range(count):
        img = slice_at(i)
        r0, c0 = max(0, y - radius), max(0, x - radius)
        f = focus(img[r0:y + radius + 1, c0:x + radius + 1])
        if f > best_focus:
            best, best_focus = i, f
    return best
