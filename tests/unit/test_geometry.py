"""Ordering a series by geometry, falling back to Instance Number."""

import random

import pytest

from app.imaging.geometry import SliceInfo, normal, order_slices

AXIAL = (1, 0, 0, 0, 1, 0)


def test_axial_slices_ordered_along_the_normal_not_by_number():
    # instance numbers deliberately disagree with the positions (a scanner counting downwards)
    slices = [SliceInfo(k, (0, 0, z), AXIAL, 100 - k) for k, z in enumerate((-10.0, -7.5, -5.0, -2.5, 0.0))]
    shuffled = slices[:]
    random.Random(4).shuffle(shuffled)
    ordered, how = order_slices(shuffled)
    assert how == "geometry"
    assert [s.key for s in ordered] == [0, 1, 2, 3, 4]


def test_oblique_sagittal_positions_projected_on_the_normal():
    iop = (0, 1, 0, 0, 0, -1)  # sagittal: normal along -x
    assert normal(iop).tolist() == pytest.approx([-1, 0, 0])
    slices = [SliceInfo("a", (30, 5, 5), iop, 1), SliceInfo("b", (10, 7, 2), iop, 2), SliceInfo("c", (20, 0, 0), iop, 3)]
    ordered, _ = order_slices(slices)
    assert [s.key for s in ordered] == ["a", "c", "b"]  # -30 < -20 < -10


@pytest.mark.parametrize("slices", [
    [SliceInfo("b", None, AXIAL, 2), SliceInfo("a", (0, 0, 5), AXIAL, 1), SliceInfo("c", (0, 0, 1), AXIAL, None)],
    [SliceInfo("b", (0, 0, 1), (0, 1, 0, 0, 0, -1), 2), SliceInfo("a", (0, 0, 5), AXIAL, 1),
     SliceInfo("c", (0, 0, 3), AXIAL, None)],  # mixed orientations (a localizer in the series)
    [SliceInfo("b", (0, 0, 1), (1, 0, 0, 1, 0, 0), 2), SliceInfo("a", (0, 0, 5), (1, 0, 0, 1, 0, 0), 1),
     SliceInfo("c", (0, 0, 3), (1, 0, 0, 1, 0, 0), None)],  # degenerate orientation
    [SliceInfo("b", ("x", 0, 1), AXIAL, 2), SliceInfo("a", (0, 0, 5), AXIAL, 1), SliceInfo("c", (0, 0, 3), AXIAL, None)],
])
def test_falls_back_to_instance_number_with_missing_last(slices):
    ordered, how = order_slices(slices)
    assert how == "instance number"
    assert [s.key for s in ordered] == ["a", "b", "c"]
