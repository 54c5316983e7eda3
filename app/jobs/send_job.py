"""The send job ("Send to", spec §4.2.1.3.1): instances of the archive, or files, to one
remote node over one association, one after another.

Statuses per Table 4-6 (app.dicom.statuses.send_outcome): a duplicate (0111) counts as
delivered with a warning; any failure lets the job go on to the end and then fail with the
share transferred, so Retry sends only what did not arrive. Transient failures (the node
unreachable, the association dropped or timed out) are retried send.retries times,
send.retry_interval apart, from the instance where it stopped; permanent ones (association
rejected permanently, every presentation context refused) are not (§4.2.1.3.1.1). The
state is checkpointed, so a restart resumes where the job was.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from app.jobs.queue import JobContext, JobError
from app.net.remote import AssociationFailed
from app.net.storage import Instance, Sender

log = logging.getLogger(__name__)

KIND = "send"


def group(node_name: str) -> str:
    """Jobs to one destination run one after another; to different ones, side by side."""
    return f"send:{node_name}"


def title(node_name: str, what: str, count: int) -> str:
    return f"Send {what} to {node_name} ({count} instance{'s' if count != 1 else ''})"


def params(node_name: str, instances: list[Instance], archive_root: Path | None = None,
           commit: bool = False) -> dict:
    """Job parameters: paths inside the archive are kept relative to it (the archive may
    be moved between a crash and the resume); ``commit``: ask for storage commitment after."""
    rows = []
    for i in instances:
        path = Path(i.path)
        if archive_root is not None and path.is_relative_to(archive_root):
            path, where = path.relative_to(archive_root), "archive"
        else:
            where = "file"
        rows.append([where, str(path), i.sop_class, i.sop_instance, i.transfer_syntax])
    return {"node": node_name, "instances": rows, "commit": commit}


def archive_instances(archive, *, study: str | None = None, series: str | None = None) -> list[Instance]:
    """The archived instances of a study or series, in series and image order."""
    from app.store.query import iter_matches
    keys = {"StudyInstanceUID": study} if study else {"SeriesInstanceUID": series}
    return [Instance(str(archive.files.absolute(r["path"])), r.get("SOPClassUID") or "", r.get("SOPInstanceUID") or "",
                     r.get("TransferSyntaxUID") or "") for r in iter_matches(archive.engine, "instance", keys, computed=frozenset())]


def file_instances(paths: list[Path]) -> tuple[list[Instance], list[tuple[Path, str]]]:
    """DICOM files (folders walked, DICOMDIRs expanded) to send as they are: (instances,
    rejected files with the reason)."""
    import pydicom

    from app.importer import collect
    out, rejected = [], []
    for f in collect(paths):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            ts = str(ds.file_meta.get("TransferSyntaxUID") or "1.2.840.10008.1.2")
            out.append(Instance(str(f), str(ds.SOPClassUID), str(ds.SOPInstanceUID), ts))
        except Exception as exc:  # noqa: BLE001 - not DICOM, or no SOP class / instance
            rejected.append((f, f"not a DICOM instance ({exc})"))
    return out, rejected


def _instance(row: list, archive_root: Path) -> Instance:
    where, path, sop_class, sop_instance, ts = row
    return Instance(str(archive_root / path) if where == "archive" else path, sop_class, sop_instance, ts)


def runner(archive, sleep=time.sleep):
    def run(ctx: JobContext) -> str:
        from app.store import nodes
        name = ctx.job.params["node"]
        node = nodes.get_node(archive.engine, name)
        if node is None:
            raise JobError(f"The remote node '{name}' is no longer configured. Add it again in the settings "
                           "(Remote nodes) and retry, or send to another node.")
        items = [_instance(r, archive.files.root) for r in ctx.job.params["instances"]]
        # state: next (first never tried), sent, present, failures [[index, reason]] (all of
        # them: a retry, or a resume after a restart, sends those again and then the rest)
        state = {"next": 0, "sent": 0, "present": 0, "failures": [], **ctx.job.state}
        todo = [i for i, _ in state["failures"]] + list(range(state["next"], len(items)))
        ctx.progress(_delivered(state), len(items), f"connecting to {node.aet}@{node.host}:{node.port}", state)
        retries = archive.settings["send.retries"]
        attempt = 0
        while todo:
            try:
                _send(ctx, node, items, todo, state, archive.settings)
            except AssociationFailed as exc:
                if exc.permanent:
                    raise JobError(f"{exc}. Nothing more was sent; fix the remote node's configuration "
                                   "and retry.") from None
                attempt += 1
                if attempt > retries:
                    raise JobError(f"{exc}. Gave up after {retries} retr{'y' if retries == 1 else 'ies'}; "
                                   f"{_share(state, len(items))} sent. Retry when the node is back.") from None
                wait = archive.settings["send.retry_interval"]
                log.warning("send to %s: %s; retry %d of %d in %d s", node.aet, exc, attempt, retries, wait)
                ctx.progress(_delivered(state), message=f"{exc}; retry {attempt} of {retries} in {wait} s",
                             state=state)
                ctx.wait(wait, sleep)
        message = _finish(state, len(items), node)
        if ctx.job.params.get("commit") and "commit_job" not in state:
            from app.jobs import commit_job
            delay = archive.settings["commit.delay"]
            sent_as = state.get("sent_as", {})
            refs = [(c, u, item.sop_instance) for n, item in enumerate(items)
                    for c, u in sent_as.get(str(n), [(item.sop_class, item.sop_instance)])]
            state["commit_job"] = ctx.queue.submit(
                commit_job.KIND, commit_job.title(node.name, len(refs)),
                commit_job.params(node.name, refs, delay),
                owner=ctx.job.owner, group=f"commit:{node.name}")
            ctx.progress(_delivered(state), len(items), state=state)
            message += f"; storage commitment asked for in {delay} s (job {state['commit_job']})"
        return message
    return run


def _send(ctx: JobContext, node, items: list[Instance], todo: list[int], state: dict, settings) -> None:
    """Send ``todo`` (consumed from the front as each instance is answered) over one association."""
    sender = Sender(settings, node, [items[i] for i in todo])
    failures = state["failures"]
    try:
        while todo:
            ctx.check()
            i = todo[0]
            following = items[todo[1]] if len(todo) > 1 else None
            outcome, message = sender.send(items[i], following)  # AssociationFailed leaves i in todo
            todo.pop(0)
            failures[:] = [f for f in failures if f[0] != i]
            if sender.sent_as:  # split or packed: the node holds these in its place
                state.setdefault("sent_as", {})[str(i)] = [list(r) for r in sender.sent_as]
            if outcome == "failed":
                failures.append([i, message])
                log.warning("send to %s: %s failed: %s", node.aet, items[i].sop_instance, message)
            else:
                state[outcome] += 1
            state["next"] = max(state["next"], i + 1)
            ctx.progress(_delivered(state), len(items), _progress_text(state), state)
    finally:
        sender.close()


def _delivered(state: dict) -> int:
    return state["sent"] + state["present"]


def _share(state: dict, total: int) -> str:
    return f"{_delivered(state)} of {total} ({100 * _delivered(state) // max(total, 1)} %)"


def _progress_text(state: dict) -> str:
    text = f"{state['sent']} sent"
    if state["present"]:
        text += f", {state['present']} already there"
    if state["failures"]:
        text += f", {len(state['failures'])} failed"
    return text


def _finish(state: dict, total: int, node) -> str:
    failed = len(state["failures"])
    if failed:
        reasons = sorted({m for _, m in state["failures"]})
        raise JobError(f"Sent {_share(state, total)} to {node.aet}; {failed} failed: "
                       f"{'; '.join(reasons[:3])}{' …' if len(reasons) > 3 else ''}. Retry sends the failed ones again.")
    text = f"{state['sent']} sent to {node.aet}"
    if state["present"]:
        text += (f"; {state['present']} were already on the remote node and were not overwritten "
                 "(Table 4-6: completed with a warning)")
    return text
