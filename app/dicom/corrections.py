"""Corrections of one object (spec §4.2.1.3.1.8; issue 8 item 4), as pure changes to a
dataset: new patient data, a study moved to a procedure or to another patient, a corrected
Patient Position. Every change keeps the replaced values in an item of the Original
Attributes Sequence (PS3.3 C.12.1: when, which system, why — CORRECT), so the object stays
valid DICOM and says what it was. Applying them to the archive, all objects of a study or
none, is app.store's business.

Patient Position: only the head-first/feet-first and supine/prone positions; the geometry
of the patient coordinate system turns with the patient, so positions, orientations (also
those of an enhanced object's functional groups) and the CT centres are turned, Slice Location (meaningless now) emptied, and the series gets a
new Frame of Reference (the caller gives one UID per series)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.dicom.uids import IMPLEMENTATION_VERSION_NAME

REASON = "CORRECT"
PATIENT_KEYS = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
# patient coordinates from gantry coordinates, per position (x left, y posterior, z head of
# a head-first supine patient): feet first turns the patient about y, prone about z
_POSITIONS = {
    "HFS": np.diag([1.0, 1.0, 1.0]), "FFS": np.diag([-1.0, 1.0, -1.0]),
    "HFP": np.diag([-1.0, -1.0, 1.0]), "FFP": np.diag([1.0, -1.0, -1.0]),
}


class CorrectionError(ValueError):
    """What cannot be corrected, for the user."""


def record(ds: Dataset, replaced: Dataset, *, when: datetime, source: str = "") -> None:
    """Add to ``ds``'s Original Attributes Sequence an item holding ``replaced`` (the
    attributes' values before the change; an empty value for one that was absent)."""
    item = Dataset()
    item.AttributeModificationDateTime = when.strftime("%Y%m%d%H%M%S")
    item.ModifyingSystem = IMPLEMENTATION_VERSION_NAME
    item.SourceOfPreviousValues = source
    item.ReasonForTheAttributeModification = REASON
    item.ModifiedAttributesSequence = Sequence([replaced])
    if "OriginalAttributesSequence" not in ds:
        ds.OriginalAttributesSequence = Sequence()
    ds.OriginalAttributesSequence.append(item)


def _replace(ds: Dataset, values: dict, *, when: datetime) -> list[str]:
    """Set ``values`` (keyword -> new value; None removes) and record the old ones; the
    keywords that changed."""
    old = Dataset()
    changed = []
    for keyword, new in values.items():
        had = keyword in ds
        current = ds[keyword].value if had else None
        if (current or None) == (new or None):
            continue
        setattr(old, keyword, current if had else None)
        if new is None:
            if had:
                del ds[keyword]
        else:
            setattr(ds, keyword, new)
        changed.append(keyword)
    if changed:
        record(ds, old, when=when)
    return changed


def age(birth: str, on: str) -> str | None:
    """Patient's Age (AS) on date ``on`` for birth date ``birth`` (both YYYYMMDD): years from
    2 years on, else months from 1 month, else weeks from 1 week, else days."""
    try:
        b = date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
        d = date(int(on[:4]), int(on[4:6]), int(on[6:8]))
    except (ValueError, TypeError, IndexError):
        return None
    if d < b:
        return None
    years = d.year - b.year - ((d.month, d.day) < (b.month, b.day))
    months = (d.year - b.year) * 12 + d.month - b.month - (d.day < b.day)
    days = (d - b).days
    if years >= 2:
        return f"{min(years, 999):03d}Y"
    if months >= 1:
        return f"{months:03d}M"
    if days >= 7:
        return f"{days // 7:03d}W"
    return f"{days:03d}D"


def correct_patient(ds: Dataset, changes: dict[str, str | None], *, when: datetime) -> list[str]:
    """New patient data (Patient's Name, ID, Issuer, Birth Date, Sex), UIDs unchanged; the
    Patient's Age again from the birth date on the acquisition (else study) date."""
    unknown = set(changes) - set(PATIENT_KEYS)
    if unknown:
        raise CorrectionError(f"not patient data: {', '.join(sorted(unknown))}")
    if "PatientID" in changes and not (changes["PatientID"] or "").strip():
        raise CorrectionError("a patient needs a Patient ID")
    values = dict(changes)
    birth = values.get("PatientBirthDate", ds.get("PatientBirthDate"))
    on = str(ds.get("AcquisitionDate") or ds.get("StudyDate") or "")
    if "PatientBirthDate" in changes or "PatientAge" in ds:
        computed = age(str(birth or ""), on)
        if computed is not None:
            values["PatientAge"] = computed
    return _replace(ds, values, when=when)


