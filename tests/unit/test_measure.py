"""Measurements computed by hand: distance, angle, ROI statistics in modality units."""

import math

import numpy as np
import pytest
from pydicom.dataset import Dataset

from app.imaging.measure import Spacing, angle, distance, ellipse_mask, roi_stats, spacing


def test_spacing_sources():
    ds = Dataset()
    assert spacing(ds) == Spacing(1.0, 1.0, "px")
    ds.ImagerPixelSpacing = [0.1, 0.1]
    assert spacing(ds).unit == "mm (detector)"
    ds.PixelSpacing = [0.5, 0.25]
    assert spacing(ds) == Spacing(0.5, 0.25, "mm")


def test_distance_and_angle_with_non_square_pixels():
    sp = Spacing(0.5, 0.25, "mm")  # rows 0.5 mm apart, columns 0.25 mm
    assert distance((0, 0), (40, 0), sp) == pytest.approx(10.0)
    assert distance((0, 0), (0, 20), sp) == pytest.approx(10.0)
    assert distance((0, 0), (40, 20), sp) == pytest.approx(math.sqrt(200))
    # 40 columns right and 20 rows down are both 10 mm: a right angle in patient space
    assert angle((40, 0), (0, 0), (0, 20), sp) == pytest.approx(90.0)
    assert angle((40, 0), (0, 0), (40, 20), sp) == pytest.approx(45.0)
    assert angle((1, 1), (1, 1), (2, 2), sp) == 0.0


def test_roi_statistics_in_hounsfield_units():
    values = np.full((20, 20), -1000.0)
    values[5:15, 5:15] = 40.0
    values[9, 9] = 60.0
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    st = roi_stats(values, mask, Spacing(0.5, 0.5, "mm"))
    inside = np.full(100, 40.0)
    inside[0] = 60.0
    assert st.mean == pytest.approx(inside.mean()) and st.sd == pytest.approx(inside.std(ddof=1))
    assert (st.minimum, st.maximum, st.pixels) == (40.0, 60.0, 100)
    assert st.area == pytest.approx(25.0)
    assert roi_stats(values, np.zeros((20, 20), bool), Spacing(1, 1, "px")) is None


def test_ellipse_mask_area_close_to_pi_r_squared():
    mask = ellipse_mask((200, 200), (50, 50), (150, 150))  # r = 50
    assert mask.sum() == pytest.approx(math.pi * 50 ** 2, rel=0.01)
    assert mask[100, 100] and not mask[0, 0]
