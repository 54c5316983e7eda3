from pydicom.dataset import Dataset

from app.dicom.charsets import SUPPORTED, clean, text


def _ds(charset, raw_name: bytes) -> Dataset:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds[Tag(0x00100010)] = RawDataElement(Tag(0x00100010), "PN", len(raw_name), raw_name, 0, True, True)
    return ds


def test_every_term_of_tables_6_1_to_6_4_is_known():
    for term in ("ISO_IR 100", "ISO_IR 144", "ISO_IR 13", "ISO_IR 166", "ISO 2022 IR 149",
                 "ISO 2022 IR 159", "ISO_IR 192", "GB18030", "ISO 2022 IR 6"):
        assert term in SUPPORTED


def test_latin1_decoded():
    assert text(_ds("ISO_IR 100", "Müller^Jürgen".encode("latin-1")), "PatientName") == "Müller^Jürgen"


def test_utf8_decoded():
    assert text(_ds("ISO_IR 192", "山田^太郎".encode("utf-8")), "PatientName") == "山田^太郎"


def test_default_repertoire_bytes_above_7f_become_question_marks():
    assert text(_ds(None, b"M\xfcller"), "PatientName") == "M?ller"


def test_invalid_utf8_becomes_question_mark_not_a_crash():
    assert text(_ds("ISO_IR 192", b"Ab\xff\xfec"), "PatientName").startswith("Ab?")


def test_clean_strips_nul_padding():
    assert clean("DOE\x00", Dataset()) == "DOE"
