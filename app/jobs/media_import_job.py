"""The media import job (spec §5.2.1.2.2 "Import into Application"): the series chosen in
the media browser (app.ui.media_dialog) imported from a folder, a DICOMDIR or an ISO image
through the one store pipeline (app.media.medium.import_medium), with progress in the jobs
panel. Interrupted by a restart, it runs again from the start: what it imported before
counts as already present."""

from __future__ import annotations

import logging
from pathlib import Path

from app.jobs.queue import JobContext, JobError
from app.store.ingest import Ingest

log = logging.getLogger(__name__)

KIND = "media-import"
REJECTED_KEPT = 200  # reasons kept in the job's state; the log has all of them
REASONS_SHOWN = 3


def params(path: Path | str, select: list[str] | set[str] | None) -> dict:
    """``select``: the Study, Series or SOP Instance UIDs to import; None: everything."""
    return {"path": str(path), "select": sorted(select) if select is not None else None}


def title(path: Path | str, series: int | None = None) -> str:
    name = Path(path).name or str(path)
    return f"Import from {name}" + (f" ({series} series)" if series else "")


def runner(ingest: Ingest):
    def run(ctx: JobContext) -> str:
        from app.media.medium import MediumError, import_medium, open_medium
        p = ctx.job.params
        path = Path(p["path"])
        select = set(p["select"]) if p.get("select") is not None else None
        if not path.exists():
            raise JobError(f"Nothing to import: {path} cannot be found. Is the medium still inserted, or the "
                           "image still where it was?")
        ctx.progress(0, 0, "reading the medium")

        def reading(done: int, total: int) -> None:
            ctx.progress(0, 0, f"reading the medium: {done} of {total} files")
        try:
            medium = open_medium(path, reading)
        except MediumError as exc:
            raise JobError(str(exc)) from None
        with medium:
            ctx.check()
            total = sum(1 for _ in medium.instances(select))
            if not total:
                raise JobError("Nothing to import: the series chosen are not on this medium (was another disc "
                               "inserted?).")
            done = 0

            def each(_label, _result) -> None:
                nonlocal done
                done += 1
                ctx.progress(done, total, f"{done} of {total} read")
            summary = import_medium(ingest, medium, select, each, lambda: ctx.cancelled)
        ctx.check()
        for f, reason in summary.rejected:
            log.warning("%s: %s not imported: %s", path, f, reason)
        ctx.progress(done, total, state={"imported": summary.imported, "present": summary.present,
                                         "rejected": [list(r) for r in summary.rejected[:REJECTED_KEPT]]})
        text = summary_text(summary)
        if not summary.imported and not summary.present:
            raise JobError(f"Nothing could be imported: {text}")
        return text
    return run


def summary_text(summary) -> str:
    """'N imported, N already present, N not imported: file: reason; …'"""
    text = f"{summary.imported} imported, {summary.present} already present"
    if summary.rejected:
        reasons = "; ".join(f"{f}: {r}" for f, r in summary.rejected[:REASONS_SHOWN])
        more = f"; and {len(summary.rejected) - REASONS_SHOWN} more (see the log)" \
            if len(summary.rejected) > REASONS_SHOWN else ""
        text += f", {len(summary.rejected)} not imported: {reasons}{more}"
    return text
