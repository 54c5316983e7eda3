"""What the corners of an image say (resources/image_text.tsv) and its orientation markers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from app.dicom.formatting import date, person_name, time
from app.resources import read_tsv

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
# {Keyword}, {Keyword|suffix} or {Keyword|prefix|suffix}: prefix and suffix only with a value
_FIELD = re.compile(r"\{(\w+)(?:\|([^|}]*))?(?:\|([^|}]*))?\}")
_VIEW_FIELDS = {"image", "images", "window", "zoom", "position", "window_name"}


@dataclass(frozen=True)
class ViewState:
    image: int = 1
    images: int = 1
    window: str = ""
    zoom: str = ""
    position: str = ""
    window_name: str = ""  # the window's or VOI LUT's explanation (Table 8-14)


def _computed(name: str, ds, view: ViewState) -> str:
    """{mg_...}: values computed from several attributes (app.imaging.mammo_text)."""
    from app.imaging.mammo_text import FIELDS
    return FIELDS[name](ds, view) if name in FIELDS else ""


@lru_cache(maxsize=1)
def _templates() -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for modality, corner, line in read_tsv("image_text.tsv"):
        if corner not in CORNERS:
            raise ValueError(f"resources/image_text.tsv: unknown corner {corner!r}")
        out.setdefault((modality, corner), []).append(line)
    return out


def _vr(keyword: str) -> str:
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    tag = tag_for_keyword(keyword)
    return dictionary_VR(tag) if tag is not None else ""


def _format(keyword: str, value) -> str:
    """A value for reading, by its VR (Repetition Time is DS milliseconds, not a TM)."""
    if value is None or value == "":
        return ""
    vr = _vr(keyword)
    if vr == "PN":
        return person_name(str(value))
    if vr == "DA":
        return date(str(value))
    if vr == "TM":
        return time(str(value))
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_format(keyword, v) for v in value)
    if vr in ("DS", "FD", "FL"):  # "0.8000" and binary floats read as 0.8
        try:
            return f"{float(value):g}"
        except (TypeError, ValueError):
            pass
    return str(value).strip()


def corner_text(ds, view: ViewState) -> dict[str, str]:
    """corner -> text (lines joined by newlines)."""
    modality = str(ds.get("Modality", "") or "")
    templates = _templates()
    out = {}
    for corner in CORNERS:
        lines = templates.get((modality, corner)) or templates.get(("*", corner), [])
        rendered = []
        for template in lines:
            fields = [m.group(1) for m in _FIELD.finditer(template)]
            values = {f: (str(getattr(view, f)) if f in _VIEW_FIELDS else
                          _computed(f, ds, view) if f.startswith("mg_") else _format(f, ds.get(f))) for f in fields}
            if fields and not any(values.values()):
                continue

            def fill(m) -> str:
                value = values[m.group(1)]
                if not value:
                    return ""
                prefix, suffix = (m.group(2) or "", m.group(3) or "") if m.group(3) is not None \
                    else ("", m.group(2) or "")
                return f"{prefix}{value}{suffix}"
            rendered.append(re.sub(r"\s{3,}", "  ", _FIELD.sub(fill, template)).strip())
        out[corner] = "\n".join(line for line in rendered if line)
    return out


# -- orientation markers ---------------------------------------------------------------------
# Patient axes (PS3.3 C.7.6.2.1.1): +x to the patient's left, +y posterior, +z head.
_AXES = (("L", "R"), ("P", "A"), ("H", "F"))


def wrap_lines(text: str, width: int) -> str:
    """``text`` with each line longer than ``width`` characters broken at spaces: a small
    viewport's corner text stays inside it instead of running under its neighbour's."""
    import textwrap
    out = []
    for line in text.splitlines():
        out += textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""]
    return "\n".join(out)


def direction_label(v, threshold: float = 0.25) -> str:
    """Letters of a patient-space direction, dominant first: (1, 0, 0) -> 'L'; an oblique
    direction gets two or three letters (e.g. 'LP')."""
    v = np.asarray(v, dtype=float)
    order = np.argsort(-np.abs(v))
    return "".join(_AXES[i][0 if v[i] > 0 else 1] for i in order if abs(v[i]) > threshold)


def orientation_markers(iop, right=(1.0, 0.0), up=(0.0, 1.0)) -> dict[str, str] | None:
    """{'left', 'right', 'top', 'bottom'} edge labels from Image Orientation (Patient), or
    None if it is missing or not six numbers. ``right`` and ``up``: the image directions
    (columns, rows upwards) shown at the screen's right and top (rotated or flipped views;
    app.imaging.scene.screen_axes)."""
    try:
        values = [float(x) for x in iop]
    except (TypeError, ValueError):
        return None
    if len(values) != 6:
        return None
    row, col = np.array(values[:3]), np.array(values[3:])  # along columns, down the rows
    screen_right = right[0] * row - right[1] * col
    screen_up = up[0] * row - up[1] * col
    return {"right": direction_label(screen_right), "left": direction_label(-screen_right),
            "top": direction_label(screen_up), "bottom": direction_label(-screen_up)}
