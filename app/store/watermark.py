"""The disk watermark (spec §4.1.2.2, §4.2.1.4.2): when the archive's disk is fuller than
storage.watermark_high percent, the oldest received studies that a remote archive committed
to keep (storage commitment) are deleted until it is below storage.watermark_low. A study no
archive committed to is never deleted automatically: the log says so, and what to do."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy import select

from app.periodic import Periodic
from app.store.delete import delete_studies
from app.store.schema import commitment, study

log = logging.getLogger(__name__)
ACTOR = "watermark"
BATCH = 10


def used_percent(root: Path) -> float:
    usage = shutil.disk_usage(root)
    return 100.0 * usage.used / usage.total if usage.total else 0.0


def committed_oldest_first(engine, limit: int) -> list[str]:
    """Committed studies, the earliest received first."""
    with engine.connect() as conn:
        committed = select(commitment.c.study_uid).distinct().scalar_subquery()
        return list(conn.execute(select(study.c.StudyInstanceUID).where(study.c.StudyInstanceUID.in_(committed))
                                 .order_by(study.c.created_at, study.c.id).limit(limit)).scalars())


def enforce(archive, used=used_percent) -> int:
    """One check; returns the number of studies deleted."""
    high, low = archive.settings["storage.watermark_high"], archive.settings["storage.watermark_low"]
    if not high:
        return 0
    root = archive.files.root
    now = used(root)
    if now < high:
        return 0
    deleted = 0
    while now > low:
        batch = committed_oldest_first(archive.engine, BATCH)
        if not batch:
            with archive.engine.connect() as conn:
                left = len(conn.execute(select(study.c.id)).all())
            log.warning("disk %.1f %% used, above storage.watermark_low (%s %%), and no committed study is left "
                        "to delete: %d stud(ies) no archive has committed to keep stay. Send them to an archive "
                        "with storage commitment, or delete some by hand.", now, low, left)
            break
        result = delete_studies(archive.engine, archive.files, batch, actor=ACTOR)
        deleted += result.studies
        now = used(root)
    log.info("watermark: disk above %s %% used; %d committed stud(ies) deleted, now %.1f %%", high, deleted, now)
    return deleted


class Watchdog(Periodic):
    """Checks the watermark every storage.watermark_check seconds, beside the node (headless
    or the GUI's)."""

    name = "watermark"

    def __init__(self, archive):
        self.archive = archive
        super().__init__()

    def interval(self) -> float:
        return self.archive.settings["storage.watermark_check"]

    def tick(self) -> None:
        enforce(self.archive)
