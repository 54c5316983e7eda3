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


def _macro_values(item, macro: str, keyword: str):
    seq = item.get(macro) if item is not None else None
    return seq[0].get(keyword) if seq else None


def frame_order(ds) -> list[int]:
    """Reading order of the frames of an enhanced object: by position along the slice
    normal (Plane Position / Plane Orientation per frame or shared) when every frame has one
    orientation, ties (several temporal positions of one slice) by Temporal Position Index
    then In-Stack Position; otherwise the order the file stores them in, which is the
    producer's (e.g. an ultrasound loop or a stack of several orientations)."""
    from app.imaging.geometry import SliceInfo, order_slices
    n = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if not is_enhanced(ds) or n < 2 or len(per_frame) < n:
        return list(range(n))
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    slices = []
    for i in range(n):
        item = per_frame[i]
        position = _macro_values(item, "PlanePositionSequence", "ImagePositionPatient") \
            or _macro_values(shared, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _macro_values(item, "PlaneOrientationSequence", "ImageOrientationPatient") \
            or _macro_values(shared, "PlaneOrientationSequence", "ImageOrientationPatient")
        temporal = _macro_values(item, "FrameContentSequence", "TemporalPositionIndex") or 0
        in_stack = _macro_values(item, "FrameContentSequence", "InStackPositionNumber") or 0
        try:
            tie = int(temporal) * 1_000_000 + int(in_stack)
        except (TypeError, ValueError):
            tie = 0
        slices.append(SliceInfo(i, position, orientation, tie))
    ordered, how = order_slices(slices)
    return [s.key for s in ordered] if how == "geometry" else list(range(n))
