"""Film printing benchmark: a 14x17 inch portrait film of 20 CT images (5 rows of 4) composed
at the printer's resolution and sent to DCMTK ``dcmprscp``, composition and transfer apart,
and the transfer rate beside the loopback bandwidth measured in the same run.

The printer is the real DCMTK ``dcmprscp`` (../shared/peers/peers/print_scp.sh with
TCP_NODELAY=1: Basic Grayscale Print Management, 12-bit, every image box stored as a Hardcopy
Grayscale image HG* under its db folder). 20 synthetic CT images (512x512 int16, Rescale Slope/Intercept, a soft-tissue
window 40/400) are generated in memory (not timed). Then ``repeat`` times:
  (a) composition: ``app.film.compose.print_values`` (12 bits, the file's window) for the 20
      images, then ``compose`` onto the page of ``page_shape("14INX17IN", "PORTRAIT", dpi)``,
      layout 5 rows x 4 columns with a 2 mm gap; timed in process;
  (b) transfer: ``app.net.printing.print_page`` of that page (STANDARD\\1,1) on the printer,
      with its own per-step clock: connect, session (N-GET, N-CREATEs), image (the N-SET
      carrying the page: encoded by us, received, decoded and written to disk by dcmprscp,
      answered), print (N-ACTION), cleanup (N-DELETEs, release), total; transfer rate = page
      bytes / image seconds (and / total seconds); the newest HG* the printer stored must
      hold the page pixel for pixel;
  (c) loopback: the same number of bytes through one TCP connection on 127.0.0.1 (sendall,
      a receiver thread reading with recv_into into a preallocated buffer, one byte back
      when all arrived), median of 5.
Figures: medians of ``repeat``; ratio = transfer rate / loopback rate (1: the page goes as
fast as the machine moves bytes between two sockets). MB = 10**6 bytes.

Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke 100 dpi (1700x1400) x 1 run (CI),
full 300 dpi (5100x4200, the printer's resolution) x 3.

    python tests/benchmarks/bench_print.py full      BENCH_OUT=print.json for the figures as JSON

A temporary work folder is removed at the end unless LIGHTBOX_BENCH_KEEP=1.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import benchutil  # noqa: E402
from conftest import ROOT, free_port  # noqa: E402

SCRIPT = ROOT.parent / "shared" / "peers" / "peers" / "print_scp.sh"


@dataclass(frozen=True)
class Size:
    dpi: int      # the printer's resolution: the page in pixels
    repeat: int   # runs (median)


SIZES = {"smoke": Size(100, 1), "full": Size(300, 3)}
FILM, ORIENTATION = "14INX17IN", "PORTRAIT"
ROWS, COLUMNS = 5, 4        # "4x5": 5 rows of 4 images on the portrait film
IMAGES = ROWS * COLUMNS
BITS = 12
GAP_MM = 2.0
LOOPBACK_REPEAT = 5
PRINTER_AET = "PRINTSCP"


# -- the images -------------------------------------------------------------------------------------
def ct_images(n: int = IMAGES, size: int = 512, seed: int = 7) -> list[tuple[object, np.ndarray]]:
    """``n`` CT-like (header, stored int16) pairs: a body ellipse of soft tissue with fat,
    bone and noise, air around it and padding (-2000) outside the field of view; slope 1,
    intercept -1024, window 40/400."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    fov = (yy - c) ** 2 + (xx - c) ** 2 <= (size / 2) ** 2
    study, series = generate_uid(), generate_uid()
    out = []
    for i in range(n):
        a, b = size * (0.40 + 0.02 * np.sin(i)), size * (0.30 + 0.02 * np.cos(i))
        body = ((xx - c) / a) ** 2 + ((yy - c) / b) ** 2 <= 1
        inner = ((xx - c) / (a * 0.9)) ** 2 + ((yy - c) / (b * 0.9)) ** 2 <= 1
        spine = ((xx - c) / (size * 0.05)) ** 2 + ((yy - c - b * 0.6) / (size * 0.05)) ** 2 <= 1
        hu = np.full((size, size), -1000.0, np.float32)
        hu[body] = -100.0                       # fat
        hu[inner] = 40.0                        # soft tissue
        hu[spine] = 700.0 + 10 * i              # bone
        hu += rng.normal(0, 12, hu.shape).astype(np.float32)
        stored = np.rint(hu + 1024).astype(np.int16)
        stored[~fov] = -2000
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.Modality, ds.InstanceNumber = "CT", i + 1
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelPaddingValue = -2000
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = stored.tobytes()
        out.append((ds, stored))
    return out


