"""Hanging benchmark (issue 7).

(a) Time from "open" to the first stage of the hanging protocol painted, for a screening
    study with a prior: 8 mammograms 3328x4096, 14-bit, JPEG lossless (bench_viewer's,
    compressed by DCMTK dcmcjpeg; the prior is the same four images under a study of two
    years before). The viewer chooses the screening protocol, opens all eight display sets,
    places them mirrored and paints the 8-up overview. Goal: <= 1.5 s.
(b) The same for a tomosynthesis study: four Breast Tomosynthesis volumes (RCC, LCC, RMLO,
    LMLO) of 60 frames 1890x2457 (columns x rows), 12-bit, uncompressed as the modality
    sends them (557 MB each), and their four synthesized 2D views (GENERATED_2D). The first
    stage is the CC tomosynthesis pair over the synthesized CC pair. Goal: <= 1.5 s.
(c) Tomosynthesis scroll rate, slices painted per second, stepping through the right CC
    volume in that stage: alone (linking off), and with the left CC following it by
    relative depth (the pair linked, two viewports painted per step). Goal: >= 20 slices/s
    linked.

Under Xvfb with Mesa software OpenGL in CI. No peer: no other program hangs a study.
Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke = 1 run, tomosynthesis volumes of
8 frames at a quarter of the size (CI); full = 3 runs, the sizes above.

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

SIZES = {"smoke": (1, 8, (615, 473)), "full": (3, 60, (2457, 1890))}  # runs, frames, (rows, columns)
VIEWS = [("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")]


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


def tomosynthesis_study(frames: int, size: tuple[int, int], log=print) -> list[Path]:
    """Four tomosynthesis volumes and their synthesized 2D views (cached: half a gigabyte a
    volume takes a while to write)."""
    import bench_ingest

    from tests.mammo_samples import tomo_volume
    folder = bench_ingest.cache_root() / f"dbt-{frames}x{size[0]}x{size[1]}"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{lat}{view}-{kind}.dcm" for lat, view in VIEWS for kind in ("tomo", "2d")]
    if not all((folder / n).exists() for n in names):
        log(f"  writing 4 tomosynthesis volumes of {frames} frames {size[1]}x{size[0]} and 4 synthesized views")
        study = bench_ingest._uid("dbt", frames, *size)
        for lat, view in VIEWS:
            volume = tomo_volume(lat, view, frames=frames, size=size, study=study, patient="DBT001",
                                 frame_of_reference=bench_ingest._uid("dbt-for", lat, view, frames, *size))
            volume.save_as(folder / f"{lat}{view}-tomo.dcm", enforce_file_format=True)
            synthesized = tomo_volume(lat, view, size=size, study=study, patient="DBT001", generated_2d=True,
                                      frame_of_reference=volume.FrameOfReferenceUID)
            synthesized.save_as(folder / f"{lat}{view}-2d.dcm", enforce_file_format=True)
            del volume
    return [folder / n for n in names]


def open_first_stage(archive, study_uid: str, scroll: bool = False) -> dict:
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
    if scroll:
        result.update(scroll_rates(app, viewer))
    viewer.close()
    from PySide6.QtCore import QEvent
    app.sendPostedEvents(None, QEvent.DeferredDelete)
    app.processEvents()
    return result


def scroll_rates(app, viewer) -> dict:
    """Slices/s stepping through the first tomosynthesis viewport from its middle slice to
    the end and back, as the wheel does: alone, then with its linked partner following."""
    tomo = [vp for vp in viewer.visible_viewports() if vp.image_count() > 1]
    leader = tomo[0]
    viewer._activate(leader)
    out = {"viewport": list(leader.render_window.GetSize()), "slices": leader.image_count(),
           "linked_viewports": len(tomo)}
    for name, linked in (("one", False), ("linked", True)):
        viewer.link.setChecked(linked)
        n, middle = leader.image_count(), leader.index
        deltas = [1] * (n - 1 - middle) + [-1] * (n - 1) + [1] * middle  # to one end, the other, back
        t0 = time.perf_counter()
        for delta in deltas:
            leader.scroll(delta)
            app.processEvents()
        steps = len(deltas)
        seconds = time.perf_counter() - t0
        out[f"{name}_slices_per_s"] = steps / seconds
        if linked:
            partner = tomo[1] if len(tomo) > 1 else None
            out["partner_followed"] = partner is not None and partner.index == round(
                leader.index / (leader.image_count() - 1) * (partner.image_count() - 1))
    return out


def _hang(archive, files: list[Path], repeat: int, label: str, scroll: bool, log) -> dict:
    import pydicom
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    runs = []
    for _ in range(repeat):
        runs.append(open_first_stage(archive, study, scroll=scroll))
        r = runs[-1]
        log(f"  {label}: first stage '{r['stage']}' ({r['viewports']} viewports) painted in {r['seconds']:.3f} s"
            + (f"; scroll {r['one_slices_per_s']:.1f} slices/s alone, {r['linked_slices_per_s']:.1f} linked "
               f"({r['slices']} slices, {r['viewport'][0]}x{r['viewport'][1]})" if scroll else ""))
    out = {"runs": runs, "median_s": statistics.median(r["seconds"] for r in runs)}
    if scroll:
        for key in ("one_slices_per_s", "linked_slices_per_s"):
            out[key] = statistics.median(r[key] for r in runs)
    return out


def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    import benchutil
    import bench_ingest

    from app.store.archive import Archive
    size, (repeat, frames, shape), work = benchutil.prepare(size, SIZES, work, "lightbox-bench-hanging-")
    screening = screening_with_prior(work, log=log)
    tomo = tomosynthesis_study(frames, shape, log=log)
    bench_ingest.warm_page_cache(screening + tomo)
    archive = Archive(work / "home")
    try:
        for f in screening + tomo:
            result = archive.ingest.store_file(f)
            assert result.ok, result.comment
        log(f"hanging benchmark '{size}': {repeat} run(s)")
        report = {"size": size, "tomo_frames": frames, "tomo_size": list(shape),
                  "screening": _hang(archive, screening, repeat, "screening + prior", False, log),
                  "tomosynthesis": _hang(archive, tomo, repeat, "tomosynthesis", True, log)}
    finally:
        archive.close()
    return report


def format_report(r: dict) -> str:
    s, t = r["screening"], r["tomosynthesis"]
    rows, cols = r["tomo_size"]
    return "\n".join([
        f"open a screening study with its prior (8 mammograms 3328x4096, JPEG lossless) -> first stage "
        f"'{s['runs'][0]['stage']}' painted: median {s['median_s']:.3f} s of {len(s['runs'])} (goal <= 1.5 s)",
        f"open a tomosynthesis study (4 volumes of {r['tomo_frames']} frames {cols}x{rows} + 4 synthesized 2D) "
        f"-> first stage '{t['runs'][0]['stage']}' painted: median {t['median_s']:.3f} s (goal <= 1.5 s)",
        f"tomosynthesis scroll in {t['runs'][0]['viewport'][0]}x{t['runs'][0]['viewport'][1]}: "
        f"{t['one_slices_per_s']:.1f} slices/s one viewport, {t['linked_slices_per_s']:.1f} slices/s with the "
        f"pair linked (goal >= 20 linked)",
    ])


def main(argv: list[str] | None = None) -> int:
    import benchutil
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    sys.exit(main())
