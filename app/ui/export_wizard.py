"""The export wizard (spec §5.2.1.2.3 "Export to local Archive Media"): the studies chosen in
the browser → which of their series → the medium and profile (Standard: uncompressed
STD-GEN-CD/DVD; Patient: JPEG 2000, §1 Table 1-2) → de-identification (Table 5-6 levels; images
with burned-in annotation pointed out, §5.5.1) → where to write (an ISO image to burn, or a USB
stick) → the export job's progress → the verification report. The work is app.jobs.export_job,
so it is also in the jobs panel."""

from __future__ import annotations

from html import escape
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout,
                               QLabel, QLineEdit, QProgressBar, QPushButton, QRadioButton, QStyle, QTextEdit,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWizard, QWizardPage)

from app.ui.background import run_in_background

LEVEL_TEXT = {
    "": "None: the objects as they are (for the patient, or a colleague treating them).",
    "full": "Full: names, IDs, dates, institution, descriptions, UIDs and private attributes removed or replaced "
            "(research, teaching).",
    "reduced": "Reduced: as Full, but UIDs, patient characteristics (age, sex, size, weight) and full dates kept "
               "(longitudinal studies), and the private attributes Table 5-7 names.",
    "service": "Service: names, physicians and stations removed; everything else, private attributes included, "
               "kept (sending a problem case to service).",
}

# the look of the media dialog's banner, so warnings read the same across the application
# (not the check box: a style sheet on it loses the platform's indicator box)
_WARNING_STYLE = ("QFrame#warning { background: #fff3cd; border: 1px solid #e0c35a; border-radius: 3px; } "
                  "QFrame#warning QLabel { color: #664d03; background: transparent; border: none; }")


