"""Send benchmark (issue 6): `lightbox send` against DCMTK `storescu`, same files, same receiver.

One study of real 512x512 CT images (bench_ingest's, cached) is imported into a Lightbox home
(not timed). Then, alternately, ``repeat`` times each:
  * DCMTK storescu sends the files to a DCMTK storescp (one association, TCP_NODELAY);
  * ``lightbox send DEST --study UID`` sends the archived study to the same storescp.
Both are timed from the process start to its exit (what a user or a script waits for); the
send job's own transfer time (job start to its last progress write) is reported beside it.
The storescp writes every file (+xa, -pdu 16384 as in bench_ingest), into /dev/shm where
there is one: half a gigabyte per run written back to this machine's disk stalled the
receiver at random and made either sender's time swing by a factor of two. Every run must
deliver every image. Ratio = storescu seconds / lightbox seconds (> 1: Lightbox faster).

Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke 40 images x 1 run (CI), full 1000 x 3.

    python tests/benchmarks/bench_send.py full        BENCH_OUT=send.json for the figures as JSON
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_ingest  # noqa: E402
import benchutil  # noqa: E402
from conftest import ROOT, lightbox  # noqa: E402

SIZES = {"smoke": (40, 1), "full": (1000, 3)}
MAX_PDU = 16384


def _storescu(files: list[Path], port: int) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([bench_ingest.STORESCU, "-aet", "BENCHSCU", "-aec", "STORESCP", "127.0.0.1", str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "TCP_NODELAY": "1"})
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"storescu exited {proc.returncode}: {proc.stderr[-1500:]}")
    return seconds


def _lightbox_send(home: Path, study: str) -> tuple[float, float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "send", "DEST", "--study", study,
                           "--json"], capture_output=True, text=True, timeout=3600, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"lightbox send exited {proc.returncode}: {proc.stdout[-800:]} {proc.stderr[-1500:]}")
    job = json.loads(proc.stdout)
    started = datetime.fromisoformat(str(job["created_at"]))
    ended = datetime.fromisoformat(str(job["updated_at"]))
    return seconds, (ended - started).total_seconds(), job


def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    size, (count, repeat), work = benchutil.prepare(size, SIZES, work, "lightbox-bench-send-")
    files = bench_ingest.ensure_images("CT", count, log=log)
    mb = sum(f.stat().st_size for f in files) / 1e6
    import pydicom
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    lightbox(home, "import", *map(str, files), timeout=3600)
    receiver = bench_ingest.StorescpReceiver(MAX_PDU)
    runs: dict[str, list] = {"storescu": [], "lightbox": []}
    problems: list[str] = []
    log(f"send benchmark '{size}': {count} CT images ({mb:.1f} MB) to DCMTK storescp, {repeat} run(s) each")
    try:
        receiver.start(_receiver_folder(work), parallel=False)
        lightbox(home, "nodes", "add", "DEST", "--aet", receiver.aet, "--host", "127.0.0.1",
                 "--port", str(receiver.port), "--roles", "echo,store")
        bench_ingest.warm_page_cache(files + sorted((home / "archive").rglob("*.dcm")))
        for rep in range(repeat):
            for who in ("storescu", "lightbox") if rep % 2 == 0 else ("lightbox", "storescu"):
                if who == "storescu":
                    seconds, transfer, note = _storescu(files, receiver.port), None, ""
                else:
                    seconds, transfer, job = _lightbox_send(home, study)
                    note = job["message"]
                delivered = _delivered(receiver, count)
                runs[who].append({"seconds": round(seconds, 3), "images_per_s": round(count / seconds, 1),
                                  "transfer_s": round(transfer, 3) if transfer is not None else None,
                                  "delivered": delivered, "note": note})
                if delivered != count:
                    problems.append(f"{who} run {rep}: storescp holds {delivered} of {count}")
                log(f"  {who:9s} {seconds:7.2f} s  {count / seconds:7.1f} images/s"
                    + (f"  (job transfer {transfer:.2f} s, {count / transfer:.1f} images/s)" if transfer else ""))
                _clear(receiver)
    finally:
        receiver.stop()
    med = {w: statistics.median(r["seconds"] for r in rs) for w, rs in runs.items()}
    transfer = statistics.median(r["transfer_s"] for r in runs["lightbox"])
    return {"size": size, "images": count, "mb": round(mb, 1), "repeat": repeat, "max_pdu": MAX_PDU,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
            "runs": runs, "median_s": {w: round(s, 3) for w, s in med.items()},
            "lightbox_job_transfer_s": round(transfer, 3),
            "ratio_storescu_over_lightbox": round(med["storescu"] / med["lightbox"], 2),
            "ratio_transfer_only": round(med["storescu"] / transfer, 2),
            "problems": problems}


def _receiver_folder(work: Path) -> Path:
    """Where storescp writes: memory when the machine has it to spare (module docstring)."""
    import shutil
    import tempfile
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 4 * 10 ** 9:
        folder = Path(tempfile.mkdtemp(prefix="lightbox-bench-send-", dir=shm))
        import atexit
        atexit.register(shutil.rmtree, folder, True)
        return folder
    return work / "rx"


def _delivered(receiver, count: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while receiver.count() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return receiver.count()


def _clear(receiver) -> None:
    for p in receiver.out.iterdir():
        if p.is_file():
            p.unlink()


def format_report(r: dict) -> str:
    lines = [f"send {r['images']} CT images ({r['mb']} MB) to DCMTK storescp, pdu {r['max_pdu']}, "
             f"median of {r['repeat']}:",
             f"  storescu        {r['median_s']['storescu']:7.2f} s  {r['images'] / r['median_s']['storescu']:7.1f} images/s",
             f"  lightbox send   {r['median_s']['lightbox']:7.2f} s  {r['images'] / r['median_s']['lightbox']:7.1f} images/s"
             f"  (the job's transfer alone {r['lightbox_job_transfer_s']:.2f} s)",
             f"  ratio storescu/lightbox {r['ratio_storescu_over_lightbox']} (command to exit), "
             f"{r['ratio_transfer_only']} (transfer only)"]
    return benchutil.report_text(lines, r["problems"])


def main(argv: list[str] | None = None) -> int:
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
