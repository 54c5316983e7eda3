"""Mammography and breast tomosynthesis test objects (issue 7): Digital Mammography For
Presentation / For Processing, Breast Tomosynthesis (volume and GENERATED_2D, Hologic C-View),
tomosynthesis encoded as CT (MAMMOMAT), Mammography CAD SR, with the codes, orientations and
modules a real modality writes (dciodvfy finds no error: tests/unit/test_mammo_samples.py);
tomosynthesis slices hold lesions in focus at their own depth (``lesions``); small pixel
arrays by default (``size``), realistic sizes on request."""

from __future__ import annotations

import copy

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
BREAST = ("76752008", "SCT", "Breast")  # the Anatomic Region of every breast image
PIXEL_SPACING = 0.085  # mm, the detector's pixel pitch; reconstructed tomosynthesis slices keep it


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


def _equipment(ds: Dataset, model: str) -> None:
    # the Enhanced General Equipment module makes serial number and software version Type 1
    ds.Manufacturer, ds.ManufacturerModelName = "SIEMENS", model
    ds.DeviceSerialNumber, ds.SoftwareVersions = "21043", "VB10A"


def _unsigned(ds: Dataset, bits: int = 12) -> None:
    """Image Pixel: one unsigned MONOCHROME2 sample in 16-bit words (Table 8-12)."""
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0


def _identity_rescale(item: Dataset) -> Dataset:
    # stored values are the modality's own unitless values ("US": unspecified)
    item.RescaleIntercept, item.RescaleSlope, item.RescaleType = 0, 1, "US"
    return item


def mammogram(laterality: str, view: str, *, study: str | None = None, patient: str = "MG001",
              date: str = "20260310", scheme: str = "SCT", modifiers: tuple[str, ...] = (),
              orientation: tuple[str, str] | None = None, size: tuple[int, int] = (64, 48),
              sop_class: str = MG_PRESENTATION, bits: int = 12, series: str | None = None) -> Dataset:
    """A Digital Mammography X-Ray image of one breast: a bright half-ellipse of 'tissue'
    against the chest wall side the orientation implies, so hanging can be checked on
    screenshots (the tissue must touch the centre line)."""
    presentation = sop_class == MG_PRESENTATION
    ds = Dataset()
    _patient_study(ds, patient, study or generate_uid(), date)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "MG", series or generate_uid(), 1, 1
    _equipment(ds, "MAMMOMAT Revelation")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", ""] if presentation else ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION" if presentation else "FOR PROCESSING"
    # Image Laterality only: the series' Laterality is forbidden when the image has one (2C)
    ds.ImageLaterality = laterality
    ds.ViewPosition = view
    ds.ViewCodeSequence = Sequence([view_code(view, scheme, modifiers)])
    ds.AnatomicRegionSequence = Sequence([code(*BREAST)])
    ds.PositionerType, ds.OrganExposed, ds.DetectorType = "MAMMOGRAPHIC", "BREAST", "DIRECT"  # a-Se detector
    row, col = orientation or standard_orientation(laterality, view)
    ds.PatientOrientation = [row, col]
    ds.AcquisitionDate, ds.AcquisitionTime, ds.ContentDate, ds.ContentTime = date, "092000", date, "092000"
    ds.AcquisitionContextSequence = Sequence()
    ds.BodyPartExamined, ds.BreastImplantPresent = "BREAST", "NO"
    ds.ImagerPixelSpacing, ds.EstimatedRadiographicMagnificationFactor = [PIXEL_SPACING, PIXEL_SPACING], 1.08
    ds.PixelSpacing = [0.0787, 0.0787]
    # Pixel Spacing is the Imager Pixel Spacing at the breast: corrected by the magnification
    ds.PixelSpacingCalibrationType, ds.PixelSpacingCalibrationDescription = "GEOMETRY", "magnification corrected"
    ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = 650.0, 601.85  # 650 / 601.85 = 1.08
    ds.KVP, ds.ExposureTime, ds.Exposure, ds.BodyPartThickness, ds.CompressionForce = 29, 1200, 90, 52, 110
    ds.AnodeTargetMaterial, ds.FilterMaterial = "TUNGSTEN", "RHODIUM"
    # tissue (attenuating) is bright: a higher value means less X-ray intensity
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LOG", -1
    _identity_rescale(ds)
    if presentation:  # a For Processing image must not carry a VOI transformation
        ds.WindowCenter, ds.WindowWidth = [2047, 1800], [4095, 2600]
        ds.WindowCenterWidthExplanation, ds.VOILUTFunction = ["NORMAL", "HARD"], "SIGMOID"
    ds.PresentationLUTShape = "IDENTITY"
    ds.Rows, ds.Columns = size
    _unsigned(ds, bits)
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


