"""Ingest benchmark: C-STORE throughput of Lightbox against DCMTK storescp and Orthanc.

The same Part-10 files (Explicit VR Little Endian) are sent by DCMTK ``storescu`` over
loopback, over one association and over four parallel associations (four storescu
processes, a quarter of the files each), to

  * Lightbox  ``python -m app node`` (fresh data home per run),
  * storescp  DCMTK 3.6.7 (``--single-process`` for one association, ``--fork`` for four),
  * Orthanc   1.10 through ``../shared/peers/peers/qr_scp.sh`` (fresh storage per run).

Wall clock runs from the start of the first storescu to the end of the last one. Every
receiver is then checked to hold every instance (Lightbox: ``ls --json``, storescp: files
in its folder, Orthanc: ``GET /statistics``). Figures are printed and compared with the
peers of the same run (ratios); nothing here is a pass/fail timer (DESIGN.md, Tests).

Sizes (``LIGHTBOX_BENCH_SIZE`` or the first argument):
  smoke   40 CT 512x512 + 4 mammography 4096x3328 (the default; CI, well under 3 minutes)
  full    1000 CT + 20 mammography
  N,M     N CT + M mammography

Run standalone (each cell is run ``--repeat`` times, default 3 for full and 1 otherwise, and the
median is reported)::

    python tests/benchmarks/bench_ingest.py full [--repeat N] [--receivers lightbox,storescp]

PDU sizes: Lightbox ``node.max_pdu`` 524288 (``--lightbox-pdu``), storescp ``-pdu`` 16384 (DCMTK's
default, ``--storescp-pdu``), Orthanc ``MaximumPduLength`` 16384 (fixed by qr_scp.sh); storescu
is run with its defaults, so it sends PDUs as large as each receiver accepts.

Generated images are cached (``LIGHTBOX_BENCH_CACHE``, default ``$TMPDIR/lightbox-bench-data``)
and reused: they are deterministic, so a cached file is the file that would be generated.
``BENCH_OUT=path.json`` also writes the results as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import numpy as np  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian  # noqa: E402

from conftest import PEERS, ROOT, NodeProcess, free_port, lightbox, ls_json  # noqa: E402

SIZES = {"smoke": (40, 4), "full": (1000, 20)}
DATA_VERSION = 3  # bump when the generated files change; the cache folder is keyed by it
CT_UID = "1.2.840.10008.5.1.4.1.1.2"             # CT Image Storage
MG_UID = "1.2.840.10008.5.1.4.1.1.1.2"           # Digital Mammography X-Ray Image Storage - For Presentation
STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"
DCMTK_ENV = {"TCP_NODELAY": "1"}  # without it every DCMTK C-STORE stalls ~40 ms (Nagle + delayed ACK)
PARALLEL = 4
CALLING_AET = "BENCHSCU"


# -- sizes ----------------------------------------------------------------------------------
def parse_size(text: str | None) -> tuple[str, int, int]:
    text = (text or "smoke").strip().lower()
    if text in SIZES:
        return (text, *SIZES[text])
    try:
        ct, mg = (int(x) for x in text.split(","))
    except ValueError:
        raise SystemExit(f"size must be smoke, full or N,M (CT,mammo), not {text!r}") from None
    if ct < 0 or mg < 0 or ct + mg == 0:
        raise SystemExit("size: need at least one image")
    return (f"{ct},{mg}", ct, mg)


# -- data -----------------------------------------------------------------------------------
def cache_root() -> Path:
    base = os.environ.get("LIGHTBOX_BENCH_CACHE") or str(Path(tempfile.gettempdir()) / "lightbox-bench-data")
    return Path(base) / f"v{DATA_VERSION}"


def _uid(*parts) -> str:
    """Deterministic 2.25 UID: the cache stays valid across runs and machines."""
    name = "/".join(["lightbox-bench", str(DATA_VERSION), *map(str, parts)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, name).int}"


def _common(ds: Dataset, *, kind: str, number: int) -> None:
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = "20240315"
    ds.InstanceCreationTime = f"0912{number % 60:02d}.123000"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240315"
    ds.StudyTime = "090512.000000"
    ds.SeriesTime = "090733.000000"
    ds.AcquisitionTime = ds.ContentTime = f"0910{number % 60:02d}.{number % 1000:03d}000"
    ds.AccessionNumber = f"BENCH{kind}0001"
    ds.Manufacturer = "Lightbox Benchmark"
    ds.InstitutionName = "Loopback General Hospital"
    ds.InstitutionAddress = "1 Localhost Road, 127.0.0.1"
    ds.ReferringPhysicianName = "Referrer^Rita^^Dr."
    ds.StationName = f"{kind}STATION01"
    ds.OperatorsName = "Operator^Otto"
    ds.ManufacturerModelName = f"Synthetic {kind} 9000"
    ds.DeviceSerialNumber = "SN-0000042"
    ds.SoftwareVersions = ["bench 1.0", "recon 2.3.4"]
    ds.PatientName = "Benchmark^Bernadette^M"
    ds.PatientID = "BENCH-0001"
    ds.IssuerOfPatientID = "LIGHTBOX"
    ds.PatientBirthDate = "19610704"
    ds.PatientSex = "F"
    ds.PatientAge = "062Y"
    ds.PatientSize = 1.68
    ds.PatientWeight = 64.5
    ds.StudyInstanceUID = _uid(kind, "study")
    ds.SeriesInstanceUID = _uid(kind, "series")
    ds.SOPInstanceUID = _uid(kind, "instance", number)
    ds.FrameOfReferenceUID = _uid(kind, "frame-of-reference")
    ds.StudyID = "4711"
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    # a small private block, as real modalities write
    block = ds.private_block(0x0009, "LIGHTBOX BENCH", create=True)
    block.add_new(0x01, "LO", f"{kind} private text {number}")
    block.add_new(0x02, "DS", "1.5")
    block.add_new(0x03, "OB", bytes(range(64)))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def ct_dataset(number: int, rows: int = 512, cols: int = 512) -> Dataset:
    """One slice of an axial chest CT, with a body-shaped phantom plus noise."""
    rng = np.random.default_rng(1_000_000 + number)
    ds = Dataset()
    _common(ds, kind="CT", number=number)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_UID
    ds.Modality = "CT"
    ds.StudyDescription = "CT THORAX WITH CONTRAST"
    ds.ProcedureCodeSequence = Sequence([_code("RPID16", "RADLEX", "CT CHEST WITH IV CONTRAST")])
    ds.SeriesDescription = "Thorax 1.0 B31f"
    ds.BodyPartExamined = "CHEST"
    ds.ProtocolName = "Thorax Routine"
    ds.SeriesNumber = 3
    ds.SliceThickness = 1.0
    ds.KVP = 120
    ds.DataCollectionDiameter = 500.0
    ds.ReconstructionDiameter = 380.0
    ds.DistanceSourceToDetector = 1040.0
    ds.DistanceSourceToPatient = 570.0
    ds.GantryDetectorTilt = 0.0
    ds.TableHeight = 155.0
    ds.RotationDirection = "CW"
    ds.ExposureTime = 500
    ds.XRayTubeCurrent = 210
    ds.Exposure = 105
    ds.FilterType = "FLAT"
    ds.GeneratorPower = 25
    ds.FocalSpots = 1.2
    ds.ConvolutionKernel = "B31f"
    ds.PatientPosition = "HFS"
    ds.RevolutionTime = 0.5
    ds.SingleCollimationWidth = 0.6
    ds.TotalCollimationWidth = 38.4
    ds.SpiralPitchFactor = 1.2
    ds.ImagePositionPatient = [-190.0, -190.0, -100.0 - number]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = -100.0 - number
    ds.Rows, ds.Columns = rows, cols
    ds.PixelSpacing = [0.742188, 0.742188]
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.WindowCenter = [40, -600]
    ds.WindowWidth = [400, 1200]
    ds.WindowCenterWidthExplanation = ["WINDOW1", "LUNG"]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    yy, xx = np.ogrid[:rows, :cols]
    cy, cx = rows / 2, cols / 2
    body = ((yy - cy) / (rows * 0.36)) ** 2 + ((xx - cx) / (cols * 0.45)) ** 2 <= 1
    r = 0.14 + 0.04 * np.sin(number / 15)
    lungs = ((((yy - cy) / (rows * 0.26)) ** 2 + ((xx - cx * 0.62) / (cols * r)) ** 2 <= 1)
             | (((yy - cy) / (rows * 0.26)) ** 2 + ((xx - cx * 1.38) / (cols * r)) ** 2 <= 1))
    img = np.full((rows, cols), 24.0)  # air: -1000 HU
    img[body] = 1064.0                 # soft tissue: 40 HU
    img[lungs] = 200.0                 # lung: -824 HU
    img += rng.normal(0.0, 18.0, img.shape)
    ds.PixelData = np.clip(img, 0, 4095).astype("<u2").tobytes()
    return ds


MG_VIEWS = (  # laterality, view, patient orientation, view code (SCT), meaning
    ("R", "CC", ["P", "L"], "399162004", "cranio-caudal"),
    ("L", "CC", ["A", "R"], "399162004", "cranio-caudal"),
    ("R", "MLO", ["P", "F"], "399368009", "medio-lateral oblique"),
    ("L", "MLO", ["A", "F"], "399368009", "medio-lateral oblique"),
)


def mg_dataset(number: int, rows: int = 4096, cols: int = 3328) -> Dataset:
    """A full-field digital mammogram (For Presentation), breast shape plus noise."""
    rng = np.random.default_rng(2_000_000 + number)
    lat, view, orientation, code, meaning = MG_VIEWS[(number - 1) % len(MG_VIEWS)]
    ds = Dataset()
    _common(ds, kind="MG", number=number)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", ""]
    ds.SOPClassUID = MG_UID
    ds.Modality = "MG"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.StudyDescription = "MAMMOGRAPHY SCREENING BILATERAL"
    ds.ProcedureCodeSequence = Sequence([_code("RPID5320", "RADLEX", "MG SCREENING BILATERAL")])
    ds.SeriesDescription = f"{lat} {view}"
    ds.BodyPartExamined = "BREAST"
    ds.SeriesNumber = 1
    ds.ImageLaterality = lat
    ds.ViewPosition = view
    ds.PatientOrientation = orientation
    ds.ViewCodeSequence = Sequence([_code(code, "SCT", meaning)])
    ds.ViewCodeSequence[0].ViewModifierCodeSequence = Sequence()
    ds.AnatomicRegionSequence = Sequence([_code("76752008", "SCT", "Breast")])
    ds.KVP = 29
    ds.ExposureTime = 1210
    ds.XRayTubeCurrent = 100
    ds.Exposure = 121
    ds.ExposureInuAs = 121000
    ds.AnodeTargetMaterial = "TUNGSTEN"
    ds.FilterMaterial = "RHODIUM"
    ds.FilterThicknessMinimum = 0.05
    ds.FilterThicknessMaximum = 0.05
    ds.CompressionForce = 118.0
    ds.BodyPartThickness = 54.0
    ds.PositionerPrimaryAngle = 0.0 if view == "CC" else (45.0 if lat == "R" else -45.0)
    ds.DistanceSourceToDetector = 700.0
    ds.DistanceSourceToPatient = 645.16
    ds.EstimatedRadiographicMagnificationFactor = 1.085
    ds.PositionerType = "MAMMOGRAPHIC"
    ds.OrganExposed = "BREAST"
    ds.AcquisitionContextSequence = Sequence()
    ds.PositionReferenceIndicator = ""
    ds.ImagerPixelSpacing = [0.07, 0.07]
    ds.DetectorType = "DIRECT"
    ds.OrganDose = 1.42
    ds.EntranceDoseInmGy = 5.3
    ds.BreastImplantPresent = "NO"
    ds.PartialView = "NO"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsStored = 14
    ds.HighBit = 13
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.PresentationLUTShape = "IDENTITY"
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = [8192, 7800]
    ds.WindowWidth = [4000, 3000]
    ds.VOILUTFunction = "SIGMOID"
    ds.QualityControlImage = "NO"
    # breast: a half ellipse against the chest wall (left edge for R, right edge for L)
    yy, xx = np.ogrid[:rows, :cols]
    wall = 0 if lat == "R" else cols - 1
    depth = cols * (0.72 + 0.05 * rng.random())
    breast = ((yy - rows / 2) / (rows * 0.42)) ** 2 + ((xx - wall) / depth) ** 2 <= 1
    img = np.full((rows, cols), 600.0, dtype=np.float32)
    img[breast] = 9000.0
    img += rng.normal(0.0, 220.0, (rows, cols)).astype(np.float32)
    ds.PixelData = np.clip(img, 0, 16383).astype("<u2").tobytes()
    return ds


def write_part10(ds: Dataset, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1337.1"
    meta.ImplementationVersionName = "LBX_BENCH_1"
    ds.file_meta = meta
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(tmp, enforce_file_format=True)
    os.replace(tmp, path)  # a file in the cache is always complete


def ensure_images(kind: str, count: int, log=print) -> list[Path]:
    """The first ``count`` images of ``kind`` ('CT' or 'MG'), generated once and cached."""
    makers = {"CT": ct_dataset, "MG": mg_dataset}
    if kind not in makers:
        raise ValueError(f"kind must be 'CT' or 'MG', not {kind!r}")
    make = makers[kind]
    folder = cache_root() / kind.lower()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{kind}_{i:05d}.dcm" for i in range(1, count + 1)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        t0 = time.perf_counter()
        log(f"generating {len(missing)} {kind} image(s) into {folder} ...")
        for p in missing:
            write_part10(make(int(p.stem.split("_")[1])), p)
        log(f"  done in {time.perf_counter() - t0:.1f} s")
    return paths


def warm_page_cache(paths: list[Path]) -> None:
    """Read every file once so no receiver pays for the first read from disk."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(8 << 20):
                pass


