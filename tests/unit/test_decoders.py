"""The libjpeg-turbo decoder (app/imaging/decoders.py) against DCMTK: files compressed by
dcmcjpeg in every JPEG process the plugin takes decode to the original pixels (lossless) or
to what DCMTK's dcmdjpeg decodes (lossy, within the rounding of an inverse DCT)."""

from __future__ import annotations

import subprocess

import numpy as np
import pydicom
import pytest

from app.imaging import decoders, pixels
from tests.peers.peerutil import ct_dataset, save

# dcmcjpeg option, lossless?, bits stored of the source
PROCESSES = {"+e1": ("SV1", True, 16), "+el": ("process 14", True, 16), "+eb": ("baseline", False, 8),
             "+ee": ("extended 12-bit", False, 12)}


def _source(tmp_path, bits: int, signed: bool = False):
    ds = ct_dataset("1.2.3", "1.2.3.1", "1.2.3.1.1", 1, size=96)
    rng = np.random.default_rng(7)
    if bits == 8:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        arr = rng.integers(0, 256, (96, 96), dtype=np.uint8)
    else:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
        ds.PixelRepresentation = 1 if signed else 0
        top = 1 << (bits - 1 if signed else bits)
        arr = rng.integers(-top if signed else 0, top, (96, 96)).astype(np.int16 if signed else np.uint16)
    ds.PixelData = arr.tobytes()
    return save(ds, tmp_path / "src.dcm"), arr


def _dcmtk(*args):
    subprocess.run(list(args), check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("option", list(PROCESSES))
def test_jpeg_processes_decode_like_dcmtk(tmp_path, option):
    assert decoders.register(), "imagecodecs (libjpeg-turbo) is a dependency and must be usable"
    name, lossless, bits = PROCESSES[option]
    src, original = _source(tmp_path, bits)
    jpeg = tmp_path / "jpeg.dcm"
    _dcmtk("dcmcjpeg", option, str(src), str(jpeg))
    ds = pydicom.dcmread(jpeg)
    assert decoders.plugin_for(ds) == decoders.PLUGIN
    ours = pixels.frame_array(ds)
    assert ours.shape == original.shape and ours.dtype == original.dtype
    if lossless:
        assert np.array_equal(ours, original), name
    else:
        _dcmtk("dcmdjpeg", str(jpeg), str(tmp_path / "plain.dcm"))
        theirs = pydicom.dcmread(tmp_path / "plain.dcm").pixel_array
        diff = np.abs(ours.astype(np.int32) - theirs.astype(np.int32))
        assert diff.max() <= 1, f"{name}: differs from dcmdjpeg by up to {diff.max()}"


def test_signed_lossless_keeps_negative_values(tmp_path):
    src, original = _source(tmp_path, 12, signed=True)
    jpeg = tmp_path / "jpeg.dcm"
    _dcmtk("dcmcjpeg", "+e1", str(src), str(jpeg))
    assert np.array_equal(pixels.frame_array(pydicom.dcmread(jpeg)), original)


def test_colour_jpeg_is_left_to_pydicom():
    from pydicom.data import get_testdata_file
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    assert decoders.plugin_for(ds) == ""
    assert pixels.frame_array(ds).shape[-1] == 3


def test_a_frame_it_cannot_decode_falls_back(tmp_path, caplog):
    """A truncated stream is refused by the plugin and pydicom's plugins get their turn
    (they decode what is there), and the log says why."""
    src, _ = _source(tmp_path, 16)
    jpeg = tmp_path / "jpeg.dcm"
    _dcmtk("dcmcjpeg", "+e1", str(src), str(jpeg))
    ds = pydicom.dcmread(jpeg)
    from pydicom.encaps import encapsulate, generate_frames
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])
    assert pixels.frame_array(ds).shape == (96, 96)
    assert any("imagecodecs could not decode" in r.getMessage() and "truncated" in r.getMessage()
               for r in caplog.records)
