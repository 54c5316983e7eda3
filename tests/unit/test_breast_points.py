"""A point of one view of a breast in another image of that view, and the slice in focus
(app.imaging.breast_points)."""

from __future__ import annotations

import numpy as np
import pytest

from app.imaging.breast_points import corresponding_point, focus, same_view, sharpest_slice
from app.imaging.frames import frame_header
from tests.mammo_samples import mammogram, tomo_volume

MG_MM = 0.085 / 1.08  # Imager Pixel Spacing corrected by the magnification factor
TOMO_MM = 0.085


def _slice(volume):
    return frame_header(volume, 0)


def test_same_frame_of_reference_and_grid_is_the_same_pixel():
    volume = tomo_volume("R", "CC", frames=3)
    synthesized = tomo_volume("R", "CC", generated_2d=True, frame_of_reference=volume.FrameOfReferenceUID)
    assert corresponding_point(synthesized, (48, 40), (12.5, 30.0), _slice(volume), (48, 40)) == (12.5, 30.0)


@pytest.mark.parametrize("laterality", ["R", "L"])
def test_a_2d_exposure_maps_by_distance_from_the_chest_wall_and_the_middle_row(laterality):
    mg = mammogram(laterality, "CC", size=(64, 48))  # rows, columns
    tomo = _slice(tomo_volume(laterality, "CC", frames=3, size=(48, 40)))
    scale = MG_MM / TOMO_MM
    wall_mg, wall_tomo = (47, 39) if laterality == "R" else (0, 0)  # rows run posterior (R) or anterior (L)
    inward = -1 if laterality == "R" else 1
    x, y = corresponding_point(mg, (64, 48), (wall_mg + inward * 10, 31.5 + 5), tomo, (48, 40))
    assert x == pytest.approx(wall_tomo + inward * 10 * scale)
    assert y == pytest.approx(23.5 + 5 * scale)


def test_an_image_stored_upside_down_or_mirrored_maps_to_the_same_spot():
    standard = mammogram("R", "CC", size=(64, 48))                           # rows P, columns L
    upside_down = mammogram("R", "CC", size=(64, 48), orientation=("P", "R"))  # columns run the other way
    mirrored = mammogram("R", "CC", size=(64, 48), orientation=("A", "L"))     # chest wall at column 0
    assert corresponding_point(standard, (64, 48), (40.0, 20.0), upside_down, (64, 48)) == pytest.approx((40.0, 43.0))
    assert corresponding_point(standard, (64, 48), (40.0, 20.0), mirrored, (64, 48)) == pytest.approx((7.0, 20.0))


def test_a_point_outside_the_other_image_has_none():
    mg = mammogram("R", "CC", size=(64, 48))
    tomo = _slice(tomo_volume("R", "CC", frames=3, size=(20, 16)))
    assert corresponding_point(mg, (64, 48), (2.0, 1.0), tomo, (20, 16)) is None


def test_same_view_needs_the_same_breast_and_view():
    rcc = mammogram("R", "CC")
    assert same_view(rcc, _slice(tomo_volume("R", "CC", frames=2)))
    assert not same_view(rcc, mammogram("L", "CC"))
    assert not same_view(rcc, mammogram("R", "MLO"))
    unknown = mammogram("R", "CC")
    unknown.ImageLaterality = unknown.Laterality = "X"
    assert not same_view(unknown, unknown)


def test_the_slice_where_the_spot_is_sharpest():
    rng = np.random.default_rng(3)
    base = rng.normal(1000, 5, (9, 60, 60))
    y, x = np.mgrid[0:60, 0:60]
    for k in range(9):  # a small spot in focus on slice 6, blurred with distance from it
        sigma = 1.0 + 2.5 * abs(k - 6)
        base[k] += 800 / (sigma ** 2) * np.exp(-((x - 40) ** 2 + (y - 15) ** 2) / (2 * sigma ** 2))
    volume = base.astype(np.uint16)
    assert sharpest_slice(lambda i: volume[i], 9, (40, 15), radius=8) == 6
    assert focus(volume[6, 5:25, 30:50]) > focus(volume[2, 5:25, 30:50])
