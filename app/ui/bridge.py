"""Core events -> Qt signals. Core threads (node, index writer, jobs) publish on
app.events; the bridge re-emits on its signals, which Qt queues into the GUI thread
because the bridge lives there. Nothing else in the UI subscribes to core events."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app import events


class CoreBridge(QObject):
    instancesAdded = Signal(object)  # list of SOP Instance UIDs newly indexed (never None: see background.py)
    jobUpdated = Signal(object)      # app.jobs.queue.Job.as_dict(), passed as the Python object
    jobsRemoved = Signal()
    commitmentUpdated = Signal(object)  # list of Study Instance UIDs whose commitment changed
    cameraUpdated = Signal(object)   # app.film.cameras.Camera.as_dict(): a printer's status (spec §8.6)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._unsubscribe = [
            events.subscribe("instances-added", self.instancesAdded.emit),
            events.subscribe("job-updated", self.jobUpdated.emit),
            events.subscribe("jobs-removed", lambda _payload: self.jobsRemoved.emit()),
            events.subscribe("commitment-updated", self.commitmentUpdated.emit),
            events.subscribe("camera-status", self.cameraUpdated.emit),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
