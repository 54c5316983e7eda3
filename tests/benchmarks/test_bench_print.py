"""Film printing benchmark under pytest (see bench_print.py): measured and reported, never
timed. Asserted: the report has the figures (all positive), the page has the shape of the
film at the size's resolution, every run's printed image equals the page pixel for pixel, and
nothing went wrong.

    LIGHTBOX_BENCH_SIZE=smoke|full   (default smoke)
    BENCH_OUT=results.json           (optional JSON copy of the figures)
"""

from __future__ import annotations

import pytest

import bench_print
import benchutil
from app.film.compose import page_shape

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_film_print_compose_and_transfer(tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_print, tmp_path, capsys)
    assert not report["problems"], report["problems"]
    size = bench_print.SIZES[report["size"]]
    assert report["dpi"] == size.dpi and report["repeat"] == size.repeat
    assert tuple(report["page"]["shape"]) == page_shape("14INX17IN", "PORTRAIT", size.dpi)
    assert len(report["runs"]) == size.repeat
    assert report["pixels_match"] == [True] * size.repeat
    assert all(run["check"]["new_hg_files"] == 1 for run in report["runs"])
    c, t = report["composition"], report["transfer"]
    assert c["print_values_s"] > 0 and c["compose_s"] > 0 and c["seconds"] > 0 and c["sheet_from_files_s"] > 0
    assert all(t["seconds"][k] > 0 for k in ("connect", "session", "image", "print", "cleanup", "total"))
    assert t["image_mb_s"] > 0 and t["total_mb_s"] > 0
    assert report["loopback"]["mb_s"] > 0 and report["ratio_transfer_over_loopback"] > 0
    assert report["pdu"]["printer_accepts"] > 0
