"""The retrieve job (spec §4.2.1.3.5): a study or series of a remote node into the local
archive, by C-MOVE to our own storage AE or by C-GET over one association (for firewalls
that cannot reach us). Progress from the pending responses; what arrives goes through the
one store pipeline, so it is in the browser as it comes. Resumable: a retrieve asked again
brings what is missing (what is already here arrives as a duplicate and is kept once)."""

from __future__ import annotations

from app.jobs.queue import JobContext, JobError

KIND = "retrieve"


def group(node_name: str) -> str:
    return f"retrieve:{node_name}"


def title(node_name: str, study: str, series: str | None, method: str) -> str:
    what = f"series {series}" if series else f"study {study}"
    return f"Retrieve {what} from {node_name} ({'C-GET' if method == 'get' else 'C-MOVE'})"


def params(node_name: str, study: str, series: str | None = None, method: str = "move") -> dict:
    return {"node": node_name, "study": study, "series": series, "method": method}


def configured_node(archive, name: str, otherwise: str = "and retry"):
    """The remote node ``name``; JobError saying what to do when it is gone."""
    from app.store import nodes
    node = nodes.get_node(archive.engine, name)
    if node is None:
        raise JobError(f"The remote node '{name}' is no longer configured. Add it again in the settings "
                       f"(Remote nodes) {otherwise}.")
    return node


def runner(archive):
    def run(ctx: JobContext) -> str:
        from app.net.query_retrieve import QueryFailed, retrieve_remote
        p = ctx.job.params
        node = configured_node(archive, p["node"])
        ctx.progress(0, 0, f"asking {node.aet} for the images")

        def on_progress(progress) -> None:
            ctx.progress(progress.completed + progress.warning, progress.total,
                         f"{progress.completed + progress.warning} of {progress.total} received"
                         + (f", {progress.failed} failed" if progress.failed else ""),
                         {"completed": progress.completed, "failed": progress.failed, "warning": progress.warning})

        try:
            progress = retrieve_remote(archive.settings, archive.ingest, node, p["study"], p.get("series"),
                                       method=p.get("method", "move"), on_progress=on_progress,
                                       cancelled=lambda: ctx.cancelled)
        except QueryFailed as exc:
            ctx.check()  # cancelled by the user or stopped by a shutdown (C-CANCEL was sent): not a failure
            raise JobError(str(exc)) from None
        archive.settle()  # indexed, so the browser and 'ls' show all of it when we say done
        return f"{progress.completed + progress.warning} instance(s) retrieved from {node.aet}"
    return run