# -- receivers ------------------------------------------------------------------------------
def _env(**extra) -> dict:
    return {**os.environ, **DCMTK_ENV, **extra}


def _pid_listens(pid: int, port: int) -> bool:
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    return f"pid={pid}," in out


def _assert_loopback(port: int) -> None:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        addr = line.split()[3]
        if not (addr.startswith("127.0.0.1:") or addr.startswith("[::ffff:127.0.0.1]:") or addr.startswith("[::1]:")):
            raise RuntimeError(f"listener on port {port} is not loopback-only: {addr}")


def loopback_shim() -> str:
    """The LD_PRELOAD shim of ../shared/peers (bind 0.0.0.0 -> 127.0.0.1), built on first use."""
    script = f'source "{PEERS / "lib" / "common.sh"}" && harness_ensure_shim && printf %s "$HARNESS_SHIM"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    if not out or not Path(out).exists():
        raise RuntimeError("could not build the loopback bind() shim of shared/peers")
    return out


class Receiver:
    name = "?"
    aet = "?"
    port = 0

    def start(self, run_dir: Path, parallel: bool) -> None: ...
    def count(self) -> int: ...
    def stop(self) -> None: ...
    def describe(self) -> dict: return {}


class LightboxReceiver(Receiver):
    """`python -m app node` on 127.0.0.1, fresh data home per run."""

    name, aet = "lightbox", "LIGHTBOX"

    def __init__(self, max_pdu: int, template: Path, extra_settings: dict | None = None):
        self.max_pdu = max_pdu
        self.template = template
        self.settings = {"policy.check_calling_ae": "false", "node.max_pdu": str(max_pdu), **(extra_settings or {})}
        template.mkdir(parents=True, exist_ok=True)
        for key, value in self.settings.items():
            lightbox(template, "config", "set", key, value)
        self.node: NodeProcess | None = None
        self.home: Path | None = None

    def start(self, run_dir: Path, parallel: bool) -> None:
        self.home = run_dir / "lightbox-home"
        self.home.mkdir(parents=True)
        shutil.copy2(self.template / "settings.toml", self.home / "settings.toml")
        self.node = NodeProcess(self.home, aet=self.aet)
        self.port = self.node.port
        self.node.start()

    def count(self) -> int:
        return len(ls_json(self.home, "instance"))

    def stop(self) -> None:
        if self.node is not None:
            rc = self.node.stop()
            if rc != 0:
                print(f"warning: lightbox node exited {rc}:\n{self.node.output()[-2000:]}", file=sys.stderr)
            self.node = None

    def describe(self) -> dict:
        return {"settings": self.settings, "command": "python -m app --home DIR node --aet LIGHTBOX "
                "--port P --host 127.0.0.1"}


