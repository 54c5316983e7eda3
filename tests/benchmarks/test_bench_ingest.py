"""Ingest benchmark under pytest (see bench_ingest.py). Measured and reported, never timed:
the only assertions are that every receiver got every image.

    LIGHTBOX_BENCH_SIZE=smoke|full|N,M  (default smoke: 40 CT + 4 mammography, CI-sized)
    BENCH_OUT=results.json              (optional JSON copy of the figures)
"""

from __future__ import annotations

import os

import pytest

import bench_ingest

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)  # 'full' runs for minutes; smoke well under three
def test_ingest_throughput_lightbox_vs_storescp_vs_orthanc(tmp_path, capsys):
    size = os.environ.get("LIGHTBOX_BENCH_SIZE", "smoke")
    lines: list[str] = []
    report = bench_ingest.run_benchmark(size, work=tmp_path / "work", log=lines.append)
    table = bench_ingest.format_table(report)
    out = bench_ingest.write_json(report)
    with capsys.disabled():
        print("\n" + "\n".join(lines) + "\n\n" + table + (f"\nJSON: {out}" if out else ""))

    expected_cells = len(report["receivers"]) * 4
    assert len(report["results"]) == expected_cells, report["results"]
    failed = [f"{r['receiver']} / {r['workload']}: {r['error'] or 'received ' + str(r['received'])}"
              for r in report["results"] if not r["ok"] or r["received"] != r["images"]]
    assert not failed, "receivers that did not get every image:\n" + "\n".join(failed)
