"""The jobs panel: every long operation with live progress, status and its message in
plain language; Cancel, Retry, and clearing finished jobs. Jobs live in the database, so
the panel shows what survived a restart too."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QPushButton, QStyle,
                               QStyledItemDelegate, QStyleOptionProgressBar, QApplication, QTableView,
                               QVBoxLayout, QWidget)

from app.jobs.queue import CANCELLED, DONE, FAILED, FINISHED, QUEUED, RUNNING, JobQueue
from app.ui.background import run_in_background

COLUMNS = ("Job", "Status", "Progress", "Message", "By")
_STATUS_TEXT = {QUEUED: "Waiting", RUNNING: "Running", DONE: "Done", FAILED: "Failed", CANCELLED: "Cancelled"}


class JobsModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.jobs: list[dict] = []

    def load(self, jobs: list[dict]) -> None:
        self.beginResetModel()
        self.jobs = jobs
        self.endResetModel()

    def update(self, job: dict) -> None:
        for row, j in enumerate(self.jobs):
            if j["id"] == job["id"]:
                self.jobs[row] = job
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.jobs.insert(0, job)
        self.endInsertRows()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.jobs)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        return COLUMNS[section] if role == Qt.DisplayRole and orientation == Qt.Horizontal else None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        job = self.jobs[index.row()]
        col = index.column()
        if role == Qt.DisplayRole:
            if col == 0:
                return job["title"]
            if col == 1:
                return _STATUS_TEXT.get(job["status"], job["status"])
            if col == 2:
                return f"{job['done']}/{job['total']}" if job["total"] else ""
            if col == 3:
                return job["message"]
            if col == 4:
                return job.get("owner") or ""
        if role == Qt.UserRole:
            return job
        if role == Qt.ToolTipRole and col == 3:
            return job["message"]
        if role == Qt.ForegroundRole and col == 1 and job["status"] == FAILED:
            from PySide6.QtGui import QColor
            return QColor("#b00020")
        return None


class ProgressDelegate(QStyledItemDelegate):
    def paint(self, painter, option, index):
        job = index.data(Qt.UserRole)
        if not job or not job["total"]:
            return super().paint(painter, option, index)
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum = 0, max(1, job["total"])
        bar.progress = min(job["done"], job["total"])
        bar.text = f"{job['done']}/{job['total']}"
        bar.textVisible = True
        bar.state = option.state
        QApplication.style().drawControl(QStyle.CE_ProgressBar, bar, painter)


class JobsPanel(QWidget):
    def __init__(self, queue: JobQueue, parent=None):
        super().__init__(parent)
        self.queue = queue
        self.model = JobsModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(2, ProgressDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.view.verticalHeader().hide()
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(3, QHeaderView.Stretch)
        self.view.setColumnWidth(0, 260)
        self.view.setColumnWidth(2, 160)
        self.cancel_button = QPushButton("Cancel")
        self.retry_button = QPushButton("Retry")
        self.get_button = QPushButton("Retry with C-GET")
        self.get_button.setToolTip("Retrieve again over one association, for a node that cannot send to this "
                                   "workstation (move destination unknown, firewall)")
        self.get_button.clicked.connect(self._retry_with_get)
        self.clear_button = QPushButton("Clear finished")
        self.cancel_button.clicked.connect(lambda: self._each_selected(self.queue.cancel, (QUEUED, RUNNING)))
        self.retry_button.clicked.connect(lambda: self._each_selected(self.queue.retry, (FAILED, CANCELLED)))
        self.clear_button.clicked.connect(self._clear)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._buttons())
        buttons = QHBoxLayout()
        for b in (self.cancel_button, self.retry_button, self.get_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        lay.addLayout(buttons)
        self.reload()

    def reload(self) -> None:
        def show(jobs, error) -> None:
            if error is None:
                self.model.load(jobs)
                self._buttons()
        run_in_background(lambda: [j.as_dict() for j in self.queue.list()], show)

    def job_updated(self, job: dict) -> None:
        self.model.update(job)
        self._buttons()

    def selected(self) -> list[dict]:
        return [self.model.jobs[i.row()] for i in self.view.selectionModel().selectedRows()]

    def _each_selected(self, action, states) -> None:
        ids = [job["id"] for job in self.selected() if job["status"] in states]
        run_in_background(lambda: [action(i) for i in ids])  # the queue announces the changes

    @staticmethod
    def _moved_and_failed(job: dict) -> bool:
        return job["kind"] == "retrieve" and job["status"] == FAILED and job["params"].get("method") == "move"

    def _retry_with_get(self) -> None:
        from app.jobs import retrieve_job
        chosen = [j for j in self.selected() if self._moved_and_failed(j)]

        def again() -> None:
            for job in chosen:
                p = {**job["params"], "method": "get"}
                self.queue.retry(job["id"], p, retrieve_job.title(p["node"], p["study"], p.get("series"), "get"))
        run_in_background(again)

    def _clear(self) -> None:
        run_in_background(self.queue.remove_finished, lambda *_: self.reload())

    def _buttons(self) -> None:
        chosen = self.selected()
        self.cancel_button.setEnabled(any(j["status"] in (QUEUED, RUNNING) for j in chosen))
        self.retry_button.setEnabled(any(j["status"] in (FAILED, CANCELLED) for j in chosen))
        self.get_button.setVisible(any(self._moved_and_failed(j) for j in self.model.jobs))
        self.get_button.setEnabled(any(self._moved_and_failed(j) for j in chosen))
        self.clear_button.setEnabled(any(j["status"] in FINISHED for j in self.model.jobs))
