"""Modality Worklist SCU (spec §4.2.1.3.6, Tables 4-22 to 4-26): the broad query of Table
4-23 to a worklist provider, asking for every return key of Table 4-24
(resources/spec/worklist_keys.tsv), and its answers kept in the local database
(app.store.worklist). Statuses as Table 4-25 says: pending answers counted for the user,
failures explained; a timeout or an abort (Table 4-26) too, and then the last good list
stays as it was."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.periodic import Periodic
from app.resources import read_tsv

log = logging.getLogger(__name__)

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"


@dataclass(frozen=True)
class WorklistKey:
    path: tuple[str, ...]   # keywords, outer sequence first
    type: str               # return key type of Table 4-24
    shown: bool             # a column of the worklist dialog ("x")
    query: str              # Table 4-23: 'modality', 'station', 'dates' or '' (a return key only)


@cache
def worklist_keys() -> tuple[WorklistKey, ...]:
    rows = read_tsv("spec", "worklist_keys.tsv")
    return tuple(WorklistKey(tuple(r[0].split("/")), r[1], len(r) > 2 and r[2] == "x", r[3] if len(r) > 3 else "")
                 for r in rows)


@dataclass(frozen=True)
class Scope:
    """What a broad query asks for: the modality ('*' all), the Scheduled Station AE Title
    ('*' any) and the scheduled start dates (YYYYMMDD, inclusive)."""
    modality: str
    station: str
    date_from: str
    date_to: str

    def covers(self, modality: str | None, station: str | None, start: str | None) -> bool:
        """Whether an item with these values is one the query would return (an item of the
        scope that the provider no longer returns has vanished)."""
        return (self.modality in ("*", "") or (modality or "") == self.modality) \
            and (self.station in ("*", "") or (station or "") == self.station) \
            and self.date_from <= (start or "") <= self.date_to


def scope_from_settings(settings, *, modality: str | None = None, date_from: str | None = None,
                        date_to: str | None = None, today: date | None = None) -> Scope:
    today = today or date.today()
    start = date_from or (today - timedelta(days=settings["worklist.days_past"])).strftime("%Y%m%d")
    end = date_to or (today + timedelta(days=settings["worklist.days_future"])).strftime("%Y%m%d")
    station = settings["node.aet"] if settings["worklist.own_aet_only"] else "*"
    return Scope(modality or settings["worklist.modality"] or "*", station, start, end)


def broad_query(scope: Scope) -> Dataset:
    """The identifier of Table 4-23's broad query: its matching keys from ``scope``, every
    return key of Table 4-24 asked for (empty; sequences with an empty item, so their
    items come back whole)."""
    values = {"modality": scope.modality, "station": scope.station,
              "dates": f"{scope.date_from}-{scope.date_to}"}
    ds = Dataset()
    from pydicom.config import disable_value_validation
    with disable_value_validation():  # '*' is a matching value, not a code string pydicom knows
        _fill(ds, values)
    return ds


def _fill(ds: Dataset, values: dict) -> None:
    for key in worklist_keys():
        holder = ds
        for outer in key.path[:-1]:
            if outer not in holder or not holder[outer].value:
                setattr(holder, outer, Sequence([Dataset()]))
            holder = holder[outer].value[0]
        keyword = key.path[-1]
        if keyword in holder:
            continue
        if keyword.endswith("Sequence"):
            setattr(holder, keyword, Sequence([Dataset()]) if _has_children(key.path) else Sequence())
        else:
            setattr(holder, keyword, values.get(key.query, "") or None)


def _has_children(path: tuple[str, ...]) -> bool:
    return any(k.path[:len(path)] == path and len(k.path) > len(path) for k in worklist_keys())


def query_worklist(settings, node, scope: Scope, *, on_pending=None, cancelled=lambda: False) -> tuple[list[Dataset], str]:
    """The items ``node`` schedules in ``scope``: (items, note). QueryFailed (with what to
    do) on a failure status, a timeout or an abort."""
    from app.net.query_retrieve import c_find
    return c_find(settings, node, MODALITY_WORKLIST_FIND, broad_query(scope), on_pending=on_pending,
                  cancelled=cancelled)


def query_and_store(archive, node, *, modality: str | None = None, date_from: str | None = None,
                    date_to: str | None = None, on_pending=None, cancelled=lambda: False) -> dict:
    """One broad query of ``node`` and its items kept in the database (new inserted,
    changed updated, vanished marked): {"items", "new", "changed", "vanished", "note"}.
    A failure is recorded for the provider and raised (QueryFailed); the items of the last
    good query stay as they were."""
    from app.net.query_retrieve import QueryFailed
    from app.store import worklist
    scope = scope_from_settings(archive.settings, modality=modality, date_from=date_from, date_to=date_to)
    try:
        items, note = query_worklist(archive.settings, node, scope, on_pending=on_pending, cancelled=cancelled)
    except QueryFailed as exc:
        worklist.record_failure(archive.engine, node.name, str(exc))
        log.warning("worklist query of %s failed: %s", node.name, exc)
        raise
    result = worklist.sync(archive.engine, node.name, items, scope)
    log.info("worklist of %s: %d item(s), %d new, %d changed, %d vanished", node.name, result["items"],
             result["new"], result["changed"], result["vanished"])
    return {**result, "note": note}


class WorklistPoller(Periodic):
    """Queries every worklist provider (remote nodes with the 'worklist' role) every
    worklist.interval seconds, beside the node (headless or the GUI's); a provider that is
    down is recorded and tried again at the next round, its last good list kept."""

    name = "worklist"
    run_at_start = True  # the list is there when the workstation starts

    def __init__(self, archive):
        self.archive = archive
        super().__init__()

    def interval(self) -> float:
        # 0: only on request; the setting is looked at again a minute later
        return self.archive.settings["worklist.interval"] or 60

    def tick(self) -> None:
        if self.archive.settings["worklist.interval"]:
            poll_all(self.archive)


def poll_all(archive, on_pending=None) -> dict[str, dict | str]:
    """One query of each worklist provider: node name -> its result, or the error text.
    ``on_pending(node name, items so far)`` as the pending answers come (Table 4-25)."""
    from app.net.query_retrieve import QueryFailed
    from app.store import nodes
    out: dict[str, dict | str] = {}
    for node in nodes.list_nodes(archive.engine):
        if "worklist" not in node.roles:
            continue
        try:
            out[node.name] = query_and_store(archive, node, on_pending=(lambda n, name=node.name: on_pending(name, n))
                                             if on_pending else None)
        except QueryFailed as exc:
            out[node.name] = str(exc)
    return out
