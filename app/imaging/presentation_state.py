"""Grayscale Softcopy Presentation States (spec Table 8-1: displayed): what a GSPS says about
the images it references, and a referenced frame rendered the way it says (PS3.4 N.2).

A GSPS defines the whole grayscale pipeline: its Modality LUT, VOI LUT and Presentation LUT
replace the image's, and a step it leaves out is an identity, not the image's own values
(PS3.4 N.2.1.2-N.2.1.4; Photometric Interpretation is ignored, so MONOCHROME1 polarity is the
Presentation LUT Shape the creator chose). Window functions, the modality rescale and 8-bit
quantisation are app.imaging.pixels'. Rotation, flip and displayed area are the viewer
camera's; `apply_spatial` does them in numpy for headless renders and for the tests, which
compare with DCMTK's dcmp2pgm. Parsing is tolerant: a malformed optional part is logged and
skipped, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import GrayscaleSoftcopyPresentationStateStorage

from app.imaging import pixels
from app.imaging.pixels import Window

log = logging.getLogger(__name__)

GSPS_UID = str(GrayscaleSoftcopyPresentationStateStorage)

# Graphic types (C.10.5.1.2) -> (points required, exactly): a circle is its centre and a point
# on it, an ellipse the ends of its major then of its minor axis.
GRAPHIC_POINTS = {"POINT": (1, True), "POLYLINE": (2, False), "INTERPOLATED": (2, False),
                  "CIRCLE": (2, True), "ELLIPSE": (4, True)}
UNITS = ("PIXEL", "DISPLAY")  # MATRIX (volumetric states) is not for a GSPS
SIZE_MODES = ("SCALE TO FIT", "TRUE SIZE", "MAGNIFY")
DEFAULT_COLOR = (1.0, 1.0, 0.0)  # yellow: visible over any gray
# CIELab values are encoded as in ICC profiles (C.10.7.1.1), so relative to the D50 white;
# XYZ(D50) -> linear sRGB with Bradford adaptation to sRGB's D65 white (Lindbloom's matrix).
D50_WHITE = (0.96422, 1.0, 0.82521)
XYZ_D50_TO_LINEAR_SRGB = ((3.1338561, -1.6168667, -0.4906146),
                          (-0.9787684, 1.9161415, 0.0334540),
                          (0.0719453, -0.2289914, 1.4052427))


@dataclass(frozen=True, eq=False)
class Lut:
    """One item of a Modality / VOI / Presentation LUT Sequence (C.11.1.1.1, C.11.2.1.1)."""
    first: int          # first input value mapped
    bits: int           # bits per entry: outputs run 0 .. 2**bits - 1
    data: np.ndarray
    explanation: str = ""

    def __call__(self, values) -> np.ndarray:
        """Entries for ``values``; inputs below / above the table get its first / last entry."""
        idx = np.clip(np.rint(np.asarray(values, dtype=np.float64)) - self.first, 0, len(self.data) - 1)
        return self.data[idx.astype(np.intp)]

    out_max = property(lambda self: float(2 ** self.bits - 1))


@dataclass(frozen=True)
class Spatial:
    rotation: int = 0    # clockwise degrees, applied first (C.10.6)
    flip: bool = False   # left-right, "after any Image Rotation has been applied"

    @property
    def viewer_rotation(self) -> int:
        """The rotation for app.imaging.scene (`screen_axes`, `fit_camera`), which mirrors first
        and rotates after, unlike C.10.6: rotating by r then mirroring = mirroring, then -r."""
        return (-self.rotation) % 360 if self.flip else self.rotation


@dataclass(frozen=True)
class DisplayedArea:
    top_left: tuple[int, int]       # (column, row), 1-based, may lie outside the image: the
    bottom_right: tuple[int, int]   # pixels rotation and flip bring to the top left / bottom right
    size_mode: str = "SCALE TO FIT"
    magnification: float | None = None
    pixel_spacing: tuple[float, float] | None = None  # (row, column) mm
    aspect_ratio: float = 1.0       # vertical / horizontal pixel size

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) PIXEL-unit edges the corners span (0: column 1's left edge)."""
        (c1, r1), (c2, r2) = self.top_left, self.bottom_right
        return min(c1, c2) - 1, min(r1, r2) - 1, max(c1, c2), max(r1, r2)


