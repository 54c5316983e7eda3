"""Objects that are read rather than looked at: structured reports as an indented text
tree, and plain words for what cannot be displayed (waveforms, raw data, ...)."""

from __future__ import annotations

from app.dicom.formatting import date, person_name, time
from app.dicom.sop_classes import lookup

SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


def kind(ds) -> str:
    """'image', 'report' (SR), 'pdf', or 'other' (not displayable)."""
    uid = str(ds.get("SOPClassUID", ""))
    if uid.startswith(SR_PREFIX) or str(ds.get("Modality", "")) == "SR":
        return "report"
    if uid == "1.2.840.10008.5.1.4.1.1.104.1":
        return "pdf"
    if "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        return "image"
    sop = lookup(uid)
    return "image" if sop is not None and sop.visualization and "Rows" in ds else "other"


def not_displayable(ds) -> str:
    sop = lookup(str(ds.get("SOPClassUID", "")))
    name = sop.name if sop else f"SOP class {ds.get('SOPClassUID', '?')}"
    return f"{name} cannot be displayed here; it is kept in the archive and can be sent and exported."


def _code(item, keyword: str) -> str:
    seq = item.get(keyword)
    if not seq:
        return ""
    code = seq[0]
    return str(code.get("CodeMeaning", "") or code.get("CodeValue", ""))


def _value(item) -> str:
    vt = str(item.get("ValueType", ""))
    if vt == "TEXT":
        return str(item.get("TextValue", ""))
    if vt == "CODE":
        return _code(item, "ConceptCodeSequence")
    if vt == "NUM":
        mv = item.get("MeasuredValueSequence")
        if not mv:
            return "(no value)"
        unit = _code(mv[0], "MeasurementUnitsCodeSequence")
        return f"{mv[0].get('NumericValue', '')} {unit}".strip()
    if vt == "DATE":
        return date(str(item.get("Date", "")))
    if vt == "TIME":
        return time(str(item.get("Time", "")))
    if vt == "DATETIME":
        value = str(item.get("DateTime", ""))
        return f"{date(value[:8])} {time(value[8:])}".strip()
    if vt == "PNAME":
        return person_name(str(item.get("PersonName", "")))
    if vt == "UIDREF":
        return str(item.get("UID", ""))
    if vt in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        refs = item.get("ReferencedSOPSequence") or []
        return ", ".join(f"{vt.lower()} {r.get('ReferencedSOPInstanceUID', '?')}" for r in refs) or vt.lower()
    if vt in ("SCOORD", "SCOORD3D"):
        return f"{item.get('GraphicType', '')} region"
    return ""


def _walk(items, depth: int, lines: list[str]) -> None:
    for item in items or ():
        name = _code(item, "ConceptNameCodeSequence")
        value = _value(item)
        text = f"{name}: {value}" if name and value else name or value
        if text:
            indent = "    " * depth
            lines.append(indent + text.replace("\r\n", "\n").replace("\n", "\n" + indent + "  "))
        _walk(item.get("ContentSequence"), depth + 1, lines)


def sr_text(ds) -> str:
    """A structured report as indented, readable text."""
    lines = [_code(ds, "ConceptNameCodeSequence") or "Structured report"]
    facts = [f"Patient: {person_name(str(ds.get('PatientName', '')))} ({ds.get('PatientID', '')})",
             f"Date: {date(str(ds.get('ContentDate', '')))} {time(str(ds.get('ContentTime', '')))}".strip()]
    if ds.get("CompletionFlag"):
        facts.append(f"Completion: {ds.CompletionFlag}")
    if ds.get("VerificationFlag"):
        facts.append(f"Verification: {ds.VerificationFlag}")
    lines += facts + [""]
    _walk(ds.get("ContentSequence"), 0, lines)
    return "\n".join(lines)
