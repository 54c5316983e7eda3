"""The storage commitment job (spec §4.2.1.3.2): after a send, and commit.delay seconds
later (so the archive has indexed what it received; default 10 minutes), ask the node to
commit to keep the delivered instances, in one request or one per instance
(commit.per_instance), then wait up to commit.report_timeout for its reports. Timeouts and
aborts are retried (Table 4-11); a refusal marks the instances "commit failed" (Table 4-10).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

from app.jobs.queue import JobContext, JobError

log = logging.getLogger(__name__)
KIND = "commit"


def params(node_name: str, items: list[tuple[str, str, str]], delay: float) -> dict:
    """``items``: (SOP class, SOP instance) as the node holds them, and the archived instance
    each stands for (itself, or the Enhanced MR split / the object packed for the node)."""
    due = datetime.now(timezone.utc) + timedelta(seconds=delay)
    return {"node": node_name, "items": [list(i) for i in items], "not_before": due.isoformat()}


def title(node_name: str, count: int) -> str:
    return f"Storage commitment of {count} instance{'s' if count != 1 else ''} by {node_name}"


def runner(archive, sleep=time.sleep):
    def run(ctx: JobContext) -> str:
        from app.net import commitment
        from app.net.remote import AssociationFailed
        from app.store import nodes
        p, settings = ctx.job.params, archive.settings
        node = nodes.get_node(archive.engine, p["node"])
        if node is None:
            raise JobError(f"The remote node '{p['node']}' is no longer configured.")
        items = [tuple(i) for i in p["items"]]
        state = {"next": 0, "transactions": [], **ctx.job.state}
        due = datetime.fromisoformat(p["not_before"])
        while (left := (due - datetime.now(timezone.utc)).total_seconds()) > 0:
            ctx.progress(0, len(items), f"asking {node.aet} in {left:.0f} s (commit.delay: time to index)", state)
            ctx.check()
            sleep(min(1.0, left))
        size = 1 if settings["commit.per_instance"] else len(items)
        attempt = 0
        while state["next"] < len(items):
            chunk = items[state["next"]:state["next"] + size]
            try:
                transaction, _ = commitment.request(archive, node, chunk)
            except AssociationFailed as exc:
                attempt += 1
                if exc.permanent or attempt > settings["send.retries"]:
                    raise JobError(f"storage commitment not requested: {exc}") from None
                ctx.progress(0, len(items), f"{exc}; retry {attempt} in {settings['send.retry_interval']} s", state)
                ctx.wait(settings["send.retry_interval"], sleep)
                continue
            except commitment.CommitRefused as exc:
                raise JobError(str(exc)) from None
            state["transactions"].append(transaction)
            state["next"] += len(chunk)
            ctx.progress(0, len(items), f"requested; waiting for {node.aet}'s report", state)
        deadline = time.monotonic() + settings["commit.report_timeout"]
        while True:
            counts = {"pending": 0, "committed": 0, "failed": 0}
            for t in state["transactions"]:
                for k, n in commitment.item_states(archive.engine, t).items():
                    counts[k] = counts.get(k, 0) + n
            answered = counts["committed"] + counts["failed"]
            ctx.progress(answered, len(items), f"{counts['committed']} committed, {counts['failed']} failed"
                         + (f", {counts['pending']} waiting for the report" if counts["pending"] else ""), state)
            if not counts["pending"]:
                break
            if time.monotonic() > deadline:
                raise JobError(f"{node.aet} has not reported on {counts['pending']} instance(s) within "
                               f"{settings['commit.report_timeout']} s (commit.report_timeout); a later report is "
                               "still recorded when it comes, or Retry asks again")
            ctx.check()
            sleep(0.25)
        if counts["failed"]:
            raise JobError(f"{node.aet} committed {counts['committed']} of {len(items)} instance(s); "
                           f"{counts['failed']} marked 'commit failed' (see the log for the reasons)")
        return f"{node.aet} committed to keep all {counts['committed']} instance(s)"
    return run
