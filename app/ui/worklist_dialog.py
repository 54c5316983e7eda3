"""The worklist dialog (issue 8, item 2): the items kept from the worklist providers
(app.store.worklist) with the columns spec Table 4-24 marks for the user interface, filters,
a details pane with every return key of the selected item, Refresh (a query of every
provider now) and when each provider last answered.

Thousands of items: the list is read off the GUI thread; the columns the database does not
hold are read from an item only when a row is drawn (or sorted on), not for every item."""

from __future__ import annotations

from datetime import date, timedelta

from pydicom.datadict import dictionary_description
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QSplitter,
    QTableView, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

from app.store import worklist
from app.dicom import formatting as text
from app.ui.background import run_in_background
from app.ui.browser import ROW_ROLE, RowModel

_FORMAT = {"PatientName": text.person_name, "ScheduledPerformingPhysicianName": text.person_name,
           "ReferringPhysicianName": text.person_name, "RequestingPhysician": text.person_name,
           "OtherPatientNames": text.person_name, "PatientBirthDate": text.date, "StudyDate": text.date,
           "ScheduledProcedureStepStartDate": text.date, "LastMenstrualDate": text.date,
           "ScheduledProcedureStepStartTime": text.time, "StudyTime": text.time, "PatientSex": text.sex}
_FIRST = ("ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime", "Modality", "PatientName",
          "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "RequestedProcedureDescription",
          "RequestedProcedureID", "ScheduledProcedureStepDescription", "ScheduledProcedureStepID",
          "ScheduledStationName", "ScheduledStationAETitle", "ScheduledPerformingPhysicianName",
          "RequestedProcedurePriority")
_SHORT = {"ScheduledProcedureStepStartDate": "Date", "ScheduledProcedureStepStartTime": "Time",
          "ScheduledProcedureStepDescription": "Step", "ScheduledProcedureStepID": "Step ID",
          "RequestedProcedureDescription": "Procedure", "RequestedProcedureID": "Procedure ID",
          "ScheduledStationAETitle": "Station AE", "ScheduledPerformingPhysicianName": "Performing physician",
          "RequestedProcedurePriority": "Priority", "AccessionNumber": "Accession"}


def shown_keys() -> list[tuple[str, ...]]:
    """The paths of the dialog's columns: the ones to read a worklist by first, then every
    other key Table 4-24 marks "x", plus the station's AE title the filters use."""
    from app.net.worklist import worklist_keys
    marked = [k.path for k in worklist_keys() if k.shown]
    by_keyword = {p[-1]: p for p in marked}
    by_keyword.setdefault("ScheduledStationAETitle", ("ScheduledProcedureStepSequence", "ScheduledStationAETitle"))
    by_keyword.setdefault("ScheduledProcedureStepStartDate",
                          ("ScheduledProcedureStepSequence", "ScheduledProcedureStepStartDate"))
    by_keyword.setdefault("ScheduledProcedureStepStartTime",
                          ("ScheduledProcedureStepSequence", "ScheduledProcedureStepStartTime"))
    first = [by_keyword[k] for k in _FIRST if k in by_keyword]
    return first + [p for p in marked if p not in first]


_PATHS = {p[-1]: p for p in shown_keys()}
COLUMNS = tuple((_SHORT.get(k, dictionary_description(k)), k, _FORMAT.get(k, str))
                for k in _PATHS) + (("Provider", "node", str), ("State", "status", str))


class WorklistModel(RowModel):
    """The browser's row model; the values of the columns the database does not keep are
    read from the row's item the first time a row needs them."""

    def data(self, index, role=Qt.DisplayRole):
        if index.isValid() and role == Qt.DisplayRole:
            _fill(self.rows[index.row()])
        return super().data(index, role)

    def _sort_rows(self, column: int, order) -> None:
        if self.columns[column][1] not in worklist.COLUMNS:
            for row in self.rows:
                _fill(row)
        super()._sort_rows(column, order)


def _fill(row: dict) -> None:
    if row.get("_filled"):
        return
    ds = worklist.item_dataset(row)
    for keyword, path in _PATHS.items():
        if keyword not in worklist.COLUMNS:
            row[keyword] = worklist.value(ds, path) or None
    row["_filled"] = True


