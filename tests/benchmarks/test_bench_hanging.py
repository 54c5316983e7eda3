"""Hanging benchmark under pytest (see bench_hanging.py): measured and reported, never timed."""

from __future__ import annotations

import pytest

import bench_hanging
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_screening_and_tomosynthesis_first_stage_and_scroll(qtbot, tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_hanging, tmp_path, capsys)
    screening, tomo = report["screening"]["runs"][0], report["tomosynthesis"]["runs"][0]
    assert screening["stage"].startswith("Overview") and screening["viewports"] == 8
    assert tomo["stage"].startswith("CC tomosynthesis") and tomo["viewports"] == 4
    assert tomo["linked_viewports"] == 2 and tomo["partner_followed"]
    assert tomo["one_slices_per_s"] > 0 and tomo["linked_slices_per_s"] > 0
