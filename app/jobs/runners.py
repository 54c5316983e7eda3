"""Every kind of job the application runs, with its dependencies bound: one list for the
GUI's queue and the headless node's."""

from __future__ import annotations

from app.jobs import commit_job, export_job, import_job, media_import_job, print_job, priors_job, retrieve_job, send_job
from app.jobs.queue import JobQueue


def make_job_queue(archive) -> JobQueue:
    return JobQueue(archive.engine, {
        import_job.KIND: import_job.runner(archive.ingest),
        media_import_job.KIND: media_import_job.runner(archive.ingest),
        send_job.KIND: send_job.runner(archive),
        retrieve_job.KIND: retrieve_job.runner(archive),
        priors_job.KIND: priors_job.runner(archive),
        commit_job.KIND: commit_job.runner(archive),
        print_job.KIND: print_job.runner(archive),
        export_job.KIND: export_job.runner(archive),
    })
