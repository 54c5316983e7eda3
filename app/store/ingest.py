"""The one store pipeline. C-STORE, folder import and (later) media import and C-MOVE/C-GET
results all come through ``Ingest.store``, whose result carries the DIMSE status.

Order of work (DESIGN.md, "Receive"): parse the header only -> check the four UIDs ->
duplicate? -> free space -> temp file + fsync -> link into the archive + fsync the folder
-> index row committed (group commit) -> only then success.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from app.dicom import charsets, statuses
from app.dicom.encoding import file_meta_bytes, parse_header, split_part10
from app.dicom.uids import is_valid_uid
from app.store.files import FileStore, OutOfSpace, UidLocks, relative_path
from app.store.index_writer import IndexRecord, IndexWriter
from app.dicom.qr_attributes import stored_at
from app.store.schema import attribute_columns

log = logging.getLogger(__name__)

REQUIRED_UIDS = (
    (0x00080016, "SOPClassUID", "SOP Class UID"),
    (0x0020000D, "StudyInstanceUID", "Study Instance UID"),
    (0x0020000E, "SeriesInstanceUID", "Series Instance UID"),
    (0x00080018, "SOPInstanceUID", "SOP Instance UID"),
)


@dataclass
class StoreResult:
    status: int
    comment: str = ""
    duplicate: bool = False
    sop_instance_uid: str | None = None
    path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == statuses.SUCCESS


class Rejected(Exception):
    def __init__(self, status: int, comment: str):
        super().__init__(comment)
        self.status = status
        self.comment = comment


def _path_tags(path: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(tag_for_keyword(k) for k in path)


# level -> [(column, tag path)], from spec Table 4-48; tags looked up once, not per instance
_LEVEL_TAGS = {
    level: [(a.column, _path_tags(a.path)) for a in stored_at(level) if a.column in attribute_columns(level)]
    for level in ("patient", "study", "series", "instance")
}


def _value(reader: charsets.TextReader, tags: tuple[int, ...]) -> str | None:
    if len(tags) == 1:
        return reader.text(tags[0])
    try:
        seq = reader.ds[tags[0]].value
        vals = [v for item in seq or () if (v := reader.text(tags[1], item))]
    except Exception:  # a malformed sequence only loses this attribute
        return None
    return "\\".join(vals) or None


def _level_values(reader: charsets.TextReader, level: str, present: set[int]) -> dict[str, str | None]:
    # Most of Table 4-48 is absent from any one instance: test membership in a plain set
    # of the tags present before asking for a value.
    return {column: _value(reader, tags) if tags[0] in present else None for column, tags in _LEVEL_TAGS[level]}


def check_uids(reader: charsets.TextReader, sop_class: str | None, sop_instance: str | None) -> dict[str, str]:
    """Minimal header validation of spec §4.2.1.4.1.3, plus UID syntax (UIDs name files)."""
    uids = {}
    for tag, keyword, name in REQUIRED_UIDS:
        try:
            value = reader.text(tag) or ""
        except Exception as exc:
            raise Rejected(statuses.CANNOT_UNDERSTAND, f"{name} cannot be read: {exc}"[:64]) from exc
        if not value:
            raise Rejected(statuses.DATASET_DOES_NOT_MATCH, f"{name} is missing")
        if not is_valid_uid(value):
            raise Rejected(statuses.DATASET_DOES_NOT_MATCH, f"{name} is not a valid UID: {value[:70]!r}")
        uids[keyword] = value
    if sop_class and uids["SOPClassUID"] != sop_class:
        raise Rejected(statuses.DATASET_DOES_NOT_MATCH,
                       f"SOP Class UID {uids['SOPClassUID']} differs from the request's {sop_class}")
    if sop_instance and uids["SOPInstanceUID"] != sop_instance:
        raise Rejected(statuses.DATASET_DOES_NOT_MATCH,
                       f"SOP Instance UID {uids['SOPInstanceUID']} differs from the request's {sop_instance}")
    return uids


class Ingest:
    def __init__(self, files: FileStore, writer: IndexWriter):
        self.files = files
        self.writer = writer
        self.locks = UidLocks(files.root.parent / "locks")

    def store(self, raw: bytes | memoryview, transfer_syntax: str, *, source_aet: str | None = None,
              sop_class: str | None = None, sop_instance: str | None = None) -> StoreResult:
        """Store one encoded dataset (no file meta) in ``transfer_syntax``."""
        try:
            return self._store(raw, transfer_syntax, source_aet, sop_class, sop_instance)
        except Rejected as exc:
            log.warning("rejected instance %s from %s: %s", sop_instance or "?", source_aet or "import", exc.comment)
            return StoreResult(exc.status, exc.comment, sop_instance_uid=sop_instance)
        except Exception as exc:  # never let one dataset take the node down
            log.exception("could not store instance %s from %s", sop_instance or "?", source_aet or "import")
            return StoreResult(statuses.STORE_FAILED, f"could not store: {exc}"[:64], sop_instance_uid=sop_instance)

    def _store(self, raw, transfer_syntax, source_aet, sop_class, sop_instance) -> StoreResult:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = parse_header(raw, transfer_syntax)
        except Exception as exc:
            raise Rejected(statuses.CANNOT_UNDERSTAND, f"dataset cannot be parsed: {exc}"[:64]) from exc
        reader = charsets.TextReader(ds)
        uids = check_uids(reader, sop_class, sop_instance)
        sop_uid = uids["SOPInstanceUID"]
        if bad := [t for t in reader.terms if t not in charsets.SUPPORTED]:
            log.warning("%s declares unsupported character set(s) %s; illegal characters become '?'",
                        sop_uid, ", ".join(bad))
        with self.locks.hold(sop_uid):
            return self._store_new(reader, uids, raw, transfer_syntax, source_aet)

    def _store_new(self, reader, uids, raw, transfer_syntax, source_aet) -> StoreResult:
        sop_uid = uids["SOPInstanceUID"]
        # Duplicates (spec §4.2.1.4.1.4: keep what we have, ignore the new one) are found
        # where they cost nothing for new instances: link() refuses an existing path, and the
        # index refuses a second row for a SOP Instance UID filed under another path.

        meta = file_meta_bytes(uids["SOPClassUID"], sop_uid, transfer_syntax, source_aet)
        try:
            self.files.check_space(len(meta) + len(raw))
        except OutOfSpace as exc:
            raise Rejected(statuses.OUT_OF_RESOURCES, f"out of disk space: {exc.strerror}"[:64]) from exc

        rel = relative_path(uids["StudyInstanceUID"], uids["SeriesInstanceUID"], sop_uid)
        try:
            tmp = self.files.write_temp([meta, raw])
        except OSError as exc:
            if exc.errno in (28, 122):  # ENOSPC, EDQUOT
                raise Rejected(statuses.OUT_OF_RESOURCES, f"out of disk space: {exc.strerror}"[:64]) from exc
            raise
        try:
            if not self.files.publish(tmp, rel, replace=False):
                # A file with this name but no index row: left by a crash before the commit,
                # never acknowledged. The new copy replaces it.
                if self.writer.lookup(sop_uid) is not None:
                    log.info("duplicate SOP Instance UID %s from %s: kept the stored instance", sop_uid, source_aet or "import")
                    return StoreResult(statuses.SUCCESS, "duplicate: kept the stored instance", True, sop_uid,
                                       self.files.absolute(rel))
                self.files.publish(tmp, rel, replace=True)
        finally:
            tmp.unlink(missing_ok=True)

        present = set(reader.ds._dict)
        record = IndexRecord(
            patient=_level_values(reader, "patient", present),
            study=_level_values(reader, "study", present),
            series=_level_values(reader, "series", present),
            instance={**_level_values(reader, "instance", present),
                      "SourceApplicationEntityTitle": source_aet,
                      "TransferSyntaxUID": transfer_syntax,
                      "SpecificCharacterSet": "\\".join(reader.terms) or None,
                      "path": rel, "size": len(meta) + len(raw)},
        )
        try:
            inserted = self.writer.submit(record).result()
        except Exception:
            self.files.remove(rel)  # not acknowledged: leave nothing behind
            raise
        if not inserted:  # indexed before, under another study/series (or by another process)
            log.info("duplicate SOP Instance UID %s from %s: kept the stored instance", sop_uid, source_aet or "import")
            kept = self.writer.lookup(sop_uid)
            if kept and kept != rel:
                self.files.remove(rel)  # filed under another study/series: ours is an orphan
            return StoreResult(statuses.SUCCESS, "duplicate: kept the stored instance", True, sop_uid,
                               self.files.absolute(kept or rel))
        return StoreResult(statuses.SUCCESS, "", False, sop_uid, self.files.absolute(rel))

    def store_file(self, path: Path) -> StoreResult:
        """Import one file (Part 10, or a bare dataset in Implicit VR Little Endian)."""
        from pydicom.uid import ImplicitVRLittleEndian
        try:
            data = path.read_bytes()
        except OSError as exc:
            return StoreResult(statuses.CANNOT_UNDERSTAND, f"cannot read: {exc.strerror}")
        try:
            meta, offset = split_part10(data)
        except Exception as exc:
            return StoreResult(statuses.CANNOT_UNDERSTAND, f"not a DICOM file: {exc}"[:64])
        if meta is None and (len(data) < 8 or int.from_bytes(data[:2], "little") not in (0x0002, 0x0008)):
            # No Part 10 header, and no dataset starting with group 0008 either.
            return StoreResult(statuses.CANNOT_UNDERSTAND, "not a DICOM file")
        ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ImplicitVRLittleEndian
        if not ts:
            return StoreResult(statuses.CANNOT_UNDERSTAND, "file meta has no Transfer Syntax UID")
        source = str(meta.get("SourceApplicationEntityTitle", "")).strip() or None if meta is not None else None
        return self.store(memoryview(data)[offset:], ts, source_aet=source)
