"""Data elements written straight to bytes, Little Endian, implicit or explicit VR.

pydicom's general writer costs some 0.15 ms per element (a Dataset, a DataElement, value
validation, a BytesIO per element); the messages we send in bulk — C-FIND responses, C-STORE
responses, the File Meta Information of every received file — have a known flat shape, so
they are written here. Text is encoded exactly as pydicom encodes it (per value, names per
component group, so ISO 2022 escape sequences reset where PS3.5 §6.1.2.5.3 says), and
tests/unit/test_element_writer.py holds the output byte for byte against pydicom's.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from operator import itemgetter
from typing import Iterable, Sequence

from pydicom.charset import convert_encodings, encode_string
from pydicom.valuerep import PersonName

# explicit VR: these have two reserved bytes and a 4-byte length (PS3.5 §7.1.2)
LONG_FORM = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"})
# encoded in the Specific Character Set; the rest are ASCII (PS3.5 §6.1.2.3)
TEXT = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
# a backslash is text, not a value delimiter, in these
SINGLE_VALUED = frozenset({"ST", "LT", "UT", "UR"})
_BINARY = {"US": "<H", "SS": "<h", "UL": "<I", "SL": "<l", "FL": "<f", "FD": "<d", "UV": "<Q", "SV": "<q"}
_ITEM = 0xFFFEE000

# (tag, VR, value): value is str, int, float, bytes, None (empty) or, for SQ, a list of items,
# each a sequence of such triples
Element = tuple[int, str, object]


def padded(text: str, pad: bytes) -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


_IMPLICIT = struct.Struct("<HHI")
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_EXPLICIT_LONG = struct.Struct("<HH2s2xI")


def element(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    """One element around an already encoded (even-length) value."""
    if implicit:
        return _IMPLICIT.pack(tag >> 16, tag & 0xFFFF, len(value)) + value
    if vr in LONG_FORM:
        return _EXPLICIT_LONG.pack(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), len(value)) + value
    return _EXPLICIT_SHORT.pack(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), len(value)) + value


@lru_cache(maxsize=64)
def encodings_of(charset: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """Python codecs of a Specific Character Set value (a term or a tuple of terms)."""
    terms = [charset] if isinstance(charset, str) else list(charset or ())
    return tuple(convert_encodings(terms or None))


def value_bytes(vr: str, value, encodings: Sequence[str]) -> bytes:
    """The encoded, padded value of a non-sequence element."""
    if value is None or value == "":
        return b""
    if type(value) is str and vr not in _BINARY and value.isascii():  # the common case, first
        data = value.encode("ascii")
        return data + (b"\x00" if vr == "UI" else b" ") if len(data) % 2 else data
    fmt = _BINARY.get(vr)
    if fmt is not None:
        values = value if isinstance(value, (list, tuple)) else [value]
        return b"".join(struct.pack(fmt, int(v) if fmt[-1] not in "fd" else float(v)) for v in values)
    if isinstance(value, bytes):
        return value + b"\x00" if len(value) % 2 else value
    text = "\\".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    if vr == "UI":
        return padded(text, b"\x00")
    if vr not in TEXT or text.isascii():
        data = text.encode("ascii") if text.isascii() else text.encode("latin-1", "replace")
    else:
        parts = [text] if vr in SINGLE_VALUED else text.split("\\")
        if vr == "PN":
            data = b"\\".join(PersonName(p).encode(list(encodings)) for p in parts)
        else:
            data = b"\\".join(encode_string(p, list(encodings)) for p in parts)
    return data + b" " if len(data) % 2 else data


def dataset_bytes(elements: Iterable[Element], implicit: bool, encodings: Sequence[str] = ("iso8859",)) -> bytes:
    """A data set of ``elements`` (any order: written in tag order); sequences and their
    items with defined lengths, as pydicom writes them."""
    out = []
    for tag, vr, value in sorted(elements, key=itemgetter(0)):
        if vr == "SQ":
            data = b"".join(element(_ITEM, "", dataset_bytes(item, implicit, encodings), True)
                            for item in (value or ()))
        else:
            data = value_bytes(vr, value, encodings)
        out.append(element(tag, vr, data, implicit))
    return b"".join(out)
