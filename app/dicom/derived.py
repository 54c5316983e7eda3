"""What an object Lightbox makes from another one keeps of it: the patient and the study,
and UIDs derived from the source's, the same every time (making it twice gives the same
object, which an archive keeps once)."""

from __future__ import annotations

import copy
import uuid

from pydicom.dataset import Dataset

PATIENT_STUDY = ("SpecificCharacterSet", "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                 "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                 "AccessionNumber", "StudyDescription")
# Type 2 in the Patient and General Study modules: present, may be empty
_TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber")


def derived_uid(*parts: str) -> str:
    """A 2.25 UID of our own, a function of ``parts`` (what is made, of which source)."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, 'lightbox/' + '/'.join(parts)).int}"


def copy_patient_study(source: Dataset, target: Dataset) -> None:
    for kw in PATIENT_STUDY:
        if kw in source:
            target[kw] = copy.deepcopy(source[kw])
    for kw in _TYPE_2:
        if kw not in target:
            setattr(target, kw, "")
