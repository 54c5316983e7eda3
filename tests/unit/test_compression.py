"""The compression criteria of spec §4.2.1.3.1.2 and the encoders behind each syntax we
offer (peer tests check DCMTK decodes what they make: tests/peers/test_send.py)."""

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (JPEG2000, ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit,
                         JPEGLosslessSV1, RLELossless, generate_uid)

from app.dicom.compression import PRODUCIBLE, compress, eligible, is_lossy


def _image(bits_allocated=16, bits_stored=12, signed=0, photometric="MONOCHROME2", samples=1, smooth=True):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.Rows = ds.Columns = 32
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits_allocated, bits_stored, bits_stored - 1, signed
    if samples == 3:
        ds.PlanarConfiguration = 0
    y, x = np.mgrid[0:32, 0:32]
    top = 2 ** bits_stored - 1
    a = ((x * 37 + y * 11) % (top + 1)) if not smooth else (x + y) * (top // 64)
    dtype = {8: np.uint8, 16: np.uint16}[bits_allocated]
    a = a.astype(dtype)
    if samples == 3:
        a = np.stack([a, a[::-1], a[:, ::-1]], axis=-1)
    ds.PixelData = a.tobytes()
    return ds, a


def test_criteria_follow_the_reference():
    ct, _ = _image()
    assert eligible(ct, JPEGLosslessSV1) and eligible(ct, JPEGExtended12Bit) and not eligible(ct, JPEGBaseline8Bit)
    signed, _ = _image(signed=1)
    assert not eligible(signed, JPEGLosslessSV1) and eligible(signed, JPEG2000Lossless)  # pixel representation 1
    odd, _ = _image(bits_stored=10)
    assert not eligible(odd, JPEGLosslessSV1) and not eligible(odd, JPEG2000)          # bits stored 12 or 8 only
    colour, _ = _image(8, 8, photometric="RGB", samples=3)
    assert eligible(colour, JPEGLosslessSV1) and eligible(colour, JPEGBaseline8Bit)
    ybr, _ = _image(8, 8, photometric="YBR_FULL_422", samples=3)
    assert not any(eligible(ybr, ts) for ts in PRODUCIBLE)
    assert is_lossy(JPEGBaseline8Bit) and is_lossy(JPEG2000) and not is_lossy(JPEGLosslessSV1)


@pytest.mark.parametrize("ts, kind", [(JPEGLosslessSV1, "ct"), (JPEGLosslessSV1, "rgb"), (RLELossless, "ct"),
                                      (JPEG2000Lossless, "ct"), (JPEG2000Lossless, "rgb"), (JPEGExtended12Bit, "ct"),
                                      (JPEGBaseline8Bit, "mono8"), (JPEG2000, "ct")])
def test_encoders_round_trip(ts, kind):
    ds, original = {"ct": lambda: _image(), "rgb": lambda: _image(8, 8, photometric="RGB", samples=3),
                    "mono8": lambda: _image(8, 8)}[kind]()
    compress(ds, ts)
    assert ds.file_meta.TransferSyntaxUID == ts
    back = ds.pixel_array
    if is_lossy(ts):
        assert ds.LossyImageCompression == "01"
        scale = 2 ** int(ds.BitsStored)
        assert np.abs(back.astype(int) - original.astype(int)).mean() < scale * 0.01
    else:
        assert np.array_equal(back, original)
