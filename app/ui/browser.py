"""The patient browser: search bar, study list, series of the selected study.

Queries run on a thread pool; the newest answer wins (an older one that arrives late is
dropped). What the node indexes arrives through the core bridge and refreshes the list
within a fraction of a second; what another process adds (a command-line import) is
noticed by a cheap check every few seconds.
"""

from __future__ import annotations

import logging
from datetime import date

from PySide6.QtCore import (QAbstractTableModel, QDate, QMimeData, QModelIndex, QObject, QSize, Qt, QThreadPool,
                            QTimer, Signal)
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDateEdit, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QMenu, QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget)
from sqlalchemy import func, select

from app.imaging import thumbnails
from app.store import browse
from app.store.schema import instance
from app.dicom import formatting as text
from app.ui.background import run_in_background
from app.ui.mime import SERIES_MIME, STUDIES_MIME

log = logging.getLogger(__name__)

# (header, keyword, formatter): the columns marked UI=yes in spec Table 4-18
PATIENT_COLUMNS = (
    ("Patient name", "PatientName", text.person_name),
    ("Patient ID", "PatientID", str),
    ("Birth date", "PatientBirthDate", text.date),
    ("Sex", "PatientSex", text.sex),
    ("Studies", "NumberOfStudies", str),
)
STUDY_COLUMNS = (
    ("Patient name", "PatientName", text.person_name),
    ("Patient ID", "PatientID", str),
    ("Birth date", "PatientBirthDate", text.date),
    ("Sex", "PatientSex", text.sex),
    ("Accession", "AccessionNumber", str),
    ("Study date", "StudyDate", text.date),
    ("Time", "StudyTime", text.time),
    ("Description", "StudyDescription", str),
    ("Modalities", "ModalitiesInStudy", text.multi),
    ("Series", "NumberOfStudyRelatedSeries", str),
    ("Images", "NumberOfStudyRelatedInstances", str),
    ("Referring physician", "ReferringPhysicianName", text.person_name),
    ("Archived", "_archived", str),  # storage commitment (✓ committed, ✗ failed, … awaited)
    ("Scheduled procedure", "_procedure", str),  # the worklist item it was acquired for
)
SERIES_COLUMNS = (
    ("#", "SeriesNumber", str),
    ("Modality", "Modality", str),
    ("Description", "SeriesDescription", str),
    ("Date", "SeriesDate", text.date),
    ("Time", "SeriesTime", text.time),
    ("Body part", "BodyPartExamined", str),
    ("Images", "NumberOfSeriesRelatedInstances", str),
)
_NUMERIC = {"NumberOfStudies", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances",
            "SeriesNumber"}
ROW_ROLE = Qt.UserRole + 1


class RowModel(QAbstractTableModel):
    """Rows of DICOM keyword -> value, shown through a column table."""

    def __init__(self, columns, parent: QObject | None = None):
        super().__init__(parent)
        self.columns = columns
        self.rows: list[dict] = []
        self._order: tuple[int, Qt.SortOrder] | None = None
        self.icons: dict[str, QPixmap] = {}  # series thumbnails, by Series Instance UID

    def set_icon(self, series_uid: str, pixmap: QPixmap) -> None:
        self.icons[series_uid] = pixmap
        for r, row in enumerate(self.rows):
            if row.get("SeriesInstanceUID") == series_uid:
                self.dataChanged.emit(self.index(r, 0), self.index(r, 0), [Qt.DecorationRole])

    def set_rows(self, rows: list[dict]) -> None:
        self.beginResetModel()
        self.rows = rows
        if self._order is not None:
            self._sort_rows(*self._order)
        self.endResetModel()

    def sort(self, column: int, order=Qt.AscendingOrder) -> None:
        # Sorting here, with one key per row, takes milliseconds for 10,000 studies; a
        # QSortFilterProxyModel compares through data() and took over a second.
        self._order = (column, order)
        self.layoutAboutToBeChanged.emit()
        self._sort_rows(column, order)
        self.layoutChanged.emit()

    def _sort_rows(self, column: int, order) -> None:
        keyword = self.columns[column][1]
        if keyword in _NUMERIC:
            def key(row):
                try:
                    return (0, int(row.get(keyword)))
                except (TypeError, ValueError):
                    return (1, 0)  # no value: last
        else:
            def key(row):
                value = row.get(keyword)
                return (0, str(value).lower()) if value not in (None, "") else (1, "")
        self.rows.sort(key=key, reverse=order == Qt.DescendingOrder)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    # dragging a series (to a viewport, the film composer) or studies (to the film composer)
    def flags(self, index):
        flags = super().flags(index)
        row = self.rows[index.row()] if index.isValid() and index.row() < len(self.rows) else {}
        return flags | Qt.ItemIsDragEnabled if row.get("SeriesInstanceUID") or row.get("StudyInstanceUID") else flags

    def mimeTypes(self) -> list[str]:
        return [SERIES_MIME, STUDIES_MIME]

    def mimeData(self, indexes):
        rows = [self.rows[r] for r in sorted({i.row() for i in indexes}) if r < len(self.rows)]
        data = QMimeData()
        if rows and rows[0].get("SeriesInstanceUID"):
            data.setData(SERIES_MIME, rows[0]["SeriesInstanceUID"].encode())
        elif rows and rows[0].get("StudyInstanceUID"):
            data.setData(STUDIES_MIME, "\n".join(r["StudyInstanceUID"] for r in rows).encode())
        return data

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return self.columns[section][0]
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        _, keyword, fmt = self.columns[index.column()]
        value = row.get(keyword)
        if role == Qt.DisplayRole:
            return fmt(value) if value not in (None, "") else ""
        if role == Qt.DecorationRole and index.column() == 0 and self.icons:
            return self.icons.get(row.get("SeriesInstanceUID"))
        if role == Qt.TextAlignmentRole and keyword in _NUMERIC:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        if role == ROW_ROLE:
            return row
        return None


