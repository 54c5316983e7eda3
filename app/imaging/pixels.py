"""The grayscale and colour pixel pipeline (PS3.3 C.11, PS3.4 N.2): stored values ->
modality LUT -> VOI -> presentation LUT / polarity -> 8-bit display values.

Decoding and the table lookups pydicom implements per the standard (modality LUT
sequence, VOI LUT sequence, palette colour, YBR -> RGB) are pydicom's; the VOI window
functions are written out here because their exact formulas decide what a radiologist
sees (and are tested against hand-computed values and DCMTK's dcmj2pnm).
"""

from __future__ import annotations

from dataclasses import dataclass

import logging

import numpy as np

from app.resources import read_tsv

log = logging.getLogger(__name__)

LINEAR, LINEAR_EXACT, SIGMOID = "LINEAR", "LINEAR_EXACT", "SIGMOID"


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = LINEAR
    name: str = ""
    # the item of the file's VOI LUT Sequence this preset stands for (center and width then
    # span its input range, where a drag of the window starts from); None: a window
    lut: int | None = None

    def label(self) -> str:
        return self.name or f"C {self.center:g} / W {self.width:g}"


# -- VOI window functions, PS3.3 C.11.2.1.2 ----------------------------------------------------
def apply_window(values: np.ndarray, window: Window, out_max: float = 255.0) -> np.ndarray:
    """Window ``values`` (modality units) into [0, out_max], as float64."""
    x = np.asarray(values, dtype=np.float64)
    c, w = float(window.center), float(window.width)
    if window.function == SIGMOID:  # C.11.2.1.3.1
        return out_max / (1.0 + np.exp(-4.0 * (x - c) / w))
    if window.function == LINEAR_EXACT:  # C.11.2.1.3.2
        if w <= 0:
            raise ValueError("window width must be above 0 for LINEAR_EXACT")
        return np.clip(((x - c) / w + 0.5) * out_max, 0.0, out_max)
    # LINEAR, C.11.2.1.2.1: width >= 1
    w = max(w, 1.0)
    low, high = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * out_max if w > 1 else np.where(x > c - 0.5, out_max, 0.0)
    return np.where(x <= low, 0.0, np.where(x > high, out_max, y))


