"""What each film printer last said of itself (spec §8.6): its Printer Status and Printer
Status Info, from the N-GET of a print job or of the status poll and from its N-EVENT-REPORTs,
read through the status table into the status-bar message and the camera symbol (idle,
interact, queue stopped). A queue an operator must restart shows "queue stopped" whatever
the printer says now. Every change is published as a ``camera-status`` event."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from app import events
from app.film import print_status


@dataclass(frozen=True)
class Camera:
    printer: str  # the remote node's name
    status: str  # NORMAL | WARNING | FAILURE | "" (not known yet)
    info: str
    message: str
    symbol: str  # idle | interact | stopped | unknown
    at: datetime | None = None
    stopped_reason: str | None = None  # the queue is stopped until an operator restarts it

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


_LOCK = threading.Lock()
_BOARD: dict[str, Camera] = {}


def update(printer: str, status: str, info: str) -> Camera:
    """The printer said ``status`` / ``info``: its camera entry, published."""
    state = print_status.camera_state(status, info)
    with _LOCK:
        old = _BOARD.get(printer)
        camera = Camera(printer, status, info, state.message, state.symbol, datetime.now(timezone.utc),
                        old.stopped_reason if old else None)
        _BOARD[printer] = camera
    events.publish("camera-status", _shown(camera).as_dict())
    return camera


def unreachable(printer: str, reason: str) -> Camera:
    """No answer from the printer: the operator has to look (interact), with the reason."""
    with _LOCK:
        old = _BOARD.get(printer)
        camera = Camera(printer, "", "", f"Camera not reachable: {reason}", "interact",
                        datetime.now(timezone.utc), old.stopped_reason if old else None)
        _BOARD[printer] = camera
    events.publish("camera-status", _shown(camera).as_dict())
    return camera


def stopped(printer: str, reason: str | None) -> None:
    """The queue of ``printer`` was stopped (``reason``) or restarted (None)."""
    with _LOCK:
        old = _BOARD.get(printer) or Camera(printer, "", "", "", "unknown")
        camera = replace(old, stopped_reason=reason)
        _BOARD[printer] = camera
    events.publish("camera-status", _shown(camera).as_dict())


def current() -> dict[str, Camera]:
    with _LOCK:
        return {name: _shown(c) for name, c in _BOARD.items()}


def _shown(camera: Camera) -> Camera:
    if camera.stopped_reason:
        reason = camera.stopped_reason.rstrip()
        if "queue stopped" not in reason.lower():
            reason += " Queue stopped."
        return replace(camera, symbol="stopped", message=f"{reason} Restart the queue when the camera is ready.")
    return camera
