"""Objects that are not images, for the DICOMDIR record types of PS3.3 F.5 (media export):
a Key Object Selection Document, an Encapsulated PDF, an RT Structure Set, an RT Plan, an
RT Dose and a 12-lead ECG, with the CT image they refer to; all of one patient and study.
Each is small but complete: dciodvfy finds no error in it (warnings at most).

Import as ``from media_samples import ...`` (tests/ is on sys.path, as for gsps_samples).
"""

from __future__ import annotations

import math

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    EncapsulatedPDFStorage,
    KeyObjectSelectionDocumentStorage,
    RTDoseStorage,
    RTPlanStorage,
    RTStructureSetStorage,
    TwelveLeadECGWaveformStorage,
    generate_uid,
)

from conftest import pdf_document
from gsps_samples import image

PATIENT = {"PatientName": "Media^Records", "PatientID": "MEDREC01", "PatientBirthDate": "19580317",
           "PatientSex": "M"}
DATE, TIME = "20240305", "093000"


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def new_study() -> Dataset:
    """The Patient and General Study attributes every object of the study copies."""
    study = Dataset()
    for keyword, value in PATIENT.items():
        setattr(study, keyword, value)
    study.StudyInstanceUID, study.StudyDate, study.StudyTime = generate_uid(), DATE, TIME
    study.StudyID, study.AccessionNumber, study.ReferringPhysicianName = "42", "ACCMED42", ""
    study.StudyDescription = "Radiotherapy planning"
    return study