@dataclass(frozen=True, eq=False)
class Shutter:
    mask: np.ndarray  # (rows, columns) bool, True = shown
    gray: int         # display value of the shuttered pixels


@dataclass(frozen=True)
class Annotation:
    kind: str                                # POINT POLYLINE INTERPOLATED CIRCLE ELLIPSE TEXT
    points: tuple[tuple[float, float], ...]  # (column, row) image pixels, 0-based centres;
    filled: bool = False                     # TEXT: its bounding box corners, if it has one
    text: str = ""
    anchor: tuple[float, float] | None = None
    layer: str = ""
    color: tuple[float, float, float] = DEFAULT_COLOR  # sRGB 0..1


# -- reading ---------------------------------------------------------------------------------
def _text(ds, keyword: str) -> str:
    return str(ds.get(keyword, "") or "").strip()


def _refs(item):
    """((SOP Instance UID, frames or None), ...); None: every image the state references."""
    seq = item.get("ReferencedImageSequence")
    return tuple((_text(r, "ReferencedSOPInstanceUID"),
                  tuple(int(f) for f in pixels.floats(r.get("ReferencedFrameNumber"))) or None)
                 for r in seq) if seq else None


def _pairs(values) -> list[tuple[float, float]] | None:
    v = pixels.floats(values)
    return [(v[i], v[i + 1]) for i in range(0, len(v), 2)] if v and len(v) % 2 == 0 else None


def _lut(item, little_endian: bool) -> Lut | None:
    try:
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        n, raw = n or 65536, item.LUTData  # 0 entries means 2**16
        if isinstance(raw, bytes):  # OW: 16-bit words, though an 8-bit table may come packed
            raw = np.frombuffer(raw, "u1" if bits <= 8 and len(raw) == n else "<u2" if little_endian else ">u2")
        data = np.atleast_1d(np.asarray(raw, dtype=np.int64))
        if first >= 1 << 15 and first + len(data) > 1 << 16:
            first -= 1 << 16  # "US or SS" read as US, yet no unsigned table runs past 65535
        if not len(data) or not 1 <= bits <= 16:
            raise ValueError(f"{len(data)} entries of {bits} bits")
        if len(data) != n:
            log.info("GSPS LUT has %d entries, its descriptor says %d: the data used", len(data), n)
        return Lut(first, bits, data, _text(item, "LUTExplanation"))
    except (AttributeError, TypeError, ValueError) as exc:
        log.info("GSPS LUT skipped: %s", exc)
        return None


def lab_to_rgb(lab16) -> tuple[float, float, float]:
    """A DICOM CIELab triplet (0..0xFFFF each, C.10.7.1.1) as sRGB 0..1."""
    L, a, b = (float(v) for v in lab16)
    fy = (L * 100.0 / 65535 + 16) / 116
    f = np.array([fy + (a * 255.0 / 65535 - 128) / 500, fy, fy - (b * 255.0 / 65535 - 128) / 200])
    t = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29))  # CIE's inverse f
    rgb = np.clip(np.array(XYZ_D50_TO_LINEAR_SRGB) @ (t * np.array(D50_WHITE)), 0.0, 1.0)
    rgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * rgb ** (1 / 2.4) - 0.055)  # sRGB curve
    return tuple(float(c) for c in rgb)


def is_presentation_state(ds) -> bool:
    return str(ds.get("SOPClassUID", "")) == GSPS_UID


