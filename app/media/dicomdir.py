"""The DICOMDIR of a File-set (PS3.10 §8, PS3.3 Annex F): the directory records of the
instances — PATIENT / STUDY / SERIES and the record type of each SOP class
(resources/spec/dicomdir_record_types.tsv) — as a tree, and that tree written as the
Directory Record Sequence with the byte offsets that link its records.

The keys of each record type come from pydicom's record definitions
(``pydicom.fileset.DIRECTORY_RECORDERS``, public and kept to PS3.3 F.5). Its FileSet we do
not use to write: it reads and writes every instance twice more and its ``add`` looks
through every instance already added, which made the DICOMDIR the slowest part of a
full disc. Here records are made from the dataset in memory when it is staged, matched
by key in dictionaries, and the DICOMDIR is encoded once the tree is complete.

An existing DICOMDIR (a USB stick that holds a File-set) is read into the same tree —
every record kept as it is, private and inactive ones included — so new instances join
their patient, study and series; the whole file is then written again with new offsets."""

from __future__ import annotations

import logging
import os
import struct
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Iterator, Sequence

from pydicom.dataset import Dataset, FileMetaDataset

from app.importer import DICOMDIR_CLASS  # Media Storage Directory Storage
from app.resources import read_tsv

log = logging.getLogger(__name__)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
MAX_COMPONENTS = 8  # of a File ID (PS3.10 §8.5)

# Type 1 keys of the records (PS3.3 F.5) that instances often have empty (Study ID and Series
# Number are type 2 in the IODs; a de-identified Study Date is empty): the record gets these
# stand-ins, the instance stays as it is
_STAND_INS = {
    "PATIENT": {"PatientID": "UNKNOWN"},
    "STUDY": {"StudyDate": "19000101", "StudyTime": "000000", "StudyID": "0"},
    "SERIES": {"SeriesNumber": 0},
    "IMAGE": {"InstanceNumber": 0},
    # type 2 in an encapsulated document (PS3.3 C.24.2), type 1 in its record
    "ENCAP DOC": {"ContentDate": "19000101", "ContentTime": "000000"},
}
# what identifies a record among its siblings: a second instance of the same patient, study
# or series joins the record already there
_KEYS = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID"}
_CONTENT_KEPT = {"SR DOCUMENT": ("HAS CONCEPT MOD", "HAS OBS CONTEXT"), "KEY OBJECT DOC": ("HAS CONCEPT MOD",)}
_LINKS = ("OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity")
_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
_SEQUENCE = struct.pack("<HH", 0x0004, 0x1220) + b"SQ\0\0"  # Directory Record Sequence, explicit VR


@cache
def _record_types() -> dict[str, tuple[str, bool]]:
    """SOP Class UID -> (record type, single-level)."""
    return {uid: (kind, level == "root") for uid, kind, level, *_ in read_tsv("spec", "dicomdir_record_types.tsv")}


def record_type(sop_class: str) -> tuple[str, bool]:
    return _record_types().get(str(sop_class), ("IMAGE", False))


def records_for(ds: Dataset, transfer_syntax: str, higher: dict | None = None) -> list[Dataset]:
    """The records of ``ds``, highest first: PATIENT, STUDY, SERIES and its own (a single-level
    record alone). ValueError when the instance lacks what a record requires. ``higher``
    keeps the PATIENT, STUDY and SERIES records made for earlier instances: a series' images
    share them (a Directory takes the first record of a key anyway)."""
    leaf, single = record_type(ds.SOPClassUID)
    kinds = [leaf] if single else ["PATIENT", "STUDY", "SERIES", leaf]
    out = []
    path: tuple = ()
    for kind in kinds:
        if kind in _KEYS:
            path += (str(ds.get(_KEYS[kind], "")),)
            if higher is not None and (known := higher.get(path)) is not None:
                out.append(known)
                continue
        record = _record(kind, ds)
        record.DirectoryRecordType = kind
        if "SpecificCharacterSet" in ds:
            record.SpecificCharacterSet = ds.SpecificCharacterSet
        if higher is not None and kind in _KEYS:
            higher[path] = record
        out.append(record)
    out[-1].ReferencedSOPClassUIDInFile = ds.SOPClassUID
    out[-1].ReferencedSOPInstanceUIDInFile = ds.SOPInstanceUID
    out[-1].ReferencedTransferSyntaxUIDInFile = transfer_syntax
    return out


