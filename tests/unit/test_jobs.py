"""The persistent job queue and the import job, against a real archive."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from app.jobs import import_job
from app.jobs.queue import CANCELLED, DONE, FAILED, QUEUED, JobContext, JobError, JobQueue
from app.store.archive import Archive
from app.store.query import search
from tests.peers.peerutil import ct_dataset, save


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "home")
    yield a
    a.close()


def _folder(tmp_path: Path, n: int) -> Path:
    study, series = generate_uid(), generate_uid()
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        save(ct_dataset(study, series, generate_uid(), i + 1, size=8), folder / ("sub" if i % 2 else "") / f"{i}.dcm")
    (folder / "notes.txt").write_text("not DICOM")
    return folder


def test_import_job_imports_a_folder_and_reports(archive, tmp_path):
    folder = _folder(tmp_path, 6)
    queue = JobQueue(archive.engine, {import_job.KIND: import_job.runner(archive.ingest)})
    queue.start()
    try:
        jid = queue.submit(import_job.KIND, import_job.title([folder]), {"paths": [str(folder)]}, owner="rita")
        job = queue.wait(jid)
        assert job.status == DONE, job.message
        assert job.message == "6 imported, 0 already present, 1 rejected (not DICOM or unreadable)"
        assert (job.done, job.total) == (7, 7)
        assert job.state["rejected"][0][0].endswith("notes.txt")
        assert len(search(archive.engine, "instance", {})) == 6
        # the same folder again: everything is already there
        again = queue.wait(queue.submit(import_job.KIND, "again", {"paths": [str(folder)]}))
        assert again.message.startswith("0 imported, 6 already present")
    finally:
        queue.stop()


def test_import_of_a_vanished_folder_fails_with_advice(archive, tmp_path):
    queue = JobQueue(archive.engine, {import_job.KIND: import_job.runner(archive.ingest)})
    queue.start()
    try:
        job = queue.wait(queue.submit(import_job.KIND, "cd", {"paths": [str(tmp_path / "cdrom")]}))
        assert job.status == FAILED and "still inserted" in job.message
    finally:
        queue.stop()


def test_jobs_of_one_group_run_one_after_another(archive):
    order, lock = [], threading.Lock()
    gate = threading.Event()

    def slow(ctx: JobContext) -> str:
        with lock:
            order.append(("start", ctx.job.params["n"]))
        gate.wait(5)
        with lock:
            order.append(("end", ctx.job.params["n"]))
        return "ok"

    queue = JobQueue(archive.engine, {"slow": slow}, workers=3)
    queue.start()
    try:
        a = queue.submit("slow", "a", {"n": 1}, group="PACS1")
        b = queue.submit("slow", "b", {"n": 2}, group="PACS1")
        c = queue.submit("slow", "c", {"n": 3}, group="PACS2")
        deadline = threading.Event()
        for _ in range(100):
            with lock:
                started = {n for what, n in order if what == "start"}
            if started == {1, 3}:
                break
            deadline.wait(0.05)
        assert started == {1, 3}, order  # b waits for a; c runs beside a
        gate.set()
        assert all(queue.wait(j).status == DONE for j in (a, b, c))
        assert order.index(("end", 1)) < order.index(("start", 2))
    finally:
        gate.set()
        queue.stop()


def test_cancel_retry_and_resume_after_restart(archive):
    proceed, at_five = threading.Event(), threading.Event()
    seen_states = []

    def counting(ctx: JobContext) -> str:
        start = ctx.job.state.get("next", 0)
        seen_states.append(start)
        for i in range(start, 10):
            if i == 5 and not proceed.is_set():
                at_five.set()
                proceed.wait(5)
            ctx.check()
            ctx.progress(i + 1, 10, f"{i + 1} of 10", {"next": i + 1})
        return "counted"

    queue = JobQueue(archive.engine, {"count": counting})
    queue.start()
    jid = queue.submit("count", "count to ten", {})
    assert at_five.wait(10)
    queue.stop(timeout=0.2)  # the application closes mid-job
    proceed.set()
    for _ in range(100):
        if queue.get(jid).status == QUEUED:
            break
        threading.Event().wait(0.05)
    assert queue.get(jid).status == QUEUED and "resumes" in queue.get(jid).message

    queue2 = JobQueue(archive.engine, {"count": counting})
    queue2.start()
    try:
        job = queue2.wait(jid)
        assert job.status == DONE and job.message == "counted" and job.done == 10
        assert seen_states == [0, 5]  # resumed where it stopped, not from the start

        def failing(ctx):
            raise JobError("The printer is out of film: load film and press Retry.")
        queue2.runners["fail"] = failing
        fid = queue2.submit("fail", "print", {})
        assert queue2.wait(fid).status == FAILED
        assert queue2.get(fid).message.startswith("The printer is out of film")
        queue2.runners["fail"] = lambda ctx: "printed"
        queue2.retry(fid)
        assert queue2.wait(fid).status == DONE and queue2.get(fid).attempts == 2
        queue2.runners["hold"] = lambda ctx: (proceed.clear(), proceed.wait(5), ctx.check(), "held")[-1]
        hid = queue2.submit("hold", "hold", {})
        for _ in range(100):
            if queue2.get(hid).status == "running":
                break
            threading.Event().wait(0.05)
        queue2.cancel(hid)
        proceed.set()
        assert queue2.wait(hid).status == CANCELLED
        assert queue2.remove_finished() >= 3
    finally:
        queue2.stop()
