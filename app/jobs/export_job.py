"""The export job (spec §5.2.1.2.3 "Export to local Archive Media"): studies or series of
the archive written as a File-set of a media profile, to ISO images or a USB folder, and
read back (app.media.export). A job like every long piece of work: progress in the jobs panel
or on the command line, kept over a restart (an interrupted export starts again: nothing of
it was written before its volumes are complete)."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

from app.jobs.queue import JobContext, JobError

KIND = "export"


def params(items, options) -> dict:
    from app.media.export import Item
    opts = {f.name: (str(v) if isinstance(v, Path) else v) for f in fields(options)
            for v in [getattr(options, f.name)]}
    return {"items": [list(asdict(i).values()) for i in items], "options": opts,
            "item_fields": [f.name for f in fields(Item)]}


def options_of(p: dict):
    from app.media.export import ExportOptions
    o = dict(p["options"])
    for key in ("destination", "mapping"):
        if o.get(key):
            o[key] = Path(o[key])
    return ExportOptions(**o)


def title(options, count: int) -> str:
    level = f", de-identified ({options.deidentify})" if options.deidentify else ""
    return f"Export {count} instance{'s' if count != 1 else ''} as {options.profile}{level} to {options.destination}"


def runner(archive):
    def run(ctx: JobContext) -> str:
        from app.media.export import ExportError, Item, export
        p = ctx.job.params
        items = [Item(**dict(zip(p["item_fields"], row))) for row in p["items"]]
        options = options_of(p)
        missing = [i for i in items if not Path(i.path).exists()]
        if len(missing) == len(items):
            raise JobError("The instances to export are no longer in the archive (deleted since?).")
        ctx.progress(0, len(items), "preparing")

        def progress(done: int, total: int, message: str) -> None:
            ctx.progress(done, total, message)
        try:
            report = export(items, options, progress, cancelled=lambda: ctx.cancelled)
        except ExportError as exc:
            ctx.check()
            raise JobError(str(exc)) from None
        state = {"volumes": [str(v) for v in report.volumes], "refused": report.refused[:200],
                 "warnings": report.warnings[:200], "bytes": report.bytes,
                 "verified": [v.summary() for v in report.verified]}
        ctx.progress(len(items), len(items), state=state)
        text = (f"{report.exported} instance{'s' if report.exported != 1 else ''} ({report.bytes / 1e6:,.1f} MB) on "
                f"{len(report.volumes)} volume{'s' if len(report.volumes) != 1 else ''}: "
                + ", ".join(str(v) for v in report.volumes))
        if report.refused:
            text += f"; {len(report.refused)} not exported (e.g. {report.refused[0][1]})"
        if not report.ok:
            bad = [v.summary() for v in report.verified if not v.ok]
            raise JobError(f"{text}. The check after writing FAILED: {'; '.join(bad)}. Do not burn it; "
                           "export again.")
        return text + "; read back and verified"
    return run
