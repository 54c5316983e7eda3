"""Specific character sets of spec §6 (Tables 6-1 to 6-4) and how text is decoded.

Everything is stored and shown as UTF-8 on our side. Bytes that are not legal in the
declared character set become '?' (spec §6), never an exception.
"""

import logging
import unicodedata
import warnings

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


def unsupported(ds: Dataset) -> list[str]:
    return [t for t in declared(ds) if t not in SUPPORTED]


# Control characters a DICOM text value may hold (PS3.5 §6.1.2.3: LF, FF, CR; TAB in the
# text VRs); ESC only inside ISO 2022 escape sequences, which decoding has consumed.
_ALLOWED_CONTROLS = frozenset("\t\n\r\f")


def clean(text: str, ds: Dataset) -> str:
    """Make decoded text DICOM-conformant: illegal characters become '?' (spec §6)."""
    text = text.replace("\ufffd", REPLACEMENT).replace("\x00", "")
    # C0/C1 control codes are in no character set of §6 (pydicom's Latin decoders map the
    # bytes 0x80-0x9F to C1 controls instead of flagging them): they become '?' too.
    text = "".join(REPLACEMENT if unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS else c
                   for c in text)
    if all(t in _DEFAULT_ONLY for t in declared(ds)) and not text.isascii():
        # The default repertoire is 7-bit ASCII; pydicom would have read Latin-1.
        text = "".join(c if c.isascii() else REPLACEMENT for c in text)
    return text


def text(ds: Dataset, keyword: str | int) -> str | None:
    """The decoded, cleaned value of a string attribute (by keyword or tag); multi-values
    joined by '\\'."""
    with warnings.catch_warnings():
        # pydicom warns for every undecodable byte; we log once per dataset instead
        warnings.simplefilter("ignore")
        try:
            value = ds.get(keyword) if isinstance(keyword, str) else (ds[keyword].value if keyword in ds else None)
        except Exception as exc:  # a broken element must not stop indexing
            log.warning("could not decode %s: %s", keyword, exc)
            return None
    if value is None or value == "":
        return None
    if isinstance(value, PersonName):
        value = str(value)
    elif not isinstance(value, str):
        try:
            value = "\\".join(str(v) for v in value)
        except TypeError:
            value = str(value)
    return clean(value, ds).strip() or None
