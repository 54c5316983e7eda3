"""Worklist benchmark under pytest (see bench_worklist.py): measured and reported, never timed.
Asserted: the report has the figures, every findscu run got every item the provider serves,
and, once app.net.worklist.query_and_store exists, every Lightbox run stored every item as new
and its refresh found nothing new.

    LIGHTBOX_BENCH_SIZE=smoke|full   (default smoke)
    BENCH_OUT=results.json           (optional JSON copy of the figures)
"""

from __future__ import annotations

import pytest

import bench_worklist
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_worklist_query_lightbox_vs_findscu(tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_worklist, tmp_path, capsys)
    n = report["items"]
    assert n == bench_worklist.SIZES[report["size"]].items
    f = report["findscu"]
    assert len(f["runs"]) == report["repeat"]
    assert all(run["returncode"] == 0 and run["responses"] == n for run in f["runs"]), f["runs"]
    assert f["all_items"] and f["seconds"] > 0 and f["items_per_s"] > 0
    lb = report["lightbox"]
    if lb["available"]:
        assert len(lb["runs"]) == report["repeat"], report["problems"]
        for run in lb["runs"]:
            assert (run["items"], run["new"]) == (n, n), run
            assert run["refresh"]["new"] == 0 and run["refresh"]["vanished"] == 0, run
        assert lb["seconds"] > 0 and lb["items_per_s"] > 0 and report["ratio_lightbox_over_findscu"] > 0
    else:
        assert "cannot be imported" in lb["reason"]
    assert report["dialog"]["available"] and report["dialog"]["items"] == report["items"]
    assert report["dialog"]["rows_patient_id"] == 1 and 0 < report["dialog"]["rows_modality"] < report["items"]
    assert not report["problems"], report["problems"]
