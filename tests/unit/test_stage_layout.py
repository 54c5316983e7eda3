"""Sizes and placements of a hanging stage (app.imaging.stage_layout): Table 8-14's pixel
spacing variants, "same" size across detectors, true size, the chest wall pinned."""

import pytest
from pydicom.dataset import Dataset

from app.imaging import hanging, stage_layout
from tests.mammo_samples import mammogram


def _ds(**values) -> Dataset:
    ds = Dataset()
    for k, v in values.items():
        setattr(ds, k, v)
    return ds


@pytest.mark.parametrize("values, expected", [
    ({"ImagerPixelSpacing": [0.1, 0.1], "EstimatedRadiographicMagnificationFactor": 1.25}, (0.08, "A")),
    ({"ImagerPixelSpacing": [0.1, 0.1], "DistanceSourceToDetector": 650, "DistanceSourceToPatient": 520}, (0.08, "A")),
    ({"ImagerPixelSpacing": [0.1, 0.1], "PixelSpacing": [0.07, 0.07]}, (0.07, "B")),
    ({"PixelSpacing": [0.07, 0.07]}, (0.07, "B")),
    ({"ImagePlanePixelSpacing": [0.2, 0.2]}, (0.2, "C")),
    ({}, (None, "")),
])
def test_table_8_14_spacing_variants(values, expected):
    got = stage_layout.mm_per_pixel(_ds(**values))
    assert (round(got[0], 6) if got[0] else None, got[1]) == expected


def _stage(*sets_and_sizes):
    viewports = [hanging.HungViewport(s, hanging.Viewport("x", size)) for s, size in sets_and_sizes]
    return hanging.HungStage("t", 1, len(viewports), viewports)


def _set(ds):
    return hanging.display_sets([ds])[0]


def test_same_size_makes_a_millimetre_equal_across_detectors():
    fine = mammogram("R", "CC", size=(400, 300))
    fine.ImagerPixelSpacing, fine.EstimatedRadiographicMagnificationFactor = [0.05, 0.05], 1.0
    coarse = mammogram("L", "CC", size=(200, 150))
    coarse.ImagerPixelSpacing, coarse.EstimatedRadiographicMagnificationFactor = [0.1, 0.1], 1.0
    stage = _stage((_set(fine), "same"), (_set(coarse), "same"))
    p = stage_layout.place(stage, [fine, coarse], [(400, 300), (200, 150)], stage_layout.grid(1, 2, (802, 400)))
    assert p[0].zoom / 0.05 == pytest.approx(p[1].zoom / 0.1)  # screen pixels per mm
    assert (p[0].pinned, p[1].pinned) == ("right", "left")
    assert p[0].pan[0] > 0 and p[1].pan[0] < 0  # each moved toward the centre line


def test_true_size_and_fit():
    ds = mammogram("L", "MLO", size=(400, 300))
    ds.ImagerPixelSpacing, ds.EstimatedRadiographicMagnificationFactor = [0.1, 0.1], 1.0
    true = stage_layout.place(_stage((_set(ds), "true")), [ds], [(400, 300)], [(0, 0, 1000, 1000)],
                              screen_mm_per_pixel=0.25)
    assert true[0].zoom == pytest.approx(0.4)  # 0.1 mm per image pixel on 0.25 mm screen pixels
    fit = stage_layout.place(_stage((_set(ds), "fit")), [ds], [(400, 300)], [(0, 0, 1000, 1000)])
    # fills the height; the left breast moved 50 image pixels left, chest wall on the inner edge
    assert fit[0].zoom == pytest.approx(2.5) and fit[0].pan == (-50.0, 0.0)


def test_grid_has_gaps_and_stays_inside():
    rects = stage_layout.grid(2, 4, (1600, 900))
    assert len(rects) == 8 and rects[0] == (0, 0, 398, 449) and rects[-1][0] + rects[-1][2] <= 1600
