"""Mammography image text per spec Table 8-14 (resources/image_text.tsv MG rows and
app.imaging.mammo_text): the fallbacks the table names."""

import pytest
from pydicom.sequence import Sequence

from app.imaging.image_text import ViewState, corner_text
from tests.mammo_samples import code, mammogram, tomo_volume


def _text(ds, view=ViewState(1, 1, "W 4095 L 2047", "0.25", "", "NORMAL")) -> dict[str, str]:
    return corner_text(ds, view)


def test_the_corners_of_a_mammogram():
    ds = mammogram("R", "CC")
    ds.InstitutionName, ds.StationName, ds.OrganDose, ds.EntranceDoseInmGy = "Breast Centre", "MAMMO1", 1.42, 5.3
    t = _text(ds)
    assert t["bottom-left"].splitlines()[0] == "RCC"
    assert "29 kV  1200 ms  90 mAs  TUNGSTEN  RHODIUM" in t["bottom-left"]
    assert "AGD 1.42 mGy  ESD 5.3 mGy" in t["bottom-left"]
    assert "Breast Centre" in t["top-right"] and "SIEMENS MAMMOMAT Revelation" in t["top-right"]
    assert t["top-left"].splitlines()[2] == "Acc ACC20260310"
    assert t["bottom-right"].splitlines()[0] == "NORMAL W 4095 L 2047"
    assert "0.079 mm/px  mag 1.08" in t["bottom-right"]  # variant A: 0.085 / 1.08
    assert "2026-03-10 09:20" in t["top-left"] and "study date" not in t["top-left"]


def test_study_date_with_a_disclaimer_when_the_acquisition_date_is_missing():
    ds = mammogram("L", "MLO")
    del ds.AcquisitionDate
    assert "2026-03-10 09:15:00 (study date: acquisition date not set)" in _text(ds)["top-left"]


@pytest.mark.parametrize("change, label", [
    (lambda ds: setattr(ds, "ViewCodeSequence", Sequence([code("1234", "SCT", "odd")])), "R?"),
    (lambda ds: (setattr(ds, "ImageLaterality", "X"), setattr(ds, "Laterality", "X")), "UCC"),
    (lambda ds: None, "RCC"),
])
def test_view_question_mark_and_unpaired(change, label):
    ds = mammogram("R", "CC")
    change(ds)
    assert _text(ds)["bottom-left"].splitlines()[0] == label


@pytest.mark.parametrize("values, expected", [
    ({"EstimatedRadiographicMagnificationFactor": None}, "0.079 mm/px  mag 1.08"),       # A via SID / SOD
    ({"EstimatedRadiographicMagnificationFactor": None, "DistanceSourceToPatient": None,
      "ImagerPixelSpacing": None}, "0.079 mm/px"),                                      # B: Pixel Spacing
])
def test_resolution_variants(values, expected):
    ds = mammogram("R", "CC")
    ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = 650.0, 602.0
    for k, v in values.items():
        delattr(ds, k) if v is None else setattr(ds, k, v)
    assert expected in _text(ds)["bottom-right"]


def test_tomosynthesis_counts_slices():
    ds = tomo_volume("L", "CC", frames=60)
    assert _text(ds, ViewState(12, 60))["bottom-left"].splitlines()[1].startswith("Slice 12/60")
    synthesised = tomo_volume("L", "CC", generated_2d=True)
    assert _text(synthesised, ViewState(1, 1))["bottom-left"].splitlines()[1] == "Im 1/1"
