"""Export to CD, DVD or USB (spec §5, Tables 5-1 to 5-5): instances of the archive written as
a DICOM File-set of an application profile (app.media.profiles) — each converted to the
transfer syntax the profile's table gives its SOP class, de-identified when asked
(app.media.deidentify) —, with a DICOMDIR, as an ISO 9660 image ready to burn (CD, DVD) or
into a folder (a mounted USB stick, which may already hold a File-set: we then update it, FSU).

The DICOMDIR and the ISO 9660 names come from pydicom's FileSet (PTxxxxxx/STxxxxxx/SExxxxxx/
IMxxxxxx: upper case, 8 characters, 4 levels; the record types of PS3.3 F.5 for SR,
presentation states, key objects, encapsulated documents, RT, waveforms...) and the image
from pycdlib: both well-kept, so we write neither format by hand. Every file carries our
implementation class UID (Table 5-1). Content larger than the medium is split into volumes,
studies kept whole where they fit; a medium that cannot hold a single instance is refused.

Every volume is read back when written (app.media.verify): each file the DICOMDIR
references must be there, readable, be the instance it names and have the checksum it was
written with."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DICOMDIR_MARGIN = 0.02  # of the medium kept for the DICOMDIR and the ISO 9660 structures
MAX_FILESET_ID = 16  # CS


class ExportError(Exception):
    """An export that cannot be done, for the user."""


@dataclass(frozen=True)
class Item:
    """One instance to export."""
    path: str
    sop_class: str
    sop_instance: str
    study: str
    series: str


@dataclass
class ExportOptions:
    profile: str  # app.media.profiles.PROFILES
    destination: Path  # CD/DVD: the ISO image (NAME-2.iso... for more volumes); USB: the folder
    fileset_id: str = "LIGHTBOX"
    deidentify: str | None = None  # full | reduced | service (spec Table 5-6)
    mapping: Path | None = None  # where to keep the original -> new UID map (CSV), if at all
    patient_name: str = "ANONYMOUS"  # the pseudonym of a de-identified patient
    icons: int | None = 64  # icon images of 64x64 or 128x128 (8 bits) in the DICOMDIR; None: none
    lossy: bool = False  # J2K profiles: JPEG 2000 lossy where Table 5-3 allows it
    capacity: int | None = None  # bytes per volume, instead of the profile's medium (tests)


@dataclass
class Staged:
    item: Item
    path: Path  # converted, in the staging folder
    size: int
    sop_instance: str  # in the file-set (new when de-identified)


@dataclass
class ExportReport:
    volumes: list[Path] = field(default_factory=list)  # ISO images or the USB folder
    exported: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (SOP Instance UID, why)
    warnings: list[str] = field(default_factory=list)
    verified: list = field(default_factory=list)  # app.media.verify.VerifyReport per volume
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.volumes) and all(v.ok for v in self.verified)


Progress = Callable[[int, int, str], None]


def items_from_archive(archive, *, studies: list[str] = (), series: list[str] = ()) -> list[Item]:
    """The archived instances of the studies and series, in study, series and image order."""
    from app.store.query import iter_matches
    out: list[Item] = []
    for level_key, uids in (("StudyInstanceUID", studies), ("SeriesInstanceUID", series)):
        for uid in uids:
            for r in iter_matches(archive.engine, "instance", {level_key: uid}, computed=frozenset()):
                out.append(Item(str(archive.files.absolute(r["path"])), r.get("SOPClassUID") or "",
                                r.get("SOPInstanceUID") or "", r.get("StudyInstanceUID") or uid,
                                r.get("SeriesInstanceUID") or ""))
    seen, unique = set(), []
    for item in out:
        if item.sop_instance not in seen:
            seen.add(item.sop_instance)
            unique.append(item)
    return unique


def export(items: list[Item], options: ExportOptions, progress: Progress | None = None,
           cancelled: Callable[[], bool] | None = None) -> ExportReport:
    from app.media import profiles
    if options.profile not in profiles.PROFILES:
        raise ExportError(f"unknown profile {options.profile}: one of {', '.join(profiles.PROFILES)}")
    if not items:
        raise ExportError("nothing to export: choose studies or series")
    profile = profiles.PROFILES[options.profile]
    fileset_id = _fileset_id(options.fileset_id)
    report = ExportReport()
    total = len(items)
    with tempfile.TemporaryDirectory(prefix="lightbox-export-") as tmp:
        staging = Path(tmp) / "staged"
        staging.mkdir()
        staged = _stage(items, options, staging, report, progress, cancelled)
        if not staged:
            raise ExportError("none of the instances can go on this medium: " + "; ".join(
                sorted({why for _, why in report.refused})[:3]))
        capacity = options.capacity or (_free_space(options.destination) if profile.capacity is None
                                        else profile.capacity)
        volumes = plan(staged, int(capacity * (1 - DICOMDIR_MARGIN)))
        if len(volumes) > 1 and not profile.iso:
            raise ExportError(f"{_mb(sum(s.size for s in staged))} do not fit the {_mb(capacity)} free in "
                              f"{options.destination}: free some space or use a larger stick")
        for n, volume in enumerate(volumes, 1):
            _check(cancelled)
            label = f"volume {n} of {len(volumes)}: " if len(volumes) > 1 else ""
            if progress:
                progress(total, total, f"{label}writing the DICOMDIR and the {'ISO image' if profile.iso else 'folder'}")
            out = _write_volume(volume, options, profile, fileset_id, n, len(volumes), Path(tmp), report)
            report.volumes.append(out)
    report.exported = sum(len(v) for v in volumes)
    report.bytes = sum(s.size for v in volumes for s in v)
    return report


def _check(cancelled) -> None:
    if cancelled is not None and cancelled():
        raise ExportError("cancelled; nothing was written")


def _fileset_id(text: str) -> str:
    """A File-set ID (CS, 16 characters: upper case, digits, space, underscore)."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in " _") else "_" for c in text.upper())[:MAX_FILESET_ID]
    return cleaned.strip() or "LIGHTBOX"


