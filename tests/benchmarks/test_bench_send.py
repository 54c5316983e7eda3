"""Send benchmark under pytest (see bench_send.py): measured and reported, never timed.
Asserted: every run of both senders delivered every image to the storescp, and the send
jobs ended done.

    LIGHTBOX_BENCH_SIZE=smoke|full   (default smoke)
    BENCH_OUT=results.json           (optional JSON copy of the figures)
"""

from __future__ import annotations

import pytest

import bench_send
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_lightbox_send_vs_storescu(tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_send, tmp_path, capsys)
    assert not report["problems"], report["problems"]
    for who in ("storescu", "lightbox"):
        assert len(report["runs"][who]) == report["repeat"]
        assert all(run["delivered"] == report["images"] for run in report["runs"][who])
    assert all(run["note"].startswith(f"{report['images']} sent to") for run in report["runs"]["lightbox"])
