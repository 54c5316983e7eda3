"""Mammography and breast tomosynthesis test objects (issue 7): Digital Mammography For
Presentation / For Processing, Breast Tomosynthesis (volume and GENERATED_2D, Hologic C-View),
tomosynthesis encoded as CT (MAMMOMAT), with the codes, orientations and modules a real
modality writes; small pixel arrays by default (``size``), realistic sizes on request."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MG_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
BTO = "1.2.840.10008.5.1.4.1.1.13.1.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
# view -> (SRT, SCT, meaning)
VIEW_CODES = {
    "CC": ("R-10242", "399162004", "cranio-caudal"), "MLO": ("R-10226", "399368009", "medio-lateral oblique"),
    "ML": ("R-10224", "399260004", "medio-lateral"), "LM": ("R-10228", "399352003", "latero-medial"),
    "LMO": ("R-10230", "399099002", "latero-medial oblique"),
    "XCCL": ("R-1024A", "399192008", "cranio-caudal exaggerated laterally"),
    "XCCM": ("R-1024B", "399101009", "cranio-caudal exaggerated medially"),
    "XCC": ("R-102CF", "399265009", "exaggerated cranio-caudal"),
    "FB": ("R-10244", "399196006", "caudo-cranial (from below)"),
    "SIO": ("R-102D0", "399188001", "superolateral to inferomedial oblique"),
    "ISO": ("R-40AAA", "441555000", "inferomedial to superolateral oblique"),
}
MODIFIER_CODES = {"M": ("R-102D6", "399163009", "Magnification"), "S": ("R-102D7", "399055006", "Spot Compression"),
                  "ID": ("R-102D5", "399209000", "Implant Displaced"), "RL": ("R-102D3", "399197002", "Rolled Lateral"),
                  "RM": ("R-102D4", "399226006", "Rolled Medial"), "AT": ("R-102D1", "399011000", "Axillary Tail"),
                  "CV": ("R-102D2", "399161006", "Cleavage"), "TAN": ("R-102C2", "399110001", "Tangential")}
# the orientation a modality writes for the standard display of each view (PS3.17 Annex A)
STANDARD_ORIENTATION = {("R", "cc"): ("P", "L"), ("L", "cc"): ("A", "R"),
                        ("R", "lateral"): ("P", "F"), ("L", "lateral"): ("A", "F")}
CC_FAMILY = {"CC", "XCCL", "XCCM", "XCC", "FB"}


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def view_code(view: str, scheme: str = "SCT", modifiers: tuple[str, ...] = ()) -> Dataset:
    srt, sct, meaning = VIEW_CODES[view]
    item = code(sct if scheme == "SCT" else srt, scheme, meaning)
    item.ViewModifierCodeSequence = Sequence(
        [code(MODIFIER_CODES[m][1] if scheme == "SCT" else MODIFIER_CODES[m][0], scheme, MODIFIER_CODES[m][2])
         for m in modifiers])
    return item


def standard_orientation(laterality: str, view: str) -> tuple[str, str]:
    return STANDARD_ORIENTATION[(laterality, "cc" if view in CC_FAMILY else "lateral")]


def _patient_study(ds: Dataset, patient: str, study: str, date: str) -> None:
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = f"Breast^{patient}", patient, "19650412", "F"
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study, date, "091500"
    ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = f"ACC{date}", "1", ""
    ds.StudyDescription = "Screening mammography"


def mammogram(laterality: str, view: str, *, study: str | None = None, patient: str = "MG001",
              date: str = "20260310", scheme: str = "SCT", modifiers: tuple[str, ...] = (),
              orientation: tuple[str, str] | None = None, size: tuple[int, int] = (64, 48),
              sop_class: str = MG_PRESENTATION, bits: int = 12, series: str | None = None) -> Dataset:
    """A Digital Mammography X-Ray image of one breast: a bright half-ellipse of 'tissue'
    against the chest wall side the orientation implies, so hanging can be checked on
    screenshots (the tissue must touch the centre line)."""
    ds = Dataset()
    _patient_study(ds, patient, study or generate_uid(), date)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "MG", series or generate_uid(), 1, 1
    ds.Manufacturer, ds.ManufacturerModelName = "SIEMENS", "MAMMOMAT Revelation"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", ""] if sop_class == MG_PRESENTATION else ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION" if sop_class == MG_PRESENTATION else "FOR PROCESSING"
    ds.ImageLaterality, ds.Laterality = laterality, laterality
    ds.ViewPosition = view
    ds.ViewCodeSequence = Sequence([view_code(view, scheme, modifiers)])
    row, col = orientation or standard_orientation(laterality, view)
    ds.PatientOrientation = [row, col]
    ds.AcquisitionDate, ds.AcquisitionTime, ds.ContentDate, ds.ContentTime = date, "092000", date, "092000"
    ds.BodyPartExamined, ds.BreastImplantPresent = "BREAST", "NO"
    ds.ImagerPixelSpacing, ds.EstimatedRadiographicMagnificationFactor = [0.085, 0.085], 1.08
    ds.PixelSpacing = [0.0787, 0.0787]
    ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = 650.0, 602.0
    ds.KVP, ds.ExposureTime, ds.Exposure, ds.BodyPartThickness, ds.CompressionForce = 29, 1200, 90, 52, 110
    ds.AnodeTargetMaterial, ds.FilterMaterial = "TUNGSTEN", "RHODIUM"
    ds.WindowCenter, ds.WindowWidth, ds.WindowCenterWidthExplanation = [2047, 1800], [4095, 2600], ["NORMAL", "HARD"]
    ds.VOILUTFunction = "SIGMOID"
    ds.PresentationLUTShape = "IDENTITY"
    ds.Rows, ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.BurnedInAnnotation, ds.LossyImageCompression = "NO", "00"
    ds.PixelData = breast_pixels(size, row, bits).tobytes()
    _meta(ds)
    return ds


def breast_pixels(size: tuple[int, int], row_direction: str, bits: int = 12) -> np.ndarray:
    """Tissue on the chest-wall side: the row runs toward the chest wall (posterior, 'P') ->
    the wall is at the last column; 'A' -> at the first."""
    rows, cols = size
    y, x = np.mgrid[0:rows, 0:cols]
    wall = cols - 1 if row_direction.startswith("P") else 0
    inside = ((x - wall) / (0.8 * cols)) ** 2 + ((y - rows / 2) / (0.45 * rows)) ** 2 <= 1
    img = np.where(inside, int(0.7 * (2 ** bits - 1)), int(0.05 * (2 ** bits - 1))).astype(np.uint16)
    return img


def tomo_volume(laterality: str, view: str, *, frames: int = 5, study: str | None = None, patient: str = "MG001",
                date: str = "20260310", size: tuple[int, int] = (48, 40), shared_anatomy: bool = True,
                generated_2d: bool = False) -> Dataset:
    """Breast Tomosynthesis Image Storage: one volume (or a GENERATED_2D view, one frame),
    Frame Anatomy (Frame Laterality) in the shared functional groups."""
    ds = Dataset()
    _patient_study(ds, patient, study or generate_uid(), date)
    frames = 1 if generated_2d else frames
    ds.SOPClassUID, ds.SOPInstanceUID = BTO, generate_uid()
    ds.AcquisitionDate, ds.AcquisitionTime = date, "092500"
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "MG", generate_uid(), 2, 1
    ds.Manufacturer, ds.ManufacturerModelName = "SIEMENS", "MAMMOMAT Revelation"
    ds.ImageType = ["DERIVED", "PRIMARY", "TOMOSYNTHESIS", "GENERATED_2D" if generated_2d else "NONE"]
    ds.ViewCodeSequence = Sequence([view_code(view)])
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.FrameOfReferenceUID = generate_uid()
    row, col = standard_orientation(laterality, view)
    ds.PatientOrientation = [row, col]
    shared = Dataset()
    anatomy = Dataset()
    anatomy.FrameLaterality = laterality
    anatomy.AnatomicRegionSequence = Sequence([code("76752008", "SCT", "Breast")])
    if shared_anatomy:
        shared.FrameAnatomySequence = Sequence([anatomy])
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.085, 0.085], 1.0
    shared.PixelMeasuresSequence = Sequence([measures])
    plane = Dataset()
    plane.ImageOrientationPatient = [0, 1, 0, 1, 0, 0] if laterality == "R" else [0, -1, 0, -1, 0, 0]
    shared.PlaneOrientationSequence = Sequence([plane])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for f in range(frames):
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = [0.0, 0.0, float(f)]
        item.PlanePositionSequence = Sequence([position])
        if not shared_anatomy:
            item.FrameAnatomySequence = Sequence([anatomy])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    base = breast_pixels(size, row)
    ds.PixelData = np.stack([base + f for f in range(frames)]).astype(np.uint16).tobytes()
    _meta(ds)
    return ds


def ct_tomo_slices(laterality: str, view: str, *, slices: int = 4, study: str | None = None,
                   model: str = "MAMMOMAT Inspiration", size: tuple[int, int] = (40, 32)) -> list[Dataset]:
    """Tomosynthesis encoded as CT Image Storage (Table 8-8): one series, one volume."""
    study, series = study or generate_uid(), generate_uid()
    out = []
    for i in range(slices):
        ds = Dataset()
        _patient_study(ds, "MG001", study, "20260310")
        ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "CT", series, 3, i + 1
        ds.Manufacturer, ds.ManufacturerModelName = "SIEMENS", model
        ds.ImageType = ["DERIVED", "PRIMARY", "TOMOSYNTHESIS"]
        ds.ImageLaterality = laterality
        ds.ViewCodeSequence = Sequence([view_code(view)])
        # CC: rows toward posterior (right breast) / anterior (left), columns across
        ds.ImageOrientationPatient = [0, 1, 0, 1, 0, 0] if laterality == "R" else [0, -1, 0, -1, 0, 0]
        ds.ImagePositionPatient = [0.0, 0.0, float(i)]
        ds.FrameOfReferenceUID = ds.SeriesInstanceUID
        ds.PixelSpacing, ds.SliceThickness = [0.085, 0.085], 1.0
        ds.Rows, ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = breast_pixels(size, "P" if laterality == "R" else "A").tobytes()
        _meta(ds)
        out.append(ds)
    return out


def _meta(ds: Dataset) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID


# -- Mammography CAD SR (TID 4000) ------------------------------------------------------------
CAD_SR = "1.2.840.10008.5.1.4.1.1.88.50"


def _content(relationship: str, value_type: str, concept: Dataset, **values) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = relationship, value_type
    item.ConceptNameCodeSequence = Sequence([concept])
    for k, v in values.items():
        setattr(item, k, v)
    return item


def finding(value: str, scheme: str, meaning: str, *, intent: str | None = "111150", image: str | None = None,
            graphic: str = "POLYLINE", points: list[float] | None = None, children: list[Dataset] = (),
            operating_point: float | None = None) -> Dataset:
    """A Single Image Finding (TID 4006) with its rendering intent, outline and algorithm."""
    item = _content("CONTAINS", "CODE", code("111059", "DCM", "Single Image Finding"),
                    ConceptCodeSequence=Sequence([code(value, scheme, meaning)]))
    kids = []
    if intent is not None:
        words = {"111150": "Presentation Required: Rendering device is expected to present",
                 "111151": "Presentation Optional: Rendering device may present",
                 "111152": "Not for Presentation: Rendering device expected not to present"}[intent]
        kids.append(_content("HAS PROPERTIES", "CODE", code("111056", "DCM", "Rendering Intent"),
                             ConceptCodeSequence=Sequence([code(intent, "DCM", words)])))
    if points is not None:
        outline = _content("HAS PROPERTIES", "SCOORD", code("111041", "DCM", "Outline"),
                           GraphicType=graphic, GraphicData=points)
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = MG_PRESENTATION, image
        outline.ContentSequence = Sequence([_content("SELECTED FROM", "IMAGE", code("111040", "DCM", "Original Source"),
                                                     ReferencedSOPSequence=Sequence([ref]))])
        del outline.ContentSequence[0].ConceptNameCodeSequence  # IMAGE items under SCOORD carry no concept name
        kids.append(outline)
    kids.append(_content("HAS PROPERTIES", "TEXT", code("111001", "DCM", "Algorithm Name"), TextValue="CalcFinder"))
    kids.append(_content("HAS PROPERTIES", "TEXT", code("111003", "DCM", "Algorithm Version"), TextValue="2.1"))
    if operating_point is not None:
        measured = Dataset()
        measured.NumericValue = operating_point
        measured.MeasurementUnitsCodeSequence = Sequence([code("1", "UCUM", "no units")])
        kids.append(_content("HAS PROPERTIES", "NUM", code("111071", "DCM", "CAD Operating Point"),
                             MeasuredValueSequence=Sequence([measured])))
    item.ContentSequence = Sequence(kids + list(children))
    return item


def cad_report(study: str, findings: list[Dataset], *, summary: str = "111242",
               manufacturer: str = "iCAD, Inc.", software: str = "7.2-H+") -> Dataset:
    """A Mammography CAD SR: the summary (CID 6047) and one impression holding ``findings``."""
    ds = Dataset()
    _patient_study(ds, "MG001", study, "20260310")
    ds.SOPClassUID, ds.SOPInstanceUID = CAD_SR, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "SR", generate_uid(), 900, 1
    ds.Manufacturer, ds.SoftwareVersions = manufacturer, software
    ds.ContentDate, ds.ContentTime = "20260310", "093000"
    ds.CompletionFlag, ds.VerificationFlag, ds.ValueType = "COMPLETE", "UNVERIFIED", "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([code("111036", "DCM", "Mammography CAD Report")])
    ds.ContinuityOfContent = "SEPARATE"
    words = {"111241": "All algorithms succeeded; without findings", "111242": "All algorithms succeeded; with findings",
             "111245": "No algorithms succeeded; without findings"}
    impression = _content("CONTAINS", "CONTAINER", code("111034", "DCM", "Individual Impression/Recommendation"),
                          ContinuityOfContent="SEPARATE", ContentSequence=Sequence(findings))
    ds.ContentSequence = Sequence([
        _content("CONTAINS", "CODE", code("111017", "DCM", "CAD Processing and Findings Summary"),
                 ConceptCodeSequence=Sequence([code(summary, "DCM", words.get(summary, summary))])),
        impression])
    _meta(ds)
    return ds
