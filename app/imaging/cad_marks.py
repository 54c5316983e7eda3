"""CAD marks from Mammography CAD SRs (spec Table 8-13; DICOM TID 4000 -> 4001 -> 4003 ->
4006): which single image findings are drawn, where, and what the CAD said overall.

The content tree is walked for Single Image Finding items (111059, DCM). Those Table 8-13
lists (resources/spec/cad_findings.tsv, either code scheme) are kept when their Rendering
Intent (111056) allows it: "Presentation Required" always, "Presentation Optional" as an
optional mark the reader may show, "Not for Presentation" never (breast composition and the
decision-support findings regardless of intent). An individual calcification inside a
calcification cluster is not drawn on its own. Outlines (111041) and centres (111010) are
SCOORDs in the referenced image's pixel space; a finding that must have an outline and has
none is left out. The CAD Processing and Findings Summary (111017) tells "no findings"
from "CAD failed". Marks on a For Processing image move to the For Presentation image made
from it (its Source Image Sequence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from pydicom.dataset import Dataset

SINGLE_IMAGE_FINDING = "111059"
RENDERING_INTENT = "111056"
OUTLINE, CENTER = "111041", "111010"
ALGORITHM_NAME = "111001"
OPERATING_POINT = "111071"
SUMMARY = "111017"
REQUIRED, OPTIONAL = "111150", "111151"  # rendering intents; "Not for Presentation" is never drawn
# CAD Processing and Findings Summary (CID 6047)
_SUMMARY_WORDS = {"111241": "no findings", "111242": "findings", "111243": "CAD partly failed; findings",
                  "111244": "CAD partly failed; no findings", "111245": "CAD failed"}


@dataclass(frozen=True)
class _Kind:
    name: str
    meaning: str
    any_intent: bool
    outline_required: bool
    skip_in_cluster: bool


@dataclass
class Mark:
    kind: str                  # calcification-cluster, calcification, density, composition, ...
    meaning: str
    image: str                 # SOP Instance UID of the image it is drawn on
    graphic: str               # POINT, POLYLINE, CIRCLE, ELLIPSE, MULTIPOINT ('' : no outline)
    points: list[tuple[float, float]] = field(default_factory=list)  # (column, row) pixels
    optional: bool = False     # "Presentation Optional": shown when the reader asks for it
    operating_point: float | None = None
    algorithm: str = ""
    value: str = ""            # e.g. the breast composition category


@dataclass
class CadReport:
    manufacturer: str
    software: str
    supported: bool            # a manufacturer / version Table 8-13 lists
    summary: str               # "no findings", "findings", "CAD failed", ... ('' : not said)
    content_date: str
    content_time: str
    marks: list[Mark]

    @property
    def failed(self) -> bool:
        return "failed" in self.summary


@cache
def _kinds() -> dict[tuple[str, str], _Kind]:
    from app.resources import read_tsv
    out = {}
    for value, schemes, meaning, kind, intent, outline, cluster in read_tsv("spec", "cad_findings.tsv"):
        for scheme in schemes.split("|"):
            out[(value, scheme)] = _Kind(kind, meaning, intent == "any", outline == "required", cluster == "skip")
    return out


@cache
def _software() -> set[tuple[str, str]]:
    from app.resources import read_tsv
    return {(m.lower(), v.lower()) for m, v in read_tsv("spec", "cad_software.tsv")}


def _concept(item: Dataset) -> str:
    seq = item.get("ConceptNameCodeSequence")
    return str(seq[0].get("CodeValue", "")) if seq else ""


def _code(item: Dataset) -> tuple[str, str, str]:
    seq = item.get("ConceptCodeSequence")
    if not seq:
        return "", "", ""
    c = seq[0]
    return str(c.get("CodeValue", "")), str(c.get("CodingSchemeDesignator", "")), str(c.get("CodeMeaning", ""))


def _children(item: Dataset) -> list[Dataset]:
    return list(item.get("ContentSequence", []) or [])


def read_report(sr: Dataset) -> CadReport:
    manufacturer = str(sr.get("Manufacturer", "") or "").strip()
    versions = sr.get("SoftwareVersions") or ""
    versions = [str(v) for v in versions] if not isinstance(versions, str) else [versions]
    supported = any((manufacturer.lower(), v.strip().lower()) in _software() for v in versions)
    summary = ""
    marks: list[Mark] = []

    def walk(item: Dataset, in_cluster: bool, algorithm: str) -> None:
        nonlocal summary
        concept = _concept(item)
        if concept == SUMMARY and item.get("ValueType") == "CODE":
            code = _code(item)
            summary = _SUMMARY_WORDS.get(code[0], code[2])
        children = _children(item)
        names = [str(c.get("TextValue", "")) for c in children if _concept(c) == ALGORITHM_NAME]
        algorithm = names[0] if names else algorithm
        if concept == SINGLE_IMAGE_FINDING and item.get("ValueType") == "CODE":
            code = _code(item)
            kind = _kinds().get(code[:2])
            if kind is not None and not (kind.skip_in_cluster and in_cluster):
                mark = _mark(kind, children, algorithm)
                if mark is not None:
                    marks.append(mark)
            in_cluster = in_cluster or (kind is not None and kind.name == "calcification-cluster")
        for child in children:
            walk(child, in_cluster, algorithm)

    for child in _children(sr):
        walk(child, False, "")
    return CadReport(manufacturer, ", ".join(versions), supported, summary,
                     str(sr.get("ContentDate", "") or ""), str(sr.get("ContentTime", "") or ""), marks)


def _mark(kind: _Kind, children: list[Dataset], algorithm: str) -> Mark | None:
    intent = next((_code(c)[0] for c in children if _concept(c) == RENDERING_INTENT), "")
    if not kind.any_intent and intent not in (REQUIRED, OPTIONAL):
        return None  # "Not for Presentation", or no intent given: not drawn
    scoord = next((c for c in children if _concept(c) == OUTLINE and c.get("ValueType") == "SCOORD"), None) or \
        next((c for c in children if _concept(c) == CENTER and c.get("ValueType") == "SCOORD"), None)
    graphic, points, image = "", [], ""
    if scoord is not None:
        data = [float(v) for v in (scoord.get("GraphicData") or [])]
        points = list(zip(data[0::2], data[1::2]))
        graphic = str(scoord.get("GraphicType", "") or "")
        ref = next((c for c in _children(scoord) if c.get("ValueType") == "IMAGE"), None)
        if ref is not None and ref.get("ReferencedSOPSequence"):
            image = str(ref.ReferencedSOPSequence[0].get("ReferencedSOPInstanceUID", ""))
    if kind.outline_required and not points:
        return None
    point = next((c for c in children if _concept(c) == OPERATING_POINT and c.get("ValueType") == "NUM"), None)
    operating = None
    if point is not None and point.get("MeasuredValueSequence"):
        try:
            operating = float(point.MeasuredValueSequence[0].NumericValue)
        except (AttributeError, TypeError, ValueError):
            operating = None
    value = next((_code(c)[2] for c in children if c.get("ValueType") == "CODE"
                  and _concept(c) not in (RENDERING_INTENT, SINGLE_IMAGE_FINDING)), "")
    return Mark(kind.name, kind.meaning, image, graphic, points, optional=intent == OPTIONAL and not kind.any_intent,
                operating_point=operating, algorithm=algorithm, value=value)


def on_presentation_images(marks: list[Mark], presentation: list[Dataset]) -> list[Mark]:
    """Marks drawn on For Processing images moved to the For Presentation image whose Source
    Image Sequence names that image (same pixel grid); the others as they are."""
    source_of = {}
    for ds in presentation:
        for ref in ds.get("SourceImageSequence", []) or []:
            source_of[str(ref.get("ReferencedSOPInstanceUID", ""))] = str(ds.SOPInstanceUID)
    shown = {str(ds.SOPInstanceUID) for ds in presentation}
    out = []
    for m in marks:
        if m.image not in shown and m.image in source_of:
            m = Mark(**{**m.__dict__, "image": source_of[m.image]})
        out.append(m)
    return out