# -- tomosynthesis: geometry and slice content ---------------------------------------------
SLICE_SPACING = 1.0    # mm between reconstructed slices, equal to their thickness
BREAST_OFFSET = 100.0  # mm from the patient's midline to the centre of each breast
# (row, column, depth) of the lesions as fractions of the image and of the volume's depth.
# Columns near the middle and rows at most 0.21 from the centre line lie inside breast_pixels'
# tissue whichever side the chest wall is on, so one list serves both breasts, and a fifth
# of the image from one another and from the skin line: a lesion's neighbourhood holds no
# other sharp edge. The first, farthest in depth from the middle slice, sits where the
# tissue is widest.
_LESIONS = ((0.5, 0.5, 0.2), (0.29, 0.53, 0.5), (0.71, 0.47, 0.7))
LESION_CONTRAST = 900  # stored values above the tissue at the lesion's centre, in focus
# +- stored values of uniform noise: mild, so that a focus measure comparing slices (e.g. the
# variance of the Laplacian) still sees the lesions above the noise along the skin line
NOISE = 4
_DEPTH_SIGMA = 1.5     # slices: a lesion is sharp on its focus slice and fades within ~4
_SEED = 20260310


def lesions(size: tuple[int, int], frames: int) -> list[tuple[int, int, int]]:
    """(row, column, frame) of the centre of each bright lesion tomo_volume (and ct_tomo_slices)
    draws, frame being the 0-based slice it is in focus on: the same for a given size and
    number of slices, inside the breast for either laterality."""
    rows, cols = size
    return [(round(r * (rows - 1)), round(c * (cols - 1)), round(d * (frames - 1))) for r, c, d in _LESIONS]


def _lesion_sigma(size: tuple[int, int]) -> float:
    # ~1 mm at the detector's full size, at least a pixel wide on the tiny default images
    return max(0.8, 0.006 * min(size))


def _add_lesions(img: np.ndarray, frames: int, frame: int | None) -> None:
    """Add the lesions to ``img`` (uint16, in place) as seen on slice ``frame``: a gaussian
    spot, dimmer and wider the farther its focus (out-of-plane blur); ``frame`` None: every
    lesion in focus, as a synthesised 2D view shows them. Only a small patch around each
    lesion is computed, so a full-size slice costs little."""
    sigma0 = _lesion_sigma(img.shape)
    for row, col, focus in lesions(img.shape, frames):
        off = 0 if frame is None else abs(frame - focus)
        weight = np.exp(-0.5 * (off / _DEPTH_SIGMA) ** 2)
        if weight < 0.01:
            continue
        sigma = sigma0 * (1 + 0.5 * off)
        reach = int(np.ceil(3 * sigma))
        r0, r1 = max(row - reach, 0), min(row + reach + 1, img.shape[0])
        c0, c1 = max(col - reach, 0), min(col + reach + 1, img.shape[1])
        y, x = np.ogrid[r0 - row:r1 - row, c0 - col:c1 - col]
        spot = LESION_CONTRAST * weight * np.exp(-(y * y + x * x) / (2 * sigma * sigma))
        img[r0:r1, c0:c1] += np.rint(spot).astype(np.uint16)


