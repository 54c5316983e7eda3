"""Media benchmark under pytest (see bench_media.py): measured and reported, never timed.
Asserted: the report has the figures (all positive); Lightbox exported every instance in as
many volumes as its plan says and read each volume back as written; the peers' media list
every instance; Lightbox's (and GDCM's) JPEG 2000 files decode to the original pixels and
are smaller than the input; both imports took every instance; nothing went wrong.

    LIGHTBOX_BENCH_SIZE=smoke|full   (default smoke)
    BENCH_OUT=results.json           (optional JSON copy of the figures)
"""

from __future__ import annotations

import pytest

import bench_media
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(3600)
def test_media_export_and_import_against_dcmtk(tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_media, tmp_path, capsys)
    assert not report["problems"], report["problems"]
    size = bench_media.SIZES[report["size"]]
    n = size.patients * (size.ct + size.mg)
    assert report["data"]["files"] == n and report["data"]["input_bytes"] > 0

    cd, j2k = report["cd"], report["j2k"]
    for run in (cd["lightbox"], cd["lightbox_icons"], j2k["lightbox"]):
        assert run["ok"] and run["exported"] == n and not run["refused"]
        assert run["seconds"] > 0 and run["mb_s"] > 0 and run["iso_bytes"] > 0
        assert all(v >= 0 for v in run["phases_s"].values()) and run["phases_s"]["verify"] > 0
    assert cd["lightbox"]["volume_count"] == cd["dcmtk"]["volume_count"] == report["cd_volumes_planned"]
    assert j2k["lightbox"]["volume_count"] == j2k["gdcm_dcmtk"]["volume_count"] == 1
    for run in (cd["dcmtk"], j2k["gdcm_dcmtk"]):
        assert run["seconds"] > 0 and run["mb_s"] > 0 and run["iso_bytes"] > 0
        assert all(v > 0 for v in run["steps_s"].values())
    assert cd["ratio"] > 0 and j2k["ratio"] > 0

    # uncompressed stays the same size; JPEG 2000 lossless is smaller and lossless
    assert 0.99 < cd["lightbox"]["size_fraction"] < 1.01
    assert 0 < j2k["lightbox"]["size_fraction"] < 1 and 0 < j2k["gdcm_dcmtk"]["size_fraction"] < 1
    for who in ("lightbox", "gdcm"):
        check = j2k["lossless"][who]
        assert check["lossless"] and check["checked"] > 0 and not check["differ"], check

    imp = report["import"]
    for r in (imp["media"], imp["folder"]):
        assert r["imported"] == n and not r["rejected"] and r["images_s"] > 0
    assert imp["ratio"] > 0
