"""De-identification of exported instances (spec §5.5.1): three levels, full, reduced and
service, each a column of Table 5-6 (standard attributes, resources/spec/deidentification.tsv)
and Table 5-7 (private attributes, resources/spec/deidentification_private.tsv).

Standard attributes: a 'Yes' applies the row's action (the letters of DICOM PS3.15 Annex E),
at any depth inside sequences:
  U  an instance UID is replaced by a new one from a UidMap that the caller passes for every
     file of an export, so the same original always gets the same new UID and references
     between the exported objects (presentation states, key objects, segmentations, SR
     evidence) still point at the exported images. A U sequence (Referenced Image Sequence,
     Source Image Sequence...) is kept and the UIDs in it are mapped by their own rows. Only
     the table's instance UIDs are mapped: never SOP Class, Transfer Syntax or coding scheme
     UIDs.
  Z  the attribute stays, empty: every date and time (so a type 2 Study Date stays present),
     and the names and IDs that are type 2 in the IODs (Accession Number, Referring
     Physician's Name, Study ID...).
  D  a dummy value: Patient's Name and Patient ID become the pseudonym (patient_name; a
     patient_id given, or a random pseudonym kept in the UidMap per original Patient ID, so all
     files of one patient, and a later export with the saved map, get the same one).
  X  removed. Removing an overlay's data removes its whole overlay group; the curve groups
     (50xx) go whole; digital signatures go, as they no longer match the data.
A 'No' keeps the attribute as it is.

Private attributes: the source says "For full and reduced anonymization private attributes
are not included in anonymized Studies. For service anonymization all private attributes are
included.", while Table 5-7 marks some private attributes 'No' (kept) for reduced. Read
together: full removes every private attribute; reduced removes every private attribute but
those Table 5-7 marks 'No' for reduced, found by private creator and element byte in
whatever block they sit (so a reduced export keeps the Siemens CSA headers); service keeps
every private attribute.

Every de-identified instance gets Patient Identity Removed YES, a De-identification Method
naming the level and the De-identification Method Code Sequence of PS3.16 CID 7050 (the
source's reduced level "applies the following options Retain UIDs, Patient Chars, Long. Full
Dates")."""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from app.dicom.uids import new_uid
from app.resources import read_tsv

LEVELS = ("full", "reduced", "service")

OVERLAY_GROUPS = range(0x6000, 0x6020, 2)
CURVE_GROUPS = range(0x5000, 0x5020, 2)
OVERLAY_DATA = 0x3000
STUDY_DATE = 0x00080020

# PS3.16 CID 7050 (De-identification Method). Service keeps all private attributes, which
# 113111 names the closest.
_PROFILE = ("113100", "Basic Application Confidentiality Profile")
METHOD_CODES = {
    "full": (_PROFILE,),
    "reduced": (_PROFILE,
                ("113108", "Retain Patient Characteristics Option"),
                ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
                ("113110", "Retain UIDs Option")),
    "service": (_PROFILE, ("113111", "Retain Safe Private Option")),
}

DUMMY = "ANONYMOUS"
# dates and times Table 5-6 empties (Z) that some IODs require (type 1): PS3.15 E.1 gives those
# a dummy instead. Content Date, Content Time, Acquisition DateTime
_DUMMY_DATES = {0x00080023: "19000101", 0x00080033: "000000", 0x0008002A: "19000101000000"}
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


@dataclass(frozen=True)
class Rules:
    """One level's reading of Tables 5-6 and 5-7."""
    level: str
    actions: dict[int, str]  # tag -> U, Z, D or X, for the level's 'Yes' rows
    removed_groups: frozenset[int]  # groups removed whole (the curves)
    # (group, private creator, element byte) kept; the creator "" is the literal tag
    # (group, element). None: every private attribute kept.
    private_kept: frozenset[tuple[int, str, int]] | None


def _tags(text: str) -> list[int]:
    """The tags a table's tag stands for: (60xx,eeee) one per overlay group."""
    group, element = text.strip("()").split(",")
    if group == "60xx":
        return [(g << 16) | int(element, 16) for g in OVERLAY_GROUPS]
    return [int(group + element, 16)]