class StorescpReceiver(Receiver):
    """DCMTK storescp started directly (same options as shared/peers/peers/store_scp.sh minus its
    per-object -xcr shell hook and -v), --single-process for one association, --fork for four,
    bound to loopback by the peers' LD_PRELOAD shim."""

    name, aet = "storescp", "STORESCP"

    script = PEERS / "peers" / "store_scp.sh"

    def __init__(self, max_pdu: int, via_script: bool = False):
        self.max_pdu = max_pdu
        self.via_script = via_script
        self.shim = loopback_shim()
        self.proc: subprocess.Popen | None = None
        self.script_dir: Path | None = None
        self.out: Path | None = None
        self.args: list[str] = []

    def start(self, run_dir: Path, parallel: bool) -> None:
        self.out = run_dir / "storescp-out"
        self.out.mkdir(parents=True)
        self.port = free_port()
        if self.via_script and not parallel:
            # The script starts `storescp` through PATH: put DCMTK's /usr/bin before pynetdicom's
            # same-named console script.
            self.script_dir = self.out
            proc = subprocess.run(["bash", str(self.script), str(self.port), str(self.out)], capture_output=True,
                                  text=True, timeout=60, env=_env(PATH=f"/usr/bin:{os.environ.get('PATH', '')}"))
            if proc.returncode != 0:
                raise RuntimeError(f"store_scp.sh failed ({proc.returncode}):\n{proc.stderr}")
            return
        self.args = ["--fork" if parallel else "--single-process", "+xa", "-pm", "-aet", self.aet,
                     "-od", str(self.out), "-fe", ".dcm", "-dhl", "-pdu", str(self.max_pdu), str(self.port)]
        self._log = open(run_dir / "storescp.log", "ab")
        self.proc = subprocess.Popen([STORESCP, *self.args], stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=_env(LD_PRELOAD=self.shim))
        deadline = time.monotonic() + 20
        while not _pid_listens(self.proc.pid, self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"storescp did not listen on {self.port}: {(run_dir / 'storescp.log').read_text()}")
            time.sleep(0.05)
        _assert_loopback(self.port)

    def count(self) -> int:
        return sum(1 for p in self.out.iterdir() if p.suffix == ".dcm")


    def stop(self) -> None:
        if self.script_dir is not None:
            subprocess.run(["bash", str(self.script), "stop", str(self.script_dir)], capture_output=True, text=True,
                           timeout=60, env=_env(PATH=f"/usr/bin:{os.environ.get('PATH', '')}"))
            self.script_dir = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()  # only the storescp we started; --fork children end with their association
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            self._log.close()
            self.proc = None

    def describe(self) -> dict:
        d = {"command": f"LD_PRELOAD=<peers shim> TCP_NODELAY=1 {STORESCP} --single-process|--fork +xa -pm "
             f"-aet {self.aet} -od DIR -fe .dcm -dhl -pdu {self.max_pdu} PORT", "max_pdu": self.max_pdu}
        if self.via_script:
            d["one_association"] = f"TCP_NODELAY=1 {self.script} PORT DIR (-v, -xcr hook per object, -pdu 16384)"
        return d


