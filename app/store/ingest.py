"""The one store pipeline. C-STORE, folder import and (later) media import and C-MOVE/C-GET
results all come through ``Ingest.store``, whose result carries the DIMSE status.

Order of work (DESIGN.md, "Receive"): parse the header only -> check the four UIDs -> free
space -> journal entry written, fsynced, named (app.store.journal) -> success. The index
writer then links the entry into the archive, fsyncs the folder and commits the index row
(group commit); a duplicate SOP Instance UID is found there and keeps the stored instance.
"""

from __future__ import annotations

import logging
import warnings
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from pydicom.datadict import tag_for_keyword

from app.dicom import charsets, packing, statuses
from app.dicom.csa_registration import CSA_NON_IMAGE, registration_for
from app.dicom.encoding import file_meta_bytes, parse_header, split_part10
from app.dicom.uids import is_valid_uid
from app.store.files import FileStore, OutOfSpace, relative_path
from app.store.index_writer import IndexRecord, IndexWriter
from app.store.journal import Journal
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
    indexed: Future | None = None  # -> Indexed, once the archive name and index row are committed

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
        # one value per item, empty where an item lacks it: the columns of one sequence stay
        # aligned, so that sequence matching can ask for several keys in the same item
        vals = [reader.text(tags[1], item) or "" for item in seq or ()]
    except Exception:  # a malformed sequence only loses this attribute
        return None
    return "\\".join(vals) if any(vals) else None


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
    def __init__(self, files: FileStore, journal: Journal, writer: IndexWriter):
        self.files = files
        self.journal = journal
        self.writer = writer

    def store(self, raw: bytes | memoryview, transfer_syntax: str, *, source_aet: str | None = None,
              sop_class: str | None = None, sop_instance: str | None = None,
              wait_indexed: bool = False) -> StoreResult:
        """Store one encoded dataset (no file meta) in ``transfer_syntax``.

        Returns once the instance is durable (in the journal): a success may be acknowledged.
        ``wait_indexed``: also wait for the index commit, so ``duplicate`` and ``path`` are
        known (import reports them; a C-STORE does not wait)."""
        try:
            result = self._store(raw, transfer_syntax, source_aet, sop_class, sop_instance, wait_indexed)
        except Rejected as exc:
            log.warning("rejected instance %s from %s: %s", sop_instance or "?", source_aet or "import", exc.comment)
            return StoreResult(exc.status, exc.comment, sop_instance_uid=sop_instance)
        except Exception as exc:  # never let one dataset take the node down
            log.exception("could not store instance %s from %s", sop_instance or "?", source_aet or "import")
            return StoreResult(statuses.STORE_FAILED, f"could not store: {exc}"[:64], sop_instance_uid=sop_instance)
        return self.settle_result(result) if wait_indexed else result

    def settle_result(self, result: StoreResult) -> StoreResult:
        """Wait for a stored instance's index commit: fills in ``duplicate`` and ``path``."""
        if result.indexed is None:
            return result
        try:
            indexed = result.indexed.result()
        except Exception as exc:  # durable in the journal; indexed at the next start
            log.error("instance %s is stored but not indexed yet: %s", result.sop_instance_uid, exc)
        else:
            result.duplicate = not indexed.inserted
            result.path = self.files.absolute(indexed.path)
        return result

    def _prepare(self, raw, transfer_syntax, source_aet, sop_class, sop_instance) -> tuple[bytes, IndexRecord]:
        """Header checks and index values: (file meta, index record) or Rejected."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = parse_header(raw, transfer_syntax)
        except Exception as exc:
            raise Rejected(statuses.CANNOT_UNDERSTAND, f"dataset cannot be parsed: {exc}"[:64]) from exc
        reader = charsets.TextReader(ds)
        uids = check_uids(reader, sop_class, sop_instance)
        sop_uid = uids["SOPInstanceUID"]
        if bad := charsets.unsupported(reader.terms):
            log.warning("%s declares unsupported character set(s) %s; illegal characters become '?'",
                        sop_uid, ", ".join(bad))
        meta = file_meta_bytes(uids["SOPClassUID"], sop_uid, transfer_syntax, source_aet)
        present = set(ds._dict)
        record = IndexRecord(
            patient=_level_values(reader, "patient", present),
            study=_level_values(reader, "study", present),
            series=_level_values(reader, "series", present),
            instance={**_level_values(reader, "instance", present),
                      "SourceApplicationEntityTitle": source_aet,
                      "TransferSyntaxUID": transfer_syntax,
                      "SpecificCharacterSet": "\\".join(reader.terms) or None,
                      "path": relative_path(uids["StudyInstanceUID"], uids["SeriesInstanceUID"], sop_uid),
                      "size": len(meta) + len(raw)},
        )
        return meta, record

    def _store(self, raw, transfer_syntax, source_aet, sop_class, sop_instance, urgent) -> StoreResult:
        meta, record = self._prepare(raw, transfer_syntax, source_aet, sop_class, sop_instance)
        sop_uid = record.instance["SOPInstanceUID"]
        if packing.may_be_packed(record.instance.get("SOPClassUID"), raw):
            if (unpacked := self._unpack(raw, transfer_syntax, source_aet, urgent)) is not None:
                return unpacked
        try:
            self.files.check_space(len(meta) + len(raw))
        except OutOfSpace as exc:
            raise Rejected(statuses.OUT_OF_RESOURCES, f"out of disk space: {exc.strerror}"[:64]) from exc
        try:
            entry = self.journal.write([meta, raw])
        except OSError as exc:
            if exc.errno in (28, 122):  # ENOSPC, EDQUOT
                raise Rejected(statuses.OUT_OF_RESOURCES, f"out of disk space: {exc.strerror}"[:64]) from exc
            raise
        # Durable: the index writer gives it its archive name and index row (a duplicate SOP
        # Instance UID keeps the stored instance, spec §4.2.1.4.1.4, and is logged there).
        result = StoreResult(statuses.SUCCESS, "", False, sop_uid, self.files.absolute(record.instance["path"]),
                             indexed=self.writer.submit(record, entry, urgent=urgent))
        if record.instance.get("SOPClassUID") == CSA_NON_IMAGE:
            self._keep_as_registration(raw, transfer_syntax, source_aet)
        return result

    def _unpack(self, raw, transfer_syntax: str, source_aet: str | None, urgent: bool) -> StoreResult | None:
        """An object Lightbox packed for an archive without its class (app.dicom.packing) comes
        back: the original is stored in its place. None (store it as it came) when its payload
        is not a storable original; the log says why."""
        from io import BytesIO

        from pydicom.filereader import read_dataset
        from pydicom.uid import UID
        try:
            ts = UID(transfer_syntax)
            original = packing.payload(read_dataset(BytesIO(bytes(raw)), ts.is_implicit_VR, ts.is_little_endian))
            if original is None:
                return None
            meta, offset = split_part10(original)
            result = self._store(memoryview(original)[offset:], str(meta.TransferSyntaxUID), source_aet, None, None,
                                 urgent)
        except Rejected as exc:
            log.warning("packed object from %s holds an original that cannot be stored (%s); kept packed",
                        source_aet or "import", exc.comment)
            return None
        except Exception:  # noqa: BLE001 - kept as it came
            log.exception("could not unpack a packed object from %s; kept packed", source_aet or "import")
            return None
        log.info("unpacked %s from %s: stored the original instance", result.sop_instance_uid, source_aet or "import")
        return result

    def _keep_as_registration(self, raw, transfer_syntax: str, source_aet: str | None) -> None:
        """Spec §4.2.1.3.1.6: a CSA Non-Image object is also kept as a Spatial Registration
        in a series of its own (app.dicom.csa_registration). Never fails the original."""
        from io import BytesIO

        from pydicom.filebase import DicomBytesIO
        from pydicom.filereader import read_dataset
        from pydicom.filewriter import write_dataset
        from pydicom.uid import UID
        try:
            ts = UID(transfer_syntax)
            csa = read_dataset(BytesIO(bytes(raw)), ts.is_implicit_VR, ts.is_little_endian)
            reg = registration_for(csa)
            out = DicomBytesIO()
            out.is_implicit_VR, out.is_little_endian = False, True  # Explicit VR LE, as its file meta says
            write_dataset(out, reg)
            self._store(out.getvalue(), str(reg.file_meta.TransferSyntaxUID), source_aet, None, None, False)
            log.info("CSA Non-Image %s also kept as Spatial Registration %s", csa.SOPInstanceUID, reg.SOPInstanceUID)
        except Exception:  # noqa: BLE001 - the CSA object itself is stored; the log says what went wrong
            log.exception("could not keep a CSA Non-Image object as a Spatial Registration")

    def index_record(self, data: bytes) -> IndexRecord:
        """The index record of a Part 10 file's bytes (a journal entry, a corrected copy)."""
        meta, offset = split_part10(data)
        ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
        source = str(meta.get("SourceApplicationEntityTitle", "")).strip() or None if meta is not None else None
        return self._prepare(memoryview(data)[offset:], ts, source, None, None)[1]

    def replay(self, entry: Path) -> bool:
        """Index a journal entry a dead process acknowledged but did not index."""
        try:
            record = self.index_record(entry.read_bytes())
            self.writer.submit(record, entry, urgent=True).result()
            return True
        except Exception as exc:  # noqa: BLE001 - leave the entry for the next attempt
            log.error("could not index the received instance in %s (kept there; retried at the next start): %s",
                      entry, exc)
            return False

    def store_file(self, path: Path, *, wait_indexed: bool = True) -> StoreResult:
        """Import one file (Part 10, or a bare dataset in Implicit VR Little Endian).
        ``wait_indexed=False``: return once durable; :meth:`settle_result` later."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            return StoreResult(statuses.CANNOT_UNDERSTAND, f"cannot read: {exc.strerror}")
        return self.store_part10(data, wait_indexed=wait_indexed)

    def store_part10(self, data: bytes | memoryview, *, wait_indexed: bool = True) -> StoreResult:
        """Import the bytes of one file (as :meth:`store_file` reads them): media members
        that are not files of their own, such as those inside an ISO image, come this way."""
        from pydicom.uid import ImplicitVRLittleEndian
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
        return self.store(memoryview(data)[offset:], ts, source_aet=source, wait_indexed=wait_indexed)