class WorklistDialog(QDialog):
    DATES = ("Today", "Today ± window", "All")

    def __init__(self, archive, parent: QWidget | None = None):
        super().__init__(parent)
        self.archive = archive
        self.setWindowTitle("Modality worklist")
        self.resize(1300, 760)
        self.all_rows: list[dict] = []
        self._build()
        self.reload()

    def _build(self) -> None:
        self.search = QLineEdit(placeholderText="Patient name, ID or accession")
        self.modality = QComboBox()
        self.modality.addItem("Any modality")
        self.dates = QComboBox()
        self.dates.addItems(self.DATES)
        self.dates.setCurrentIndex(1)
        self.ours = QCheckBox(f"Only this station ({self.archive.settings['node.aet']})")
        self.vanished = QCheckBox("Show vanished items")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Query every worklist provider now")
        self.refresh_button.clicked.connect(self.refresh)
        for w in (self.search,):
            w.textChanged.connect(lambda _=None: self.apply_filters())
        for w in (self.modality, self.dates):
            w.currentIndexChanged.connect(lambda _=None: self.apply_filters())
        self.ours.toggled.connect(lambda _=None: self.apply_filters())
        self.vanished.toggled.connect(lambda _=None: self.reload())
        bar = QHBoxLayout()
        for w in (self.search, self.modality, self.dates, self.ours, self.vanished, self.refresh_button):
            bar.addWidget(w)
        self.model = WorklistModel(COLUMNS, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.AscendingOrder)  # soonest first (Qt's default is descending)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setResizeContentsPrecision(100)  # not every one of 5000 rows
        self.table.setSelectionBehavior(QTableView.SelectRows)
        self.table.setSelectionMode(QTableView.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.verticalHeader().hide()
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.show_details(cur))
        self.details = QTreeWidget()
        self.details.setHeaderLabels(["Attribute", "Value"])
        self.details.setColumnWidth(0, 300)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setSizes([480, 220])
        self.count = QLabel()
        self.providers = QLabel()
        self.providers.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        layout.addWidget(self.count)
        layout.addWidget(self.providers)

    # -- data ------------------------------------------------------------------------------
    def reload(self) -> None:
        """The kept items and each provider's last query, read off the GUI thread."""
        engine, vanished = self.archive.engine, self.vanished.isChecked()
        run_in_background(lambda: (worklist.items(engine, include_vanished=vanished), worklist.status(engine)),
                          self._loaded)

    def _loaded(self, result, error) -> None:
        if error is not None:
            self.count.setText(f"The worklist cannot be read: {error}")
            return
        self.all_rows, status = result
        modalities = sorted({r["Modality"] for r in self.all_rows if r.get("Modality")})
        current = self.modality.currentText()
        self.modality.blockSignals(True)
        self.modality.clear()
        self.modality.addItems(["Any modality", *modalities])
        if current in modalities:
            self.modality.setCurrentText(current)
        self.modality.blockSignals(False)
        self._show_status(status)
        self.apply_filters()

    def _show_status(self, status: dict) -> None:
        if not status:
            self.providers.setText("No worklist provider has been queried yet: give a remote node the "
                                   "'worklist' role in Settings ▸ Remote nodes.")
            return
        parts = []
        for name, s in sorted(status.items()):
            when = s["last_success"].strftime("%Y-%m-%d %H:%M:%S") if s["last_success"] else "never"
            line = f"<b>{name}</b>: last successful query {when} ({s['last_count'] or 0} items)"
            if s["last_error"]:
                line += f" — <span style='color:#c0392b'>last attempt failed: {s['last_error']}</span>"
            parts.append(line)
        self.providers.setText("<br>".join(parts))

    def apply_filters(self) -> None:
        words = self.search.text().strip().lower()
        modality = self.modality.currentText() if self.modality.currentIndex() > 0 else ""
        ours = self.archive.settings["node.aet"] if self.ours.isChecked() else ""
        today = date.today()
        if self.dates.currentIndex() == 0:
            span = (today.strftime("%Y%m%d"),) * 2
        elif self.dates.currentIndex() == 1:
            s = self.archive.settings
            span = ((today - timedelta(days=s["worklist.days_past"])).strftime("%Y%m%d"),
                    (today + timedelta(days=s["worklist.days_future"])).strftime("%Y%m%d"))
        else:
            span = None

        def keep(r: dict) -> bool:
            if modality and r.get("Modality") != modality:
                return False
            if ours and r.get("ScheduledStationAETitle") != ours:
                return False
            if span and not span[0] <= (r.get("ScheduledProcedureStepStartDate") or "") <= span[1]:
                return False
            if words and not any(words in (r.get(k) or "").lower()
                                 for k in ("PatientName", "PatientID", "AccessionNumber")):
                return False
            return True
        rows = [r for r in self.all_rows if keep(r)]
        self.model.set_rows(rows)
        if rows and not getattr(self, "_sized", False):
            self._sized = True
            self.table.resizeColumnsToContents()
        self.count.setText(f"{len(rows)} of {len(self.all_rows)} item(s)")
        self.details.clear()

    def refresh(self) -> None:
        """Query every worklist provider now (Table 4-25: a failure is shown, the last good
        list stays)."""
        from app.net.worklist import poll_all
        self.refresh_button.setEnabled(False)
        self.count.setText("Querying the worklist providers…")
        archive = self.archive
        pending: dict[str, int] = {}  # written by the query's thread, read by the timer

        def show_pending() -> None:
            if pending:
                self.count.setText("Querying the worklist providers… " + ", ".join(
                    f"{name}: {n} item(s) so far" for name, n in sorted(dict(pending).items())))
        timer = QTimer(self, interval=200, timeout=show_pending)
        timer.start()

        def done(results, error) -> None:
            timer.stop()
            self.refresh_button.setEnabled(True)
            if error is not None:
                self.count.setText(f"The worklist query failed: {error}")
            self.reload()
        run_in_background(lambda: poll_all(archive, on_pending=pending.__setitem__), done)

    # -- details ---------------------------------------------------------------------------
    def show_details(self, index) -> None:
        self.details.clear()
        if not index.isValid():
            return
        row = self.model.data(self.model.index(index.row(), 0), ROW_ROLE)
        ds = worklist.item_dataset(row)
        top = QTreeWidgetItem(["Provider", f"{row['node']} ({row['status']})"])
        self.details.addTopLevelItem(top)
        _add_elements(self.details.invisibleRootItem(), ds)
        self.details.expandAll()


def _add_elements(parent: QTreeWidgetItem, ds) -> None:
    for elem in ds:
        name = elem.name if elem.keyword else str(elem.tag)
        if elem.VR == "SQ":
            node = QTreeWidgetItem([name, f"{len(elem.value)} item(s)"])
            parent.addChild(node)
            for i, item in enumerate(elem.value):
                child = QTreeWidgetItem([f"item {i + 1}", ""])
                node.addChild(child)
                _add_elements(child, item)
        else:
            value = elem.value
            shown = "\\".join(str(v) for v in value) if elem.VM > 1 else ("" if value is None else str(value))
            parent.addChild(QTreeWidgetItem([name, shown]))