class OrthancReceiver(Receiver):
    """Orthanc through shared/peers/peers/qr_scp.sh (wipes its storage on every start)."""

    name, aet = "orthanc", "ORTHANC"
    script = PEERS / "peers" / "qr_scp.sh"

    def __init__(self):
        self.dir: Path | None = None
        self.http = 0

    def start(self, run_dir: Path, parallel: bool) -> None:
        self.dir = run_dir / "orthanc"
        self.port, self.http = free_port(), free_port()
        while self.http == self.port:
            self.http = free_port()
        proc = subprocess.run(["bash", str(self.script), str(self.port), str(self.dir), str(self.http)],
                              capture_output=True, text=True, env=_env(), timeout=90)
        if proc.returncode != 0:
            raise RuntimeError(f"qr_scp.sh failed ({proc.returncode}):\n{proc.stderr}")

    def count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/statistics", timeout=30) as rsp:
            return int(json.load(rsp)["CountInstances"])

    def stop(self) -> None:
        if self.dir is not None:
            subprocess.run(["bash", str(self.script), "stop", str(self.dir)], capture_output=True, text=True,
                           timeout=60)

    def describe(self) -> dict:
        return {"command": f"TCP_NODELAY=1 {self.script} PORT DIR HTTP_PORT",
                "max_pdu": 16384, "note": "MaximumPduLength 16384 and SyncStorageArea false in qr_scp.sh's config"}


