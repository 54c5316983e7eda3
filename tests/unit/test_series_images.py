"""A series as the viewer walks through it: order, frames, bounded cache, prefetch, bad images."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.uid import generate_uid

from app.imaging import pixels
from app.imaging.series import ImageError, SeriesImages, archive_series_files
from app.store.archive import Archive
from tests.peers.peerutil import ct_dataset, save

FILES = Path(pydicom.data.__file__).parent / "test_files"


def _series(tmp_path: Path, n: int, size: int = 64) -> list[Path]:
    study, series = generate_uid(), generate_uid()
    paths = []
    for i in range(n):
        ds = ct_dataset(study, series, generate_uid(), n - i, size=size, seed=i)  # numbers count down
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, float(i)], [1, 0, 0, 0, 1, 0]
        paths.append(save(ds, tmp_path / f"{i}.dcm"))
    return paths


def test_archive_order_and_display(tmp_path):
    paths = _series(tmp_path, 5)
    archive = Archive(tmp_path / "home")
    try:
        for p in reversed(paths):
            assert archive.ingest.store_file(p).ok
        uid = pydicom.dcmread(paths[0]).SeriesInstanceUID
        files = archive_series_files(archive, uid)
        assert [pydicom.dcmread(f).ImagePositionPatient[2] for f in files] == [0, 1, 2, 3, 4]
        images = SeriesImages(files)
        assert len(images) == 5
        shown = images.display(2, pixels.Window(40, 400))
        assert np.array_equal(shown, pixels.render(pydicom.dcmread(files[2]), window=pixels.Window(40, 400)))
        images.close()
        # from the index: positions for linked scrolling without reading the headers
        indexed = SeriesImages.from_archive(archive, uid)
        assert indexed.nearest(3.2, [0, 0, 1]) == 3 and indexed.position(4) == 4.0
        assert not indexed.headers
        indexed.close()
    finally:
        archive.close()


def test_multiframe_files_give_one_entry_per_frame():
    images = SeriesImages([FILES / "SC_rgb_rle_2frame.dcm", FILES / "CT_small.dcm"])
    assert len(images) == 3
    assert images.display(0).shape == (100, 100, 3) and images.display(2).shape == (128, 128)
    assert not np.array_equal(images.display(0), images.display(1))  # two different frames
    images.close()


def test_cache_is_bounded_and_prefetch_fills_it(tmp_path):
    paths = _series(tmp_path, 20, size=256)  # 128 kB per image
    images = SeriesImages(paths, cache_mb=1)  # room for 8
    images.prefetch(10, radius=3)
    deadline = time.monotonic() + 10
    while images.cached() < 7 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert images.cached() == 7
    for i in range(20):
        images.stored(i)
    assert images.cached() <= 8
    images.close()


def test_bad_images_say_why_and_the_rest_shows(tmp_path):
    good = _series(tmp_path, 2)
    truncated = tmp_path / "truncated.dcm"
    data = good[0].read_bytes()
    truncated.write_bytes(data[:len(data) - 3000])
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    images = SeriesImages([good[1], truncated, tmp_path / "junk.dcm"])
    assert len(images) == 2  # the unreadable file is left out (and logged)
    assert images.display(0).shape == (64, 64)
    with pytest.raises(ImageError, match="cannot be decoded"):
        images.display(1)
    images.close()


def test_frames_from_the_index_defer_reading_headers(tmp_path):
    paths = _series(tmp_path, 3)
    (tmp_path / "gone.dcm").write_bytes(b"")
    images = SeriesImages(paths + [tmp_path / "gone.dcm"], [1, 1, 1, 1])
    assert len(images) == 4 and not images.headers  # nothing read yet
    assert images.display(1).shape == (64, 64)
    assert list(images.headers) == [paths[1]]
    with pytest.raises(ImageError, match="cannot be read"):
        images.header(3)
    images.close()


def test_truncated_compressed_image_is_shown_with_a_note(tmp_path):
    """A JPEG-lossless frame cut short (DCMTK-compressed, then truncated): the decoders give
    what it holds, and the series says the image is incomplete."""
    import subprocess

    from pydicom.encaps import encapsulate, generate_frames
    src = _series(tmp_path, 1)[0]
    subprocess.run(["dcmcjpeg", "+e1", str(src), str(tmp_path / "j.dcm")], check=True, capture_output=True)
    ds = pydicom.dcmread(tmp_path / "j.dcm")
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) * 2 // 3]])
    ds.save_as(tmp_path / "cut.dcm")
    images = SeriesImages([src, tmp_path / "cut.dcm"])
    assert images.display(1).shape == (64, 64)
    assert "incomplete" in images.note(1) and images.note(0) == ""
    images.close()


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
def test_uncompressed_frames_are_read_in_place_and_equal_pydicoms(tmp_path, syntax):
    """A tomosynthesis volume's frames come one by one from the file (no half-gigabyte read
    for the middle slice), each equal to pydicom's; a truncated file says so for the frames
    it lacks and shows the ones it has."""
    from pydicom.uid import UID

    from tests.mammo_samples import tomo_volume
    ds = tomo_volume("R", "CC", frames=6)
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    path = tmp_path / "volume.dcm"
    ds.save_as(path, enforce_file_format=True)
    full = pydicom.dcmread(path).pixel_array
    images = SeriesImages([path])
    assert [np.array_equal(images.stored(i), full[images.entries[i].frame]) for i in range(6)] == [True] * 6
    assert images._layouts[path] is not None  # read in place, not through pydicom
    images.close()
    data = path.read_bytes()
    frame = ds.Rows * ds.Columns * 2
    path.write_bytes(data[:len(data) - frame - 10])  # the last frame and a bit of the one before lost
    images = SeriesImages([path])
    by_frame = {e.frame: i for i, e in enumerate(images.entries)}
    assert np.array_equal(images.stored(by_frame[0]), full[0])
    with pytest.raises(ImageError, match="incomplete"):
        images.stored(by_frame[5])
    images.close()


def test_scrolling_prefetches_textures_but_a_window_drag_does_not(tmp_path):
    """Asked twice for textures made alike (scrolling), the prefetch makes the neighbours'
    too, so a step only draws; while the window changes at every step (a drag), it does not."""
    paths = _series(tmp_path, 12)
    images = SeriesImages(paths)
    w = pixels.Window(40, 400)
    images.texture(5, w, False, 2)
    images.texture(6, w, False, 2)  # the same way twice: a scroll
    images.prefetch(6, radius=3)
    deadline = time.monotonic() + 10
    keys = {(images.entries[j], w, False, 2) for j in range(3, 10)}
    while not keys <= set(images._textures) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert keys <= set(images._textures)
    from app.imaging import scene
    made = images.texture(8, w, False, 2)  # prefetched: the same as made here
    assert np.array_equal(made[0], scene.reduce(pixels.display(images.header(8), images.stored(8), w), 2)[0])
    for width in (500, 600, 700):  # a drag: no texture prefetch
        images.texture(2, pixels.Window(40, width), False, 2)
        images.prefetch(2, radius=2)
    time.sleep(0.3)
    assert not any(k[1].width in (500, 600, 700) and k[0] != images.entries[2] for k in images._textures)
    images.close()
