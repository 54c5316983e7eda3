"""The audit trail: who did what, when, to which patient.

One row per event, written in the transaction of the change it describes (so a change and
its audit record are committed together or not at all). Actors are user names, or
``os:<login>`` for the command line. Administrators read it in the GUI and with
``lightbox audit``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from app.store.schema import audit_log


def record(conn: Connection, actor: str, action: str, detail: str | None = None, *, outcome: str = "success",
           patient_id: str | None = None, patient_name: str | None = None, study_uid: str | None = None) -> None:
    conn.execute(insert(audit_log).values(at=datetime.now(timezone.utc), actor=actor, action=action,
                                          outcome=outcome, detail=detail,
                                          patient_id=patient_id, patient_name=patient_name,
                                          study_uid=study_uid))


def log(engine: Engine, actor: str, action: str, detail: str | None = None, **kw) -> None:
    """Record an event that is not part of a database change of ours (a settings file edit)."""
    with engine.begin() as conn:
        record(conn, actor, action, detail, **kw)


def search(engine: Engine, *, actor: str | None = None, action: str | None = None,
           since: datetime | None = None, until: datetime | None = None, patient: str | None = None,
           limit: int = 1000) -> list[dict]:
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if actor:
        q = q.where(audit_log.c.actor == actor)
    if action:
        q = q.where(audit_log.c.action == action)
    if since:
        q = q.where(audit_log.c.at >= since)
    if until:
        q = q.where(audit_log.c.at < until)
    if patient:
        like = f"%{patient}%"
        q = q.where(audit_log.c.patient_id.like(like) | audit_log.c.patient_name.like(like))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
