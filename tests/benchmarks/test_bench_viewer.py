"""Viewer benchmark under pytest (see bench_viewer.py): measured and reported, never timed."""

from __future__ import annotations

import os

import pytest

import bench_viewer
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_viewer_open_scroll_and_pipeline(qtbot, tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_viewer, tmp_path, capsys)
    n_ct, n_mg = bench_viewer.SIZES[os.environ.get("LIGHTBOX_BENCH_SIZE", "smoke")]
    assert report["ct"]["images"] == n_ct and report["mammo"]["images"] == n_mg
    assert report["ct"]["scroll_fps"] > 0 and report["pipeline_mammo"]["ours_per_s"] > 0
