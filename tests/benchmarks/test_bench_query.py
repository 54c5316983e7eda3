"""Query/Retrieve benchmark under pytest (see bench_query.py): measured and reported, never
timed. Asserted: every C-FIND found exactly what the generated corpus holds (the count
computed from the generator, clipped at node.max_matches for Lightbox) on Lightbox (both
corpora) and on Orthanc, both servers returned the same entities, the bulk-inserted rows
equal what Lightbox's own ingest stores for the same files, and every C-MOVE / C-GET
delivered every image.

    LIGHTBOX_BENCH_SIZE=smoke|full   (default smoke: CI-sized, well under a minute once cached)
    BENCH_OUT=results.json           (optional JSON copy of the figures)
"""

from __future__ import annotations

import pytest

import bench_query
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_query_latency_and_retrieve_throughput_lightbox_vs_orthanc(tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_query, tmp_path, capsys)

    for where in ("large", "compare_lightbox", "compare_orthanc"):
        for kind in bench_query.KINDS:
            r = report["find"][where][kind]
            assert r["ok"], f"{where} / {kind}: wrong number of matches: {r['errors']}"
            assert r["queries"] == bench_query.SIZES[report["size"]].reps
    assert report["find"]["same_answers"], report["find"]["answer_differences"]
    assert not report["ingest_check"]["mismatches"], report["ingest_check"]["mismatches"]
    n = report["retrieve"]["images"]
    for op, key in (("move", "delivered"), ("get", "received")):
        for who in ("lightbox", "orthanc"):
            for run in report["retrieve"][op][who]["runs"]:
                assert run[key] == n and run["failed"] == 0 and run["status"] == 0, (op, who, run)
    assert not report["problems"], report["problems"]
