"""The import job: files, folders and DICOMDIRs through the one store pipeline (the same
as ``lightbox import``), resumable: a restart continues after the last checkpoint, and
what was imported before it counts as already present."""

from __future__ import annotations

from pathlib import Path

from app.importer import collect, import_paths
from app.jobs.queue import JobContext, JobError
from app.store.ingest import Ingest

KIND = "import"
CHECKPOINT_EVERY = 50
REJECTED_KEPT = 200  # reasons kept for the jobs panel; the log has all of them


def title(paths: list[Path]) -> str:
    if len(paths) == 1:
        return f"Import {paths[0].name or paths[0]}"
    return f"Import {len(paths)} items ({paths[0].name}, …)"


def runner(ingest: Ingest):
    def run(ctx: JobContext) -> str:
        paths = [Path(p) for p in ctx.job.params["paths"]]
        missing = [str(p) for p in paths if not p.exists()]
        if len(missing) == len(paths):
            raise JobError(f"Nothing to import: {', '.join(missing)} cannot be found. Is the medium still "
                           "inserted, or the network share still mounted?")
        files = collect(p for p in paths if p.exists())
        state = dict(ctx.job.state)
        start = int(state.get("next", 0))
        counts = state.setdefault("counts", {"imported": 0, "present": 0, "rejected": 0})
        rejected = state.setdefault("rejected", [])
        ctx.progress(start, len(files), f"{len(files)} files found", state)
        done = start

        def each(f, result) -> None:
            nonlocal done
            done += 1
            if result.ok and result.duplicate:
                counts["present"] += 1
            elif result.ok:
                counts["imported"] += 1
            else:
                counts["rejected"] += 1
                if len(rejected) < REJECTED_KEPT:
                    rejected.append([str(f), result.comment])
            state["next"] = done
            ctx.progress(done, len(files), _summary(counts), state)

        import_paths(ingest, files[start:], each, cancelled=lambda: ctx.cancelled)
        ctx.check()
        if counts["rejected"] and not counts["imported"] and not counts["present"]:
            raise JobError(f"No file could be imported ({counts['rejected']} rejected, e.g. "
                           f"{rejected[0][0]}: {rejected[0][1]}).")
        return _summary(counts)
    return run


def _summary(counts: dict) -> str:
    text = f"{counts['imported']} imported, {counts['present']} already present"
    if counts["rejected"]:
        text += f", {counts['rejected']} rejected (not DICOM or unreadable)"
    return text