def write_files(images, folder: Path) -> list[str]:
    """The images as DICOM files: what the film composer reads."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (ds, _stored) in enumerate(images):
        ds = ds.copy()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PatientName, ds.PatientID, ds.StudyDate = "Bench^Film", "BENCH1", "20261127"
        path = folder / f"ct{i:02}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(str(path))
    return paths


def render_sheet(paths: list[str], dpi: int) -> tuple[np.ndarray, float]:
    """The composer's own path: the film sheet rendered from the files (read, decoded,
    windowed, placed, with the patient/study header); (page, seconds)."""
    from app.film import sheet
    sheet._read.cache_clear()  # read the files every time, as a new film does
    t0 = time.perf_counter()
    page = sheet.render(sheet.Sheet(f"{ROWS}x{COLUMNS}", [sheet.Cell(p) for p in paths]),
                        sheet.FilmFormat(FILM, ORIENTATION, dpi, BITS))
    return page, time.perf_counter() - t0


# -- (a) composition ----------------------------------------------------------------------------------
def compose_page(images, shape: tuple[int, int], gap: int) -> tuple[np.ndarray, float, float]:
    """(page, seconds of print_values for every image, seconds of compose)."""
    from app.film.compose import compose, print_values
    t0 = time.perf_counter()
    values = [print_values(header, stored, bits=BITS) for header, stored in images]
    t1 = time.perf_counter()
    page = compose(values, shape, ROWS, COLUMNS, bits=BITS, gap=gap)
    return page, t1 - t0, time.perf_counter() - t1


# -- (b) the printer -------------------------------------------------------------------------------
class Printer:
    """dcmprscp through print_scp.sh on a free port, stopped with the same script; TCP_NODELAY=1
    (DCMTK reads it from the environment) as for the other benchmarks' peers, unless the
    environment says otherwise: with Nagle on, each of its small responses waits ~40 ms for
    our delayed ACK (session, print and cleanup ~0.27 s instead of ~0.01 s)."""

    def __init__(self, folder: Path):
        if not SCRIPT.exists():
            raise RuntimeError(f"the print SCP script is missing: {SCRIPT}")
        self.folder, self.port = folder, free_port()
        env = {**os.environ, "PRINT_AET": PRINTER_AET, "TCP_NODELAY": os.environ.get("TCP_NODELAY", "1")}
        run = subprocess.run(["bash", str(SCRIPT), str(self.port), str(folder)], capture_output=True, text=True,
                             timeout=120, env=env)
        if run.returncode != 0:
            raise RuntimeError(f"print_scp.sh failed ({run.returncode}): {run.stderr[-1500:]}")
        self.db = folder / "db"

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.folder)], capture_output=True, timeout=60)

    def newest_image(self) -> Path | None:
        files = sorted(self.db.glob("HG*"), key=lambda f: f.stat().st_mtime_ns)
        return files[-1] if files else None


def negotiated_pdu(settings, node) -> int | None:
    """The largest PDU the printer accepts (what the page is cut into): one association with
    the same presentation context as print_page, released at once."""
    from pynetdicom import build_context

    from app.net.printing import GRAYSCALE_META
    from app.net.remote import open_association, scu_ae
    assoc = open_association(scu_ae(settings), settings, node, [build_context(GRAYSCALE_META)])
    try:
        return assoc.acceptor.maximum_length
    finally:
        assoc.release()


def check_printed(printer: Printer, page: np.ndarray, before: set[str]) -> dict:
    """The printer's newest Hardcopy Grayscale image against the page; the new HG/SP files
    removed afterwards (tens of MB each at 300 dpi)."""
    import pydicom
    new = sorted(set(f.name for f in printer.db.glob("HG*")) - before)
    newest = printer.newest_image()
    out: dict = {"new_hg_files": len(new), "hg": newest.name if newest else None}
    if newest is None:
        return {**out, "match": False, "why": "no HG* file"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hg = pydicom.dcmread(newest)
        pixels = hg.pixel_array
    out.update(rows=int(hg.Rows), columns=int(hg.Columns), bits_stored=int(hg.BitsStored),
               match=bool((hg.Rows, hg.Columns) == page.shape and np.array_equal(pixels, page)))
    for f in list(printer.db.glob("HG*")) + list(printer.db.glob("SP*")):
        f.unlink(missing_ok=True)
    return out


# -- (c) loopback -----------------------------------------------------------------------------------
def loopback_seconds(data: bytes, repeat: int = LOOPBACK_REPEAT) -> list[float]:
    """Seconds to move ``data`` through one TCP connection on 127.0.0.1, ``repeat`` times:
    from the sendall to the receiver's one-byte answer once every byte is in its buffer."""
    n = len(data)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        errors: list[BaseException] = []

        def receive():
            try:
                conn, _ = server.accept()
                with conn:
                    buf = bytearray(n)
                    view = memoryview(buf)
                    for _ in range(repeat):
                        got = 0
                        while got < n:
                            k = conn.recv_into(view[got:], n - got)
                            if not k:
                                raise ConnectionError("the sender closed early")
                            got += k
                        conn.sendall(b"\x01")
            except BaseException as exc:  # noqa: BLE001 - reported by the sender
                errors.append(exc)

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        times = []
        with socket.create_connection(("127.0.0.1", server.getsockname()[1])) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(repeat):
                t0 = time.perf_counter()
                s.sendall(data)
                if s.recv(1) != b"\x01":
                    raise ConnectionError(f"loopback receiver failed: {errors}")
                times.append(time.perf_counter() - t0)
        thread.join(10)
        if errors:
            raise errors[0]
    return times


