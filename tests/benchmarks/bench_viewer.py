"""Viewer benchmark (issue 4): opening, scrolling, and the pixel pipeline against DCMTK.

(a) Time from "open" to the first image painted, and to the whole series decoded, for a
    CT series (512x512, 16-bit) and a 4-image mammography study (3328x4096, 16-bit, JPEG
    lossless, compressed with DCMTK dcmcjpeg).
(b) Scroll rate through the CT stack, frames painted per second, in a 1024x1024 viewport
    (Xvfb/Mesa software OpenGL in CI).
(c) Decode + window throughput of our pipeline (pydicom read, pylibjpeg, modality LUT, VOI
    window to 8 bits) against DCMTK dcmj2pnm (one process per file, PGM out) on the same
    files and window: images/s and the ratio.

Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke = 40 CT + 1 mammogram (CI);
full = 500 CT + 4 mammograms.  python tests/benchmarks/bench_viewer.py full
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_ingest  # noqa: E402

SIZES = {"smoke": (40, 1), "full": (500, 4)}
DCMCJPEG = "/usr/bin/dcmcjpeg"
DCMJ2PNM = "/usr/bin/dcmj2pnm"


def jpeg_lossless_mammograms(count: int, log=print) -> list[Path]:
    """The first ``count`` benchmark mammograms, JPEG lossless (cached beside the originals)."""
    originals = bench_ingest.ensure_images("MG", count, log=log)
    folder = bench_ingest.cache_root() / "mg-jpegll"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in originals:
        target = folder / src.name
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            subprocess.run([DCMCJPEG, "+e1", str(src), str(tmp)], check=True, capture_output=True, timeout=300)
            tmp.replace(target)
        out.append(target)
    return out


# -- (a) and (b) ------------------------------------------------------------------------------
def open_and_scroll(files: list[Path], work: Path, label: str, scroll: bool, log=print) -> dict:
    from PySide6.QtWidgets import QApplication

    from app.store.archive import Archive
    from app.store.query import search
    from app.ui.viewer.window import ViewerWindow

    app = QApplication.instance() or QApplication([])
    archive = Archive(work / f"{label}-home")
    for f in files:
        result = archive.ingest.store_file(f)
        assert result.ok, result.comment
    rows = search(archive.engine, "study", {})
    t0 = time.perf_counter()
    viewer = ViewerWindow(archive, rows, hang=False)  # one series opened in order (hanging: bench_hanging)
    viewer.resize(1024 + 260, 1024 + 90)
    viewer.show()
    vp = viewer.viewports[0]
    first = {"t": None}
    vp.changed.connect(lambda _vp: first.__setitem__("t", first["t"] or time.perf_counter()))
    deadline = time.perf_counter() + 120
    while first["t"] is None and time.perf_counter() < deadline:
        app.processEvents()
    first_s = first["t"] - t0
    images = vp.images
    n = len(images)
    images.prefetch(n // 2, radius=n)
    while images.cached() < n and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.002)
    loaded_s = time.perf_counter() - t0
    result = {"images": n, "first_image_s": first_s, "all_loaded_s": loaded_s,
              "viewport": list(vp.render_window.GetSize())}
    if scroll:
        # the viewport itself 1024 x 1024, whatever the toolbar and series strip take
        w, h = vp.render_window.GetSize()
        viewer.resize(viewer.width() + 1024 - w, viewer.height() + 1024 - h)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        result["viewport"] = list(vp.render_window.GetSize())
        steps = min(300, 3 * n)
        t1 = time.perf_counter()
        for i in range(steps):
            vp.show_image((i + 1) % n)
            app.processEvents()
        result["scroll_fps"] = steps / (time.perf_counter() - t1)
    log(f"  {label}: first image {first_s:.3f} s, {n} images decoded {loaded_s:.2f} s"
        + (f", scroll {result['scroll_fps']:.1f} frames/s in {result['viewport'][0]}x{result['viewport'][1]}"
           if scroll else ""))
    viewer.close()
    from PySide6.QtCore import QEvent
    app.sendPostedEvents(None, QEvent.DeferredDelete)  # the viewer deletes itself (and its VTK windows)
    app.processEvents()
    archive.close()
    return result


# -- (c) --------------------------------------------------------------------------------------
def pipeline_throughput(files: list[Path], window: tuple[float, float], log=print, label: str = "") -> dict:
    import pydicom

    from app.imaging import pixels
    t0 = time.perf_counter()
    for f in files:
        pixels.render(pydicom.dcmread(f), window=pixels.Window(*window))
    ours = len(files) / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for f in files:
            subprocess.run([DCMJ2PNM, "+Ww", str(window[0]), str(window[1]), "+op", str(f), f"{tmp}/out.pgm"],
                           check=True, capture_output=True, timeout=300)
        theirs = len(files) / (time.perf_counter() - t0)
    log(f"  pipeline {label}: ours {ours:.1f} img/s, dcmj2pnm {theirs:.1f} img/s, ratio {ours / theirs:.2f}")
    return {"ours_per_s": ours, "dcmj2pnm_per_s": theirs, "ratio": ours / theirs}


def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    import benchutil
    size, (n_ct, n_mg), work = benchutil.prepare(size, SIZES, work, "lightbox-bench-viewer-")
    ct = bench_ingest.ensure_images("CT", n_ct, log=log)
    mg = jpeg_lossless_mammograms(n_mg, log=log)
    bench_ingest.warm_page_cache(ct + mg)
    log(f"viewer benchmark '{size}': {n_ct} CT, {n_mg} JPEG-lossless mammograms; work dir {work}")
    report = {"size": size,
              "ct": open_and_scroll(ct, work, "CT", True, log),
              "mammo": open_and_scroll(mg, work, "MG", False, log),
              "pipeline_ct": pipeline_throughput(ct, (40, 400), log, "CT"),
              "pipeline_mammo": pipeline_throughput(mg, (2000, 4000), log, "MG")}
    return report


def format_report(r: dict) -> str:
    ct, mg = r["ct"], r["mammo"]
    return "\n".join([
        f"open CT ({ct['images']} slices): first image {ct['first_image_s']:.3f} s (goal <= 0.3), "
        f"all decoded {ct['all_loaded_s']:.2f} s",
        f"open mammography ({mg['images']} images, JPEG lossless): first image {mg['first_image_s']:.3f} s "
        f"(goal <= 1), all decoded {mg['all_loaded_s']:.2f} s",
        f"scroll through the CT stack in {ct['viewport'][0]}x{ct['viewport'][1]}: {ct['scroll_fps']:.1f} "
        "frames/s (goal >= 30)",
        f"decode + window, ours / dcmj2pnm: CT {r['pipeline_ct']['ours_per_s']:.1f} / "
        f"{r['pipeline_ct']['dcmj2pnm_per_s']:.1f} img/s = {r['pipeline_ct']['ratio']:.2f}; mammography "
        f"{r['pipeline_mammo']['ours_per_s']:.2f} / {r['pipeline_mammo']['dcmj2pnm_per_s']:.2f} img/s = "
        f"{r['pipeline_mammo']['ratio']:.2f} (goal >= 1)",
    ])


def main(argv: list[str] | None = None) -> int:
    import benchutil
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    sys.exit(main())
