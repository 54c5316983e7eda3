"""Retrieve from a PACS (issue 6): `lightbox retrieve` against DCMTK, same study, same Orthanc.

One study of real 512x512 CT images (bench_ingest's, cached) is stored in Orthanc. Then,
alternately, ``repeat`` times each, every run into an empty receiver:
  * C-MOVE: ``lightbox retrieve ORTHANC --study UID`` (the command receives itself, into the
    archive: written durably and indexed) against DCMTK ``movescu`` to a DCMTK ``storescp``
    (files written, nothing indexed);
  * C-GET: ``lightbox retrieve ... --method get`` against DCMTK ``getscu`` (files written).
Each timed from the command's start to its exit. Ratio = DCMTK seconds / Lightbox seconds
(> 1: Lightbox faster). Every run must deliver every image.

Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke 20 images x 1, full 500 x 3.

    python tests/benchmarks/bench_retrieve.py full       BENCH_OUT=r.json for the figures as JSON
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_ingest  # noqa: E402
import benchutil  # noqa: E402
from bench_query import Orthanc  # noqa: E402
from conftest import ROOT, free_port, lightbox  # noqa: E402

SIZES = {"smoke": (20, 1), "full": (500, 3)}
ENV = {**os.environ, "TCP_NODELAY": "1"}


def _lightbox(home: Path, study: str, method: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "retrieve", "ORTHANC", "--study", study,
                           "--method", method, "--json"], capture_output=True, text=True, timeout=3600, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"lightbox retrieve exited {proc.returncode}: {proc.stdout[-600:]} {proc.stderr[-1200:]}")
    return seconds, json.loads(proc.stdout)


def _dcmtk(tool: str, args: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([f"/usr/bin/{tool}", *args], capture_output=True, text=True, timeout=3600, env=ENV)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} exited {proc.returncode}: {proc.stderr[-1200:]}")
    return seconds


def _count(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file())


def _empty(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    import pydicom
    size, (count, repeat), work = benchutil.prepare(size, SIZES, work, "lightbox-bench-retrieve-")
    files = bench_ingest.ensure_images("CT", count, log=log)
    mb = sum(f.stat().st_size for f in files) / 1e6
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    orthanc = Orthanc(work / "orthanc")
    storescp = None
    runs: dict[str, list[dict]] = {"move_lightbox": [], "move_dcmtk": [], "get_lightbox": [], "get_dcmtk": []}
    problems: list[str] = []
    home = work / "home"
    log(f"retrieve benchmark '{size}': {count} CT images ({mb:.1f} MB) from Orthanc, {repeat} run(s) each")
    try:
        orthanc.start()
        orthanc.upload(files, threads=2)
        our_port, dcmtk_port = free_port(), free_port()
        home.mkdir(parents=True, exist_ok=True)
        aet = "LBRETRIEVE"
        for key, value in (("node.aet", aet), ("node.port", our_port), ("node.workers", 1),
                           ("policy.check_calling_ae", "false")):
            lightbox(home, "config", "set", key, str(value))
        lightbox(home, "nodes", "add", "ORTHANC", "--aet", orthanc.aet, "--host", "127.0.0.1", "--port",
                 str(orthanc.port))
        orthanc.add_destination("LIGHTBOX", aet, our_port)
        orthanc.add_destination("DCMTKSCP", "DCMTKSCP", dcmtk_port)
        rx = work / "storescp"
        _empty(rx)
        storescp = subprocess.Popen(["/usr/bin/storescp", "+xa", "-aet", "DCMTKSCP", "-od", str(rx), "-fe", ".dcm",
                                     str(dcmtk_port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=ENV)
        time.sleep(0.5)
        getdir = work / "getscu"
        for rep in range(repeat):
            for op in ("move", "get"):
                order = ("lightbox", "dcmtk") if rep % 2 == 0 else ("dcmtk", "lightbox")
                for who in order:
                    if who == "lightbox":
                        lightbox(home, "delete", "--study", study, "--force", check=False)
                        seconds, job = _lightbox(home, study, op)
                        rows = json.loads(lightbox(home, "ls", "--level", "instance", "--json", "-k",
                                                   f"StudyInstanceUID={study}").stdout)
                        got, note = len(rows), job["message"]
                    elif op == "move":
                        _empty(rx)
                        seconds = _dcmtk("movescu", ["-S", "-aet", "DCMTKSCP", "-aec", orthanc.aet, "-aem",
                                                     "DCMTKSCP", "-k", "QueryRetrieveLevel=STUDY", "-k",
                                                     f"StudyInstanceUID={study}", "127.0.0.1", str(orthanc.port)])
                        deadline = time.monotonic() + 30
                        while _count(rx) < count and time.monotonic() < deadline:
                            time.sleep(0.05)
                        got, note = _count(rx), ""
                    else:
                        _empty(getdir)
                        seconds = _dcmtk("getscu", ["-S", "-aet", "GETSCU", "-aec", orthanc.aet, "-od", str(getdir),
                                                    "-k", "QueryRetrieveLevel=STUDY", "-k",
                                                    f"StudyInstanceUID={study}", "127.0.0.1", str(orthanc.port)])
                        got, note = _count(getdir), ""
                    runs[f"{op}_{who}"].append({"seconds": round(seconds, 3), "images_per_s": round(count / seconds, 1),
                                                "received": got, "note": note})
                    if got != count:
                        problems.append(f"{op} {who} run {rep}: {got} of {count} received")
                    log(f"  {op:4s} {who:8s} {seconds:7.2f} s  {count / seconds:7.1f} images/s  ({got} received)")
    finally:
        if storescp is not None:
            storescp.kill()
        orthanc.stop()
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    return {"size": size, "images": count, "mb": round(mb, 1), "repeat": repeat,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
            "runs": runs, "median_s": {k: round(v, 3) for k, v in med.items()},
            "ratio_move_dcmtk_over_lightbox": round(med["move_dcmtk"] / med["move_lightbox"], 2),
            "ratio_get_dcmtk_over_lightbox": round(med["get_dcmtk"] / med["get_lightbox"], 2),
            "problems": problems}


def format_report(r: dict) -> str:
    n = r["images"]
    m = r["median_s"]
    lines = [f"retrieve {n} CT images ({r['mb']} MB) from Orthanc, median of {r['repeat']} (command start to exit):",
             f"  C-MOVE  lightbox retrieve {m['move_lightbox']:6.2f} s ({n / m['move_lightbox']:6.1f}/s, into the "
             f"archive)  movescu+storescp {m['move_dcmtk']:6.2f} s ({n / m['move_dcmtk']:6.1f}/s)  "
             f"ratio {r['ratio_move_dcmtk_over_lightbox']}",
             f"  C-GET   lightbox retrieve {m['get_lightbox']:6.2f} s ({n / m['get_lightbox']:6.1f}/s)  "
             f"getscu {m['get_dcmtk']:6.2f} s ({n / m['get_dcmtk']:6.1f}/s)  ratio {r['ratio_get_dcmtk_over_lightbox']}"]
    return benchutil.report_text(lines, r["problems"])


def main(argv: list[str] | None = None) -> int:
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
