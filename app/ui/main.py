"""Main window. A placeholder shell until the workstation issue: it runs the embedded node
in background threads and shows what it listens on and what the archive holds."""

from __future__ import annotations

import sys


def run(args) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QVBoxLayout, QWidget

    from app.net.node import Node
    from app.store.archive import Archive
    from app.store.query import search

    app = QApplication.instance() or QApplication(sys.argv[:1])
    archive = Archive(args.home, args.db)
    node = Node(archive)
    try:
        listening = node.start()
        status = "Listening: " + "; ".join(listening)
    except OSError as exc:
        status = f"The DICOM node could not start: {exc}. Change the port in settings.toml."
    win = QMainWindow()
    win.setWindowTitle("Lightbox")
    body = QWidget()
    lay = QVBoxLayout(body)
    lay.addWidget(QLabel(status))
    count = QLabel()
    lay.addWidget(count)
    win.setCentralWidget(body)

    def refresh() -> None:
        n = len(search(archive.engine, "study", {}))
        count.setText(f"{n} studies in the local archive ({archive.home})")

    timer = QTimer(win)
    timer.timeout.connect(refresh)
    timer.start(1000)
    refresh()
    win.resize(720, 200)
    win.show()
    rc = app.exec()
    node.stop(grace=5)
    archive.close()
    return rc
