"""Auto-archive (spec §4.1.2.2): routing rules turn what the node receives into send jobs.

A rule names a destination node and, optionally, the AE title the instances came from and
a modality; with ``commit`` the send asks for storage commitment (which is what lets the
disk watermark free the space later). A study is routed once it has been quiet for
routing.stable seconds (a modality sends a study as a burst), and only what arrived after
the rule was made and was not routed before goes (the routed table), so a restart neither
loses nor repeats anything. Runs where the job queue runs: the GUI or ``lightbox node``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, func, insert, select, update

from app.jobs import send_job
from app.periodic import Periodic
from app.net.storage import Instance
from app.store.index_writer import insert_ignore
from app.store.schema import instance, route, routed, series, study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    name: str
    to_node: str
    from_aet: str | None = None
    modality: str | None = None
    commit: bool = False
    enabled: bool = True

    def as_dict(self) -> dict:
        return {"name": self.name, "to": self.to_node, "from_aet": self.from_aet, "modality": self.modality,
                "commit": self.commit, "enabled": self.enabled}


def add_route(engine, r: Route) -> None:
    """A new rule; it routes what arrives from now on."""
    with engine.begin() as conn:
        start = conn.execute(select(func.coalesce(func.max(instance.c.id), 0))).scalar()
        conn.execute(delete(route).where(route.c.name == r.name))
        conn.execute(insert(route).values(name=r.name, to_node=r.to_node, from_aet=r.from_aet or None,
                                          modality=r.modality or None, commit=int(r.commit),
                                          enabled=int(r.enabled), start_id=start))


def remove_route(engine, name: str) -> bool:
    with engine.begin() as conn:
        conn.execute(delete(routed).where(routed.c.route == name))
        return conn.execute(delete(route).where(route.c.name == name)).rowcount > 0


def list_routes(engine) -> list[Route]:
    with engine.connect() as conn:
        return [Route(r.name, r.to_node, r.from_aet, r.modality, bool(r.commit), bool(r.enabled))
                for r in conn.execute(select(route).order_by(route.c.name))]


def due(engine, rule) -> dict[str, list[tuple[int, Instance]]]:
    """Per study, the (id, instance) the rule matches and has not sent yet, in id order."""
    q = (select(study.c.StudyInstanceUID, instance.c.id, instance.c.path, instance.c.SOPClassUID,
                instance.c.SOPInstanceUID, instance.c.TransferSyntaxUID)
         .join(series, instance.c.series_id == series.c.id).join(study, series.c.study_id == study.c.id)
         .outerjoin(routed, (routed.c.study_uid == study.c.StudyInstanceUID) & (routed.c.route == rule.name))
         .where(instance.c.id > rule.start_id,
                instance.c.id > func.coalesce(routed.c.last_instance_id, 0)))
    if rule.from_aet:
        q = q.where(instance.c.SourceApplicationEntityTitle == rule.from_aet)
    if rule.modality:
        q = q.where(series.c.Modality == rule.modality)
    out: dict[str, list[tuple[int, Instance]]] = {}
    with engine.connect() as conn:
        for uid, iid, path, sop_class, sop_instance, ts in conn.execute(q.order_by(instance.c.id)):
            out.setdefault(uid, []).append((iid, Instance(path, sop_class or "", sop_instance, ts or "")))
    return out


class Router(Periodic):
    """Checks the rules every routing.check seconds; submits a send job per quiet study."""

    name = "router"

    def __init__(self, archive, jobs):
        self.archive, self.jobs = archive, jobs
        self._seen: dict[tuple[str, str], tuple[int, float]] = {}  # (rule, study) -> (count, since)
        super().__init__()

    def interval(self) -> float:
        return self.archive.settings["routing.check"]

    def tick(self) -> None:
        self.check()

    def check(self, now: float | None = None) -> list[int]:
        """One pass; returns the send jobs submitted."""
        now = time.monotonic() if now is None else now
        stable = self.archive.settings["routing.stable"]
        submitted = []
        with self.archive.engine.connect() as conn:
            rules = conn.execute(select(route).where(route.c.enabled == 1)).all()
        for rule in rules:
            found = due(self.archive.engine, rule)
            waiting: list[int] = []
            for uid, items in found.items():
                key = (rule.name, uid)
                count, since = self._seen.get(key, (-1, now))
                if count != len(items):
                    self._seen[key] = (len(items), now)  # still arriving: wait until it is quiet
                elif now - since >= stable:
                    submitted.append(self._route(rule, uid, items))
                    self._seen.pop(key, None)
                    continue
                waiting.append(items[0][0])
            if found:
                # what is routed need not be looked at again: the rule's start moves up to the
                # first instance still waiting (ids grow with each commit)
                cursor = min(waiting) - 1 if waiting else max(i for items in found.values() for i, _ in items)
                if cursor > rule.start_id:
                    with self.archive.engine.begin() as conn:
                        conn.execute(update(route).where(route.c.name == rule.name).values(start_id=cursor))
        return submitted

    def _route(self, rule, study_uid: str, items: list[tuple[int, Instance]]) -> int:
        root = self.archive.files.root
        instances = [Instance(str(root / i.path), i.sop_class, i.sop_instance, i.transfer_syntax) for _, i in items]
        job_id = self.jobs.submit(send_job.KIND, send_job.title(rule.to_node, f"study {study_uid} (rule {rule.name})",
                                                                 len(instances)),
                                  send_job.params(rule.to_node, instances, root, commit=bool(rule.commit)),
                                  owner=f"route:{rule.name}", group=send_job.group(rule.to_node))
        last = max(i for i, _ in items)
        with self.archive.engine.begin() as conn:
            if not insert_ignore(conn, routed, {"route": rule.name, "study_uid": study_uid, "last_instance_id": last,
                                                "routed_at": datetime.now(timezone.utc)}):
                conn.execute(update(routed).where(routed.c.route == rule.name, routed.c.study_uid == study_uid)
                             .values(last_instance_id=last, routed_at=datetime.now(timezone.utc)))
        log.info("rule %s: %d instance(s) of study %s to %s (job %d%s)", rule.name, len(instances), study_uid,
                 rule.to_node, job_id, ", with storage commitment" if rule.commit else "")
        return job_id
