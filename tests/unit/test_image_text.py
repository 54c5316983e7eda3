"""Image text from resources/image_text.tsv, and orientation markers from the geometry."""

import pytest
from pydicom.dataset import Dataset

from app.imaging.image_text import ViewState, corner_text, direction_label, orientation_markers


def _ct() -> Dataset:
    ds = Dataset()
    ds.Modality, ds.PatientName, ds.PatientID = "CT", "Doe^Jane", "P1"
    ds.PatientBirthDate, ds.PatientSex = "19610704", "F"
    ds.StudyDate, ds.StudyTime, ds.StudyDescription = "20261127", "093015", "CT THORAX"
    ds.SeriesNumber, ds.SeriesDescription = 3, "Thorax 1.0"
    ds.KVP, ds.XRayTubeCurrent, ds.SliceThickness = "120", 210, "1.0"
    return ds


def test_corners_from_the_table_with_modality_rows():
    text = corner_text(_ct(), ViewState(7, 120, "W 400 L 40", "1.50", "-1051.0 mm"))
    assert text["top-left"].splitlines() == ["Doe, Jane", "P1", "1961-07-04 F"]
    assert "CT THORAX" in text["top-right"] and "2026-11-27 09:30:15" in text["top-right"]
    assert text["bottom-left"].splitlines() == ["CT 3 Thorax 1.0", "Im 7/120", "-1051.0 mm",
                                                "120 kV  210 mA  1 mm"]
    assert text["bottom-right"].splitlines() == ["W 400 L 40", "Zoom 1.50"]


def test_units_only_with_their_values():
    ds = _ct()
    del ds.XRayTubeCurrent
    text = corner_text(ds, ViewState(1, 1, "", "", ""))
    assert text["bottom-left"].splitlines()[-1] == "120 kV  1 mm"


def test_values_read_by_their_vr():
    """Repetition and Echo Time are milliseconds (DS), not times of day; decimal strings
    lose their trailing zeros; a person's name without components stays as it is."""
    ds = Dataset()
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "MR", 2, "T2 TSE"
    ds.RepetitionTime, ds.EchoTime, ds.SliceThickness = "4000", "120.00", "0.8000"
    ds.PatientName = "ANONYMOUS"
    text = corner_text(ds, ViewState(1, 20, "", "", ""))
    assert text["bottom-left"].splitlines()[-1] == "TR 4000  TE 120  0.8 mm"
    assert text["top-left"].splitlines()[0] == "ANONYMOUS"


def test_lines_without_values_are_left_out():
    ds = Dataset()
    ds.Modality = "OT"
    text = corner_text(ds, ViewState(1, 1, "", "", ""))
    assert text["top-left"] == "" and text["top-right"] == ""
    assert text["bottom-left"] == "OT\nIm 1/1"


@pytest.mark.parametrize("iop, markers", [
    ((1, 0, 0, 0, 1, 0), {"right": "L", "left": "R", "bottom": "P", "top": "A"}),        # axial
    ((0, 1, 0, 0, 0, -1), {"right": "P", "left": "A", "bottom": "F", "top": "H"}),       # sagittal
    ((1, 0, 0, 0, 0, -1), {"right": "L", "left": "R", "bottom": "F", "top": "H"}),       # coronal
])
def test_orientation_markers(iop, markers):
    assert orientation_markers(iop) == markers


def test_oblique_and_missing():
    assert direction_label((0.8, 0.6, 0)) == "LP"
    assert orientation_markers(None) is None and orientation_markers((1, 0, 0)) is None
