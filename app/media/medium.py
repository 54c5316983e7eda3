"""Reading a medium (CD, DVD, USB stick, a folder, an ISO 9660 image or a ZIP archive) as a
File-set Reader (spec §5.2.1.2.1 "Browse Directory Information", §5.2.1.2.2 "Import into
Application"): the DICOMDIR's patients, studies and series (with their icon images) to
browse before importing, and the selection imported through the one store pipeline.

ISO images are read with pycdlib, member by member: nothing is mounted, so a user without
mount rights (or on a system without loop devices) can still import a downloaded image.
ZIP archives (studies from web portals, discs packed to be mailed) are read in place too.
The DICOMDIR is looked for at the root, then one folder down.

Discs come back scratched and USB sticks half-copied, and some writers get the DICOMDIR
wrong. A medium whose DICOMDIR is missing, unreadable or references files that are not
there is scanned file by file; files the DICOMDIR does not reference are looked at in any
case. Nothing readable is skipped, and what cannot be read is listed with the reason
(``Medium.problems``), never dropped quietly.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from app.dicom import charsets, statuses
from app.dicom.encoding import split_part10
from app.importer import DICOMDIR_CLASS, ImportSummary, store_all
from app.store.ingest import Ingest, StoreResult
from app.media.dicomdir import record_tree

log = logging.getLogger(__name__)

PREAMBLE = b"\0" * 128
# Whether an unreferenced file is DICOM is decided on its first bytes: a disc may carry a
# viewer or a video of hundreds of megabytes that need not be read whole to be passed over.
HEAD = 64 * 1024


class MediumError(Exception):
    """The medium cannot be opened at all (not a folder, not a readable ISO image)."""


class _Unreadable(Exception):
    """A file of the medium that cannot be imported; the message says why."""


class _NotInstance(Exception):
    """A DICOM file that indexes rather than holds an instance (another DICOMDIR)."""


# -- what a medium holds --------------------------------------------------------------------
@dataclass
class Instance:
    file_id: str  # path on the medium, "/"-separated, as the medium spells it
    sop_instance_uid: str | None
    sop_class_uid: str | None
    number: int | None = None
    record_type: str | None = None  # of its DICOMDIR record; None for a file found by reading it
    icon: np.ndarray | None = None  # uint8, rows x columns (x 3 for colour); 255 is white


@dataclass
class Series:
    uid: str | None
    modality: str | None = None
    number: int | None = None
    description: str | None = None
    icon: np.ndarray | None = None
    instances: list[Instance] = field(default_factory=list)


@dataclass
class Study:
    uid: str | None
    date: str | None = None
    time: str | None = None
    description: str | None = None
    accession_number: str | None = None
    study_id: str | None = None
    series: list[Series] = field(default_factory=list)


@dataclass
class Patient:
    name: str | None
    patient_id: str | None
    birth_date: str | None = None
    studies: list[Study] = field(default_factory=list)


def _text(ds: Dataset, keyword: str) -> str | None:
    try:
        return charsets.text(ds, keyword)
    except Exception:  # noqa: BLE001 - one bad value only loses that value in the browser
        return None


def _number(ds: Dataset, keyword: str) -> int | None:
    value = _text(ds, keyword)
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


class _Tree:
    """Patient -> Study -> Series -> Instance, merged by UID: a scanned file joins the study
    and series the DICOMDIR already lists."""

    def __init__(self) -> None:
        self.patients: list[Patient] = []
        self._patients: dict[tuple, Patient] = {}
        self._studies: dict[str, Study] = {}
        self._series: dict[str, Series] = {}
        self.sops: set[str] = set()

    def patient(self, ds: Dataset) -> Patient:
        name, pid = _text(ds, "PatientName"), _text(ds, "PatientID")
        p = self._patients.get((pid, name))
        if p is None:
            p = self._patients[(pid, name)] = Patient(name, pid, _text(ds, "PatientBirthDate"))
            self.patients.append(p)
        return p

    def study(self, patient: Patient, ds: Dataset) -> Study:
        uid = _text(ds, "StudyInstanceUID")
        if uid and uid in self._studies:
            return self._studies[uid]
        s = Study(uid, _text(ds, "StudyDate"), _text(ds, "StudyTime"), _text(ds, "StudyDescription"),
                  _text(ds, "AccessionNumber"), _text(ds, "StudyID"))
        if uid:
            self._studies[uid] = s
        patient.studies.append(s)
        return s

    def series(self, study: Study, ds: Dataset) -> Series:
        uid = _text(ds, "SeriesInstanceUID")
        if uid and uid in self._series:
            return self._series[uid]
        s = Series(uid, _text(ds, "Modality"), _number(ds, "SeriesNumber"), _text(ds, "SeriesDescription"),
                   _icon(ds))
        if uid:
            self._series[uid] = s
        study.series.append(s)
        return s

    def add(self, series: Series, instance: Instance) -> bool:
        if instance.sop_instance_uid:
            if instance.sop_instance_uid in self.sops:
                return False  # a second copy of the same instance imports as "already present"
            self.sops.add(instance.sop_instance_uid)
        series.instances.append(instance)
        return True


# -- icon images (PS3.3 F.7) ----------------------------------------------------------------
def _icon(record: Dataset) -> np.ndarray | None:
    """The record's icon as shown: uint8, MONOCHROME1 inverted, palettes applied."""
    try:
        seq = record.get("IconImageSequence")
        if not seq:
            return None
        item = seq[0]
        rows, cols = int(item.Rows), int(item.Columns)
        spp = int(item.get("SamplesPerPixel", 1))
        photometric = str(item.get("PhotometricInterpretation", "MONOCHROME2")).strip()
        if int(item.BitsAllocated) != 8 or not (0 < rows <= 128 and 0 < cols <= 128):
            # PS3.3 F.7 allows only these; a reader that guesses at others shows noise
            log.debug("icon image of %dx%d, %s bits not shown", rows, cols, item.BitsAllocated)
            return None
        arr = np.frombuffer(item.PixelData, np.uint8, count=rows * cols * spp)
        if spp == 3:
            if int(item.get("PlanarConfiguration", 0)) == 1:
                return np.ascontiguousarray(arr.reshape(3, rows, cols).transpose(1, 2, 0))
            return arr.reshape(rows, cols, 3).copy()
        arr = arr.reshape(rows, cols)
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut
            rgb = apply_color_lut(arr, item)
            return (rgb >> 8).astype(np.uint8) if rgb.dtype.itemsize > 1 else rgb.astype(np.uint8)
        return 255 - arr if photometric == "MONOCHROME1" else arr.copy()
    except Exception as exc:  # noqa: BLE001 - a broken icon loses the icon, not the record
        log.debug("icon image cannot be decoded: %s", exc)
        return None


