"""Objects an archive has no SOP class for, packed into a Basic Text SR or a Secondary
Capture image (spec §4.2.1.3.1.4, Table 4-8), and unpacked when they come back.

A packed object is a valid instance of its carrier class in the original's patient and study,
in a series of its own ("Packed for archiving: <class>"), whose UIDs derive from the
original's (packing twice gives the same object, which the archive keeps once). The whole
original Part-10 file rides in a private block of group 0029 (the groups the reference names
for its own packing); the SR's text and the SC's pixels say, in words a PACS user reads, what
it is and that Lightbox restores it. Lightbox stores what it receives packed as the original
(app.store.ingest), so a study retrieved from such an archive comes back as it was sent.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from app.dicom.derived import copy_patient_study, derived_uid

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CARRIERS = {"sr": BASIC_TEXT_SR, "sc": SECONDARY_CAPTURE}  # a remote node's "pack" option
CREATOR = "LIGHTBOX PACKED OBJECT"
_GROUP = 0x0029
_TYPE, _VERSION, _PAYLOAD = 0x08, 0x09, 0x10  # the element offsets the reference names (0029,xx08-10)
PACKED_TYPE = "PACKED"  # only archival: the payload is the object
FORMAT_VERSION = "1"


@cache
def packable() -> dict[str, str]:
    """Table 4-8: SOP Class UID -> name."""
    from app.resources import read_tsv
    return {uid: name for uid, name in read_tsv("spec", "packed_sop_classes.tsv")}


def pack(original: bytes, carrier: str) -> Dataset:
    """The ``carrier`` ("sr" or "sc") instance that holds ``original`` (a Part-10 file of a
    Table 4-8 class). ValueError when it is not one."""
    header = _read(original, stop_before_pixels=True)
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class not in packable():
        raise ValueError(f"{UID(sop_class).name or sop_class} is not a class Table 4-8 allows to pack")
    if carrier not in CARRIERS:
        raise ValueError(f"unknown packing '{carrier}': choose {' or '.join(CARRIERS)}")
    source = str(header.SOPInstanceUID)
    name = packable()[sop_class]
    out = Dataset()
    copy_patient_study(header, out)
    now = datetime.now()
    out.SOPClassUID = CARRIERS[carrier]
    out.SOPInstanceUID = derived_uid("packed", carrier, "instance", source)
    out.SeriesInstanceUID = derived_uid("packed", carrier, "series", str(header.get("SeriesInstanceUID", source)))
    out.SeriesNumber = int(header.get("SeriesNumber", 0) or 0) + 9100
    out.SeriesDescription = f"Packed for archiving: {name}"[:64]
    out.InstanceNumber = int(header.get("InstanceNumber", 1) or 1)
    out.Manufacturer = "Lightbox"
    out.ContentDate, out.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    lines = [f"This object holds a {name} instance packed for an archive without its SOP class.",
             f"Original SOP Class UID: {sop_class}",
             f"Original SOP Instance UID: {source}",
             f"Original Series Instance UID: {header.get('SeriesInstanceUID', '')}",
             "Lightbox restores the original when it receives this object."]
    if carrier == "sr":
        _as_sr(out, lines)
    else:
        _as_secondary_capture(out, [f"Packed {name}", "Retrieve into Lightbox to open it"])
    block = out.private_block(_GROUP, CREATOR, create=True)
    block.add_new(_TYPE, "CS", PACKED_TYPE)
    block.add_new(_VERSION, "LO", FORMAT_VERSION)
    block.add_new(_PAYLOAD, "OB", bytes(original) + (b"\0" if len(original) % 2 else b""))
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.file_meta.MediaStorageSOPClassUID, out.file_meta.MediaStorageSOPInstanceUID = out.SOPClassUID, \
        out.SOPInstanceUID
    return out


def payload(ds: Dataset) -> bytes | None:
    """The original Part-10 file a packed object holds; None if ``ds`` is not one of ours."""
    try:
        block = ds.private_block(_GROUP, CREATOR)
        if str(block[_TYPE].value).strip() != PACKED_TYPE:
            return None
        data = bytes(block[_PAYLOAD].value)
    except (KeyError, ValueError):
        return None
    return data if data[128:132] == b"DICM" else None


_CREATOR_BYTES = re.compile(re.escape(CREATOR.encode()))


def may_be_packed(sop_class: str | None, raw) -> bool:
    """Cheap look before parsing: a carrier class with our private creator in it (searched
    in place: a Secondary Capture's megabytes are not copied for it on the store path)."""
    return sop_class in (BASIC_TEXT_SR, SECONDARY_CAPTURE) and _CREATOR_BYTES.search(raw) is not None


def _read(data: bytes, stop_before_pixels: bool = False) -> Dataset:
    from io import BytesIO

    import pydicom
    return pydicom.dcmread(BytesIO(data), stop_before_pixels=stop_before_pixels)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def _as_sr(out: Dataset, lines: list[str]) -> None:
    """Basic Text SR (PS3.3 A.35.1): a CONTAINER of TEXT comments."""
    out.Modality = "SR"
    out.ReferencedPerformedProcedureStepSequence = Sequence()
    out.CompletionFlag, out.VerificationFlag = "COMPLETE", "UNVERIFIED"
    out.PerformedProcedureCodeSequence = Sequence()
    out.ValueType = "CONTAINER"
    out.ConceptNameCodeSequence = Sequence([_code("PACKED", "99LIGHTBOX", "Packed DICOM object")])
    out.ContinuityOfContent = "SEPARATE"
    items = []
    for line in lines:
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
        item.ConceptNameCodeSequence = Sequence([_code("121106", "DCM", "Comment")])
        item.TextValue = line
        items.append(item)
    out.ContentSequence = Sequence(items)


def _as_secondary_capture(out: Dataset, lines: list[str]) -> None:
    """Secondary Capture Image (PS3.3 A.8.1) whose pixels say what it is."""
    pixels = _text_image(lines)
    out.Modality = "OT"
    out.ConversionType = "WSD"
    out.ImageType = ["DERIVED", "SECONDARY"]
    out.PatientOrientation = ""
    out.Laterality = ""  # Type 2C; dciodvfy cannot evaluate the condition and wants it present
    out.SamplesPerPixel, out.PhotometricInterpretation = 1, "MONOCHROME2"
    out.Rows, out.Columns = pixels.shape
    out.BitsAllocated, out.BitsStored, out.HighBit, out.PixelRepresentation = 8, 8, 7, 0
    out.PixelData = pixels.tobytes()
    out["PixelData"].VR = "OB"


def _text_image(lines: list[str]):
    """White text on black, rendered by VTK's FreeType text renderer (no window needed)."""
    import importlib

    import numpy as np
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkRenderingCore import vtkTextProperty, vtkTextRenderer

    importlib.import_module("vtkmodules.vtkRenderingFreeType")  # registers the FreeType text renderer
    prop = vtkTextProperty()
    prop.SetFontSize(18)
    prop.SetColor(1.0, 1.0, 1.0)
    prop.SetJustificationToCentered()
    image, size = vtkImageData(), [0, 0]
    rows, cols = 256, 512
    canvas = np.zeros((rows, cols), np.uint8)
    if vtkTextRenderer.GetInstance().RenderString(prop, "\n".join(lines), image, size, 96):
        w, h, _ = image.GetDimensions()
        rgba = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, -1)
        # the text fills the bottom-left size[0] x size[1] of a power-of-two buffer; alpha is
        # the glyph coverage, and VTK's rows run bottom-up
        text = rgba[:size[1], :size[0], 3][::-1][:rows, :cols]
        top, left = (rows - text.shape[0]) // 2, (cols - text.shape[1]) // 2
        canvas[top:top + text.shape[0], left:left + text.shape[1]] = text
    return canvas
