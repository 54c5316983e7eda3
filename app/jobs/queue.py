"""The persistent job queue: long work (import now; send, retrieve, print, export later)
as rows in the database, run by worker threads, resumed after a restart.

A job is a kind (which runner), parameters, a resumable state the runner checkpoints,
progress and a message in the user's language. Jobs of one group (a destination, say) run
one after another; different groups run side by side. Every change is published as a
``job-updated`` event (the GUI's jobs panel listens) and written to the database at most a
few times a second.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from app import events
from app.store.schema import job as job_table
from app.store.schema import job_hold

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class JobError(Exception):
    """A failure with a message for the user (what happened, what to do)."""


class Cancelled(Exception):
    pass


class Postponed(Exception):
    """The job cannot run now (its printer is down): back to the queue, tried again after
    ``seconds``; the jobs of its group wait behind it, in order."""

    def __init__(self, message: str, seconds: float):
        super().__init__(message)
        self.seconds = seconds


@dataclass
class Job:
    id: int
    kind: str
    title: str
    params: dict
    state: dict
    status: str
    done: int
    total: int
    message: str
    owner: str | None
    group: str | None
    attempts: int
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _job(row) -> Job:
    return Job(row.id, row.kind, row.title, json.loads(row.params or "{}"), json.loads(row.state or "{}"),
               row.status, row.done, row.total, row.message or "", row.owner, row.group_key, row.attempts,
               row.created_at, row.updated_at)


class JobContext:
    """What a runner gets: its job, progress reporting, checkpoints, cancellation."""

    SAVE_EVERY = 0.25  # s between database writes of progress

    def __init__(self, queue: "JobQueue", job: Job):
        self.queue, self.job = queue, job
        self._saved = 0.0

    @property
    def cancelled(self) -> bool:
        return self.queue._cancel_requested(self.job.id)

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled()

    def wait(self, seconds: float, sleep=time.sleep) -> None:
        """Wait ``seconds`` (a retry interval), stopping at once when cancelled or shut down."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check()
            sleep(min(0.5, max(0.0, end - time.monotonic())))

    def progress(self, done: int, total: int | None = None, message: str | None = None,
                 state: dict | None = None) -> None:
        self.job.done = done
        if total is not None:
            self.job.total = total
        if message is not None:
            self.job.message = message
        if state is not None:
            self.job.state = state
        now = time.monotonic()
        if now - self._saved >= self.SAVE_EVERY or (self.job.total and done >= self.job.total):
            self._saved = now
            self.queue._save(self.job)
        else:
            events.publish("job-updated", self.job.as_dict())


Runner = Callable[[JobContext], str]