# -- where the files come from --------------------------------------------------------------
_VERSION = re.compile(r";\d*$")


class _Source:
    """The files of a medium by file ID ("/"-separated), found case-insensitively: media
    written on other systems vary in case, and ISO 9660 names carry ";1" and a dot."""

    name: str

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}  # upper-case file ID -> file ID
        self.base = ""  # the folder of the DICOMDIR when it is not at the root ("PATIENT/")

    def files(self) -> list[str]:
        return list(self._ids.values())

    def resolve(self, parts: Iterable[str]) -> str | None:
        """The file a DICOMDIR's File ID names (relative to the DICOMDIR's folder)."""
        return self._ids.get((self.base + "/".join(p.strip() for p in parts)).upper())

    def dicomdir(self) -> str | None:
        """The DICOMDIR at the root; else the only one in the shallowest folder that has one
        (a ZIP or a copied disc whose files sit in a folder of their own): the File IDs of
        its records are then resolved from that folder."""
        found = [f for f in self.files() if f.rsplit("/", 1)[-1].upper() == "DICOMDIR"]
        if not found:
            return None
        depth = min(f.count("/") for f in found)
        shallowest = [f for f in found if f.count("/") == depth]
        if len(shallowest) > 1:
            return None  # several File-sets side by side: every file is read
        self.base = shallowest[0][:-len("DICOMDIR")]
        return shallowest[0]

    def read(self, file_id: str, limit: int | None = None) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Folder(_Source):
    def __init__(self, root: Path):
        super().__init__()
        self.root, self.name = root, str(root)
        for dirpath, dirs, names in os.walk(root):
            dirs.sort()  # the same order every time, as app.importer
            rel = Path(dirpath).relative_to(root)
            for n in sorted(names):
                fid = (rel / n).as_posix()
                self._ids.setdefault(fid.upper(), fid)

    def read(self, file_id: str, limit: int | None = None) -> bytes:
        with open(self.root / file_id, "rb") as f:
            return f.read(limit) if limit else f.read()