@cache
def rules(level: str) -> Rules:
    if level not in LEVELS:
        raise ValueError(f"de-identification level {level!r}: one of {', '.join(LEVELS)}")
    column = LEVELS.index(level)
    actions: dict[int, str] = {}
    removed_groups: set[int] = set()
    for tag, _name, *answers, action, _comment in read_tsv("spec", "deidentification.tsv"):
        if answers[column] != "Yes":
            continue
        if tag == "(50xx,xxxx)":
            removed_groups.update(CURVE_GROUPS)
            continue
        for t in _tags(tag):
            actions[t] = action
    kept = None
    if level != "service":
        kept = frozenset(
            (int(group, 16), "" if creator == "-" else creator, int(element, 16))
            for group, creator, element, _name, *answers, _comment
            in read_tsv("spec", "deidentification_private.tsv")
            if answers[column] == "No")
    return Rules(level, actions, frozenset(removed_groups), kept)


class UidMap:
    """Original -> new UIDs (and Patient IDs -> pseudonyms) for one export, so that every file
    of it is mapped alike; saved as CSV (original,new,kind) for the user to keep."""

    def __init__(self) -> None:
        self._uids: dict[str, str] = {}
        self._patients: dict[str, str] = {}

    def new(self, uid: str) -> str:
        original = str(uid).strip("\0 ")
        if not original:
            return original
        if original not in self._uids:
            self._uids[original] = new_uid()
        return self._uids[original]

    def pseudonym(self, patient_id: str) -> str:
        """The Patient ID for all files of the patient with ``patient_id``. Random, not a hash
        of the ID: hospital IDs are short enough that a hash is undone by trying them all."""
        original = str(patient_id).strip("\0 ")
        if original not in self._patients:
            taken = set(self._patients.values())
            while (name := "ANON" + uuid.uuid4().hex[:10].upper()) in taken:
                pass
            self._patients[original] = name
        return self._patients[original]

    def items(self) -> list[tuple[str, str]]:
        return list(self._uids.items())

    def patients(self) -> list[tuple[str, str]]:
        return list(self._patients.items())

    def save(self, path: Path | str) -> None:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["original", "new", "kind"])
            writer.writerows((o, n, "uid") for o, n in self._uids.items())
            writer.writerows((o, n, "patient-id") for o, n in self._patients.items())

    @classmethod
    def load(cls, path: Path | str) -> UidMap:
        mapping = cls()
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                target = mapping._patients if row.get("kind") == "patient-id" else mapping._uids
                target[row["original"]] = row["new"]
        return mapping


@dataclass
class Outcome:
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)


def _type_1_dates(ds: Dataset) -> tuple[int, ...]:
    if "WaveformSequence" in ds:  # Waveform Identification (PS3.3 C.10.8)
        return 0x00080023, 0x00080033, 0x0008002A
    if "SharedFunctionalGroupsSequence" in ds or "ValueType" in ds:
        # enhanced multi-frame images (C.7.6.16), SR documents and key objects (C.17.2, C.17.6.2)
        return 0x00080023, 0x00080033
    return ()


_REMOVAL_WARNINGS = {
    0x0040A730: "Content Sequence removed (spec Table 5-6): the document keeps no content",
    0x00700001: "Graphic Annotation Sequence removed (spec Table 5-6): the presentation state keeps no annotations",
}


def deidentify(ds: Dataset, level: str, uids: UidMap, *, patient_name: str = "ANONYMOUS",
               patient_id: str | None = None) -> Outcome:
    """De-identify ``ds`` (and its file meta) in place at ``level`` (LEVELS)."""
    table = rules(level)
    outcome = Outcome()
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        outcome.warn("Burned In Annotation is YES: the pixels may show the patient's name")
    if str(ds.get("RecognizableVisualFeatures", "")).upper() == "YES":
        outcome.warn("Recognizable Visual Features is YES: the images may show the patient's face")
    already_removed = str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"
    _clean(ds, table, _Dummies(uids, patient_name, patient_id), uids, outcome)
    for tag in _type_1_dates(ds):
        if tag in ds and ds[tag].value in ("", None):
            ds[tag].value = _DUMMY_DATES[tag]  # PS3.15 E.1: a type 1 attribute gets a dummy, not emptied
    _mark(ds, level, already_removed)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return outcome


