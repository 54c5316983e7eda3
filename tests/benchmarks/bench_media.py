"""Media benchmark (issue 10): export of a set of studies to ISO images with STD-GEN-CD and
STD-GEN-DVD-J2K against DCMTK ``dcmmkdir`` + ``genisoimage`` (and GDCM ``gdcmconv --j2k``
for the compression), and the import of those media against the import of the same files
from a folder.

Data (generated in the work folder, not timed): ``patients`` patients, each with a CT study
(one axial series of ``ct`` slices 512x512, 12 bits in 16: body, fat, lungs with vessels,
heart, aorta, spine, ribs, table and noise, so JPEG 2000 has work to do) and a screening
mammography study (``mg`` Digital Mammography For Presentation images of 2294x1914, 12 bits:
breast tissue with coarse and fine texture and noise), all Part 10 in Explicit VR Little
Endian. MB = 10**6 bytes; MB/s = input bytes / wall-clock seconds.

  (1) STD-GEN-CD: ``app.media.export.export`` (icons None) of every instance to ISO images
      (CD-R 80 min each: the set is split into volumes by the exporter, studies kept whole);
      this includes reading each file through pydicom (re-encoding it where it changes), its
      directory records and the DICOMDIR (app.media.dicomdir), the ISO 9660 image (pycdlib)
      and the read-back verification, whose share
      is measured apart (as are the staging and the ISO writing: the exporter's functions
      wrapped with a clock). Peer, the same volumes (the exporter's own ``plan``): each
      file copied into an ISO-compliant tree ``DICOM/Snnnn/IMnnnnnn``, ``dcmmkdir
      --general-purpose`` (STD-GEN-CD) over it, ``genisoimage -J`` (ISO 9660 level 1 +
      Joliet, as our images) into one image per volume. Ratio = Lightbox MB/s / DCMTK MB/s.
      At full size both run 3 times, in turn, and the median run of each is reported.
      The same export is timed once more with icon images of 64x64 in the DICOMDIR
      (dcmmkdir's ``+X`` is not used: no peer figure).
  (2) STD-GEN-DVD-J2K: the same export with JPEG 2000 lossless (one DVD). Peer: ``gdcmconv
      --j2k`` per file into the tree, ``dcmmkdir --general-dvd-j2k``, ``genisoimage``.
      Reported: MB/s, the ratio, and the size of the files written / the input size on both
      sides. A sample of Lightbox's files (and of GDCM's) is decoded from the medium and
      must equal the original pixels.
  (3) Import: a fresh archive imports every volume of (1) (``open_medium`` +
      ``import_medium``, the ISO read with pycdlib), another fresh archive the original
      files from their folder (``collect`` + ``import_paths``); images/s and the ratio
      medium / folder.

Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke 1 patient, 24 CT + 1 mammogram
(21 MB, one volume); full 4 patients, 440 CT + 4 mammograms each (1.07 GB: two CDs).

    python tests/benchmarks/bench_media.py full      BENCH_OUT=media.json for the figures as JSON

LIGHTBOX_BENCH_PROFILE=1 also profiles one STD-GEN-CD export (cProfile, top functions by
own time in the report). A temporary work folder is removed at the end unless
LIGHTBOX_BENCH_KEEP=1.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_ingest  # noqa: E402
import benchutil  # noqa: E402
import mammo_samples  # noqa: E402


@dataclass(frozen=True)
class Size:
    patients: int
    ct: int  # CT slices in each patient's CT study
    mg: int  # mammograms in each patient's mammography study


SIZES = {"smoke": Size(1, 24, 1), "full": Size(4, 440, 4)}
CD_RUNS = {"smoke": 1, "full": 3}  # STD-GEN-CD and its peer take seconds: a median
MG_SHAPE = (2294, 1914)
CT_SIZE = 512
DCMMKDIR = shutil.which("dcmmkdir") or "/usr/bin/dcmmkdir"
GENISOIMAGE = shutil.which("genisoimage") or "/usr/bin/genisoimage"
GDCMCONV = shutil.which("gdcmconv") or "/usr/bin/gdcmconv"
FILESET_ID = "LIGHTBOX"
SAMPLE_CT, SAMPLE_MG = 16, 2  # instances decoded from each J2K medium for the lossless check
MG_VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))


@dataclass(frozen=True)
class Source:
    """One generated file."""
    path: Path
    sop_class: str
    sop_instance: str
    study: str
    series: str
    kind: str  # CT | MG
    size: int


# -- data -------------------------------------------------------------------------------------------
def _disc(img: np.ndarray, cy: float, cx: float, ry: float, rx: float, value: float) -> None:
    """Set an ellipse of ``img`` to ``value``, touching only its bounding box."""
    rows, cols = img.shape
    y0, y1 = max(0, int(cy - ry) - 1), min(rows, int(cy + ry) + 2)
    x0, x1 = max(0, int(cx - rx) - 1), min(cols, int(cx + rx) + 2)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    img[y0:y1, x0:x1][inside] = value


def ct_pixels(patient: int, number: int, slices: int, size: int = CT_SIZE) -> np.ndarray:
    """An axial chest slice in stored values (HU + 1024, 12 bits): air, a body of fat and
    soft tissue, lungs with vessels, heart with contrast, aorta, a vertebra, ribs, the
    table, and quantum noise (sd 10 HU)."""
    rng = np.random.default_rng((patient, number))
    t = number / max(1, slices)
    c = size / 2
    hu = np.full((size, size), -1000.0, np.float32)
    a, b = size * (0.44 + 0.01 * patient), size * (0.34 + 0.01 * np.sin(t * 3))
    _disc(hu, c, c, b, a, -90.0)                                     # subcutaneous fat
    _disc(hu, c, c, b * 0.9, a * 0.92, 40.0)                         # soft tissue
    lung_r = size * (0.12 + 0.05 * np.sin(np.pi * t))
    for side in (-1, 1):                                             # lungs
        _disc(hu, c - size * 0.02, c + side * size * 0.19, size * 0.22, lung_r, -850.0)
    for _ in range(40):                                              # pulmonary vessels
        side = rng.choice((-1, 1))
        y = c - size * 0.02 + rng.uniform(-0.8, 0.8) * size * 0.2
        x = c + side * size * 0.19 + rng.uniform(-0.8, 0.8) * lung_r
        r = rng.uniform(1.5, 4.5)
        _disc(hu, y, x, r, r, rng.uniform(-100, 60))
    heart = size * (0.10 + 0.03 * np.sin(np.pi * t))
    _disc(hu, c + size * 0.03, c - size * 0.04, heart, heart * 1.2, 45.0)         # myocardium
    _disc(hu, c + size * 0.02, c - size * 0.05, heart * 0.6, heart * 0.7, 180.0)  # contrast
    _disc(hu, c + size * 0.12, c + size * 0.05, size * 0.028, size * 0.028, 250.0)  # aorta
    spine_y = c + b * 0.72
    _disc(hu, spine_y, c, size * 0.05, size * 0.05, 900.0)           # cortical bone
    _disc(hu, spine_y, c, size * 0.042, size * 0.042, 280.0)         # cancellous bone
    _disc(hu, spine_y + size * 0.07, c, size * 0.02, size * 0.012, 700.0)  # spinous process
    for k in range(12):                                              # ribs
        ang = np.pi * (0.15 + 0.7 * k / 11) + (np.pi if k % 2 else 0)
        _disc(hu, c + np.sin(ang) * b * 0.86, c + np.cos(ang) * a * 0.88, size * 0.012, size * 0.02, 750.0)
    hu[int(c + b + size * 0.04):int(c + b + size * 0.06), int(size * 0.1):int(size * 0.9)] = 150.0  # table
    hu += rng.normal(0.0, 10.0, hu.shape).astype(np.float32)
    return np.clip(np.rint(hu + 1024), 0, 4095).astype("<u2")


def _upsampled(rng, shape: tuple[int, int], step: int) -> np.ndarray:
    from PIL import Image
    rows, cols = shape
    small = rng.normal(0.0, 1.0, (max(2, rows // step), max(2, cols // step))).astype(np.float32)
    return np.asarray(Image.fromarray(small, "F").resize((cols, rows), Image.BICUBIC), np.float32)


def mg_pixels(patient: int, number: int, laterality: str, view: str, shape=MG_SHAPE, bits: int = 12) -> np.ndarray:
    """The breast of ``mammo_samples.breast_pixels`` with parenchymal texture (coarse and
    fine), a skin-line fall-off and noise."""
    rng = np.random.default_rng((patient, 1000 + number))
    row, _col = mammo_samples.standard_orientation(laterality, view)
    base = mammo_samples.breast_pixels(shape, row, bits).astype(np.float32)
    inside = base > base.min()
    img = base + inside * (_upsampled(rng, shape, 48) * 260 + _upsampled(rng, shape, 6) * 90)
    img += rng.normal(0.0, 12.0, shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 2 ** bits - 1).astype("<u2")


def generate(folder: Path, sz: Size, log) -> list[Source]:
    """The studies as Part 10 files under ``folder``; the list in study, series, image order."""
    uid = bench_ingest._uid
    out: list[Source] = []
    for k in range(1, sz.patients + 1):
        name, pid = f"Media^Patient{k}", f"MEDIA{k:03}"
        ct_study, ct_series = uid("media", k, "ct-study"), uid("media", k, "ct-series")
        (folder / f"P{k}" / "CT").mkdir(parents=True, exist_ok=True)
        for n in range(1, sz.ct + 1):
            ds = bench_ingest.ct_dataset(n, rows=8, cols=8)  # the header; our own pixels below
            ds.Rows = ds.Columns = CT_SIZE
            ds.PixelData = ct_pixels(k, n, sz.ct).tobytes()
            ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = name, pid, "19650412", "F"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = ct_study, ct_series
            ds.SOPInstanceUID = uid("media", k, "ct", n)
            ds.FrameOfReferenceUID = uid("media", k, "ct-for")
            ds.AccessionNumber, ds.StudyID = f"CT{k:04}", f"{k}1"
            path = folder / f"P{k}" / "CT" / f"CT_{n:05}.dcm"
            bench_ingest.write_part10(ds, path)
            out.append(Source(path, str(ds.SOPClassUID), ds.SOPInstanceUID, ct_study, ct_series, "CT",
                              path.stat().st_size))
        mg_study, mg_series = uid("media", k, "mg-study"), uid("media", k, "mg-series")
        (folder / f"P{k}" / "MG").mkdir(parents=True, exist_ok=True)
        for n in range(1, sz.mg + 1):
            lat, view = MG_VIEWS[(n - 1) % len(MG_VIEWS)]
            ds = mammo_samples.mammogram(lat, view, study=mg_study, patient=pid, size=(8, 8), bits=12,
                                         series=mg_series)
            ds.Rows, ds.Columns = MG_SHAPE
            ds.PixelData = mg_pixels(k, n, lat, view).tobytes()
            ds.PatientName, ds.PatientBirthDate = name, "19650412"
            ds.SOPInstanceUID, ds.InstanceNumber = uid("media", k, "mg", n), n
            ds.AccessionNumber, ds.StudyID = f"MG{k:04}", f"{k}2"
            path = folder / f"P{k}" / "MG" / f"MG_{n:03}.dcm"
            bench_ingest.write_part10(ds, path)
            out.append(Source(path, str(ds.SOPClassUID), ds.SOPInstanceUID, mg_study, mg_series, "MG",
                              path.stat().st_size))
        log(f"  patient {k}: {sz.ct} CT + {sz.mg} MG written")
    return out


def _items(sources: list[Source]):
    from app.media.export import Item
    return [Item(str(s.path), s.sop_class, s.sop_instance, s.study, s.series) for s in sources]


def volumes_of(sources: list[Source], capacity: int) -> list[list[Source]]:
    """The volumes the exporter's ``plan`` makes of these files (sizes of the input, which
    re-encoding changes by a few bytes a file): the peer gets the same split."""
    from app.media.export import DICOMDIR_MARGIN, Item, Staged, plan
    by_uid = {s.sop_instance: s for s in sources}
    staged = [Staged(Item(str(s.path), s.sop_class, s.sop_instance, s.study, s.series), s.path, s.size,
                     s.sop_instance, records=[], sha256="") for s in sources]  # plan needs only sizes
    return [[by_uid[st.sop_instance] for st in vol] for vol in plan(staged, int(capacity * (1 - DICOMDIR_MARGIN)))]


def warm(sources: list[Source]) -> None:
    bench_ingest.warm_page_cache([s.path for s in sources])


# -- Lightbox ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def phase_clock():
    """Seconds spent in the exporter's staging (read, convert, write each file), ISO writing
    and read-back verification: its module functions wrapped for the duration."""
    from app.media import export as ex
    from app.media import verify as vf
    times = {"stage": 0.0, "iso": 0.0, "verify": 0.0}

    def clocked(fn, key):
        def inner(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[key] += time.perf_counter() - t0
        return inner
    saved = ex._stage, ex._write_iso, vf.verify
    ex._stage, ex._write_iso, vf.verify = clocked(ex._stage, "stage"), clocked(ex._write_iso, "iso"), \
        clocked(vf.verify, "verify")
    try:
        yield times
    finally:
        ex._stage, ex._write_iso, vf.verify = saved


def lightbox_export(sources: list[Source], profile: str, destination: Path, icons: int | None) -> dict:
    from app.media.export import ExportOptions, export
    destination.parent.mkdir(parents=True, exist_ok=True)
    items = _items(sources)
    warm(sources)
    with phase_clock() as phases:
        t0 = time.perf_counter()
        report = export(items, ExportOptions(profile, destination, fileset_id=FILESET_ID, icons=icons))
        seconds = time.perf_counter() - t0
    in_bytes = sum(s.size for s in sources)
    other = seconds - sum(phases.values())
    return {"profile": profile, "icons": icons, "seconds": round(seconds, 3), "mb_s": _mbps(in_bytes, seconds),
            "mb_s_without_verify": _mbps(in_bytes, seconds - phases["verify"]),
            "phases_s": {"stage": round(phases["stage"], 3), "dicomdir": round(other, 3), "iso": round(phases["iso"], 3),
                         "verify": round(phases["verify"], 3)},
            "volumes": [str(v) for v in report.volumes], "volume_count": len(report.volumes),
            "iso_bytes": sum(Path(v).stat().st_size for v in report.volumes),
            "exported": report.exported, "file_bytes": report.bytes,
            "size_fraction": round(report.bytes / in_bytes, 4),
            "refused": report.refused[:5], "warnings": report.warnings[:5], "ok": report.ok,
            "verified": [v.summary() for v in report.verified]}


def profile_export(sources: list[Source], destination: Path, top: int = 15) -> list[dict]:
    """One STD-GEN-CD export under cProfile: the functions with the most own time."""
    import cProfile
    import pstats

    from app.media.export import ExportOptions, export
    warm(sources)
    prof = cProfile.Profile()
    prof.enable()
    export(_items(sources), ExportOptions("STD-GEN-CD", destination, fileset_id=FILESET_ID, icons=None))
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, fn), (_cc, calls, tt, ct, _callers) in stats.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({fn})", "calls": calls, "own_s": round(tt, 3),
                     "cumulative_s": round(ct, 3)})
    return sorted(rows, key=lambda r: -r["own_s"])[:top]


# -- DCMTK / GDCM -----------------------------------------------------------------------------------
def _run(cmd: list[str], **kwargs) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-800:]}")


def peer_export(sources: list[Source], volumes: list[list[Source]], work: Path, *, j2k: bool) -> dict:
    """Per volume: the files copied (or ``gdcmconv --j2k``) into TREE/DICOM/Snnnn/IMnnnnnn,
    ``dcmmkdir`` over the tree, ``genisoimage`` of the tree; seconds of each step summed."""
    studies = {uid: i for i, uid in enumerate(dict.fromkeys(s.study for s in sources), 1)}
    steps = {"files": 0.0, "dcmmkdir": 0.0, "genisoimage": 0.0}
    isos, out_bytes, trees = [], 0, []
    warm(sources)
    t_all = time.perf_counter()
    for n, volume in enumerate(volumes, 1):
        tree = work / f"{'j2k' if j2k else 'cd'}-tree{n}"
        iso = work / f"{'j2k' if j2k else 'cd'}-dcmtk-{n}.iso"
        counters: dict[str, int] = {}
        t0 = time.perf_counter()
        for s in volume:
            folder = tree / "DICOM" / f"S{studies[s.study]:04}"
            if s.study not in counters:
                folder.mkdir(parents=True, exist_ok=True)
            counters[s.study] = counters.get(s.study, 0) + 1
            target = folder / f"IM{counters[s.study]:06}"
            if j2k:
                _run([GDCMCONV, "--j2k", str(s.path), str(target)])
            else:
                shutil.copyfile(s.path, target)
            out_bytes += target.stat().st_size
        t1 = time.perf_counter()
        _run([DCMMKDIR, "--general-dvd-j2k" if j2k else "--general-purpose", "+r", "+id", str(tree),
              "+D", str(tree / "DICOMDIR"), "+F", FILESET_ID, "DICOM"], cwd=tree)
        t2 = time.perf_counter()
        _run([GENISOIMAGE, "-quiet", "-J", "-V", FILESET_ID, "-o", str(iso), str(tree)])
        t3 = time.perf_counter()
        steps["files"] += t1 - t0
        steps["dcmmkdir"] += t2 - t1
        steps["genisoimage"] += t3 - t2
        isos.append(iso)
        trees.append(tree)
    seconds = time.perf_counter() - t_all
    in_bytes = sum(s.size for s in sources)
    for tree in trees:
        shutil.rmtree(tree, ignore_errors=True)
    return {"seconds": round(seconds, 3), "mb_s": _mbps(in_bytes, seconds),
            "steps_s": {k: round(v, 3) for k, v in steps.items()}, "volumes": [str(i) for i in isos],
            "volume_count": len(isos), "iso_bytes": sum(i.stat().st_size for i in isos), "file_bytes": out_bytes,
            "size_fraction": round(out_bytes / in_bytes, 4)}


# -- checks -----------------------------------------------------------------------------------------
def medium_instances(isos: list[str]) -> tuple[int, list]:
    """Instances the DICOMDIRs of ``isos`` list (read with our reader), and its problems."""
    from app.media.medium import open_medium
    count, problems = 0, []
    for iso in isos:
        with open_medium(iso) as medium:
            count += sum(1 for _ in medium.instances())
            problems += medium.problems + [(f, "not referenced") for f in medium.unindexed]
            if medium.scanned:
                problems.append((iso, "DICOMDIR missing or unreadable"))
    return count, problems


def lossless_check(isos: list[str], sources: list[Source], syntax: str) -> dict:
    """A sample of the media's instances (every k-th CT up to SAMPLE_CT, the first SAMPLE_MG
    mammograms) decoded from the image and compared with the original pixels."""
    import pydicom

    from app.media.medium import open_medium
    by_uid = {s.sop_instance: s for s in sources}
    cts = [s.sop_instance for s in sources if s.kind == "CT"]
    step = max(1, len(cts) // SAMPLE_CT)
    wanted = set(cts[::step][:SAMPLE_CT]) | {s.sop_instance for s in sources if s.kind == "MG"}
    mg_left = SAMPLE_MG
    checked, differ, wrong_syntax = 0, [], []
    for iso in isos:
        with open_medium(iso) as medium:
            for *_, inst in medium.instances():
                source = by_uid.get(inst.sop_instance_uid or "")
                if source is None or source.sop_instance not in wanted:
                    continue
                if source.kind == "MG":
                    if mg_left <= 0:
                        continue
                    mg_left -= 1
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(BytesIO(medium.read(inst.file_id)))
                if str(ds.SOPInstanceUID) != source.sop_instance:
                    differ.append(f"{inst.file_id}: holds {ds.SOPInstanceUID}")
                    continue
                if str(ds.file_meta.TransferSyntaxUID) != syntax:
                    wrong_syntax.append(f"{inst.file_id}: {ds.file_meta.TransferSyntaxUID}")
                original = pydicom.dcmread(source.path).pixel_array
                checked += 1
                if not np.array_equal(ds.pixel_array, original):
                    differ.append(inst.file_id)
    return {"checked": checked, "differ": differ, "wrong_syntax": wrong_syntax[:5],
            "lossless": checked > 0 and not differ and not wrong_syntax}


# -- (3) import -------------------------------------------------------------------------------------
def import_from_media(isos: list[str], home: Path) -> dict:
    from app.media.medium import import_medium, open_medium
    from app.store.archive import Archive
    archive = Archive(home)
    imported = present = 0
    rejected: list = []
    try:
        t0 = time.perf_counter()
        for iso in isos:
            with open_medium(iso) as medium:
                s = import_medium(archive.ingest, medium)
            imported, present, rejected = imported + s.imported, present + s.present, rejected + s.rejected
        seconds = time.perf_counter() - t0
    finally:
        archive.close()
    return _imported(imported, present, rejected, seconds)


def import_from_folder(folder: Path, home: Path) -> dict:
    from app.importer import collect, import_paths
    from app.store.archive import Archive
    archive = Archive(home)
    try:
        t0 = time.perf_counter()
        s = import_paths(archive.ingest, collect([folder]))
        seconds = time.perf_counter() - t0
    finally:
        archive.close()
    return _imported(s.imported, s.present, s.rejected, seconds)


def _imported(imported: int, present: int, rejected: list, seconds: float) -> dict:
    return {"seconds": round(seconds, 3), "imported": imported, "present": present, "rejected": rejected[:5],
            "images_s": round(imported / seconds, 1) if seconds > 0 else 0.0}


# -- the run ----------------------------------------------------------------------------------------
def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    own_work = work is None
    size, sz, work = benchutil.prepare(size, SIZES, work, "lightbox-bench-media-")
    try:
        return _run_all(size, sz, work, log)
    finally:
        if own_work and not os.environ.get("LIGHTBOX_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def _median_run(runs: list[dict]) -> dict:
    """The run of median time (its phases with it), and every run's time."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "runs_s": [r["seconds"] for r in runs]}