class _Iso(_Source):
    """An ISO 9660 image read with pycdlib. Rock Ridge names first, then Joliet, then the
    ISO 9660 names (upper case, ";1" and a trailing dot removed): the names DICOM file IDs
    were written with survive in all three."""

    def __init__(self, path: Path):
        import pycdlib
        super().__init__()
        self.name = str(path)
        self.iso = pycdlib.PyCdlib()
        try:
            self.iso.open(str(path))
        except Exception as exc:
            raise MediumError(f"{path.name} cannot be read as an ISO 9660 image: {exc}") from exc
        if self.iso.has_rock_ridge():
            self.kind = "rr_path"
        elif self.iso.has_joliet():
            self.kind = "joliet_path"
        else:
            self.kind = "iso_path"
        self._real: dict[str, str] = {}
        try:
            for dirpath, dirs, names in self.iso.walk(**{self.kind: "/"}):
                dirs.sort()
                for n in sorted(names):
                    real = dirpath.rstrip("/") + "/" + n
                    fid = "/".join(self._clean(p) for p in real.strip("/").split("/"))
                    if fid.upper() not in self._ids:
                        self._ids[fid.upper()] = fid
                        self._real[fid] = real
        except Exception as exc:
            self.iso.close()
            raise MediumError(f"the directories of {path.name} cannot be read: {exc}") from exc

    def _clean(self, name: str) -> str:
        if self.kind != "iso_path":
            return name
        name = _VERSION.sub("", name)
        return name[:-1] if name.endswith(".") else name

    def read(self, file_id: str, limit: int | None = None) -> bytes:
        with self.iso.open_file_from_iso(**{self.kind: self._real[file_id]}) as f:
            return f.read(limit) if limit else f.read()

    def close(self) -> None:
        self.iso.close()


class _Zip(_Source):
    """A ZIP archive (a disc or a study as a web portal or a colleague sends it), read in place."""

    def __init__(self, path: Path):
        import zipfile
        super().__init__()
        self.name = str(path)
        try:
            self.zip = zipfile.ZipFile(path)
            members = [i for i in self.zip.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as exc:
            raise MediumError(f"{path.name} cannot be read as a ZIP archive: {exc}") from exc
        self._real: dict[str, str] = {}
        for info in sorted(members, key=lambda i: i.filename):
            fid = info.filename.replace("\\", "/").lstrip("/")
            if fid.upper() not in self._ids and "__MACOSX/" not in fid.upper():
                self._ids[fid.upper()] = fid
                self._real[fid] = info.filename

    def read(self, file_id: str, limit: int | None = None) -> bytes:
        try:
            with self.zip.open(self._real[file_id]) as f:
                return f.read(limit) if limit else f.read()
        except RuntimeError as exc:  # zipfile's word for an encrypted member
            raise OSError(f"encrypted in the ZIP archive ({exc}): unpack it with its password first") from None

    def close(self) -> None:
        self.zip.close()


def is_zip_archive(path: Path) -> bool:
    """A ZIP archive, by its content; never a DICOM file (whose data could end like one)."""
    import zipfile
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] != b"DICM" and head[:4] == b"PK\x03\x04" and zipfile.is_zipfile(path)


def is_medium_file(path: Path) -> bool:
    """A file that holds a whole medium: an ISO image or a ZIP archive."""
    return is_iso_image(path) or is_zip_archive(path)