# -- the run ----------------------------------------------------------------------------------------
def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    own_work = work is None
    size, sz, work = benchutil.prepare(size, SIZES, work, "lightbox-bench-print-")
    try:
        return _run(size, sz, work, log)
    finally:
        if own_work and not os.environ.get("LIGHTBOX_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def _mbps(nbytes: int, seconds: float) -> float:
    return round(nbytes / seconds / 1e6, 1) if seconds > 0 else 0.0


def _run(size: str, sz: Size, work: Path, log) -> dict:
    from app.film.compose import MM_PER_INCH, page_shape
    from app.net.printing import Film, print_page
    from app.store.archive import Archive
    from app.store.nodes import RemoteNode, add_node, get_node

    started = time.time()
    shape = page_shape(FILM, ORIENTATION, sz.dpi)
    gap = max(1, round(GAP_MM / MM_PER_INCH * sz.dpi))
    t0 = time.perf_counter()
    images = ct_images()
    paths = write_files(images, work / "ct")
    generate_s = time.perf_counter() - t0
    log(f"print benchmark '{size}': {FILM} {ORIENTATION} at {sz.dpi} dpi = {shape[1]}x{shape[0]} pixels, "
        f"{ROWS} rows x {COLUMNS} columns, {sz.repeat} run(s); work dir {work}")
    problems: list[str] = []
    runs: list[dict] = []
    printer = Printer(work / "printer")
    archive = Archive(work / "home")
    try:
        add_node(archive.engine, RemoteNode("CAMERA", PRINTER_AET, "127.0.0.1", printer.port, ("print",)))
        node = get_node(archive.engine, "CAMERA")
        settings = archive.settings
        pdu = negotiated_pdu(settings, node)
        log(f"  dcmprscp on port {printer.port}; it accepts PDUs of {pdu} bytes; our node.max_pdu "
            f"{settings['node.max_pdu']} (what we receive)")
        for rep in range(sz.repeat):
            sheet_page, sheet_s = render_sheet(paths, sz.dpi)
            if sheet_page.shape != shape:
                problems.append(f"run {rep}: the film sheet is {sheet_page.shape}, not {shape}")
            page, values_s, compose_s = compose_page(images, shape, gap)
            nbytes = page.size * 2  # 16 bits allocated, 12 stored
            before = {f.name for f in printer.db.glob("HG*")}
            try:
                printed = print_page(settings, node, page, Film(size=FILM, orientation=ORIENTATION))
            except Exception as exc:  # noqa: BLE001 - reported
                problems.append(f"run {rep}: print failed: {type(exc).__name__}: {exc}")
                log(f"  run {rep}: print failed: {type(exc).__name__}: {exc}")
                continue
            seconds = {k: round(v, 4) for k, v in printed.seconds.items()}
            check = check_printed(printer, page, before)
            if not check["match"] or check["new_hg_files"] != 1:
                problems.append(f"run {rep}: the printer's image is not the page ({check})")
            if printed.warnings:
                problems.append(f"run {rep}: warnings {printed.warnings}")
            loop = loopback_seconds(page.tobytes())
            loop_s = statistics.median(loop)
            r = {"sheet_s": round(sheet_s, 4), "print_values_s": round(values_s, 4), "compose_s": round(compose_s, 4),
                 "composition_s": round(values_s + compose_s, 4), "seconds": seconds, "bytes": nbytes,
                 "image_mb_s": _mbps(nbytes, seconds["image"]), "total_mb_s": _mbps(nbytes, seconds["total"]),
                 "loopback_s": [round(t, 4) for t in loop], "loopback_mb_s": _mbps(nbytes, loop_s),
                 "printer_status": printed.printer_status, "check": check}
            runs.append(r)
            log(f"  run {rep}: composition {r['composition_s']:.3f} s (print_values {values_s:.3f}, compose "
                f"{compose_s:.3f}); print total {seconds['total']:.3f} s, page N-SET {seconds['image']:.3f} s "
                f"({r['image_mb_s']} MB/s); loopback {r['loopback_mb_s']} MB/s; pixels "
                f"{'match' if check['match'] else 'DIFFER'}")
    finally:
        archive.close()
        printer.stop()

    def med(get) -> float | None:
        return round(statistics.median(get(r) for r in runs), 4) if runs else None

    nbytes = shape[0] * shape[1] * 2
    steps = {k: med(lambda r, k=k: r["seconds"][k]) for k in ("connect", "session", "image", "print", "cleanup",
                                                                "total")} if runs else {}
    image_mb_s = med(lambda r: r["image_mb_s"])
    loop_mb_s = med(lambda r: r["loopback_mb_s"])
    return {
        "size": size, "dpi": sz.dpi, "repeat": sz.repeat,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "loadavg_1m": round(os.getloadavg()[0], 2)},
        "printer": f"DCMTK dcmprscp (print_scp.sh, 12-bit, HG* per image box), AE {PRINTER_AET}, "
                   f"TCP_NODELAY={os.environ.get('TCP_NODELAY', '1')}",
        "pdu": {"printer_accepts": pdu, "node_max_pdu": settings["node.max_pdu"]},
        "page": {"film": FILM, "orientation": ORIENTATION, "shape": list(shape), "bits": BITS, "bytes": nbytes,
                 "layout": f"{ROWS} rows x {COLUMNS} columns", "images": IMAGES, "gap_px": gap},
        "generate_s": round(generate_s, 3),
        "composition": {"print_values_s": med(lambda r: r["print_values_s"]),
                        "compose_s": med(lambda r: r["compose_s"]), "seconds": med(lambda r: r["composition_s"]),
                        "sheet_from_files_s": med(lambda r: r["sheet_s"])},
        "transfer": {"seconds": steps, "image_mb_s": image_mb_s, "total_mb_s": med(lambda r: r["total_mb_s"])},
        "loopback": {"mb_s": loop_mb_s, "repeat": LOOPBACK_REPEAT},
        "ratio_transfer_over_loopback": round(image_mb_s / loop_mb_s, 4) if runs and loop_mb_s else None,
        "pixels_match": [r["check"]["match"] for r in runs],
        "runs": runs,
        "duration_s": round(time.time() - started, 1),
        "problems": problems,
    }