# -- running --------------------------------------------------------------------------------
@dataclass
class Workload:
    kind: str          # CT | MG
    associations: int
    files: list[Path] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{'CT' if self.kind == 'CT' else 'mammo'} {self.associations} assoc"

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


@dataclass
class Result:
    receiver: str
    workload: str
    kind: str
    associations: int
    images: int
    bytes: int
    seconds: list[float]
    received: int
    ok: bool
    error: str = ""

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def images_per_s(self) -> float:
        return self.images / self.median_s if self.seconds else float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.median_s if self.seconds else float("nan")

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(median_s=self.median_s, images_per_s=self.images_per_s, mb_per_s=self.mb_per_s)
        return d


def chunks(files: list[Path], n: int) -> list[list[Path]]:
    """n contiguous parts of (nearly) equal size; empty parts dropped."""
    k, r = divmod(len(files), n)
    parts, start = [], 0
    for i in range(n):
        end = start + k + (1 if i < r else 0)
        parts.append(files[start:end])
        start = end
    return [p for p in parts if p]


def run_storescu(receiver: Receiver, parts: list[list[Path]], run_dir: Path) -> tuple[float, list[str]]:
    """Start one storescu per part at once; seconds from the first start to the last exit."""
    procs = []
    t0 = time.perf_counter()
    for i, part in enumerate(parts):
        log = open(run_dir / f"storescu-{i}.log", "wb")
        cmd = [STORESCU, "-aet", CALLING_AET, "-aec", receiver.aet, "127.0.0.1", str(receiver.port),
               *map(str, part)]
        procs.append((subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=_env()), log, i))
    errors = []
    for proc, log, i in procs:
        rc = proc.wait()
        log.close()
        if rc != 0:
            errors.append(f"storescu #{i} exited {rc}: "
                          + (run_dir / f"storescu-{i}.log").read_text(errors="replace")[-1500:])
    return time.perf_counter() - t0, errors


