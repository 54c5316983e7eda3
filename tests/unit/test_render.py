"""`lightbox render`: exactly the pipeline's pixels at native size, fitted at --size,
images of a series in reading order, plain refusals."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.uid import generate_uid

from app.imaging import pixels
from tests.conftest import ROOT
from tests.peers.peerutil import ct_dataset, save

FILES = Path(pydicom.data.__file__).parent / "test_files"


def read_png(path: Path) -> np.ndarray:
    """Our PNGs (8-bit, filter 0 on every row)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h, channels = 8, b"", 0, 0, 1
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, _, colour = struct.unpack(">IIBB", body[:10])
            channels = 3 if colour == 2 else 1
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * channels)
    assert not raw[:, 0].any()
    return raw[:, 1:].reshape(h, w, channels)


def lightbox(home, *args):
    return subprocess.run([sys.executable, "-m", "app", "--home", str(home), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("name, window", [("CT_small.dcm", "40/400"), ("MR_small.dcm", None),
                                          ("SC_rgb_rle.dcm", None), ("examples_palette.dcm", None)])
def test_native_size_is_the_pipeline_pixel_for_pixel(tmp_path, name, window):
    out = tmp_path / "out.png"
    args = ["render", str(FILES / name), "--out", str(out)] + (["--window", window] if window else [])
    proc = lightbox(tmp_path / "home", *args)
    assert proc.returncode == 0, proc.stderr
    got = read_png(out)
    ds = pydicom.dcmread(FILES / name)
    want = pixels.render(ds, window=pixels.Window(*map(float, window.split("/"))) if window else None)
    want = np.repeat(want[..., None], 3, axis=2) if want.ndim == 2 else want
    assert got.shape == want.shape and np.array_equal(got, want)


def test_size_fits_the_image_on_black(tmp_path):
    out = tmp_path / "fit.png"
    proc = lightbox(tmp_path / "home", "render", str(FILES / "CT_small.dcm"), "--out", str(out), "--size", "400x200")
    assert proc.returncode == 0, proc.stderr
    img = read_png(out)
    assert img.shape == (200, 400, 3)
    assert not img[:, :90].any() and not img[:, -90:].any()  # 128x128 scaled to 200x200, centred
    assert img[:, 110:290].any()


def test_series_images_in_reading_order(tmp_path):
    home = tmp_path / "home"
    study, series = generate_uid(), generate_uid()
    (tmp_path / "in").mkdir()
    for n, z in ((1, 30.0), (2, 10.0), (3, 20.0)):  # numbers disagree with positions
        ds = ct_dataset(study, series, generate_uid(), n, size=8, seed=n)
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, z], [1, 0, 0, 0, 1, 0]
        save(ds, tmp_path / "in" / f"{n}.dcm")
    assert lightbox(home, "import", str(tmp_path / "in")).returncode == 0
    firsts = []
    for frame in (1, 2, 3):
        out = tmp_path / f"s{frame}.png"
        proc = lightbox(home, "render", "--series", series, "--frame", str(frame), "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        firsts.append(read_png(out))
    expected = [pixels.render(pydicom.dcmread(tmp_path / "in" / f"{n}.dcm")) for n in (2, 3, 1)]  # z 10, 20, 30
    assert all(np.array_equal(got[..., 0], want) for got, want in zip(firsts, expected))


@pytest.mark.parametrize("args, message", [
    (("--window", "40"), "CENTER/WIDTH"),
    (("--window", "40/0"), "width above 0"),
    (("--size", "big"), "WIDTHxHEIGHT"),
    (("--frame", "2"), "out of range: the image has 1 frame"),
])
def test_refusals_say_why(tmp_path, args, message):
    proc = lightbox(tmp_path / "home", "render", str(FILES / "CT_small.dcm"), "--out", str(tmp_path / "x.png"), *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_unknown_series_and_non_image(tmp_path):
    proc = lightbox(tmp_path / "home", "render", "--series", "1.2.3", "--out", str(tmp_path / "x.png"))
    assert proc.returncode == 2 and "no series 1.2.3" in proc.stderr
    report = FILES / "test-SR.dcm"
    proc = lightbox(tmp_path / "home", "render", str(report), "--out", str(tmp_path / "x.png"))
    assert proc.returncode == 2 and "no image" in proc.stderr


def test_annotate_draws_the_image_text_in_the_corners(tmp_path):
    plain, text = tmp_path / "plain.png", tmp_path / "text.png"
    args = ["render", str(FILES / "CT_small.dcm"), "--size", "512x512", "--window", "40/400"]
    assert lightbox(tmp_path / "home", *args, "--out", str(plain)).returncode == 0
    proc = lightbox(tmp_path / "home", *args, "--annotate", "--out", str(text))
    assert proc.returncode == 0, proc.stderr
    a, b = read_png(plain).astype(int), read_png(text).astype(int)
    changed = np.abs(a - b).sum(axis=2) > 0
    assert changed[:80, :200].any() and changed[-80:, :200].any()  # patient (top left), series (bottom left)
    assert changed[-80:, -200:].any()                               # window and zoom (bottom right)
    # the yellow of the text, not a change of the image itself
    assert (b[changed][:, 0] > b[changed][:, 2]).mean() > 0.5