class ExportWizard(QWizard):
    def __init__(self, archive, jobs, rows: list[dict], *, job_updates=None, actor: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export to CD / DVD / USB")
        self.archive, self.jobs, self.rows, self.actor = archive, jobs, rows, actor
        self.job_id: int | None = None
        self.selection = _SelectionPage(archive, rows)
        self.medium = _MediumPage()
        self.privacy = _PrivacyPage(self)
        self.destination = _DestinationPage(self)
        self.progress = _ProgressPage(self)
        for page in (self.selection, self.medium, self.privacy, self.destination, self.progress):
            self.addPage(page)
        if job_updates is not None:
            job_updates.connect(self.progress.job_updated)
        self.resize(760, 560)

    def options(self):
        from app.media.export import ExportOptions
        mapping = Path(self.privacy.mapping.text()) if self.privacy.level() and self.privacy.keep.isChecked() \
            and self.privacy.mapping.text().strip() else None
        return ExportOptions(self.medium.profile(), Path(self.destination.path.text().strip()),
                             fileset_id=self.medium.fileset_id.text() or "LIGHTBOX",
                             deidentify=self.privacy.level() or None, mapping=mapping,
                             patient_name=self.privacy.pseudonym.text().strip() or "ANONYMOUS",
                             icons=self.medium.icons.currentData(), lossy=self.medium.lossy.isChecked(),
                             leave_out_burned_in=self.privacy.leave_out_burned_in())

    def start(self) -> None:
        """Queue the export job (the Export button of the destination page)."""
        from app.jobs import export_job
        from app.media.export import items_from_archive
        from app.store import audit
        options, series = self.options(), self.selection.series()
        archive, jobs, actor = self.archive, self.jobs, self.actor

        def queue() -> tuple[int, int]:
            items = items_from_archive(archive, series=series)
            job_id = jobs.submit(export_job.KIND, export_job.title(options, len(items)),
                                 export_job.params(items, options), owner=actor)
            for r in self.rows:
                audit.log(archive.engine, actor or "workstation", "export",
                          f"as {options.profile} to {options.destination}"
                          + (f", de-identified ({options.deidentify})" if options.deidentify else "") + f", job {job_id}",
                          patient_id=r.get("PatientID"), patient_name=r.get("PatientName"),
                          study_uid=r.get("StudyInstanceUID"))
            return job_id, len(items)

        def queued(result, error) -> None:
            if error is not None:
                self.progress.failed(f"The export could not be started: {error}")
                return
            self.job_id, count = result
            self.progress.started(self.job_id, count)
        run_in_background(queue, queued)


class _SelectionPage(QWizardPage):
    def __init__(self, archive, rows: list[dict]):
        super().__init__()
        self.setTitle("What to export")
        self.setSubTitle("The studies chosen in the browser; untick the series to leave out.")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Study / series", "Modality", "Images"])
        self.tree.setColumnWidth(0, 420)
        self.total = QLabel()
        lay = QVBoxLayout(self)
        lay.addWidget(self.tree)
        lay.addWidget(self.total)
        self.tree.itemChanged.connect(lambda *_: self._count())

        def series_of():
            from app.store.query import iter_matches
            return [(row, list(iter_matches(archive.engine, "series", {"StudyInstanceUID": row["StudyInstanceUID"]},
                                            computed=frozenset({"NumberOfSeriesRelatedInstances"}))))
                    for row in rows]
        run_in_background(series_of, self._fill)

    def _fill(self, found, error) -> None:
        if error is not None:
            self.total.setText(f"The studies cannot be read: {error}")
            return
        from app.dicom import formatting
        self.tree.blockSignals(True)
        for row, series in found:
            study = QTreeWidgetItem([f"{formatting.person_name(row.get('PatientName'))} — "
                                     f"{formatting.date(row.get('StudyDate'))} {row.get('StudyDescription') or ''}", "", ""])
            study.setFlags(study.flags() | Qt.ItemIsAutoTristate | Qt.ItemIsUserCheckable)
            self.tree.addTopLevelItem(study)
            for s in series:
                item = QTreeWidgetItem([f"#{s.get('SeriesNumber') or '-'} {s.get('SeriesDescription') or ''}",
                                        s.get("Modality") or "", str(s.get("NumberOfSeriesRelatedInstances") or "")])
                item.setData(0, Qt.UserRole, s["SeriesInstanceUID"])
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(0, Qt.Checked)
                study.addChild(item)
            study.setExpanded(True)
        self.tree.blockSignals(False)
        self._count()

    def series(self) -> list[str]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            study = self.tree.topLevelItem(i)
            out += [study.child(j).data(0, Qt.UserRole) for j in range(study.childCount())
                    if study.child(j).checkState(0) == Qt.Checked]
        return out

    def _count(self) -> None:
        n = len(self.series())
        self.total.setText(f"{n} series chosen")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return bool(self.series())


class _MediumPage(QWizardPage):
    def __init__(self):
        super().__init__()
        from app.media import profiles
        self.setTitle("Medium and profile")
        self.setSubTitle("Standard: uncompressed, readable by any DICOM viewer. Patient: JPEG 2000, more on a disc.")
        self.media = QComboBox()
        for value, text in (("cd", "CD (700 MB)"), ("dvd", "DVD (4.7 GB)"), ("usb", "USB stick (a folder)")):
            self.media.addItem(text, value)
        self.kinds = QButtonGroup(self)
        self.standard, self.patient = QRadioButton("Standard (uncompressed)"), QRadioButton("Patient (JPEG 2000)")
        self.standard.setChecked(True)
        for b in (self.standard, self.patient):
            self.kinds.addButton(b)
        kinds = QHBoxLayout()
        kinds.addWidget(self.standard)
        kinds.addWidget(self.patient)
        self.lossy = QCheckBox("JPEG 2000 lossy where the profile allows (smaller; not for diagnosis)")
        self.icons = QComboBox()
        for value, text in ((64, "64 x 64"), (128, "128 x 128"), (None, "none")):
            self.icons.addItem(text, value)
        self.fileset_id = QLineEdit("LIGHTBOX")
        self.fileset_id.setMaxLength(16)
        self.profile_label = QLabel()
        form = QFormLayout(self)
        form.addRow("Medium", self.media)
        form.addRow("Kind", kinds)
        form.addRow("", self.lossy)
        form.addRow("Icon images", self.icons)
        form.addRow("File-set ID", self.fileset_id)
        form.addRow("Profile", self.profile_label)
        self._choices = profiles.CHOICES
        for signal in (self.media.currentIndexChanged, self.standard.toggled):
            signal.connect(lambda *_: self._update())
        self._update()

    def profile(self) -> str | None:
        kind = "standard" if self.standard.isChecked() else "patient"
        return self._choices.get(kind, {}).get(self.media.currentData())

    def _update(self) -> None:
        medium = self.media.currentData()
        self.standard.setEnabled(medium in self._choices.get("standard", {}))
        self.patient.setEnabled(medium in self._choices.get("patient", {}))
        if not self.standard.isEnabled() and self.standard.isChecked():
            self.patient.setChecked(True)
        if not self.patient.isEnabled() and self.patient.isChecked():
            self.standard.setChecked(True)
        self.lossy.setEnabled(self.patient.isChecked())
        self.profile_label.setText(self.profile() or "none for this medium")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.profile() is not None


class _PrivacyPage(QWizardPage):
    def __init__(self, wizard: ExportWizard):
        super().__init__()
        self.wizard_ = wizard
        # Burned In Annotation is not indexed: the chosen series' headers are read once per
        # selection, kept for going back and forth. key -> [(series label, images)]
        self._burned_in: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        self._scanning: set[tuple[str, ...]] = set()
        self.setTitle("De-identification")
        self.setSubTitle("Spec Table 5-6. De-identification changes attributes, not pixels: images with burned-in "
                         "annotation are pointed out below.")
        self.levels = QButtonGroup(self)
        lay = QVBoxLayout(self)
        self.buttons = {}
        for level, text in LEVEL_TEXT.items():
            b = QRadioButton(text)
            b.setChecked(level == "")
            b.toggled.connect(lambda *_: self._update())
            self.levels.addButton(b)
            self.buttons[level] = b
            lay.addWidget(b)
        form = QFormLayout()
        self.pseudonym = QLineEdit("ANONYMOUS")
        self.keep = QCheckBox("Keep the list of original and new UIDs and patient IDs (to re-identify later)")
        self.mapping = QLineEdit()
        self.mapping.setPlaceholderText("CSV file")
        form.addRow("Patient's name on the copy", self.pseudonym)
        form.addRow(self.keep)
        form.addRow("Mapping file", self.mapping)
        lay.addLayout(form)

        self.checking = QLabel("Checking the images for burned-in annotation…")
        self.checking.setStyleSheet("color: #666")
        self.warning = QFrame(objectName="warning")
        self.warning.setStyleSheet(_WARNING_STYLE)
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.SP_MessageBoxWarning).pixmap(32, 32))
        icon.setAlignment(Qt.AlignTop)
        self.warning_text = QLabel()
        self.warning_text.setWordWrap(True)
        self.warning_text.setTextFormat(Qt.RichText)
        self.leave_out = QCheckBox("Leave these images out of the copy")
        self.leave_out.setChecked(True)  # the safe choice: a de-identified copy without names in its pixels
        text = QVBoxLayout()
        text.addWidget(self.warning_text)
        text.addWidget(self.leave_out)
        row = QHBoxLayout(self.warning)
        row.addWidget(icon)
        row.addLayout(text, 1)
        lay.addSpacing(8)
        lay.addWidget(self.checking)
        lay.addWidget(self.warning)
        lay.addStretch(1)
        self.checking.hide()
        self.warning.hide()

    def level(self) -> str:
        return next(level for level, b in self.buttons.items() if b.isChecked())

    def leave_out_burned_in(self) -> bool:
        # also while the check still runs: if some image turns out to carry text, it stays off the copy
        return bool(self.level()) and self.leave_out.isChecked()

    def initializePage(self) -> None:
        self._update()

    def _key(self) -> tuple[str, ...]:
        return tuple(self.wizard_.selection.series())

    def _update(self) -> None:
        key = self._key()
        if self.level() and key not in self._burned_in and key not in self._scanning:
            self._scan(key)
        found = self._burned_in.get(key)
        self.checking.setVisible(bool(self.level()) and found is None)
        self.warning.setVisible(bool(self.level() and found))
        if found:
            images = sum(n for _, n in found)
            listed = "".join(f"<li>{escape(label)}: {n} image{'s' if n > 1 else ''}</li>" for label, n in found[:8])
            if len(found) > 8:
                listed += f"<li>and {len(found) - 8} more series</li>"
            self.warning_text.setText(
                f"<b>{images} image{'s' if images > 1 else ''} in {len(found)} series carr"
                f"{'y' if images > 1 else 'ies'} burned-in annotation</b> (Burned In Annotation YES):"
                f"<ul style='margin: 2px 0'>{listed}</ul>"
                "De-identification cannot remove text written in the pixels: the patient's name or ID may still "
                "be readable on these images. Leave them out, or look at each one before the copy leaves the "
                "hospital.")

    def _scan(self, key: tuple[str, ...]) -> None:
        import pydicom
        from sqlalchemy import select

        from app.store.schema import instance, series
        engine, files = self.wizard_.archive.engine, self.wizard_.archive.files
        self._scanning.add(key)

        def burned_in() -> list[tuple[str, int]]:
            with engine.connect() as conn:
                rows = conn.execute(select(series.c.SeriesInstanceUID, series.c.SeriesNumber,
                                           series.c.SeriesDescription, series.c.Modality, instance.c.path)
                                    .select_from(instance.join(series))
                                    .where(series.c.SeriesInstanceUID.in_(key))).all()
            counts: dict[str, list] = {}
            for uid, number, description, modality, path in rows:
                try:
                    ds = pydicom.dcmread(files.absolute(path), stop_before_pixels=True,
                                         specific_tags=["BurnedInAnnotation"])
                except Exception:  # noqa: BLE001 - unreadable here is unreadable for the export too: said there
                    continue
                if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
                    label = f"#{number or '-'} {description or '(no description)'} ({modality or '?'})"
                    counts.setdefault(uid, [label, 0])[1] += 1
            return [tuple(counts[uid]) for uid in key if uid in counts]  # in the order of the selection

        def done(result, error) -> None:
            if not shiboken6.isValid(self):  # the wizard was closed while the files were read
                return
            self._scanning.discard(key)
            self._burned_in[key] = [] if error is not None else result  # cannot tell: the report still warns
            self._update()
        run_in_background(burned_in, done)


