"""The mammography test objects (tests/mammo_samples.py) are valid DICOM for dicom3tools'
dciodvfy, and the tomosynthesis volumes hold lesions in focus at their own depth."""

from __future__ import annotations

import subprocess

import pytest
from pydicom.uid import generate_uid

from conftest import require
from tests.mammo_samples import (MG_PROCESSING, breast_pixels, cad_report, ct_tomo_slices, finding, lesions,
                                 mammogram, standard_orientation, tomo_volume)


def _cad_report():
    image = mammogram("R", "CC")
    cluster = finding("F-01775", "SRT", "Calcification Cluster", image=image.SOPInstanceUID,
                      points=[10, 10, 40, 10, 40, 30, 10, 10],
                      children=[finding("F-01776", "SRT", "Individual Calcification", image=image.SOPInstanceUID,
                                        graphic="POINT", points=[20, 20])])
    density = finding("129770007", "SCT", "Individual Calcification", image=image.SOPInstanceUID, graphic="POINT",
                      points=[30, 12], operating_point=0.4)
    return cad_report(image.StudyInstanceUID, [cluster, density, finding("F-01710", "SRT", "Breast Composition")],
                      image_series=image.SeriesInstanceUID)


GENERATORS = {
    "mammogram For Presentation RCC": lambda: mammogram("R", "CC"),
    "mammogram For Presentation LMLO": lambda: mammogram("L", "MLO", modifiers=("M",)),
    "mammogram For Processing": lambda: mammogram("R", "CC", sop_class=MG_PROCESSING, bits=14),
    "tomosynthesis volume RCC": lambda: tomo_volume("R", "CC", frames=8),
    "tomosynthesis volume LMLO, anatomy per frame": lambda: tomo_volume("L", "MLO", shared_anatomy=False),
    "generated 2D": lambda: tomo_volume("R", "CC", generated_2d=True),
    "tomosynthesis as CT, first slice": lambda: ct_tomo_slices("L", "CC")[0],
    "mammography CAD SR": _cad_report,
    "mammography CAD SR without findings": lambda: cad_report(generate_uid(), [], summary="111241"),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_dciodvfy_finds_no_error(name, tmp_path):
    path = tmp_path / "object.dcm"
    GENERATORS[name]().save_as(path, enforce_file_format=True)
    check = subprocess.run([require("dciodvfy"), str(path)], capture_output=True, text=True)
    errors = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("laterality", ["R", "L"])
def test_lesions_are_inside_the_breast_and_sharpest_on_their_slice(laterality):
    size, frames = (120, 96), 30
    volume = tomo_volume(laterality, "CC", frames=frames, size=size).pixel_array
    synthesized = tomo_volume(laterality, "CC", frames=frames, size=size, generated_2d=True).pixel_array
    breast = breast_pixels(size, standard_orientation(laterality, "CC")[0])
    found = lesions(size, frames)
    assert len(found) >= 3 and len({frame for _, _, frame in found}) == len(found)  # each at its own depth
    for row, col, frame in found:
        assert 0 <= row < size[0] and 0 <= col < size[1] and 0 <= frame < frames
        tissue = int(breast[row, col])
        assert tissue > breast.min()  # in the tissue, not the background
        away = frame + 5 if frame + 5 < frames else frame - 5
        assert int(volume[frame, row, col]) > int(volume[away, row, col]) + 200
        assert int(volume[frame, row, col]) > tissue + 200
        assert int(synthesized[row, col]) > tissue + 200  # the synthesized view shows every lesion


def test_a_volume_and_its_synthesized_view_share_frame_of_reference_and_grid():
    volume = tomo_volume("R", "CC", frames=10, size=(60, 48), series=(series := generate_uid()))
    synthesized = tomo_volume("R", "CC", frames=10, size=(60, 48), generated_2d=True,
                              frame_of_reference=volume.FrameOfReferenceUID, series=series)
    assert synthesized.FrameOfReferenceUID == volume.FrameOfReferenceUID
    assert synthesized.SeriesInstanceUID == volume.SeriesInstanceUID == series
    assert (synthesized.Rows, synthesized.Columns, synthesized.NumberOfFrames) == (60, 48, 1)
    assert tomo_volume("R", "CC").FrameOfReferenceUID != volume.FrameOfReferenceUID  # a new one by default


def test_slices_follow_one_another_along_the_normal_one_thickness_apart():
    import numpy as np
    ds = tomo_volume("L", "CC", frames=6)
    shared = ds.SharedFunctionalGroupsSequence[0]
    orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    normal = np.cross(orientation[:3], orientation[3:])
    depths = [float(np.dot([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient], normal))
              for item in ds.PerFrameFunctionalGroupsSequence]
    assert np.allclose(np.diff(depths), float(shared.PixelMeasuresSequence[0].SliceThickness))
    assert [item.FrameContentSequence[0].InStackPositionNumber for item in ds.PerFrameFunctionalGroupsSequence] \
        == [1, 2, 3, 4, 5, 6]