class JobQueue:
    def __init__(self, engine: Engine, runners: dict[str, Runner], workers: int = 2):
        self.engine = engine
        self.runners = runners
        self.workers = workers
        self._lock = threading.Condition()
        self._running_groups: set[str] = set()
        self._running: set[int] = set()
        self._cancel: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._not_before: dict[int, float] = {}  # postponed job -> monotonic time it may run again

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Resume what a previous run left running, then start the workers."""
        with self.engine.begin() as conn:
            resumed = conn.execute(update(job_table).where(job_table.c.status == RUNNING)
                                   .values(status=QUEUED, message="interrupted by a restart; resuming",
                                           updated_at=_now())).rowcount
        if resumed:
            log.info("resuming %d job(s) interrupted by a restart", resumed)
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; running ones are asked to stop and resume at the next start."""
        self.interrupt()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))

    # -- the user's actions ---------------------------------------------------------------
    def submit(self, kind: str, title: str, params: dict, *, owner: str | None = None,
               group: str | None = None) -> int:
        if kind not in self.runners:
            raise ValueError(f"no runner for jobs of kind {kind!r}")
        with self.engine.begin() as conn:
            job_id = conn.execute(insert(job_table).values(
                kind=kind, title=title, params=json.dumps(params), state="{}", status=QUEUED, done=0, total=0,
                message="waiting", owner=owner, group_key=group, attempts=0, created_at=_now(),
                updated_at=_now())).inserted_primary_key[0]
        self._announce(job_id)
        with self._lock:
            self._lock.notify_all()
        return job_id

    def cancel(self, job_id: int) -> None:
        with self._lock:
            if job_id in self._running:
                self._cancel.add(job_id)
                return
        with self.engine.begin() as conn:
            conn.execute(update(job_table).where(job_table.c.id == job_id, job_table.c.status == QUEUED)
                         .values(status=CANCELLED, message="cancelled", updated_at=_now()))
        self._announce(job_id)

    def retry(self, job_id: int, params: dict | None = None, title: str | None = None) -> None:
        """Run a failed or cancelled job again, from where it stopped (with other parameters:
        a retrieve by C-GET after its C-MOVE found the destination unknown)."""
        values = {"status": QUEUED, "message": "waiting", "updated_at": _now()}
        if params is not None:
            values["params"] = json.dumps(params)
        if title is not None:
            values["title"] = title
        with self.engine.begin() as conn:
            conn.execute(update(job_table).where(job_table.c.id == job_id, job_table.c.status.in_((FAILED, CANCELLED)))
                         .values(**values))
        self._announce(job_id)
        with self._lock:
            self._lock.notify_all()

    # -- groups an operator must restart (a printer's queue, spec §8.6) ---------------------
    def hold(self, group: str, reason: str) -> None:
        """Stop the jobs of ``group`` (they stay queued) until release(); kept over restarts."""
        with self.engine.begin() as conn:
            if conn.execute(select(job_hold.c.group_key).where(job_hold.c.group_key == group)).first():
                conn.execute(update(job_hold).where(job_hold.c.group_key == group).values(reason=reason))
            else:
                conn.execute(insert(job_hold).values(group_key=group, reason=reason, since=_now()))
        log.warning("queue %s stopped: %s", group, reason)
        events.publish("job-hold", {"group": group, "reason": reason})

    def release(self, group: str) -> None:
        """The operator restarts the queue: its jobs run again, at once."""
        with self.engine.begin() as conn:
            conn.execute(delete(job_hold).where(job_hold.c.group_key == group))
            waiting = [r.id for r in conn.execute(select(job_table.c.id).where(
                job_table.c.group_key == group, job_table.c.status == QUEUED))]
        with self._lock:
            for job_id in waiting:
                self._not_before.pop(job_id, None)
            self._lock.notify_all()
        log.info("queue %s restarted", group)
        events.publish("job-hold", {"group": group, "reason": None})

    def holds(self) -> dict[str, str]:
        """Stopped groups and why."""
        with self.engine.connect() as conn:
            return {r.group_key: r.reason for r in conn.execute(select(job_hold))}

    def remove_finished(self) -> int:
        with self.engine.begin() as conn:
            n = conn.execute(delete(job_table).where(job_table.c.status.in_(FINISHED))).rowcount
        events.publish("jobs-removed", None)
        return n

    def get(self, job_id: int) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(job_table).where(job_table.c.id == job_id)).first()
        return _job(row) if row else None

    def list(self, limit: int = 500) -> list[Job]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_table).order_by(job_table.c.id.desc()).limit(limit))
            return [_job(r) for r in rows]

    def wait(self, job_id: int, timeout: float = 60.0) -> Job:
        """Until the job has finished (tests, the command line)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None or job.status in FINISHED or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    def run_here(self, job_id: int) -> Job | None:
        """Run one queued job in the calling thread, without workers and without touching
        other jobs (the command line: ``lightbox send`` runs its own job and waits)."""
        job = self._claim(only=job_id)
        if job is not None:
            self._announce(job.id)
            self._run(job)
        return self.get(job_id)

    def interrupt(self) -> None:
        """Stop what runs here; running jobs go back to the queue and resume at the next start."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()

    # -- workers --------------------------------------------------------------------------
    def _cancel_requested(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._cancel or self._stopping

    def _claim(self, only: int | None = None) -> Job | None:
        """The oldest queued job (or job ``only``) whose group is not busy, stopped or
        waiting behind a postponed job, marked running."""
        with self.engine.begin() as conn:
            q = select(job_table).where(job_table.c.status == QUEUED)
            if only is not None:
                q = q.where(job_table.c.id == only)
            queued = conn.execute(q.order_by(job_table.c.id)).fetchall()
            held = {r.group_key for r in conn.execute(select(job_hold.c.group_key))} if queued else set()
            now = time.monotonic()
            for row in queued:
                with self._lock:
                    if row.group_key and (row.group_key in self._running_groups or row.group_key in held):
                        continue
                    if self._not_before.get(row.id, 0.0) > now:
                        if row.group_key:  # the jobs behind it keep their turn
                            held.add(row.group_key)
                        continue
                    if row.kind not in self.runners:
                        continue
                    taken = conn.execute(update(job_table).where(job_table.c.id == row.id, job_table.c.status == QUEUED)
                                         .values(status=RUNNING, attempts=row.attempts + 1, message="starting",
                                                 updated_at=_now())).rowcount
                    if not taken:
                        continue
                    if row.group_key:
                        self._running_groups.add(row.group_key)
                    self._running.add(row.id)
                job = _job(row)
                job.status, job.attempts, job.message = RUNNING, row.attempts + 1, "starting"
                return job
        return None

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                job = self._claim()
            except Exception:  # noqa: BLE001 - the database is busy or gone: try again soon
                log.exception("could not read the job queue")
                job = None
            if job is None:
                with self._lock:
                    if not self._stopping:
                        self._lock.wait(1.0)  # also when a postponed job's time comes
                continue
            self._announce(job.id)
            self._run(job)

    def _run(self, job: Job) -> None:
        ctx = JobContext(self, job)
        try:
            message = self.runners[job.kind](ctx)
        except Postponed as exc:
            job.status, job.message = QUEUED, str(exc)
            with self._lock:
                self._not_before[job.id] = time.monotonic() + exc.seconds
        except Cancelled:
            stopping = self._stopping and job.id not in self._cancel
            job.status = QUEUED if stopping else CANCELLED
            job.message = "interrupted; resumes at the next start" if stopping else "cancelled"
        except JobError as exc:
            job.status, job.message = FAILED, str(exc)
            log.warning("job %d (%s) failed: %s", job.id, job.title, exc)
        except Exception as exc:  # noqa: BLE001 - a bug: say so plainly, keep the queue alive
            log.exception("job %d (%s) failed", job.id, job.title)
            job.status, job.message = FAILED, f"failed unexpectedly: {exc}. See the log; Retry may help."
        else:
            job.status, job.message = DONE, message or "done"
        finally:
            self._save(job)  # before its group is free: a postponed job keeps its turn
            with self._lock:
                if job.status != QUEUED:
                    self._not_before.pop(job.id, None)
                self._running.discard(job.id)
                self._cancel.discard(job.id)
                if job.group:
                    self._running_groups.discard(job.group)
                self._lock.notify_all()

    def _save(self, job: Job) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(job_table).where(job_table.c.id == job.id).values(
                status=job.status, done=job.done, total=job.total, message=job.message,
                state=json.dumps(job.state), updated_at=_now()))
        events.publish("job-updated", job.as_dict())

    def _announce(self, job_id: int) -> None:
        job = self.get(job_id)
        if job is not None:
            events.publish("job-updated", job.as_dict())


def _now() -> datetime:
    return datetime.now(timezone.utc)