def _tomo_pixels(size: tuple[int, int], row_direction: str, frames: int,
                 slices: list[int | None]) -> np.ndarray:
    """Stored values of ``slices`` (0-based frames of a ``frames``-slice volume; None: the
    synthesised 2D view) of one breast, (len(slices), rows, cols) uint16, written one by one
    into one preallocated array: breast_pixels' tissue, the lesions, and mild noise that is
    the same on every run (fixed seed)."""
    base = breast_pixels(size, row_direction)
    rng = np.random.default_rng(_SEED)
    out = np.empty((len(slices), *size), dtype=np.uint16)
    for i, frame in enumerate(slices):
        # noise drawn as unsigned offsets in 0..2*NOISE, then centred (no signed temporaries)
        np.add(base, rng.integers(0, 2 * NOISE + 1, size=size, dtype=np.uint16), out=out[i])
        out[i] -= NOISE
        _add_lesions(out[i], frames, frame)
    return out


def _slice_geometry(laterality: str, size: tuple[int, int],
                    depths: list[float]) -> tuple[list[float], list[list[float]]]:
    """Image Orientation (Patient), and the Image Position (Patient) of the slices at
    ``depths`` (0-based slice numbers; a fraction lies between two). CC rows run toward
    posterior (right breast) or anterior (left), columns across the patient, so the slice
    normal points to the feet (from the compression paddle to the detector); the slices
    follow one another along it, SLICE_SPACING apart, the first at the paddle. The chest
    wall (breast_pixels' wall column) lies in the coronal plane y = 0, the breast's centre
    row BREAST_OFFSET mm to its side of the midline."""
    orientation = [0, 1, 0, 1, 0, 0] if laterality == "R" else [0, -1, 0, -1, 0, 0]
    along_row, along_column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(along_row, along_column)
    rows, cols = size
    wall = cols - 1 if laterality == "R" else 0
    centre = np.array([-BREAST_OFFSET if laterality == "R" else BREAST_OFFSET, 0.0, 0.0])
    origin = centre - wall * PIXEL_SPACING * along_row - (rows - 1) / 2 * PIXEL_SPACING * along_column
    # rounded to fit a DS value; "+ 0.0" writes -0.0 as 0
    positions = [[round(float(v), 4) + 0.0 for v in origin + d * SLICE_SPACING * normal] for d in depths]
    return orientation, positions


def _frame_content(stack_position: int) -> Dataset:
    # one stack, one acquisition: the dimension indices are Stack ID and In-Stack Position
    item = Dataset()
    item.FrameAcquisitionNumber, item.StackID, item.InStackPositionNumber = 1, "1", stack_position
    item.DimensionIndexValues = [1, stack_position]
    return item


def _dimensions(ds: Dataset) -> None:
    """Multi-frame Dimension: frames indexed by Stack ID, then In-Stack Position Number (the
    slice's place along the normal), both in the Frame Content of each frame."""
    uid = generate_uid()
    organization = Dataset()
    organization.DimensionOrganizationUID = uid
    ds.DimensionOrganizationSequence = Sequence([organization])
    indices = []
    for pointer, label in ((0x00209056, "Stack ID"), (0x00209057, "In-Stack Position Number")):
        index = Dataset()
        index.DimensionOrganizationUID, index.DimensionIndexPointer = uid, pointer
        index.FunctionalGroupPointer, index.DimensionDescriptionLabel = 0x00209111, label  # Frame Content Sequence
        indices.append(index)
    ds.DimensionIndexSequence = Sequence(indices)


