"""'lightbox hang' and the stage drawing behind it (app.imaging.study_hanging): a screening
study with a prior in the archive is hung mirrored, each breast's tissue touching the
centre line of its pair, a detector that wrote its image mirrored flipped back; the priors
are the patient's earlier studies; the stages are listed."""

import json

import numpy as np
import pytest
from pydicom.uid import generate_uid

from app.imaging import stage_layout
from app.imaging.study_hanging import hang_study, priors_of, render_stage
from app.store.archive import Archive
from conftest import lightbox
from tests.mammo_samples import mammogram

FOUR = [("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")]


@pytest.fixture(scope="module")
def screening(tmp_path_factory):
    root = tmp_path_factory.mktemp("hang")
    files = root / "files"
    files.mkdir()
    studies = {}
    for date in ("20260310", "20250302", "20230115"):
        studies[date] = study = generate_uid()
        for lat, view in FOUR:
            mirrored = (lat, view, date) == ("R", "CC", "20250302")  # this detector wrote it mirrored
            ds = mammogram(lat, view, study=study, date=date, size=(200, 160),
                           orientation=("A", "L") if mirrored else None)
            ds.save_as(files / f"{date}-{lat}{view}.dcm", enforce_file_format=True)
    other = mammogram("R", "CC", date="20240101", patient="SOMEONE-ELSE")
    other.save_as(files / "other.dcm", enforce_file_format=True)
    home = root / "home"
    lightbox(home, "import", str(files))
    return home, studies


def _tissue(img: np.ndarray, rect, column: int) -> float:
    """Share of bright pixels in one column of a viewport, over its middle third."""
    x, y, w, h = rect
    strip = img[y + h // 3:y + 2 * h // 3, x + column, 0]
    return float((strip > 120).mean())


def test_priors_are_the_patients_earlier_studies_newest_first(screening):
    home, studies = screening
    archive = Archive(home)
    try:
        assert priors_of(archive, studies["20260310"]) == [studies["20250302"], studies["20230115"]]
        assert priors_of(archive, studies["20230115"]) == []
    finally:
        archive.close()


def test_overview_is_mirrored_with_the_chest_walls_on_the_centre_lines(screening):
    home, studies = screening
    archive = Archive(home)
    try:
        hung = hang_study(archive, studies["20260310"])
        size = (1200, 700)
        img = render_stage(hung, 0, size)
    finally:
        archive.close()
    stage = hung.stages[0]
    assert stage.name.startswith("Overview") and img.shape == (700, 1200, 3)
    rects = stage_layout.grid(stage.rows, stage.columns, size)
    for hv, rect in zip(stage.viewports, rects):
        inner, outer = (rect[2] - 1, 0) if hv.display_set.laterality == "R" else (0, rect[2] - 1)
        label = f"{hv.display_set.study_date} {hv.display_set.label}"
        assert _tissue(img, rect, inner) > 0.5, f"{label}: no tissue at the centre line"
        assert _tissue(img, rect, outer) == 0, f"{label}: tissue at the outer edge"


def test_hang_command_lists_stages_and_writes_the_png(screening, tmp_path):
    home, studies = screening
    listed = json.loads(lightbox(home, "hang", "--study", studies["20260310"], "--json").stdout)
    assert listed["protocol"] == "mg-screening-2d"
    assert listed["stages"][1] == {"stage": 2, "name": "Current 4-up", "grid": "2x2",
                                   "viewports": ["RCC", "LCC", "RMLO", "LMLO"]}
    out = tmp_path / "stage2.png"
    r = lightbox(home, "hang", "--study", studies["20260310"], "--stage", "2", "--out", str(out), "--size", "800x600")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "stage 2 of" in r.stdout
    bad = lightbox(home, "hang", "--study", studies["20260310"], "--stage", "99", "--out", str(out), check=False)
    assert bad.returncode == 2 and "--stage 99 is out of range" in bad.stderr
    missing = lightbox(home, "hang", "--study", "1.2.3", check=False)
    assert missing.returncode == 2 and "no study 1.2.3" in missing.stderr


def test_other_studies_cost_one_header_per_series(tmp_path, monkeypatch):
    """A CT study is hung from the index: one header read per series, every file listed."""
    import pydicom

    from tests.peers.peerutil import ct_dataset, save
    archive = Archive(tmp_path / "home")
    try:
        study = generate_uid()
        for series in (generate_uid(), generate_uid()):
            for i in range(5):
                assert archive.ingest.store_file(save(ct_dataset(study, series, generate_uid(), i + 1, size=8),
                                                      tmp_path / f"{series[-6:]}{i}.dcm")).ok
        reads = []
        real = pydicom.dcmread
        monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: (reads.append(a[0]), real(*a, **k))[1])
        hung = hang_study(archive, study)
    finally:
        archive.close()
    assert hung.protocol.id == "generic" and len(reads) == 2
    assert [s.frames for s in hung.studies.current] == [5, 5]
    assert all(len(hung.files[s.uid]) == 5 for s in hung.studies.current)


def test_hang_draws_the_cad_marks_on_request(tmp_path):
    """'lightbox hang --cad required' draws the marks to be presented on their image and the
    CAD section of the text; without --cad, none; 'all' adds the optional ones."""
    from tests.mammo_samples import cad_report, finding
    files = tmp_path / "files"
    files.mkdir()
    study = generate_uid()
    shown = {}
    for lat, view in FOUR:
        ds = mammogram(lat, view, study=study, size=(200, 160))
        shown[lat + view] = str(ds.SOPInstanceUID)
        ds.save_as(files / f"{lat}{view}.dcm", enforce_file_format=True)
    box = [30.0, 60.0, 110.0, 60.0, 110.0, 140.0, 30.0, 140.0, 30.0, 60.0]
    report = cad_report(study, [
        finding("F-01775", "SRT", "Calcification Cluster", image=shown["RCC"], points=box),
        finding("F-01796", "SRT", "Mammography breast density", image=shown["LCC"], intent="111151", points=box)])
    report.save_as(files / "cad.dcm", enforce_file_format=True)
    home = tmp_path / "home"
    lightbox(home, "import", str(files))
    archive = Archive(home)
    try:
        hung = hang_study(archive, study)
        index = next(i for i, s in enumerate(hung.stages) if s.name == "Current 4-up")
        size = (800, 600)
        plain, required, every = (render_stage(hung, index, size, cad) for cad in ("", "required", "all"))
    finally:
        archive.close()
    rects = dict(zip([hv.display_set.label for hv in hung.stages[index].viewports],
                     stage_layout.grid(2, 2, size)))

    def reddish(img, label):  # CAD marks are red (required) or orange (optional); the text is left out
        x, y, w, h = rects[label]
        part = img[y + 20:y + h - 40, x:x + w].astype(int)
        return int(((part[..., 0] > 200) & (part[..., 2] < 140) & (part[..., 0] - part[..., 2] > 100)).sum())
    assert reddish(plain, "RCC") == 0 and reddish(plain, "LCC") == 0
    assert reddish(required, "RCC") > 50 and reddish(required, "LCC") == 0
    assert reddish(every, "LCC") > 50
    r = lightbox(home, "hang", "--study", study, "--stage", str(index + 1), "--cad", "all",
                 "--out", str(tmp_path / "cad.png"), "--size", "800x600")
    assert (tmp_path / "cad.png").stat().st_size > 1000 and r.returncode == 0
