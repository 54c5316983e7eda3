"""Enhanced multi-frame objects (PS3.3 C.7.6.16): each frame's attributes live in the
Shared and Per-frame Functional Groups. ``frame_header`` flattens them onto a copy of the
top-level header, so the pixel pipeline, measurements and image text read a frame of an
Enhanced CT/MR/XA image exactly as they read a classic single-frame image (per-frame
rescale, window, pixel spacing, position and orientation)."""

from __future__ import annotations

import copy

from pydicom.dataset import Dataset


def is_enhanced(ds) -> bool:
    return "SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds


def _apply(target: Dataset, group_item: Dataset) -> None:
    # each element of a functional group item is a macro sequence with one item whose
    # attributes are the frame's (Pixel Measures, Plane Position, Frame VOI LUT, ...)
    for macro in group_item:
        if macro.VR != "SQ" or not macro.value:
            continue
        for element in macro.value[0]:
            if element.VR == "SQ" and element.keyword.endswith("FunctionalGroupsSequence"):
                continue
            target[element.tag] = copy.deepcopy(element)


def frame_header(ds, frame: int) -> Dataset:
    """The header of frame ``frame`` (0-based) with its functional group attributes on top.
    Classic images come back unchanged."""
    if not is_enhanced(ds):
        return ds
    flat = Dataset()
    for element in ds:
        if element.keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "PixelData"):
            continue
        flat[element.tag] = element
    flat.file_meta = getattr(ds, "file_meta", Dataset())
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        _apply(flat, shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        _apply(flat, per_frame[frame])
    flat.NumberOfFrames = ds.get("NumberOfFrames", 1)
    return flat