def tomo_volume(laterality: str, view: str, *, frames: int = 5, study: str | None = None, patient: str = "MG001",
                date: str = "20260310", size: tuple[int, int] = (48, 40), shared_anatomy: bool = True,
                generated_2d: bool = False, frame_of_reference: str | None = None,
                series: str | None = None) -> Dataset:
    """Breast Tomosynthesis Image Storage: one volume of ``frames`` slices, or (generated_2d)
    the single-frame GENERATED_2D view synthesised from such a volume: same size, lesions and
    (when the caller passes one ``frame_of_reference`` to both) frame of reference. Frame
    Anatomy (Frame Laterality) in the shared functional groups, or per frame."""
    volume_frames = frames
    frames = 1 if generated_2d else frames
    ds = Dataset()
    _patient_study(ds, patient, study or generate_uid(), date)
    ds.SOPClassUID, ds.SOPInstanceUID = BTO, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "MG", series or generate_uid(), 2, 1
    _equipment(ds, "MAMMOMAT Revelation")
    ds.AcquisitionDate, ds.AcquisitionTime, ds.ContentDate, ds.ContentTime = date, "092500", date, "092600"
    # X-Ray 3D Image: a reconstruction is DERIVED; the synthesised 2D view samples the whole
    # volume (a maximum intensity projection, as it shows every lesion)
    frame_type = ["DERIVED", "PRIMARY", "TOMOSYNTHESIS", "GENERATED_2D" if generated_2d else "NONE"]
    ds.ImageType = frame_type
    description = Dataset()
    description.PixelPresentation = "MONOCHROME"
    description.VolumetricProperties = "SAMPLED" if generated_2d else "VOLUME"
    description.VolumeBasedCalculationTechnique = "MAX_IP" if generated_2d else "NONE"
    ds.update(description)
    ds.ContentQualification, ds.BurnedInAnnotation, ds.LossyImageCompression = "PRODUCT", "NO", "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionContextSequence = Sequence()
    ds.ViewCodeSequence = Sequence([view_code(view)])
    ds.BreastImplantPresent = "NO"
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = size
    _unsigned(ds)
    ds.FrameOfReferenceUID = frame_of_reference or generate_uid()
    ds.PositionReferenceIndicator = ""  # Type 2: no anatomical landmark for the origin
    row, col = standard_orientation(laterality, view)
    ds.PatientOrientation = [row, col]
    _dimensions(ds)
    # the synthesised view: one plane through the middle of the volume, as thick as the volume
    depths = [(volume_frames - 1) / 2] if generated_2d else list(range(frames))
    orientation, positions = _slice_geometry(laterality, size, depths)

    shared = Dataset()
    anatomy = Dataset()
    anatomy.FrameLaterality = laterality
    anatomy.AnatomicRegionSequence = Sequence([code(*BREAST)])
    if shared_anatomy:
        shared.FrameAnatomySequence = Sequence([anatomy])
    measures = Dataset()
    measures.PixelSpacing = [PIXEL_SPACING, PIXEL_SPACING]
    measures.SliceThickness = SLICE_SPACING * (volume_frames if generated_2d else 1)
    shared.PixelMeasuresSequence = Sequence([measures])
    plane = Dataset()
    plane.ImageOrientationPatient = orientation
    shared.PlaneOrientationSequence = Sequence([plane])
    shared.PixelValueTransformationSequence = Sequence([_identity_rescale(Dataset())])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    # the X-Ray 3D Frame Type goes in every frame's group: dciodvfy does not accept it shared
    # (no Reconstruction Index: there is no X-Ray 3D Reconstruction module to point into)
    frame_type_item = Dataset()
    frame_type_item.FrameType = frame_type
    frame_type_item.update(description)
    per_frame = []
    for f, position in enumerate(positions):
        item = Dataset()
        item.FrameContentSequence = Sequence([_frame_content(f + 1)])
        item.XRay3DFrameTypeSequence = Sequence([frame_type_item])
        plane_position = Dataset()
        plane_position.ImagePositionPatient = position
        item.PlanePositionSequence = Sequence([plane_position])
        if not shared_anatomy:
            item.FrameAnatomySequence = Sequence([anatomy])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)

    slices = [None] if generated_2d else list(range(frames))
    ds.PixelData = _tomo_pixels(size, row, volume_frames, slices).tobytes()
    _meta(ds)
    return ds


