"""Grayscale Softcopy Presentation States (app.imaging.presentation_state) against DCMTK's
dcmp2pgm, which renders an image through a GSPS, and against values worked out by hand.

What dcmp2pgm (3.6.7) does and does not do, and so what is compared:
- it applies the state's modality LUT, VOI (window or LUT), presentation LUT shape or table,
  rotation and flip, ignoring the image's Photometric Interpretation: compared pixel by pixel;
- it writes the whole image, not the displayed area: its output is cut to the area here;
- it reads display shutters (its -v dump lists them) but leaves the pixels unshuttered: the
  shown pixels are compared, and our mask against the geometry of its dump;
- it ignores VOI LUT Function in a state (SIGMOID renders LINEAR): checked by hand instead.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from conftest import dcmtk
from gsps_samples import annotation, graphic, gsps, image, layer, save, text

from app.imaging import presentation_state as gs
from app.imaging.pixels import LINEAR, SIGMOID, Window

X = np.arange(4096)
SQRT_VOI = (-1024, 16, np.rint(np.sqrt(X / 4095) * 65535).astype(int))   # HU -1024.. -> 16 bits
SQUARE_PLUT = (12, np.rint((np.arange(256) / 255) ** 2 * 4095).astype(int))


# -- running DCMTK ---------------------------------------------------------------------------
def _files(tmp_path: Path, img, ps) -> tuple[Path, Path]:
    img_path, ps_path = save(img, tmp_path / "image.dcm"), save(ps, tmp_path / "state.dcm")
    check = subprocess.run([dcmtk("dcmpschk"), str(ps_path)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith(("E:", "F:"))]
    assert check.returncode == 0 and not errors, check.stdout + check.stderr
    return img_path, ps_path


def _dcmp2pgm(img_path: Path, ps_path: Path) -> tuple[np.ndarray, str]:
    out = img_path.parent / "dcmtk.pgm"
    run = subprocess.run([dcmtk("dcmp2pgm"), "-v", "-p", str(ps_path), str(img_path), str(out)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    data = out.read_bytes()
    magic, rest = data[:2], data[2:].split(maxsplit=3)
    width, height, maxval = int(rest[0]), int(rest[1]), int(rest[2])
    assert magic == b"P5" and maxval == 255  # 8-bit output, as ours
    return np.frombuffer(rest[3][:width * height], dtype=np.uint8).reshape(height, width), run.stdout + run.stderr


def _ours(img_path: Path, ps_path: Path) -> tuple[np.ndarray, gs.PresentationState, pydicom.Dataset]:
    img, state = pydicom.dcmread(img_path), gs.parse(pydicom.dcmread(ps_path))
    uid = img.SOPInstanceUID
    return gs.apply_spatial(gs.display(state, img, img.pixel_array, uid, 1), state, uid, 1), state, img


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.max(np.abs(a.astype(int) - b.astype(int))))


CASES = {
    "window": ({}, dict(window=(500, 3000))),
    "linear-exact": ({}, dict(window=(500, 3000, "LINEAR_EXACT"))),
    "voi-lut": ({}, dict(voi_lut=SQRT_VOI)),
    "no-voi-is-identity": ({}, dict()),
    "no-modality-lut-is-identity": ({}, dict(window=(1500, 3000), rescale=False)),
    "modality-lut-sequence": ({}, dict(window=(1500, 3000), modality_lut=(0, 12, 4095 - X))),
    "inverse": ({}, dict(window=(500, 3000), shape="INVERSE")),
    "presentation-lut-sequence": ({}, dict(window=(500, 3000), plut=SQUARE_PLUT)),
    "voi-lut-and-presentation-lut": ({}, dict(voi_lut=SQRT_VOI, plut=SQUARE_PLUT)),
    "monochrome1-identity": ({"photometric": "MONOCHROME1"}, dict(window=(500, 3000))),
    "monochrome1-inverse": ({"photometric": "MONOCHROME1"}, dict(window=(500, 3000), shape="INVERSE")),
    **{f"rotate-{r}{'-flip' if f else ''}": ({}, dict(window=(500, 3000), rotation=r, flip=f))
       for r in (0, 90, 180, 270) for f in (False, True)},
}


@pytest.mark.parametrize("image_options, state_options", CASES.values(), ids=list(CASES))
def test_rendering_matches_dcmp2pgm(tmp_path, image_options, state_options):
    img = image(**image_options)
    files = _files(tmp_path, img, gsps(img, **state_options))
    ours, theirs = _ours(*files)[0], _dcmp2pgm(*files)[0]
    assert ours.shape == theirs.shape
    assert _max_diff(ours, theirs) <= 1
    assert len(np.unique(ours)) > 20  # a real gradient was compared, not a blank


def test_state_made_by_dcmpsmk(tmp_path):
    """A state DCMTK writes itself (the image's window, references in each module) reads and
    renders the same."""
    img_path = save(image(window=(300, 2500)), tmp_path / "image.dcm")
    ps_path = tmp_path / "made.dcm"
    subprocess.run([dcmtk("dcmpsmk"), str(img_path), str(ps_path)], check=True, capture_output=True, timeout=60)
    ours, state, img = _ours(img_path, ps_path)
    assert state.voi(img.SOPInstanceUID, 1) == Window(300, 2500, LINEAR, "GSPS")
    assert state.references == [(img.SeriesInstanceUID, img.SOPInstanceUID, None)]
    assert _max_diff(ours, _dcmp2pgm(img_path, ps_path)[0]) <= 1


def test_tables_in_implicit_vr(tmp_path):
    """Implicit VR leaves the tables' VRs to the reader: pydicom gives LUT Data as OW bytes and
    a negative first mapped value as unsigned (64512 for -1024). (dcmp2pgm refuses this copy,
    "neither VOI window nor LUT present": the explicit VR original is its reference.)"""
    img = image()
    img_path, explicit = _files(tmp_path, img, gsps(img, voi_lut=SQRT_VOI, plut=SQUARE_PLUT))
    ds = pydicom.dcmread(explicit)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    implicit = tmp_path / "implicit.dcm"
    ds.save_as(implicit, enforce_file_format=True)
    table = pydicom.dcmread(implicit).SoftcopyVOILUTSequence[0].VOILUTSequence[0]
    assert table.LUTDescriptor[1] == 64512 and isinstance(table.LUTData, bytes)
    ours = _ours(img_path, implicit)[0]
    assert np.array_equal(ours, _ours(img_path, explicit)[0])
    assert _max_diff(ours, _dcmp2pgm(img_path, explicit)[0]) <= 1


@pytest.mark.parametrize("area, rotation, flip", [
    (((10, 5), (40, 30)), 0, False),
    (((10, 5), (40, 30)), 90, True),
    (((40, 30), (10, 5)), 180, False),        # corners as a 180 degree rotation brings them
    (((-5, -3), (30, 60)), 270, False),       # partly outside the 64 x 48 image
])
def test_displayed_area_matches_dcmp2pgm(tmp_path, area, rotation, flip):
    img = image()
    img_path, ps_path = _files(tmp_path, img, gsps(img, window=(500, 3000), area=area, rotation=rotation, flip=flip))
    ours, state, _ = _ours(img_path, ps_path)
    theirs, _ = _dcmp2pgm(img_path, ps_path)
    # the area's size, rotated: corners 1-based and inclusive
    (c1, r1), (c2, r2) = area
    width, height = abs(c2 - c1) + 1, abs(r2 - r1) + 1
    assert ours.shape == ((width, height) if rotation % 180 else (height, width))
    # dcmp2pgm shows the whole image rotated and flipped (the order checked above): cut the
    # area's part of the image out of it the same way, and compare it with ours
    inside = np.zeros((48, 64), dtype=bool)
    inside[max(min(r1, r2) - 1, 0):max(r1, r2), max(min(c1, c2) - 1, 0):max(c1, c2)] = True
    inside = np.rot90(inside, -rotation // 90)
    inside = np.fliplr(inside) if flip else inside
    ours_inside = gs.apply_spatial(np.ones((48, 64), dtype=bool), state, img.SOPInstanceUID, 1)
    assert ours_inside.sum() == inside.sum()
    assert _max_diff(ours[ours_inside], theirs[inside]) <= 1
    assert not ours[~ours_inside].any()  # outside the image: the shutter value, black by default


def test_shutters_against_the_dcmp2pgm_dump(tmp_path):
    img = image()
    state = gsps(img, window=(500, 3000), rectangular=(5, 50, 4, 40), circular=((24, 30), 20),
                 shutter_value=0x8000)
    img_path, ps_path = _files(tmp_path, img, state)
    ours, parsed, _ = _ours(img_path, ps_path)
    theirs, dump = _dcmp2pgm(img_path, ps_path)
    # geometry as DCMTK reads it: edges as columns (LV, RV) and rows (UH, LH), the centre as x\y
    lv, rv, uh, lh = map(int, re.search(r"LV=(-?\d+) RV=(-?\d+) UH=(-?\d+) LH=(-?\d+)", dump).groups())
    cx, cy, radius = map(int, re.search(r"center=(-?\d+)\\(-?\d+) radius=(\d+)", dump).groups())
    r, c = np.mgrid[1:49, 1:65]
    expected = (c >= lv) & (c <= rv) & (r >= uh) & (r <= lh) & ((c - cx) ** 2 + (r - cy) ** 2 <= radius ** 2)
    shutter = parsed.shutter(48, 64, img.SOPInstanceUID, 1)
    assert np.array_equal(shutter.mask, expected) and 0 < expected.sum() < expected.size
    assert shutter.gray == 128 and "0x8000" in dump  # P-value 0x8000 -> gray 128
    assert _max_diff(ours[expected], theirs[expected]) <= 1
    assert (ours[~expected] == 128).all()


def test_annotations_against_the_dcmp2pgm_dump(tmp_path):
    """dcmp2pgm -v lists the layers in display order with their objects and PIXEL coordinates
    as stored: ours are the same objects, in the same layer order, half a pixel up and left."""
    img = image()
    layers = [layer("TOP", 7), layer("BOTTOM", -2, gray=0xFFFF), layer("MIDDLE", 3, lab=(0x8000, 0x8080, 0x8080))]
    items = [annotation("TOP", graphics=[graphic("ELLIPSE", [(10, 20), (30, 20), (20, 15), (20, 25)]),
                                         graphic("INTERPOLATED", [(1.25, 2.5), (3.75, 4), (6, 1)])]),
             annotation("BOTTOM", graphics=[graphic("POLYLINE", [(0, 0), (64, 48)], filled=True)]),
             annotation("MIDDLE", graphics=[graphic("CIRCLE", [(32, 24), (40, 24)])],
                        texts=[text("note", box=((5, 5), (25, 12)))])]
    img_path, ps_path = _files(tmp_path, img, gsps(img, layers=layers, annotations=items))
    _, state, _ = _ours(img_path, ps_path)
    _, dump = _dcmp2pgm(img_path, ps_path)
    theirs, layer_name = [], None
    for line in dump.splitlines():
        if m := re.search(r"Graphic Layer #\d+ \[(.*)\]", line):
            layer_name = m.group(1)
        elif m := re.search(r"graphic \d+: points=\d+ type=(\w+) filled=(\w+)", line):
            theirs.append([layer_name, m.group(1).upper(), m.group(2) == "yes", None])
        elif m := re.search(r"coordinates: (.*)", line):
            theirs[-1][3] = tuple(tuple(float(v) - 0.5 for v in p.split("\\")) for p in m.group(1).split(", ") if p)
        elif re.search(r"text \d+: \"note\"", line):
            theirs.append([layer_name, "TEXT", False, None])
        elif m := re.search(r"bounding box: TLHC=(\S+)\\(\S+) BRHC=(\S+)\\(\S+) units=pixel", line):
            x1, y1, x2, y2 = (float(v) - 0.5 for v in m.groups())
            theirs[-1][3] = ((x1, y1), (x2, y2))
    ours = [[a.layer, a.kind, a.filled, a.points] for a in state.annotations(img.SOPInstanceUID, 1)]
    assert [a[0] for a in ours] == [t[0] for t in theirs] == ["BOTTOM", "MIDDLE", "MIDDLE", "TOP", "TOP"]
    assert sorted(map(repr, ours)) == sorted(map(repr, theirs))  # DCMTK lists a layer's texts first


def test_polygonal_shutter_by_hand():
    img = image(8, 8)
    state = gs.parse(gsps(img, polygonal=[(1, 1), (1, 8), (8, 1)]))  # (row, column): a triangle
    mask = state.shutter(8, 8, img.SOPInstanceUID, 1).mask
    assert mask[0, 0] and mask[0, 6] and mask[6, 0]           # inside, near the corners
    assert not mask[7, 7] and not mask[5, 5]                  # beyond the hypotenuse
    assert state.shutter(8, 8, "1.2.3.not.referenced", 1) is None


# -- by hand ---------------------------------------------------------------------------------
def test_pixel_units_to_image_coordinates():
    img = image()
    state = gs.parse(gsps(img, layers=[layer("A", 1)], annotations=[annotation("A", graphics=[
        graphic("POLYLINE", [(0, 0), (64, 48), (10.5, 20.5)])])]))
    [line] = state.annotations(img.SOPInstanceUID, 1)
    # PIXEL 0\0 is the top left corner of the top left pixel, whose centre is 0.5\0.5; the
    # viewer counts pixel centres from 0
    assert line.points == ((-0.5, -0.5), (63.5, 47.5), (10.0, 20.0))
    assert line.kind == "POLYLINE" and line.layer == "A" and not line.filled


@pytest.mark.parametrize("rotation, flip, top_left, bottom_right", [
    (0, False, (9.5, 4.5), (39.5, 29.5)),
    (90, False, (9.5, 29.5), (39.5, 4.5)),    # clockwise: the image's bottom left comes to the top left
    (180, False, (39.5, 29.5), (9.5, 4.5)),
    (270, False, (39.5, 4.5), (9.5, 29.5)),
    (0, True, (39.5, 4.5), (9.5, 29.5)),      # mirrored: the image's top right at the top left
    (90, True, (9.5, 4.5), (39.5, 29.5)),     # rotated then mirrored: a transpose
])
def test_display_units_follow_displayed_area_and_spatial_transform(rotation, flip, top_left, bottom_right):
    img = image()
    # area columns 11..40, rows 6..30: PIXEL edges 10..40 and 5..30
    state = gs.parse(gsps(img, area=((11, 6), (40, 30)), rotation=rotation, flip=flip, annotations=[
        annotation("A", graphics=[graphic("POLYLINE", [(0, 0), (1, 1), (0.5, 0.5)], units="DISPLAY")])]))
    [line] = state.annotations(img.SOPInstanceUID, 1)
    assert line.points[0] == pytest.approx(top_left) and line.points[1] == pytest.approx(bottom_right)
    assert line.points[2] == pytest.approx((24.5, 17.0))  # the centre stays the centre


def test_display_units_without_displayed_area():
    img = image()
    ps = gsps(img, annotations=[annotation("A", texts=[text("note", anchor=(0.25, 0.5), units="DISPLAY")])])
    del ps.DisplayedAreaSelectionSequence  # malformed: the module is mandatory
    state = gs.parse(ps)
    assert state.displayed_area(img.SOPInstanceUID, 1) is None
    assert state.annotations(img.SOPInstanceUID, 1) == []      # nowhere to place it: skipped
    [note] = state.annotations(img.SOPInstanceUID, 1, size=(48, 64))  # the whole image then
    assert note.kind == "TEXT" and note.text == "note" and note.anchor == (15.5, 23.5) and note.points == ()


def test_layer_order_and_colours():
    img = image()
    layers = [layer("MIDDLE", 2, lab=(0xFFFF, 0x8080, 0x8080)), layer("BOTTOM", 1, gray=0x8000), layer("TOP", 3)]
    items = [annotation(name, graphics=[graphic("POINT", [(i, i)])]) for i, name in
             enumerate(["MIDDLE", "UNDECLARED", "TOP", "BOTTOM", "MIDDLE"])]
    found = gs.parse(gsps(img, layers=layers, annotations=items)).annotations(img.SOPInstanceUID, 1)
    assert [(a.layer, a.points[0][0]) for a in found] == [
        ("BOTTOM", 2.5), ("MIDDLE", -0.5), ("MIDDLE", 3.5), ("TOP", 1.5), ("UNDECLARED", 0.5)]
    colours = {a.layer: a.color for a in found}
    assert colours["MIDDLE"] == pytest.approx((1.0, 1.0, 1.0), abs=2e-3)   # L 100: white
    assert colours["BOTTOM"] == pytest.approx((0x8000 / 0xFFFF,) * 3)
    assert colours["TOP"] == colours["UNDECLARED"] == gs.DEFAULT_COLOR


def test_cielab_to_srgb():
    def encode(L, a, b):  # C.10.7.1.1: L 0..100, a* and b* -128..127, each onto 0..0xFFFF
        return round(L * 65535 / 100), round((a + 128) * 65535 / 255), round((b + 128) * 65535 / 255)
    # sRGB primaries in CIELab relative to D50 (ICC PCS), Bradford-adapted
    assert gs.lab_to_rgb(encode(54.2905, 80.8049, 69.8910)) == pytest.approx((1, 0, 0), abs=0.01)
    assert gs.lab_to_rgb(encode(87.8185, -79.2711, 80.9946)) == pytest.approx((0, 1, 0), abs=0.01)
    assert gs.lab_to_rgb(encode(0, 0, 0)) == pytest.approx((0, 0, 0), abs=1e-6)
    assert gs.lab_to_rgb((0xFFFF, 0x8080, 0x8080)) == pytest.approx((1, 1, 1), abs=2e-3)


def test_malformed_parts_are_skipped(tmp_path):
    img = image()
    good = graphic("CIRCLE", [(10, 10), (15, 10)], filled=True)
    odd = graphic("POLYLINE", [1.0, 2.0, 3.0])              # an odd number of values
    star = graphic("STAR", [(1, 1), (2, 2)])                 # no such graphic type
    short = graphic("ELLIPSE", [(1, 1), (2, 2)])             # an ellipse needs 4 points
    matrix = graphic("POINT", [(1, 1)], units="MATRIX")
    empty_text = text("no position")
    ps = gsps(img, window=(40, 9999), annotations=[annotation("A", graphics=[odd, star, good, short, matrix],
                                                              texts=[empty_text])])
    del ps.DisplayedAreaSelectionSequence[0].DisplayedAreaBottomRightHandCorner
    ps.ShutterShape, ps.ShutterLeftVerticalEdge = "RECTANGULAR", 3  # the other edges missing
    ps.ImageRotation = 45
    path = save(ps, tmp_path / "bad.dcm")  # a window width that is no number (pydicom will not write one)
    path.write_bytes(path.read_bytes().replace(b"9999", b"oops"))
    state = gs.parse(pydicom.dcmread(path))
    uid = img.SOPInstanceUID
    [circle] = state.annotations(uid, 1, size=(48, 64))
    assert circle.kind == "CIRCLE" and circle.filled and circle.points == ((9.5, 9.5), (14.5, 9.5))
    assert state.displayed_area(uid, 1) is None and state.voi(uid, 1) is None
    assert state.shutter(48, 64, uid, 1) is None and state.spatial() == gs.Spatial(0, False)
    out = gs.display(state, img, img.pixel_array, uid, 1)  # still renders: identity VOI
    assert out.shape == (48, 64) and out.dtype == np.uint8


def test_not_a_gsps_raises():
    with pytest.raises(ValueError, match="not a Grayscale Softcopy Presentation State"):
        gs.parse(image())
    assert not gs.is_presentation_state(image()) and gs.is_presentation_state(gsps(image()))


def test_identification_references_and_scoping():
    a, b = image(), image()
    b.SeriesInstanceUID = "1.2.3.4"
    state = gs.parse(gsps([a, b], window=(10, 20), voi_images=[b], frames={b.SOPInstanceUID: [2, 3]}))
    assert (state.label, state.description, state.creator, state.date, state.time) == \
        ("SAMPLE", "sample state", "Tester^Tom", "20240102", "101112")
    assert state.references == [(a.SeriesInstanceUID, a.SOPInstanceUID, None), ("1.2.3.4", b.SOPInstanceUID, (2, 3))]
    assert state.applies_to(a.SOPInstanceUID, 7) and state.applies_to(b.SOPInstanceUID, 3)
    assert not state.applies_to(b.SOPInstanceUID, 1) and not state.applies_to("9.9", 1)
    assert state.voi(a.SOPInstanceUID, 1) is None             # the VOI item names only b
    assert state.voi(b.SOPInstanceUID, 2) == Window(10, 20, LINEAR, "GSPS")
    area = state.displayed_area(a.SOPInstanceUID, 1)
    assert area == gs.DisplayedArea((1, 1), (64, 48), "SCALE TO FIT", None, (0.5, 0.5), 1.0)


def test_sigmoid_window_by_hand():
    """dcmp2pgm ignores VOI LUT Function in a state, so this one is worked out by hand."""
    img = image()
    state = gs.parse(gsps(img, window=(40, 400, "SIGMOID"), shape="INVERSE"))
    assert state.voi(img.SOPInstanceUID, 1) == Window(40, 400, SIGMOID, "GSPS")
    stored = np.array([[1064, 1464, 664]], dtype=np.uint16)   # HU 40, 440, -360
    got = gs.display(state, img, stored, img.SOPInstanceUID, 1)
    # 255 / (1 + exp(-4 (x - c) / w)), then inverted: 255 - 127.5 rounds (half to even) to 128
    assert got.tolist() == [[128, round(255 - 255 / (1 + np.exp(-4))), round(255 - 255 / (1 + np.exp(4)))]]


@pytest.mark.parametrize("options", [dict(voi_lut=SQRT_VOI, plut=SQUARE_PLUT), dict(window=(40, 400, "SIGMOID")),
                                     dict(shape="INVERSE"), dict(window=(500, 3000), modality_lut=(0, 12, 4095 - X))])
def test_table_path_equals_per_pixel_path(options):
    img = image(128, 128)
    state = gs.parse(gsps(img, **options))
    uid = img.SOPInstanceUID
    stored = np.random.default_rng(3).integers(0, 4096, size=(128, 128)).astype(np.uint16)
    fast = gs.display(state, img, stored, uid, 1)      # 16,384 pixels: through the table
    voi = state.voi(uid, 1)
    slow = gs._grayscale(state, voi, None if voi else gs._modality_range(state, img), stored)
    assert np.array_equal(fast, slow)


def test_viewer_rotation_matches_the_scene_convention():
    """scene.screen_axes mirrors first and rotates after; a GSPS rotates first (C.10.6).
    `Spatial.viewer_rotation` must show the image the same way apply_spatial lays it out."""
    from app.imaging.scene import screen_axes
    rows, cols = np.mgrid[0:5, 0:7]
    for rotation in (0, 90, 180, 270):
        for flip in (False, True):
            sp = gs.Spatial(rotation, flip)
            state = gs.PresentationState(_spatial=sp)
            shown_r, shown_c = (gs.apply_spatial(a, state, "", 1) for a in (rows, cols))
            # image directions (column, up) at the screen's right and top of the laid-out image
            right = (shown_c[0, 1] - shown_c[0, 0], -(shown_r[0, 1] - shown_r[0, 0]))
            up = (shown_c[0, 0] - shown_c[1, 0], -(shown_r[0, 0] - shown_r[1, 0]))
            want_right, want_up = screen_axes(sp.viewer_rotation, flip)
            assert right == pytest.approx(want_right, abs=1e-9) and up == pytest.approx(want_up, abs=1e-9)