def move_study(ds: Dataset, study_uid: str, accession: str | None, *, when: datetime,
               patient: dict[str, str | None] | None = None) -> list[str]:
    """The object into another study: to a scheduled procedure (its Study Instance UID and
    Accession Number) or to another patient (``patient``: that patient's data, with a new
    Study Instance UID the caller made for the whole study)."""
    values: dict = {"StudyInstanceUID": study_uid}
    if accession is not None:
        values["AccessionNumber"] = accession
    changed = _replace(ds, values, when=when)
    if patient:
        changed += correct_patient(ds, patient, when=when)
    return changed


def correct_position(ds: Dataset, position: str, frame_of_reference: str, *, when: datetime) -> list[str]:
    """The Patient Position corrected to ``position``: the geometry turned with the patient.
    ``frame_of_reference``: the new Frame of Reference UID of the object's series."""
    position = position.strip().upper()
    was = str(ds.get("PatientPosition", "") or "").strip().upper()
    if position not in _POSITIONS or was not in _POSITIONS:
        raise CorrectionError(f"Patient Position can be corrected between {', '.join(_POSITIONS)} only "
                              f"(here: {was or 'none'} to {position})")
    if position == was:
        return []
    turn = _POSITIONS[position] @ _POSITIONS[was].T  # patient coordinates: old -> new
    values: dict = {"PatientPosition": position}

    def vec(keyword):
        v = ds.get(keyword)
        return np.array([float(x) for x in v]) if v is not None and len(v) % 3 == 0 else None
    if (ipp := vec("ImagePositionPatient")) is not None:
        values["ImagePositionPatient"] = _ds_list(turn @ ipp)
    if (iop := vec("ImageOrientationPatient")) is not None and len(iop) == 6:
        values["ImageOrientationPatient"] = _ds_list(np.concatenate([turn @ iop[:3], turn @ iop[3:]]))
    for keyword in ("DataCollectionCenterPatient", "ReconstructionTargetCenterPatient"):
        if (centre := vec(keyword)) is not None:
            values[keyword] = _ds_list(turn @ centre)
    # an enhanced multi-frame object keeps its geometry in the functional groups
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups = ds.get(keyword)
        turned = _turned_groups(groups, turn) if groups else None
        if turned is not None:
            values[keyword] = turned
    if "SliceLocation" in ds:
        values["SliceLocation"] = None
    if "FrameOfReferenceUID" in ds:
        values["FrameOfReferenceUID"] = frame_of_reference
    if "PatientOrientation" in ds and len(ds.PatientOrientation or []) == 2:
        values["PatientOrientation"] = [_turn_letters(str(v), turn) for v in ds.PatientOrientation]
    # XA angles are about the patient: head and feet swapped, both turn the other way
    if turn[2, 2] < 0:
        for keyword in ("PositionerPrimaryAngle", "PositionerSecondaryAngle"):
            if ds.get(keyword) not in (None, ""):
                values[keyword] = -float(ds.get(keyword))
    return _replace(ds, values, when=when)


def _turned_groups(groups, turn: np.ndarray):
    """A copy of functional group items with their plane positions and orientations turned;
    None if they hold none."""
    import copy
    out = copy.deepcopy(groups)
    touched = False
    for item in out:
        for sequence, keyword in (("PlanePositionSequence", "ImagePositionPatient"),
                                  ("PlaneOrientationSequence", "ImageOrientationPatient")):
            inner = item.get(sequence)
            if not inner or keyword not in inner[0] or inner[0][keyword].value is None:
                continue
            v = np.array([float(x) for x in inner[0][keyword].value])
            inner[0][keyword].value = _ds_list(np.concatenate([turn @ v[i:i + 3] for i in range(0, len(v), 3)]))
            touched = True
    return out if touched else None


_AXES = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "H": (2, 1), "F": (2, -1)}
_LETTER = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "H", (2, -1): "F"}


def _turn_letters(text: str, turn: np.ndarray) -> str:
    out = ""
    for c in text:
        if c not in _AXES:
            return text  # not a direction we can turn: left as it was
        axis, sign = _AXES[c]
        v = np.zeros(3)
        v[axis] = sign
        w = turn @ v
        k = int(np.argmax(np.abs(w)))
        out += _LETTER[(k, int(np.sign(w[k])))]
    return out


def _ds_list(values) -> list[float]:
    # DS holds 16 characters: rounded to what fits, and no negative zero
    return [float(f"{float(v):.6g}") + 0.0 for v in values]