def _base(study: Dataset, sop_class: str, modality: str, series_number: int, *, series: str | None = None) -> Dataset:
    """Patient, General Study, the series (Modality, UID, number), General Equipment, SOP Common."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.InstanceCreationDate, ds.InstanceCreationTime = DATE, TIME
    ds.update(study)
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = modality, series or generate_uid(), series_number
    ds.SeriesDate, ds.SeriesTime = DATE, TIME
    ds.Manufacturer, ds.ManufacturerModelName = "Lightbox tests", "media samples"
    ds.DeviceSerialNumber, ds.SoftwareVersions = "0001", "1.0"
    ds.InstanceNumber = 1
    return ds


def ct_image(study: Dataset, *, number: int = 1, series: str | None = None, frame_of_reference: str | None = None,
             z: float = 0.0) -> Dataset:
    """gsps_samples.image made a complete CT Image (as tests/peers/test_media_export does)."""
    ds = image(study=str(study.StudyInstanceUID), series=series)
    ds.update(study)
    ds.pop("SpecificCharacterSet", None)
    ds.ImageType, ds.BodyPartExamined = ["ORIGINAL", "PRIMARY", "AXIAL"], "HEAD"  # unpaired: no Laterality
    ds.Manufacturer = "Lightbox tests"
    ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, z]
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference or generate_uid(), ""
    ds.KVP, ds.AcquisitionNumber, ds.SliceThickness, ds.PatientPosition = 120, 1, 1.0, "HFS"
    ds.InstanceNumber, ds.SeriesNumber = number, 1
    return ds


def _sop_ref(ds: Dataset) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    return ref


# -- Key Object Selection Document (TID 2010) ---------------------------------------------
def key_object(study: Dataset, images: list[Dataset], *, title=("113000", "DCM", "Of Interest"),
               description: str = "Images of interest") -> Dataset:
    """A KO (TID 2010) flagging ``images`` (of the study), with the Current Requested
    Procedure Evidence Sequence listing each of them by series. The root has one HAS CONCEPT
    MOD item (the language), the one item its DICOMDIR record copies (PS3.3 F.5.26), then
    a Key Object Description and the images (CONTAINS), which the record leaves out."""
    ds = _base(study, KeyObjectSelectionDocumentStorage, "KO", 90)
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.ContentDate, ds.ContentTime = DATE, "094500"
    by_series: dict[str, list[Dataset]] = {}
    for im in images:
        by_series.setdefault(str(im.SeriesInstanceUID), []).append(im)
    series_items = []
    for uid, members in by_series.items():
        item = Dataset()
        item.SeriesInstanceUID = uid
        item.ReferencedSOPSequence = Sequence([_sop_ref(im) for im in members])
        series_items.append(item)
    evidence = Dataset()
    evidence.StudyInstanceUID = study.StudyInstanceUID
    evidence.ReferencedSeriesSequence = Sequence(series_items)
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])
    # SR Document Content: the root CONTAINER, its title, TID 2010
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([code(*title)])
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = "DCMR", "2010"
    ds.ContentTemplateSequence = Sequence([template])
    language = Dataset()  # TID 1204: the one HAS CONCEPT MOD of the root, what its DICOMDIR record holds
    language.RelationshipType, language.ValueType = "HAS CONCEPT MOD", "CODE"
    language.ConceptNameCodeSequence = Sequence([code("121049", "DCM", "Language of Content Item and Descendants")])
    language.ConceptCodeSequence = Sequence([code("en", "RFC5646", "English")])
    text = Dataset()
    text.RelationshipType, text.ValueType = "CONTAINS", "TEXT"
    text.ConceptNameCodeSequence = Sequence([code("113012", "DCM", "Key Object Description")])
    text.TextValue = description
    content = [language, text]
    for im in images:
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "IMAGE"
        item.ReferencedSOPSequence = Sequence([_sop_ref(im)])
        content.append(item)
    ds.ContentSequence = Sequence(content)
    return ds


# -- Encapsulated PDF ---------------------------------------------------------------------
def encapsulated_pdf(study: Dataset, pdf: bytes | None = None, *, title: str = "Treatment summary") -> Dataset:
    ds = _base(study, EncapsulatedPDFStorage, "DOC", 91)
    ds.ConversionType = "WSD"  # SC Equipment: a workstation made it
    ds.ContentDate, ds.ContentTime, ds.AcquisitionDateTime = DATE, "100000", DATE + "100000"
    ds.BurnedInAnnotation, ds.RecognizableVisualFeatures = "YES", "NO"
    ds.DocumentTitle = title
    ds.ConceptNameCodeSequence = Sequence([code("18748-4", "LN", "Diagnostic imaging report")])
    pdf = pdf if pdf is not None else pdf_document("Lightbox media test report")
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    return ds


# -- RT Structure Set ---------------------------------------------------------------------
def rt_structure_set(study: Dataset, ct: Dataset, *, label: str = "CT_1") -> Dataset:
    """One ROI (a closed planar square) contoured on ``ct``."""
    ds = _base(study, RTStructureSetStorage, "RTSTRUCT", 92)
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = ct.FrameOfReferenceUID, ""
    ds.StructureSetLabel, ds.StructureSetName = label, "Planning structures"
    ds.StructureSetDate, ds.StructureSetTime = DATE, "101000"
    contour_image = _sop_ref(ct)
    series = Dataset()
    series.SeriesInstanceUID, series.ContourImageSequence = ct.SeriesInstanceUID, Sequence([contour_image])
    rt_study = Dataset()
    rt_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired): as PS3.3 says
    rt_study.ReferencedSOPInstanceUID = study.StudyInstanceUID
    rt_study.RTReferencedSeriesSequence = Sequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = ct.FrameOfReferenceUID, Sequence([rt_study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    roi = Dataset()
    roi.ROINumber, roi.ReferencedFrameOfReferenceUID = 1, ct.FrameOfReferenceUID
    roi.ROIName, roi.ROIGenerationAlgorithm = "PTV", "MANUAL"
    ds.StructureSetROISequence = Sequence([roi])
    z = float(ct.ImagePositionPatient[2])
    points = [(4.0, 4.0), (20.0, 4.0), (20.0, 16.0), (4.0, 16.0)]
    contour = Dataset()
    contour.ContourImageSequence = Sequence([_sop_ref(ct)])
    contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
    contour.ContourNumber = 1
    contour.ContourData = [v for x, y in points for v in (x, y, z)]
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber, roi_contour.ROIDisplayColor = 1, [255, 0, 0]
    roi_contour.ContourSequence = Sequence([contour])
    ds.ROIContourSequence = Sequence([roi_contour])
    observation = Dataset()
    observation.ObservationNumber, observation.ReferencedROINumber = 1, 1
    observation.RTROIInterpretedType, observation.ROIInterpreter = "PTV", ""
    ds.RTROIObservationsSequence = Sequence([observation])
    ds.ApprovalStatus = "UNAPPROVED"
    return ds


# -- RT Plan ------------------------------------------------------------------------------
def rt_plan(study: Dataset, structure_set: Dataset, frame_of_reference: str, *, label: str = "PLAN_1",
            meterset: float = 100.0) -> Dataset:
    """One fraction group of one static 6 MV photon beam (two control points) on the ROI of
    ``structure_set``."""
    ds = _base(study, RTPlanStorage, "RTPLAN", 93)
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference, ""
    ds.RTPlanLabel, ds.RTPlanName = label, "Test plan"
    ds.RTPlanDate, ds.RTPlanTime = DATE, "102000"
    ds.RTPlanGeometry = "PATIENT"
    ds.ReferencedStructureSetSequence = Sequence([_sop_ref(structure_set)])
    isocenter = [12.0, 10.0, 0.0]
    dose_ref = Dataset()
    dose_ref.DoseReferenceNumber, dose_ref.DoseReferenceUID = 1, generate_uid()
    dose_ref.DoseReferenceStructureType, dose_ref.DoseReferenceDescription = "SITE", "PTV"
    dose_ref.DoseReferenceType, dose_ref.TargetPrescriptionDose = "TARGET", 2.0
    ds.DoseReferenceSequence = Sequence([dose_ref])
    ref_beam = Dataset()
    ref_beam.ReferencedBeamNumber, ref_beam.BeamMeterset = 1, meterset
    ref_beam.BeamDose = 2.0
    group = Dataset()
    group.FractionGroupNumber, group.NumberOfFractionsPlanned = 1, 30
    group.NumberOfBeams, group.NumberOfBrachyApplicationSetups = 1, 0
    group.ReferencedBeamSequence = Sequence([ref_beam])
    ds.FractionGroupSequence = Sequence([group])
    setup = Dataset()
    setup.PatientSetupNumber, setup.PatientPosition = 1, "HFS"
    ds.PatientSetupSequence = Sequence([setup])
    jaws = []
    for kind in ("ASYMX", "ASYMY"):
        device = Dataset()
        device.RTBeamLimitingDeviceType, device.NumberOfLeafJawPairs = kind, 1
        jaws.append(device)
    beam = Dataset()
    beam.BeamNumber, beam.BeamName, beam.BeamDescription = 1, "AP", "anterior field"
    beam.BeamType, beam.RadiationType, beam.TreatmentDeliveryType = "STATIC", "PHOTON", "TREATMENT"
    beam.TreatmentMachineName, beam.Manufacturer = "LINAC1", "Lightbox tests"
    beam.PrimaryDosimeterUnit, beam.SourceAxisDistance = "MU", 1000.0
    beam.BeamLimitingDeviceSequence = Sequence(jaws)
    beam.ReferencedPatientSetupNumber = 1
    beam.NumberOfWedges, beam.NumberOfCompensators, beam.NumberOfBoli, beam.NumberOfBlocks = 0, 0, 0, 0
    beam.FinalCumulativeMetersetWeight, beam.NumberOfControlPoints = 1.0, 2
    first = Dataset()
    first.ControlPointIndex, first.CumulativeMetersetWeight, first.NominalBeamEnergy = 0, 0.0, 6.0
    first.DoseRateSet = 600.0
    positions = []
    for kind in ("ASYMX", "ASYMY"):
        pos = Dataset()
        pos.RTBeamLimitingDeviceType, pos.LeafJawPositions = kind, [-50.0, 50.0]
        positions.append(pos)
    first.BeamLimitingDevicePositionSequence = Sequence(positions)
    first.GantryAngle, first.GantryRotationDirection = 0.0, "NONE"
    first.BeamLimitingDeviceAngle, first.BeamLimitingDeviceRotationDirection = 0.0, "NONE"
    first.PatientSupportAngle, first.PatientSupportRotationDirection = 0.0, "NONE"
    first.TableTopEccentricAngle, first.TableTopEccentricRotationDirection = 0.0, "NONE"
    first.TableTopVerticalPosition, first.TableTopLongitudinalPosition, first.TableTopLateralPosition = \
        0.0, 0.0, 0.0
    first.IsocenterPosition, first.SourceToSurfaceDistance = isocenter, 900.0
    dose_point = Dataset()
    dose_point.ReferencedDoseReferenceNumber, dose_point.CumulativeDoseReferenceCoefficient = 1, 0.0
    first.ReferencedDoseReferenceSequence = Sequence([dose_point])
    last = Dataset()
    last.ControlPointIndex, last.CumulativeMetersetWeight = 1, 1.0
    end_point = Dataset()
    end_point.ReferencedDoseReferenceNumber, end_point.CumulativeDoseReferenceCoefficient = 1, 1.0
    last.ReferencedDoseReferenceSequence = Sequence([end_point])
    beam.ControlPointSequence = Sequence([first, last])
    ds.BeamSequence = Sequence([beam])
    ds.ApprovalStatus = "UNAPPROVED"
    return ds


# -- RT Dose ------------------------------------------------------------------------------
def rt_dose(study: Dataset, plan: Dataset, ct: Dataset, *, frames: int = 4, rows: int = 32, cols: int = 40) -> Dataset:
    """A PLAN dose grid of ``frames`` planes (GridFrameOffsetVector, 2.5 mm apart) on the
    frame of reference of ``ct``: a Gaussian peak at the isocentre, 16-bit, Gy by
    DoseGridScaling."""
    ds = _base(study, RTDoseStorage, "RTDOSE", 94)
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = ct.FrameOfReferenceUID, ""
    ds.ContentDate, ds.ContentTime = DATE, "103000"
    ds.PatientOrientation = ""
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.PixelSpacing, ds.ImageOrientationPatient = [2.0, 2.0], [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient, ds.SliceThickness = [0.0, 0.0, -3.75], ""
    offsets = [2.5 * i for i in range(frames)]
    ds.NumberOfFrames, ds.FrameIncrementPointer = frames, 0x3004000C
    ds.GridFrameOffsetVector = offsets
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    ds.DoseGridScaling = "5E-05"  # DS: 16 characters at most
    z, r, c = np.mgrid[0:frames, 0:rows, 0:cols].astype(float)
    peak = np.exp(-(((c - cols / 2) / 5) ** 2 + ((r - rows / 2) / 4) ** 2 + ((z - frames / 2) / 2) ** 2))
    ds.PixelData = np.round(peak * 44000).astype(np.uint16).tobytes()
    ds.ReferencedRTPlanSequence = Sequence([_sop_ref(plan)])
    return ds


# -- 12-lead ECG ------------------------------------------------------------------------
# CID 3001 ECG Leads (MDC codes, PS3.16)
LEADS = [("2:1", "Lead I"), ("2:2", "Lead II"), ("2:61", "Lead III"), ("2:62", "Lead aVR"),
         ("2:63", "Lead aVL"), ("2:64", "Lead aVF"), ("2:3", "Lead V1"), ("2:4", "Lead V2"),
         ("2:5", "Lead V3"), ("2:6", "Lead V4"), ("2:7", "Lead V5"), ("2:8", "Lead V6")]


def ecg(study: Dataset, *, seconds: float = 0.8, frequency: int = 500) -> Dataset:
    """A 12-lead ECG: one multiplex group of the 12 leads, ``seconds`` at ``frequency`` Hz,
    16-bit signed samples in microvolts (a beat shaped like a QRS on each lead)."""
    ds = _base(study, TwelveLeadECGWaveformStorage, "ECG", 95)
    ds.ContentDate, ds.ContentTime, ds.AcquisitionDateTime = DATE, "090000", DATE + "090000"
    ds.AcquisitionContextSequence = Sequence()
    samples = int(seconds * frequency)
    t = np.arange(samples) / frequency
    channels, data = [], []
    for n, (value, meaning) in enumerate(LEADS, 1):
        amplitude = 800 * math.cos(n / 3)
        wave = amplitude * np.exp(-(((t - seconds / 2) / 0.02) ** 2)) + 100 * np.sin(2 * np.pi * t)
        data.append(np.round(wave).astype(np.int16))
        channel = Dataset()
        channel.WaveformChannelNumber, channel.ChannelLabel, channel.ChannelStatus = n, meaning, "OK"
        channel.ChannelSourceSequence = Sequence([code(value, "MDC", meaning)])
        channel.ChannelSensitivity = 1.0
        channel.ChannelSensitivityUnitsSequence = Sequence([code("uV", "UCUM", "microvolt")])
        channel.ChannelSensitivityCorrectionFactor, channel.ChannelBaseline = 1.0, 0.0
        channel.ChannelTimeSkew, channel.WaveformBitsStored = 0.0, 16
        channel.FilterLowFrequency, channel.FilterHighFrequency = 0.05, 150.0
        channels.append(channel)
    group = Dataset()
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels, group.NumberOfWaveformSamples = len(LEADS), samples
    group.SamplingFrequency, group.MultiplexGroupLabel = frequency, "RHYTHM"
    group.ChannelDefinitionSequence = Sequence(channels)
    group.WaveformBitsAllocated, group.WaveformSampleInterpretation = 16, "SS"
    group.WaveformData = np.stack(data, axis=1).astype("<i2").tobytes()  # interleaved, sample by sample
    ds.WaveformSequence = Sequence([group])
    return ds


def study_objects(study: Dataset | None = None) -> dict[str, Dataset]:
    """A CT image and every non-image object above, of one study: {"CT": ..., "KO": ...,
    "DOC": ..., "RTSTRUCT": ..., "RTPLAN": ..., "RTDOSE": ..., "ECG": ...} (by Modality)."""
    study = study or new_study()
    ct = ct_image(study)
    structures = rt_structure_set(study, ct)
    plan = rt_plan(study, structures, str(ct.FrameOfReferenceUID))
    return {"CT": ct, "KO": key_object(study, [ct]), "DOC": encapsulated_pdf(study), "RTSTRUCT": structures,
            "RTPLAN": plan, "RTDOSE": rt_dose(study, plan, ct), "ECG": ecg(study)}


# -- Segmentation (only what carries references: for de-identification tests) -----------
def segmentation(study: Dataset, ct: Dataset) -> Dataset:
    """A binary segmentation of ``ct`` (one frame, one segment) holding the references a
    de-identifier must map: the referenced series and instance, the source image of the
    frame and the frame of reference. Not complete for dciodvfy (no enhanced functional
    groups beyond the derivation): use it to check references, not the IOD."""
    ds = _base(study, "1.2.840.10008.5.1.4.1.1.66.4", "SEG", 5)
    ds.FrameOfReferenceUID = ct.FrameOfReferenceUID
    series = Dataset()
    series.SeriesInstanceUID = ct.SeriesInstanceUID
    series.ReferencedInstanceSequence = Sequence([_sop_ref(ct)])
    ds.ReferencedSeriesSequence = Sequence([series])
    source = _sop_ref(ct)
    derivation = Dataset()
    derivation.SourceImageSequence = Sequence([source])
    frame = Dataset()
    frame.DerivationImageSequence = Sequence([derivation])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    ds.SegmentationType, ds.ContentLabel = "BINARY", "LESION"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.NumberOfFrames = int(ct.Rows), int(ct.Columns), 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    mask = np.zeros((ds.Rows, ds.Columns), bool)
    mask[ds.Rows // 4: ds.Rows // 2, ds.Columns // 4: ds.Columns // 2] = True
    ds.PixelData = np.packbits(mask.ravel(), bitorder="little").tobytes()
    ds["PixelData"].VR = "OB"
    return ds
