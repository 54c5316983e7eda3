"""Helpers shared by the peer tests: DCMTK calls with parsed output, generated datasets,
comparison of stored files with their sources, and a raw DICOM upper-layer client for
sending what no well-behaved SCU sends (truncated PDUs, half a C-STORE)."""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    RLELossless,
    generate_uid,
)

from conftest import ROOT, dcmtk

# storescu option that makes the given transfer syntax the proposed (preferred) one, so a
# file already in that syntax goes over the wire unchanged (DCMTK 3.6.7, with -R).
STORESCU_TS_OPTION = {
    ExplicitVRLittleEndian: "-xe",
    ImplicitVRLittleEndian: "-xi",
    ExplicitVRBigEndian: "-xb",
    DeflatedExplicitVRLittleEndian: "-xd",
    JPEGBaseline8Bit: "-xy",
    JPEGExtended12Bit: "-xx",
    JPEGLosslessSV1: "-xs",
    JPEG2000Lossless: "-xv",
    JPEG2000: "-xw",
    RLELossless: "-xr",
}


# -- DCMTK --------------------------------------------------------------------------------
def run_tool(tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a DCMTK program (absolute path), stdout and stderr merged in order."""
    env = dict(os.environ, TCP_NODELAY="1")
    return subprocess.run([dcmtk(tool), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace", timeout=timeout, env=env)


def echoscu(node, *opts: str, calling: str = "ECHOSCU", called: str | None = None) -> subprocess.CompletedProcess:
    return run_tool("echoscu", "-v", "-aet", calling, "-aec", called or node.aet, *opts,
                    node.host, str(node.port), timeout=60)


def storescu(node, *paths, opts: tuple[str, ...] = (), calling: str = "STORESCU",
             timeout: float = 180) -> subprocess.CompletedProcess:
    return run_tool("storescu", "-v", "-aet", calling, "-aec", node.aet, *opts,
                    node.host, str(node.port), *map(str, paths), timeout=timeout)


_SENDING = re.compile(r"^I: Sending file: (.+)$")
_RESPONSE = re.compile(r"^I: Received Store Response \(([^)]*)\)")
_FAILED = re.compile(r"^E: Store Failed, file: (.+?):?$")


def store_statuses(output: str) -> dict[str, str]:
    """file -> storescu's verdict ('Success', 'Error: ...', 'Warning...', 'failed') from -v output."""
    out: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        if m := _SENDING.match(line):
            current = m.group(1).strip()
        elif (m := _RESPONSE.match(line)) and current:
            out[current] = m.group(1)
            current = None
        elif (m := _FAILED.match(line)):
            out[m.group(1).strip()] = "failed"
    return out


def rejected(output: str) -> bool:
    return "Association Rejected" in output


# -- the Lightbox CLI with raw bytes out -----------------------------------------------------
def ls_raw(home: Path, level: str, env: dict | None = None) -> bytes:
    proc = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "ls", "--level", level, "--json"],
                          capture_output=True, cwd=ROOT, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def ls_utf8(home: Path, level: str) -> list[dict]:
    """`ls --json` in the C locale; its bytes must be valid UTF-8."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k not in ("LANG", "PYTHONIOENCODING")}
    env.update(LC_ALL="C", LANG="C")
    return json.loads(ls_raw(home, level, env).decode("utf-8"))


def journal_entries(home: Path) -> list[Path]:
    """Acknowledged instances not archived and indexed yet (app.store.journal)."""
    return sorted((home / "journal").glob("*/*.dcm"))


def partial_writes(home: Path) -> list[Path]:
    """Journal files with data that were never completed (empty ones are spares made ahead)."""
    return sorted(p for p in (home / "journal").glob("*/*.part") if p.stat().st_size)


def archive_files(home: Path) -> list[Path]:
    """The archive's files once every acknowledged instance has been archived."""
    wait_until(lambda: not journal_entries(home), timeout=10)
    return sorted(p for p in (home / "archive").rglob("*") if p.is_file())


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# -- generated datasets -------------------------------------------------------------------
def ct_dataset(study: str, series: str, sop: str, number: int, *, size: int = 64, seed: int | None = None,
               patient_name: str = "Gen^Erated", patient_id: str = "GEN001", modality: str = "CT",
               series_number: int = 1, sop_class: str = CTImageStorage) -> Dataset:
    rng = np.random.default_rng(number if seed is None else seed)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC1"
    ds.StudyDescription = "generated"
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"series {series_number}"
    ds.InstanceNumber = number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [0, 0, float(number)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 1.0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
    return ds


def save(ds: Dataset, path: Path, ts: str = ExplicitVRLittleEndian, *, meta_sop_class: str | None = None,
         meta_sop_instance: str | None = None) -> Path:
    """Write Part 10 without pydicom's conformance checks (broken test data must stay broken)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = meta_sop_class or ds.get("SOPClassUID", CTImageStorage)
    meta.MediaStorageSOPInstanceUID = meta_sop_instance or ds.get("SOPInstanceUID", generate_uid())
    meta.TransferSyntaxUID = ts
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # a conformant file meta (with its group length) whenever pydicom agrees
            ds.save_as(path, enforce_file_format=True)
        except (ValueError, AttributeError):
            ds.save_as(path, enforce_file_format=False)
    return path


# -- comparing what was stored with what was sent -----------------------------------------
_IGNORED_TAGS = {0xFFFCFFFC}  # Dataset Trailing Padding: DCMTK drops it when sending


def read(path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def dataset_differences(source: Dataset, stored: Dataset) -> list[str]:
    """Element-by-element differences of two datasets (file meta and group lengths ignored)."""
    diffs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tags = {e.tag for e in source} | {e.tag for e in stored}
        for tag in sorted(tags):
            if tag.element == 0 or tag in _IGNORED_TAGS:
                continue
            a, b = source.get(tag), stored.get(tag)
            if a is None or b is None:
                diffs.append(f"{tag} only in {'stored' if a is None else 'source'}")
            elif a.value != b.value:
                diffs.append(f"{tag} {a.keyword}: {str(a.value)[:60]!r} != {str(b.value)[:60]!r}")
    return diffs


# -- a raw DICOM upper layer client --------------------------------------------------------
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"


def _uid_item(item_type: int, uid: str) -> bytes:
    raw = uid.encode("ascii")
    return struct.pack(">BBH", item_type, 0, len(raw)) + raw


def associate_rq(called: str, calling: str, contexts: list[tuple[int, str, list[str]]],
                 max_pdu: int = 16384) -> bytes:
    """An A-ASSOCIATE-RQ PDU (PS3.8 §9.3.2)."""
    body = struct.pack(">HH16s16s32s", 1, 0, called.ljust(16).encode(), calling.ljust(16).encode(), b"\0" * 32)
    body += _uid_item(0x10, APPLICATION_CONTEXT)
    for cid, abstract, syntaxes in contexts:
        sub = _uid_item(0x30, abstract) + b"".join(_uid_item(0x40, ts) for ts in syntaxes)
        body += struct.pack(">BBHBBBB", 0x20, 0, len(sub) + 4, cid, 0, 0, 0) + sub
    user = struct.pack(">BBHI", 0x51, 0, 4, max_pdu) + _uid_item(0x52, "2.25.1234567890")
    body += struct.pack(">BBH", 0x50, 0, len(user)) + user
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


def p_data(context_id: int, fragment: bytes, *, command: bool, last: bool) -> bytes:
    header = (1 if command else 0) | (2 if last else 0)
    pdv = struct.pack(">IBB", len(fragment) + 2, context_id, header) + fragment
    return struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv


def encode_implicit(ds: Dataset) -> bytes:
    from pynetdicom.dsutils import encode
    return encode(ds, True, True)


def c_store_command(sop_class: str, sop_instance: str, message_id: int = 1) -> bytes:
    cmd = Dataset()
    cmd.AffectedSOPClassUID = sop_class
    cmd.CommandField = 0x0001
    cmd.MessageID = message_id
    cmd.Priority = 0
    cmd.CommandDataSetType = 0x0000
    cmd.AffectedSOPInstanceUID = sop_instance
    body = encode_implicit(cmd)
    length = Dataset()
    length.CommandGroupLength = len(body)
    return encode_implicit(length) + body


class RawAssociation:
    """Just enough of the DICOM upper layer to misbehave on purpose."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_pdu(self) -> tuple[int, bytes]:
        head = self._recv_exact(6)
        pdu_type, _, length = struct.unpack(">BBI", head)
        return pdu_type, self._recv_exact(length)

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def associate(self, called: str, calling: str, contexts) -> int:
        """Returns the PDU type of the answer (2 = A-ASSOCIATE-AC)."""
        self.send(associate_rq(called, calling, contexts))
        pdu_type, _ = self.recv_pdu()
        return pdu_type

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# -- an Enhanced MR (spec §4.2.1.3.1.5 splits it for archives without the class) -------------
def _item(**values) -> Dataset:
    d = Dataset()
    for k, x in values.items():
        setattr(d, k, x)
    return d


def enhanced_mr(path, frames=3):
    """A complete Enhanced MR instance of ``frames`` 16x16 frames along z (what dciodvfy checks
    the classic MR images made of it against)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceCreationDate, ds.InstanceCreationTime = "20240102", "101010"
    ds.StudyDate = ds.ContentDate = "20240102"
    ds.StudyTime = ds.ContentTime = "101010"
    ds.AcquisitionDateTime = "20240102101010"
    ds.AccessionNumber, ds.Modality, ds.Manufacturer = "ACC1", "MR", "Lightbox Test"
    ds.ReferringPhysicianName, ds.PatientName, ds.PatientID = "", "Enhanced^Emma", "EMR1"
    ds.PatientBirthDate, ds.PatientSex, ds.PatientPosition = "19800101", "F", "HFS"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, 1
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = generate_uid(), ""
    ds.ManufacturerModelName, ds.DeviceSerialNumber, ds.SoftwareVersions = "T", "1", "1"
    ds.BodyPartExamined = "BRAIN"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = 16, 16, frames, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.BurnedInAnnotation, ds.LossyImageCompression = "NO", "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionNumber = 1
    ds.ContentQualification, ds.ResonantNucleus = "PRODUCT", "1H"
    ds.KSpaceFiltering, ds.MagneticFieldStrength = "NONE", 1.5
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.ImageComments = "enhanced test"
    ds.PixelPresentation, ds.VolumetricProperties, ds.VolumeBasedCalculationTechnique = "MONOCHROME", "VOLUME", "NONE"
    ds.ComplexImageComponent, ds.AcquisitionContrast = "MAGNITUDE", "T1"
    ds.MRAcquisitionType, ds.EchoPulseSequence = "2D", "SPIN"
    ds.DimensionOrganizationSequence = Sequence([_item(DimensionOrganizationUID=generate_uid())])
    ds.SharedFunctionalGroupsSequence = Sequence([_item(
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=[0.8, 0.8], SliceThickness=3)]),
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]),
        MRTimingAndRelatedParametersSequence=Sequence([_item(RepetitionTime=500, FlipAngle=90, EchoTrainLength=1)]),
        MREchoSequence=Sequence([_item(EffectiveEchoTime=15)]),
        FrameVOILUTSequence=Sequence([_item(WindowCenter=1000, WindowWidth=2000)]))])
    ds.PerFrameFunctionalGroupsSequence = Sequence([_item(
        PlanePositionSequence=Sequence([_item(ImagePositionPatient=[0, 0, 3 * f])]),
        FrameContentSequence=Sequence([_item(FrameAcquisitionNumber=f + 1, StackID="1", InStackPositionNumber=f + 1)]))
        for f in range(frames)])
    ds.PixelData = (np.arange(frames * 256, dtype=np.uint16).reshape(frames, 16, 16) % 4096).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


class OrthancPacs:
    """Orthanc as the PACS on 127.0.0.1 (../shared/peers/peers/qr_scp.sh), knowing the
    workstation ``our_aet`` at ``our_port`` as a C-MOVE destination; ``store(paths)``
    fills it with storescu."""

    SCRIPT = ROOT.parent / "shared" / "peers" / "peers" / "qr_scp.sh"

    def __init__(self, work: Path, our_aet: str, our_port: int):
        from conftest import free_port
        self.work, self.dicom_port, self.http_port = work, free_port(), free_port()
        env = dict(os.environ, WS_AET=our_aet, WS_HOST="127.0.0.1", WS_PORT=str(our_port))
        run = subprocess.run(["bash", str(self.SCRIPT), str(self.dicom_port), str(work / "orthanc"),
                              str(self.http_port)], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr

    def store(self, paths) -> None:
        out = run_tool("storescu", "-aet", "TEST", "-aec", "ORTHANC", "127.0.0.1", str(self.dicom_port),
                       *map(str, paths))
        assert out.returncode == 0, out.stdout

    def stop(self) -> None:
        subprocess.run(["bash", str(self.SCRIPT), "stop", str(self.work / "orthanc")], capture_output=True, timeout=60)
