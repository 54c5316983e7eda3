"""The viewer on the kinds of images a reading room gets (MR stack, multi-frame colour US,
MONOCHROME1 mammogram, RGB, palette colour, JPEG 2000, RLE), opened from a real archive in
a real X server. What the viewport paints is read back and compared, pixel for pixel in
its centre, with a decoding that does not come from the viewer: the files' raw bytes,
the array a mammogram was made from, DCMTK's dcmj2pnm, pydicom's windowing, the palette
read by hand. Screen positions are mapped to image pixels by hand from the fit geometry
(centred, row 0 at the top, not mirrored), not with the viewport's own image_point.

Every file is one bundled with pydicom (never downloaded) or made here from one.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_windowing
from pydicom.uid import JPEGLosslessSV1, ExplicitVRLittleEndian, generate_uid
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.store.archive import Archive
from app.store.query import search
from app.ui.viewer.window import ViewerWindow
from conftest import dcmtk, screen_shot

BUNDLED = Path(pydicom.data.__file__).parent / "test_files"


# -- files ------------------------------------------------------------------------------------
def bundled(name: str) -> Path:
    """A file bundled with pydicom. Checked on disk first: get_testdata_file downloads the
    names it does not hold, and these tests run offline."""
    assert (BUNDLED / name).exists(), f"{name} is not bundled with this pydicom"
    return Path(pydicom.data.get_testdata_file(name))


def raw_pixels(ds) -> np.ndarray:
    """Stored values of an uncompressed single-frame file, straight from its bytes."""
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    samples = int(ds.SamplesPerPixel)
    dtype = {8: "u1", 16: "u2"}[int(ds.BitsAllocated)]
    if int(ds.PixelRepresentation) == 1:
        dtype = dtype.replace("u", "i")
    arr = np.frombuffer(ds.PixelData, "<" + dtype, count=int(ds.Rows) * int(ds.Columns) * samples)
    assert samples == 1 or int(ds.PlanarConfiguration) == 0
    arr = arr.reshape(int(ds.Rows), int(ds.Columns), samples)
    return arr[..., 0] if samples == 1 else arr


def dcmtk_render(path: Path, tmp_path: Path, *options: str) -> np.ndarray:
    """dcmj2pnm's 8-bit rendering of a file (PGM or PPM): the DICOM toolkit's own pipeline."""
    out = tmp_path / f"dcmtk-{path.stem}-{'_'.join(options).replace('+', '')}.pnm"
    proc = subprocess.run([dcmtk("dcmj2pnm"), *options, "+op", str(path), str(out)],
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    data = out.read_bytes()
    magic, width, height, maxval = data.split(maxsplit=4)[:4]
    assert int(maxval) == 255
    w, h, channels = int(width), int(height), 3 if magic == b"P6" else 1
    arr = np.frombuffer(data[-w * h * channels:], np.uint8)
    return arr.reshape(h, w, 3) if channels == 3 else arr.reshape(h, w)


def windowed(stored: np.ndarray, window, bits_stored: int, signed: bool, monochrome1: bool = False) -> np.ndarray:
    """8-bit display values by pydicom's VOI windowing (PS3.3 C.11.2.1.2), scaled from its
    output range; MONOCHROME1 inverted (its minimum is white)."""
    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"  # pydicom windows; the inversion is below
    voi.BitsStored, voi.PixelRepresentation = bits_stored, int(signed)
    voi.WindowCenter, voi.WindowWidth = window.center, window.width
    y_min, y_max = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2 ** bits_stored - 1)
    y = (apply_windowing(stored.astype(np.float64), voi) - y_min) * 255.0 / (y_max - y_min)
    return np.rint(255.0 - y if monochrome1 else y).astype(np.uint8)


# -- the cases ----------------------------------------------------------------------------------
@dataclass
class Case:
    """Files of one series and, for an image of it (header, frame), the display values the
    viewer must paint (window: the viewport's, for grayscale)."""
    files: list[Path]
    count: int
    expected: Callable[[Dataset, int, object], np.ndarray]
    grey: bool = True
    spacing_unit: str = "mm"
    dcmtk: np.ndarray | None = None  # DCMTK's rendering, where compared with it as well


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def mr_stack(tmp_path: Path, n: int = 4) -> Case:
    """MR_small as n slices 5 mm apart, each with the content shifted sideways, numbered
    against their position (the viewer orders by geometry, not by Instance Number)."""
    src = pydicom.dcmread(bundled("MR_small.dcm"))
    base = raw_pixels(src)
    series, truth, files = generate_uid(), {}, []
    x, y, z = (float(v) for v in src.ImagePositionPatient)
    for k in range(n):
        ds = pydicom.dcmread(bundled("MR_small.dcm"))
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = n - k
        ds.ImagePositionPatient = [x, y, z + 5.0 * k]
        ds.SliceLocation = z + 5.0 * k
        arr = np.roll(base, 12 * k, axis=1)
        ds.PixelData = arr.astype("<i2").tobytes()
        truth[ds.SOPInstanceUID] = arr
        files.append(save(ds, tmp_path / f"mr{k}.dcm"))
    return Case(files, n, lambda h, f, w: windowed(truth[h.SOPInstanceUID], w, 16, True))


def mr_encoded(name: str) -> Callable[[Path], Case]:
    """MR_small in a compressed transfer syntax: it must paint exactly as the uncompressed
    file's bytes (the encodings are lossless)."""
    def make(tmp_path: Path) -> Case:
        reference = raw_pixels(pydicom.dcmread(bundled("MR_small.dcm")))
        return Case([bundled(name)], 1, lambda h, f, w: windowed(reference, w, 16, True))
    return make


def us_multiframe(tmp_path: Path) -> Case:
    """examples_ybr_color.dcm: 30-frame US loop, JPEG baseline YBR_FULL_422, Frame Time
    33.333 ms. Reference: DCMTK's decoding of each frame (another JPEG library and colour
    conversion than pydicom's)."""
    path = bundled("examples_ybr_color.dcm")
    frames: dict[int, np.ndarray] = {}

    def expected(h, frame, w):
        if frame not in frames:
            frames[frame] = dcmtk_render(path, tmp_path, "+F", str(frame + 1))
        return frames[frame]
    return Case([path], 30, expected, grey=False)


def rgb(tmp_path: Path) -> Case:
    path = bundled("examples_rgb_color.dcm")
    reference = raw_pixels(pydicom.dcmread(path))
    return Case([path], 1, lambda h, f, w: reference, grey=False)


def palette(tmp_path: Path) -> Case:
    """examples_palette.dcm: 8-bit indices into 16-bit red, green and blue tables, read by
    hand here (PS3.3 C.7.6.3.1.5): first mapped value, entries, top 8 bits shown."""
    ds = pydicom.dcmread(bundled("examples_palette.dcm"))
    indices = raw_pixels(ds).astype(np.int64)
    channels = []
    for colour in ("Red", "Green", "Blue"):
        entries, first, bits = ds[f"{colour}PaletteColorLookupTableDescriptor"].value
        assert bits == 16
        table = np.frombuffer(ds[f"{colour}PaletteColorLookupTableData"].value, "<u2", count=entries or 65536)
        channels.append((table[np.clip(indices - first, 0, len(table) - 1)] >> 8).astype(np.uint8))
    reference = np.stack(channels, axis=-1)
    return Case([bundled("examples_palette.dcm")], 1, lambda h, f, w: reference, grey=False)


MG_SHAPE = (1200, 900)            # rows, columns
MG_SPACING = 0.085                # mm, Imager Pixel Spacing (at the detector)
MG_AIR, MG_TISSUE, MG_DENSE = 15000, 9000, 3000  # stored values: MONOCHROME1, low = dense
MG_LESION = (500, 300, 60)        # row, column, radius


def mammogram_array(seed: int = 7) -> np.ndarray:
    """A left CC view: breast against the chest wall at the left edge, thinning (brighter
    detector signal, higher value) towards the skin, a dense round lesion."""
    rows, cols = MG_SHAPE
    yy, xx = np.mgrid[0:rows, 0:cols]
    r = np.sqrt(((yy - 600) / 520.0) ** 2 + (xx / 700.0) ** 2)
    arr = np.full(MG_SHAPE, MG_AIR, np.float64)
    breast = r <= 1
    rng = np.random.default_rng(seed)
    arr[breast] = MG_TISSUE + 3000 * r[breast] ** 6 + rng.normal(0, 300, breast.sum())
    lr, lc, radius = MG_LESION
    arr[(yy - lr) ** 2 + (xx - lc) ** 2 <= radius ** 2] = MG_DENSE
    return np.clip(arr, 0, 2 ** 14 - 1).astype(np.uint16)


def mammogram_file(tmp_path: Path, name: str = "mg", **extra) -> Path:
    """A For Presentation digital mammogram, MONOCHROME1, 14 of 16 bits, compressed by
    DCMTK to JPEG lossless SV1 (the format mammograms usually arrive in)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography, For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.StudyDate = "Mammo^Left", "MG001", "20240102"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MG", 1, 1
    ds.ImageLaterality, ds.ViewPosition, ds.PatientOrientation = "L", "CC", ["A", "R"]
    ds.ImagerPixelSpacing = [MG_SPACING, MG_SPACING]
    ds.KVP, ds.BodyPartThickness = "29", "45"
    ds.Rows, ds.Columns = MG_SHAPE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 14, 13, 0
    ds.WindowCenter, ds.WindowWidth = 9000, 14000
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = mammogram_array().tobytes()
    plain = save(ds, tmp_path / f"{name}-plain.dcm")
    out = tmp_path / f"{name}.dcm"
    proc = subprocess.run([dcmtk("dcmcjpeg"), "+e1", str(plain), str(out)], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert pydicom.dcmread(out, stop_before_pixels=True).file_meta.TransferSyntaxUID == JPEGLosslessSV1
    return out


def mammogram(tmp_path: Path) -> Case:
    """Reference: the array the file was made from, windowed by pydicom, inverted."""
    path = mammogram_file(tmp_path)
    source = mammogram_array()
    return Case([path], 1, lambda h, f, w: windowed(source, w, 14, False, monochrome1=True),
                spacing_unit="mm (detector)", dcmtk=dcmtk_render(path, tmp_path, "+Wi", "1"))


KINDS = {"mr": mr_stack, "us": us_multiframe, "mg": mammogram, "rgb": rgb, "palette": palette,
         "jp2k": mr_encoded("MR_small_jp2klossless.dcm"), "rle": mr_encoded("MR_small_RLE.dcm")}


# -- the viewer -------------------------------------------------------------------------------
@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "home")
    yield a
    a.close()


def open_case(qtbot, archive, case: Case):
    for f in case.files:
        assert archive.ingest.store_file(f).ok, f
    # the pixel pipeline at fit, as stored: a mammogram's protocol would hang it mirrored at
    # its own size (that is tests/gui/test_hanging_viewer.py)
    viewer = ViewerWindow(archive, search(archive.engine, "study", {}), hang=False)  # deletes itself when closed
    viewer.show()
    qtbot.waitExposed(viewer)
    vp = viewer.viewports[0]
    qtbot.waitUntil(lambda: vp.images is not None and vp.image_count() == case.count, timeout=15000)
    qtbot.wait(100)  # the dock and toolbar have settled the viewport's size
    return viewer, vp


def current_frame(vp) -> int:
    return vp.images.entries[vp.index].frame


def expected_now(vp, case: Case) -> np.ndarray:
    return case.expected(vp.images.header(vp.index), current_frame(vp), vp.window)


def fit_mapping(vp, shape) -> tuple[float, Callable]:
    """Hand-computed fit geometry: the zoom that fits the image into the viewport and, for
    screen pixel centres, the image (column, row) under them — centred, row 0 at the top,
    columns left to right (no rotation or flip)."""
    vw, vh = vp.render_window.GetSize()
    h, w = shape[:2]
    zoom = min(vw / w, vh / h)

    def to_image(x, y):
        return (x + 0.5 - vw / 2) / zoom + (w - 1) / 2, (y + 0.5 - vh / 2) / zoom + (h - 1) / 2
    return zoom, to_image


def to_screen(vp, shape, col: float, row: float) -> tuple[int, int]:
    zoom, _ = fit_mapping(vp, shape)
    vw, vh = vp.render_window.GetSize()
    h, w = shape[:2]
    return int((col - (w - 1) / 2) * zoom + vw / 2), int((row - (h - 1) / 2) * zoom + vh / 2)


def painted_vs_expected(vp, shot: np.ndarray, expected: np.ndarray, part: float = 0.5):
    """(painted, expected) values of the screen pixels in the middle ``part`` of the
    viewport that lie well inside one image pixel (nearest-pixel drawing)."""
    zoom, to_image = fit_mapping(vp, expected.shape)
    assert vp.zoom is None and vp.current_zoom == pytest.approx(zoom, rel=1e-6)
    assert vp.view.devicePixelRatioF() == 1.0  # snapshot pixels are widget pixels
    vh, vw = shot.shape[:2]
    y0, y1 = int(vh * (1 - part) / 2), int(vh * (1 + part) / 2)
    x0, x1 = int(vw * (1 - part) / 2), int(vw * (1 + part) / 2)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    cols, rows = to_image(xs, ys)
    ci, ri = np.rint(cols).astype(int), np.rint(rows).astype(int)
    h, w = expected.shape[:2]
    keep = (np.abs(cols - ci) < 0.3) & (np.abs(rows - ri) < 0.3) & (ci >= 0) & (ci < w) & (ri >= 0) & (ri < h)
    assert keep.sum() > 500, "too few screen pixels to compare"
    return shot[ys[keep], xs[keep]], expected[ri[keep], ci[keep]]


def assert_painted_as(vp, expected: np.ndarray, tolerance: int = 1) -> np.ndarray:
    """The viewport (without image text) paints ``expected`` in its centre; returns the shot."""
    assert vp.message == ""
    shot = vp.snapshot(with_text=False)
    assert shot.dtype == np.uint8 and shot.ndim == 3
    assert shot.std() > 5 and (shot.max(axis=2) > 20).mean() > 0.05, "the viewport is blank"
    painted, wanted = painted_vs_expected(vp, shot, expected)
    if expected.ndim == 2:  # grey: the three channels are equal
        assert (painted[:, 0] == painted[:, 1]).all() and (painted[:, 1] == painted[:, 2]).all()
        painted = painted[:, 0]
    diff = np.abs(painted.astype(int) - wanted.astype(int))
    assert diff.max() <= tolerance, f"{(diff > tolerance).sum()} of {diff.size} differ, up to {diff.max()}"
    return shot


def colour_pixels(img: np.ndarray) -> int:
    """Pixels whose channels differ clearly (not grey)."""
    img = img.astype(int)
    return int(((img.max(axis=2) - img.min(axis=2)) > 30).sum())


def wheel(widget, notches: int) -> None:
    """Turn the mouse wheel ``notches`` towards the user (positive: next image)."""
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    ev = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120 * notches), Qt.NoButton,
                     Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def drag(widget, start: QPoint, delta: QPoint) -> None:
    QTest.mousePress(widget, Qt.LeftButton, Qt.NoModifier, start)
    QTest.mouseMove(widget, start + delta)
    QTest.mouseRelease(widget, Qt.LeftButton, Qt.NoModifier, start + delta)


# -- tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_first_image_painted_as_decoded(qtbot, archive, tmp_path, kind):
    case = KINDS[kind](tmp_path)
    viewer, vp = open_case(qtbot, archive, case)
    assert vp.index == 0 and vp.message == ""
    expected = expected_now(vp, case)
    shot = assert_painted_as(vp, expected)
    header = vp.images.header(0)
    if case.grey:
        # the window shown is the file's first one
        assert (vp.window.center, vp.window.width) == (float(header.WindowCenter), float(header.WindowWidth))
        assert "W " in vp.text.text("bottom-right")
    else:
        # colour stays colour: drawn magnified, the whole image is on screen with at least
        # as many clearly coloured pixels as it has (the US loop's colour is off centre)
        assert vp.current_zoom > 1 and colour_pixels(expected) > 0
        assert colour_pixels(shot) >= colour_pixels(expected)
        assert vp.text.text("bottom-right").startswith("Zoom")  # no W/L for colour
    # image text: patient, modality and the image count
    assert str(header.PatientID) in vp.text.text("top-left")
    if header.Modality == "MG":  # spec Table 8-14: the view label, not the modality
        assert vp.text.text("bottom-left").splitlines()[0] == f"{header.ImageLaterality}{header.ViewPosition}"
    else:
        assert str(header.Modality) in vp.text.text("bottom-left")
    assert f"Im 1/{case.count}" in vp.text.text("bottom-left")
    qtbot.wait(100)
    screen_shot(viewer, f"viewer_{kind}.png")
    viewer.close()


def test_mr_stack_scrolls_in_geometry_order(qtbot, archive, tmp_path):
    case = mr_stack(tmp_path)
    viewer, vp = open_case(qtbot, archive, case)
    z = [float(vp.images.header(i).ImagePositionPatient[2]) for i in range(case.count)]
    assert z == sorted(z) or z == sorted(z, reverse=True)  # geometry, not Instance Number
    assert [int(vp.images.header(i).InstanceNumber) for i in range(case.count)] != [1, 2, 3, 4]

    first = assert_painted_as(vp, expected_now(vp, case))
    QTest.keyClick(vp.view, Qt.Key_Down)
    assert vp.index == 1
    second = assert_painted_as(vp, expected_now(vp, case))
    assert (first != second).any(axis=2).mean() > 0.05  # the content moved
    assert "Im 2/4" in vp.text.text("bottom-left")
    wheel(vp.view, 2)
    assert vp.index == 3
    assert_painted_as(vp, expected_now(vp, case))
    wheel(vp.view, 1)  # no further than the last image
    assert vp.index == 3
    wheel(vp.view, -3)
    assert vp.index == 0
    assert (assert_painted_as(vp, expected_now(vp, case)) == first).all()
    viewer.close()


@pytest.mark.parametrize("kind", ["mr", "mg", "jp2k", "rle"])
def test_grayscale_window_drag_and_distance(qtbot, archive, tmp_path, kind):
    case = KINDS[kind](tmp_path)
    viewer, vp = open_case(qtbot, archive, case)
    before_window = vp.window
    before = assert_painted_as(vp, expected_now(vp, case))

    # left drag right (wider window) and up (another level); painted as pydicom windows it
    center = QPoint(vp.view.width() // 2, vp.view.height() // 2)
    drag(vp.view, center, QPoint(120, -60))
    assert vp.window.width > before_window.width and vp.window.center != before_window.center
    after = assert_painted_as(vp, expected_now(vp, case))
    assert (before != after).any(axis=2).mean() > 0.05
    assert f"W {vp.window.width:g} L {vp.window.center:g}" in vp.text.text("bottom-right")

    # a distance along a diagonal, in mm from the file's spacing as pydicom reads it
    header = pydicom.dcmread(case.files[0], stop_before_pixels=True)
    spacing = header.get("PixelSpacing") or header.ImagerPixelSpacing
    row_mm, col_mm = float(spacing[0]), float(spacing[1])
    h, w = expected_now(vp, case).shape
    a, b = (w * 0.2, h * 0.3), (w * 0.7, h * 0.55)
    m = vp.add_measurement("distance", [a, b])
    mm = math.hypot((b[0] - a[0]) * col_mm, (b[1] - a[1]) * row_mm)
    assert m.label == f"{mm:.1f} {case.spacing_unit}"
    # the line is drawn in the measurement green over the image, between its end points
    shot = vp.snapshot(with_text=False)
    xa, ya = to_screen(vp, (h, w), *a)
    xb, yb = to_screen(vp, (h, w), *b)
    mid = shot[(ya + yb) // 2 - 3:(ya + yb) // 2 + 4, (xa + xb) // 2 - 3:(xa + xb) // 2 + 4].astype(int)
    assert ((mid[..., 1] > 200) & (mid[..., 0] < 150)).any()
    viewer.close()


def test_mammogram_monochrome1_dense_is_bright(qtbot, archive, tmp_path):
    case = mammogram(tmp_path)
    viewer, vp = open_case(qtbot, archive, case)
    header = vp.images.header(0)
    stored = pydicom.dcmread(vp.images.entries[0].path, stop_before_pixels=True)
    assert stored.file_meta.TransferSyntaxUID == JPEGLosslessSV1  # kept compressed by the archive
    assert vp.images.stored(0).tolist() == mammogram_array().tolist()  # decoded losslessly

    # DCMTK renders the same file (its first window) as the viewer paints it
    shot = assert_painted_as(vp, case.dcmtk)
    lr, lc, _ = MG_LESION
    x, y = to_screen(vp, MG_SHAPE, lc, lr)
    lesion = shot[y, x, 0]
    x, y = to_screen(vp, MG_SHAPE, 150, 600)
    tissue = shot[y, x, 0]
    x, y = to_screen(vp, MG_SHAPE, MG_SHAPE[1] - 20, 100)
    air = shot[y, x, 0]
    assert lesion > 200 and air < 40 and air < tissue < lesion, (air, tissue, lesion)

    # image text of a mammogram: laterality and view
    assert vp.text.text("bottom-left").splitlines()[0] == "LCC"  # Table 8-14's view label
    assert "29 kV" in vp.text.text("bottom-left")
    # measured at the detector: the lesion's diameter
    _, lc, radius = MG_LESION
    m = vp.add_measurement("distance", [(lc - radius, lr), (lc + radius, lr)])
    assert m.label == f"{2 * radius * float(header.ImagerPixelSpacing[1]):.1f} mm (detector)"
    assert m.label.startswith("10.2 mm")

    QTest.keyClick(vp.view, Qt.Key_I)  # the reader's Invert: dense goes dark (off the line drawn)
    x, y = to_screen(vp, MG_SHAPE, lc, lr + radius // 2)
    assert vp.snapshot(with_text=False)[y, x, 0] < 40
    QTest.keyClick(vp.view, Qt.Key_I)
    viewer.close()


def test_mammogram_monochrome1_with_inverse_presentation_lut(qtbot, archive, tmp_path):
    path = mammogram_file(tmp_path, "mg-inverse", PresentationLUTShape="INVERSE")
    reference = dcmtk_render(path, tmp_path, "+Wi", "1")
    lr, lc, _ = MG_LESION
    assert reference[lr, lc] > 200 and reference[100, MG_SHAPE[1] - 20] < 40  # DCMTK: dense is bright
    viewer, vp = open_case(qtbot, archive, Case([path], 1, lambda h, f, w: reference))
    screen_shot(viewer, "viewer_mg_inverse_plut.png")
    painted, wanted = painted_vs_expected(vp, vp.snapshot(with_text=False), reference)
    viewer.close()
    del viewer, vp  # the frame of an (expected) failure must not keep the VTK window and its X connection
    assert np.abs(painted[:, 0].astype(int) - wanted).max() <= 1


def test_us_multiframe_scroll_and_cine(qtbot, archive, tmp_path):
    case = us_multiframe(tmp_path)
    viewer, vp = open_case(qtbot, archive, case)
    assert [e.frame for e in vp.images.entries] == list(range(30))  # a loop plays in stored order
    first = assert_painted_as(vp, expected_now(vp, case))

    QTest.keyClick(vp.view, Qt.Key_Down)
    assert vp.index == 1 and current_frame(vp) == 1
    second = assert_painted_as(vp, expected_now(vp, case))
    assert (first != second).any(axis=2).sum() > 1000  # the heart moved
    wheel(vp.view, 4)
    assert vp.index == 5
    assert_painted_as(vp, expected_now(vp, case))
    QTest.keyClick(vp.view, Qt.Key_End)
    assert vp.index == 29 and "Im 30/30" in vp.text.text("bottom-left")

    # cine at the file's Frame Time (33.333 ms), wrapping past the last frame
    assert vp.frame_time_ms() == pytest.approx(float(pydicom.dcmread(case.files[0], stop_before_pixels=True).FrameTime))
    QTest.keyClick(vp.view, Qt.Key_C)
    assert vp.cine.isActive() and vp.cine.interval() == 33
    qtbot.waitUntil(lambda: 3 <= vp.index < 29, timeout=5000)
    QTest.keyClick(vp.view, Qt.Key_C)
    assert not vp.cine.isActive()
    stopped = vp.index
    qtbot.wait(200)
    assert vp.index == stopped
    assert_painted_as(vp, expected_now(vp, case))
    viewer.close()


def test_us_cine_rate_without_frame_time(qtbot, archive, tmp_path):
    """A loop that gives Cine Rate (frames/s) instead of Frame Time plays at that rate."""
    ds = pydicom.dcmread(bundled("examples_ybr_color.dcm"))
    del ds.FrameTime
    ds.CineRate = 25
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    case = Case([save(ds, tmp_path / "cine.dcm")], 30, lambda h, f, w: None, grey=False)  # not painted here
    viewer, vp = open_case(qtbot, archive, case)
    assert vp.frame_time_ms() == pytest.approx(1000 / 25)
    QTest.keyClick(vp.view, Qt.Key_C)
    assert vp.cine.interval() == 40
    QTest.keyClick(vp.view, Qt.Key_C)
    viewer.close()


def test_mr_image_text_gives_tr_and_te_in_ms(qtbot, archive, tmp_path):
    case = mr_encoded("MR_small_RLE.dcm")(tmp_path)
    header = pydicom.dcmread(case.files[0], stop_before_pixels=True)
    assert (float(header.RepetitionTime), float(header.EchoTime)) == (4000.0, 240.0)
    viewer, vp = open_case(qtbot, archive, case)
    text = vp.text.text("bottom-left")
    viewer.close()
    del viewer, vp  # the frame of an (expected) failure must not keep the VTK window and its X connection
    assert "TR 4000" in text and "TE 240" in text, text
