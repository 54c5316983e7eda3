"""GUI benchmark: is the workstation responsive while its embedded node receives, and how
fast does the patient browser answer over a large archive?

1. Event-loop latency under ingest. The main window runs with its embedded node (threads
   of the GUI process, as in the application). While DCMTK ``storescu`` sends N CT images
   to it, a 10 ms QTimer records how late each tick comes: p50/p99/max lateness. The same
   files go to the headless node (``python -m app node``, worker processes) in the same run:
   the GUI's ingest rate is reported as a ratio of the headless one. Goal: p99 < 50 ms and
   at least 90 % of the headless rate.
2. Browser filtering over S studies (index rows written directly: the browser reads only the
   index). For each search, the time from the keystroke (or the change of a field) to the
   updated list, including the browser's 250 ms typing pause, and the query-and-show time
   without it.

Sizes (``LIGHTBOX_BENCH_SIZE`` or the first argument): smoke = 100 images, 1000 studies
(CI); full = 1000 images, 10000 studies. Run standalone::

    python tests/benchmarks/bench_gui.py full     (needs an X server or QT_QPA_PLATFORM=offscreen)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent.parent))

import bench_ingest  # noqa: E402

SIZES = {"smoke": (100, 1000), "full": (1000, 10000)}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# -- 1. event-loop latency under ingest -------------------------------------------------------
def gui_ingest(files: list[Path], work: Path, log=print) -> dict:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.net.node import Node
    from app.store.archive import Archive
    from app.ui.main import MainWindow
    from tests.conftest import free_port

    app = QApplication.instance() or QApplication([])
    home = work / "gui-home"
    archive = Archive(home)
    archive.settings.set("policy.check_calling_ae", "false")
    archive.settings.set("node.max_pdu", "524288")
    archive.settings.save()
    port = free_port()
    node = Node(archive, aet="LIGHTBOX", port=port, host="127.0.0.1")
    win = MainWindow(archive, node, None)
    win.start_node()
    win.show()
    lateness: list[float] = []
    ticks = {"last": None}
    timer = QTimer()
    timer.setInterval(10)

    def tick() -> None:
        now = time.perf_counter()
        if ticks["last"] is not None:
            lateness.append(max(0.0, now - ticks["last"] - 0.010))
        ticks["last"] = now
    timer.timeout.connect(tick)
    timer.start()
    settle = time.perf_counter() + 0.5
    while time.perf_counter() < settle:
        app.processEvents()
    lateness.clear()
    cmd = [bench_ingest.STORESCU, "-aet", bench_ingest.CALLING_AET, "-aec", "LIGHTBOX", "127.0.0.1", str(port),
           *map(str, files)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=bench_ingest._env())
    while proc.poll() is None:
        app.processEvents()
        time.sleep(0.001)
    seconds = time.perf_counter() - t0
    timer.stop()
    err = proc.stderr.read().decode(errors="replace")
    archive.settle(30)
    from app.store.query import search
    received = len(search(archive.engine, "instance", {}))
    node.stop(grace=2)
    win.close()
    archive.close()
    log(f"  gui       {len(files)} CT in {seconds:.2f} s ({len(files) / seconds:.1f} img/s), "
        f"{len(lateness)} timer ticks")
    return {"seconds": seconds, "images_per_s": len(files) / seconds, "received": received,
            "storescu_rc": proc.returncode, "storescu_err": err[-500:],
            "lateness_ms": {"p50": percentile(lateness, 50) * 1000, "p99": percentile(lateness, 99) * 1000,
                            "max": max(lateness, default=0) * 1000, "ticks": len(lateness)}}


def headless_ingest(files: list[Path], work: Path, log=print) -> dict:
    receiver = bench_ingest.LightboxReceiver(524288, work / "headless-template")
    run_dir = work / "headless"
    run_dir.mkdir(parents=True, exist_ok=True)
    receiver.start(run_dir, parallel=False)
    try:
        seconds, errors = bench_ingest.run_storescu(receiver, [files], run_dir)
        received = receiver.count()
    finally:
        receiver.stop()
    log(f"  headless  {len(files)} CT in {seconds:.2f} s ({len(files) / seconds:.1f} img/s)")
    return {"seconds": seconds, "images_per_s": len(files) / seconds, "received": received, "errors": errors}


# -- 2. browser filtering ---------------------------------------------------------------------
FAMILIES = ("Doe", "Smith", "Müller", "Nguyen", "Garcia", "Kowalski", "Rossi", "Tanaka", "Okafor", "Larsen")
GIVEN = ("Jane", "John", "Anna", "Ali", "Maria", "Wei", "Olga", "Tom", "Ines", "Raj")
MODALITIES = ("CT", "MR", "MG", "CR", "US", "DX")


def fill_index(archive, studies: int) -> None:
    """``studies`` studies (one series, one instance each) written straight into the index."""
    from app.store.index_writer import IndexRecord, index_one
    today = date.today()
    with archive.engine.begin() as conn:
        ids: dict = {}
        for i in range(studies):
            patient_no = i // 2  # two studies per patient
            name = f"{FAMILIES[patient_no % 10]}^{GIVEN[(patient_no // 10) % 10]}"
            pid = f"PID{patient_no:06d}"
            day = (today - timedelta(days=i % 1500)).strftime("%Y%m%d")
            study_uid, series_uid, sop_uid = (f"2.25.{i}1", f"2.25.{i}2", f"2.25.{i}3")
            rec = IndexRecord(
                patient={"PatientName": name, "PatientID": pid, "PatientBirthDate": "19600101", "PatientSex": "F"},
                study={"StudyInstanceUID": study_uid, "StudyDate": day, "StudyTime": "101010",
                       "AccessionNumber": f"ACC{i:07d}", "StudyDescription": f"STUDY {i % 37}",
                       "ReferringPhysicianName": "Referrer^Rita"},
                series={"SeriesInstanceUID": series_uid, "Modality": MODALITIES[i % len(MODALITIES)],
                        "SeriesNumber": "1"},
                instance={"SOPInstanceUID": sop_uid, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7",
                          "InstanceNumber": "1", "TransferSyntaxUID": "1.2.840.10008.1.2.1",
                          "path": f"{study_uid}/{series_uid}/{sop_uid}.dcm", "size": 1})
            index_one(conn, rec, ids)


def browser_filtering(studies: int, work: Path, log=print) -> dict:
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.store.archive import Archive
    from app.ui.main import MainWindow

    app = QApplication.instance() or QApplication([])
    archive = Archive(work / "browse-home")
    t0 = time.perf_counter()
    fill_index(archive, studies)
    log(f"  index of {studies} studies written in {time.perf_counter() - t0:.1f} s")
    win = MainWindow(archive, None, None)
    win.show()
    browser = win.browser
    shown = {"n": None, "at": None}
    browser.studiesShown.connect(lambda n: shown.update(n=n, at=time.perf_counter()))

    def wait_shown(timeout: float = 60.0) -> float:
        deadline = time.perf_counter() + timeout
        while shown["at"] is None and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.0005)
        return shown["at"] or float("nan")

    wait_shown()  # the initial list
    results = []

    def search(label: str, act, typed: bool) -> None:
        times = []
        for _ in range(3):
            browser.name.blockSignals(True)
            browser.name.clear()
            browser.name.blockSignals(False)
            browser.date_preset.blockSignals(True)
            browser.date_preset.setCurrentIndex(0)
            browser.date_preset.blockSignals(False)
            browser.modality.blockSignals(True)
            browser.modality.setCurrentIndex(0)
            browser.modality.blockSignals(False)
            shown.update(n=None, at=None)
            start = time.perf_counter()
            act()
            end = wait_shown()
            times.append(end - start)
        results.append({"search": label, "typed": typed, "rows": shown["n"],
                        "median_ms": statistics.median(times) * 1000})
        log(f"  {label:32} {shown['n']:6} rows  {statistics.median(times) * 1000:7.1f} ms")

    search("name 'Doe' typed", lambda: QTest.keyClicks(browser.name, "Doe"), True)
    search("name 'Ng' typed", lambda: QTest.keyClicks(browser.name, "Ng"), True)
    search("modality MR", lambda: browser.modality.setCurrentText("MR"), False)
    search("date: last 30 days", lambda: browser.date_preset.setCurrentText("Last 30 days"), False)
    search("everything (refresh)", browser.refresh, False)
    win.close()
    archive.close()
    return {"studies": studies, "searches": results}


# -- all --------------------------------------------------------------------------------------
def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    import benchutil
    size, (images, studies), work = benchutil.prepare(size, SIZES, work, "lightbox-bench-gui-")
    files = bench_ingest.ensure_images("CT", images, log=log)
    bench_ingest.warm_page_cache(files)
    log(f"GUI benchmark '{size}': {images} CT images, {studies} studies; work dir {work}")
    headless = headless_ingest(files, work, log)
    gui = gui_ingest(files, work, log)
    browse = browser_filtering(studies, work, log)
    return {"size": size, "images": images, "headless": headless, "gui": gui,
            "gui_vs_headless": gui["images_per_s"] / headless["images_per_s"], "browser": browse}


def format_report(r: dict) -> str:
    lat = r["gui"]["lateness_ms"]
    lines = [
        f"ingest of {r['images']} CT over one association: GUI {r['gui']['images_per_s']:.1f} img/s, "
        f"headless {r['headless']['images_per_s']:.1f} img/s, ratio {r['gui_vs_headless']:.2f}",
        f"GUI event-loop lateness during ingest (10 ms timer, {lat['ticks']} ticks): "
        f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms",
        f"browser over {r['browser']['studies']} studies (keystroke/change -> updated list; typed searches "
        "include the 250 ms typing pause):",
    ]
    for s in r["browser"]["searches"]:
        lines.append(f"  {s['search']:32} {s['rows']:6} rows  {s['median_ms']:7.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import benchutil
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    sys.exit(main())
