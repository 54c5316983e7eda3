"""Transfer syntaxes: spec Table 4-5 plus what Lightbox also accepts as a Storage SCP."""

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    RLELossless,
)

# Spec Table 4-5, in the reference's order of preference.
TABLE_4_5 = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
    JPEG2000Lossless,
    RLELossless,
    JPEGExtended12Bit,
    JPEGBaseline8Bit,
    JPEG2000,
)

# What the Storage SCP accepts: Table 4-5, plus Explicit VR Big Endian (retired but still
# sent by old modalities) and Deflate. Uncompressed syntaxes first so that a peer offering
# several gets the cheapest to store and to read back.
STORAGE_SCP = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGLosslessSV1,
    JPEG2000Lossless,
    RLELossless,
    JPEGExtended12Bit,
    JPEGBaseline8Bit,
    JPEG2000,
)

# Non-storage services (verification, commitment, query) take the uncompressed ones only.
UNCOMPRESSED = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian)

# Short names for the transfer syntaxes a remote node may be sent in ('lightbox nodes add
# --syntaxes'): the uncompressed ones and what app.dicom.compression makes.
SYNTAX_NAMES = {
    "explicit": ExplicitVRLittleEndian, "implicit": ImplicitVRLittleEndian, "big-endian": ExplicitVRBigEndian,
    "jpeg-lossless": JPEGLosslessSV1, "j2k-lossless": JPEG2000Lossless, "rle": RLELossless,
    "jpeg-extended": JPEGExtended12Bit, "jpeg-baseline": JPEGBaseline8Bit, "j2k": JPEG2000,
}
