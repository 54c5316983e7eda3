"""The workstation's main window: patient browser, status bar, menus by role; the
embedded node runs in background threads of this process."""

from __future__ import annotations

import shutil
import sys

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QDialog, QDockWidget, QFileDialog, QLabel, QMainWindow,
                               QMessageBox)

from app import __version__
from app.jobs import import_job
from app.jobs.queue import JobQueue
from app.jobs.runners import make_job_queue
from app.net.node import Node
from app.store import users
from app.store.archive import Archive
from app.ui.bridge import CoreBridge
from app.ui.background import run_in_background
from app.ui.browser import PatientBrowser
from app.ui.jobs_panel import JobsPanel


class MainWindow(QMainWindow):
    def __init__(self, archive: Archive, node: Node | None, user: users.User | None = None,
                 jobs: JobQueue | None = None):
        super().__init__()
        self.archive, self.node, self.user = archive, node, user
        self.jobs = jobs or make_job_queue(archive)
        self._own_jobs = jobs is None
        if self._own_jobs:
            self.jobs.start()
        # the disk watermark runs with the workstation's own node (not in a viewer-only window)
        from app.jobs.router import Router
        from app.store.watermark import Watchdog
        self.watermark = Watchdog(archive).start() if node is not None else None
        self.router = Router(archive, self.jobs).start() if node is not None else None
        from app.net.worklist import WorklistPoller
        self.worklist = WorklistPoller(archive).start() if node is not None else None
        from app.jobs.print_job import CameraPoller
        self.camera_poller = CameraPoller(archive, self.jobs).start() if node is not None else None
        self.setWindowTitle("Lightbox" + (f" — {user.full_name or user.name}" if user else ""))
        self.bridge = CoreBridge(self)
        self.browser = PatientBrowser(archive, self)
        self.bridge.instancesAdded.connect(self.browser.instances_added)
        self.bridge.commitmentUpdated.connect(self.browser.instances_added)  # the Archived column
        self.browser.studyActivated.connect(lambda row: self.open_studies([row]))
        self.browser.actionRequested.connect(self._study_action)
        self.setCentralWidget(self.browser)
        self.jobs_panel = JobsPanel(self.jobs, self)
        self.bridge.jobUpdated.connect(self.jobs_panel.job_updated)
        self.bridge.jobsRemoved.connect(self.jobs_panel.reload)
        self.jobs_dock = QDockWidget("Jobs", self)
        self.jobs_dock.setObjectName("jobs")
        self.jobs_dock.setWidget(self.jobs_panel)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.jobs_dock)
        self.resizeDocks([self.jobs_dock], [170], Qt.Vertical)
        self._menus()
        self._status_bar()
        self.resize(1280, 800)
        self.browser.refresh()

    # -- chrome ---------------------------------------------------------------------------
    def may(self, capability: str) -> bool:
        return self.user is None or self.user.may(capability)

    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        imp = file.addMenu("&Import")
        imp.setEnabled(self.may("import"))
        imp.addAction(QAction("&Folder…", self, shortcut=QKeySequence("Ctrl+I"), triggered=self.import_folder))
        imp.addAction(QAction("F&iles…", self, triggered=self.import_files))
        imp.addAction(QAction("&CD/DVD/USB, ISO image or ZIP…", self, triggered=lambda: self.open_media()))
        file.addSeparator()
        quit_ = QAction("&Quit", self, shortcut=QKeySequence.Quit, triggered=self.close)
        file.addAction(quit_)
        view = self.menuBar().addMenu("&View")
        view.addAction(QAction("&Refresh", self, shortcut=QKeySequence.Refresh, triggered=self.browser.refresh))
        view.addAction(QAction("&Clear search", self, triggered=self.browser.clear_search))
        view.addAction(self.jobs_dock.toggleViewAction())
        tools = self.menuBar().addMenu("&Tools")
        qr_action = QAction("&Query / Retrieve…", self, shortcut=QKeySequence("Ctrl+Shift+F"),
                            triggered=self.open_query_retrieve)
        qr_action.setEnabled(self.may("query"))
        tools.addAction(qr_action)
        film_action = QAction("&Film composer…", self, shortcut=QKeySequence("Ctrl+Shift+P"),
                              triggered=self.film_composer)
        film_action.setEnabled(self.may("print"))
        tools.addAction(film_action)
        worklist_action = QAction("Modality &worklist…", self, shortcut=QKeySequence("Ctrl+Shift+W"),
                                  triggered=self.open_worklist)
        worklist_action.setEnabled(self.may("query"))
        tools.addAction(worklist_action)
        tools.addSeparator()
        settings = QAction("&Settings…", self, shortcut=QKeySequence.Preferences, triggered=self.open_settings)
        settings.setEnabled(self.may("settings"))
        if not self.may("settings"):
            settings.setToolTip("Only administrators and service technicians change the settings.")
        tools.addAction(settings)
        for label, capability, slot in (("&Users…", "users", self.open_users),
                                        ("&Audit trail…", "audit", self.open_audit),
                                        ("&Log…", "logs", self.open_log)):
            action = QAction(label, self, triggered=slot)
            action.setEnabled(self.may(capability))
            tools.addAction(action)
        help_ = self.menuBar().addMenu("&Help")
        help_.addAction(QAction("&About Lightbox", self, triggered=self._about))

    def _status_bar(self) -> None:
        self.node_state = QLabel()
        self.assoc_state = QLabel()
        self.disk_state = QLabel()
        self.user_state = QLabel(f"{self.user.name} ({users.ROLE_NAMES[self.user.role]})" if self.user else "")
        bar = self.statusBar()
        bar.addWidget(self.node_state, 1)
        self.camera_state = QLabel()
        self.camera_state.setToolTip("Film printers (spec §8.6): green ready, orange needs attention, red queue stopped")
        bar.addPermanentWidget(self.camera_state)
        self.bridge.cameraUpdated.connect(lambda _camera: self._update_cameras())
        from app.jobs.print_job import stopped_queues, sweep_spool
        stopped_queues(self.jobs)
        sweep_spool(self.archive, self.jobs)
        self._update_cameras()
        bar.addPermanentWidget(self.assoc_state)
        bar.addPermanentWidget(self.disk_state)
        bar.addPermanentWidget(self.user_state)
        self._disk_timer = QTimer(self, interval=10000, timeout=self._update_disk)
        self._disk_timer.start()
        self._update_disk()
        self._assoc_timer = QTimer(self, interval=1000, timeout=self._update_associations)
        self._assoc_timer.start()

    def _update_cameras(self) -> None:
        """The status-bar message and camera symbol of each printer (spec §8.6.1), worst first."""
        from app.film import cameras
        from app.ui.film_composer import camera_html
        order = {"stopped": 0, "interact": 1, "unknown": 2, "idle": 3}
        shown = sorted(cameras.current().values(), key=lambda c: (order.get(c.symbol, 2), c.printer))
        self.camera_state.setText("&nbsp;&nbsp;".join(camera_html(c.symbol, c.printer, c.message) for c in shown[:2])
                                  + (f"&nbsp;&nbsp;(+{len(shown) - 2})" if len(shown) > 2 else ""))

    def _update_disk(self) -> None:
        try:
            free = shutil.disk_usage(self.archive.files.root).free
        except OSError:
            self.disk_state.setText("disk: unknown")
            return
        floor = self.archive.settings["storage.free_space_floor_mb"] * 2**20
        text = f"{free / 2**30:.1f} GB free"
        self.disk_state.setText(text if free > floor * 2 else f"⚠ {text} (floor {floor // 2**20} MB)")

    def _update_associations(self) -> None:
        if self.node is None or not self.node.servers:
            self.assoc_state.setText("")
            return
        limit = self.archive.settings["node.max_associations"]
        self.assoc_state.setText(f"{self.node.associations_in_use()}/{limit} associations")

    def _about(self) -> None:
        QMessageBox.about(self, "About Lightbox", f"Lightbox {__version__}\nDICOM review workstation\n"
                          f"Data home: {self.archive.home}")

    # -- node -----------------------------------------------------------------------------
    def start_node(self) -> None:
        """Start the node (unless it runs already) and show where it listens."""
        self.node_state.setText(start_node(self.node, self.archive) if self.node is not None else "DICOM node off")

    # -- settings -------------------------------------------------------------------------
    @property
    def actor(self) -> str:
        return self.user.name if self.user else users.os_actor()

    def open_query_retrieve(self) -> None:
        """Search remote nodes and retrieve from them (jobs; what arrives shows in the browser)."""
        if not self.may("query"):
            QMessageBox.warning(self, "Query / Retrieve", "Your role cannot query other nodes.")
            return
        from app.store import nodes
        from app.ui.qr_dialog import QueryRetrieveDialog
        dialog = QueryRetrieveDialog(self.archive, self.jobs, nodes.list_nodes(self.archive.engine),
                                     self.user.name if self.user else None, self)
        self.qr_dialog = dialog
        dialog.show()
        self.jobs_dock.show()

    def open_worklist(self) -> None:
        """The items of the worklist providers (what the RIS scheduled), Refresh queries them."""
        if not self.may("query"):
            QMessageBox.warning(self, "Modality worklist", "Your role cannot query other nodes.")
            return
        from app.ui.worklist_dialog import WorklistDialog
        self.worklist_dialog = WorklistDialog(self.archive, self)
        self.worklist_dialog.show()

    def film_composer(self):
        """The one film composer window (app.ui.film_composer), shown."""
        from app.ui.film_composer import FilmComposer
        if getattr(self, "_composer", None) is None:
            self._composer = FilmComposer(self.archive, self.jobs, actor=self.actor,
                                          camera_updates=self.bridge.cameraUpdated)
        self._composer.show()
        self._composer.raise_()
        return self._composer

    def open_settings(self) -> None:
        if not self.may("settings"):
            QMessageBox.warning(self, "Settings", "Only administrators and service technicians change the settings.")
            return
        from app.ui.settings_dialog import SettingsDialog
        dialog = SettingsDialog(self.archive, self.actor, self._settings_applied, self)
        self.settings_dialog = dialog
        dialog.open()

    def open_users(self) -> None:
        from app.ui.admin import UsersDialog
        if self.may("users"):
            self.users_dialog = UsersDialog(self.archive.engine, self.actor, self)
            self.users_dialog.open()

    def open_audit(self) -> None:
        from app.ui.admin import AuditDialog
        if self.may("audit"):
            self.audit_dialog = AuditDialog(self.archive.engine, self)
            self.audit_dialog.open()

    def open_log(self) -> None:
        from app.logs import log_file
        from app.ui.admin import LogDialog
        if self.may("logs"):
            self.log_dialog = LogDialog(log_file(self.archive.home), self)
            self.log_dialog.open()

    def _settings_applied(self, keys: list[str], restart: bool) -> None:
        self.archive.reload_settings()
        self._update_disk()
        if restart and self.node is not None:
            self.node_state.setText("DICOM node restarting with the new settings …")
            node, archive = self.node, self.archive

            def restart_node() -> str:
                node.stop(grace=5)  # in-flight associations finish first
                return start_node(node, archive)
            run_in_background(restart_node, lambda text, error: self.node_state.setText(
                text if error is None else f"⚠ The DICOM node could not restart: {error}"))

    # -- import ---------------------------------------------------------------------------
    def import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder (with its subfolders)")
        if folder:
            self.start_import([Path(folder)])

    def import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import DICOM files", "", "All files (*)")
        if files:
            self.start_import([Path(f) for f in files])

    def open_media(self, path: Path | None = None):
        """The media browser (app.ui.media_dialog) on ``path`` (a folder, a DICOMDIR, an ISO
        image or a ZIP archive), or on the one mounted disc or stick with a DICOMDIR; the series checked there
        are imported by a job."""
        from app.ui.media_dialog import MediaDialog, mounted_media
        dialog = MediaDialog(self.archive, self.jobs, self, owner=self.user.name if self.user else None)
        self.media_dialog = dialog
        dialog.show()
        self.jobs_dock.show()
        if path is None and len(media := mounted_media()) == 1:
            path = media[0]
        if path is not None:
            dialog.open_path(path)
        return dialog

    def start_import(self, paths: list[Path]) -> None:
        """Queue an import job (off the GUI thread: the database may be busy); its progress
        shows in the jobs panel."""
        owner = self.user.name if self.user else None
        jobs = self.jobs

        def queued(_job_id, error) -> None:
            if error is not None:
                QMessageBox.critical(self, "Import", f"The import could not be queued: {error}")
        run_in_background(lambda: jobs.submit(import_job.KIND, import_job.title(paths),
                                              {"paths": [str(p) for p in paths]}, owner=owner), queued)
        self.jobs_dock.show()

    # -- study actions --------------------------------------------------------------------
    def open_studies(self, rows: list[dict]) -> None:
        from app.ui.viewer.window import ViewerWindow
        viewer = ViewerWindow(self.archive, rows, jobs=self.jobs, job_updates=self.bridge.jobUpdated, actor=self.actor,
                              add_to_film=(lambda cells: self.film_composer().add_images(cells))
                              if self.may("print") else None)
        self.viewers = [v for v in getattr(self, "viewers", []) if v.isVisible()] + [viewer]
        viewer.show()

    def _study_action(self, action: str, rows: list[dict]) -> None:
        if action == "open":
            self.open_studies(rows)
        elif action == "delete":
            self.delete_studies(rows)
        elif action == "send":
            self.send_studies(rows)
        elif action == "correct":
            self.correct_study(rows[0])
        elif action == "export":
            self.export_studies(rows)
        elif action == "print" and self.may("print"):
            self.film_composer().add_studies([r["StudyInstanceUID"] for r in rows])
        else:
            QMessageBox.information(self, "Not available yet",
                                    f"'{action}' is not part of this version of Lightbox yet.")

    def correct_study(self, row: dict) -> None:
        """Correct the study (patient data, position, procedure, patient, merge): every object
        rewritten with the change recorded in it, all or none, off the GUI thread."""
        from app.dicom.corrections import CorrectionError
        from app.store.correct import CorrectionFailed, apply
        from app.ui.correct_dialog import CorrectDialog
        if not self.may("correct"):
            QMessageBox.warning(self, "Correct study", "Your role cannot correct studies; ask a technologist "
                                "or an administrator.")
            return
        dialog = CorrectDialog(self.archive, row, self)
        self.correct_dialog = dialog
        if dialog.exec() != QDialog.Accepted:
            return
        archive, actor, request = self.archive, self.actor, dialog.request()

        def done(results, error) -> None:
            if error is not None:
                reason = str(error) if isinstance(error, (CorrectionFailed, CorrectionError)) else repr(error)
                QMessageBox.critical(self, "Correct study", f"Nothing was changed: {reason}")
                return
            changed = sorted({c for r in results for c in r.changed})
            self.statusBar().showMessage(f"Corrected {sum(r.instances for r in results)} image(s) in "
                                         f"{len(results)} stud(ies): {', '.join(changed) or 'nothing changed'}", 15000)
            self.browser.refresh()
        run_in_background(lambda: apply(archive, request, actor=actor), done)

    def send_studies(self, rows: list[dict]) -> None:
        """Pick a node, then one send job for the selected studies (one association)."""
        from app.jobs import send_job
        from app.store import audit, nodes
        from app.ui.send_dialog import SendDialog
        if not self.may("send"):
            QMessageBox.warning(self, "Send", "Your role cannot send studies to other nodes; ask a technologist "
                                "or an administrator.")
            return
        dialog = SendDialog(nodes.list_nodes(self.archive.engine), rows, self)
        self.send_dialog = dialog
        if dialog.exec() != QDialog.Accepted or dialog.chosen() is None:
            return
        node, archive, jobs, commit = dialog.chosen(), self.archive, self.jobs, dialog.commit.isChecked()
        owner = self.user.name if self.user else None
        uids = [r["StudyInstanceUID"] for r in rows]

        def queue() -> int:
            instances = [i for uid in uids for i in send_job.archive_instances(archive, study=uid)]
            what = f"study {uids[0]}" if len(uids) == 1 else f"{len(uids)} studies"
            job_id = jobs.submit(send_job.KIND, send_job.title(node.name, what, len(instances)),
                                 send_job.params(node.name, instances, archive.files.root, commit=commit), owner=owner,
                                 group=send_job.group(node.name))
            for r in rows:
                audit.log(archive.engine, owner or "workstation", "send", f"to {node.name}, job {job_id}",
                          patient_id=r.get("PatientID"), patient_name=r.get("PatientName"),
                          study_uid=r.get("StudyInstanceUID"))
            return job_id

        def queued(_job_id, error) -> None:
            if error is not None:
                QMessageBox.critical(self, "Send", f"The send could not be queued: {error}")
        run_in_background(queue, queued)
        self.jobs_dock.show()

    def export_studies(self, rows: list[dict]) -> None:
        """The export wizard (CD/DVD/USB) for the studies chosen in the browser."""
        from app.ui.export_wizard import ExportWizard
        if not self.may("export"):
            QMessageBox.warning(self, "Export", "Your role cannot export studies; ask a technologist or an "
                                "administrator.")
            return
        self.export_wizard = ExportWizard(self.archive, self.jobs, rows, job_updates=self.bridge.jobUpdated,
                                          actor=self.user.name if self.user else None, parent=self)
        self.export_wizard.show()
        self.jobs_dock.show()

    def delete_studies(self, rows: list[dict]) -> None:
        """Delete after confirmation; a second one if no archive has committed to keep them."""
        if not self.may("delete"):
            QMessageBox.warning(self, "Delete", "Your role cannot delete studies; ask a technologist or an "
                                "administrator.")
            return
        from app.store.delete import never_committed
        from app.dicom import formatting as text
        listing = "\n".join(f"• {text.person_name(r.get('PatientName')) or '?'} ({r.get('PatientID') or '?'}), "
                            f"{text.date(r.get('StudyDate'))} {r.get('StudyDescription') or ''} — "
                            f"{r.get('NumberOfStudyRelatedInstances', 0)} images" for r in rows[:12])
        more = f"\n… and {len(rows) - 12} more" if len(rows) > 12 else ""
        if QMessageBox.question(self, "Delete studies", f"Delete these {len(rows)} stud{'y' if len(rows) == 1 else 'ies'} "
                                f"from this workstation?\n\n{listing}{more}") != QMessageBox.Yes:
            return
        uids = [r["StudyInstanceUID"] for r in rows]
        engine = self.archive.engine
        run_in_background(lambda: never_committed(engine, uids),
                          lambda unsafe, error: self._delete_confirmed(uids, unsafe, error))

    def _delete_confirmed(self, uids: list[str], unsafe: list[str] | None, error) -> None:
        from app.store.delete import delete_studies
        if error is not None:
            QMessageBox.critical(self, "Delete", f"The archive cannot be read: {error}")
            return
        if unsafe and QMessageBox.warning(
                self, "Not archived", f"{len(unsafe)} of them {'has' if len(unsafe) == 1 else 'have'} never been "
                "confirmed as stored by an archive (storage commitment). If this workstation holds the only "
                "copy, it is lost for good.\n\nDelete anyway?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No) != QMessageBox.Yes:
            return
        engine, files, actor = self.archive.engine, self.archive.files, self.actor

        def done(result, error) -> None:
            if error is not None:
                QMessageBox.critical(self, "Delete", f"The studies could not be deleted: {error}")
                return
            self.statusBar().showMessage(f"Deleted {result.studies} stud(ies), {result.instances} images"
                                         + (f"; {result.files_left} file(s) could not be removed (see the log)"
                                            if result.files_left else ""), 10000)
            self.browser.refresh()
        run_in_background(lambda: delete_studies(engine, files, uids, actor=actor), done)

    def closeEvent(self, event) -> None:
        self.bridge.close()
        for worker in (self.router, self.watermark, self.worklist, self.camera_poller):
            if worker is not None:
                worker.stop()
        if self._own_jobs:
            self.jobs.stop()  # a running job resumes at the next start
        self.browser.pool.waitForDone(5000)
        self.browser.thumb_pool.waitForDone(5000)
        super().closeEvent(event)


def start_node(node: Node, archive: Archive) -> str:
    """Start the embedded node if it is not running; a line for the status bar."""
    try:
        listening = node.start() if not node.servers else node.listening
    except OSError as exc:
        return (f"⚠ The DICOM node could not start: {exc}. Choose another port in the settings "
                "(or: lightbox config set node.port N).")
    tls = "TLS on" if archive.settings["tls.mode"] != "off" else "TLS off"
    return "DICOM node: " + "; ".join(listening) + f" — {tls}"


def _log_in(archive: Archive) -> users.User | None:
    from app.ui.login import FirstAdminDialog, LoginDialog
    dialog = LoginDialog(archive.engine) if users.has_users(archive.engine) else FirstAdminDialog(archive.engine)
    return dialog.user if dialog.exec() else None


def run(args) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Lightbox")
    archive = Archive(args.home, args.db)
    node = Node(archive)
    start_node(node, archive)  # images arrive while nobody is logged in, too
    try:
        user = _log_in(archive)
        if user is None:
            return 1
        win = MainWindow(archive, node, user)
        win.start_node()
        win.show()
        rc = app.exec()
    finally:
        node.stop(grace=5)
        archive.close()
    return rc