@dataclass
class PresentationState:
    sop_instance_uid: str = ""
    label: str = ""
    description: str = ""
    creator: str = ""
    date: str = ""
    time: str = ""
    references: list[tuple[str, str, tuple[int, ...] | None]] = field(default_factory=list)
    inverse: bool = False                    # Presentation LUT Shape INVERSE
    presentation_lut: Lut | None = None      # Presentation LUT Sequence
    _modality: Dataset | Lut | None = None   # a rescale (as a dataset) or a LUT
    _spatial: Spatial = Spatial()
    _vois: list = field(default_factory=list)      # (refs, Window | Lut)
    _areas: list = field(default_factory=list)     # (refs, DisplayedArea)
    _shutters: list = field(default_factory=list)  # (shape, parameters)
    _shutter_gray: int = 0
    _layers: dict = field(default_factory=dict)    # name -> (order, colour)
    _objects: list = field(default_factory=list)   # (refs, (layer, kind, units, points, filled, text, anchor))

    def applies_to(self, sop_uid: str, frame: int = 1) -> bool:
        return any(u == sop_uid and (f is None or frame in f) for _, u, f in self.references)

    def _scoped(self, items, sop_uid: str, frame: int) -> list:
        """The items for one frame: those naming it, and those naming none (C.10.4, C.11.8...)."""
        if not self.applies_to(sop_uid, frame):
            return []
        return [v for refs, v in items
                if refs is None or any(u == sop_uid and (f is None or frame in f) for u, f in refs)]

    def modality_lut(self) -> Dataset | Lut | None:
        """The state's Modality LUT: a rescale as a dataset pydicom's `apply_modality_lut`
        reads, or a LUT; None: an identity (PS3.4 N.2.1.2: not the image's)."""
        return self._modality

    def voi(self, sop_uid: str, frame: int = 1) -> Window | Lut | None:
        return next(iter(self._scoped(self._vois, sop_uid, frame)), None)

    def spatial(self) -> Spatial:
        return self._spatial

    def displayed_area(self, sop_uid: str, frame: int = 1) -> DisplayedArea | None:
        return next(iter(self._scoped(self._areas, sop_uid, frame)), None)

    def shutter(self, rows: int, cols: int, sop_uid: str, frame: int = 1) -> Shutter | None:
        """The display shutters (C.7.6.11) together: a pixel is shown if each of them shows it.
        Pixel centres are tested at 1-based (row, column), the shutters' own coordinates."""
        if not self._shutters or not self.applies_to(sop_uid, frame):
            return None
        r, c = np.mgrid[1:rows + 1, 1:cols + 1]
        mask = np.ones((rows, cols), dtype=bool)
        for shape, p in self._shutters:
            if shape == "RECTANGULAR":  # edges inclusive
                mask &= (c >= p[0]) & (c <= p[1]) & (r >= p[2]) & (r <= p[3])
            elif shape == "CIRCULAR":
                (cy, cx), radius = p
                mask &= (c - cx) ** 2 + (r - cy) ** 2 <= radius ** 2
            else:  # POLYGONAL, vertices (row, column): even-odd rule
                inside = np.zeros((rows, cols), dtype=bool)
                for (y1, x1), (y2, x2) in zip(p, p[1:] + p[:1]):
                    if y1 != y2:
                        inside ^= ((y1 > r) != (y2 > r)) & (c < x1 + (r - y1) * (x2 - x1) / (y2 - y1))
                mask &= inside
        return Shutter(mask, self._shutter_gray)

    def annotations(self, sop_uid: str, frame: int = 1, size: tuple[int, int] | None = None) -> list[Annotation]:
        """Graphic and text objects of one frame, bottom layer first (Graphic Layer Order).
        ``size`` (rows, columns) places DISPLAY units when no displayed area applies."""
        area = self.displayed_area(sop_uid, frame)
        box = area.box if area else (0, 0, size[1], size[0]) if size else None
        out = []
        for layer, kind, units, points, filled, text, anchor in self._scoped(self._objects, sop_uid, frame):
            pts = [self._to_image(p, units, box) for p in points]
            at = self._to_image(anchor[1], anchor[0], box) if anchor else None
            if None in pts or (anchor and at is None):
                log.info("GSPS %s in DISPLAY units skipped: no displayed area for %s", kind, sop_uid)
                continue
            order, color = self._layers.get(layer, (float("inf"), DEFAULT_COLOR))
            out.append((order, Annotation(kind, tuple(pts), filled, text, at, layer, color)))
        out.sort(key=lambda t: t[0])  # stable: objects keep their order within a layer
        return [a for _, a in out]

    def _to_image(self, point, units: str, box) -> tuple[float, float] | None:
        """A point as image (column, row), pixel centres counted from 0 as the viewer does.
        PIXEL units put 0.0\\0.0 at the top left corner of the top left pixel (C.10.5.1.2), whose
        centre is then 0.5\\0.5. DISPLAY units are fractions of the displayed area as shown,
        after rotation and flip (PS3.4 N.2.3.4): undo those, then scale into the area."""
        x, y = point
        if units == "DISPLAY":
            if box is None:
                return None
            u = 1.0 - x if self._spatial.flip else x
            a, b = {90: (y, 1.0 - u), 180: (1.0 - u, 1.0 - y), 270: (1.0 - y, u)}.get(self._spatial.rotation, (u, y))
            x, y = box[0] + a * (box[2] - box[0]), box[1] + b * (box[3] - box[1])
        return x - 0.5, y - 0.5