def _record(kind: str, ds: Dataset) -> Dataset:
    from pydicom.fileset import DIRECTORY_RECORDERS
    missing = {k: v for k, v in _STAND_INS.get(kind, {}).items() if ds.get(k) in (None, "")}
    if missing:
        ds = ds.copy()  # shallow: the pixel data is not copied
        for keyword, value in missing.items():
            setattr(ds, keyword, value)
    try:
        record = DIRECTORY_RECORDERS[kind](ds)
    except (KeyError, AttributeError) as exc:  # pydicom's creators raise these for missing keys
        raise ValueError(f"the {kind} record needs {exc}") from None
    if kind in _CONTENT_KEPT and "ContentSequence" in record:
        # the record holds only some of the root's items (PS3.3 F.5.25 SR DOCUMENT, F.5.26 KEY
        # OBJECT DOC); pydicom copies the whole tree (findings, image references)
        kept = [i for i in record.ContentSequence if str(i.get("RelationshipType", "")) in _CONTENT_KEPT[kind]]
        if kept:
            record.ContentSequence = kept
        else:
            del record.ContentSequence
    return record


class Node:
    """A directory record and the records below it."""
    __slots__ = ("record", "children", "_index")

    def __init__(self, record: Dataset | None) -> None:
        self.record = record
        self.children: list[Node] = []
        self._index: dict[tuple[str, str], Node] = {}

    def child(self, record: Dataset) -> Node:
        """The child ``record`` identifies (by its kind and key), added when there is none."""
        identity = key(record)
        if identity is not None and (found := self._index.get(identity)) is not None:
            return found
        node = Node(record)
        self.children.append(node)
        if identity is not None:
            self._index[identity] = node
        return node

    def walk(self) -> Iterator[Node]:
        """The records below, depth first: the order they are written in."""
        for c in self.children:
            yield c
            yield from c.walk()


def key(record: Dataset) -> tuple[str, str] | None:
    """What identifies ``record`` among its siblings; None for one nothing may join."""
    if record.get("RecordInUseFlag", 0xFFFF) == 0:
        return None  # a deleted record: nothing joins it
    kind = str(record.get("DirectoryRecordType", "")).strip()
    keyword = _KEYS.get(kind, "ReferencedSOPInstanceUIDInFile")
    value = record.get(keyword)
    return None if value in (None, "") else (kind if kind in _KEYS else "", str(value))


class Directory:
    """A DICOMDIR being made or updated."""

    def __init__(self, fileset_id: str, *, top: Dataset | None = None, meta: FileMetaDataset | None = None) -> None:
        self.root = Node(None)
        self.top = top if top is not None else Dataset()  # the DICOMDIR's own attributes
        if "FileSetID" not in self.top or not self.top.FileSetID:
            self.top.FileSetID = fileset_id
        self.meta = meta
        self._instances: dict[str, Node] = {}

    @classmethod
    def read(cls, path: Path) -> Directory:
        """The DICOMDIR at ``path`` with every record as it is. ValueError when unreadable."""
        import pydicom
        try:
            ds = pydicom.dcmread(path)
            tree = record_tree(ds, str(path))
        except Exception as exc:  # noqa: BLE001 - any damage: the caller says so and writes nothing
            raise ValueError(f"{path} cannot be read: {exc}") from exc
        top = Dataset()
        for elem in ds:
            if elem.tag.group == 0x0004 and elem.keyword not in (
                    "DirectoryRecordSequence", "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity",
                    "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity"):
                top.add(elem)
        directory = cls(str(ds.get("FileSetID", "")), top=top, meta=ds.file_meta)

        def load(parent: Node, nodes: list) -> None:
            for record, children in nodes:
                for keyword in _LINKS:
                    record.pop(keyword, None)
                node = parent.child(record)
                if node.record is not record:  # a second record with the same key: kept apart
                    node = Node(record)
                    parent.children.append(node)
                if (uid := record.get("ReferencedSOPInstanceUIDInFile")) and record.get("RecordInUseFlag", 0xFFFF):
                    directory._instances[str(uid)] = node
                load(node, children)
        load(directory.root, tree)
        return directory

    def __contains__(self, sop_instance: str) -> bool:
        return sop_instance in self._instances

    def __len__(self) -> int:
        return len(self._instances)

    def add(self, records: Sequence[Dataset], file_id: Sequence[str]) -> None:
        """The records of an instance (``records_for``), its file at ``file_id`` (components)."""
        if not 0 < len(file_id) <= MAX_COMPONENTS:
            raise ValueError(f"a File ID has 1 to {MAX_COMPONENTS} components, not {len(file_id)}")
        node = self.root
        for record in records[:-1]:
            node = node.child(record)
        leaf = records[-1]
        leaf.ReferencedFileID = list(file_id) if len(file_id) > 1 else file_id[0]
        node = node.child(leaf)
        self._instances[str(leaf.ReferencedSOPInstanceUIDInFile)] = node

    def encode(self) -> bytes:
        """The DICOMDIR file: records depth first, each linked to its next sibling and its
        first child by the offset of its item from the start of the file (PS3.3 F.3.2.2)."""
        from app.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, new_uid
        nodes = list(self.root.walk())
        for n in nodes:  # the links' values are fixed-size: sizes measured with zeros hold
            n.record.OffsetOfTheNextDirectoryRecord = 0
            n.record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
            if "RecordInUseFlag" not in n.record:
                n.record.RecordInUseFlag = 0xFFFF
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = DICOMDIR_CLASS
        old = self.meta.get("MediaStorageSOPInstanceUID") if self.meta is not None else None
        meta.MediaStorageSOPInstanceUID = old or new_uid()  # an updated File-set is the same file
        meta.TransferSyntaxUID = EXPLICIT_LE
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID  # Table 5-1: ours
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        top = self.top
        top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
        top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
        top.FileSetConsistencyFlag = 0

        head_size = len(_head(meta, top))
        encoded = [bytearray(_encoded(n.record)) for n in nodes]
        position, start = head_size + len(_SEQUENCE) + 4, {}
        for n, data in zip(nodes, encoded):
            start[id(n)] = position
            position += len(_ITEM) + 4 + len(data)

        def offset(siblings: list[Node], i: int) -> int:
            return start[id(siblings[i])] if i < len(siblings) else 0

        places = {id(n): data for n, data in zip(nodes, encoded)}

        def link(parent: Node) -> None:
            for i, c in enumerate(parent.children):
                _patch(places[id(c)], offset(parent.children, i + 1), offset(c.children, 0))
                link(c)
        link(self.root)
        if self.root.children:
            top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = start[id(self.root.children[0])]
            top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = start[id(self.root.children[-1])]
        out = BytesIO()
        out.write(_head(meta, top))
        out.write(_SEQUENCE + struct.pack("<I", position - head_size - len(_SEQUENCE) - 4))
        for data in encoded:
            out.write(_ITEM + struct.pack("<I", len(data)))
            out.write(data)
        return out.getvalue()

    def write(self, path: Path) -> None:
        """Written beside and renamed over ``path``: a DICOMDIR being updated is never left
        half written (the instances it already lists stay findable whatever happens)."""
        data = self.encode()
        part = path.with_name(path.name + ".part")
        with open(part, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)


