"""JPEG 2000 lossless compression rate as a send pays it (issue 6): Lightbox's compressor
(app.dicom.compression: read the stored file, decode nothing (uncompressed), encode with
OpenJPEG, write the data set) against GDCM's ``gdcmconv --j2k`` on the same 512x512 CT files,
one file after another on one core each. MB/s of input; every output must decode to the
original pixels. gdcmconv runs once per file (it takes one file per call): its process
start-up is part of its figure, as it would be for anyone using it this way.

Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke 8 images, full 100.

    python tests/benchmarks/bench_compress.py full      BENCH_OUT=j2k.json for the figures as JSON
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_ingest  # noqa: E402
import benchutil  # noqa: E402

SIZES = {"smoke": 8, "full": 100}
GDCMCONV = shutil.which("gdcmconv") or "/usr/bin/gdcmconv"


def _lightbox(files: list[Path]) -> tuple[float, int, list]:
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    from app.dicom.compression import compress
    out_bytes, results = 0, []
    t0 = time.perf_counter()
    for f in files:
        ds = pydicom.dcmread(f)
        compress(ds, JPEG2000Lossless)
        buf = BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out_bytes += buf.tell()
        results.append(buf.getvalue())
    return time.perf_counter() - t0, out_bytes, results


def _gdcm(files: list[Path], work: Path) -> tuple[float, int, list[Path]]:
    outs = []
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        out = work / f"g{i}.dcm"
        proc = subprocess.run([GDCMCONV, "--j2k", str(f), str(out)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"gdcmconv failed on {f}: {proc.stderr[-500:]}")
        outs.append(out)
    seconds = time.perf_counter() - t0
    return seconds, sum(p.stat().st_size for p in outs), outs


def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    import numpy as np
    import pydicom
    size, count, work = benchutil.prepare(size, SIZES, work, "lightbox-bench-j2k-")
    files = bench_ingest.ensure_images("CT", count, log=log)
    mb = sum(f.stat().st_size for f in files) / 1e6
    bench_ingest.warm_page_cache(files)
    log(f"JPEG 2000 lossless of {count} CT 512x512 ({mb:.1f} MB), one core each")
    lb_s, lb_out, lb_results = _lightbox(files)
    g_s, g_out, g_files = _gdcm(files, work)
    problems = []
    for f, ours, theirs in zip(files, lb_results, g_files):
        original = pydicom.dcmread(f).pixel_array
        if not np.array_equal(pydicom.dcmread(BytesIO(ours)).pixel_array, original):
            problems.append(f"Lightbox's output of {f.name} does not decode to the original")
        if not np.array_equal(pydicom.dcmread(theirs).pixel_array, original):
            problems.append(f"gdcmconv's output of {f.name} does not decode to the original")
    report = {"size": size, "images": count, "input_mb": round(mb, 1),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
              "lightbox": {"seconds": round(lb_s, 2), "mb_per_s": round(mb / lb_s, 1), "ratio": round(mb * 1e6 / lb_out, 2)},
              "gdcmconv": {"seconds": round(g_s, 2), "mb_per_s": round(mb / g_s, 1), "ratio": round(mb * 1e6 / g_out, 2)},
              "problems": problems}
    report["speed_ratio_lightbox_over_gdcm"] = round(report["lightbox"]["mb_per_s"] / report["gdcmconv"]["mb_per_s"], 2)
    return report


def format_report(r: dict) -> str:
    lines = [f"JPEG 2000 lossless, {r['images']} CT images ({r['input_mb']} MB):",
             f"  Lightbox  {r['lightbox']['mb_per_s']:7.1f} MB/s  (compression ratio {r['lightbox']['ratio']})",
             f"  gdcmconv  {r['gdcmconv']['mb_per_s']:7.1f} MB/s  (compression ratio {r['gdcmconv']['ratio']})",
             f"  Lightbox/gdcmconv speed {r['speed_ratio_lightbox_over_gdcm']}"]
    return benchutil.report_text(lines, r["problems"])


def main(argv: list[str] | None = None) -> int:
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