def _stage(items: list[Item], options: ExportOptions, staging: Path, report: ExportReport,
           progress: Progress | None, cancelled) -> list[Staged]:
    """Every instance read, de-identified if asked, converted to its profile's syntax and
    written to ``staging``; those that cannot go on the medium in ``report.refused``."""
    import pydicom

    from app.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
    uids = None
    if options.deidentify:
        from app.media.deidentify import UidMap
        uids = UidMap()
    out: list[Staged] = []
    for i, item in enumerate(items):
        _check(cancelled)
        try:
            ds = pydicom.dcmread(item.path)
            ts = _convert(ds, options)
        except _Refused as exc:
            report.refused.append((item.sop_instance, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - an unreadable or undecodable file: said, the rest goes on
            report.refused.append((item.sop_instance, f"cannot be read or converted: {exc}"))
            log.warning("export: %s: %s", item.path, exc)
            continue
        if uids is not None:
            from app.media.deidentify import deidentify
            outcome = deidentify(ds, options.deidentify, uids, patient_name=options.patient_name)
            report.warnings += [f"{item.sop_instance}: {w}" for w in outcome.warnings]
        if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
            del ds.SpecificCharacterSet  # empty is no character set (1C): the DICOMDIR records would copy it
        ds.file_meta.TransferSyntaxUID = ts
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID  # Table 5-1: ours
        ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        path = staging / f"{i:08}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(Staged(item, path, path.stat().st_size, str(ds.SOPInstanceUID)))
        if progress:
            progress(i + 1, len(items), f"{i + 1} of {len(items)} prepared")
    if uids is not None and options.mapping is not None:
        uids.save(options.mapping)
    return out


class _Refused(Exception):
    pass


def _convert(ds, options: ExportOptions) -> str:
    """Convert ``ds`` in place to the syntax its class has in the profile: that syntax."""
    from pydicom.uid import UID

    from app.dicom import compression
    from app.media import profiles
    sop_class = str(ds.SOPClassUID)
    target = profiles.target_syntax(options.profile, sop_class, lossy=options.lossy)
    if target is None:
        raise _Refused(f"{UID(sop_class).name or sop_class} is not in the {options.profile} profile "
                       "(spec Tables 5-3/5-4)")
    current = UID(str(ds.file_meta.get("TransferSyntaxUID", EXPLICIT_LE)))
    if current.is_compressed and str(current) != target:
        ds.decompress(generate_instance_uid=False)
    if target == EXPLICIT_LE or "PixelData" not in ds:
        return EXPLICIT_LE  # what has no pixels is written uncompressed whatever the row lists
    if str(current) == target:
        return target
    if compression.eligible(ds, target):
        compression.compress(ds, target)
        return target
    if EXPLICIT_LE in profiles.allowed(options.profile, sop_class):  # J2K cannot hold it (e.g. YBR): uncompressed
        return EXPLICIT_LE
    raise _Refused(f"cannot be written in {UID(target).name} and the profile allows nothing else")


def plan(staged: list[Staged], capacity: int) -> list[list[Staged]]:
    """Volumes of at most ``capacity`` bytes: whole studies where they fit, a study larger
    than a medium split by series, a series larger than a medium by instance."""
    if any(s.size > capacity for s in staged):
        big = max(staged, key=lambda s: s.size)
        raise ExportError(f"an instance of {_mb(big.size)} does not fit a medium of {_mb(capacity)}")
    groups: list[list[Staged]] = []
    for study in _grouped(staged, lambda s: s.item.study):
        if sum(s.size for s in study) <= capacity:
            groups.append(study)
            continue
        for series in _grouped(study, lambda s: s.item.series):
            if sum(s.size for s in series) <= capacity:
                groups.append(series)
            else:
                groups += [[s] for s in series]
    volumes: list[list[Staged]] = [[]]
    used = 0
    for group in groups:
        size = sum(s.size for s in group)
        if used + size > capacity and volumes[-1]:
            volumes.append([])
            used = 0
        if size > capacity:  # a split series: fill instance by instance
            for s in group:
                if used + s.size > capacity:
                    volumes.append([])
                    used = 0
                volumes[-1].append(s)
                used += s.size
            continue
        volumes[-1] += group
        used += size
    return volumes


def _grouped(staged: list[Staged], key) -> list[list[Staged]]:
    groups: dict[str, list[Staged]] = {}
    for s in staged:
        groups.setdefault(key(s), []).append(s)
    return list(groups.values())


def _write_volume(volume: list[Staged], options: ExportOptions, profile, fileset_id: str, number: int,
                  count: int, tmp: Path, report: ExportReport) -> Path:
    from pydicom.fileset import FileSet

    from app.media import verify
    if profile.iso:
        folder = tmp / f"volume{number}"
        folder.mkdir()
        fs = FileSet()
        target = folder
    else:
        target = Path(options.destination)
        target.mkdir(parents=True, exist_ok=True)
        existing = _find_dicomdir(target)
        fs = FileSet(existing) if existing else FileSet()  # FSU: a stick that holds a File-set already
    if not fs.ID:
        fs.ID = fileset_id
    added: set[str] = set()
    with _lenient_records():
        for s in volume:
            try:
                instance = fs.add(s.path)
            except ValueError as exc:  # no directory record for this class: not on the medium
                report.refused.append((s.sop_instance, f"no DICOMDIR record for it ({exc})"))
                continue
            added.add(s.sop_instance)
            if options.icons:
                _add_icon(instance, s.path, options.icons, report)
    if not added:
        raise ExportError("no instance could be given a DICOMDIR record: " + "; ".join(
            sorted({why for _, why in report.refused})[:2]))
    _set_our_implementation(fs)
    fs.write(target if not fs.path else None)
    # what the read-back must find: each file as the File-set holds it now
    checksums = {str(i.SOPInstanceUID): hashlib.sha256(Path(i.path).read_bytes()).hexdigest()
                 for i in fs if str(i.SOPInstanceUID) in added}
    if profile.iso:
        out = _volume_path(Path(options.destination), number, count)
        _write_iso(folder, out, fileset_id)
        shutil.rmtree(folder, ignore_errors=True)
    else:
        out = target
    report.verified.append(verify.verify(out, checksums))
    return out


# Type 1 keys of the directory records (PS3.3 F.5) that instances often have empty (Study ID
# and Series Number are type 2 in the IODs; a de-identified Study Date is empty): the record
# gets these stand-ins, the instance stays as it is
_RECORD_STAND_INS = {
    "PATIENT": {"PatientID": "UNKNOWN"},
    "STUDY": {"StudyDate": "19000101", "StudyTime": "000000", "StudyID": "0"},
    "SERIES": {"SeriesNumber": 0},
    "IMAGE": {"InstanceNumber": 0},
}


_RECORDERS_LOCK = threading.Lock()  # pydicom's recorders are one table per process: one export at a time here


@contextlib.contextmanager
def _lenient_records():
    with _RECORDERS_LOCK:
        yield from _lenient_records_held()


def _lenient_records_held():
    from pydicom import fileset
    saved = {kind: fileset.DIRECTORY_RECORDERS[kind] for kind in _RECORD_STAND_INS}

    def lenient(kind):
        def record(ds):
            missing = {k: v for k, v in _RECORD_STAND_INS[kind].items() if ds.get(k) in (None, "")}
            if not missing:
                return saved[kind](ds)
            filled = ds.copy()  # shallow: the pixel data is not copied
            for keyword, value in missing.items():
                setattr(filled, keyword, value)
            return saved[kind](filled)
        return record
    for kind in _RECORD_STAND_INS:
        fileset.DIRECTORY_RECORDERS[kind] = lenient(kind)
    sr_recorder = saved["SR DOCUMENT"] = fileset.DIRECTORY_RECORDERS["SR DOCUMENT"]

    def sr_document(ds):
        # PS3.3 F.5.25: the record's Content Sequence holds only the root's HAS CONCEPT MOD and
        # HAS OBS CONTEXT items; pydicom copies the whole tree (findings, image references)
        record = sr_recorder(ds)
        if "ContentSequence" in record:
            kept = [i for i in record.ContentSequence
                    if str(i.get("RelationshipType", "")) in ("HAS CONCEPT MOD", "HAS OBS CONTEXT")]
            if kept:
                record.ContentSequence = kept
            else:
                del record.ContentSequence
        return record
    fileset.DIRECTORY_RECORDERS["SR DOCUMENT"] = sr_document
    try:
        yield
    finally:
        fileset.DIRECTORY_RECORDERS.update(saved)


def _set_our_implementation(fs) -> None:
    """Table 5-1: the DICOMDIR's File Meta Information carries our implementation class UID,
    not pydicom's (FileSet has no public way to set it; its dataset is written as it is)."""
    from app.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
    if not fs._ds:  # a new File-set: pydicom would make its DICOMDIR dataset only while writing
        fs._ds = fs._create_dicomdir()
    meta = fs._ds.file_meta
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME


def _find_dicomdir(folder: Path) -> Path | None:
    for p in folder.iterdir() if folder.is_dir() else ():
        if p.is_file() and p.name.upper() == "DICOMDIR":
            return p
    return None


def _volume_path(destination: Path, number: int, count: int) -> Path:
    if count == 1:
        return destination
    return destination.with_name(f"{destination.stem}-{number}{destination.suffix or '.iso'}")


def _add_icon(instance, path: Path, size: int, report: ExportReport) -> None:
    """An Icon Image Sequence (8 bits, size x size, PS3.3 F.7) in the instance's IMAGE record."""
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from app.imaging import thumbnails
    try:
        ds = pydicom.dcmread(path)
        if "PixelData" not in ds or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            return
        img = thumbnails.shrink(thumbnails.to_8bit(ds), size)
    except Exception as exc:  # noqa: BLE001 - no icon: the record is complete without one
        log.info("no icon for %s: %s", path, exc)
        return
    icon = np.zeros((size, size), np.uint8)  # square, the image centred: what readers expect
    h, w = img.shape[:2]
    top, left = (size - h) // 2, (size - w) // 2
    icon[top:top + h, left:left + w] = img[:, :, 0] if img.ndim == 3 else img
    item = Dataset()
    item.SamplesPerPixel, item.PhotometricInterpretation = 1, "MONOCHROME2"
    item.Rows = item.Columns = size
    item.BitsAllocated, item.BitsStored, item.HighBit, item.PixelRepresentation = 8, 8, 7, 0
    item.PixelData = icon.tobytes()
    # FileSet builds the IMAGE record from the instance and has no public way to add to it;
    # the record dataset is written as it stands when the DICOMDIR is written
    instance.node._record.IconImageSequence = Sequence([item])


def _write_iso(folder: Path, out: Path, volume_id: str) -> None:
    """``folder`` as an ISO 9660 image (level 1 names, as the File-set's are) with Joliet."""
    import pycdlib
    out.parent.mkdir(parents=True, exist_ok=True)
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=volume_id.replace(" ", "_")[:32], joliet=3)
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        iso_path = "/" + "/".join(rel.parts)
        joliet = iso_path
        if path.is_dir():
            iso.add_directory(iso_path, joliet_path=joliet)
        else:
            iso.add_file(str(path), iso_path + ".;1", joliet_path=joliet)
    try:
        iso.write(str(out))
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        iso.close()


def _free_space(destination: Path) -> int:
    probe = Path(destination)
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"
