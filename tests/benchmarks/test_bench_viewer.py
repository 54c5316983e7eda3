"""Viewer benchmark under pytest (see bench_viewer.py): measured and reported, never timed."""

from __future__ import annotations

import os

import pytest

import bench_viewer

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_viewer_open_scroll_and_pipeline(qtbot, tmp_path, capsys):
    lines: list[str] = []
    report = bench_viewer.run_benchmark(os.environ.get("LIGHTBOX_BENCH_SIZE", "smoke"), work=tmp_path / "work",
                                        log=lines.append)
    with capsys.disabled():
        print("\n" + "\n".join(lines) + "\n\n" + bench_viewer.format_report(report))
    n_ct, n_mg = bench_viewer.SIZES[os.environ.get("LIGHTBOX_BENCH_SIZE", "smoke")]
    assert report["ct"]["images"] == n_ct and report["mammo"]["images"] == n_mg
    assert report["ct"]["scroll_fps"] > 0 and report["pipeline_mammo"]["ours_per_s"] > 0
