"""Laterality, view and view modifiers of a mammogram or tomosynthesis object, its label
("RCC", "LMLO", "RCC ID", "LCC M") and how the mirrored hanging shows it.

View: the View Code Sequence (0054,0220) in either code scheme (CID 4014 as data in
resources/spec/mammo_views.tsv), its View Modifier Code Sequence (CID 4015,
mammo_view_modifiers.tsv), View Position only when there is no code. Laterality: Image
Laterality, then Frame Laterality (tomosynthesis keeps it in the shared Frame Anatomy), then
Laterality. Invalid values show as "?" (view) and "U" (laterality), as Table 8-14's notes
say.

Mirrored hanging (PS3.17 Annex A conventions): the right breast on the left half of the
screen with its chest wall at its right edge (rows run posterior, "P"), the left breast on
the right half with the chest wall at its left edge (rows run anterior, "A"), so the chest
walls meet on the centre line; CC-like views with the lateral tissue at the top, the other
views with the head at the top. ``display_transform`` gives the rotation and flip of the
view that achieves it from Patient Orientation (or, for tomosynthesis, Image Orientation);
the pixels are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pydicom.dataset import Dataset

UNKNOWN_VIEW = "?"
UNPAIRED = "U"
_OPPOSITE = {"A": "P", "P": "A", "L": "R", "R": "L", "H": "F", "F": "H"}
_AXIS = {"A": "AP", "P": "AP", "L": "LR", "R": "LR", "H": "HF", "F": "HF"}
_OLD_CODES = {"Y-X1770": "XCCL", "Y-X1771": "XCCM"}


@dataclass(frozen=True)
class View:
    label: str       # CC, MLO ...; "?" when the code is not one of CID 4014
    family: str      # "cc" (lateral tissue up) or "lateral" (head up); "" when unknown
    meaning: str


@dataclass(frozen=True)
class BreastView:
    laterality: str             # R, L, B, U
    view: View
    modifiers: tuple[str, ...]  # CID 4015 labels: ID, M, S ...; "?" for an unknown one

    @property
    def label(self) -> str:
        """'RCC', 'LMLO', 'RCC ID', 'LCC M S'; '?' for an unknown view or modifier."""
        text = f"{self.laterality}{self.view.label}"
        return f"{text} {' '.join(self.modifiers)}" if self.modifiers else text

    @property
    def standard(self) -> bool:
        """A screening view: a known view of one breast, not modified."""
        return self.laterality in ("R", "L") and self.view.label != UNKNOWN_VIEW and not self.modifiers


@cache
def _views() -> dict[str, View]:
    """Code value (SRT or SCT) or View Position term -> view."""
    from app.resources import read_tsv
    out = {}
    for label, srt, sct, meaning, family in read_tsv("spec", "mammo_views.tsv"):
        view = View(label, family, meaning)
        out[srt] = out[sct] = out[label] = view
    for old, label in _OLD_CODES.items():
        out[old] = out[label]
    return out


@cache
def _modifiers() -> dict[str, str]:
    from app.resources import read_tsv
    out = {}
    for label, srt, sct, _meaning in read_tsv("spec", "mammo_view_modifiers.tsv"):
        out[srt] = out[sct] = label
    return out


def view_of(ds: Dataset) -> tuple[View, tuple[str, ...]]:
    """(view, modifier labels) of an image."""
    unknown = View(UNKNOWN_VIEW, "", "unknown view")
    codes = ds.get("ViewCodeSequence")
    if codes:
        item = codes[0]
        view = _views().get(str(item.get("CodeValue", "")).strip(), unknown)
        modifier_items = list(item.get("ViewModifierCodeSequence", []) or []) + \
            list(ds.get("ViewModifierCodeSequence", []) or [])
        modifiers = []
        for m in modifier_items:
            label = _modifiers().get(str(m.get("CodeValue", "")).strip(), UNKNOWN_VIEW)
            if label not in modifiers:
                modifiers.append(label)
        if UNKNOWN_VIEW in modifiers:  # Table 8-14: an invalid modifier makes the view "?"
            return unknown, tuple(m for m in modifiers if m != UNKNOWN_VIEW)
        return view, tuple(modifiers)
    position = str(ds.get("ViewPosition", "") or "").strip().upper()
    return _views().get(position, unknown), ()


def laterality_of(ds: Dataset) -> str:
    """R, L, B or U: the first of Image Laterality, Frame Laterality (shared Frame Anatomy),
    Laterality that has a value; a value other than R/L/B/U counts as unpaired."""
    # a frame's header (app.imaging.frames.frame_header) has Frame Laterality on top
    candidates = [ds.get("ImageLaterality"), ds.get("FrameLaterality")]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and shared[0].get("FrameAnatomySequence"):
        candidates.append(shared[0].FrameAnatomySequence[0].get("FrameLaterality"))
    candidates.append(ds.get("Laterality"))
    for value in candidates:
        text = str(value or "").strip().upper()
        if text:
            return text if text in ("R", "L", "B", "U") else UNPAIRED
    return UNPAIRED


def breast_view(ds: Dataset) -> BreastView:
    view, modifiers = view_of(ds)
    return BreastView(laterality_of(ds), view, modifiers)


# -- mirrored hanging ------------------------------------------------------------------------
def target_orientation(laterality: str, family: str) -> tuple[str, str] | None:
    """(row, column) direction letters the mirrored hanging wants on screen; None when it
    has no rule (unpaired, unknown view)."""
    if laterality not in ("R", "L") or family not in ("cc", "lateral"):
        return None
    row = "P" if laterality == "R" else "A"
    # CC: lateral tissue at the top, so the column runs medially: towards the patient's left
    # for the right breast, towards the right for the left one. Others: head at the top.
    column = ("L" if laterality == "R" else "R") if family == "cc" else "F"
    return row, column


def image_directions(ds: Dataset) -> tuple[str, str] | None:
    """(row, column) direction letters of the stored image: Patient Orientation, else (tomo
    slices) from Image Orientation (Patient), top-level or in the shared Plane Orientation."""
    from app.imaging.mammo_objects import valid_image_orientation, valid_patient_orientation
    po = ds.get("PatientOrientation")
    if valid_patient_orientation(po):
        parts = list(po) if not isinstance(po, str) else po.split("\\")
        return str(parts[0]).strip().upper(), str(parts[1]).strip().upper()
    iop = ds.get("ImageOrientationPatient")
    shared = ds.get("SharedFunctionalGroupsSequence")
    if iop is None and shared and shared[0].get("PlaneOrientationSequence"):
        iop = shared[0].PlaneOrientationSequence[0].get("ImageOrientationPatient")
    if valid_image_orientation(iop):
        from app.imaging.image_text import direction_label
        v = [float(x) for x in iop]
        return direction_label(v[:3]), direction_label(v[3:])
    return None


def _component(direction: str, axis: str) -> str | None:
    for c in direction:
        if _AXIS.get(c) == axis:
            return c
    return None


def opposite_direction(direction: str) -> str:
    return "".join(_OPPOSITE.get(c, c) for c in direction)


def display_transform(ds: Dataset, bv: BreastView | None = None) -> tuple[int, bool] | None:
    """(clockwise rotation in degrees, left-right flip before it) that shows the image as
    the mirrored hanging wants (app.imaging.scene.screen_axes' convention); None when the
    image does not say enough (no valid orientation, unpaired, unknown view): shown as stored."""
    bv = bv or breast_view(ds)
    target = target_orientation(bv.laterality, bv.view.family)
    stored = image_directions(ds)
    if target is None or stored is None:
        return None
    for rotation in (0, 180, 90, 270):
        for flip in (False, True):
            right, down = stored
            if flip:
                right = opposite_direction(right)
            for _ in range(rotation // 90):  # (right, down) -> (-down, right) per quarter turn
                right, down = opposite_direction(down), right
            if _component(right, _AXIS[target[0]]) == target[0] and \
                    _component(down, _AXIS[target[1]]) == target[1]:
                return rotation, flip
    return None


def chest_wall_side(laterality: str) -> str | None:
    """Which edge of its viewport an image is pinned to: the right breast's chest wall is
    at its right edge (the centre line), the left breast's at its left edge."""
    return {"R": "right", "L": "left"}.get(laterality)
