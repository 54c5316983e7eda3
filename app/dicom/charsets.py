"""Specific character sets of spec §6 (Tables 6-1 to 6-4) and how text is decoded.

Everything is stored and shown as UTF-8 on our side. Bytes that are not legal in the
declared character set become '?' (spec §6), never an exception.
"""

import logging
import re
import struct
import warnings

from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

log = logging.getLogger(__name__)

# Defined terms of Tables 6-1 .. 6-4 ("" = default repertoire).
SUPPORTED = frozenset({
    # Table 6-1: single-byte without code extension
    "", "ISO_IR 6", "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110", "ISO_IR 144",
    "ISO_IR 127", "ISO_IR 126", "ISO_IR 138", "ISO_IR 148", "ISO_IR 13", "ISO_IR 166",
    # Table 6-2: single-byte with code extension
    "ISO 2022 IR 6", "ISO 2022 IR 100", "ISO 2022 IR 101", "ISO 2022 IR 109",
    "ISO 2022 IR 110", "ISO 2022 IR 144", "ISO 2022 IR 127", "ISO 2022 IR 126",
    "ISO 2022 IR 138", "ISO 2022 IR 148", "ISO 2022 IR 13", "ISO 2022 IR 166",
    # Table 6-3: multi-byte without code extension
    "ISO_IR 192", "GB18030",
    # Table 6-4: multi-byte with code extension (JIS X 0208 comes with 0212 in practice)
    "ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149",
})

_DEFAULT_ONLY = {"", "ISO_IR 6", "ISO 2022 IR 6"}
REPLACEMENT = "?"


def declared(ds: Dataset) -> list[str]:
    value = ds.get("SpecificCharacterSet", "")
    terms = [value] if isinstance(value, str) else list(value)
    return [t.strip() for t in terms] or [""]


def unsupported(terms: list[str]) -> list[str]:
    """The declared terms (``declared``) that are in none of Tables 6-1 to 6-4."""
    return [t for t in terms if t not in SUPPORTED]


# Control characters a DICOM text value may hold (PS3.5 §6.1.2.3: LF, FF, CR; TAB in the
# text VRs); ESC only inside ISO 2022 escape sequences, which decoding has consumed. Every
# other C0/C1 control code (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) is in no
# character set of §6 (pydicom's Latin decoders map the bytes 0x80-0x9F to C1 controls
# instead of flagging them): they become '?'. NUL is padding and is dropped.
_ILLEGAL_CONTROLS = re.compile("[\x01-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_NON_ASCII = re.compile("[^\x00-\x7f]")


def clean(text: str, ds: Dataset | None = None, *, default_only: bool | None = None) -> str:
    """Make decoded text DICOM-conformant: illegal characters become '?' (spec §6).

    ``default_only``: the dataset declares only the default repertoire (7-bit ASCII, where
    pydicom would have read Latin-1); taken from ``ds`` when not given."""
    text = _ILLEGAL_CONTROLS.sub(REPLACEMENT, text.replace("\ufffd", REPLACEMENT).replace("\x00", ""))
    if default_only is None:
        default_only = all(t in _DEFAULT_ONLY for t in declared(ds)) if ds is not None else True
    if default_only and not text.isascii():
        text = _NON_ASCII.sub(REPLACEMENT, text)
    return text


def text(ds: Dataset, keyword: str | int) -> str | None:
    """The decoded, cleaned value of a string attribute (by keyword or tag); multi-values
    joined by '\\'. Decoded by pydicom: the reference for :class:`TextReader`."""
    tag = tag_for_keyword(keyword) if isinstance(keyword, str) else keyword
    value = _pydicom_value(ds, tag) if tag is not None else None
    return clean(value, ds).strip() or None if value is not None else None


# -- the fast path ---------------------------------------------------------------------------
# Indexing reads some 40 attributes of every received instance. pydicom's general value
# conversion (element objects, validation, value classes) cost 1-2 ms per CT image for
# that; TextReader decodes the raw bytes the header parser left, with the same results
# (tests/unit/test_charsets.py compares both on every test file), and hands anything
# unusual (code extensions, sequences, UN, other binary VRs) back to pydicom.
_CHARSET_VRS = frozenset({"SH", "LO", "UC"})      # declared character set, multi-valued
_SINGLE_TEXT_VRS = frozenset({"ST", "LT", "UT"})       # declared character set, one value
_DEFAULT_VRS = frozenset({"CS", "DA", "TM", "DT", "AS"})  # default repertoire, multi-valued
_STRIPPED_VRS = frozenset({"AE", "DS", "IS"})         # leading and trailing spaces not significant
_BINARY_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "l", "FL": "f", "FD": "d"}