def _mbps(nbytes: int, seconds: float) -> float:
    return round(nbytes / seconds / 1e6, 1) if seconds > 0 else 0.0


def _ratio(a, b) -> float | None:
    return round(a / b, 3) if a and b else None


def _remove(paths) -> None:
    for p in paths:
        Path(p).unlink(missing_ok=True)


def _run_all(size: str, sz: Size, work: Path, log) -> dict:
    from app.media.profiles import CD_BYTES, DVD_BYTES, EXPLICIT_LE, J2K_LOSSLESS
    started = time.time()
    for tool in (DCMMKDIR, GENISOIMAGE, GDCMCONV):
        if not Path(tool).exists():
            raise RuntimeError(f"{tool} is not installed (packaging/apt-test.txt)")
    t0 = time.perf_counter()
    sources = generate(work / "studies", sz, log)
    generate_s = time.perf_counter() - t0
    n = len(sources)
    in_bytes = sum(s.size for s in sources)
    cd_plan, dvd_plan = volumes_of(sources, CD_BYTES), volumes_of(sources, DVD_BYTES)
    log(f"media benchmark '{size}': {sz.patients} patient(s) x (CT study of {sz.ct} x 512x512 + MG study of "
        f"{sz.mg} x {MG_SHAPE[0]}x{MG_SHAPE[1]}) = {n} files, {in_bytes / 1e6:.1f} MB (generated in "
        f"{generate_s:.1f} s); CD volumes {len(cd_plan)}; work dir {work}")
    problems: list[str] = []
    out = work / "out"
    out.mkdir(exist_ok=True)

    # one file through both profiles first: the modules' first imports are not export time
    for profile, icons in (("STD-GEN-CD", 64), ("STD-GEN-DVD-J2K", None)):
        _remove(lightbox_export(sources[:1], profile, out / "warm-up.iso", icons)["volumes"])

    # (1) STD-GEN-CD, Lightbox and DCMTK in turn (the page cache alike for both), median of the runs
    lb_runs, dc_runs = [], []
    for run in range(CD_RUNS[size]):
        if lb_runs:
            _remove(lb_runs[-1]["volumes"])  # the same names each time: the last run's images stay
        lb_runs.append(lightbox_export(sources, "STD-GEN-CD", out / "cd-lightbox.iso", None))
        dc_runs.append(peer_export(sources, cd_plan, out, j2k=False))
        if run == 0:
            count, medium_problems = medium_instances(dc_runs[0]["volumes"])
            if count != n or medium_problems:
                problems.append(f"DCMTK CD media list {count} of {n} instances; {medium_problems[:3]}")
        _remove(dc_runs[-1]["volumes"])
    lb_cd, dc_cd = _median_run(lb_runs), _median_run(dc_runs)
    log(f"  (1) Lightbox STD-GEN-CD: {lb_cd['seconds']:.2f} s, {lb_cd['mb_s']} MB/s, {lb_cd['volume_count']} "
        f"volume(s); phases {lb_cd['phases_s']}; runs {lb_cd['runs_s']} s")
    if not all(r["ok"] and r["exported"] == n and not r["refused"] for r in lb_runs):
        problems.append(f"Lightbox STD-GEN-CD: exported {lb_cd['exported']} of {n}, refused {lb_cd['refused']}, "
                        f"verified {lb_cd['verified']}")
    if lb_cd["volume_count"] != len(cd_plan):
        problems.append(f"Lightbox STD-GEN-CD made {lb_cd['volume_count']} volumes, the plan {len(cd_plan)}")
    log(f"      DCMTK copy + dcmmkdir + genisoimage: {dc_cd['seconds']:.2f} s, {dc_cd['mb_s']} MB/s; "
        f"steps {dc_cd['steps_s']}; runs {dc_cd['runs_s']} s")

    lb_icons = lightbox_export(sources, "STD-GEN-CD", out / "cd-icons.iso", 64)
    log(f"      Lightbox STD-GEN-CD with 64x64 icons: {lb_icons['seconds']:.2f} s, {lb_icons['mb_s']} MB/s")
    if not lb_icons["ok"] or lb_icons["exported"] != n:
        problems.append(f"Lightbox STD-GEN-CD with icons: exported {lb_icons['exported']} of {n}, "
                        f"verified {lb_icons['verified']}")
    _remove(lb_icons["volumes"])

    # (2) STD-GEN-DVD-J2K
    lb_j2k = lightbox_export(sources, "STD-GEN-DVD-J2K", out / "j2k-lightbox.iso", None)
    log(f"  (2) Lightbox STD-GEN-DVD-J2K: {lb_j2k['seconds']:.2f} s, {lb_j2k['mb_s']} MB/s, files "
        f"{lb_j2k['size_fraction']} of the input; phases {lb_j2k['phases_s']}")
    if not lb_j2k["ok"] or lb_j2k["exported"] != n or lb_j2k["refused"]:
        problems.append(f"Lightbox STD-GEN-DVD-J2K: exported {lb_j2k['exported']} of {n}, refused "
                        f"{lb_j2k['refused']}, verified {lb_j2k['verified']}")
    lb_lossless = lossless_check(lb_j2k["volumes"], sources, J2K_LOSSLESS)
    if not lb_lossless["lossless"]:
        problems.append(f"Lightbox's J2K files are not the original pixels: {lb_lossless}")
    _remove(lb_j2k["volumes"])
    gd_j2k = peer_export(sources, dvd_plan, out, j2k=True)
    log(f"      gdcmconv --j2k + dcmmkdir + genisoimage: {gd_j2k['seconds']:.2f} s, {gd_j2k['mb_s']} MB/s, files "
        f"{gd_j2k['size_fraction']} of the input; steps {gd_j2k['steps_s']}")
    gd_lossless = lossless_check(gd_j2k["volumes"], sources, J2K_LOSSLESS)
    count, medium_problems = medium_instances(gd_j2k["volumes"])
    if count != n or medium_problems:
        problems.append(f"DCMTK J2K media list {count} of {n} instances; {medium_problems[:3]}")
    if not gd_lossless["lossless"]:
        problems.append(f"gdcmconv's J2K files are not the original pixels: {gd_lossless}")
    _remove(gd_j2k["volumes"])

    # (3) import: the media of (1) against the files from their folder
    from_media = import_from_media(lb_cd["volumes"], work / "home-media")
    from_folder = import_from_folder(work / "studies", work / "home-folder")
    log(f"  (3) import from {lb_cd['volume_count']} ISO image(s): {from_media['images_s']} images/s; from the "
        f"folder: {from_folder['images_s']} images/s")
    for what, r in (("media", from_media), ("folder", from_folder)):
        if r["imported"] != n or r["rejected"]:
            problems.append(f"import from {what}: {r['imported']} of {n} imported, rejected {r['rejected']}")

    profile = None
    if os.environ.get("LIGHTBOX_BENCH_PROFILE"):
        profile = profile_export(sources, out / "cd-profile.iso")
    _remove(lb_cd["volumes"])
    for p in out.glob("cd-profile*.iso"):
        p.unlink()
    return {
        "size": size, "data": {"patients": sz.patients, "ct_per_study": sz.ct, "mg_per_study": sz.mg,
                               "files": n, "input_bytes": in_bytes, "generate_s": round(generate_s, 1)},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "loadavg_1m": round(os.getloadavg()[0], 2)},
        "cd_volumes_planned": len(cd_plan),
        "cd": {"lightbox": lb_cd, "dcmtk": dc_cd, "ratio": _ratio(lb_cd["mb_s"], dc_cd["mb_s"]),
               "ratio_without_verify": _ratio(lb_cd["mb_s_without_verify"], dc_cd["mb_s"]),
               "lightbox_icons": lb_icons, "syntax": EXPLICIT_LE},
        "j2k": {"lightbox": lb_j2k, "gdcm_dcmtk": gd_j2k, "ratio": _ratio(lb_j2k["mb_s"], gd_j2k["mb_s"]),
                "ratio_without_verify": _ratio(lb_j2k["mb_s_without_verify"], gd_j2k["mb_s"]),
                "lossless": {"lightbox": lb_lossless, "gdcm": gd_lossless}},
        "import": {"media": from_media, "folder": from_folder,
                   "ratio": _ratio(from_media["images_s"], from_folder["images_s"])},
        "profile": profile,
        "duration_s": round(time.time() - started, 1),
        "problems": problems,
    }


