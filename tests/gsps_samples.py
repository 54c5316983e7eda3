"""Test images and Grayscale Softcopy Presentation States built with pydicom, for the unit
tests (against DCMTK's dcmp2pgm) and the GUI tests. A state from `gsps()` passes dcmpschk.

Import as ``from gsps_samples import ...``: tests/ is on sys.path through tests/conftest.py
(as for ``from conftest import ...`` in tests/peers/peerutil.py), under `.venv/bin/pytest`
as under `python -m pytest`; ``from tests.gsps_samples import ...`` needs the latter.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from app.imaging.presentation_state import GSPS_UID


def image(rows: int = 48, cols: int = 64, *, photometric: str = "MONOCHROME2", study: str | None = None,
          series: str | None = None, window: tuple[float, float] | None = (40, 400)) -> Dataset:
    """A 12-bit CT-like image (rescale slope 1, intercept -1024): stored values rise 50 per
    column and 20 per row (0 .. 4090 at 48 x 64), so rotations and flips show."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study or generate_uid(), series or generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Gsps^Sample", "GSPS001", "19700101", "O"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240102", "101010", "1", "ACC1"
    ds.ReferringPhysicianName = ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, 1
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelSpacing = [0.5, 0.5]
    r, c = np.mgrid[0:rows, 0:cols]
    ds.PixelData = np.clip(c * 50 + r * 20, 0, 4095).astype(np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()  # so that pixel_array works before saving
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return path


def _image_refs(images, frames: dict | None = None) -> Sequence:
    out = []
    for im in images:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = im.SOPClassUID, im.SOPInstanceUID
        if frames and im.SOPInstanceUID in frames:
            ref.ReferencedFrameNumber = frames[im.SOPInstanceUID]
        out.append(ref)
    return Sequence(out)


def _lut_item(first: int, bits: int, data) -> Dataset:
    item = Dataset()
    # both VRs are ambiguous ("US or SS", "US or OW"): say which, pydicom cannot tell on writing
    item.add_new(0x00283002, "SS" if first < 0 else "US", [len(data) % 65536, first, bits])
    item.add_new(0x00283006, "US", [int(v) for v in data])
    return item


def layer(name: str, order: int, *, lab: tuple[int, int, int] | None = None, gray: int | None = None) -> Dataset:
    item = Dataset()
    item.GraphicLayer, item.GraphicLayerOrder = name, order
    if lab is not None:
        item.GraphicLayerRecommendedDisplayCIELabValue = list(lab)
    if gray is not None:
        item.GraphicLayerRecommendedDisplayGrayscaleValue = gray
    return item


def graphic(kind: str, points, *, units: str = "PIXEL", filled: bool = False) -> Dataset:
    """A graphic object; ``points`` (column, row) pairs, or a flat list to write as is."""
    flat = [float(v) for p in points for v in (p if isinstance(p, (tuple, list)) else (p,))]
    g = Dataset()
    g.GraphicAnnotationUnits, g.GraphicDimensions = units, 2
    g.NumberOfGraphicPoints, g.GraphicData, g.GraphicType = max(len(flat) // 2, 1), flat, kind
    if kind in ("POLYLINE", "INTERPOLATED", "CIRCLE", "ELLIPSE"):
        g.GraphicFilled = "Y" if filled else "N"
    return g


def text(value: str, *, box=None, anchor=None, units: str = "PIXEL") -> Dataset:
    t = Dataset()
    t.UnformattedTextValue = value
    if box:
        t.BoundingBoxAnnotationUnits = units
        t.BoundingBoxTopLeftHandCorner, t.BoundingBoxBottomRightHandCorner = list(box[0]), list(box[1])
        t.BoundingBoxTextHorizontalJustification = "LEFT"
    if anchor:
        t.AnchorPointAnnotationUnits, t.AnchorPoint, t.AnchorPointVisibility = units, list(anchor), "Y"
    return t


def annotation(layer_name: str, *, graphics=(), texts=(), images=None) -> Dataset:
    """A Graphic Annotation Sequence item; ``images`` None: every referenced image."""
    item = Dataset()
    if images:
        item.ReferencedImageSequence = _image_refs(images)
    item.GraphicLayer = layer_name
    if graphics:
        item.GraphicObjectSequence = Sequence(list(graphics))
    if texts:
        item.TextObjectSequence = Sequence(list(texts))
    return item


def gsps(images, *, window=None, voi_lut=None, voi_images=None, rescale: bool = True, modality_lut=None,
         shape: str | None = "IDENTITY", plut=None, rotation: int | None = None, flip: bool = False,
         area=None, size_mode: str = "SCALE TO FIT", magnification: float | None = None,
         rectangular=None, circular=None, polygonal=None, shutter_value: int | None = None,
         layers=(), annotations=(), frames: dict | None = None, label: str = "SAMPLE") -> Dataset:
    """A GSPS referencing ``images`` (one series or several). ``window`` (center, width[,
    function]); ``voi_lut`` / ``modality_lut`` (first mapped, bits, data); ``plut`` (bits,
    data) replaces ``shape``; ``rescale``: copy the first image's rescale; ``area`` ((column,
    row) top left, bottom right), default the whole image; shutters as the standard writes
    them: ``rectangular`` (left, right, upper, lower), ``circular`` ((row, column), radius),
    ``polygonal`` [(row, column), ...]."""
    images = list(images) if isinstance(images, (list, tuple)) else [images]
    first = images[0]
    ps = Dataset()
    ps.SpecificCharacterSet = "ISO_IR 100"
    ps.SOPClassUID, ps.SOPInstanceUID = GSPS_UID, generate_uid()
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
               "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        setattr(ps, kw, first.get(kw, ""))
    ps.Modality, ps.SeriesInstanceUID, ps.SeriesNumber, ps.InstanceNumber = "PR", generate_uid(), 99, 1
    ps.Manufacturer = "Lightbox tests"
    ps.ContentLabel, ps.ContentDescription, ps.ContentCreatorName = label, "sample state", "Tester^Tom"
    ps.PresentationCreationDate, ps.PresentationCreationTime = "20240102", "101112"
    by_series: dict[str, list] = {}
    for im in images:
        by_series.setdefault(im.SeriesInstanceUID, []).append(im)
    series_items = []
    for uid, members in by_series.items():
        s = Dataset()
        s.SeriesInstanceUID, s.ReferencedImageSequence = uid, _image_refs(members, frames)
        series_items.append(s)
    ps.ReferencedSeriesSequence = Sequence(series_items)
    if modality_lut:
        ps.ModalityLUTSequence = Sequence([_lut_item(*modality_lut)])
        ps.ModalityLUTSequence[0].ModalityLUTType = "HU"
    elif rescale and "RescaleSlope" in first:
        ps.RescaleSlope, ps.RescaleIntercept = first.RescaleSlope, first.RescaleIntercept
        ps.RescaleType = first.get("RescaleType", "US")
    if window or voi_lut:
        voi = Dataset()
        if voi_lut:
            voi.VOILUTSequence = Sequence([_lut_item(*voi_lut)])
        else:
            voi.WindowCenter, voi.WindowWidth = window[0], window[1]
            if len(window) > 2:
                voi.VOILUTFunction = window[2]
        if voi_images:
            voi.ReferencedImageSequence = _image_refs(voi_images)
        ps.SoftcopyVOILUTSequence = Sequence([voi])
    area_item = Dataset()
    area_item.DisplayedAreaTopLeftHandCorner = list(area[0]) if area else [1, 1]
    area_item.DisplayedAreaBottomRightHandCorner = list(area[1]) if area else [first.Columns, first.Rows]
    area_item.PresentationSizeMode = size_mode
    area_item.PresentationPixelSpacing = list(first.get("PixelSpacing", [1.0, 1.0]))
    if magnification is not None:
        area_item.PresentationPixelMagnificationRatio = magnification
    ps.DisplayedAreaSelectionSequence = Sequence([area_item])
    if rotation is not None or flip:
        ps.ImageRotation, ps.ImageHorizontalFlip = rotation or 0, "Y" if flip else "N"
    if plut:
        ps.PresentationLUTSequence = Sequence([_lut_item(0, plut[0], plut[1])])
    elif shape:
        ps.PresentationLUTShape = shape
    shapes = [name for name, given in (("RECTANGULAR", rectangular), ("CIRCULAR", circular),
                                       ("POLYGONAL", polygonal)) if given]
    if shapes:
        ps.ShutterShape = shapes
        if rectangular:
            (ps.ShutterLeftVerticalEdge, ps.ShutterRightVerticalEdge,
             ps.ShutterUpperHorizontalEdge, ps.ShutterLowerHorizontalEdge) = rectangular
        if circular:
            ps.CenterOfCircularShutter, ps.RadiusOfCircularShutter = list(circular[0]), circular[1]
        if polygonal:
            ps.VerticesOfThePolygonalShutter = [int(v) for p in polygonal for v in p]
        ps.ShutterPresentationValue = 0 if shutter_value is None else shutter_value
    if layers:
        ps.GraphicLayerSequence = Sequence(list(layers))
    if annotations:
        ps.GraphicAnnotationSequence = Sequence(list(annotations))
    return ps