def measure(receiver: Receiver, wl: Workload, work: Path, rep: int, keep: bool, log=print) -> tuple[float, int, str]:
    run_dir = work / f"{receiver.name}-{wl.kind}-{wl.associations}-{rep}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    try:
        receiver.start(run_dir, parallel=wl.associations > 1)
        seconds, errors = run_storescu(receiver, chunks(wl.files, wl.associations), run_dir)
        received = receiver.count()
        # receivers answer each C-STORE after storing it, so the count is final; a short grace
        # only protects against a slow index in a receiver we do not control
        deadline = time.monotonic() + 5
        while received < len(wl.files) and time.monotonic() < deadline:
            time.sleep(0.2)
            received = receiver.count()
    finally:
        receiver.stop()
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    log(f"  {receiver.name:9s} {wl.label:15s} {seconds:7.2f} s  {len(wl.files) / seconds:8.1f} images/s  "
        f"received {received}/{len(wl.files)}{'  ' + '; '.join(errors) if errors else ''}")
    return seconds, received, "; ".join(errors)


def run_benchmark(size: str | None = None, *, work: Path | None = None, repeat: int | None = None,
                  receivers: tuple[str, ...] = ("lightbox", "storescp", "orthanc"),
                  workloads: tuple[str, ...] = ("CT1", "CT4", "MG1", "MG4"),
                  lightbox_pdu: int = 524288, storescp_pdu: int = 16384, storescp_script: bool = False,
                  keep: bool = False,
                  lightbox_settings: dict | None = None, log=print) -> dict:
    label, n_ct, n_mg = parse_size(size)
    repeat = repeat or (3 if label == "full" else 1)
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="lightbox-bench-")) if own_work else work
    work.mkdir(parents=True, exist_ok=True)
    try:
        files = {"CT": ensure_images("CT", n_ct, log) if n_ct else [],
                 "MG": ensure_images("MG", n_mg, log) if n_mg else []}
        warm_page_cache(files["CT"] + files["MG"])
        wls = [Workload(w[:2], int(w[2:]), files[w[:2]]) for w in workloads if files[w[:2]]]

        made: dict[str, Receiver] = {}
        for name in receivers:
            if name == "lightbox":
                made[name] = LightboxReceiver(lightbox_pdu, work / "lightbox-template", lightbox_settings)
            elif name == "storescp":
                made[name] = StorescpReceiver(storescp_pdu, storescp_script)
            elif name == "orthanc":
                made[name] = OrthancReceiver()
            else:
                raise SystemExit(f"unknown receiver {name!r}")

        results: list[Result] = []
        started = time.time()
        load_before = os.getloadavg()
        log(f"ingest benchmark '{label}': {n_ct} CT 512x512 + {n_mg} mammo 4096x3328, 16-bit, "
            f"Explicit VR LE; work dir {work}")
        for wl in wls:
            per = {name: Result(name, wl.label, wl.kind, wl.associations, len(wl.files), wl.bytes, [], 0, True)
                   for name in made}
            for rep in range(repeat):
                names = list(made)
                names = names[rep % len(names):] + names[:rep % len(names)]  # rotate the order per repetition
                for name in names:
                    res = per[name]
                    try:
                        seconds, received, err = measure(made[name], wl, work, rep, keep, log)
                    except Exception as exc:  # a receiver that cannot start is a failed cell, not a crash
                        res.ok, res.error = False, f"{type(exc).__name__}: {exc}"
                        log(f"  {name:9s} {wl.label:15s} FAILED: {res.error}")
                        continue
                    res.seconds.append(seconds)
                    res.received = received
                    if received != len(wl.files) or err:
                        res.ok = False
                        res.error = err or f"received {received} of {len(wl.files)}"
            results.extend(per.values())

        report = {
            "size": label, "ct_images": n_ct, "mammo_images": n_mg, "repeat": repeat,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "duration_s": round(time.time() - started, 1),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                        "loadavg_1m_before": round(load_before[0], 2),
                        "loadavg_1m_after": round(os.getloadavg()[0], 2)},
            "sender": {"command": f"TCP_NODELAY=1 {STORESCU} -aet {CALLING_AET} -aec AET 127.0.0.1 PORT FILES...",
                       "parallel": PARALLEL, "note": "default storescu PDU options: it sends PDUs up to the "
                       "receiver's max PDU (no --max-send-pdu), receives up to 16384"},
            "receivers": {name: r.describe() for name, r in made.items()},
            "results": [r.as_dict() for r in results],
            "ratios": ratios(results),
            "mb": "10^6 bytes of Part-10 file, as sent",
        }
        return report
    finally:
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)


