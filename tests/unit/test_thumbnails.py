"""Series thumbnails from real files of several kinds (grey, colour, multi-frame, compressed)."""

from pathlib import Path

import numpy as np
import pydicom.data
import pytest

from app.imaging import thumbnails
from app.store.archive import Archive
from app.store.query import search

FILES = Path(pydicom.data.__file__).parent / "test_files"


@pytest.mark.parametrize("name, colour", [
    ("CT_small.dcm", False), ("MR_small_jpeg_ls_lossless.dcm", False), ("JPEG2000.dcm", False),
    ("SC_rgb_jpeg_dcmtk.dcm", True), ("SC_rgb_rle_2frame.dcm", True),
])
def test_thumbnail_made_and_cached(tmp_path, name, colour):
    archive = Archive(tmp_path / "home")
    try:
        assert archive.ingest.store_file(FILES / name).ok
        [s] = search(archive.engine, "series", {})
        path = thumbnails.thumbnail(archive, s["SeriesInstanceUID"])
        assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(path.read_bytes()[16:20], "big"), int.from_bytes(path.read_bytes()[20:24], "big")
        assert max(width, height) == thumbnails.SIZE
        assert path.read_bytes()[25] == (2 if colour else 0)  # PNG colour type: RGB or grey
        before = path.stat().st_mtime_ns
        assert thumbnails.thumbnail(archive, s["SeriesInstanceUID"]) == path
        assert path.stat().st_mtime_ns == before  # served from the cache
    finally:
        archive.close()


def test_windowing_and_monochrome1():
    from pydicom.dataset import Dataset
    ds = Dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 2, 2, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.array([[0, 1064], [1264, 4000]], dtype=np.int16).tobytes()  # HU -1024, 40, 240, 2976
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    out = thumbnails.to_8bit(ds)
    assert out.tolist() == [[0, 128], [255, 255]]  # PS3.3 C.11.2.1.2.1: 40 -> 127.8
    ds.PhotometricInterpretation = "MONOCHROME1"
    assert thumbnails.to_8bit(ds).tolist() == [[255, 127], [0, 0]]


def test_no_thumbnail_for_a_series_without_pixels(tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        assert thumbnails.thumbnail(archive, "1.2.3.4") is None  # unknown series
    finally:
        archive.close()
