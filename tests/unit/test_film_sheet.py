"""A film sheet rendered into its page (app.film.sheet): the header strip identifies patient
and study, each box holds its image as the viewer showed it (rotation after the mirror,
zoom keeping the middle), true size is mm for mm, and the page keeps the film's shape."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from app.film.compose import FilmError, page_shape
from app.film.sheet import Cell, FilmFormat, Sheet, boxes_on_page, header_text, oriented, render, zoomed


def _image(path, pixels: np.ndarray, **extra) -> str:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.PatientName, ds.PatientID, ds.StudyDate, ds.StudyDescription = "Doe^Jane", "P42", "20261127", "CHEST"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def test_orientation_as_the_viewer_mirror_then_rotate_and_zoom_keeps_the_middle():
    a = np.arange(6).reshape(2, 3)
    assert oriented(a, 1).tolist() == [[3, 0], [4, 1], [5, 2]]  # a quarter turn clockwise
    assert oriented(a, 0, True).tolist() == [[2, 1, 0], [5, 4, 3]]
    assert oriented(a, 1, True).tolist() == np.rot90(a[:, ::-1], -1).tolist()
    b = np.arange(64).reshape(8, 8)
    assert zoomed(b, 2.0).tolist() == b[2:6, 2:6].tolist() and zoomed(b, 1.0) is b


def test_a_film_has_its_header_and_images_and_keeps_portrait(tmp_path):
    ramp = np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (64, 1))
    f = _image(tmp_path / "a.dcm", ramp)
    fmt = FilmFormat("14INX17IN", "PORTRAIT", 40, 12)
    page = render(Sheet("2x2", [Cell(f), Cell(f, rotate=1), None, Cell(f, flip=True)]), fmt)
    assert page.shape == page_shape("14INX17IN", "PORTRAIT", 40) == (680, 560) and page.dtype == np.uint16
    strip = boxes_on_page(Sheet("2x2"), fmt)[0].top
    assert strip == 12 and page[:strip].max() > 3000  # the header's letters, white (antialiased at 8 px)
    assert "Doe, Jane" in header_text(pydicom.dcmread(f)) and "2026-11-27 CHEST" in header_text(pydicom.dcmread(f))
    b = boxes_on_page(Sheet("2x2"), fmt)
    box0 = page[b[0].top:b[0].top + b[0].height, b[0].left:b[0].left + b[0].width]
    box1 = page[b[1].top:b[1].top + b[1].height, b[1].left:b[1].left + b[1].width]
    box3 = page[b[3].top:b[3].top + b[3].height, b[3].left:b[3].left + b[3].width]
    mid = box0.shape[0] // 2
    row0 = box0[mid][box0[mid] > 0]
    assert (np.diff(row0.astype(int)) >= 0).all()  # the ramp rises left to right
    row3 = box3[mid][box3[mid] > 0]
    assert (np.diff(row3.astype(int)) <= 0).all()  # mirrored: falls
    col1 = box1[:, box1.shape[1] // 2]
    col1 = col1[col1 > 0]
    assert (np.diff(col1.astype(int)) >= 0).all()  # turned clockwise: the ramp rises downwards
    empty = b[2]
    assert page[empty.top:empty.top + empty.height, empty.left:empty.left + empty.width].max() == 0
    landscape = render(Sheet("1x1", [Cell(f)]), FilmFormat("14INX17IN", "LANDSCAPE", 40, 8))
    assert landscape.shape == (560, 680) and landscape.dtype == np.uint8


def test_true_size_prints_mm_for_mm(tmp_path):
    white = np.full((100, 60), 4095, dtype=np.uint16)  # 100 x 60 pixels of 0.2 mm: 20 x 12 mm
    f = _image(tmp_path / "mg.dcm", white, ImagerPixelSpacing=[0.2, 0.2], PixelSpacing=[0.18, 0.18])
    fmt = FilmFormat("8INX10IN", "PORTRAIT", 254, 12, header=False)  # 10 page pixels per mm
    page = render(Sheet("1x1", [Cell(f, true_size=True)]), fmt)
    rows, cols = np.nonzero(page)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (200, 120)  # Imager Pixel Spacing
    fitted = render(Sheet("1x1", [Cell(f)]), fmt)
    assert np.count_nonzero(fitted) > np.count_nonzero(page)  # fitted to the box: larger
    no_spacing = _image(tmp_path / "sc.dcm", white)
    with pytest.raises(FilmError, match="no pixel spacing"):
        render(Sheet("1x1", [Cell(no_spacing, true_size=True)]), fmt)
    with pytest.raises(FilmError, match="do not fit"):
        render(Sheet("1x1", [Cell(f), Cell(f)]), fmt)
    with pytest.raises(FilmError, match="cannot read"):
        render(Sheet("1x1", [Cell(str(tmp_path / "gone.dcm"))]), fmt)