def parse(ds) -> PresentationState:
    if not is_presentation_state(ds):
        raise ValueError("not a Grayscale Softcopy Presentation State")
    little = ds.original_encoding[1] is not False
    ps = PresentationState(*(_text(ds, k) for k in ("SOPInstanceUID", "ContentLabel", "ContentDescription",
                                                     "ContentCreatorName", "PresentationCreationDate",
                                                     "PresentationCreationTime")))
    for series in ds.get("ReferencedSeriesSequence") or ():
        ps.references += [(_text(series, "SeriesInstanceUID"), u, f) for u, f in _refs(series) or ()]
    # Modality LUT (C.11.1): a table wins over a rescale, as in images. Tables are read here:
    # pydicom's apply_modality_lut takes only 8- and 16-bit ones.
    if ds.get("ModalityLUTSequence") and (lut := _lut(ds.ModalityLUTSequence[0], little)):
        ps._modality = lut
    elif len(rescale := pixels.floats([ds.get("RescaleSlope"), ds.get("RescaleIntercept")])) == 2:
        ps._modality = Dataset()
        ps._modality.RescaleSlope, ps._modality.RescaleIntercept = rescale
    # Softcopy VOI LUT (C.11.8): an item's table is preferred to its window (as DCMTK does)
    for item in ds.get("SoftcopyVOILUTSequence") or ():
        lut = _lut(item.VOILUTSequence[0], little) if item.get("VOILUTSequence") else None
        windows = pixels.file_windows(item)
        if lut or windows:
            ps._vois.append((_refs(item), lut or replace(windows[0], name="GSPS")))
        else:
            log.info("GSPS VOI item without a usable window or table skipped")
    # Presentation LUT (C.11.6)
    if ds.get("PresentationLUTSequence"):
        ps.presentation_lut = _lut(ds.PresentationLUTSequence[0], little)
    ps.inverse = _text(ds, "PresentationLUTShape").upper() == "INVERSE"
    # Spatial transformation (C.10.6)
    rotation = int((pixels.floats(ds.get("ImageRotation")) or [0])[0])
    if rotation % 90:
        log.info("GSPS rotation %s is not a multiple of 90: ignored", rotation)
    ps._spatial = Spatial(0 if rotation % 90 else rotation % 360, _text(ds, "ImageHorizontalFlip").upper() == "Y")
    # Displayed area (C.10.4)
    for item in ds.get("DisplayedAreaSelectionSequence") or ():
        tl, br = (pixels.floats(item.get(k)) for k in ("DisplayedAreaTopLeftHandCorner",
                                                         "DisplayedAreaBottomRightHandCorner"))
        if len(tl) != 2 or len(br) != 2:
            log.info("GSPS displayed area without both corners skipped")
            continue
        mode = _text(item, "PresentationSizeMode").upper()
        spacing, ratio, magnification = (pixels.floats(item.get(k)) for k in (
            "PresentationPixelSpacing", "PresentationPixelAspectRatio", "PresentationPixelMagnificationRatio"))
        aspect = spacing[0] / spacing[1] if len(spacing) == 2 and spacing[1] else \
            ratio[0] / ratio[1] if len(ratio) == 2 and ratio[1] else 1.0
        ps._areas.append((_refs(item), DisplayedArea(
            (int(tl[0]), int(tl[1])), (int(br[0]), int(br[1])), mode if mode in SIZE_MODES else "SCALE TO FIT",
            magnification[0] if magnification else None, tuple(spacing) if len(spacing) == 2 else None, aspect)))
    _parse_shutters(ds, ps)
    _parse_graphics(ds, ps)
    return ps


