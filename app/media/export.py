"""Export to CD, DVD or USB (spec §5, Tables 5-1 to 5-5): instances of the archive written as
a DICOM File-set of an application profile (app.media.profiles) — each converted to the
transfer syntax the profile's table gives its SOP class, de-identified when asked
(app.media.deidentify) —, with a DICOMDIR, as an ISO 9660 image ready to burn (CD, DVD) or
into a folder (a mounted USB stick, which may already hold a File-set: we then update it, FSU).

Each instance is read once, converted and written once to a staging folder; its directory
records (app.media.dicomdir: the record types of PS3.3 F.5 for images, SR, presentation
states, key objects, encapsulated documents, RT, waveforms...), its icon and its checksum
are made then, from the dataset in memory. A volume is then only placing: the staged files
go into the ISO image (pycdlib, level 1 names and Joliet) or the USB folder under ISO 9660
names (PTnnnnnn/STnnnnnn/SEnnnnnn/IMnnnnnn: upper case, 8 characters, 4 levels), with the
DICOMDIR. Every file carries our implementation class UID (Table 5-1). Content larger than
the medium is split into volumes, studies kept whole where they fit; a medium that cannot
hold a single instance is refused.

Every volume is read back when written (app.media.verify): each file the DICOMDIR
references must be there, readable, be the instance it names and have the checksum it was
written with."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from io import BytesIO
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
    # de-identified copies: images whose pixels carry text (Burned In Annotation YES) left out
    leave_out_burned_in: bool = False


@dataclass
class Staged:
    item: Item
    path: Path  # converted, in the staging folder
    size: int
    sop_instance: str  # in the file-set (new when de-identified)
    records: list  # app.media.dicomdir.records_for: PATIENT ... leaf
    sha256: str  # of the file as staged: what the read-back must find


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
    from pydicom.filewriter import write_file_meta_info

    from app.dicom.encoding import stored_transfer_syntax
    from app.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
    from app.media import dicomdir
    higher: dict = {}  # PATIENT, STUDY and SERIES records made once for their instances
    uids = None
    if options.deidentify:
        from app.media.deidentify import UidMap
        uids = UidMap()
    out: list[Staged] = []
    for i, item in enumerate(items):
        _check(cancelled)
        try:
            with open(item.path, "rb") as f:
                head = f.read(_HEAD)
            stored_ts, dataset_at = stored_transfer_syntax(head)
            if dataset_at > len(head) - 8:
                dataset_at = 0  # a file meta longer than the head read: written by pydicom instead
            # the pixel data is read only if it is used (icon, conversion, re-encoding): a
            # tomosynthesis volume copied as stored never sits in memory
            ds = pydicom.dcmread(item.path, defer_size=_DEFER)
            if options.leave_out_burned_in and str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
                raise _Refused("left out as asked: its pixels carry burned-in annotation (patient details "
                               "may be written in the image)")
            icon = _icon(ds, options.icons) if options.icons else None  # before any compression
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
        try:
            records = dicomdir.records_for(ds, ts, higher)
        except ValueError as exc:
            report.refused.append((item.sop_instance, f"no DICOMDIR record can be made for it: {exc}"))
            continue
        if icon is not None:
            records[-1].IconImageSequence = icon
        ds.file_meta.TransferSyntaxUID = ts
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID  # Table 5-1: ours
        ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        path = staging / f"{i:08}.dcm"
        if uids is None and stored_ts == ts and dataset_at:
            # nothing of the dataset changes: its bytes as stored, behind our File Meta
            head = BytesIO()
            head.write(b"\0" * 128 + b"DICM")
            write_file_meta_info(head, ds.file_meta, enforce_standard=True)
            size, digest = _copy_behind(head.getvalue(), Path(item.path), dataset_at, path)
        else:
            buffer = BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            data = buffer.getbuffer()
            path.write_bytes(data)
            size, digest = len(data), hashlib.sha256(data).hexdigest()
            del data
        out.append(Staged(item, path, size, str(ds.SOPInstanceUID), records, digest))
        if progress:
            progress(i + 1, len(items), f"{i + 1} of {len(items)} prepared")
    if uids is not None and options.mapping is not None:
        uids.save(options.mapping)
    return out


class _Refused(Exception):
    pass


_HEAD = 64 * 1024  # enough for any File Meta Information
_DEFER = 256 * 1024  # elements larger than this (pixel data) are read from the file when used
_CHUNK = 4 * 1024 * 1024


def _copy_behind(head: bytes, source: Path, start: int, target: Path) -> tuple[int, str]:
    """``head`` then ``source`` from byte ``start`` into ``target``: (size, SHA-256)."""
    digest = hashlib.sha256(head)
    size = len(head)
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.write(head)
        src.seek(start)
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


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
    from app.media import dicomdir, verify
    if profile.iso:
        folder, existing = None, None
        directory = dicomdir.Directory(fileset_id)
    else:
        folder = Path(options.destination)
        folder.mkdir(parents=True, exist_ok=True)
        existing = _find_dicomdir(folder)
        try:  # FSU: a stick that holds a File-set already
            directory = dicomdir.Directory.read(existing) if existing else dicomdir.Directory(fileset_id)
        except ValueError as exc:
            raise ExportError(f"the folder holds a DICOMDIR that cannot be read, so it cannot be added to "
                              f"({exc}); choose an empty folder or another stick") from None
    names = _Names(folder)
    placed: list[tuple[Staged, tuple[str, ...]]] = []
    for s in volume:
        if s.sop_instance in directory:
            report.warnings.append(f"{s.sop_instance}: already on the medium, not written again")
            continue
        file_id = names.place(s.records)
        directory.add(s.records, file_id)
        placed.append((s, file_id))
    if not placed:
        raise ExportError("every instance is already on the medium: nothing was written")
    checksums = {s.sop_instance: s.sha256 for s, _ in placed}
    if profile.iso:
        dicomdir_file = tmp / f"DICOMDIR.{number}"
        dicomdir_file.write_bytes(directory.encode())
        out = _volume_path(Path(options.destination), number, count)
        _write_iso([(s.path, file_id) for s, file_id in placed] + [(dicomdir_file, ("DICOMDIR",))], out, fileset_id)
    else:
        moved: list[Path] = []
        try:
            for s, file_id in placed:
                target = folder.joinpath(*file_id)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(s.path, target)
                moved.append(target)
            # last: until the DICOMDIR lists them, new files are only unreferenced extras
            directory.write(existing or folder / "DICOMDIR")
        except (OSError, ValueError) as exc:  # ValueError: a record of the old DICOMDIR we cannot write
            _take_back(moved, folder)
            raise ExportError(f"cannot write to {folder}: {getattr(exc, 'strerror', None) or exc}. What the "
                              "stick held before is still there and readable.") from None
        out = folder
    report.verified.append(verify.verify(out, checksums))
    return out


def _take_back(files: list[Path], root: Path) -> None:
    """A failed USB export removes what it had copied (and the folders it left empty)."""
    for f in reversed(files):
        with contextlib.suppress(OSError):
            f.unlink()
        parent = f.parent
        while parent != root:
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
            parent = parent.parent


class _Names:
    """ISO 9660 names for the files of a volume (PS3.12 / PS3.10 §8.5: up to 8 upper-case
    letters, digits or underscores per component): PTnnnnnn/STnnnnnn/SEnnnnnn/IMnnnnnn for the
    patient, study, series and instance; names taken in ``root`` (a stick) are skipped."""

    PREFIXES = ("PT", "ST", "SE")

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.folders: dict[tuple, tuple[str, ...]] = {}  # record keys down to a level -> its folder
        self.next: dict[tuple[tuple[str, ...], str], int] = {}

    def _free(self, parent: tuple[str, ...], prefix: str) -> str:
        n = self.next.get((parent, prefix), 0)
        while self.root is not None and self.root.joinpath(*parent, f"{prefix}{n:06}").exists():
            n += 1
        self.next[(parent, prefix)] = n + 1
        return f"{prefix}{n:06}"

    def place(self, records: list) -> tuple[str, ...]:
        from app.media.dicomdir import key
        parent: tuple[str, ...] = ()
        keys: tuple = ()
        for prefix, record in zip(self.PREFIXES, records[:-1]):
            keys += (key(record),)
            if keys not in self.folders:
                self.folders[keys] = parent + (self._free(parent, prefix),)
            parent = self.folders[keys]
        return parent + (self._free(parent, "IM"),)


def _find_dicomdir(folder: Path) -> Path | None:
    for p in folder.iterdir() if folder.is_dir() else ():
        if p.is_file() and p.name.upper() == "DICOMDIR":
            return p
    return None


def _volume_path(destination: Path, number: int, count: int) -> Path:
    if count == 1:
        return destination
    return destination.with_name(f"{destination.stem}-{number}{destination.suffix or '.iso'}")


def _icon(ds, size: int):
    """An Icon Image Sequence (8 bits, size x size, PS3.3 F.7) for the instance's record; None
    for what has no single-sample pixels or cannot be decoded (the record is complete without)."""
    import numpy as np
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from app.imaging import thumbnails
    try:
        if "PixelData" not in ds or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            return None
        img = thumbnails.shrink(thumbnails.to_8bit(ds), size)
    except Exception as exc:  # noqa: BLE001 - no icon
        log.info("no icon for %s: %s", ds.get("SOPInstanceUID", "?"), exc)
        return None
    icon = np.zeros((size, size), np.uint8)  # square, the image centred: what readers expect
    h, w = img.shape[:2]
    top, left = (size - h) // 2, (size - w) // 2
    icon[top:top + h, left:left + w] = img[:, :, 0] if img.ndim == 3 else img
    item = Dataset()
    item.SamplesPerPixel, item.PhotometricInterpretation = 1, "MONOCHROME2"
    item.Rows = item.Columns = size
    item.BitsAllocated, item.BitsStored, item.HighBit, item.PixelRepresentation = 8, 8, 7, 0
    item.PixelData = icon.tobytes()
    item["PixelData"].VR = "OB"
    return Sequence([item])


def _write_iso(files: list[tuple[Path, tuple[str, ...]]], out: Path, volume_id: str) -> None:
    """The files (source, ISO 9660 components) as an ISO 9660 image (level 1 names, as the
    File-set's are) with Joliet."""
    import pycdlib
    out.parent.mkdir(parents=True, exist_ok=True)
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=volume_id.replace(" ", "_")[:32], joliet=3)
    folders = sorted({parts[:n] for _, parts in files for n in range(1, len(parts))}, key=lambda p: (len(p), p))
    for parts in folders:
        iso.add_directory("/" + "/".join(parts), joliet_path="/" + "/".join(parts))
    for source, parts in files:
        iso_path = "/" + "/".join(parts)
        iso.add_file(str(source), iso_path + ".;1", joliet_path=iso_path)
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
