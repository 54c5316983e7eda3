"""Main window. A placeholder shell until the workstation issue: the embedded node runs in
background threads and the window shows where it listens and what the archive holds."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QVBoxLayout, QWidget

from app.net.node import Node
from app.store.archive import Archive
from app.store.query import search


class MainWindow(QMainWindow):
    def __init__(self, archive: Archive, node: Node | None):
        super().__init__()
        self.archive, self.node = archive, node
        self.setWindowTitle("Lightbox")
        body = QWidget()
        lay = QVBoxLayout(body)
        self.status = QLabel()
        self.count = QLabel()
        lay.addWidget(self.status)
        lay.addWidget(self.count)
        lay.addStretch(1)
        self.setCentralWidget(body)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(1000)
        self.resize(720, 200)

    def start_node(self) -> None:
        try:
            listening = self.node.start()
            self.status.setText("DICOM node listening: " + "; ".join(listening))
        except OSError as exc:
            self.status.setText(f"The DICOM node could not start: {exc}. "
                                "Choose another port with 'lightbox config set node.port N'.")
        self.refresh()

    def refresh(self) -> None:
        n = len(search(self.archive.engine, "study", {}))
        self.count.setText(f"{n} {'study' if n == 1 else 'studies'} in the local archive ({self.archive.home})")


def run(args) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    archive = Archive(args.home, args.db)
    node = Node(archive)
    win = MainWindow(archive, node)
    win.start_node()
    win.show()
    rc = app.exec()
    node.stop(grace=5)
    archive.close()
    return rc