def ct_tomo_slices(laterality: str, view: str, *, slices: int = 4, study: str | None = None,
                   model: str = "MAMMOMAT Inspiration", size: tuple[int, int] = (40, 32)) -> list[Dataset]:
    """Tomosynthesis encoded as CT Image Storage (Table 8-8): one series, one volume, the
    slices of tomo_volume as single-frame images."""
    study, series, frame_of_reference = study or generate_uid(), generate_uid(), generate_uid()
    orientation, positions = _slice_geometry(laterality, size, list(range(slices)))
    row, _ = standard_orientation(laterality, view)
    pixels = _tomo_pixels(size, row, slices, list(range(slices)))
    out = []
    for i in range(slices):
        ds = Dataset()
        _patient_study(ds, "MG001", study, "20260310")
        ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "CT", series, 3, i + 1
        ds.PatientPosition = ""  # Type 2C: upright, which CT's defined terms cannot say
        _equipment(ds, model)
        ds.ImageType = ["DERIVED", "PRIMARY", "TOMOSYNTHESIS"]
        ds.ImageLaterality = laterality
        item = view_code(view)
        del item.ViewModifierCodeSequence  # Type 3 here: absent rather than empty
        ds.ViewCodeSequence = Sequence([item])
        ds.AcquisitionNumber, ds.KVP = 1, 29
        ds.ImageOrientationPatient, ds.ImagePositionPatient = orientation, positions[i]
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference, ""
        ds.PixelSpacing, ds.SliceThickness = [PIXEL_SPACING, PIXEL_SPACING], SLICE_SPACING
        ds.Rows, ds.Columns = size
        _unsigned(ds)
        _identity_rescale(ds)  # not Hounsfield units: the Rescale Type says so
        ds.PixelData = pixels[i].tobytes()
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


def _referenced_images(items) -> list[Dataset]:
    """The Referenced SOP Sequence items of every IMAGE content item under ``items``."""
    found = []
    for item in items:
        if item.get("ValueType") == "IMAGE":
            found += [ref for ref in item.ReferencedSOPSequence if ref.get("ReferencedSOPInstanceUID")]
        found += _referenced_images(item.get("ContentSequence") or [])
    return found


def _evidence(study: str, series: str, images: list[Dataset]) -> Sequence:
    """Current Requested Procedure Evidence: the images the findings are on, which an SR must
    list (Hierarchical SOP Instance Reference), in one series of ``study``."""
    unique = {str(ref.ReferencedSOPInstanceUID): ref for ref in images}
    series_item = Dataset()
    series_item.SeriesInstanceUID = series
    series_item.ReferencedSOPSequence = Sequence([copy.deepcopy(ref) for ref in unique.values()])
    study_item = Dataset()
    study_item.StudyInstanceUID = study
    study_item.ReferencedSeriesSequence = Sequence([series_item])
    return Sequence([study_item])


def cad_report(study: str, findings: list[Dataset], *, summary: str = "111242",
               manufacturer: str = "iCAD, Inc.", software: str = "7.2-H+",
               image_series: str | None = None) -> Dataset:
    """A Mammography CAD SR: the summary (CID 6047) and one impression holding ``findings``;
    the images they are on listed as evidence in ``image_series`` (default: a new UID)."""
    ds = Dataset()
    _patient_study(ds, "MG001", study, "20260310")
    ds.SOPClassUID, ds.SOPInstanceUID = CAD_SR, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "SR", generate_uid(), 900, 1
    ds.Manufacturer, ds.SoftwareVersions = manufacturer, software
    ds.ContentDate, ds.ContentTime = "20260310", "093000"
    # Type 2, empty: the CAD was not run under a worklist or a performed procedure step
    ds.ReferencedPerformedProcedureStepSequence, ds.PerformedProcedureCodeSequence = Sequence(), Sequence()
    ds.CompletionFlag, ds.VerificationFlag, ds.ValueType = "COMPLETE", "UNVERIFIED", "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([code("111036", "DCM", "Mammography CAD Report")])
    ds.ContinuityOfContent = "SEPARATE"
    words = {"111241": "All algorithms succeeded; without findings", "111242": "All algorithms succeeded; with findings",
             "111245": "No algorithms succeeded; without findings"}
    content = [_content("CONTAINS", "CODE", code("111017", "DCM", "CAD Processing and Findings Summary"),
                        ConceptCodeSequence=Sequence([code(summary, "DCM", words.get(summary, summary))]))]
    if findings:  # no empty impression: a container's Content Sequence must have items
        content.append(_content("CONTAINS", "CONTAINER", code("111034", "DCM", "Individual Impression/Recommendation"),
                                ContinuityOfContent="SEPARATE", ContentSequence=Sequence(findings)))
    ds.ContentSequence = Sequence(content)
    images = _referenced_images(findings)
    if images:
        ds.CurrentRequestedProcedureEvidenceSequence = _evidence(study, image_series or generate_uid(), images)
    _meta(ds)
    return ds
