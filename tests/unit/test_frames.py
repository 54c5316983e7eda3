"""Enhanced multi-frame images: each frame read with its functional group attributes."""

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.imaging import measure, pixels
from app.imaging.frames import frame_header, frame_order, is_enhanced
from app.imaging.series import SeriesImages


def _item(**values) -> Dataset:
    ds = Dataset()
    for k, v in values.items():
        setattr(ds, k, v)
    return ds


def enhanced_mr(tmp_path, z=(10, 20, 30), orientations=None):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "MR"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = 8, 8, 3, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SharedFunctionalGroupsSequence = Sequence([_item(
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=[0.8, 0.8], SliceThickness=3)]),
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]),
        PixelValueTransformationSequence=Sequence([_item(RescaleSlope=2, RescaleIntercept=-100,
                                                         RescaleType="US")]))])
    ds.PerFrameFunctionalGroupsSequence = Sequence([_item(
        PlanePositionSequence=Sequence([_item(ImagePositionPatient=[0, 0, z[f]])]),
        FrameVOILUTSequence=Sequence([_item(WindowCenter=100 * (f + 1), WindowWidth=200)]))
        for f in range(3)])
    for item, orientation in zip(ds.PerFrameFunctionalGroupsSequence, orientations or ()):
        item.PlaneOrientationSequence = Sequence([_item(ImageOrientationPatient=orientation)])
    ds.PixelData = np.arange(3 * 64, dtype=np.uint16).reshape(3, 8, 8).tobytes()
    path = tmp_path / "emr.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_frame_header_flattens_shared_and_per_frame_groups(tmp_path):
    import pydicom
    ds = pydicom.dcmread(enhanced_mr(tmp_path))
    assert is_enhanced(ds)
    f1 = frame_header(ds, 1)
    assert (float(f1.RescaleSlope), float(f1.RescaleIntercept)) == (2.0, -100.0)
    assert [float(v) for v in f1.ImagePositionPatient] == [0, 0, 20]
    assert pixels.file_windows(f1) == [pixels.Window(200, 200)]
    assert measure.spacing(f1) == measure.Spacing(0.8, 0.8, "mm")
    assert "PerFrameFunctionalGroupsSequence" not in f1 and "PixelData" not in f1


def test_series_images_window_each_frame_with_its_own_values(tmp_path):
    images = SeriesImages([enhanced_mr(tmp_path)])
    assert len(images) == 3
    for f in range(3):
        stored = images.stored(f)
        assert stored.tolist() == (np.arange(64).reshape(8, 8) + 64 * f).tolist()
        values = stored.astype(float) * 2 - 100  # the shared rescale
        want = pixels.to_uint8(pixels.apply_window(values, pixels.Window(100 * (f + 1), 200)))
        assert np.array_equal(images.display(f), want)
        assert images.position(f) == 10 * (f + 1)
    images.close()


def test_frames_are_read_in_slice_order(tmp_path):
    """Frames stored out of order are shown by position along the normal; a stack of
    several orientations keeps the order the file gives."""
    import pydicom
    path = enhanced_mr(tmp_path, z=(30, 10, 20))
    assert frame_order(pydicom.dcmread(path, stop_before_pixels=True)) == [1, 2, 0]
    images = SeriesImages([path], [3])
    assert [images.position(i) for i in range(3)] == [10, 20, 30]
    assert images.stored(0).tolist() == (np.arange(64).reshape(8, 8) + 64).tolist()  # frame 2 of the file
    images.close()
    mixed = enhanced_mr(tmp_path, z=(30, 10, 20), orientations=[[1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, -1],
                                                                  [1, 0, 0, 0, 1, 0]])
    assert frame_order(pydicom.dcmread(mixed, stop_before_pixels=True)) == [0, 1, 2]
