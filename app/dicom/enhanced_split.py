"""Enhanced MR split into classic MR images (spec §4.2.1.3.1.5), for a node that takes MR
Image Storage but not Enhanced MR Image Storage.

Each frame becomes an MR Image with the frame's functional group attributes on top (plane
position and orientation, pixel measures, VOI, timing), the same Study and Series Instance
UIDs, a new SOP Instance UID (ours, derived from the original's and the frame number) and
the Referenced Image / Source Image pointing back at the frame it came from. The MR Image module's mandatory attributes that the enhanced object
keeps elsewhere (Scanning Sequence, Sequence Variant, Echo Time ...) are filled from their
enhanced counterparts (PS3.3 C.8.13 / C.8.3.1) or left empty where the IOD allows it.
"""

from __future__ import annotations

import copy

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from app.dicom.derived import derived_uid
from app.imaging.frames import frame_header

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
# Enhanced-only attributes an MR Image must not carry
_DROP = ("NumberOfFrames", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
         "DimensionOrganizationSequence", "DimensionIndexSequence", "FrameContentSequence",
         "ContentQualification", "ResonantNucleus", "PixelPresentation", "VolumetricProperties",
         "VolumeBasedCalculationTechnique", "ComplexImageComponent", "AcquisitionContrast",
         "ConcatenationFrameOffsetNumber", "InStackPositionNumber", "TemporalPositionIndex",
         "DimensionIndexValues", "FrameAcquisitionNumber", "FrameReferenceDateTime",
         "FrameAcquisitionDateTime", "FrameAcquisitionDuration", "StackID", "FrameComments",
         "FrameLabel", "PixelValueTransformationSequence", "RescaleType", "EchoPulseSequence",
         "KSpaceFiltering", "EffectiveEchoTime", "ApplicableSafetyStandardAgency", "FrameType")
# Echo Pulse Sequence (Enhanced) -> Scanning Sequence (classic), PS3.3 C.8.3.1.1.1
_SCANNING = {"SPIN": "SE", "GRADIENT": "GR", "BOTH": ["SE", "GR"]}


def split(ds: Dataset) -> list[Dataset]:
    """The classic MR images of an Enhanced MR instance (decompressed first if needed)."""
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress(generate_instance_uid=False)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = ds.pixel_array
    if frames == 1:
        pixels = pixels[np.newaxis]
    out = []
    for f in range(frames):
        header = frame_header(ds, f)
        mr = Dataset()
        for element in header:
            if element.keyword not in _DROP and element.tag.group != 0x0002:
                mr[element.tag] = copy.deepcopy(element)
        _classic_mr_attributes(mr, header)
        # derived, not new: sending the same object again (a retry) gives the same frames
        mr.SOPClassUID, mr.SOPInstanceUID = MR_IMAGE, derived_uid("mr-split", str(f + 1), str(ds.SOPInstanceUID))
        mr.InstanceNumber = f + 1
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        ref.ReferencedFrameNumber = f + 1
        mr.SourceImageSequence = Sequence([ref])
        mr.DerivationDescription = "frame of an Enhanced MR image, split for an archive without it"
        mr.PixelData = np.ascontiguousarray(pixels[f]).tobytes()
        mr["PixelData"].VR = "OW" if int(mr.BitsAllocated) > 8 else "OB"
        mr.file_meta = FileMetaDataset()
        mr.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        mr.file_meta.MediaStorageSOPClassUID, mr.file_meta.MediaStorageSOPInstanceUID = MR_IMAGE, mr.SOPInstanceUID
        out.append(mr)
    return out


def _first(ds: Dataset, sequence: str, keyword: str):
    seq = ds.get(sequence)
    return seq[0].get(keyword) if seq and keyword in seq[0] else None


def _classic_mr_attributes(mr: Dataset, header: Dataset) -> None:
    """The MR Image module (PS3.3 C.8.3.1) from the frame's enhanced attributes."""
    mr.PatientPosition = header.get("PatientPosition", "")  # Type 2C for MR: present, may be empty
    image_type = list(header.get("ImageType", ["DERIVED", "PRIMARY"]))
    mr.ImageType = ["DERIVED" if image_type[0] == "ORIGINAL" else image_type[0], *image_type[1:2], "OTHER"][:3]
    echo = str(header.get("EchoPulseSequence", "") or "")
    mr.ScanningSequence = _SCANNING.get(echo, "RM")  # RM: research mode, when not given
    mr.SequenceVariant = "NONE"
    mr.ScanOptions = ""
    mr.MRAcquisitionType = header.get("MRAcquisitionType", "")
    mr.RepetitionTime = header.get("RepetitionTime", None)
    mr.EchoTime = _first(header, "MREchoSequence", "EffectiveEchoTime") or header.get("EchoTime", None)
    mr.EchoTrainLength = header.get("EchoTrainLength", None)
    if "FlipAngle" in header:
        mr.FlipAngle = header.FlipAngle
    for k in ("SliceThickness", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"):
        if k in header:
            mr[k] = copy.deepcopy(header[k])
    if "SliceThickness" not in mr:
        mr.SliceThickness = None
    if "PixelRepresentation" in header and "LargestImagePixelValue" in mr:
        del mr.LargestImagePixelValue
    for k in ("WindowCenter", "WindowWidth"):
        if k in header:
            mr[k] = copy.deepcopy(header[k])