def _parse_shutters(ds, ps: PresentationState) -> None:
    shapes = ds.get("ShutterShape") or []
    for shape in ([shapes] if isinstance(shapes, str) else list(shapes)):
        shape, p = str(shape).strip().upper(), None
        if shape == "RECTANGULAR":
            p = pixels.floats([ds.get(k) for k in ("ShutterLeftVerticalEdge", "ShutterRightVerticalEdge",
                                                    "ShutterUpperHorizontalEdge", "ShutterLowerHorizontalEdge")])
            p = p if len(p) == 4 else None
        elif shape == "CIRCULAR":
            centre, radius = (pixels.floats(ds.get(k)) for k in ("CenterOfCircularShutter", "RadiusOfCircularShutter"))
            p = (tuple(centre), radius[0]) if len(centre) == 2 and len(radius) == 1 else None
        elif shape == "POLYGONAL":
            p = _pairs(ds.get("VerticesOfThePolygonalShutter"))
            p = p if p and len(p) >= 3 else None
        if p is None:
            log.info("GSPS %s shutter skipped (unsupported or incomplete)", shape)
        else:
            ps._shutters.append((shape, p))
    value = pixels.floats(ds.get("ShutterPresentationValue"))  # a P-value, 0..0xFFFF
    ps._shutter_gray = round(min(max(value[0], 0), 65535) * 255 / 65535) if value else 0  # default black


def _parse_graphics(ds, ps: PresentationState) -> None:
    for item in ds.get("GraphicLayerSequence") or ():
        order, lab, gray = (pixels.floats(item.get(k)) for k in (
            "GraphicLayerOrder", "GraphicLayerRecommendedDisplayCIELabValue",
            "GraphicLayerRecommendedDisplayGrayscaleValue"))
        color = lab_to_rgb(lab) if len(lab) == 3 else (gray[0] / 65535,) * 3 if gray else DEFAULT_COLOR
        ps._layers[_text(item, "GraphicLayer")] = (order[0] if order else float("inf"), color)
    for item in ds.get("GraphicAnnotationSequence") or ():
        refs, layer = _refs(item), _text(item, "GraphicLayer")
        if layer not in ps._layers:
            log.info("GSPS graphic layer %r is not in the Graphic Layer Sequence: drawn on top", layer)
        for g in item.get("GraphicObjectSequence") or ():
            kind, units = _text(g, "GraphicType").upper(), _text(g, "GraphicAnnotationUnits").upper()
            points, (need, exact) = _pairs(g.get("GraphicData")), GRAPHIC_POINTS.get(kind, (0, True))
            if not need or units not in UNITS or not points or len(points) < need or (exact and len(points) > need):
                log.info("GSPS graphic object skipped: type %r, units %r, %d values", kind, units,
                         len(pixels.floats(g.get("GraphicData"))))
                continue
            ps._objects.append((refs, (layer, kind, units, points, _text(g, "GraphicFilled").upper() == "Y", "", None)))
        for t in item.get("TextObjectSequence") or ():
            units, anchor_units = (_text(t, k).upper() for k in ("BoundingBoxAnnotationUnits",
                                                                  "AnchorPointAnnotationUnits"))
            box = (_pairs(t.get("BoundingBoxTopLeftHandCorner")) or []) + \
                (_pairs(t.get("BoundingBoxBottomRightHandCorner")) or [])
            box = box if len(box) == 2 and units in UNITS else []
            anchor = _pairs(t.get("AnchorPoint"))
            anchor = (anchor_units, anchor[0]) if anchor and len(anchor) == 1 and anchor_units in UNITS else None
            if box or anchor:
                ps._objects.append((refs, (layer, "TEXT", units, box, False, _text(t, "UnformattedTextValue"), anchor)))
            else:
                log.info("GSPS text object without a usable bounding box or anchor point skipped")


# -- rendering -------------------------------------------------------------------------------
def modality_values(ps: PresentationState, image_ds, stored: np.ndarray, *, image_fallback: bool = False) -> np.ndarray:
    """Stored values through the state's Modality LUT, as float. Without one the step is an
    identity (PS3.4 N.2.1.2); ``image_fallback`` takes the image's own then instead."""
    lut = ps.modality_lut()
    if lut is None:
        return np.asarray(pixels.modality_values(image_ds, stored) if image_fallback else stored, dtype=np.float64)
    return np.asarray(lut(stored) if isinstance(lut, Lut) else pixels.modality_values(lut, stored), dtype=np.float64)


