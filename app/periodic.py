"""Background work that runs every few seconds beside the node (routing, the watermark)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``tick()`` every ``interval()`` seconds in a daemon thread until ``stop()``; a
    failing tick is logged and the next one tries again."""

    name = "periodic"
    run_at_start = False  # a first tick at once, not only after the first interval

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def interval(self) -> float:
        raise NotImplementedError

    def tick(self) -> None:
        raise NotImplementedError

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        first = self.run_at_start
        while first or not self._stop.wait(self.interval()):
            first = False
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - nothing is left half-done: the next tick tries again
                log.exception("%s failed", self.name)
