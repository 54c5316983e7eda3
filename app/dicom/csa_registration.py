"""CSA Non-Image objects kept as Spatial Registration too (spec §4.2.1.3.1.6).

Siemens' private CSA Non-Image class (1.3.12.2.1107.5.9.1) is refused by many archives. For
each one received, a Spatial Registration instance (PS3.3 A.39) is made in a series of its
own: the same patient and study, the CSA object's frame of reference with an identity rigid
registration, a reference to the CSA object, and the CSA object's private groups carried
along ("the information of the original object"), so an archive without the private class
keeps its content. Its UIDs are derived from the CSA object's SOP Instance UID, so receiving
the same object twice makes the same registration (kept once).
"""

from __future__ import annotations

import copy
from datetime import datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from app.dicom.derived import copy_patient_study, derived_uid

CSA_NON_IMAGE = "1.3.12.2.1107.5.9.1"
SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.1"
_IDENTITY = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def _derived_uid(source: str, what: str) -> str:
    return derived_uid("csa-registration", what, source)


def registration_for(csa: Dataset) -> Dataset:
    """The Spatial Registration instance that keeps ``csa`` (a CSA Non-Image dataset)."""
    reg = Dataset()
    copy_patient_study(csa, reg)
    source = str(csa.SOPInstanceUID)
    now = datetime.now()
    reg.SOPClassUID = SPATIAL_REGISTRATION
    reg.SOPInstanceUID = _derived_uid(source, "instance")
    reg.Modality = "REG"
    reg.SeriesInstanceUID = _derived_uid(source, "series")
    reg.SeriesNumber = int(csa.get("SeriesNumber", 0) or 0) + 9000
    reg.SeriesDescription = f"CSA Non-Image kept as registration ({csa.get('SeriesDescription', '') or 'no description'})"
    reg.FrameOfReferenceUID = csa.get("FrameOfReferenceUID") or _derived_uid(source, "frame-of-reference")
    reg.PositionReferenceIndicator = ""
    reg.Manufacturer = csa.get("Manufacturer", "")
    reg.InstanceNumber = 1
    reg.ContentDate, reg.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    reg.ContentLabel = "CSA_NON_IMAGE"
    reg.ContentDescription = "Siemens CSA Non-Image, kept for archives without the class"
    reg.ContentCreatorName = ""
    reg.Laterality = ""
    matrix = Dataset()
    matrix.FrameOfReferenceTransformationMatrixType = "RIGID"
    matrix.FrameOfReferenceTransformationMatrix = _IDENTITY
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = CSA_NON_IMAGE, source
    registration = Dataset()
    registration.FrameOfReferenceUID = reg.FrameOfReferenceUID
    registration.ReferencedImageSequence = Sequence([copy.deepcopy(ref)])  # the object it keeps
    registration.MatrixRegistrationSequence = Sequence([Dataset()])
    registration.MatrixRegistrationSequence[0].MatrixSequence = Sequence([matrix])
    registration.MatrixRegistrationSequence[0].RegistrationTypeCodeSequence = Sequence()
    reg.RegistrationSequence = Sequence([registration])
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = csa.SeriesInstanceUID
    series_ref.ReferencedInstanceSequence = Sequence([ref])
    reg.ReferencedSeriesSequence = Sequence([series_ref])
    for element in csa:
        if element.tag.is_private:  # the CSA content itself (groups 0029 ...)
            reg[element.tag] = copy.deepcopy(element)
    reg.file_meta = FileMetaDataset()
    reg.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    reg.file_meta.MediaStorageSOPClassUID, reg.file_meta.MediaStorageSOPInstanceUID = SPATIAL_REGISTRATION, \
        reg.SOPInstanceUID
    return reg