def format_report(r: dict) -> str:
    d, cd, j2k, imp = r["data"], r["cd"], r["j2k"], r["import"]
    lb, dc, ic = cd["lightbox"], cd["dcmtk"], cd["lightbox_icons"]
    lj, gj = j2k["lightbox"], j2k["gdcm_dcmtk"]
    ll = j2k["lossless"]["lightbox"]
    lines = [
        f"media export/import: {d['patients']} patient(s), CT study of {d['ct_per_study']} x 512x512 + MG study of "
        f"{d['mg_per_study']} x {MG_SHAPE[0]}x{MG_SHAPE[1]} each = {d['files']} files, "
        f"{d['input_bytes'] / 1e6:.1f} MB; MB/s of input; {r['machine']['cpus']} CPUs",
        f"  (1) STD-GEN-CD, {lb['volume_count']} volume(s): Lightbox {lb['seconds']:.2f} s = {lb['mb_s']} MB/s "
        f"(stage {lb['phases_s']['stage']:.2f}, DICOMDIR {lb['phases_s']['dicomdir']:.2f}, ISO "
        f"{lb['phases_s']['iso']:.2f}, verify {lb['phases_s']['verify']:.2f} s; {lb['mb_s_without_verify']} MB/s "
        f"without the verification; runs {lb['runs_s']} s, the median shown)",
        f"      DCMTK copy + dcmmkdir + genisoimage {dc['seconds']:.2f} s = {dc['mb_s']} MB/s (copy "
        f"{dc['steps_s']['files']:.2f}, dcmmkdir {dc['steps_s']['dcmmkdir']:.2f}, genisoimage "
        f"{dc['steps_s']['genisoimage']:.2f} s; runs {dc['runs_s']} s); ratio Lightbox/DCMTK {cd['ratio']} "
        f"({cd['ratio_without_verify']} "
        f"without our verification)",
        f"      Lightbox with 64x64 icons: {ic['seconds']:.2f} s = {ic['mb_s']} MB/s",
        f"  (2) STD-GEN-DVD-J2K: Lightbox {lj['seconds']:.2f} s = {lj['mb_s']} MB/s (stage "
        f"{lj['phases_s']['stage']:.2f}, DICOMDIR {lj['phases_s']['dicomdir']:.2f}, ISO {lj['phases_s']['iso']:.2f}, "
        f"verify {lj['phases_s']['verify']:.2f} s), files {lj['size_fraction']} of the input "
        f"({1 / lj['size_fraction']:.2f}:1)",
        f"      gdcmconv --j2k + dcmmkdir + genisoimage {gj['seconds']:.2f} s = {gj['mb_s']} MB/s (gdcmconv "
        f"{gj['steps_s']['files']:.2f}, dcmmkdir {gj['steps_s']['dcmmkdir']:.2f}, genisoimage "
        f"{gj['steps_s']['genisoimage']:.2f} s), files {gj['size_fraction']} of the input "
        f"({1 / gj['size_fraction']:.2f}:1); ratio Lightbox/peer {j2k['ratio']} ({j2k['ratio_without_verify']} "
        f"without our verification)",
        f"      lossless: {ll['checked']} of Lightbox's files decoded from the image equal the originals: "
        f"{'yes' if ll['lossless'] else 'NO'}",
        f"  (3) import of {d['files']} images: from the ISO image(s) {imp['media']['seconds']:.2f} s = "
        f"{imp['media']['images_s']} images/s, from the folder {imp['folder']['seconds']:.2f} s = "
        f"{imp['folder']['images_s']} images/s; ratio medium/folder {imp['ratio']}",
    ]
    if r.get("profile"):
        lines.append("  profile of one STD-GEN-CD export (own time):")
        lines += [f"      {p['own_s']:7.3f} s  {p['calls']:>8}  {p['function']}" for p in r["profile"][:10]]
    return benchutil.report_text(lines, r["problems"])


if __name__ == "__main__":
    sys.exit(benchutil.main(run_benchmark, format_report))