def ratios(results: list[Result]) -> list[dict]:
    out = []
    by = {(r.workload, r.receiver): r for r in results}
    for wl in dict.fromkeys(r.workload for r in results):
        lb = by.get((wl, "lightbox"))
        row = {"workload": wl}
        for peer in ("storescp", "orthanc"):
            other = by.get((wl, peer))
            if lb and other and lb.seconds and other.seconds:
                row[f"lightbox/{peer}"] = round(lb.images_per_s / other.images_per_s, 3)
        out.append(row)
    return out


def format_table(report: dict) -> str:
    lines = [f"Ingest benchmark, size {report['size']} ({report['ct_images']} CT 512x512 + "
             f"{report['mammo_images']} mammo 4096x3328, 16-bit, Explicit VR LE), storescu -> 127.0.0.1, "
             f"{report['machine']['cpus']} CPUs, median of {report['repeat']} run(s), "
             f"load average {report['machine']['loadavg_1m_before']} before / "
             f"{report['machine']['loadavg_1m_after']} after"]
    lb = report["receivers"].get("lightbox")
    if lb:
        lines.append(f"Lightbox settings: {', '.join(f'{k}={v}' for k, v in lb['settings'].items())}")
    if "storescp" in report["receivers"]:
        sc = report["receivers"]["storescp"]
        lines.append(f"storescp: {sc['command']}" + (f"; one association: {sc['one_association']}"
                                                     if "one_association" in sc else ""))
    if "orthanc" in report["receivers"]:
        lines.append(f"Orthanc: {report['receivers']['orthanc']['note']}")
    lines.append(f"sender: {report['sender']['command']} (x{report['sender']['parallel']} for '4 assoc')")
    ratio = {r["workload"]: r for r in report["ratios"]}
    head = f"{'workload':16s} {'receiver':9s} {'images':>6s} {'MB':>8s} {'s':>8s} {'images/s':>9s} {'MB/s':>8s}" \
           f"  {'LB/storescp':>11s} {'LB/Orthanc':>10s}  check"
    lines += [head, "-" * len(head)]
    last = None
    for r in report["results"]:
        if last is not None and r["workload"] != last:
            lines.append("")
        last = r["workload"]
        rr = ratio.get(r["workload"], {})
        ls = f"{rr['lightbox/storescp']:.2f}" if r["receiver"] == "lightbox" and "lightbox/storescp" in rr else ""
        lo = f"{rr['lightbox/orthanc']:.2f}" if r["receiver"] == "lightbox" and "lightbox/orthanc" in rr else ""
        check = "ok" if r["ok"] else f"FAIL ({r['error'][:60]})"
        if r["seconds"]:
            lines.append(f"{r['workload']:16s} {r['receiver']:9s} {r['images']:6d} {r['bytes'] / 1e6:8.1f} "
                         f"{r['median_s']:8.2f} {r['images_per_s']:9.1f} {r['mb_per_s']:8.1f}  {ls:>11s} {lo:>10s}"
                         f"  {check}")
        else:
            lines.append(f"{r['workload']:16s} {r['receiver']:9s} {r['images']:6d} {r['bytes'] / 1e6:8.1f} "
                         f"{'-':>8s} {'-':>9s} {'-':>8s}  {'':>11s} {'':>10s}  {check}")
    lines.append("ratios are Lightbox images/s divided by the peer's (same files, same run; >1 = Lightbox faster)")
    return "\n".join(lines)