class _DestinationPage(QWizardPage):
    def __init__(self, wizard: ExportWizard):
        super().__init__()
        self.wizard_ = wizard
        self.setTitle("Where to")
        self.setCommitPage(True)
        self.setButtonText(QWizard.CommitButton, "Export")
        self.path = QLineEdit()
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(choose)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.hint)
        self.path.textChanged.connect(lambda *_: self.completeChanged.emit())

    def initializePage(self) -> None:
        usb = self.wizard_.medium.media.currentData() == "usb"
        if not self.path.text():
            self.path.setText(str(Path.home() / ("lightbox-export" if usb else "lightbox-export.iso")))
        self.hint.setText("The folder of the mounted USB stick. If it already holds a DICOM File-set, the studies are "
                          "added to it." if usb else "The ISO image to burn. If the studies do not fit one disc, "
                          "NAME-1.iso, NAME-2.iso… are written, each a complete disc.")
        self._estimate()

    def _estimate(self) -> None:
        """What the chosen series take as stored, against the medium (a J2K profile writes less,
        an uncompressed one more when they are stored compressed)."""
        from sqlalchemy import func, select

        from app.media import profiles
        from app.store.schema import instance, series
        engine, uids = self.wizard_.archive.engine, self.wizard_.selection.series()
        profile = profiles.PROFILES.get(self.wizard_.medium.profile() or "")

        def size() -> int:
            with engine.connect() as conn:
                return int(conn.execute(select(func.coalesce(func.sum(instance.c.size), 0))
                                        .select_from(instance.join(series))
                                        .where(series.c.SeriesInstanceUID.in_(uids))).scalar() or 0)

        def shown(total, error) -> None:
            if error is not None or profile is None:
                return
            text = f"About {total / 1e6:,.0f} MB as stored"
            if profile.capacity:
                discs = -(-total // int(profile.capacity * 0.98)) or 1
                text += f": {discs} disc{'s' if discs > 1 else ''} of {profile.capacity / 1e6:,.0f} MB"
            self.hint.setText(self.hint.text() + "\n" + text + ".")
        run_in_background(size, shown)

    def _choose(self) -> None:
        if self.wizard_.medium.media.currentData() == "usb":
            path = QFileDialog.getExistingDirectory(self, "The USB stick")
        else:
            path, _ = QFileDialog.getSaveFileName(self, "ISO image", self.path.text(), "ISO image (*.iso)")
        if path:
            self.path.setText(path)

    def isComplete(self) -> bool:
        return bool(self.path.text().strip())

    def validatePage(self) -> bool:
        self.wizard_.start()
        return True


class _ProgressPage(QWizardPage):
    def __init__(self, wizard: ExportWizard):
        super().__init__()
        self.wizard_ = wizard
        self.setTitle("Exporting")
        self.bar = QProgressBar()
        self.message = QLabel("Starting …")
        self.message.setWordWrap(True)
        self.report = QTextEdit()
        self.report.setReadOnly(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.bar)
        lay.addWidget(self.message)
        lay.addWidget(self.report, 1)
        self._done = False

    def started(self, job_id: int, count: int) -> None:
        self.bar.setRange(0, max(count, 1))
        self.message.setText(f"Job {job_id}: {count} instance(s) to prepare …")

    def failed(self, text: str) -> None:
        self.message.setText(text)
        self._done = True
        self.completeChanged.emit()

    def job_updated(self, job: dict) -> None:
        if job.get("id") != self.wizard_.job_id:
            return
        if job.get("total"):
            self.bar.setRange(0, job["total"])
            self.bar.setValue(job.get("done") or 0)
        self.message.setText(job.get("message") or "")
        if job.get("status") in ("done", "failed", "cancelled"):
            self._done = True
            self.setTitle("Export finished" if job["status"] == "done" else "Export FAILED")
            state = job.get("state") or {}
            lines = [f"<b>{job['status'].upper()}</b>: {job.get('message', '')}"]
            lines += [f"Verified: {v}" for v in state.get("verified", [])]
            lines += [f"Not exported {sop}: {why}" for sop, why in state.get("refused", [])[:50]]
            lines += [f"Warning: {w}" for w in state.get("warnings", [])[:50]]
            self.report.setHtml("<br>".join(lines))
            self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self._done
