"""Recognition of mammography objects per spec Annex A, Tables 8-7 to 8-12
(app.imaging.mammo_objects): kinds, and one violation of each Table 8-12 constraint."""

import pytest

from app.imaging import mammo_objects as mo
from tests.mammo_samples import MG_PROCESSING, ct_tomo_slices, mammogram, tomo_volume


def test_kinds():
    assert mo.recognise(mammogram("R", "CC")).kind == mo.MG
    assert mo.recognise(mammogram("R", "CC")).problems == []
    assert mo.recognise(mammogram("R", "CC", sop_class=MG_PROCESSING)).kind == mo.MG_PROCESSING
    assert not mo.recognise(mammogram("R", "CC", sop_class=MG_PROCESSING)).hung
    assert mo.recognise(tomo_volume("L", "MLO")).kind == mo.DBT
    assert mo.recognise(tomo_volume("L", "MLO", generated_2d=True)).kind == mo.GENERATED_2D
    assert mo.recognise(ct_tomo_slices("R", "CC")[0]).kind == mo.DBT_CT
    assert mo.recognise(ct_tomo_slices("R", "CC", model="MAMMOMAT Revelation")[0]).kind == mo.DBT_CT
    assert mo.recognise(ct_tomo_slices("R", "CC", model="SOMATOM Force")[0]).kind is None  # a CT is a CT


def test_hologic_c_view_rule():
    ds = tomo_volume("R", "CC", generated_2d=True)
    ds.ImageType = ["DERIVED", "PRIMARY"]  # no GENERATED_2D value: only Table 8-10 can tell
    assert mo.recognise(ds).kind == mo.DBT
    ds.Manufacturer, ds.ManufacturerModelName = "HOLOGIC, Inc.", "Selenia Dimensions"
    ds.SeriesDescription, ds.SeriesNumber = "R CC C-View", 73300000
    assert mo.recognise(ds).kind == mo.GENERATED_2D_CVIEW


def test_mammogram_without_a_valid_orientation_is_still_shown_with_a_warning():
    ds = mammogram("R", "CC")
    del ds.PatientOrientation
    got = mo.recognise(ds)
    assert got.kind == mo.MG and got.hung
    assert got.problems == ["Patient Orientation is missing, must be present and valid (e.g. P\\L) (Table 8-7)"]


def test_tomosynthesis_with_per_frame_anatomy_is_flagged():
    got = mo.recognise(tomo_volume("R", "CC", shared_anatomy=False))
    assert got.kind == mo.DBT and any("Frame Anatomy" in p for p in got.problems)


@pytest.mark.parametrize("attribute, value, words", [
    ("PixelRepresentation", 1, "Pixel Representation is '1', must be 0"),
    ("BitsAllocated", 12, "Bits Allocated is '12', must be 8 or 16"),
    ("BitsStored", 11, "Bits Stored is '11', must be 8 or 10 or 12 or 14 or 15 or 16"),
    ("HighBit", 12, "High Bit is 12 with Bits Stored 12, must be Bits Stored - 1"),
    ("SamplesPerPixel", 3, "Samples per Pixel is '3', must be 1"),
    ("PhotometricInterpretation", "RGB", "Photometric Interpretation is 'RGB', must be MONOCHROME1 or MONOCHROME2"),
])
def test_each_table_8_12_violation(attribute, value, words):
    ds = mammogram("L", "MLO")
    setattr(ds, attribute, value)
    if attribute == "BitsStored":
        ds.HighBit = value - 1  # only the one constraint broken
    got = mo.recognise(ds)
    assert got.kind == mo.MG and got.problems == [f"{words} (Table 8-12)"]


def test_ct_series_must_be_one_volume():
    slices = ct_tomo_slices("R", "CC")
    assert mo.check_ct_volume(slices) == []
    slices[1].ImagePositionPatient = slices[0].ImagePositionPatient
    assert "more than one volume" in mo.check_ct_volume(slices)[0]
    other = ct_tomo_slices("R", "CC")
    other[0].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    assert "more than one orientation" in mo.check_ct_volume(other)[0]


@pytest.mark.parametrize("value, ok", [(["P", "L"], True), (["A", "FR"], True), ("P\\F", True), (["P"], False),
                                       (["P", "A"], False), (["Q", "L"], False), (["PP", "L"], False), (None, False)])
def test_patient_orientation_validity(value, ok):
    assert mo.valid_patient_orientation(value) is ok