@dataclass
class _Dummies:
    uids: UidMap
    patient_name: str
    patient_id: str | None

    def value(self, keyword: str, original: object) -> str:
        if keyword == "PatientName":
            return self.patient_name
        if keyword == "PatientID":
            return self.patient_id if self.patient_id is not None else self.uids.pseudonym(str(original or ""))
        return DUMMY


def _clean(ds: Dataset, table: Rules, dummies: _Dummies, uids: UidMap, outcome: Outcome) -> None:
    _clean_private(ds, table)
    for tag in list(ds.keys()):
        if tag not in ds:  # gone with its overlay group
            continue
        group = tag.group
        if group in table.removed_groups:
            del ds[tag]
            continue
        action = table.actions.get(tag)
        elem = ds[tag]
        if action == "X":
            if group in OVERLAY_GROUPS and tag.element == OVERLAY_DATA:
                for t in [t for t in ds.keys() if t.group == group]:
                    del ds[t]
            else:
                del ds[tag]
                if tag in _REMOVAL_WARNINGS:
                    outcome.warn(_REMOVAL_WARNINGS[tag])
            continue
        if elem.VR == "SQ":
            for item in elem.value or ():
                _clean(item, table, dummies, uids, outcome)
        elif action == "U":
            elem.value = _mapped(elem.value, uids)
        elif action == "Z":
            elem.value = b"" if elem.VR in _BINARY_VRS else ""
        elif action == "D":
            elem.value = dummies.value(elem.keyword, elem.value)


def _mapped(value: object, uids: UidMap) -> object:
    if isinstance(value, (list, MultiValue)):
        return [uids.new(v) for v in value]
    return uids.new(value) if value else value


def _creator(ds: Dataset, tag: BaseTag) -> str | None:
    """The private creator of a private data element's block; None outside a block."""
    if tag.element < 0x1000:
        return None
    elem = ds.get((tag.group << 16) | (tag.element >> 8))
    if elem is None or elem.value is None:
        return None
    value = elem.value.decode("latin-1") if isinstance(elem.value, bytes) else str(elem.value)
    return value.strip("\0 ")


def _clean_private(ds: Dataset, table: Rules) -> None:
    if table.private_kept is None:
        return
    private = [t for t in ds.keys() if t.is_private]
    kept: set[int] = set()
    for tag in private:
        if tag.is_private_creator:
            continue
        creator = _creator(ds, tag)
        key = (tag.group, "", tag.element) if creator is None else (tag.group, creator, tag.element & 0xFF)
        if key in table.private_kept:
            kept.add(tag)
            if creator is not None:
                kept.add((tag.group << 16) | (tag.element >> 8))
    for tag in private:
        if tag not in kept:
            del ds[tag]


def _mark(ds: Dataset, level: str, already_removed: bool) -> None:
    """PS3.15 E.1.1: say that and how the instance was de-identified; a second
    de-identification adds to what the first one said."""
    methods: list[str] = []
    codes: list[Dataset] = []
    if already_removed:
        previous = ds.get("DeidentificationMethod")
        methods = [previous] if isinstance(previous, str) else list(previous or [])
        codes = list(ds.get("DeidentificationMethodCodeSequence") or [])
    method = f"Lightbox {level.capitalize()} (spec Table 5-6)"
    if method not in methods:
        methods.append(method)
    present = {(str(c.get("CodingSchemeDesignator", "")), str(c.get("CodeValue", ""))) for c in codes}
    for value, meaning in METHOD_CODES[level]:
        if ("DCM", value) not in present:
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            codes.append(item)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = methods[0] if len(methods) == 1 else methods
    ds.DeidentificationMethodCodeSequence = codes
    if rules(level).actions.get(STUDY_DATE) == "Z":
        ds.LongitudinalTemporalInformationModified = "REMOVED"
