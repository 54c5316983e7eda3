"""Query/Retrieve: search one or several remote nodes (results merged by study, the
reference's "enterprise query" done from the workstation), look into a study's series, and
retrieve studies or series as jobs (app.jobs.retrieve_job)."""

from __future__ import annotations

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDateEdit, QDialog, QFormLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout)

from app.dicom import formatting as text
from app.net import query_retrieve as qr
from app.store.browse import DATE_PRESETS, date_key, preset_range
from app.ui.background import run_in_background

# the study-level search fields of Table 4-18 shown in the form (keyword, label); Study Date
# has its presets, and the rest of the table's keys are returned and shown
FIELDS = (("PatientName", "Patient name"), ("PatientID", "Patient ID"), ("AccessionNumber", "Accession number"),
          ("ModalitiesInStudy", "Modalities"), ("StudyDescription", "Study description"),
          ("ReferringPhysicianName", "Referring physician"), ("PatientBirthDate", "Birth date"))
COLUMNS = (("PatientName", "Patient"), ("PatientID", "Patient ID"), ("PatientBirthDate", "Born"),
           ("StudyDate", "Date"), ("AccessionNumber", "Accession"), ("ModalitiesInStudy", "Modalities"),
           ("StudyDescription", "Description"), ("NumberOfStudyRelatedInstances", "Images"), ("_nodes", "On"))
RANGE = "Date range"  # as in the browser
UID_ROLE = Qt.UserRole
ROW_ROLE = Qt.UserRole + 1


