"""Deleting studies from the local archive: index rows first (one transaction, audited),
then the files. A failure half-way leaves files without index rows (harmless, never shown)
rather than index rows without files."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine

from app.store import audit
from app.store.files import FileStore
from app.store.schema import commitment, instance, patient, series, study

log = logging.getLogger(__name__)


@dataclass
class Deleted:
    studies: int = 0
    instances: int = 0
    files_left: int = 0  # files that could not be removed (logged)


def never_committed(engine: Engine, study_uids: list[str]) -> list[str]:
    """The studies no remote archive has committed to keep (storage commitment)."""
    with engine.connect() as conn:
        committed = set(conn.execute(select(commitment.c.study_uid)
                                     .where(commitment.c.study_uid.in_(study_uids))).scalars())
    return [u for u in study_uids if u not in committed]


def delete_studies(engine: Engine, files: FileStore, study_uids: list[str], *, actor: str) -> Deleted:
    result = Deleted()
    paths: list[str] = []
    with engine.begin() as conn:
        for uid in study_uids:
            row = conn.execute(select(study.c.id, study.c.patient_id, patient.c.PatientID, patient.c.PatientName)
                               .join(patient, patient.c.id == study.c.patient_id)
                               .where(study.c.StudyInstanceUID == uid)).first()
            if row is None:
                continue
            series_ids = select(series.c.id).where(series.c.study_id == row.id)
            study_paths = list(conn.execute(select(instance.c.path).where(instance.c.series_id.in_(series_ids)))
                               .scalars())
            conn.execute(delete(instance).where(instance.c.series_id.in_(series_ids)))
            conn.execute(delete(series).where(series.c.study_id == row.id))
            conn.execute(delete(study).where(study.c.id == row.id))
            if not conn.execute(select(func.count()).select_from(study)
                                .where(study.c.patient_id == row.patient_id)).scalar():
                conn.execute(delete(patient).where(patient.c.id == row.patient_id))
            audit.record(conn, actor, "delete", f"study with {len(study_paths)} instance(s)",
                         patient_id=row.PatientID, patient_name=row.PatientName, study_uid=uid)
            paths += study_paths
            result.studies += 1
            result.instances += len(study_paths)
    folders = set()
    for rel in paths:
        target = files.absolute(rel)
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            result.files_left += 1
            log.error("could not remove %s after deleting its study: %s", target, exc)
        folders.add(target.parent)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        for f in (folder, folder.parent):  # series folder, then study folder, if empty
            try:
                if f != files.root:
                    os.rmdir(f)
            except OSError:
                pass  # not empty (another series, or something arrived meanwhile)
    log.info("%s deleted %d stud(ies), %d instance(s)", actor, result.studies, result.instances)
    return result
