from pathlib import Path

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


def _bundled_files():
    import pydicom.data
    root = Path(pydicom.data.__file__).parent
    return sorted(p for d in ("test_files", "charset_files") for p in (root / d).rglob("*") if p.is_file())


def test_fast_reader_decodes_every_value_as_pydicom_does():
    """The ingest fast path (header scanner + TextReader) against pydicom's own reader and
    conversion (text()), for every attribute of every file bundled with pydicom: all VRs,
    byte orders, character sets, sequences of defined and undefined length."""
    from app.dicom.charsets import TextReader
    from app.dicom.encoding import parse_header, split_part10

    compared, differences = 0, []
    for path in _bundled_files():
        data = path.read_bytes()
        try:
            meta, offset = split_part10(data)
            ts = str(meta.get("TransferSyntaxUID")) if meta is not None else "1.2.840.10008.1.2"
            fast = TextReader(parse_header(memoryview(data)[offset:], ts))
            reference = parse_header(memoryview(data)[offset:], ts, fast=False)
        except Exception:  # noqa: BLE001 - deliberately broken files are not this test's subject
            continue
        if set(fast.ds.keys()) != set(reference.keys()):
            differences.append(f"{path.name}: other elements {set(fast.ds.keys()) ^ set(reference.keys())}")
        for tag in list(reference.keys()):
            if tag.group == 0x7FE0:
                continue
            compared += 1
            got, want = fast.text(int(tag)), text(reference, int(tag))
            if got != want:
                differences.append(f"{path.name} {tag}: {got!r} != {want!r}")
    assert compared > 5000  # the bundled files are there and were read
    assert not differences, "\n".join(differences[:20])