class QueryRetrieveDialog(QDialog):
    def __init__(self, archive, jobs, nodes: list, owner: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Query / Retrieve")
        self.archive, self.jobs, self.owner = archive, jobs, owner
        self.nodes = {n.name: n for n in nodes if "find" in n.roles}
        self._pending = 0
        self._found: dict[str, list[dict]] = {}
        self._errors: list[str] = []
        lay = QVBoxLayout(self)

        top = QHBoxLayout()
        self.node_list = QListWidget()
        self.node_list.setMaximumHeight(110)
        for i, node in enumerate(self.nodes.values()):
            item = QListWidgetItem(f"{node.name} — {node.aet}@{node.host}:{node.port}")
            item.setData(UID_ROLE, node.name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if i == 0 else Qt.Unchecked)
            self.node_list.addItem(item)
        left = QVBoxLayout()
        left.addWidget(QLabel("Search on (several: results merged by study):"))
        left.addWidget(self.node_list)
        left.addStretch(1)
        if not self.nodes:
            left.addWidget(QLabel("No remote node offers queries yet: add one with the 'find' role in "
                                  "Tools → Settings → Remote nodes."))
        top.addLayout(left, 1)
        form = QFormLayout()
        self.fields: dict[str, QLineEdit] = {}
        for kw, label in FIELDS:
            edit = QLineEdit()
            edit.setPlaceholderText("any" if kw != "PatientName" else "e.g. DOE^J (a * is added)")
            edit.returnPressed.connect(self.search)
            self.fields[kw] = edit
            form.addRow(label, edit)
        dates = QHBoxLayout()
        self.preset = QComboBox()
        self.preset.addItems([*DATE_PRESETS, RANGE])  # the browser's presets, and a range
        self.start, self.end = QDateEdit(QDate.currentDate()), QDateEdit(QDate.currentDate())
        for d in (self.start, self.end):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
        self.preset.currentIndexChanged.connect(self._preset_changed)
        dates.addWidget(self.preset)
        dates.addWidget(self.start)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.end)
        form.addRow("Study date", dates)
        top.addLayout(form, 1)
        lay.addLayout(top)
        self._preset_changed()

        buttons = QHBoxLayout()
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        self.status = QLabel()
        self.status.setWordWrap(True)
        buttons.addWidget(self.search_button)
        buttons.addWidget(self.status, 1)
        lay.addLayout(buttons)

        self.results = QTreeWidget()
        self.results.setColumnCount(len(COLUMNS))
        self.results.setHeaderLabels([label for _, label in COLUMNS])
        self.results.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.results.setRootIsDecorated(True)
        self.results.header().setSectionResizeMode(QHeaderView.Interactive)
        self.results.itemExpanded.connect(self._expanded)
        self.results.itemSelectionChanged.connect(self._selection_changed)
        lay.addWidget(self.results, 1)

        bottom = QHBoxLayout()
        self.method = QComboBox()
        self.method.addItems(["C-MOVE (to this workstation)", "C-GET (over one association, for firewalls)"])
        self.retrieve_button = QPushButton("Retrieve")
        self.retrieve_button.setEnabled(False)
        self.retrieve_button.clicked.connect(self.retrieve)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom.addWidget(QLabel("Method:"))
        bottom.addWidget(self.method)
        bottom.addStretch(1)
        bottom.addWidget(self.retrieve_button)
        bottom.addWidget(close)
        lay.addLayout(bottom)
        self.resize(1100, 640)

    # -- search ---------------------------------------------------------------------------
    def _preset_changed(self) -> None:
        ranged = self.preset.currentText() == RANGE
        self.start.setEnabled(ranged)
        self.end.setEnabled(ranged)

    def chosen_nodes(self) -> list:
        out = []
        for i in range(self.node_list.count()):
            item = self.node_list.item(i)
            if item.checkState() == Qt.Checked:
                out.append(self.nodes[item.data(UID_ROLE)])
        return out

    def keys(self) -> dict[str, str]:
        keys = {kw: edit.text().strip() for kw, edit in self.fields.items() if edit.text().strip()}
        if keys.get("PatientName") and not keys["PatientName"].endswith("*"):
            keys["PatientName"] += "*"  # as the browser and the reference's SCP do: DOE finds DOE^JOHN
        if self.preset.currentText() == RANGE:
            lo, hi = self.start.date().toPython(), self.end.date().toPython()
        else:
            lo, hi = preset_range(self.preset.currentText())
        if when := date_key(lo, hi):
            keys["StudyDate"] = when
        return keys

    def search(self) -> None:
        nodes = self.chosen_nodes()
        if not nodes:
            self.status.setText("Choose at least one node to search on.")
            return
        self.results.clear()
        self._found, self._errors, self._pending = {}, [], len(nodes)
        self.search_button.setEnabled(False)
        self.status.setText(f"Searching {', '.join(n.name for n in nodes)} …")
        settings, keys = self.archive.settings, self.keys()
        for node in nodes:
            def ask(node=node):
                matches, note = qr.find_remote(settings, node, "study", keys)
                return [qr.identifier_values(ds) for ds in matches], note
            run_in_background(ask, lambda result, error, node=node: self._answered(node, result, error))

    def _answered(self, node, result, error) -> None:
        self._pending -= 1
        if error is not None:
            self._errors.append(f"{node.name}: {error}")
        else:
            rows, note = result
            self._found[node.name] = rows
            if note:
                self._errors.append(f"{node.name}: {note}")
        if self._pending:
            return
        self.search_button.setEnabled(True)
        order = [n.name for n in self.chosen_nodes() if n.name in self._found]
        studies = qr.merge_studies({name: self._found[name] for name in order})
        for row in studies:
            item = QTreeWidgetItem([self._cell(row, kw) for kw, _ in COLUMNS])
            item.setData(0, UID_ROLE, row["StudyInstanceUID"])
            item.setData(0, ROW_ROLE, row)
            item.setChildIndicatorPolicy(QTreeWidgetItem.ShowIndicator)
            self.results.addTopLevelItem(item)
        for i in range(len(COLUMNS)):
            self.results.resizeColumnToContents(i)
        text_ = f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'} found"
        if self._errors:
            text_ += " — " + "; ".join(self._errors)
        self.status.setText(text_)

    @staticmethod
    def _cell(row: dict, kw: str) -> str:
        value = row.get(kw)
        if kw == "_nodes":
            return ", ".join(value or [])
        if kw == "PatientName":
            return text.person_name(value) or ""
        if kw in ("StudyDate", "PatientBirthDate"):
            return text.date(value) if value else ""
        return str(value or "")

    def _expanded(self, item: QTreeWidgetItem) -> None:
        """A study's series, asked of the first node that has it, on first expansion."""
        if item.parent() is not None or item.childCount() or item.data(1, UID_ROLE) == "asked":
            return
        item.setData(1, UID_ROLE, "asked")
        row = item.data(0, ROW_ROLE)
        node = self._holder(row, ("find",))
        settings, study = self.archive.settings, row["StudyInstanceUID"]

        def ask():
            matches, _ = qr.find_remote(settings, node, "series", {"StudyInstanceUID": study})
            return [qr.identifier_values(ds) for ds in matches]

        def show(rows, error) -> None:
            if error is not None:
                child = QTreeWidgetItem([f"series cannot be listed: {error}"])
                item.addChild(child)
                return
            for r in sorted(rows, key=lambda r: (len(r.get("SeriesNumber", "")), r.get("SeriesNumber", ""))):
                child = QTreeWidgetItem(["", "", "", "", "", r.get("Modality", ""),
                                         f"#{r.get('SeriesNumber', '?')} {r.get('SeriesDescription', '')}".strip(),
                                         r.get("NumberOfSeriesRelatedInstances", ""), node.name])
                child.setData(0, UID_ROLE, r.get("SeriesInstanceUID"))
                child.setData(0, ROW_ROLE, {**r, "StudyInstanceUID": study, "_nodes": [node.name]})
                item.addChild(child)
            if not rows:
                item.setChildIndicatorPolicy(QTreeWidgetItem.DontShowIndicator)
        run_in_background(ask, show)

    def _holder(self, row: dict, roles: tuple[str, ...]):
        """The first node holding the row that offers ``roles`` (else simply the first)."""
        holders = [self.nodes[name] for name in row["_nodes"]]
        return next((n for n in holders if all(r in n.roles for r in roles)), holders[0])

    # -- retrieve -------------------------------------------------------------------------
    def _selection_changed(self) -> None:
        self.retrieve_button.setEnabled(bool(self.results.selectedItems()))

    def retrieve(self) -> list[int] | None:
        """One retrieve job per selected study or series (from the first node holding it)."""
        from app.jobs import retrieve_job
        method = "get" if self.method.currentIndex() == 1 else "move"
        picked = []
        for item in self.results.selectedItems():
            row = item.data(0, ROW_ROLE)
            if not row:
                continue
            series = row.get("SeriesInstanceUID") if item.parent() is not None else None
            picked.append((self._holder(row, (method,)).name, row["StudyInstanceUID"], series))
        jobs, owner = self.jobs, self.owner
        archive = self.archive

        def queue() -> list[int]:
            from app.store import audit
            ids = []
            for node_name, study, series in picked:
                job_id = jobs.submit(retrieve_job.KIND, retrieve_job.title(node_name, study, series, method),
                                     retrieve_job.params(node_name, study, series, method), owner=owner,
                                     group=retrieve_job.group(node_name))
                audit.log(archive.engine, owner or "workstation", "retrieve",
                          f"from {node_name} by {method}, job {job_id}", study_uid=study)
                ids.append(job_id)
            return ids

        def queued(ids, error) -> None:
            self.status.setText(f"The retrieve could not be queued: {error}" if error is not None else
                                f"{len(ids)} retrieve job(s) queued: see the jobs panel")
        run_in_background(queue, queued)
        return None