def format_report(r: dict) -> str:
    p, c, t = r["page"], r["composition"], r["transfer"]
    lines = [f"film print: {p['film']} {p['orientation'].lower()} at {r['dpi']} dpi = {p['shape'][1]}x{p['shape'][0]} "
             f"pixels, {p['bits']} bits ({p['bytes'] / 1e6:.1f} MB), {p['images']} CT 512x512 in "
             f"{p['layout']} (gap {p['gap_px']} px), median of {r['repeat']}; {r['printer']}; PDUs of "
             f"{r['pdu']['printer_accepts']} bytes (the printer's), node.max_pdu {r['pdu']['node_max_pdu']}"]
    if c["seconds"] is None:
        lines.append("  no run printed (see problems)")
        return benchutil.report_text(lines, r["problems"])
    s = t["seconds"]
    lines += [
        f"  (a) composition {c['seconds']:.3f} s: print_values x{p['images']} {c['print_values_s']:.3f} s, "
        f"compose {c['compose_s']:.3f} s; the composer's film sheet from the {p['images']} files (read, decode, "
        f"window, place, header) {c['sheet_from_files_s']:.3f} s",
        f"  (b) transfer total {s['total']:.3f} s ({t['total_mb_s']} MB/s): connect {s['connect']:.3f}, "
        f"session {s['session']:.3f}, page N-SET {s['image']:.3f} ({t['image_mb_s']} MB/s), "
        f"print {s['print']:.3f}, cleanup {s['cleanup']:.3f}",
        f"  (c) loopback TCP {r['loopback']['mb_s']} MB/s; ratio page N-SET / loopback "
        f"{r['ratio_transfer_over_loopback']}",
        f"  compose + print {c['seconds'] + s['total']:.3f} s; printer's image equals the page: "
        f"{', '.join('yes' if m else 'NO' for m in r['pixels_match'])}",
    ]
    return benchutil.report_text(lines, r["problems"])


if __name__ == "__main__":
    sys.exit(benchutil.main(run_benchmark, format_report))