def _modality_range(ps: PresentationState, image_ds) -> tuple[float, float]:
    """What the Modality LUT can output for the stored values Bits Stored and Pixel
    Representation allow. An identity VOI scales it onto the whole display range (the
    implicit scaling of C.11.6.1; DCMTK does the same)."""
    if isinstance(ps._modality, Lut):
        return 0.0, ps._modality.out_max
    bits = int(image_ds.get("BitsStored", 16) or 16)
    signed = int(image_ds.get("PixelRepresentation", 0) or 0) == 1
    v = modality_values(ps, image_ds, np.array([-(1 << bits - 1), (1 << bits - 1) - 1] if signed
                                               else [0, (1 << bits) - 1], dtype=np.int64))
    return float(v.min()), float(v.max())


def _grayscale(ps: PresentationState, voi, span, stored: np.ndarray) -> np.ndarray:
    values = modality_values(ps, None, stored)
    if isinstance(voi, Window):
        y = pixels.apply_window(values, voi)
    elif isinstance(voi, Lut):
        entries = voi(values)
        y = entries * 255.0 / voi.out_max  # the table's output range is the P-value range
    else:
        y = np.clip((values - span[0]) / max(span[1] - span[0], 1e-12), 0.0, 1.0) * 255.0
    plut = ps.presentation_lut
    if plut is not None:  # the VOI output scaled onto the table's entries (C.11.6.1), as whole
        # entries the way DCMTK takes them (a VOI table's bits shifted, a window's value
        # truncated): rounding instead differs by up to 3 levels where the table is steep
        n = len(plut.data)
        index = np.floor(entries * n / 2.0 ** voi.bits if isinstance(voi, Lut) else y / 255.0 * (n - 1) + 1e-9)
        y = plut(plut.first + index) * 255.0 / plut.out_max
    return pixels.to_uint8(255.0 - y if ps.inverse else y)


def display(ps: PresentationState, image_ds, stored: np.ndarray, sop_uid: str, frame: int = 1,
            window: Window | None = None) -> np.ndarray:
    """One frame's stored values as the state shows them, uint8, before rotation, flip and
    displayed area: modality LUT, VOI, presentation LUT, shutters. The image's Photometric
    Interpretation, windows and rescale are not used (PS3.4 N.2.1). Integer images go through
    a table of the stored values that occur, as in pixels.grayscale. ``window``: the reader's
    own window, in place of the state's VOI."""
    if pixels.is_color(image_ds):  # a GSPS has no colour pipeline: the colours as they are
        out = pixels.color(image_ds, stored)
    else:
        voi = window or ps.voi(sop_uid, frame)
        span = None if voi is not None else _modality_range(ps, image_ds)
        out = pixels.through_table(stored, lambda values: _grayscale(ps, voi, span, values))
    shutter = ps.shutter(out.shape[0], out.shape[1], sop_uid, frame)
    if shutter is not None:
        out = out.copy()
        out[~shutter.mask] = shutter.gray
    return out


def apply_spatial(img: np.ndarray, ps: PresentationState, sop_uid: str, frame: int = 1) -> np.ndarray:
    """``img`` cut to the displayed area (SCALE TO FIT without the scaling: one pixel per image
    pixel; where the area lies outside the image, the shutter value, as DCMTK's clipping
    fills it), then rotated clockwise, then flipped (C.10.6)."""
    area = ps.displayed_area(sop_uid, frame)
    if area is not None:
        left, top, right, bottom = area.box
        h, w = img.shape[:2]
        out = np.full((bottom - top, right - left) + img.shape[2:], ps._shutter_gray, dtype=img.dtype)
        y0, y1, x0, x1 = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
        if y1 > y0 and x1 > x0:
            out[y0 - top:y1 - top, x0 - left:x1 - left] = img[y0:y1, x0:x1]
        img = out
    img = np.rot90(img, -(ps.spatial().rotation // 90))
    return np.ascontiguousarray(np.fliplr(img) if ps.spatial().flip else img)
