"""Hanging benchmark (issue 7): time from "open" to the first stage of the hanging protocol
painted, for a screening study with a prior: 8 mammograms 3328x4096, 14-bit, JPEG lossless
(bench_viewer's, compressed by DCMTK dcmcjpeg; the prior is the same four images under a
study of two years before). The viewer chooses the screening protocol, opens all eight
display sets, places them mirrored and paints the 8-up overview. Goal: <= 1.5 s.

Under Xvfb with Mesa software OpenGL in CI. No peer: no other program hangs a study.
Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke = 1 run (CI), full = 3 runs.

    python tests/benchmarks/bench_hanging.py full       BENCH_OUT=h.json for the figures as JSON
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_viewer  # noqa: E402

SIZES = {"smoke": 1, "full": 3}


def screening_with_prior(work: Path, log=print) -> list[Path]:
    """The four JPEG-lossless mammograms, and the same under a prior study two years older."""
    import pydicom

    from app.dicom.uids import new_uid
    current = bench_viewer.jpeg_lossless_mammograms(4, log=log)
    folder = work / "prior"
    folder.mkdir(parents=True, exist_ok=True)
    study = new_uid()
    out = list(current)
    for path in current:
        ds = pydicom.dcmread(path)
        date = str(ds.StudyDate)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, new_uid(), new_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyDate = ds.AcquisitionDate = ds.ContentDate = f"{int(date[:4]) - 2}{date[4:]}"
        target = folder / path.name
        ds.save_as(target)  # the compressed pixel data as it was
        out.append(target)
    return out


def open_first_stage(archive, study_uid: str) -> dict:
    from PySide6.QtWidgets import QApplication

    from app.store.query import search
    from app.ui.viewer.window import ViewerWindow
    app = QApplication.instance() or QApplication([])
    rows = search(archive.engine, "study", {"StudyInstanceUID": study_uid})
    shown = {}
    t0 = time.perf_counter()
    viewer = ViewerWindow(archive, rows)
    viewer.resize(1920, 1080)
    viewer.stages.stageShown.connect(lambda i: shown.setdefault("t", time.perf_counter()))
    viewer.show()
    deadline = t0 + 120
    while "t" not in shown and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()  # the paint the stage asked for
    seconds = shown["t"] - t0 if "t" in shown else float("nan")
    stage = viewer.stages.current_stage()
    result = {"seconds": seconds, "stage": stage.name if stage else None,
              "viewports": sum(1 for vp in viewer.visible_viewports() if vp.images is not None)}
    viewer.close()
    from PySide6.QtCore import QEvent
    app.sendPostedEvents(None, QEvent.DeferredDelete)
    app.processEvents()
    return result


def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    import benchutil
    import bench_ingest

    from app.store.archive import Archive
    size, repeat, work = benchutil.prepare(size, SIZES, work, "lightbox-bench-hanging-")
    files = screening_with_prior(work, log=log)
    bench_ingest.warm_page_cache(files)
    archive = Archive(work / "home")
    try:
        for f in files:
            result = archive.ingest.store_file(f)
            assert result.ok, result.comment
        import pydicom
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        log(f"hanging benchmark '{size}': screening study + prior, 8 mammograms 3328x4096 JPEG lossless, "
            f"{repeat} run(s)")
        runs = []
        for _ in range(repeat):
            runs.append(open_first_stage(archive, study))
            log(f"  first stage '{runs[-1]['stage']}' ({runs[-1]['viewports']} viewports) painted in "
                f"{runs[-1]['seconds']:.3f} s")
    finally:
        archive.close()
    return {"size": size, "runs": runs, "median_s": statistics.median(r["seconds"] for r in runs)}


def format_report(r: dict) -> str:
    stage = r["runs"][0]["stage"]
    return (f"open a screening study with its prior (8 mammograms 3328x4096, JPEG lossless) -> first stage "
            f"'{stage}' painted: median {r['median_s']:.3f} s of {len(r['runs'])} (goal <= 1.5 s)")


def main(argv: list[str] | None = None) -> int:
    import benchutil
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    sys.exit(main())
