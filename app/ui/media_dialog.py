"""The media browser (spec §5.2.1.2.1 "Browse Directory Information", §5.2.1.2.2 "Import into
Application"): a CD, DVD, USB stick, folder, ISO image or ZIP archive (read without mounting
or unpacking) opened with app.media.medium, its patients, studies and series shown with their
icon images, and the series checked imported as a job (app.jobs.media_import_job) through
the one store pipeline.

A medium whose DICOMDIR is missing or broken was read file by file: a banner says so, and
every file that cannot be imported is listed with the reason before anything is imported."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMenu,
                               QPushButton, QToolButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout)

from app.dicom import formatting as text
from app.ui.background import run_in_background

COLUMNS = ("Name / Description", "ID / Date", "Modality", "Images")
SELECT_ROLE = Qt.UserRole  # on a series row: the UIDs that select it for import_medium
ICON = 64
NO_DICOMDIR = "No usable DICOMDIR: every file was read instead"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def icon_of(pixels: np.ndarray | None) -> QIcon | None:
    """An icon image of app.media.medium (uint8, rows x columns, x 3 for colour) as a QIcon."""
    if pixels is None or pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        return None
    pixels = np.ascontiguousarray(pixels)
    rows, cols = pixels.shape[:2]
    if pixels.ndim == 3:
        image = QImage(pixels.data, cols, rows, cols * 3, QImage.Format_RGB888)
    else:
        image = QImage(pixels.data, cols, rows, cols, QImage.Format_Grayscale8)
    return QIcon(QPixmap.fromImage(image.copy()))  # copied: the array may go


def series_icon(series) -> np.ndarray | None:
    """The series' own icon, else that of its first instance (by number) with one."""
    if series.icon is not None:
        return series.icon
    with_icons = [i for i in series.instances if i.icon is not None]
    if not with_icons:
        return None
    return min(with_icons, key=lambda i: (i.number is None, i.number or 0)).icon


def mounted_media() -> list[Path]:
    """Mounted discs and sticks with a DICOMDIR at their root: one level below where desktops
    and udisks mount removable media (not /mnt, where a hung network share would block)."""
    user = getpass.getuser()
    found = []
    for base in (Path("/media") / user, Path("/run/media") / user, Path("/media")):
        try:
            children = sorted(p for p in base.iterdir() if p.is_dir())
        except OSError:
            continue
        for p in children:
            try:
                if any(n.upper() == "DICOMDIR" for n in os.listdir(p)) and p not in found:
                    found.append(p)
            except OSError:
                continue
    return found


