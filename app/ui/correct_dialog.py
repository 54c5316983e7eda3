"""Correcting a study from the browser (spec §4.2.1.3.1.8; issue 8 item 4): patient data,
Patient Position, a move to a scheduled procedure of the worklist or to another patient, a
merge of the study's patient into another. What to do becomes the same request the command
line makes (app.store.correct.plan); the reference's warning is shown before anything is
changed, and the correction itself runs off the GUI thread, all objects or none."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QMessageBox, QTableWidget,
    QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget,
)

from app.store import worklist
from app.store.correct import WARNING, Request

POSITIONS = ("HFS", "FFS", "HFP", "FFP")


class CorrectDialog(QDialog):
    def __init__(self, archive, row: dict, parent: QWidget | None = None):
        super().__init__(parent)
        self.archive, self.row = archive, row
        self.setWindowTitle("Correct study")
        self.resize(760, 460)
        self.tabs = QTabWidget()
        # patient data
        page = QWidget()
        form = QFormLayout(page)
        self.fields = {}
        for keyword, label in (("PatientName", "Patient's name"), ("PatientID", "Patient ID"),
                               ("IssuerOfPatientID", "Issuer of Patient ID"),
                               ("PatientBirthDate", "Birth date (YYYYMMDD)")):
            edit = QLineEdit(str(row.get(keyword) or ""))
            self.fields[keyword] = edit
            form.addRow(label, edit)
        self.sex = QComboBox()
        self.sex.addItems(["", "F", "M", "O"])
        self.sex.setCurrentText(str(row.get("PatientSex") or ""))
        form.addRow("Sex", self.sex)
        form.addRow(QLabel("The study keeps its UIDs; the Patient's Age is computed again."))
        self.tabs.addTab(page, "Patient data")
        # position
        page = QWidget()
        form = QFormLayout(page)
        self.position = QComboBox()
        self.position.addItems(POSITIONS)
        form.addRow("Acquired in Patient Position", self.position)
        form.addRow(QLabel("Positions and orientations are turned with the patient; each series gets a new "
                           "frame of reference."))
        self.tabs.addTab(page, "Patient position")
        # move to a procedure
        self.items = worklist.items(archive.engine, include_vanished=True)
        self.procedures = QTableWidget(len(self.items), 6)
        self.procedures.setHorizontalHeaderLabels(["Date", "Modality", "Patient", "Patient ID", "Accession",
                                                   "Procedure"])
        self.procedures.setSelectionBehavior(QTableWidget.SelectRows)
        self.procedures.setSelectionMode(QTableWidget.SingleSelection)
        self.procedures.setEditTriggers(QTableWidget.NoEditTriggers)
        for r, item in enumerate(self.items):
            for c, key in enumerate(("ScheduledProcedureStepStartDate", "Modality", "PatientName", "PatientID",
                                     "AccessionNumber")):
                self.procedures.setItem(r, c, QTableWidgetItem(str(item.get(key) or "")))
            self.procedures.setItem(r, 5, QTableWidgetItem(worklist.procedure_text(item)))
        self.procedures.resizeColumnsToContents()
        self.tabs.addTab(self.procedures, "Move to procedure")
        # move to / merge into another patient
        page = QWidget()
        form = QFormLayout(page)
        self.to_patient = QLineEdit()
        form.addRow("Move the study to Patient ID", self.to_patient)
        form.addRow(QLabel("A new Study Instance UID is generated for it."))
        self.merge_into = QLineEdit()
        form.addRow(f"Merge patient {row.get('PatientID') or ''} into Patient ID", self.merge_into)
        form.addRow(QLabel("Every study of this patient takes the other patient's data; UIDs are kept."))
        self.tabs.addTab(page, "Other patient")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Correct…")
        buttons.accepted.connect(self._confirm)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Study of {row.get('PatientName') or '?'} ({row.get('PatientID') or '?'}), "
                                f"{row.get('StudyDate') or ''} {row.get('StudyDescription') or ''}"))
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)

    def request(self) -> Request:
        """What the open tab asks for."""
        study = self.row["StudyInstanceUID"]
        tab = self.tabs.currentIndex()
        if tab == 0:
            changes = {k: e.text().strip() for k, e in self.fields.items()
                       if e.text().strip() != str(self.row.get(k) or "")}
            if self.sex.currentText() != str(self.row.get("PatientSex") or ""):
                changes["PatientSex"] = self.sex.currentText()
            return Request(study=study, patient=changes)
        if tab == 1:
            return Request(study=study, position=self.position.currentText())
        if tab == 2:
            picked = self.procedures.currentRow()
            return Request(study=study, to_procedure=self.items[picked]["id"] if picked >= 0 else -1)
        if self.merge_into.text().strip():
            return Request(merge_patient=self.row.get("PatientID"), merge_into=self.merge_into.text().strip())
        return Request(study=study, to_patient=self.to_patient.text().strip() or None)

    def _confirm(self) -> None:
        answer = QMessageBox.warning(self, "Correct study", f"{WARNING}\n\nCorrect now?",
                                     QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        if answer == QMessageBox.Yes:
            self.accept()
