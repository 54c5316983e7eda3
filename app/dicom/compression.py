"""Compressing on send (spec §4.2.1.3.1.2): the reference's criteria per transfer syntax, as
data, and a maintained encoder for every syntax we offer (we never offer one we cannot make):
libjpeg-turbo 3 through imagecodecs for JPEG lossless (process 14, selection value 1) and
JPEG baseline / extended, OpenJPEG through pydicom/pylibjpeg for JPEG 2000, pydicom's own RLE.

Our reading of the criteria: JPEG lossless and lossy as the reference lists them (its
YBR_FULL/YBR_FULL_422 sources left out: we would have to re-subsample them); JPEG 2000
lossless for any uncompressed image (the reference's row is garbled, and OpenJPEG keeps
every bit depth and sign exactly); RLE (listed in Table 4-5 without criteria) for any
uncompressed image of 8 or 16 bits allocated. Lossy syntaxes only when the node accepted no
lossless or uncompressed one for the class (the reference's last lossy criterion)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    RLELossless,
)

MONO = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class Criteria:
    photometric: tuple[str, ...] | None  # None: any
    bits_allocated: tuple[int, ...] | None
    bits_stored: tuple[int, ...] | None
    high_bit_below_stored: bool           # High Bit = Bits Stored - 1
    unsigned_only: bool                   # Pixel Representation 0
    lossy: bool


CRITERIA = {
    JPEGLosslessSV1: Criteria(MONO + ("RGB",), (8, 16), (8, 12), True, True, False),
    JPEGBaseline8Bit: Criteria(MONO + ("RGB",), (8,), (8,), True, True, True),
    JPEGExtended12Bit: Criteria(MONO, (16,), (12,), True, True, True),
    JPEG2000Lossless: Criteria(MONO + ("RGB",), (8, 16), None, False, False, False),
    JPEG2000: Criteria(MONO + ("RGB",), (8, 16), (8, 12), False, False, True),
    RLELossless: Criteria(MONO + ("RGB",), (8, 16), None, False, False, False),
}
PRODUCIBLE = tuple(CRITERIA)
LOSSY_QUALITY = 90      # JPEG quality of the lossy syntaxes
J2K_LOSSY_PSNR = 60     # dB of JPEG 2000 lossy: an RMS error of ~4 in 12 bits, quality not a fixed ratio


# openjpeg encodes with 6 resolution levels (pylibjpeg does not let us choose fewer): a side
# of fewer than 2**5 pixels cannot be coded (a small RT dose grid, an icon-sized image)
J2K_MIN_SIDE = 32


def eligible(ds: Dataset, ts: str) -> bool:
    """Whether ``ds`` (an uncompressed image) may be compressed to ``ts`` (§4.2.1.3.1.2)."""
    c = CRITERIA.get(UID(ts))
    if c is None or "PixelData" not in ds:
        return False
    try:
        photometric = str(ds.PhotometricInterpretation)
        allocated, stored = int(ds.BitsAllocated), int(ds.BitsStored)
        high, signed = int(ds.HighBit), int(ds.get("PixelRepresentation", 0))
        side = min(int(ds.Rows), int(ds.Columns))
    except (AttributeError, TypeError, ValueError):
        return False
    if UID(ts) in (JPEG2000Lossless, JPEG2000) and side < J2K_MIN_SIDE:
        return False
    return ((c.photometric is None or photometric in c.photometric)
            and (c.bits_allocated is None or allocated in c.bits_allocated)
            and (c.bits_stored is None or stored in c.bits_stored)
            and (not c.high_bit_below_stored or high == stored - 1)
            and (not c.unsigned_only or signed == 0))


def is_lossy(ts: str) -> bool:
    c = CRITERIA.get(UID(ts))
    return bool(c and c.lossy)


def compress(ds: Dataset, ts: str) -> Dataset:
    """``ds`` (any transfer syntax; decompressed first) in ``ts``; the same instance."""
    ts = UID(ts)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress(generate_instance_uid=False)
    if ts in (JPEG2000Lossless, JPEG2000, RLELossless):
        kwargs = {"j2k_psnr": [J2K_LOSSY_PSNR]} if ts == JPEG2000 else {}
        ds.compress(ts, encoding_plugin="pydicom" if ts == RLELossless else "pylibjpeg",
                    generate_instance_uid=False, **kwargs)
    else:
        _jpeg(ds, ts)
    if is_lossy(ts):
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_15444_1" if ts == JPEG2000 else "ISO_10918_1"
    return ds


def _jpeg(ds: Dataset, ts: UID) -> None:
    import imagecodecs
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = ds.pixel_array
    arrays = list(pixels) if frames > 1 else [pixels]
    colour = int(ds.get("SamplesPerPixel", 1)) == 3
    out = []
    for a in arrays:
        a = np.ascontiguousarray(a)
        if ts == JPEGLosslessSV1:
            out.append(imagecodecs.jpeg8_encode(a, lossless=True, predictor=1, bitspersample=int(ds.BitsStored),
                                                colorspace="RGB" if colour else None,
                                                outcolorspace="RGB" if colour else None))
        elif ts == JPEGExtended12Bit:
            out.append(imagecodecs.jpeg8_encode(a.astype(np.uint16), level=LOSSY_QUALITY, bitspersample=12))
        else:
            out.append(imagecodecs.jpeg8_encode(a.astype(np.uint8), level=LOSSY_QUALITY,
                                                subsampling="422" if colour else None))
    ds.PixelData = encapsulate(out)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if colour and ts != JPEGLosslessSV1:
        ds.PhotometricInterpretation = "YBR_FULL_422"  # what a baseline JPEG of an RGB image holds
    if colour:
        ds.PlanarConfiguration = 0
    ds.file_meta.TransferSyntaxUID = ts

