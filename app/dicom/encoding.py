"""Reading and writing encoded datasets without decoding what we only store."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO, RawIOBase

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag, Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from app.dicom.element_writer import element, padded
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


def parse_header(raw: bytes | memoryview, transfer_syntax: str, *, fast: bool = True) -> Dataset:
    """Decode a raw dataset up to (not including) the pixel data.

    Values stay raw (RawDataElement) until read: only the attributes we index are ever
    converted (app.dicom.charsets.TextReader). Raises on data that cannot be parsed (the
    caller maps that to a DIMSE status). ``fast=False``: pydicom's reader only (the
    reference the fast scanner is tested against).
    """
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        raw = zlib.decompress(raw, -zlib.MAX_WBITS)
    implicit = transfer_syntax == ImplicitVRLittleEndian
    little = transfer_syntax != ExplicitVRBigEndian
    if fast:
        try:
            return Dataset(_scan(memoryview(raw), implicit, little))
        except _Unusual:
            pass  # pydicom's reader knows every quirk (VR switches, broken lengths, ...)
    return read_dataset(MemoryReader(raw), implicit, little, stop_when=_stop_before_bulk)


class _Unusual(Exception):
    """Something the fast scanner leaves to pydicom."""


# VRs with a 4-byte length in Explicit VR (PS3.5 §7.1.2)
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
                        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


class _Elements:
    """Element headers of one buffer in one byte order."""

    def __init__(self, buf: memoryview, little: bool):
        order = "<" if little else ">"
        self.buf, self.end, self.little = buf, len(buf), little
        self._tag_len = struct.Struct(order + "HHI")  # implicit (and delimiters): tag, 4-byte length
        self._tag_vr = struct.Struct(order + "HH2s")  # explicit: tag, VR
        self._short = struct.Struct(order + "H")
        self._long = struct.Struct(order + "I")

    def header(self, pos: int, implicit: bool) -> tuple[int, str | None, int, int]:
        """(tag, VR or None, value length, value start) of the element at ``pos``."""
        if self.end - pos < 8:
            raise _Unusual("truncated element")
        group, elem, length = self._tag_len.unpack_from(self.buf, pos)
        tag = group << 16 | elem
        if implicit or group == 0xFFFE:  # items and delimiters have no VR
            return tag, None, length, pos + 8
        vr = self._tag_vr.unpack_from(self.buf, pos)[2]
        if vr in _SHORT_VRS:
            return tag, vr.decode("ascii"), self._short.unpack_from(self.buf, pos + 6)[0], pos + 8
        if vr in _LONG_VRS and self.end - pos >= 12:
            return tag, vr.decode("ascii"), self._long.unpack_from(self.buf, pos + 8)[0], pos + 12
        raise _Unusual(f"VR {vr!r}")

    def sequence_end(self, pos: int, implicit: bool) -> int:
        """Position of the Sequence Delimitation Item closing the undefined-length sequence
        whose items start at ``pos``."""
        while True:
            tag, _, length, start = self.header(pos, True)
            if tag == _SEQUENCE_END:
                return pos
            if tag != _ITEM:
                raise _Unusual("no item in a sequence")
            pos = start + length if length != _UNDEFINED else self.item_end(start, implicit)

    def item_end(self, pos: int, implicit: bool) -> int:
        """Position after the Item Delimitation Item of the undefined-length item at ``pos``."""
        while True:
            tag, vr, length, start = self.header(pos, implicit)
            if tag == _ITEM_END:
                return start
            if length != _UNDEFINED:
                pos = start + length
            else:  # PS3.5 §6.2.2: an undefined-length UN holds Implicit VR LE
                pos = self.sequence_end(start, implicit or vr == "UN") + 8


def _scan(buf: memoryview, implicit: bool, little: bool) -> dict:
    """The top-level elements before the pixel data as pydicom RawDataElements, read
    straight from the buffer (pydicom's general reader costs ~0.5 ms for a CT header).
    Undefined-length sequences are kept raw, without their delimiter, for pydicom to read
    if they are ever asked for."""
    elements = _Elements(buf, little)
    pos, out = 0, {}
    while pos < elements.end:
        tag, vr, length, start = elements.header(pos, implicit)
        if tag >= 0x7FE00000:
            break  # pixel data and what follows (or a stray delimiter: pydicom stops there too)
        key = BaseTag(tag)
        if length == _UNDEFINED:
            if not (implicit or vr in ("SQ", "UN")):
                raise _Unusual("undefined length")
            # a sequence; an undefined-length UN is one encoded in Implicit VR LE (§6.2.2)
            if vr == "UN" and not little:
                raise _Unusual("UN sequence in big endian")
            as_implicit = implicit or vr == "UN"
            stop = elements.sequence_end(start, as_implicit)
            out[key] = RawDataElement(key, "SQ", _UNDEFINED, bytes(buf[start:stop]),
                                      start, as_implicit, little, True, False)
            pos = stop + 8
            continue
        if start + length > elements.end:
            raise _Unusual("value beyond the end")
        out[key] = RawDataElement(key, vr, length, bytes(buf[start:start + length]),
                                  start, implicit, little, True, False)
        pos = start + length
    return out


def file_meta_bytes(sop_class: str, sop_instance: str, transfer_syntax: str,
                    source_aet: str | None) -> bytes:
    """Preamble + File Meta Information (PS3.10 §7.1), encoded directly: this runs once per
    received instance and pydicom's general writer costs half a millisecond here."""
    body = b"".join((
        element(0x00020001, "OB", b"\x00\x01", False),
        element(0x00020002, "UI", padded(sop_class, b"\x00"), False),
        element(0x00020003, "UI", padded(sop_instance, b"\x00"), False),
        element(0x00020010, "UI", padded(transfer_syntax, b"\x00"), False),
        element(0x00020012, "UI", padded(IMPLEMENTATION_CLASS_UID, b"\x00"), False),
        element(0x00020013, "SH", padded(IMPLEMENTATION_VERSION_NAME, b" "), False),
        element(0x00020016, "AE", padded(source_aet, b" "), False) if source_aet else b"",
    ))
    return PREAMBLE + element(0x00020000, "UL", struct.pack("<I", len(body)), False) + body


def _meta_elements(data: bytes | memoryview) -> tuple[dict[int, bytes], int] | None:
    """The group 2 elements of a Part 10 file (always Explicit VR Little Endian) as raw
    values by element number, and where the dataset starts; None for a bare dataset."""
    if len(data) < 132 or bytes(data[128:132]) != b"DICM":
        return None
    pos, values = 132, {}
    while pos + 8 <= len(data) and bytes(data[pos:pos + 2]) == b"\x02\x00":
        element = struct.unpack("<H", data[pos + 2:pos + 4])[0]
        if bytes(data[pos + 4:pos + 6]) in _LONG_VRS:
            (length,) = struct.unpack("<I", data[pos + 8:pos + 12])
            start = pos + 12
        else:
            (length,) = struct.unpack("<H", data[pos + 6:pos + 8])
            start = pos + 8
        values[element] = bytes(data[start:start + length])
        pos = start + length
    if pos > len(data):
        raise ValueError("file meta information is truncated")
    return values, pos


def split_part10(data: bytes | memoryview) -> tuple[Dataset | None, int]:
    """(file meta, offset of the dataset) of a Part 10 file; (None, 0) for a bare dataset."""
    found = _meta_elements(data)
    if found is None:
        return None, 0
    pos = found[1]
    meta = read_dataset(BytesIO(bytes(data[132:pos])), False, True)
    return meta, pos


def stored_transfer_syntax(data: bytes | memoryview) -> tuple[str | None, int]:
    """(Transfer Syntax UID of the file meta, offset of the dataset) without decoding the
    meta (sending a stored instance as it is needs only these); (None, 0) for a bare dataset."""
    found = _meta_elements(data)
    if found is None:
        return None, 0
    values, pos = found
    ts = values.get(0x0010)
    return (ts.rstrip(b"\x00 ").decode("ascii", "replace") if ts is not None else None), pos
