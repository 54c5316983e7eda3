"""app.dicom.element_writer writes what pydicom writes, byte for byte, in both Little Endian
transfer syntaxes: the C-FIND responses and file meta headers depend on it."""

from __future__ import annotations

import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from app.dicom.element_writer import dataset_bytes, element, encodings_of, padded
from app.net.direct_messages import PreEncoded

JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"

CASES = {
    "ascii": (None, [(0x00100010, "PN", "Doe^John"), (0x00100020, "LO", "PID1"), (0x00080020, "DA", "20240105"),
                     (0x0020000D, "UI", "1.2.3.45"), (0x00080061, "CS", "CT\\MR"), (0x00201206, "IS", 7),
                     (0x00201208, "IS", "1234"), (0x00080030, "TM", "101010.5"), (0x00081030, "LO", None),
                     (0x00280010, "US", 512), (0x00280011, "US", [1, 2]), (0x00101030, "DS", "70.5"),
                     (0x00080054, "AE", "LIGHTBOX"), (0x00104000, "LT", "a\\b odd")]),
    "latin1": ("ISO_IR 100", [(0x00100010, "PN", "Müller^Jürgen"), (0x00081030, "LO", "Épaule\\Genou"),
                              (0x00104000, "LT", "Schäfer\\ß"), (0x00080090, "PN", "Ibáñez^José\\Peña^Zoë")]),
    "utf8": ("ISO_IR 192", [(0x00100010, "PN", JAPANESE), (0x00081030, "LO", "胸部 CT"),
                            (0x00321060, "LO", "Øresund\\Åberg")]),
    "iso2022": (["", "ISO 2022 IR 87"], [(0x00100010, "PN", JAPANESE), (0x00100020, "LO", "A1")]),
    "iso2022_kana": (["ISO 2022 IR 13", "ISO 2022 IR 87"], [(0x00100010, "PN", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう")]),
    "korean": (["", "ISO 2022 IR 149"], [(0x00100010, "PN", "Hong^Gildong=洪^吉洞=홍^길동")]),
    "sequence": ("ISO_IR 100", [(0x0020000E, "UI", "1.2.3"),
                                (0x00400275, "SQ", [[(0x00401001, "SH", "RP-1"), (0x00400009, "SH", "SPS-é")],
                                                    [(0x00401001, "SH", "RP-22"), (0x00400009, "SH", None)]]),
                                (0x00081110, "SQ", [])]),
}


def _pydicom(pre: PreEncoded, implicit: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, True
    write_dataset(fp, pre.lightbox_dataset())
    return fp.parent.getvalue()


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize("case", list(CASES))
def test_same_bytes_as_pydicom(case, implicit):
    charset, elements = CASES[case]
    pre = PreEncoded(list(elements), charset)
    ours = pre.lightbox_encoded(implicit, True, False)
    assert ours == _pydicom(pre, implicit)
    # and it reads back to the values written, in its character set
    fp = DicomBytesIO(ours)
    fp.is_implicit_VR, fp.is_little_endian = implicit, True
    back = read_dataset(fp, implicit, True)
    back.decode()
    for tag, vr, value in elements:
        if vr in ("PN", "LO", "LT") and value:
            got = back[tag].value
            assert (str(got) if back[tag].VM == 1 or vr == "LT" else "\\".join(map(str, got))) == value


def test_file_meta_element_and_padding():
    assert padded("1.2.3", b"\x00") == b"1.2.3\x00"
    assert padded("1.23", b"\x00") == b"1.23"
    assert element(0x00020010, "UI", b"1.2\x00", False) == b"\x02\x00\x10\x00UI\x04\x001.2\x00"
    assert element(0x00020001, "OB", b"\x00\x01", False) == b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01"
    assert element(0x00100010, "PN", b"AB", True) == b"\x10\x00\x10\x00\x02\x00\x00\x00AB"


def test_encodings_are_cached_per_charset():
    assert encodings_of("ISO_IR 100") is encodings_of("ISO_IR 100")
    assert encodings_of(None) == ("iso8859",)
    assert dataset_bytes([], True) == b""
