"""The pixel pipeline against values computed by hand (PS3.3 C.11.2.1.2) and against DCMTK's
dcmj2pnm for the same files and windows (within one gray level)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.imaging import pixels
from app.imaging.pixels import LINEAR, LINEAR_EXACT, SIGMOID, Window

FILES = Path(pydicom.data.__file__).parent / "test_files"
DCMJ2PNM = "/usr/bin/dcmj2pnm"


# -- hand-computed ---------------------------------------------------------------------------
def test_linear_window_by_hand():
    w = Window(40, 400, LINEAR)
    # below c - 0.5 - (w-1)/2 = -160: 0; above c - 0.5 + (w-1)/2 = 239: 255
    got = pixels.to_uint8(pixels.apply_window(np.array([-1000, -160, -159, 40, 239, 239.5, 3000]), w))
    assert got.tolist() == [0, 0, 1, 128, 255, 255, 255]
    # ((x - (c - 0.5)) / (w - 1) + 0.5) * 255 at x = 0: ((0 - 39.5) / 399 + 0.5) * 255 = 102.2556
    assert pixels.apply_window(np.array([0.0]), w)[0] == pytest.approx(102.2556, abs=1e-4)
    one = Window(100, 1, LINEAR)  # width 1: a threshold at c - 0.5
    assert pixels.to_uint8(pixels.apply_window(np.array([99, 99.5, 100]), one)).tolist() == [0, 0, 255]


def test_linear_exact_and_sigmoid_by_hand():
    exact = Window(40, 400, LINEAR_EXACT)
    assert pixels.apply_window(np.array([-160.0, 40.0, 240.0]), exact).tolist() == [0.0, 127.5, 255.0]
    sigmoid = Window(40, 400, SIGMOID)
    y = pixels.apply_window(np.array([40.0, 440.0, -360.0]), sigmoid)
    assert y[0] == pytest.approx(127.5)
    assert y[1] == pytest.approx(255 / (1 + np.exp(-4)))  # 250.33
    assert y[2] == pytest.approx(255 / (1 + np.exp(4)))


def test_file_windows_presets_and_functions():
    ds = Dataset()
    ds.WindowCenter, ds.WindowWidth = [40, -600], [400, 1500]
    ds.WindowCenterWidthExplanation = ["SOFT TISSUE", "LUNG"]
    ds.VOILUTFunction = "SIGMOID"
    assert pixels.file_windows(ds) == [Window(40, 400, SIGMOID, "SOFT TISSUE"), Window(-600, 1500, SIGMOID, "LUNG")]
    names = [w.name for w in pixels.modality_presets("CT")]
    assert {"Brain", "Lung", "Abdomen", "Bone"} <= set(names)


def _mono(photometric: str, values: list[list[int]], **extra) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    arr = np.array(values, dtype=np.uint16)
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = arr.tobytes()
    return ds


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("shape", [None, "IDENTITY", "INVERSE"])
def test_polarity_from_photometric_and_presentation_lut_shape(tmp_path, photometric, shape):
    """MONOCHROME1 is inverted; a Presentation LUT Shape, when present, decides instead
    (a MONOCHROME1 mammogram with INVERSE is inverted once): as DCMTK's dcmj2pnm shows it."""
    ds = _mono(photometric, [[0, 2048, 4095]], WindowCenter=2048, WindowWidth=4096)
    if shape:
        ds.PresentationLUTShape = shape
    ds.save_as(tmp_path / "p.dcm", enforce_file_format=True)
    ours = pixels.render(ds)
    theirs = _dcmj2pnm(tmp_path / "p.dcm", "+Wi", "1")
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    assert ours[0, 0] == (255 if (shape or ("INVERSE" if photometric == "MONOCHROME1" else "")) == "INVERSE" else 0)
    assert pixels.render(ds, invert=True)[0, 0] == 255 - ours[0, 0]  # the viewer's Invert


def test_modality_lut_rescale():
    ds = _mono("MONOCHROME2", [[0, 1024, 1064]], RescaleSlope=1, RescaleIntercept=-1024)
    assert pixels.modality_values(ds, ds.pixel_array).tolist() == [[-1024, 0, 40]]
    assert pixels.render(ds, window=Window(40, 80)).tolist() == [[0, 0, 129]]


