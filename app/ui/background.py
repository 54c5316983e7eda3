"""Run core work off the GUI thread and get its answer back on the GUI thread."""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Answer(QObject):
    # One tuple (result, error), never a bare None: PySide6 6.x loses a reference to None
    # passed through a queued Signal(object), and on Python 3.11 (where None is not yet
    # immortal) enough of those crash the interpreter ("none_dealloc").
    done = Signal(object)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], answer: _Answer):
        super().__init__()
        self.fn, self.answer = fn, answer

    def run(self) -> None:
        try:
            result, error = self.fn(), None
        except Exception as exc:  # noqa: BLE001 - handed to the caller (who tells the user)
            log.debug("background task failed", exc_info=True)
            result, error = None, exc
        self.answer.done.emit((result, error))


def run_in_background(fn: Callable[[], Any], on_done: Callable[[Any, Exception | None], None] | None = None,
                      pool: QThreadPool | None = None) -> None:
    """Call ``fn`` on a pool thread; ``on_done(result, error)`` runs in the GUI thread."""
    answer = _Answer()  # created in the calling (GUI) thread, so its slot runs there

    def finish(outcome) -> None:
        if on_done is not None:
            on_done(*outcome)
        answer.deleteLater()
    answer.done.connect(finish)
    (pool or QThreadPool.globalInstance()).start(_Task(fn, answer))