class TextReader:
    """Decodes the values of one dataset (and of its sequence items) for indexing."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        terms = declared(ds)
        self.terms = terms
        self.default_only = all(t in _DEFAULT_ONLY for t in terms)
        # One character set without code extensions (Tables 6-1 and 6-3): plain codec.
        term = terms[0] if len(terms) == 1 else None
        self.codec = python_encoding.get(term) if term is not None and not term.startswith("ISO 2022") else None
        if self.default_only:
            self.codec = "ascii"

    def text(self, tag: int, item: Dataset | None = None) -> str | None:
        """Like :func:`text`, for a tag of the dataset or of one of its sequence items."""
        ds = self.ds if item is None else item
        elem = ds._dict.get(tag)
        if elem is None:
            return None
        # An item with a character set of its own is rare: pydicom deals with it.
        own_charset = item is not None and 0x00080005 in item._dict
        if self.codec is not None and isinstance(elem, RawDataElement) and not own_charset:
            value = self._fast(elem)
            if value is not NotImplemented:
                if value is None:
                    return None
                return clean(value, default_only=self.default_only).strip() or None
        value = _pydicom_value(ds, tag)
        if value is None:
            return None
        return clean(value, default_only=self.default_only).strip() or None

    def _fast(self, elem: RawDataElement):
        raw = elem.value
        if raw is None or not raw:
            return None
        vr = elem.VR
        if vr is None:
            try:
                vr = dictionary_VR(elem.tag)
            except KeyError:
                return NotImplemented
        if vr == "PN":
            # whole value stripped, not each name; empty trailing component groups dropped
            names = raw.rstrip(b"\0 ").decode(self.codec, errors="replace").split("\\")
            return "\\".join(_drop_empty_groups(n) for n in names)
        if vr in _CHARSET_VRS:
            values = raw.decode(self.codec, errors="replace").split("\\")
            return "\\".join(v.rstrip("\0 ") for v in values)
        if vr in _DEFAULT_VRS:
            return raw.decode("latin_1").rstrip(" \0")
        if vr == "UI":
            return raw.decode("latin_1").rstrip("\0 ")
        if vr in _STRIPPED_VRS:
            return "\\".join(v.strip() for v in raw.decode("latin_1").split("\\"))
        if vr in _SINGLE_TEXT_VRS:
            return raw.decode(self.codec, errors="replace").rstrip("\0 ")
        fmt = _BINARY_VRS.get(vr)
        if fmt is not None:
            size = struct.calcsize("<" + fmt)
            if len(raw) % size:
                return NotImplemented  # malformed: pydicom decides what it is worth
            order = "<" if elem.is_little_endian else ">"
            return "\\".join(str(v) for v in struct.unpack(f"{order}{len(raw) // size}{fmt}", raw))
        return NotImplemented


def _drop_empty_groups(name: str) -> str:
    groups = name.split("=")
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def _pydicom_value(ds: Dataset, tag: int) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = ds[tag].value if tag in ds else None
        except Exception as exc:  # a broken element must not stop indexing
            log.warning("could not decode %04X,%04X: %s", tag >> 16, tag & 0xFFFF, exc)
            return None
    if value is None or value == "":
        return None
    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return None  # binary data is not indexed
    try:
        return "\\".join(str(v) for v in value)
    except TypeError:
        return str(value)
