"""DICOM matching -> SQL over the index (PS3.4 C.2.2.2, spec text under Table 4-48).

Used by ``lightbox ls`` now and by the C-FIND SCP. Keys are DICOM keywords (or
``gggg,eeee``); values follow DICOM matching: ``*``/``?`` wildcards (case-insensitive,
spec §4.2.1.4.3.3), ``A-B`` ranges for dates and times, ``\\``-separated UID lists,
otherwise single-value matching.
"""

from __future__ import annotations

from collections import defaultdict

from pydicom.datadict import dictionary_VR, keyword_for_tag
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from app.store.schema import attribute_columns, instance, patient, series, study

LEVEL_TABLES = {"patient": patient, "study": study, "series": series, "instance": instance}
LEVELS = tuple(LEVEL_TABLES)


class QueryError(ValueError):
    pass


def keyword_of(key: str) -> str:
    """'PatientName' or '0010,0010' / '(0010,0010)' / '00100010' -> keyword."""
    k = key.strip().strip("()")
    hexdigits = k.replace(",", "")
    if len(hexdigits) == 8 and all(c in "0123456789abcdefABCDEF" for c in hexdigits):
        kw = keyword_for_tag(int(hexdigits, 16))
        if not kw:
            raise QueryError(f"unknown tag {key}")
        return kw
    return k


def _vr(keyword: str) -> str:
    try:
        return dictionary_VR(keyword)
    except KeyError:
        return "LO"


def _column(keyword: str):
    for level, table in LEVEL_TABLES.items():
        if keyword in table.c and keyword in attribute_columns(level) + ["TransferSyntaxUID"]:
            return table.c[keyword]
    raise QueryError(f"{keyword} cannot be searched in the local archive")


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def condition(keyword: str, value: str):
    """SQL condition for one matching key, or None for universal matching."""
    col = _column(keyword)
    if value == "" or value == "*":
        return None
    vr = _vr(keyword)
    if vr == "UI":
        uids = [u for u in value.split("\\") if u]
        return col.in_(uids)
    if vr in ("DA", "TM", "DT") and "-" in value:
        lo, _, hi = value.partition("-")
        parts = []
        if lo:
            parts.append(col >= lo)
        if hi:
            # "by meaning": 20200102 includes times/dates extended with more digits
            parts.append(col <= hi + ("\uffff" if vr != "DA" else ""))
        return and_(*parts)
    if vr == "DA":
        return col == value
    if "*" in value or "?" in value:
        return func.lower(col).like(_like(value.lower()), escape="\\")
    if vr in ("PN", "LO", "SH", "LT", "ST", "UT", "CS"):
        return func.lower(col) == value.lower()
    return col == value


def _counts(engine: Engine, level: str, ids: list[int]) -> dict[int, dict]:
    """Computed attributes (counts, Modalities in Study), spec Table 4-48."""
    out: dict[int, dict] = defaultdict(dict)
    if not ids or level == "instance":
        return out
    with engine.connect() as conn:
        if level == "series":
            q = (select(instance.c.series_id, func.count()).where(instance.c.series_id.in_(ids))
                 .group_by(instance.c.series_id))
            for sid, n in conn.execute(q):
                out[sid]["NumberOfSeriesRelatedInstances"] = n
        elif level == "study":
            q = (select(series.c.study_id, series.c.Modality, func.count(func.distinct(series.c.id)),
                        func.count(instance.c.id))
                 .join(instance, instance.c.series_id == series.c.id, isouter=True)
                 .where(series.c.study_id.in_(ids)).group_by(series.c.study_id, series.c.Modality))
            for stid, modality, nser, ninst in conn.execute(q):
                d = out[stid]
                d["NumberOfStudyRelatedSeries"] = d.get("NumberOfStudyRelatedSeries", 0) + nser
                d["NumberOfStudyRelatedInstances"] = d.get("NumberOfStudyRelatedInstances", 0) + ninst
                if modality:
                    d.setdefault("ModalitiesInStudy", set()).add(modality)
            for d in out.values():
                d["ModalitiesInStudy"] = "\\".join(sorted(d.get("ModalitiesInStudy", ())))
        elif level == "patient":
            q = (select(study.c.patient_id, func.count(func.distinct(study.c.id)),
                        func.count(func.distinct(series.c.id)), func.count(instance.c.id))
                 .join(series, series.c.study_id == study.c.id, isouter=True)
                 .join(instance, instance.c.series_id == series.c.id, isouter=True)
                 .where(study.c.patient_id.in_(ids)).group_by(study.c.patient_id))
            for pid, nst, nse, ninst in conn.execute(q):
                out[pid].update(NumberOfPatientRelatedStudies=nst, NumberOfPatientRelatedSeries=nse,
                                NumberOfPatientRelatedInstances=ninst)
    return out


def search(engine: Engine, level: str, keys: dict[str, str], *, limit: int | None = None) -> list[dict]:
    """Rows at ``level`` matching ``keys``; each row is keyed by DICOM keyword."""
    if level not in LEVEL_TABLES:
        raise QueryError(f"level must be one of {', '.join(LEVELS)}")
    depth = LEVELS.index(level)
    tables = [LEVEL_TABLES[lv] for lv in LEVELS[:depth + 1]]
    # Keys may name attributes of lower levels too (relational, like 'ls -k Modality=MG');
    # joined through EXISTS-like inner joins and de-duplicated.
    cols = []
    for lv, t in zip(LEVELS[:depth + 1], tables):
        cols += [t.c[c] for c in attribute_columns(lv)]
    extra = [instance.c.TransferSyntaxUID, instance.c.path, instance.c.size] if level == "instance" else []
    q = select(tables[-1].c.id.label("_id"), *cols, *extra).select_from(patient)
    if depth >= 1:
        q = q.join(study, study.c.patient_id == patient.c.id)
    if depth >= 2:
        q = q.join(series, series.c.study_id == study.c.id)
    if depth >= 3:
        q = q.join(instance, instance.c.series_id == series.c.id)
    conds = []
    lower: list[tuple[int, object]] = []
    for key, value in keys.items():
        kw = keyword_of(key)
        c = condition(kw, value)
        if c is None:
            continue
        owner = LEVELS.index(next(lv for lv, t in LEVEL_TABLES.items() if _column(kw).table is t))
        if owner <= depth:
            conds.append(c)
        else:
            lower.append((owner, c))
    if lower:
        deepest = max(o for o, _ in lower)
        sub = select(LEVEL_TABLES[level].c.id).select_from(LEVEL_TABLES[level])
        for lv in LEVELS[depth + 1:deepest + 1]:
            parent = LEVELS[LEVELS.index(lv) - 1]
            t, pt = LEVEL_TABLES[lv], LEVEL_TABLES[parent]
            sub = sub.join(t, t.c[f"{parent}_id"] == pt.c.id)
        sub = sub.where(*[c for _, c in lower])
        conds.append(LEVEL_TABLES[level].c.id.in_(sub))
    if conds:
        q = q.where(and_(*conds))
    order = {"patient": [patient.c.PatientName], "study": [study.c.StudyDate.desc(), study.c.StudyTime.desc()],
             "series": [series.c.SeriesNumber], "instance": [instance.c.InstanceNumber]}[level]
    q = q.order_by(*order, tables[-1].c.id)
    if limit:
        q = q.limit(limit)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    counts = _counts(engine, level, [r["_id"] for r in rows])
    out = []
    for r in rows:
        rid = r.pop("_id")
        r.update(counts.get(rid, {}))
        out.append(r)
    return out

