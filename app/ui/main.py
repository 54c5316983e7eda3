"""The workstation's main window: patient browser, status bar, menus by role; the
embedded node runs in background threads of this process."""

from __future__ import annotations

import shutil
import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox

from app import __version__
from app.net.node import Node
from app.store import users
from app.store.archive import Archive
from app.ui.bridge import CoreBridge
from app.ui.browser import PatientBrowser


class MainWindow(QMainWindow):
    def __init__(self, archive: Archive, node: Node | None, user: users.User | None = None):
        super().__init__()
        self.archive, self.node, self.user = archive, node, user
        self.setWindowTitle("Lightbox" + (f" — {user.full_name or user.name}" if user else ""))
        self.bridge = CoreBridge(self)
        self.browser = PatientBrowser(archive, self)
        self.bridge.instancesAdded.connect(self.browser.instances_added)
        self.browser.studyActivated.connect(lambda row: self.open_studies([row]))
        self.browser.actionRequested.connect(self._study_action)
        self.setCentralWidget(self.browser)
        self._menus()
        self._status_bar()
        self.resize(1280, 800)
        self.browser.refresh()

    # -- chrome ---------------------------------------------------------------------------
    def may(self, capability: str) -> bool:
        return self.user is None or self.user.may(capability)

    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        quit_ = QAction("&Quit", self, shortcut=QKeySequence.Quit, triggered=self.close)
        file.addAction(quit_)
        view = self.menuBar().addMenu("&View")
        view.addAction(QAction("&Refresh", self, shortcut=QKeySequence.Refresh, triggered=self.browser.refresh))
        view.addAction(QAction("&Clear search", self, triggered=self.browser.clear_search))
        help_ = self.menuBar().addMenu("&Help")
        help_.addAction(QAction("&About Lightbox", self, triggered=self._about))

    def _status_bar(self) -> None:
        self.node_state = QLabel()
        self.disk_state = QLabel()
        self.user_state = QLabel(f"{self.user.name} ({users.ROLE_NAMES[self.user.role]})" if self.user else "")
        bar = self.statusBar()
        bar.addWidget(self.node_state, 1)
        bar.addPermanentWidget(self.disk_state)
        bar.addPermanentWidget(self.user_state)
        self._disk_timer = QTimer(self, interval=10000, timeout=self._update_disk)
        self._disk_timer.start()
        self._update_disk()

    def _update_disk(self) -> None:
        try:
            free = shutil.disk_usage(self.archive.files.root).free
        except OSError:
            self.disk_state.setText("disk: unknown")
            return
        floor = self.archive.settings["storage.free_space_floor_mb"] * 2**20
        text = f"{free / 2**30:.1f} GB free"
        self.disk_state.setText(text if free > floor * 2 else f"⚠ {text} (floor {floor // 2**20} MB)")

    def _about(self) -> None:
        QMessageBox.about(self, "About Lightbox", f"Lightbox {__version__}\nDICOM review workstation\n"
                          f"Data home: {self.archive.home}")

    # -- node -----------------------------------------------------------------------------
    def start_node(self) -> None:
        """Start the node (unless it runs already) and show where it listens."""
        self.node_state.setText(start_node(self.node, self.archive) if self.node is not None else "DICOM node off")

    # -- study actions --------------------------------------------------------------------
    def open_studies(self, rows: list[dict]) -> None:
        # The viewer comes with the next issue; until then say what would open.
        names = "\n".join(f"{r.get('PatientName') or '?'} — {r.get('StudyDescription') or ''} "
                          f"({r.get('NumberOfStudyRelatedInstances', 0)} images)" for r in rows)
        QMessageBox.information(self, "Viewer", f"The image viewer is not part of this version yet.\n\n{names}")

    def _study_action(self, action: str, rows: list[dict]) -> None:
        if action == "open":
            self.open_studies(rows)
        else:
            QMessageBox.information(self, "Not available yet",
                                    f"'{action}' is not part of this version of Lightbox yet.")

    def closeEvent(self, event) -> None:
        self.bridge.close()
        self.browser.pool.waitForDone(5000)
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
