"""The Qt binding itself: a regression guard for a PySide6 bug that crashed Lightbox.

PySide6 6.12.0 drops a reference to None on every call of a static function returning void
(QApplication.processEvents, setApplicationName, ...). On Python 3.11, where None is not
immortal, a few thousand such calls free None and the interpreter aborts ("none_dealloc"),
which is how the GUI benchmark found it. pyproject.toml excludes that version; this test
fails on any binding that has the bug."""

import sys

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication


def test_static_void_calls_keep_references(qapp):
    before = sys.getrefcount(None)
    for _ in range(200):
        QCoreApplication.processEvents()
        QApplication.setApplicationName("Lightbox")
    after = sys.getrefcount(None)
    assert before - after < 50, f"the Qt binding lost {before - after} references to None in 400 calls"