# -- against DCMTK ---------------------------------------------------------------------------
def _dcmj2pnm(path: Path, *options: str) -> np.ndarray:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "out.pnm"
        out = subprocess.run([DCMJ2PNM, *options, "+op", str(path), str(target)], capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        data = target.read_bytes()
    magic, rest = data[:2], data[2:].split(maxsplit=3)
    width, height, maxval, raster = int(rest[0]), int(rest[1]), int(rest[2]), rest[3]
    assert maxval == 255
    channels = 3 if magic == b"P6" else 1
    arr = np.frombuffer(raster[:width * height * channels], dtype=np.uint8)
    return arr.reshape(height, width, channels) if channels == 3 else arr.reshape(height, width)


@pytest.mark.parametrize("name, window, options", [
    ("CT_small.dcm", Window(40, 400), ("+Ww", "40", "400")),
    ("CT_small.dcm", Window(1100, 600), ("+Ww", "1100", "600")),
    ("CT_small.dcm", Window(40, 400, SIGMOID), ("+Ww", "40", "400", "+Wfs")),
    ("MR_small.dcm", Window(600, 1200), ("+Ww", "600", "1200")),
    ("MR_small_RLE.dcm", Window(600, 1200), ("+Ww", "600", "1200")),
    ("JPGExtended.dcm", Window(2000, 4000), ("+Ww", "2000", "4000")),
])
def test_grayscale_matches_dcmj2pnm(name, window, options):
    ds = pydicom.dcmread(FILES / name)
    ours = pixels.render(ds, window=window)
    theirs = _dcmj2pnm(FILES / name, *options)
    assert ours.shape == theirs.shape
    assert int(np.max(np.abs(ours.astype(int) - theirs.astype(int)))) <= 1


def test_monochrome1_matches_dcmj2pnm(tmp_path):
    ds = _mono("MONOCHROME1", [[i * 16 % 4096 for i in range(64)] for _ in range(8)])
    path = tmp_path / "mono1.dcm"
    ds.save_as(path, enforce_file_format=True)
    ours = pixels.render(pydicom.dcmread(path), window=Window(2000, 3000))
    theirs = _dcmj2pnm(path, "+Ww", "2000", "3000")
    assert int(np.max(np.abs(ours.astype(int) - theirs.astype(int)))) <= 1


@pytest.mark.parametrize("name", ["SC_rgb_rle.dcm", "SC_rgb_small_odd.dcm", "SC_rgb_small_odd_big_endian.dcm",
                                  "SC_ybr_full_422_uncompressed.dcm", "examples_palette.dcm",
                                  "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle_16bit.dcm"])
def test_colour_matches_dcmj2pnm(name):
    ds = pydicom.dcmread(FILES / name)
    ours = pixels.render(ds)
    theirs = _dcmj2pnm(FILES / name)
    assert ours.shape == theirs.shape
    # lossy JPEG: decoders may differ by a few levels in YCbCr -> RGB rounding
    tolerance = 3 if "jpeg" in name else 1
    assert int(np.max(np.abs(ours.astype(int) - theirs.astype(int)))) <= tolerance


@pytest.mark.parametrize("photometric, signed, window", [
    ("MONOCHROME2", False, Window(2000, 3000)), ("MONOCHROME1", False, Window(1000, 500, SIGMOID)),
    ("MONOCHROME2", True, Window(40, 400, LINEAR_EXACT)), ("MONOCHROME2", False, None),
])
def test_lookup_table_path_equals_the_per_pixel_path(photometric, signed, window):
    rng = np.random.default_rng(7)
    values = rng.integers(-2000 if signed else 0, 4000, size=(128, 128))
    ds = _mono(photometric, values.clip(0).tolist(), RescaleSlope=2, RescaleIntercept=-1024)
    stored = values.astype(np.int16 if signed else np.uint16)
    if signed:
        ds.PixelRepresentation = 1
    fast = pixels.grayscale(ds, stored, window)              # 16,384 pixels: through the table
    slow = pixels._grayscale(ds, stored, window or pixels.min_max_window(pixels.modality_values(ds, stored)),
                             False, False)
    assert np.array_equal(fast, slow)


def _voi_lut(explanation: str, curve) -> Dataset:
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4096, 0, 12])  # US or SS, and US or OW: said here
    item.LUTExplanation = explanation
    item.add_new("LUTData", "US", [int(round(curve(x))) for x in range(4096)])
    return item


@pytest.mark.parametrize("index", [1, 2])
def test_every_voi_lut_is_a_preset_named_by_its_explanation_and_matches_dcmj2pnm(tmp_path, index):
    """A mammogram's VOI LUT tables (a NORMAL and a HARDER curve) are presets beside its
    window, named by their LUT Explanation, each drawn as DCMTK draws that table."""
    from pydicom.sequence import Sequence
    ds = _mono("MONOCHROME2", [[(i * 64 + r * 7) % 4096 for i in range(64)] for r in range(16)],
               WindowCenter=2048, WindowWidth=4096, WindowCenterWidthExplanation="LINEAR FULL")
    ds.VOILUTSequence = Sequence([
        _voi_lut("NORMAL", lambda x: 4095 * (x / 4095) ** 0.8),
        _voi_lut("HARDER", lambda x: 4095 / (1 + np.exp(-8 * (x - 2048) / 4096)))])
    path = tmp_path / "voi.dcm"
    ds.save_as(path, enforce_file_format=True)
    ds = pydicom.dcmread(path)
    presets = pixels.file_presets(ds)
    assert [w.label() for w in presets] == ["LINEAR FULL", "NORMAL", "HARDER"]
    assert [w.lut for w in presets] == [None, 0, 1]
    ours = pixels.render(ds, window=presets[index])
    theirs = _dcmj2pnm(path, "+Wl", str(index))
    assert int(np.max(np.abs(ours.astype(int) - theirs.astype(int)))) <= 1
    assert not np.array_equal(pixels.render(ds, window=presets[1]), pixels.render(ds, window=presets[2]))