def is_iso_image(path: Path) -> bool:
    """An ISO 9660 image, by its first volume descriptor (sector 16), whatever its name."""
    try:
        with open(path, "rb") as f:
            f.seek(16 * 2048 + 1)
            return f.read(5) == b"CD001"
    except OSError:
        return False


# -- is it complete? ------------------------------------------------------------------------
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
                        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
_UNDEFINED, _ITEM, _ITEM_END, _SEQ_END = 0xFFFFFFFF, 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


class _Short(Exception):
    pass


class _Odd(Exception):
    """A structure this check does not follow: the store pipeline judges the file."""


def truncation(raw: bytes | memoryview, transfer_syntax: str) -> str | None:
    """Why the data set ``raw`` is incomplete, or None. The store pipeline reads headers
    only, and pydicom hands out a cut-off pixel data value without a word: a file a bad
    sector cut short would be archived as if whole."""
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            raw = d.decompress(bytes(raw))
        except zlib.error as exc:
            return f"the deflated data set cannot be inflated: {exc}"
        if not d.eof:
            return "truncated: the deflated data set ends early"
    buf, end = memoryview(raw), len(raw)
    order = ">" if transfer_syntax == ExplicitVRBigEndian else "<"
    tag_len, tag_vr = struct.Struct(order + "HHI"), struct.Struct(order + "HH2s")
    short, long_ = struct.Struct(order + "H"), struct.Struct(order + "I")

    def header(pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
        if end - pos < 8:
            raise _Short(pos)
        group, elem, length = tag_len.unpack_from(buf, pos)
        tag = group << 16 | elem
        if implicit or group == 0xFFFE:
            return tag, None, length, pos + 8
        vr = tag_vr.unpack_from(buf, pos)[2]
        if vr in _SHORT_VRS:
            return tag, vr, short.unpack_from(buf, pos + 6)[0], pos + 8
        if vr in _LONG_VRS:
            if end - pos < 12:
                raise _Short(pos)
            return tag, vr, long_.unpack_from(buf, pos + 8)[0], pos + 12
        raise _Odd

    def elements(pos: int, implicit: bool, in_item: bool) -> int:
        while pos < end:
            if not in_item and end - pos < 8 and not any(buf[pos:]):
                return end  # a few bytes of padding after the last element
            tag, vr, length, start = header(pos, implicit)
            if in_item and tag == _ITEM_END:
                return start
            if length == _UNDEFINED:
                pos = items(start, implicit or vr == b"UN")  # PS3.5 §6.2.2
            elif start + length > end:
                raise _Short(tag, length, end - start)
            else:
                pos = start + length
        if in_item:
            raise _Short(pos)
        return pos

    def items(pos: int, implicit: bool) -> int:
        while True:
            tag, _, length, start = header(pos, True)
            if tag == _SEQ_END:
                return start
            if tag != _ITEM:
                raise _Odd
            if length == _UNDEFINED:
                pos = elements(start, implicit, True)
            elif start + length > end:
                raise _Short(pos)
            else:
                pos = start + length

    try:
        elements(0, transfer_syntax == ImplicitVRLittleEndian, False)
    except _Odd:
        return None
    except RecursionError:
        return None
    except _Short as exc:
        if len(exc.args) == 3:
            tag, length, have = exc.args
            return f"truncated: the file ends inside ({tag >> 16:04X},{tag & 0xFFFF:04X}), {have} of {length} bytes"
        return "truncated: the file ends inside a data element"
    return None


# -- one file -------------------------------------------------------------------------------
def _looks_explicit(data: bytes) -> bool:
    return len(data) >= 6 and (data[4:6] in _SHORT_VRS or data[4:6] in _LONG_VRS)


def _as_part10(data: bytes) -> bytes | None:
    """``data`` as Ingest.store_part10 takes it (Part 10, or a bare Implicit VR data set),
    where that needs no decoding: files without a preamble get one. None: not recognised."""
    if data[128:132] == b"DICM":
        return data
    if data[:4] == b"DICM":
        return PREAMBLE + data
    if data[:2] == b"\x02\x00" and _looks_explicit(data):  # file meta without preamble and marker
        return PREAMBLE + b"DICM" + data
    if data[:2] == b"\x08\x00" and not _looks_explicit(data):
        return data
    return None


def _forced(data: bytes) -> Dataset | None:
    """pydicom's guess (force=True), the last resort: only a data set with its SOP Class and
    SOP Instance UIDs counts, as force reads almost anything into some elements."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(BytesIO(data), force=True)
            ok = bool(ds.get("SOPInstanceUID")) and bool(ds.get("SOPClassUID"))
    except Exception:  # noqa: BLE001 - not DICOM
        return None
    return ds if ok else None


def _encode_forced(ds: Dataset) -> bytes:
    """A data set pydicom had to guess at, written as Part 10 in the encoding it was found in
    (changing the byte order would need every binary value swapped)."""
    implicit, little = ds.original_encoding
    implicit, little = bool(implicit), little is not False
    ts = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ts
    ds.file_meta = meta
    out = BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def _short_reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _decode(data: bytes) -> tuple[bytes, Dataset]:
    """(bytes for Ingest.store_part10, header) of one file of a medium; _Unreadable (with
    the reason) or _NotInstance otherwise."""
    if not data:
        raise _Unreadable("empty file")
    part10 = _as_part10(data)
    if part10 is not None:
        try:
            meta, offset = split_part10(part10)
        except Exception as exc:
            raise _Unreadable(f"the file meta information cannot be read: {_short_reason(exc)}") from exc
        if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS:
            raise _NotInstance
        ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ImplicitVRLittleEndian
        if not ts:
            raise _Unreadable("the file meta information has no Transfer Syntax UID")
        if reason := truncation(memoryview(part10)[offset:], ts):
            raise _Unreadable(reason)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = dcmread(BytesIO(part10), stop_before_pixels=True, force=meta is None)
                header.get("SOPInstanceUID")  # values are decoded late: fail here, not later
        except Exception as exc:
            raise _Unreadable(f"the data set cannot be read: {_short_reason(exc)}") from exc
    else:
        header = _forced(data)
        if header is None:
            raise _Unreadable("not a DICOM file (no DICM marker, and no data set with SOP Class and "
                              "SOP Instance UIDs in it)")
        try:
            part10 = _encode_forced(header)
        except Exception as exc:
            raise _Unreadable(f"a data set without file meta information that cannot be rewritten: "
                              f"{_short_reason(exc)}") from exc
    for keyword, name in (("SOPClassUID", "SOP Class UID"), ("SOPInstanceUID", "SOP Instance UID")):
        if not _text(header, keyword):
            raise _Unreadable(f"a DICOM file without {name}: not a stored instance")
    return part10, header


def _looks_dicom(head: bytes) -> bool:
    return _as_part10(head) is not None or _forced(head) is not None


# -- the medium -----------------------------------------------------------------------------
class Medium:
    """A medium opened for reading (:func:`open_medium`)."""

    def __init__(self, source: _Source, dicomdir: str | None,
                 progress: Callable[[int, int], None] | None = None):
        self.source = source
        self.name = source.name
        self._tree = _Tree()
        self.records: list[Patient] = self._tree.patients
        self.problems: list[tuple[str, str]] = []
        # True: the DICOMDIR was missing, unreadable or referenced files that are not there,
        # so the medium was read file by file
        self.scanned = dicomdir is None
        self.unindexed: list[str] = []  # instances found that the DICOMDIR does not reference
        # not instances: non-DICOM files beside an intact DICOMDIR (a viewer, documents), and
        # DICOMDIRs of file-sets copied into this one
        self.ignored: list[str] = []
        self._uids_of_problem: dict[str, set[str]] = {}
        try:
            self._load(dicomdir, progress)
        except BaseException:
            source.close()
            raise

    def __enter__(self) -> "Medium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.source.close()

    def read(self, file_id: str) -> bytes:
        """The bytes of a file of the medium, as stored there."""
        return self.source.read(file_id)

    def instances(self, select: set[str] | None = None) -> Iterator[tuple[Patient, Study, Series, Instance]]:
        """Every instance (``select``: only those whose Study, Series or SOP Instance UID is in it)."""
        for p in self.records:
            for st in p.studies:
                for se in st.series:
                    for i in se.instances:
                        if select is None or {st.uid, se.uid, i.sop_instance_uid} & select:
                            yield p, st, se, i

    def problems_for(self, select: set[str] | None) -> list[tuple[str, str]]:
        """The problems that may concern ``select``: a file the DICOMDIR names but that is
        missing counts for its own study only; an unreadable file could hold anything."""
        if select is None:
            return list(self.problems)
        return [(f, r) for f, r in self.problems
                if not (uids := self._uids_of_problem.get(f)) or uids & select]

    # -- reading --------------------------------------------------------------------------
    def _load(self, dicomdir: str | None, progress) -> None:
        referenced: set[str] = set()
        skip: set[str] = set()
        if dicomdir is not None:
            skip.add(dicomdir)
            try:
                ds = self._read_dicomdir(dicomdir)
            except _Unreadable as exc:
                self.scanned = True
                self.problems.append((dicomdir, f"DICOMDIR unreadable, every file was read instead: {exc}"))
                log.warning("%s: the DICOMDIR cannot be read (%s); reading every file", self.name, exc)
            else:
                if (desc := ds.get("FileSetDescriptorFileID")) and (fid := self.source.resolve(_parts(desc))):
                    skip.add(fid)
                self._walk(record_tree(ds, self.name), referenced)
        candidates = [f for f in self.source.files() if f not in referenced and f not in skip]
        for n, fid in enumerate(candidates):
            self._scan(fid)
            if progress:
                progress(n + 1, len(candidates))
        if self.unindexed and not self.scanned:
            log.info("%s: %d instance(s) the DICOMDIR does not reference were found", self.name, len(self.unindexed))

    def _read_dicomdir(self, file_id: str) -> Dataset:
        try:
            data = self.source.read(file_id)
        except Exception as exc:
            raise _Unreadable(f"cannot be read from the medium: {_short_reason(exc)}") from exc
        if data[128:132] != b"DICM":
            raise _Unreadable("not a DICOM file")
        try:
            meta, offset = split_part10(data)
            ts = str(meta.get("TransferSyntaxUID", "")) or ExplicitVRLittleEndian
            if reason := truncation(memoryview(data)[offset:], ts):
                raise _Unreadable(reason)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(BytesIO(data))
            records = ds.DirectoryRecordSequence
            for r in records:  # decoded late by pydicom: any damage shows here, not mid-walk
                r.get("DirectoryRecordType")
        except _Unreadable:
            raise
        except Exception as exc:
            raise _Unreadable(_short_reason(exc)) from exc
        if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) != DICOMDIR_CLASS:
            raise _Unreadable("not a DICOMDIR (Media Storage SOP Class is not Media Storage Directory)")
        return ds

    def _walk(self, nodes: list, referenced: set[str], patient: Patient | None = None,
              study: Study | None = None, series: Series | None = None) -> None:
        for rec, children in nodes:
            if rec.get("RecordInUseFlag", 0xFFFF) == 0:
                continue  # deleted by a File-set Updater
            kind = str(rec.get("DirectoryRecordType", "")).strip()
            if kind == "PATIENT":
                self._walk(children, referenced, self._tree.patient(rec))
            elif kind == "STUDY" and patient is not None:
                self._walk(children, referenced, patient, self._tree.study(patient, rec))
            elif kind == "SERIES" and study is not None:
                self._walk(children, referenced, patient, study, self._tree.series(study, rec))
            elif "ReferencedFileID" in rec and series is not None:
                self._leaf(rec, kind, series, study, referenced)
            else:
                # records outside Patient/Study/Series (hanging protocols, private ones):
                # their files are looked at like any unreferenced file
                self._walk(children, referenced, patient, study, series)

    def _leaf(self, rec: Dataset, kind: str, series: Series, study: Study, referenced: set[str]) -> None:
        parts = _parts(rec.ReferencedFileID)
        fid = self.source.resolve(parts)
        sop = _text(rec, "ReferencedSOPInstanceUIDInFile")
        if fid is None:
            shown = "/".join(parts)
            self.scanned = True
            self.problems.append((shown, "referenced by the DICOMDIR, but not on the medium"))
            self._uids_of_problem[shown] = {u for u in (sop, series.uid, study.uid) if u}
            return
        referenced.add(fid)
        self._tree.add(series, Instance(fid, sop, _text(rec, "ReferencedSOPClassUIDInFile"),
                                        _number(rec, "InstanceNumber"), kind, _icon(rec)))

    def _scan(self, fid: str) -> None:
        """A file the DICOMDIR does not reference (or every file, without a DICOMDIR)."""
        try:
            head = self.source.read(fid, HEAD)
            if not self.scanned and not _looks_dicom(head):
                self.ignored.append(fid)
                return
            data = head if len(head) < HEAD else self.source.read(fid)
            _, header = _decode(data)
        except _NotInstance:
            # another DICOMDIR (a medium copied into this one): its files are read here
            self.ignored.append(fid)
            return
        except _Unreadable as exc:
            self.problems.append((fid, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - a bad sector, an ISO extent past the end
            self.problems.append((fid, f"cannot be read from the medium: {_short_reason(exc)}"))
            return
        tree = self._tree
        patient = tree.patient(header)
        series = tree.series(tree.study(patient, header), header)
        if tree.add(series, Instance(fid, _text(header, "SOPInstanceUID"), _text(header, "SOPClassUID"),
                                     _number(header, "InstanceNumber"))):
            self.unindexed.append(fid)


def _parts(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def open_medium(path: Path | str, progress: Callable[[int, int], None] | None = None) -> Medium:
    """A folder, an ISO 9660 image or a ZIP archive (both recognised by their content, not
    their name) with its DICOMDIR at the root or in a folder of its own (in any case), or
    none; or a DICOMDIR file. ``progress(done, total)``: files
    the DICOMDIR does not reference, as they are read. MediumError when it cannot be opened."""
    path = Path(path)
    if path.is_dir() or is_iso_image(path) or is_zip_archive(path):
        source: _Source = _Folder(path) if path.is_dir() else _Iso(path) if is_iso_image(path) else _Zip(path)
        dicomdir = source.dicomdir()
    elif path.is_file():
        source = _Folder(path.parent)
        dicomdir = path.name
    else:
        raise MediumError(f"{path} cannot be found. Is the medium still inserted?")
    return Medium(source, dicomdir, progress)


# -- import ---------------------------------------------------------------------------------
def import_medium(ingest: Ingest, medium: Medium, select: Iterable[str] | None = None,
                  progress: Callable[[str, StoreResult], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> ImportSummary:
    """Import the instances of ``medium`` (``select``: Study, Series or SOP Instance UIDs;
    None: all) through the one store pipeline. The summary's ``rejected`` lists the
    medium's problems that may concern the selection first, then the files refused now."""
    select = set(select) if select is not None else None

    def stored(instance: Instance) -> StoreResult:
        try:
            data, _ = _decode(medium.read(instance.file_id))
        except _Unreadable as exc:
            return StoreResult(statuses.CANNOT_UNDERSTAND, str(exc), sop_instance_uid=instance.sop_instance_uid)
        except _NotInstance:
            return StoreResult(statuses.CANNOT_UNDERSTAND, "a DICOMDIR, not an instance")
        except Exception as exc:  # noqa: BLE001 - a bad sector fails this file, not the import
            return StoreResult(statuses.CANNOT_UNDERSTAND, f"cannot be read from the medium: {_short_reason(exc)}",
                               sop_instance_uid=instance.sop_instance_uid)
        return ingest.store_part10(data, wait_indexed=False)
    sources = ((i.file_id, lambda i=i: stored(i)) for *_, i in medium.instances(select))
    return store_all(ingest, sources, ImportSummary(rejected=medium.problems_for(select)), progress, cancelled)
