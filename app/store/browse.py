"""What the patient browser asks of the archive: its search fields as DICOM matching keys
(app.store.query), the study list and the series of a study. No Qt here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.engine import Engine

from app.store.query import search

# Date presets of the search bar: (days back for the start, days back for the end)
DATE_PRESETS: dict[str, tuple[int, int] | None] = {
    "Any date": None,
    "Today": (0, 0),
    "Yesterday": (1, 1),
    "Last 7 days": (6, 0),
    "Last 30 days": (29, 0),
    "Last 12 months": (364, 0),
}
MODALITIES = ("CT", "MR", "MG", "CR", "DX", "US", "XA", "RF", "NM", "PT", "OT", "SR", "SC", "KO", "PR")
STUDY_LIMIT = 10000


def preset_range(preset: str, today: date | None = None) -> tuple[date | None, date | None]:
    days = DATE_PRESETS.get(preset)
    if days is None:
        return None, None
    today = today or date.today()
    return today - timedelta(days=days[0]), today - timedelta(days=days[1])


def _text_key(value: str, *, append_star: bool) -> str | None:
    value = value.strip()
    if not value:
        return None
    if append_star and not value.endswith("*"):
        value += "*"  # as the reference does for names typed by the user (Table 4-48 note 2)
    return value


@dataclass
class StudyFilter:
    name: str = ""
    patient_id: str = ""
    accession: str = ""
    modality: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def keys(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        if name := _text_key(self.name, append_star=True):
            keys["PatientName"] = name
        if pid := _text_key(self.patient_id, append_star=False):
            keys["PatientID"] = pid
        if acc := _text_key(self.accession, append_star=False):
            keys["AccessionNumber"] = acc
        if self.modality:
            keys["Modality"] = self.modality  # any series of the study
        if when := date_key(self.date_from, self.date_to):
            keys["StudyDate"] = when
        return keys


def date_key(lo: date | None, hi: date | None) -> str | None:
    """A date matching value (PS3.4 C.2.2.2.5): one day, a range, or a range open at one end."""
    if not lo and not hi:
        return None
    a = lo.strftime("%Y%m%d") if lo else ""
    b = hi.strftime("%Y%m%d") if hi else ""
    return a if a == b else f"{a}-{b}"


def studies(engine: Engine, flt: StudyFilter, limit: int = STUDY_LIMIT) -> list[dict]:
    """The matching studies, each with ``_archived``: where storage commitment stands, and
    ``_procedure``: the scheduled procedure of the worklist it was acquired for."""
    from app.store.worklist import procedure_text, procedures_for
    rows = search(engine, "study", flt.keys(), limit=limit)
    states = archive_states(engine, [r["StudyInstanceUID"] for r in rows])
    procedures = procedures_for(engine, rows)
    for r in rows:
        r["_archived"] = states.get(r["StudyInstanceUID"], "")
        found = procedures.get(r["StudyInstanceUID"])
        r["_procedure"] = procedure_text(found["item"]) if found else ""
    return rows


def archive_states(engine: Engine, study_uids: list[str]) -> dict[str, str]:
    """Storage commitment per study, in words for the browser: "✓ PACS" once a node committed
    to keep every instance, "✗ PACS: 2 failed" when it refused some, "… PACS" while its
    report is awaited (app.net.commitment)."""
    from sqlalchemy import func, select

    from app.store.schema import commit_item, commitment, instance, series, study
    out: dict[str, list[str]] = {}
    if not study_uids:
        return {}
    with engine.connect() as conn:
        # an archive that never asked for commitment (most of them) pays one cheap look, not a
        # walk over the instances of every study listed
        if conn.execute(select(commit_item.c.id).limit(1)).first() is None and \
                conn.execute(select(commitment.c.id).limit(1)).first() is None:
            return {}
        for i in range(0, len(study_uids), 500):
            chunk = study_uids[i:i + 500]
            committed = conn.execute(select(commitment.c.study_uid, commitment.c.node).distinct()
                                     .where(commitment.c.study_uid.in_(chunk))).all()
            done = {(uid, node) for uid, node in committed}
            for uid, node in sorted(done):
                out.setdefault(uid, []).append(f"✓ {node}")
            rows = conn.execute(
                select(study.c.StudyInstanceUID, commit_item.c.node, commit_item.c.state,
                       func.count(commit_item.c.archived_instance.distinct()))
                .join(series, series.c.study_id == study.c.id).join(instance, instance.c.series_id == series.c.id)
                .join(commit_item, commit_item.c.archived_instance == instance.c.SOPInstanceUID)
                .where(study.c.StudyInstanceUID.in_(chunk))
                .group_by(study.c.StudyInstanceUID, commit_item.c.node, commit_item.c.state)).all()
            by: dict[tuple[str, str], dict[str, int]] = {}
            for uid, node, state, n in rows:
                by.setdefault((uid, node), {})[state] = n
            for (uid, node), states in sorted(by.items()):
                if (uid, node) in done:
                    continue
                if states.get("failed"):
                    out.setdefault(uid, []).append(f"✗ {node}: {states['failed']} failed")
                elif states.get("pending"):
                    out.setdefault(uid, []).append(f"… {node}")
    return {uid: ", ".join(parts) for uid, parts in out.items()}


def series_of(engine: Engine, study_uid: str) -> list[dict]:
    return search(engine, "series", {"StudyInstanceUID": study_uid})
