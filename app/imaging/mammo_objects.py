"""Which mammography or breast tomosynthesis object an instance is (spec Annex A, Tables 8-7
to 8-12, as data in resources/spec/mammo_recognition.tsv), and what it lacks.

An object's kind comes from the rows marked "identify" (SOP class, and for tomosynthesis
encoded as CT the manufacturer and model, for a synthesised 2D view its Image Type or
Hologic's C-View rule); the "require" rows, and Table 8-12's common ones, that fail become
problems in words for the user: the viewer still shows the image where it can, with a
visible warning, as the reference does. For Processing images are recognised so they are
never hung for reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from pydicom.dataset import Dataset

MG = "mg"
MG_PROCESSING = "mg-processing"
GENERATED_2D = "generated-2d"
GENERATED_2D_CVIEW = "generated-2d-cview"
DBT = "dbt"
DBT_CT = "dbt-ct"
CAD_SR = "cad-sr"
# what the reading protocols hang; the rest is recognised to be left out (or read for marks)
IMAGES = (MG, GENERATED_2D, GENERATED_2D_CVIEW, DBT, DBT_CT)
TOMO = (DBT, DBT_CT)
SYNTHESISED = (GENERATED_2D, GENERATED_2D_CVIEW)
_COMMON = "common"
_ORIENTATION_LETTERS = {"A": "AP", "P": "AP", "L": "LR", "R": "LR", "H": "HF", "F": "HF"}


@dataclass(frozen=True)
class _Rule:
    table: str
    kind: str
    role: str
    attribute: str
    test: str
    value: str


@dataclass
class Recognised:
    kind: str | None  # None: not a mammography object
    problems: list[str] = field(default_factory=list)

    @property
    def hung(self) -> bool:
        """Shown by the reading protocols (For Processing and CAD SRs are not)."""
        return self.kind in IMAGES


@cache
def _rules() -> tuple[_Rule, ...]:
    from app.resources import read_tsv
    return tuple(_Rule(*(row + [""] * (6 - len(row)))[:6]) for row in read_tsv("spec", "mammo_recognition.tsv"))


def _kinds() -> list[str]:
    order: list[str] = []
    for rule in _rules():
        if rule.kind != _COMMON and rule.kind not in order:
            order.append(rule.kind)
    return order


def recognise(ds: Dataset) -> Recognised:
    for kind in _kinds():
        rules = [r for r in _rules() if r.kind == kind]
        if all(_holds(ds, r) for r in rules if r.role == "identify"):
            required = [r for r in rules if r.role == "require"]
            if kind in IMAGES:
                required += [r for r in _rules() if r.kind == _COMMON]
            return Recognised(kind, [_problem(ds, r) for r in required if not _holds(ds, r)])
    return Recognised(None)


def _value(ds: Dataset, attribute: str):
    keyword, _, index = attribute.partition("[")
    value = ds.get(keyword)
    if index:
        n = int(index.rstrip("]"))
        values = list(value) if value is not None and not isinstance(value, str) else \
            (str(value).split("\\") if value is not None else [])
        return values[n] if n < len(values) else None
    return value


def _holds(ds: Dataset, rule: _Rule) -> bool:
    value = _value(ds, rule.attribute)
    test = rule.test
    if test == "patient-orientation":
        return valid_patient_orientation(value)
    if test == "image-orientation":
        return valid_image_orientation(value)
    if test == "frame-anatomy-shared":
        return _frame_anatomy_shared(ds)
    if test == "high-bit":
        try:
            return int(ds.BitsStored) == int(ds.HighBit) + 1
        except (AttributeError, TypeError, ValueError):
            return False
    if value is None or value == "":
        return False
    text = str(value).strip()
    if test == "is":
        return text.lower() == rule.value.lower()
    if test == "one-of":
        return text.lower() in {v.lower() for v in rule.value.split("|")}
    if test == "contains":
        return rule.value.lower() in text.lower()
    if test in ("int", "ints"):
        try:
            return int(float(text)) in {int(v) for v in rule.value.split("|")}
        except ValueError:
            return False
    raise ValueError(f"unknown test '{test}' in mammo_recognition.tsv")


def _problem(ds: Dataset, rule: _Rule) -> str:
    from pydicom.datadict import dictionary_description, tag_for_keyword
    keyword = rule.attribute.partition("[")[0]
    tag = tag_for_keyword(keyword)
    name = dictionary_description(tag) if tag is not None else keyword
    where = f"Table {rule.table}" if rule.table != "-" else "Annex A"
    value = _value(ds, rule.attribute)
    shown = "missing" if value is None or value == "" else f"'{value}'"
    if rule.test == "patient-orientation":
        wants = "present and valid (e.g. P\\L)"
    elif rule.test == "image-orientation":
        wants = "present and valid direction cosines"
    elif rule.test == "frame-anatomy-shared":
        return f"Frame Anatomy is not in the shared functional groups ({where}): laterality may be unknown"
    elif rule.test == "high-bit":
        wants = "Bits Stored - 1"
        shown = f"{ds.get('HighBit', 'missing')} with Bits Stored {ds.get('BitsStored', 'missing')}"
    else:
        wants = " or ".join(rule.value.split("|"))
    return f"{name} is {shown}, must be {wants} ({where})"


def valid_patient_orientation(value) -> bool:
    """Two directions (row, column), each one to three letters of A P L R H F, no axis twice,
    and not the same axis in both."""
    if value is None:
        return False
    parts = [str(v).strip().upper() for v in (value if not isinstance(value, str) else value.split("\\"))]
    if len(parts) != 2 or not all(parts):
        return False
    axes = []
    for part in parts:
        if any(c not in _ORIENTATION_LETTERS for c in part):
            return False
        used = [_ORIENTATION_LETTERS[c] for c in part]
        if len(set(used)) != len(used):
            return False
        axes.append(used[0])
    return axes[0] != axes[1]


def valid_image_orientation(value) -> bool:
    """Six numbers: two unit direction cosines at right angles."""
    try:
        row, col = [float(x) for x in value[:3]], [float(x) for x in value[3:]]
    except (TypeError, ValueError):
        return False
    if len(row) != 3 or len(col) != 3:
        return False
    norm = lambda a: sum(x * x for x in a)  # noqa: E731
    dot = sum(a * b for a, b in zip(row, col))
    return abs(norm(row) - 1) < 0.01 and abs(norm(col) - 1) < 0.01 and abs(dot) < 0.01


def _frame_anatomy_shared(ds: Dataset) -> bool:
    shared = ds.get("SharedFunctionalGroupsSequence")
    if not shared:
        return False
    anatomy = shared[0].get("FrameAnatomySequence")
    return bool(anatomy) and bool(str(anatomy[0].get("FrameLaterality", "")).strip())


def check_ct_volume(headers: list[Dataset]) -> list[str]:
    """Table 8-8: the CT slices of one series must make one volume (one orientation, one
    position per slice along its normal)."""
    if not headers:
        return []
    orientations = {tuple(round(float(x), 3) for x in h.get("ImageOrientationPatient", []) or []) for h in headers}
    if len(orientations) != 1 or not valid_image_orientation(next(iter(orientations))):
        return ["the slices of this series have more than one orientation: not one volume (Table 8-8)"]
    o = next(iter(orientations))
    normal = (o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3])
    depths = []
    for h in headers:
        position = h.get("ImagePositionPatient")
        if position is None or len(position) != 3:
            return ["a slice has no Image Position (Patient): not one volume (Table 8-8)"]
        depths.append(round(sum(float(p) * n for p, n in zip(position, normal)), 3))
    if len(set(depths)) != len(depths):
        return ["two slices of this series share a position: more than one volume (Table 8-8)"]
    return []
