"""GUI benchmark under pytest (see bench_gui.py): measured and reported, never timed. The
assertions are only that every image arrived in both receivers and every search answered."""

from __future__ import annotations

import pytest

import bench_gui
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_gui_responsiveness_and_browser_speed(qtbot, tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_gui, tmp_path, capsys)
    assert report["headless"]["received"] == report["images"], report["headless"]
    assert report["gui"]["received"] == report["images"], report["gui"]
    assert report["gui"]["storescu_rc"] == 0, report["gui"]["storescu_err"]
    assert report["gui"]["lateness_ms"]["ticks"] > 0
    assert all(s["rows"] is not None for s in report["browser"]["searches"])
