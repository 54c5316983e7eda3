"""The media browser under Xvfb (spec §5.2.1.2.1 "Browse Directory Information", §5.2.1.2.2
"Import into Application"): a DICOMDIR written by DCMTK dcmmkdir (with icon images), inside
an ISO image read without mounting, browsed as patients, studies and series with their icons;
one series unchecked, the rest imported by a job that shows in the jobs panel. A damaged
medium (DICOMDIR cut short, a file that is not DICOM) is read file by file: the banner says
so and the problems list names each file with its reason. Screenshots in tests/artifacts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pycdlib
import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt

from app.jobs import media_import_job
from app.jobs.queue import DONE
from app.store.archive import Archive
from app.store.query import search
from app.ui.main import MainWindow
from app.ui.media_dialog import NO_DICOMDIR
from tests.conftest import run_dcmtk, screen_shot
from tests.peers.peerutil import ct_dataset, save

pytestmark = pytest.mark.peers  # DCMTK dcmmkdir writes the DICOMDIR

SIZE = 64


def _phantom(radius: float, offset: int) -> bytes:
    """A disc on a dark background, placed per series: the icons can be told apart."""
    y, x = np.mgrid[:SIZE, :SIZE]
    pixels = np.full((SIZE, SIZE), 24, np.uint16)
    pixels[(x - SIZE / 2 - offset) ** 2 + (y - SIZE / 2) ** 2 < radius ** 2] = 1800
    pixels[(x - SIZE / 2 - offset) ** 2 + (y - SIZE / 2) ** 2 < (radius / 3) ** 2] = 3600
    return pixels.tobytes()


def _write_files(root: Path) -> list[dict]:
    """Anna: one study of two series; Bert: one study of one series; two CT images each,
    under ISO 9660 level 1 names as on a disc."""
    layout = ((("Media^Anna", "MED001"), "CT THORAX", ((1, "Axial 5 mm", 22, -12), (2, "Coronal", 14, 10))),
              (("Media^Bert", "MED002"), "CT HEAD", ((1, "Head axial", 26, 0),)))
    files = []
    for p, (patient, description, series_list) in enumerate(layout, 1):
        study = generate_uid()
        for number, series_description, radius, offset in series_list:
            series = generate_uid()
            for n in (1, 2):
                ds = ct_dataset(study, series, generate_uid(), n, size=SIZE, series_number=number,
                                patient_name=patient[0], patient_id=patient[1])
                ds.StudyDescription, ds.SeriesDescription = description, series_description
                ds.PixelData = _phantom(radius + 2 * n, offset)
                file_id = f"DICOM/PAT{p}/SER{number}/IMG{n:04d}"
                (root / file_id).parent.mkdir(parents=True, exist_ok=True)
                save(ds, root / file_id)
                files.append(dict(file_id=file_id, series=series, sop=ds.SOPInstanceUID,
                                  series_description=series_description))
    return files


def _pack_iso(root: Path, out: Path) -> Path:
    """ROOT as an ISO 9660 image with Joliet and Rock Ridge names, as disc burners write it."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3, rock_ridge="1.09", vol_ident="LIGHTBOX")
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        rel = "/" + d.relative_to(root).as_posix()
        iso.add_directory(iso_path=rel, rr_name=d.name, joliet_path=rel)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = "/" + f.relative_to(root).as_posix()
        iso.add_file(str(f), iso_path=rel + ".;1", rr_name=f.name, joliet_path=rel)
    iso.write(str(out))
    iso.close()
    return out


@pytest.fixture
def medium(tmp_path) -> tuple[Path, list[dict]]:
    root = tmp_path / "CDROM"
    root.mkdir()
    files = _write_files(root)
    run_dcmtk("dcmmkdir", "--ct-and-mr", "--add-icon-image", "--recurse", "--input-directory", str(root),
              "--output-file", str(root / "DICOMDIR"), "DICOM", check=True)
    return root, files


@pytest.fixture
def window(qtbot, tmp_path):
    archive = Archive(tmp_path / "home")
    win = MainWindow(archive, None, None)  # closed here, not by qtbot: after the browser's searches
    win.show()
    qtbot.waitExposed(win)
    yield win
    # the browser's searches after an import answer while the window lives
    qtbot.waitUntil(lambda: not win.browser._debounce.isActive(), timeout=5000)
    win.browser.pool.waitForDone(5000)
    qtbot.wait(50)
    win.close()
    win.deleteLater()
    qtbot.wait(10)
    archive.close()


def _rows(dialog) -> list[tuple[int, str]]:
    """(depth, name) of every row of the tree, in order."""
    out = []

    def walk(item, depth):
        out.append((depth, item.text(0)))
        for i in range(item.childCount()):
            walk(item.child(i), depth + 1)
    for i in range(dialog.tree.topLevelItemCount()):
        walk(dialog.tree.topLevelItem(i), 0)
    return out


