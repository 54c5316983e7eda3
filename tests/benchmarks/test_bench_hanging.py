"""Hanging benchmark under pytest (see bench_hanging.py): measured and reported, never timed."""

from __future__ import annotations

import pytest

import bench_hanging
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_screening_study_first_stage(qtbot, tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_hanging, tmp_path, capsys)
    run = report["runs"][0]
    assert run["stage"].startswith("Overview") and run["viewports"] == 8
