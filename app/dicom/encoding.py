"""Reading and writing encoded datasets without decoding what we only store."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO, RawIOBase

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from app.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

_PIXEL_AND_AFTER = Tag(0x7FE0, 0x0000)
PREAMBLE = b"\x00" * 128 + b"DICM"


def _stop_before_bulk(tag, vr, length) -> bool:
    return tag >= _PIXEL_AND_AFTER


class MemoryReader(RawIOBase):
    """A read-only file over a buffer, without copying it (BytesIO would copy a 30 MB image
    just to read its header)."""

    def __init__(self, buf: bytes | memoryview):
        super().__init__()
        self._buf = memoryview(buf)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        end = len(self._buf) if n is None or n < 0 else min(len(self._buf), self._pos + n)
        out = self._buf[self._pos:end].tobytes()
        self._pos = end
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._buf))[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def parse_header(raw: bytes | memoryview, transfer_syntax: str) -> Dataset:
    """Decode a raw dataset up to (not including) the pixel data.

    Raises on data that cannot be parsed (the caller maps that to a DIMSE status).
    """
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        fp = BytesIO(zlib.decompress(raw, -zlib.MAX_WBITS))
    else:
        fp = MemoryReader(raw)
    implicit = transfer_syntax == ImplicitVRLittleEndian
    little = transfer_syntax != ExplicitVRBigEndian
    # Values stay raw until read: only the attributes we index are ever converted, and a
    # malformed value in one of those is caught where it is read (app.dicom.charsets.text).
    return read_dataset(fp, implicit, little, stop_when=_stop_before_bulk)


def _element(group_elem: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian element of group 0002 (short form VRs and OB)."""
    tag = struct.pack("<HH", group_elem >> 16, group_elem & 0xFFFF)
    if vr == b"OB":
        return tag + vr + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


def file_meta_bytes(sop_class: str, sop_instance: str, transfer_syntax: str,
                    source_aet: str | None) -> bytes:
    """Preamble + File Meta Information (PS3.10 §7.1), encoded directly: this runs once per
    received instance and pydicom's general writer costs half a millisecond here."""
    body = b"".join((
        _element(0x00020001, b"OB", b"\x00\x01"),
        _element(0x00020002, b"UI", _padded(sop_class, b"\x00")),
        _element(0x00020003, b"UI", _padded(sop_instance, b"\x00")),
        _element(0x00020010, b"UI", _padded(transfer_syntax, b"\x00")),
        _element(0x00020012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\x00")),
        _element(0x00020013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")),
        _element(0x00020016, b"AE", _padded(source_aet, b" ")) if source_aet else b"",
    ))
    return PREAMBLE + _element(0x00020000, b"UL", struct.pack("<I", len(body))) + body


def split_part10(data: bytes | memoryview) -> tuple[Dataset | None, int]:
    """(file meta, offset of the dataset) of a Part 10 file; (None, 0) for a bare dataset."""
    if len(data) < 132 or bytes(data[128:132]) != b"DICM":
        return None, 0
    # Walk the group 2 elements (always Explicit VR Little Endian) to find where they end.
    pos = 132
    while pos + 8 <= len(data) and bytes(data[pos:pos + 2]) == b"\x02\x00":
        if bytes(data[pos + 4:pos + 6]) in _LONG_VRS:
            (length,) = struct.unpack("<I", data[pos + 8:pos + 12])
            pos += 12 + length
        else:
            (length,) = struct.unpack("<H", data[pos + 6:pos + 8])
            pos += 8 + length
    if pos > len(data):
        raise ValueError("file meta information is truncated")
    meta = read_dataset(BytesIO(bytes(data[132:pos])), False, True)
    return meta, pos


_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
