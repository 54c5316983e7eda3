"""JPEG 2000 compression benchmark under pytest (see bench_compress.py): measured and
reported, never timed. Asserted: both compressors' outputs decode to the original pixels."""

from __future__ import annotations

import pytest

import bench_compress
import benchutil

pytestmark = [pytest.mark.benchmark, pytest.mark.peers]


@pytest.mark.timeout(1800)
def test_j2k_lossless_rate_lightbox_vs_gdcmconv(tmp_path, capsys):
    report = benchutil.run_in_pytest(bench_compress, tmp_path, capsys)
    assert not report["problems"], report["problems"]
    assert report["lightbox"]["ratio"] > 1 and report["gdcmconv"]["ratio"] > 1