def test_iso_image_browsed_with_icons_and_the_checked_series_imported(qtbot, window, medium, tmp_path):
    root, files = medium
    image = _pack_iso(root, tmp_path / "disc.iso")
    dialog = window.open_media(image)
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: dialog.medium is not None, timeout=20000)
    assert not dialog.medium.scanned and dialog.medium.problems == []
    assert dialog.banner.isHidden() and dialog.problems_button.isHidden()
    assert dialog.summary.text() == "2 patients, 2 studies, 3 series, 6 images"
    # the CT/MR profile's series records have no description: the number names the series
    assert _rows(dialog) == [(0, "Media, Anna"), (1, "CT THORAX"), (2, "Series 1"), (2, "Series 2"),
                             (0, "Media, Bert"), (1, "CT HEAD"), (2, "Series 1")]
    anna = dialog.tree.topLevelItem(0)
    assert [anna.text(c) for c in range(4)] == ["Media, Anna", "MED001", "CT", "4"]
    assert anna.child(0).text(1) == "2024-01-02 10:10"
    series = dialog.series_items()
    assert [s.text(3) for s in series] == ["2", "2", "2"] and {s.text(2) for s in series} == {"CT"}
    for s in series:  # dcmmkdir's 64x64 icon images, shown
        icon = s.icon(0)
        assert not icon.isNull() and icon.availableSizes()[0].width() == 64, s.text(0)
    assert all(item.checkState(0) == Qt.Checked for item in series)  # everything, unless unchecked
    assert dialog.checked_label.text() == "Checked: 3 series, 6 images"

    coronal = series[1]
    coronal.setCheckState(0, Qt.Unchecked)
    assert anna.checkState(0) == Qt.PartiallyChecked and anna.child(0).checkState(0) == Qt.PartiallyChecked
    assert dialog.tree.topLevelItem(1).checkState(0) == Qt.Checked
    assert dialog.checked_label.text() == "Checked: 2 series, 4 images"
    wanted = {f["sop"] for f in files if f["series_description"] != "Coronal"}
    assert dialog.checked() == {f["series"] for f in files if f["series_description"] != "Coronal"}
    qtbot.wait(100)
    screen_shot(dialog, "media_dialog.png", from_screen=False)

    qtbot.mouseClick(dialog.import_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: dialog.job_id is not None, timeout=10000)
    job = window.jobs.wait(dialog.job_id, timeout=60)
    assert job.kind == media_import_job.KIND and job.status == DONE, job.message
    assert job.message == "4 imported, 0 already present"
    assert job.title == "Import from disc.iso (2 series)"
    assert {r["SOPInstanceUID"] for r in search(window.archive.engine, "instance", {})} == wanted
    qtbot.waitUntil(lambda: any(j["id"] == dialog.job_id and j["status"] == DONE
                                for j in window.jobs_panel.model.jobs), timeout=10000)
    assert "queued" in dialog.status.text()
    qtbot.waitUntil(lambda: window.browser.studies.rowCount() == 2, timeout=10000)  # the browser saw them arrive

    # the same medium again, all of it: what is here already counts as present
    dialog._check_all(Qt.Checked)
    dialog.import_checked()
    qtbot.waitUntil(lambda: dialog.job_id != job.id and dialog.job_id is not None, timeout=10000)
    again = window.jobs.wait(dialog.job_id, timeout=60)
    assert again.message == "2 imported, 4 already present"
    qtbot.waitUntil(lambda: window.jobs_panel.model.jobs[0]["status"] == DONE, timeout=10000)
    dialog.close()


def test_damaged_medium_shows_the_banner_and_every_problem(qtbot, window, medium, tmp_path):
    source, files = medium
    root = tmp_path / "USB"
    shutil.copytree(source, root)
    dicomdir = root / "DICOMDIR"
    dicomdir.write_bytes(dicomdir.read_bytes()[:dicomdir.stat().st_size // 2])
    (root / "DICOM" / "JUNK").write_bytes(np.random.default_rng(1).bytes(5000))
    dialog = window.open_media(root)
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: dialog.medium is not None, timeout=20000)
    assert dialog.medium.scanned
    assert dialog.banner.isVisible() and NO_DICOMDIR in dialog.banner.text()
    assert "truncated" in dialog.banner.text()
    # what was readable is all there, read from the files themselves
    assert dialog.summary.text() == "2 patients, 2 studies, 3 series, 6 images"
    assert _rows(dialog) == [(0, "Media, Anna"), (1, "CT THORAX"), (2, "Series 1 — Axial 5 mm"), (2, "Series 2 — Coronal"),
                             (0, "Media, Bert"), (1, "CT HEAD"), (2, "Series 1 — Head axial")]
    assert dialog.problems_button.isVisible() and dialog.problems_button.text() == "Problems (2)"
    assert dialog.problems.isHidden()
    dialog.problems_button.click()
    assert dialog.problems.isVisible()
    listed = {dialog.problems.topLevelItem(i).text(0): dialog.problems.topLevelItem(i).text(1)
              for i in range(dialog.problems.topLevelItemCount())}
    assert set(listed) == {"DICOMDIR", "DICOM/JUNK"}
    assert "truncated" in listed["DICOMDIR"] and "not a DICOM file" in listed["DICOM/JUNK"]
    qtbot.wait(100)
    screen_shot(dialog, "media_dialog_damaged.png", from_screen=False)

    dialog.import_checked()
    qtbot.waitUntil(lambda: dialog.job_id is not None, timeout=10000)
    job = window.jobs.wait(dialog.job_id, timeout=60)
    assert job.status == DONE, job.message
    assert job.message.startswith("6 imported, 0 already present, 2 not imported: DICOMDIR: ")
    assert "DICOM/JUNK: not a DICOM file" in job.message
    assert {r["SOPInstanceUID"] for r in search(window.archive.engine, "instance", {})} == {f["sop"] for f in files}
    qtbot.waitUntil(lambda: window.browser.studies.rowCount() == 2, timeout=10000)
    dialog.close()


def test_a_path_that_is_not_a_medium_says_so(qtbot, window, tmp_path):
    dialog = window.open_media(tmp_path / "gone")
    qtbot.waitUntil(lambda: "cannot be found" in dialog.status.text(), timeout=10000)
    assert dialog.medium is None and not dialog.import_button.isEnabled()
    dialog.close()