# A record's first elements, encoded: (0004,1400) UL, (0004,1410) US, (0004,1420) UL (nothing
# in a record sorts before them); the offsets are written into the encoded bytes in place
_NEXT_AT, _LOWER_AT = 8, 30
_LEAD = (struct.pack("<HH", 0x0004, 0x1400) + b"UL\4\0", struct.pack("<HH", 0x0004, 0x1420) + b"UL\4\0")


def _patch(data: bytearray, next_offset: int, lower_offset: int) -> None:
    if data[:8] != _LEAD[0] or data[22:30] != _LEAD[1]:
        raise ValueError("a directory record does not start with its offsets")
    struct.pack_into("<I", data, _NEXT_AT, next_offset)
    struct.pack_into("<I", data, _LOWER_AT, lower_offset)


def _writer() -> BytesIO:
    from pydicom.filebase import DicomBytesIO
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    return fp


def _head(meta: FileMetaDataset, top: Dataset) -> bytes:
    """Preamble, File Meta Information and the DICOMDIR's attributes before its records."""
    from pydicom.filewriter import write_dataset, write_file_meta_info
    fp = _writer()
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    write_dataset(fp, top)
    return fp.getvalue()


def _encoded(record: Dataset) -> bytes:
    from pydicom.filewriter import write_dataset
    fp = _writer()
    write_dataset(fp, record)
    return fp.getvalue()


def record_tree(ds: Dataset, name: str) -> list:
    """The directory records as [(record, children)], following the offsets of PS3.10;
    records in sequence order below the level before them where the offsets are wrong
    (some writers leave them zero or stale)."""
    records = list(ds.DirectoryRecordSequence)
    by_offset = {getattr(r, "seq_item_tell", None): r for r in records}

    def chain(offset: int, seen: set[int]) -> list:
        out = []
        while offset:
            if offset in seen:
                raise ValueError("the records form a loop")
            seen.add(offset)
            rec = by_offset[offset]
            out.append((rec, chain(rec.get("OffsetOfReferencedLowerLevelDirectoryEntity", 0) or 0, seen)))
            offset = rec.get("OffsetOfTheNextDirectoryRecord", 0) or 0
        return out

    try:
        first = ds.get("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity", 0) or 0
        seen: set[int] = set()
        tree = chain(first, seen)
        if len(seen) == len(records):
            return tree
        log.warning("%s: %d DICOMDIR record(s) are not linked; records read in order", name, len(records) - len(seen))
    except (KeyError, ValueError, RecursionError) as exc:
        log.warning("%s: the DICOMDIR's record offsets are wrong (%s); records read in order", name, exc)
    levels = {"PATIENT": 0, "STUDY": 1, "SERIES": 2}
    root: list = []
    below: list = [root, None, None, None]  # where a record of each level goes
    for rec in records:
        level = levels.get(str(rec.get("DirectoryRecordType", "")).strip(), 3)
        target = next(b for b in reversed(below[:level + 1]) if b is not None)
        node = (rec, [])
        target.append(node)
        for lower in range(level + 1, 4):
            below[lower] = node[1] if lower == level + 1 else None
    return root