def to_uint8(y: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


# -- what a file says ----------------------------------------------------------------------------
def floats(value) -> list[float]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        value = [value]
    out = []
    for v in value:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            pass
    return out


def file_windows(ds) -> list[Window]:
    """The windows the file offers (several presets allowed), with their explanations."""
    centers, widths = floats(ds.get("WindowCenter")), floats(ds.get("WindowWidth"))
    names = ds.get("WindowCenterWidthExplanation") or []
    names = [names] if isinstance(names, str) else list(names)
    function = str(ds.get("VOILUTFunction", LINEAR) or LINEAR).strip().upper()
    if function not in (LINEAR, LINEAR_EXACT, SIGMOID):
        function = LINEAR
    return [Window(c, w, function, str(names[i]) if i < len(names) else "")
            for i, (c, w) in enumerate(zip(centers, widths)) if w > 0]


def voi_luts(ds) -> list[Window]:
    """The file's VOI LUT tables as presets, named by their LUT Explanation."""
    out = []
    for i, item in enumerate(ds.get("VOILUTSequence") or ()):
        descriptor = item.get("LUTDescriptor")
        if not descriptor or len(descriptor) < 3 or "LUTData" not in item:
            continue
        entries, first = int(descriptor[0]) or 65536, int(descriptor[1])
        name = str(item.get("LUTExplanation", "") or "").strip() or f"VOI LUT {i + 1}"
        out.append(Window(first + entries / 2, float(entries), LINEAR, name, lut=i))
    return out


def file_presets(ds) -> list[Window]:
    """Every VOI the file offers: its windows, then its VOI LUT tables (a window first, as
    DCMTK does, when a file has both)."""
    return file_windows(ds) + voi_luts(ds)


def modality_presets(modality: str) -> list[Window]:
    """Presets of resources/window_presets.tsv for a modality (CT: brain, lung, ...)."""
    return [Window(float(c), float(w), LINEAR, name)
            for mod, name, c, w in read_tsv("window_presets.tsv") if mod == modality]


def min_max_window(values: np.ndarray) -> Window:
    lo, hi = float(np.min(values)), float(np.max(values))
    return Window((lo + hi) / 2, max(hi - lo, 1.0), LINEAR, "min/max")


def default_window(ds, stored: np.ndarray) -> Window:
    """What a grayscale image is first shown with: the file's first window or VOI LUT, else
    the range of its values (the modality LUT of the extreme stored values: no full-image
    pass)."""
    declared = file_presets(ds)
    if declared:
        return declared[0]
    if stored.dtype.kind in "iu":
        extremes = np.array([stored.min(), stored.max()], dtype=stored.dtype)
        return min_max_window(modality_values(ds, extremes))
    return min_max_window(modality_values(ds, stored))


# -- the pipeline ----------------------------------------------------------------------------
def frame_array(ds, frame: int = 0) -> np.ndarray:
    """Stored values of one frame (colour: RGB, as pydicom converts YBR)."""
    from pydicom.pixels import pixel_array

    from app.imaging import decoders
    index = frame if int(ds.get("NumberOfFrames", 1) or 1) > 1 else None
    plugin = decoders.plugin_for(ds)
    if plugin:
        try:
            direct = decoders.decode_direct(ds, frame)
            if direct is not None:
                return direct
        except Exception as exc:  # noqa: BLE001 - pydicom's plugins get their turn
            log.warning("%s could not decode frame %d (%s); decoding with pydicom's plugins", plugin, frame, exc)
            plugin = ""
    if plugin:
        try:
            return pixel_array(ds, index=index, decoding_plugin=plugin)
        except Exception as exc:  # noqa: BLE001 - pydicom's own plugins get their turn
            log.warning("%s could not decode frame %d (%s); decoding with pydicom's plugins", plugin, frame, exc)
    return pixel_array(ds, index=index)


def is_color(ds) -> bool:
    return int(ds.get("SamplesPerPixel", 1) or 1) > 1 or str(ds.get("PhotometricInterpretation", "")).strip() \
        == "PALETTE COLOR"


def modality_values(ds, stored: np.ndarray) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut
    return apply_modality_lut(stored, ds)


def grayscale(ds, stored: np.ndarray, window: Window | None = None, *, voi_lut: bool = False,
              invert: bool = False) -> np.ndarray:
    """Display values (uint8) of a grayscale frame. ``window`` None: the file's first
    window, else its VOI LUT, else min/max. ``voi_lut``: use the file's VOI LUT Sequence.

    Integer images go through a lookup table: the whole chain is computed once for every
    stored value that occurs (at most 65,536 of them) and applied with one indexing
    operation — the same values as computing it per pixel, at a fraction of the cost for
    a 13-megapixel mammogram (as DCMTK does)."""
    if window is None and not (voi_lut and "VOILUTSequence" in ds):
        window = default_window(ds, stored)  # from the whole image, not from the table's domain
    return through_table(stored, lambda values: _grayscale(ds, values, window, voi_lut, invert))


def through_table(stored: np.ndarray, chain) -> np.ndarray:
    """``chain(stored)``, computed once per stored value that occurs when that is cheaper:
    integer images of more than 4096 pixels spanning fewer than 65,536 values."""
    if stored.dtype.kind in "iu" and stored.size > 4096:
        lo, hi = int(stored.min()), int(stored.max())
        if hi - lo < 1 << 16:
            table = chain(np.arange(lo, hi + 1, dtype=np.int64).astype(stored.dtype))
            return table[(stored.astype(np.int64) - lo) if lo else stored]
    return chain(stored)


def _grayscale(ds, stored: np.ndarray, window: Window | None, voi_lut: bool, invert: bool) -> np.ndarray:
    values = modality_values(ds, stored)
    table = window.lut if window is not None and window.lut is not None else 0 if voi_lut else None
    if table is not None and len(ds.get("VOILUTSequence") or ()) > table:
        from pydicom.pixels import apply_voi
        out = apply_voi(values, ds, index=table).astype(np.float64)
        bits = int(ds.VOILUTSequence[table].LUTDescriptor[2])
        y = out * 255.0 / max(2 ** bits - 1, 1)
    else:
        window = window or default_window(ds, stored)
        y = apply_window(values, window)
    # Polarity: a Presentation LUT Shape, when the image has one, says it (INVERSE is what
    # MONOCHROME1 mammograms and radiographs carry: "shall be used if MONOCHROME1", the same
    # inversion, not a second one); without it MONOCHROME1 is shown inverted. As DCMTK does.
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    if shape in ("INVERSE", "IDENTITY"):
        inverse = shape == "INVERSE"
    else:
        inverse = str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"
    if inverse != invert:
        y = 255.0 - y
    return to_uint8(y)


def color(ds, stored: np.ndarray) -> np.ndarray:
    """Display values (uint8 RGB) of a colour frame."""
    if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut
        rgb = apply_color_lut(stored, ds)
        bits = 16 if rgb.dtype.itemsize > 1 else 8
        return (rgb >> (bits - 8)).astype(np.uint8) if bits > 8 else rgb.astype(np.uint8)
    if stored.dtype.itemsize > 1:  # 16-bit RGB
        bits = int(ds.get("BitsStored", 16) or 16)
        return (stored >> max(bits - 8, 0)).astype(np.uint8)
    return stored.astype(np.uint8)


def display(ds, stored: np.ndarray, window: Window | None = None, **kw) -> np.ndarray:
    """Stored values of one frame as the viewer shows them: uint8 (H, W) or (H, W, 3)."""
    return color(ds, stored) if is_color(ds) else grayscale(ds, stored, window, **kw)


def render(ds, frame: int = 0, window: Window | None = None, **kw) -> np.ndarray:
    """One frame of ``ds`` as the viewer shows it."""
    return display(ds, frame_array(ds, frame), window, **kw)
