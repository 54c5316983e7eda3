"""Packing for archives without a SOP class (spec §4.2.1.3.1.4, Table 4-8): what the packed
object holds, what is refused, and what the store pipeline does with one that comes back
(the network side and dciodvfy are in tests/peers/test_send.py)."""

from io import BytesIO

import pydicom
import pytest
from pydicom.uid import generate_uid

from app.dicom import packing
from app.store.archive import Archive
from app.store.query import search
from conftest import pdf_document
from tests.peers.peerutil import ct_dataset, save


def _pdf_file(tmp_path):
    from pydicom.dataset import Dataset
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.104.1", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality = "P7", "DOC"
    data = pdf_document("x")
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")
    return save(ds, tmp_path / "doc.dcm")


def _file_bytes(ds) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_table_4_8_is_the_spec_s():
    assert len(packing.packable()) == 10
    assert packing.packable()["1.2.840.10008.5.1.4.1.1.66.4"] == "Segmentation Storage"


@pytest.mark.parametrize("carrier", ["sr", "sc"])
def test_pack_holds_the_original_and_is_the_same_every_time(tmp_path, carrier):
    path = _pdf_file(tmp_path)
    original = path.read_bytes()
    one, two = packing.pack(original, carrier), packing.pack(original, carrier)
    assert one.SOPClassUID == packing.CARRIERS[carrier]
    assert (one.SOPInstanceUID, one.SeriesInstanceUID) == (two.SOPInstanceUID, two.SeriesInstanceUID)
    back = pydicom.dcmread(BytesIO(_file_bytes(one)))
    assert packing.payload(back).rstrip(b"\0") == original.rstrip(b"\0")
    assert packing.may_be_packed(str(back.SOPClassUID), _file_bytes(one))


def test_refuses_what_table_4_8_does_not_list(tmp_path):
    ct = save(ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=8), tmp_path / "ct.dcm")
    with pytest.raises(ValueError, match="not a class Table 4-8"):
        packing.pack(ct.read_bytes(), "sr")
    with pytest.raises(ValueError, match="unknown packing"):
        packing.pack(_pdf_file(tmp_path).read_bytes(), "zip")


def test_a_packed_object_is_stored_as_its_original_and_a_broken_one_as_it_came(tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        path = _pdf_file(tmp_path)
        packed = packing.pack(path.read_bytes(), "sr")
        assert archive.ingest.store_file(save(packed, tmp_path / "packed.dcm")).ok
        rows = search(archive.engine, "instance", {})
        assert [r["SOPClassUID"] for r in rows] == ["1.2.840.10008.5.1.4.1.1.104.1"]
        # a payload that is not a DICOM file: nothing is lost, the SR is kept as it came
        broken = packing.pack(path.read_bytes(), "sr")
        broken.SOPInstanceUID = generate_uid()
        broken.private_block(0x0029, packing.CREATOR)[0x10].value = b"not dicom at all"
        assert archive.ingest.store_file(save(broken, tmp_path / "broken.dcm")).ok
        classes = sorted(r["SOPClassUID"] for r in search(archive.engine, "instance", {}))
        assert classes == ["1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.88.11"]
    finally:
        archive.close()
