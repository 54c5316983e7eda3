"""View, laterality, labels and the mirrored hanging's flips (app.imaging.breast_views), over
a table of cases: every CID 4014 view in both code schemes, every modifier, each
orientation a detector may write."""

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.imaging import breast_views as bv
from tests.mammo_samples import MODIFIER_CODES, VIEW_CODES, code, mammogram, tomo_volume, view_code


@pytest.mark.parametrize("scheme", ["SRT", "SCT"])
@pytest.mark.parametrize("view", sorted(VIEW_CODES))
def test_every_cid_4014_view_in_both_schemes(view, scheme):
    ds = mammogram("R", view, scheme=scheme)
    del ds.ViewPosition  # the code alone decides
    assert bv.breast_view(ds).label == f"R{view}"


@pytest.mark.parametrize("modifier", sorted(MODIFIER_CODES))
@pytest.mark.parametrize("scheme", ["SRT", "SCT"])
def test_modifiers_label_the_view_and_keep_it_out_of_screening(modifier, scheme):
    view = bv.breast_view(mammogram("L", "CC", scheme=scheme, modifiers=(modifier,)))
    assert view.label == f"LCC {modifier}" and not view.standard


def test_old_codes_view_position_fallback_and_unknowns():
    ds = mammogram("R", "XCCL")
    ds.ViewCodeSequence = Sequence([code("Y-X1770", "SRT", "cranio-caudal exaggerated laterally")])
    assert bv.breast_view(ds).label == "RXCCL"
    ds.ViewCodeSequence = Sequence([code("12345", "SCT", "something else")])
    assert bv.breast_view(ds).label == "R?"  # Table 8-14: an invalid view shows as "?"
    del ds.ViewCodeSequence
    ds.ViewPosition = "MLO"
    assert bv.breast_view(ds).label == "RMLO" and bv.breast_view(ds).standard
    ds.ViewPosition = "AP"
    assert bv.breast_view(ds).label == "R?"
    odd = mammogram("R", "CC")
    odd.ViewCodeSequence[0].ViewModifierCodeSequence = Sequence([code("99999", "SCT", "odd")])
    assert bv.breast_view(odd).label == "R?"


@pytest.mark.parametrize("image, frame, series, expected", [
    ("R", None, None, "R"), ("L", None, "R", "L"), (None, "L", None, "L"), (None, None, "R", "R"),
    ("X", None, "R", "U"),      # present but invalid: unpaired (Table 8-14)
    ("B", None, None, "B"), (None, None, None, "U"),
])
def test_laterality_order(image, frame, series, expected):
    ds = Dataset()
    if image is not None:
        ds.ImageLaterality = image
    if frame is not None:
        anatomy = Dataset()
        anatomy.FrameLaterality = frame
        shared = Dataset()
        shared.FrameAnatomySequence = Sequence([anatomy])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
    if series is not None:
        ds.Laterality = series
    assert bv.laterality_of(ds) == expected


def test_tomosynthesis_laterality_from_the_shared_frame_anatomy():
    ds = tomo_volume("L", "MLO")
    assert "ImageLaterality" not in ds and bv.breast_view(ds).label == "LMLO"


# stored (row, column) -> the (rotation, flip) that shows it as the mirrored hanging wants
@pytest.mark.parametrize("laterality, view, stored, expected", [
    ("R", "CC", ("P", "L"), (0, False)),
    ("R", "CC", ("A", "L"), (0, True)),       # detector wrote it mirrored
    ("R", "CC", ("A", "R"), (180, False)),    # upside down
    ("R", "CC", ("P", "R"), (180, True)),     # upside down and mirrored: a vertical flip
    ("L", "CC", ("A", "R"), (0, False)),
    ("L", "CC", ("P", "R"), (0, True)),
    ("R", "MLO", ("P", "F"), (0, False)),
    ("R", "MLO", ("P", "H"), (180, True)),    # head at the bottom: flipped vertically
    ("L", "MLO", ("A", "FR"), (0, False)),    # oblique column
    ("L", "MLO", ("P", "F"), (0, True)),
    ("R", "MLO", ("F", "A"), (90, False)),    # stored on its side: a quarter turn
    ("L", "ML", ("A", "F"), (0, False)),
    ("R", "XCCL", ("A", "L"), (0, True)),
])
def test_flip_decisions(laterality, view, stored, expected):
    ds = mammogram(laterality, view, orientation=stored)
    assert bv.display_transform(ds) == expected


def test_no_flip_without_a_valid_orientation_or_pairing():
    ds = mammogram("R", "CC")
    ds.PatientOrientation = ["Q", "L"]
    assert bv.display_transform(ds) is None
    unpaired = mammogram("R", "CC")
    unpaired.ImageLaterality = "U"
    unpaired.Laterality = "U"
    assert bv.display_transform(unpaired) is None


def test_tomosynthesis_as_ct_takes_its_directions_from_image_orientation():
    from tests.mammo_samples import ct_tomo_slices
    right, left = ct_tomo_slices("R", "CC")[0], ct_tomo_slices("L", "CC")[0]
    assert bv.image_directions(right) == ("P", "L") and bv.display_transform(right) == (0, False)
    assert bv.image_directions(left) == ("A", "R") and bv.display_transform(left) == (0, False)


def test_view_code_helper_matches_the_tables():
    assert view_code("CC", "SRT").CodeValue == "R-10242" and view_code("CC").CodeValue == "399162004"