class MediaDialog(QDialog):
    def __init__(self, archive, jobs, parent=None, owner: str | None = None):
        super().__init__(parent)
        self.archive, self.jobs, self.owner = archive, jobs, owner
        self.setWindowTitle("Import from CD/DVD/USB, an ISO image or a ZIP archive")
        self.path: Path | None = None
        self.medium = None  # the Medium shown (its files closed: it is read again by the job)
        self.job_id: int | None = None  # the last import queued
        self._queuing = False
        self._generation = 0
        self._build()
        self.resize(980, 680)

    def _build(self) -> None:
        self.path_label = QLabel("Choose a folder (CD, DVD, USB stick), a DICOMDIR file, an ISO image or a ZIP "
                                 "archive.")
        self.path_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.choose_button = QPushButton("Choose…")
        self.choose_menu = QMenu(self)
        self.choose_menu.aboutToShow.connect(self._fill_choose_menu)
        self.choose_button.setMenu(self.choose_menu)
        top = QHBoxLayout()
        top.addWidget(QLabel("<b>Medium:</b>"))
        top.addWidget(self.path_label, 1)
        top.addWidget(self.choose_button)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("QLabel { background: #fff3cd; color: #664d03; border: 1px solid #e0c35a; "
                                  "border-radius: 3px; padding: 6px; }")
        self.banner.hide()

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setIconSize(QSize(ICON, ICON))
        self.tree.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.tree.setUniformRowHeights(False)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        self.tree.setColumnWidth(1, 200)
        self.tree.setColumnWidth(2, 110)
        self.tree.setColumnWidth(3, 90)
        self.tree.itemChanged.connect(lambda *_: self._checked_changed())

        self.problems_button = QToolButton()
        self.problems_button.setCheckable(True)
        self.problems_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.problems_button.setArrowType(Qt.RightArrow)
        self.problems_button.setAutoRaise(True)
        self.problems_button.setStyleSheet("QToolButton { color: #b00020; font-weight: bold; }")
        self.problems_button.toggled.connect(self._show_problems)
        self.problems_button.hide()
        self.problems = QTreeWidget()
        self.problems.setColumnCount(2)
        self.problems.setHeaderLabels(["File", "Why it cannot be imported"])
        self.problems.setRootIsDecorated(False)
        self.problems.setColumnWidth(0, 260)
        self.problems.setMaximumHeight(170)
        self.problems.hide()

        self.summary = QLabel()
        self.checked_label = QLabel()
        self.import_button = QPushButton("Import")
        self.import_button.setDefault(True)
        self.import_button.setEnabled(False)
        self.import_button.clicked.connect(self.import_checked)
        all_button, none_button = QPushButton("Check all"), QPushButton("Check none")
        all_button.clicked.connect(lambda: self._check_all(Qt.Checked))
        none_button.clicked.connect(lambda: self._check_all(Qt.Unchecked))
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        for w in (all_button, none_button):
            bottom.addWidget(w)
        bottom.addWidget(self.checked_label, 1)
        bottom.addWidget(self.import_button)
        bottom.addWidget(close)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.status)
        lay.addWidget(self.banner)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.summary)
        lay.addWidget(self.problems_button, 0, Qt.AlignLeft)
        lay.addWidget(self.problems)
        lay.addLayout(bottom)

    # -- choosing the medium -----------------------------------------------------------------
    def _fill_choose_menu(self) -> None:
        self.choose_menu.clear()
        self.choose_menu.addAction("Folder (CD, DVD, USB stick)…", self.choose_folder)
        self.choose_menu.addAction("ISO image, ZIP archive or DICOMDIR file…", self.choose_file)
        media = mounted_media()
        if media:
            self.choose_menu.addSeparator()
            for p in media:
                self.choose_menu.addAction(f"{p} (DICOMDIR)", lambda p=p: self.open_path(p))

    def _start_dir(self) -> str:
        if self.path is not None:
            return str(self.path if self.path.is_dir() else self.path.parent)
        media = mounted_media()
        return str(media[0].parent) if media else str(Path.home())

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "The medium's folder (where its DICOMDIR is)", self._start_dir())
        if folder:
            self.open_path(Path(folder))

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "An ISO image, a ZIP archive or a DICOMDIR", self._start_dir(),
                                              "Media (*.iso *.ISO *.img *.IMG *.zip *.ZIP DICOMDIR dicomdir);;"
                                              "All files (*)")
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path | str) -> None:
        """Read the medium at ``path`` (a folder, a DICOMDIR file, an ISO image or a ZIP archive) off the GUI
        thread and show what it holds."""
        from app.media.medium import open_medium
        self._generation += 1
        generation = self._generation
        path = Path(path)
        self.path, self.medium = path, None
        self.path_label.setText(str(path))
        self.tree.clear()
        self.problems.clear()
        for w in (self.banner, self.problems_button, self.problems):
            w.hide()
        self.summary.setText("")
        self.checked_label.setText("")
        self.import_button.setEnabled(False)
        self.status.setStyleSheet("")
        self.status.setText("Reading the medium…")
        self.status.show()
        pending: dict[str, int] = {}  # written by the reading thread, read by the timer

        def show_pending() -> None:
            if pending and generation == self._generation:
                self.status.setText(f"Reading the medium… {pending['done']} of {pending['total']} files")
        timer = QTimer(self, interval=200, timeout=show_pending)
        timer.start()

        def read():
            medium = open_medium(path, lambda done, total: pending.update(done=done, total=total))
            medium.close()  # what it holds is in memory; the import job opens it again
            return medium

        def done(medium, error) -> None:
            timer.stop()
            timer.deleteLater()
            if generation == self._generation:
                self._loaded(medium, error)
        run_in_background(read, done)

    # -- showing it ------------------------------------------------------------------------------
    def _loaded(self, medium, error) -> None:
        from app.media.medium import MediumError
        if error is not None:
            self.status.setStyleSheet("color: #b00020")
            self.status.setText(str(error) if isinstance(error, MediumError) else f"The medium cannot be read: {error}")
            return
        self.medium = medium
        self.status.hide()
        notes = []
        if medium.scanned:
            why = next((r.split("read instead: ", 1)[-1] for f, r in medium.problems if f.upper() == "DICOMDIR"), None)
            notes.append(f"<b>{NO_DICOMDIR}.</b> " + (f"The DICOMDIR cannot be used: {why}." if why else
                         "There is no DICOMDIR, or it names files that are not on the medium."))
        elif medium.unindexed:
            n = len(medium.unindexed)
            notes.append(f"{plural(n, 'file')} not listed in the DICOMDIR {'was' if n == 1 else 'were'} read as well.")
        if medium.problems:
            notes.append(f"{plural(len(medium.problems), 'file')} cannot be imported: see Problems below.")
        self.banner.setText(" ".join(notes))
        self.banner.setVisible(bool(notes))
        self._fill_tree(medium)
        self._fill_problems(medium.problems)
        self._checked_changed()

    def _fill_tree(self, medium) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        studies = series_count = images = 0
        for patient in sorted(medium.records, key=lambda p: (p.name or "", p.patient_id or "")):
            p_item = QTreeWidgetItem([text.person_name(patient.name) or "(no name)", patient.patient_id or "",
                                      "", ""])
            p_item.setToolTip(0, f"Born {text.date(patient.birth_date)}" if patient.birth_date else "")
            font = p_item.font(0)
            font.setBold(True)
            p_item.setFont(0, font)
            _checkable(p_item, tristate=True)
            self.tree.addTopLevelItem(p_item)
            p_images, p_modalities = 0, set()
            for study in sorted(patient.studies, key=lambda s: (s.date or "", s.time or "")):
                when = " ".join(x for x in (text.date(study.date), text.time(study.time)[:5]) if x)
                st_item = QTreeWidgetItem([study.description or "(no study description)", when, "", ""])
                st_item.setToolTip(0, "\n".join(x for x in (
                    f"Accession {study.accession_number}" if study.accession_number else "",
                    f"Study ID {study.study_id}" if study.study_id else "", f"UID {study.uid}" if study.uid else "")
                    if x))
                _checkable(st_item, tristate=True)
                p_item.addChild(st_item)
                studies += 1
                st_images, st_modalities = 0, set()
                for series in sorted(study.series, key=lambda s: (s.number is None, s.number or 0)):
                    n = len(series.instances)
                    label = " — ".join(x for x in (f"Series {series.number}" if series.number is not None else "",
                                                    series.description or "") if x) or "Series (no number)"
                    se_item = QTreeWidgetItem([label, "", series.modality or "", str(n)])
                    if series.uid:
                        se_item.setToolTip(0, f"UID {series.uid}")
                    se_item.setTextAlignment(3, Qt.AlignRight | Qt.AlignVCenter)
                    if (icon := icon_of(series_icon(series))) is not None:
                        se_item.setIcon(0, icon)
                    select = [series.uid] if series.uid else [i.sop_instance_uid for i in series.instances
                                                              if i.sop_instance_uid]
                    se_item.setData(0, SELECT_ROLE, select)
                    se_item.setData(3, SELECT_ROLE, n)
                    if not n:
                        se_item.setForeground(3, QColor("#b00020"))
                        se_item.setToolTip(3, "Its files are not on the medium: see Problems")
                    _checkable(se_item)
                    st_item.addChild(se_item)
                    series_count += 1
                    st_images += n
                    if series.modality:
                        st_modalities.add(series.modality)
                st_item.setText(2, ", ".join(sorted(st_modalities)))
                st_item.setText(3, str(st_images))
                st_item.setTextAlignment(3, Qt.AlignRight | Qt.AlignVCenter)
                p_images += st_images
                p_modalities |= st_modalities
            p_item.setText(2, ", ".join(sorted(p_modalities)))
            p_item.setText(3, str(p_images))
            p_item.setTextAlignment(3, Qt.AlignRight | Qt.AlignVCenter)
            images += p_images
        self.tree.expandAll()
        self.tree.blockSignals(False)
        self.summary.setText(", ".join((plural(len(medium.records), "patient"), plural(studies, "study", "studies"),
                                        plural(series_count, "series", "series"), plural(images, "image"))))

    def _fill_problems(self, problems: list[tuple[str, str]]) -> None:
        self.problems.clear()
        for file_id, reason in problems:
            item = QTreeWidgetItem([file_id, reason])
            item.setToolTip(1, reason)
            self.problems.addTopLevelItem(item)
        self.problems_button.setText(f"Problems ({len(problems)})")
        self.problems_button.setVisible(bool(problems))
        self.problems.setVisible(bool(problems) and self.problems_button.isChecked())

    def _show_problems(self, shown: bool) -> None:
        self.problems_button.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)
        self.problems.setVisible(shown and self.problems.topLevelItemCount() > 0)

    # -- checking and importing ------------------------------------------------------------------
    def series_items(self) -> list[QTreeWidgetItem]:
        out = []
        for p in range(self.tree.topLevelItemCount()):
            patient = self.tree.topLevelItem(p)
            for s in range(patient.childCount()):
                study = patient.child(s)
                out.extend(study.child(i) for i in range(study.childCount()))
        return out

    def checked(self) -> set[str]:
        """The UIDs selecting the checked series (Series Instance UIDs)."""
        return {uid for item in self.series_items() if item.checkState(0) == Qt.Checked
                for uid in item.data(0, SELECT_ROLE) or []}

    def _check_all(self, state) -> None:
        for p in range(self.tree.topLevelItemCount()):
            self.tree.topLevelItem(p).setCheckState(0, state)

    def _checked_changed(self) -> None:
        chosen = [i for i in self.series_items() if i.checkState(0) == Qt.Checked]
        images = sum(i.data(3, SELECT_ROLE) or 0 for i in chosen)
        self.checked_label.setText(f"Checked: {plural(len(chosen), 'series', 'series')}, {plural(images, 'image')}"
                                   if self.medium is not None else "")
        self.import_button.setEnabled(self.medium is not None and bool(chosen) and not self._queuing)

    def import_checked(self) -> None:
        """The checked series imported by a job (app.jobs.media_import_job)."""
        from app.jobs import media_import_job
        select = self.checked()
        if self.path is None or self.medium is None or not select:
            return
        n_series = sum(1 for i in self.series_items() if i.checkState(0) == Qt.Checked)
        jobs, owner, path = self.jobs, self.owner, self.path
        self._queuing = True
        self.import_button.setEnabled(False)

        def queued(job_id, error) -> None:
            self._queuing = False
            if error is not None:
                self.status.setStyleSheet("color: #b00020")
                self.status.setText(f"The import could not be queued: {error}")
            else:
                self.job_id = job_id
                self.status.setStyleSheet("")
                self.status.setText(f"Import of {plural(n_series, 'series', 'series')} queued: its progress and what "
                                    "could not be imported show in the jobs panel.")
            self.status.show()
            self._checked_changed()
        run_in_background(lambda: jobs.submit(media_import_job.KIND, media_import_job.title(path, n_series),
                                              media_import_job.params(path, select), owner=owner), queued)


def _checkable(item: QTreeWidgetItem, tristate: bool = False) -> None:
    flags = item.flags() | Qt.ItemIsUserCheckable | Qt.ItemIsEnabled | Qt.ItemIsSelectable
    if tristate:
        flags |= Qt.ItemIsAutoTristate
    item.setFlags(flags)
    item.setCheckState(0, Qt.Checked)
