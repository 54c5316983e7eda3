"""The print job (spec §4.2.1.3.7.1): "whenever a film-sheet is prepared by the user, it is
forwarded to the Printer Job queue. As soon as the associated Printer device is available
the job is activated." One queue per printer (the job group print:NAME), kept in the
database like every job, its pages spooled as files so that what was previewed is what is
printed, after a restart too.

A printer that cannot be reached: the job waits (postponed, print.retry_interval) with the
jobs behind it. A printer whose status stops its queue (§8.6: ELEC SW ERROR, REQ MED NOT
AVAI, an unknown FAILURE): the queue stops until an operator restarts it; nothing in it is
lost. A failure status or a dropped association fails this job with the reason; Retry
prints the films not yet accepted."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from app.film import cameras
from app.jobs.queue import JobContext, JobError, Postponed
from app.periodic import Periodic
from app.net.printing import (Film, PrintDropped, PrinterStopped, PrinterUnavailable, PrintRefused, print_films)

log = logging.getLogger(__name__)

KIND = "print"


def group(printer: str) -> str:
    return f"print:{printer}"


def printer_of(group_key: str | None) -> str | None:
    return group_key[len("print:"):] if group_key and group_key.startswith("print:") else None


def spool_root(archive) -> Path:
    return Path(archive.home) / "spool" / "print"


def submit(queue, archive, printer: str, pages: list[np.ndarray], film: Film, *, what: str,
           owner: str | None = None) -> int:
    """Spool ``pages`` and queue them for ``printer``: the job's id."""
    import uuid
    from dataclasses import asdict
    folder = spool_root(archive) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    names = []
    for i, page in enumerate(pages):
        name = f"film-{i + 1:03}.npy"
        np.save(folder / name, page)
        names.append(name)
    n = len(pages)
    title = f"Print {what} on {printer} ({n} film{'s' if n != 1 else ''}, {film.size} {film.orientation.lower()})"
    return queue.submit(KIND, title, {"printer": printer, "spool": folder.name, "pages": names, "film": asdict(film)},
                        owner=owner, group=group(printer))


def runner(archive):
    def run(ctx: JobContext) -> str:
        from app.store import nodes
        p = ctx.job.params
        name = p["printer"]
        node = nodes.get_node(archive.engine, name)
        if node is None:
            raise JobError(f"The printer '{name}' is no longer configured. Add it again in the settings "
                           "(Remote nodes, role print) and retry, or print on another printer.")
        folder = spool_root(archive) / p["spool"]
        total = len(p["pages"])
        state = {"next": 0, **ctx.job.state}
        try:
            pages = [np.load(folder / n) if i >= state["next"] else None for i, n in enumerate(p["pages"])]
        except OSError as exc:
            raise JobError(f"The spooled films of this job are gone ({exc.strerror or exc}); compose and "
                           "print them again.") from None
        ctx.check()
        ctx.progress(state["next"], total, f"sending to {node.name} ({node.aet}@{node.host}:{node.port})", state)

        def on_film(i: int) -> None:
            state["next"] = i + 1
            ctx.progress(state["next"], total, f"film {i + 1} of {total} accepted by {node.name}", state)

        film = Film(**p["film"])
        interval = archive.settings["print.retry_interval"]
        try:
            printed = print_films(archive.settings, node, pages, film, start=state["next"],
                                  presentation_lut=node.printer.presentation_lut,
                                  on_status=lambda s, i: cameras.update(name, s, i), on_film=on_film)
        except PrinterUnavailable as exc:
            cameras.unreachable(name, str(exc))
            raise Postponed(f"waiting for the printer: {exc}; tries again in {interval} s", interval) from None
        except PrinterStopped as exc:
            ctx.queue.hold(group(name), exc.state.message)
            cameras.stopped(name, exc.state.message)
            raise Postponed(f"queue stopped: {exc.state.message} Restart the queue of {name} when the camera "
                            "is ready.", interval) from None
        except (PrintRefused, PrintDropped) as exc:
            if getattr(exc, "resume_at", None) is not None:  # accepted, then reported failed
                state["next"] = min(state["next"], exc.resume_at)
                ctx.progress(state["next"], total, state=state)
            done = state["next"]
            raise JobError(f"{str(exc).rstrip('.')}. {done} of {total} film{'s' if total != 1 else ''} printed"
                           + ("; Retry prints the rest." if done < total else ".")) from None
        shutil.rmtree(folder, ignore_errors=True)
        text = f"{total} film{'s' if total != 1 else ''} printed on {node.name}"
        if printed.warnings:
            text += f"; {len(printed.warnings)} warning(s): {'; '.join(printed.warnings[:2])}"
        return text
    return run


def sweep_spool(archive, queue) -> int:
    """Remove the spooled films no job refers to any more (jobs removed from the list); a
    failed or cancelled job keeps its films for Retry. The number of folders removed."""
    root = spool_root(archive)
    if not root.is_dir():
        return 0
    kept = {job.params.get("spool") for job in queue.list(limit=100000) if job.kind == KIND}
    removed = 0
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in kept:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d spooled print job(s) no job refers to", removed)
    return removed


def restart(queue, printer: str) -> None:
    """The operator restarts a stopped queue (§8.6): its jobs are sent again."""
    queue.release(group(printer))
    cameras.stopped(printer, None)


def stopped_queues(queue) -> dict[str, str]:
    """Printer name -> why its queue is stopped; the camera board learns them too (after a
    restart of the application the stop holds)."""
    out = {}
    for group_key, reason in queue.holds().items():
        if (printer := printer_of(group_key)) is not None:
            out[printer] = reason
            cameras.stopped(printer, reason)
    return out


class CameraPoller(Periodic):
    """Asks every printer for its status (N-GET) every print.status_interval seconds so the
    camera symbol is current between jobs; a status that stops the queue stops it here too."""

    name = "camera-status"
    run_at_start = True

    def __init__(self, archive, queue):
        self.archive, self.queue = archive, queue
        super().__init__()

    def interval(self) -> float:
        return self.archive.settings["print.status_interval"] or 60

    def tick(self) -> None:
        if self.archive.settings["print.status_interval"]:
            poll_printers(self.archive, self.queue)


def poll_printers(archive, queue) -> None:
    from app.film import print_status
    from app.net.printing import PrintFailed, printer_status
    from app.store import nodes
    for node in nodes.list_nodes(archive.engine):
        if "print" not in node.roles:
            continue
        try:
            status, info = printer_status(archive.settings, node)
        except PrintFailed as exc:
            cameras.unreachable(node.name, str(exc))
            continue
        cameras.update(node.name, status, info)
        state = print_status.camera_state(status, info)
        if state.stops_queue and group(node.name) not in queue.holds():
            queue.hold(group(node.name), state.message)
            cameras.stopped(node.name, state.message)