def write_json(report: dict, path: str | os.PathLike | None = None) -> Path | None:
    path = path or os.environ.get("BENCH_OUT")
    if not path:
        return None
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(report, indent=2) + "\n")
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("size", nargs="?", default=os.environ.get("LIGHTBOX_BENCH_SIZE", "smoke"),
                    help="smoke | full | N,M (CT, mammo); default $LIGHTBOX_BENCH_SIZE or smoke")
    ap.add_argument("--repeat", type=int, help="runs per cell, the median is reported (default: 3 for full, else 1)")
    ap.add_argument("--receivers", default="lightbox,storescp,orthanc")
    ap.add_argument("--workloads", default="CT1,CT4,MG1,MG4", help="any of CT1,CT4,MG1,MG4")
    ap.add_argument("--lightbox-pdu", type=int, default=524288, help="node.max_pdu (default 524288)")
    ap.add_argument("--lightbox-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra Lightbox setting for the benchmark homes (repeatable)")
    ap.add_argument("--storescp-pdu", type=int, default=16384, help="storescp -pdu (default 16384, DCMTK's)")
    ap.add_argument("--storescp-script", action="store_true",
                    help="one association: start storescp through shared/peers/peers/store_scp.sh (its -v and "
                    "per-object -xcr hook cost storescp ~30%%) instead of directly")
    ap.add_argument("--work", type=Path, help="work folder (default: a temp folder, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep received data and logs")
    ap.add_argument("--json", help="also write the results here (default $BENCH_OUT)")
    args = ap.parse_args(argv)
    extra = dict(kv.split("=", 1) for kv in args.lightbox_set)
    report = run_benchmark(args.size, work=args.work, repeat=args.repeat,
                           receivers=tuple(x for x in args.receivers.split(",") if x),
                           workloads=tuple(x.upper() for x in args.workloads.split(",") if x),
                           lightbox_pdu=args.lightbox_pdu, storescp_pdu=args.storescp_pdu,
                           storescp_script=args.storescp_script, keep=args.keep,
                           lightbox_settings=extra,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_table(report))
    if out := write_json(report, args.json):
        print(f"results written to {out}", file=sys.stderr)
    return 0 if all(r["ok"] for r in report["results"]) else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup (receivers stopped in finally)
    sys.exit(main())
