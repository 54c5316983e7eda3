"""A tiny publish/subscribe bus for core events (the GUI bridges it to Qt signals).

Subscribers are called on the publishing thread and must be quick; they never raise
into the publisher.
"""

import logging
import threading
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger(__name__)
_lock = threading.Lock()
_subscribers: dict[str, list[Callable[[Any], None]]] = defaultdict(list)


def subscribe(topic: str, fn: Callable[[Any], None]) -> Callable[[], None]:
    with _lock:
        _subscribers[topic].append(fn)

    def unsubscribe() -> None:
        with _lock:
            if fn in _subscribers[topic]:
                _subscribers[topic].remove(fn)
    return unsubscribe


def publish(topic: str, payload: Any) -> None:
    with _lock:
        fns = list(_subscribers.get(topic, ()))
    for fn in fns:
        try:
            fn(payload)
        except Exception:
            log.exception("event subscriber for %s failed", topic)
