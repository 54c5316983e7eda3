"""A faster decoder for grayscale JPEG, registered with pydicom.

Mammograms and CR/DX images arrive JPEG lossless (Process 14, SV1) at 13 megapixels and
more. libjpeg-turbo 3 (through imagecodecs) decodes them 4 to 7 times faster than the
libjpeg behind pylibjpeg, and releases the interpreter while it works, so the viewer's
decode threads run on every core. It is used for single-sample JPEG only: for colour
JPEG the two libraries disagree about when a YCbCr transform applies, and pylibjpeg's
behaviour is what pydicom's colour handling expects. Any frame it fails on is decoded again
by pydicom's own plugins.

pydicom still does everything around the decode (frame extraction, sign correction, bit
depth): this module only turns one encoded frame into bytes, as a pydicom plugin does.
"""

from __future__ import annotations

import logging

from pydicom import uid

log = logging.getLogger(__name__)

PLUGIN = "imagecodecs"
SYNTAXES = (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1)

# pydicom's plugin contract: what the plugin needs, per transfer syntax
DECODER_DEPENDENCIES = {ts: ("imagecodecs>=2024.1",) for ts in SYNTAXES}

try:
    import imagecodecs
    _AVAILABLE = bool(getattr(imagecodecs, "JPEG8", None)) and imagecodecs.JPEG8.available
except ImportError:  # the viewer still works, through pylibjpeg
    imagecodecs = None
    _AVAILABLE = False


def is_available(transfer_syntax: str) -> bool:
    return _AVAILABLE and transfer_syntax in SYNTAXES


def decode_frame(src: bytes, runner) -> bytes:
    """One encoded frame -> its pixel bytes, as pydicom's decode runner expects them."""
    if bytes(src[-4:]).rstrip(b"\0")[-2:] != b"\xff\xd9":
        # libjpeg-turbo decodes a truncated stream without complaint (the rest grey); the
        # reader must be told the image is incomplete, as pydicom's plugins do
        raise ValueError("the JPEG data ends before its end-of-image marker (truncated)")
    arr = imagecodecs.jpeg8_decode(src)
    if arr.ndim != 2:
        raise ValueError("not a single-sample JPEG frame")
    itemsize = (int(runner.bits_allocated) + 7) // 8
    if arr.dtype.itemsize != itemsize:  # e.g. 8-bit lossless data in 16-bit pixels
        arr = arr.astype(f"<u{itemsize}")
    return arr.tobytes()


def decode_direct(ds, frame: int = 0):
    """Stored values of frame ``frame`` of a single-sample, unsigned JPEG image decoded
    straight into an array; None where pydicom's path must run (signed, colour, another
    syntax, or this decoder not there). A third less time than through pydicom's runner,
    which copies the 27 MB of a mammogram twice and checks it on the way."""
    import numpy as np
    if plugin_for(ds) != PLUGIN or int(ds.get("PixelRepresentation", 0) or 0):
        return None
    from pydicom.encaps import get_frame
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    src = get_frame(ds.PixelData, frame, number_of_frames=frames)
    if bytes(src[-4:]).rstrip(b"\0")[-2:] != b"\xff\xd9":
        raise ValueError("the JPEG data ends before its end-of-image marker (truncated)")
    arr = imagecodecs.jpeg8_decode(src)
    if arr.ndim != 2 or arr.shape != (int(ds.Rows), int(ds.Columns)):
        return None
    wanted = np.dtype(f"<u{(int(ds.BitsAllocated) + 7) // 8}")
    return arr if arr.dtype == wanted else arr.astype(wanted)


# Compressed streams that end with a marker (JPEG and JPEG-LS EOI, JPEG 2000 EOC: all FFD9)
_ENDS_WITH_MARKER = frozenset(SYNTAXES) | {uid.JPEGLSLossless, uid.JPEGLSNearLossless, uid.JPEG2000Lossless,
                                           uid.JPEG2000, uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K}


def incomplete(ds, frame: int = 0) -> str:
    """Why frame ``frame`` of ``ds`` is shown incomplete ('' if it is not known to be):
    decoders return what a truncated stream holds without a word, and a reader must know
    the lower part of the image is missing."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts not in _ENDS_WITH_MARKER or "PixelData" not in ds:
        return ""
    from pydicom.encaps import get_frame
    try:
        data = get_frame(ds.PixelData, frame, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1))
    except Exception as exc:  # noqa: BLE001 - the frame could be decoded; its framing is odd
        return f"the compressed image data is damaged ({exc})"
    if bytes(data[-4:]).rstrip(b"\0")[-2:] != b"\xff\xd9":
        return "the image data is incomplete (truncated): only part of the image could be shown"
    return ""


_registered = False


def register() -> bool:
    """Add the plugin to pydicom's JPEG decoders (once); True if it can be used."""
    global _registered
    if not _registered:
        from pydicom.pixels import get_decoder
        for ts in SYNTAXES:
            decoder = get_decoder(ts)
            if PLUGIN not in decoder.available_plugins:
                try:
                    decoder.add_plugin(PLUGIN, (__name__, "decode_frame"))
                except ValueError:  # already known as unavailable
                    pass
        _registered = True
    return _AVAILABLE


def plugin_for(ds) -> str:
    """The decoding plugin to ask for (pydicom's choice: '')."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts in SYNTAXES and int(ds.get("SamplesPerPixel", 1) or 1) == 1 and register():
        return PLUGIN
    return ""
