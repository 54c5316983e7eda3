"""Retrieve benchmark under pytest (see bench_retrieve.py): measured and reported, never
timed. Asserted: every C-MOVE and C-GET of both clients delivered every image."""

from __future__ import annotations

import pytest

import bench_retrieve
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_lightbox_retrieve_vs_movescu_and_getscu(tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_retrieve, tmp_path, capsys)
    assert not report["problems"], report["problems"]
    for key, runs in report["runs"].items():
        assert len(runs) == report["repeat"] and all(r["received"] == report["images"] for r in runs), key