class PatientBrowser(QWidget):
    studyActivated = Signal(dict)          # double-click / "Open"
    actionRequested = Signal(str, list)    # context menu action, selected study rows
    studiesShown = Signal(int)             # rows in the list after a search

    def __init__(self, archive, parent: QWidget | None = None):
        super().__init__(parent)
        self.archive = archive
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.thumb_pool = QThreadPool(self)  # thumbnails never hold up a search
        self.thumb_pool.setMaxThreadCount(1)
        self._generation = {"studies": 0, "series": 0}
        self._last_instance_id = None
        self._build()
        self._debounce = QTimer(self, singleShot=True, interval=250, timeout=self.refresh)
        self._poll = QTimer(self, interval=3000, timeout=self._check_for_changes)
        self._poll.start()

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.name = QLineEdit(placeholderText="Patient name (e.g. Doe^J, wildcards * ?)")
        self.patient_id = QLineEdit(placeholderText="Patient ID")
        self.accession = QLineEdit(placeholderText="Accession")
        self.date_preset = QComboBox()
        self.date_preset.addItems([*browse.DATE_PRESETS, "Date range"])
        self.date_from = QDateEdit(calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.date_to = QDateEdit(calendarPopup=True, displayFormat="yyyy-MM-dd")
        today = QDate.currentDate()
        self.date_from.setDate(today.addDays(-7))
        self.date_to.setDate(today)
        self.modality = QComboBox()
        self.modality.addItems(["Any modality", *browse.MODALITIES])
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear_search)
        for w in (self.name, self.patient_id, self.accession):
            w.textChanged.connect(lambda _=None: self._debounce.start())
        self.date_preset.currentIndexChanged.connect(self._preset_changed)
        self.modality.currentIndexChanged.connect(lambda _=None: self.refresh())
        self.date_from.dateChanged.connect(lambda _=None: self._debounce.start())
        self.date_to.dateChanged.connect(lambda _=None: self._debounce.start())
        self._preset_changed()

        bar = QHBoxLayout()
        for w, stretch in ((self.name, 3), (self.patient_id, 1), (self.accession, 1), (self.date_preset, 0),
                           (self.date_from, 0), (self.date_to, 0), (self.modality, 0), (clear, 0)):
            bar.addWidget(w, stretch)

        self.patients = RowModel(PATIENT_COLUMNS, self)
        self.patient_view = self._table(self.patients)
        self.patient_view.sortByColumn(0, Qt.AscendingOrder)
        self.patient_view.selectionModel().selectionChanged.connect(lambda *_: self._show_patient_studies())
        self._all_studies: list[dict] = []

        self.studies = RowModel(STUDY_COLUMNS, self)
        self.study_view = self._table(self.studies)
        self.study_view.sortByColumn(5, Qt.DescendingOrder)
        self.study_view.selectionModel().selectionChanged.connect(lambda *_: self._study_selected())
        self.study_view.doubleClicked.connect(self._activated)
        self.study_view.setContextMenuPolicy(Qt.CustomContextMenu)
        self.study_view.customContextMenuRequested.connect(self._context_menu)

        self.series = RowModel(SERIES_COLUMNS, self)
        self.series_view = self._table(self.series)
        self.series_view.setIconSize(QSize(thumbnails.SIZE, thumbnails.SIZE))
        self.series_view.verticalHeader().setDefaultSectionSize(thumbnails.SIZE + 4)
        self.series_view.sortByColumn(0, Qt.AscendingOrder)

        self.summary = QLabel()
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.study_view)
        right.addWidget(self.series_view)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        split = QSplitter(Qt.Horizontal)  # patients -> studies -> series
        split.addWidget(self.patient_view)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        split.setSizes([380, 1100])
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(split, 1)
        lay.addWidget(self.summary)

    @staticmethod
    def _table(model) -> QTableView:
        view = QTableView()
        view.setModel(model)
        view.setSortingEnabled(True)
        view.setSelectionBehavior(QAbstractItemView.SelectRows)
        view.setSelectionMode(QAbstractItemView.ExtendedSelection)
        view.setAlternatingRowColors(True)
        view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        view.verticalHeader().hide()
        view.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        view.horizontalHeader().setStretchLastSection(True)
        view.setWordWrap(False)
        view.setDragEnabled(True)
        view.setDragDropMode(QAbstractItemView.DragOnly)
        return view

    # -- searching ------------------------------------------------------------------------
    def _preset_changed(self) -> None:
        custom = self.date_preset.currentText() == "Date range"
        self.date_from.setVisible(custom)
        self.date_to.setVisible(custom)
        self.refresh()

    def clear_search(self) -> None:
        for w in (self.name, self.patient_id, self.accession):
            w.blockSignals(True)
            w.clear()
            w.blockSignals(False)
        self.date_preset.setCurrentIndex(0)
        self.modality.setCurrentIndex(0)
        self.refresh()

    def current_filter(self) -> browse.StudyFilter:
        preset = self.date_preset.currentText()
        if preset == "Date range":
            lo, hi = self.date_from.date().toPython(), self.date_to.date().toPython()
            lo, hi = min(lo, hi), max(lo, hi)
        else:
            lo, hi = browse.preset_range(preset, date.today())
        modality = self.modality.currentText()
        return browse.StudyFilter(self.name.text(), self.patient_id.text(), self.accession.text(),
                                  "" if modality == "Any modality" else modality, lo, hi)

    def refresh(self) -> None:
        self._generation["studies"] += 1
        gen = self._generation["studies"]
        flt = self.current_filter()
        engine = self.archive.engine
        run_in_background(lambda: browse.studies(engine, flt), lambda rows, error: self._show_studies(rows, error, gen),
                          self.pool)

    def _show_studies(self, rows, error, gen) -> None:
        if gen != self._generation["studies"]:
            return  # a newer search is on its way
        if error is not None:
            log.warning("the archive could not be searched: %s", error)
            self.summary.setText(f"The archive could not be searched: {error}. Check the database "
                                 "(Settings) and the log; the list shows the last answer.")
            return
        chosen_patients = {_patient_key(r) for r in self.selected_patients()}
        first = not self._all_studies
        self._all_studies = rows
        self.patients.set_rows(_patients_of(rows))
        if first and rows:
            self.patient_view.resizeColumnsToContents()
        if chosen_patients:
            self._reselect(self.patient_view, self.patients, lambda r: _patient_key(r) in chosen_patients)
        n = self._show_patient_studies(first)
        more = " (the first ones; narrow the search to see others)" if len(rows) >= browse.STUDY_LIMIT else ""
        self.summary.setText(f"{self.patients.rowCount()} patient(s), {len(rows)} "
                             f"{'study' if len(rows) == 1 else 'studies'}{more}")
        self.studiesShown.emit(n)

    def selected_patients(self) -> list[dict]:
        return [self.patients.rows[i.row()] for i in self.patient_view.selectionModel().selectedRows()]

    def _show_patient_studies(self, resize: bool = False) -> int:
        """The studies of the selected patients (all matching studies if none is selected)."""
        chosen = {_patient_key(r) for r in self.selected_patients()}
        rows = [r for r in self._all_studies if _patient_key(r) in chosen] if chosen else self._all_studies
        selected = {r["StudyInstanceUID"] for r in self.selected_studies()}
        self.studies.set_rows(list(rows))
        if resize and rows:
            self.study_view.resizeColumnsToContents()  # once: later searches keep the user's widths
        if selected:
            self._reselect(self.study_view, self.studies, lambda r: r.get("StudyInstanceUID") in selected)
        return len(rows)

    @staticmethod
    def _reselect(view, model: RowModel, wanted) -> None:
        for r, row in enumerate(model.rows):
            if wanted(row):
                view.selectRow(r)
                break

    # -- selection ------------------------------------------------------------------------
    def selected_studies(self) -> list[dict]:
        rows = {i.row() for i in self.study_view.selectionModel().selectedRows()}
        return [self.studies.rows[r] for r in sorted(rows)]

    def _study_selected(self) -> None:
        chosen = self.selected_studies()
        self._generation["series"] += 1
        gen = self._generation["series"]
        if len(chosen) != 1:
            self.series.set_rows([])
            return
        uid = chosen[0]["StudyInstanceUID"]
        engine = self.archive.engine
        run_in_background(lambda: browse.series_of(engine, uid), lambda rows, error: self._show_series(rows, error, gen),
                          self.pool)

    def _show_series(self, rows, error, gen) -> None:
        if gen == self._generation["series"] and error is None:
            self.series.set_rows(rows)
            self.series_view.resizeColumnsToContents()
            for row in rows:
                uid = row["SeriesInstanceUID"]
                if uid not in self.series.icons:
                    self._request_thumbnail(uid)

    def _request_thumbnail(self, uid: str) -> None:
        archive = self.archive

        def ready(path, error) -> None:
            if error is None and path is not None:
                pixmap = QPixmap(str(path))
                if not pixmap.isNull():
                    self.series.set_icon(uid, pixmap)
                    self.series_view.resizeColumnToContents(0)
        run_in_background(lambda: thumbnails.thumbnail(archive, uid), ready, self.thumb_pool)

    def _activated(self, index) -> None:
        row = index.data(ROW_ROLE)
        if row:
            self.studyActivated.emit(row)

    def _context_menu(self, pos) -> None:
        chosen = self.selected_studies()
        if not chosen:
            return
        menu = QMenu(self)
        for label, action in (("Open in viewer", "open"), ("Send to…", "send"), ("Export…", "export"),
                              ("Print…", "print"), (None, None), ("Correct…", "correct"), ("Delete…", "delete")):
            if label is None:
                menu.addSeparator()
                continue
            act = menu.addAction(label)
            act.setData(action)
        picked = menu.exec(self.study_view.viewport().mapToGlobal(pos))
        if picked is not None:
            self.actionRequested.emit(picked.data(), chosen)

    # -- live updates ---------------------------------------------------------------------
    def instances_added(self, _uids: list) -> None:
        """The node indexed something: search again shortly (bursts coalesce)."""
        if not self._debounce.isActive():
            self._debounce.start(200)

    def _check_for_changes(self) -> None:
        engine = self.archive.engine

        def latest():
            with engine.connect() as conn:
                return conn.execute(select(func.max(instance.c.id))).scalar()
        run_in_background(latest, self._latest_known, self.pool)

    def _latest_known(self, latest, error) -> None:
        if error is not None:
            return  # a locked or moved database: try again at the next check
        if self._last_instance_id is not None and latest != self._last_instance_id:
            self.refresh()
        self._last_instance_id = latest


def _patient_key(row: dict) -> tuple:
    return (row.get("PatientID") or "", row.get("IssuerOfPatientID") or "")


def _patients_of(studies: list[dict]) -> list[dict]:
    """One row per patient of the studies found, with how many of them are theirs."""
    patients: dict[tuple, dict] = {}
    for s in studies:
        key = _patient_key(s)
        p = patients.get(key)
        if p is None:
            patients[key] = p = {k: s.get(k) for k in ("PatientName", "PatientID", "IssuerOfPatientID",
                                                        "PatientBirthDate", "PatientSex")}
            p["NumberOfStudies"] = 0
        p["NumberOfStudies"] += 1
    return list(patients.values())
