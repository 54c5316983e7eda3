"""DICOM matching -> SQL over the index (PS3.4 C.2.2.2, spec text under Table 4-48).

Used by ``lightbox ls`` and by the C-FIND SCP. Keys are DICOM keywords (or ``gggg,eeee``);
values follow the reference's matching rules (app.store.matching): the database narrows
with each key's SQL condition and every row is then decided by the exact rule.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterator

from pydicom.datadict import dictionary_VR, keyword_for_tag
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from app.store import matching
from app.store.schema import attribute_columns, instance, patient, series, study

LEVEL_TABLES = {"patient": patient, "study": study, "series": series, "instance": instance}
LEVELS = tuple(LEVEL_TABLES)

# attributes computed from the levels below (spec Table 4-48), by the level they describe
COMPUTED_AT = {"ModalitiesInStudy": "study", "NumberOfStudyRelatedSeries": "study",
               "NumberOfStudyRelatedInstances": "study", "NumberOfSeriesRelatedInstances": "series",
               "NumberOfPatientRelatedStudies": "patient", "NumberOfPatientRelatedSeries": "patient",
               "NumberOfPatientRelatedInstances": "patient"}
# stored columns that can hold several values (backslash-separated)
MULTI_VALUED = {"ImageType", "OtherPatientIDs", "OtherPatientNames", "NameOfPhysiciansReadingStudy",
                "PerformingPhysicianName", "OperatorsName", "RequestAttributesSequence_RequestedProcedureID",
                "RequestAttributesSequence_ScheduledProcedureStepID"}


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


def vr_of(keyword: str) -> str:
    """VR of a keyword, or of the item keyword of a 'Sequence_Item' column."""
    try:
        return dictionary_VR(keyword.split("_")[-1])
    except (KeyError, ValueError):
        return "LO"


def _column(keyword: str):
    for level, table in LEVEL_TABLES.items():
        if keyword in table.c and keyword in attribute_columns(level) + ["TransferSyntaxUID"]:
            return table.c[keyword]
    raise QueryError(f"{keyword} cannot be searched in the local archive")


def owner_level(keyword: str) -> str:
    """The level whose table holds ``keyword`` (computed attributes: the level they describe)."""
    if keyword in COMPUTED_AT:
        return COMPUTED_AT[keyword]
    table = _column(keyword).table
    return next(lv for lv, t in LEVEL_TABLES.items() if t is table)


@dataclass
class _Key:
    columns: tuple[str, ...]   # the row values the rule reads (a date and a time for a pair)
    rule: matching.Matcher
    sql: object                # its SQL condition (None: decided by the rule alone)
    owner: int                 # index of its level in LEVELS

    def matches(self, row: dict) -> bool:
        if len(self.columns) == 1:
            return self.rule(row.get(self.columns[0]))
        return self.rule(tuple(row.get(c) for c in self.columns))


def _keys(keys: dict[str, str], append_star: frozenset) -> list[_Key]:
    out: list[_Key] = []
    values = {keyword_of(k): ("" if v is None else str(v)) for k, v in keys.items()}
    for date_kw, time_kw in matching.DATE_TIME_PAIRS:
        if values.get(date_kw) and values.get(time_kw):
            rule = matching.combined(date_kw, values[date_kw], time_kw, values[time_kw])
            if rule is not None:
                owner = LEVELS.index(owner_level(date_kw))
                out.append(_Key((date_kw, time_kw), rule, rule.sql(_column(date_kw)), owner))
                values[date_kw] = values[time_kw] = ""
    sequences: dict[str, dict[str, matching.Matcher]] = {}
    for kw, value in values.items():
        if "_" in kw and kw in MULTI_VALUED and kw.split("_")[0].endswith("Sequence"):
            rule = matching.matcher(kw, vr_of(kw), value, multi_column=True)
            if rule is not None:
                sequences.setdefault(kw.split("_")[0], {})[kw] = rule
            continue
        if kw == "ModalitiesInStudy":
            rule = matching.matcher(kw, "CS", value, multi_column=True)
            if rule is not None:  # a study with a series of one of these modalities
                narrow = rule.sql(series.c.Modality)
                # IN, not a correlated EXISTS: one pass over series instead of one per study
                sql = study.c.id.in_(select(series.c.study_id).where(narrow)) if narrow is not None else None
                out.append(_Key((kw,), rule, sql, LEVELS.index("study")))
            continue
        if kw in COMPUTED_AT:
            if value not in ("", "*"):
                raise QueryError(f"{kw} is computed and can only be returned, not matched")
            continue
        column, owner = _column(kw), LEVELS.index(owner_level(kw))  # unknown keys are refused
        rule = matching.matcher(kw, vr_of(kw), value, append_star=kw in append_star,
                                multi_column=kw in MULTI_VALUED)
        if rule is not None:
            out.append(_Key((kw,), rule, rule.sql(column), owner))
    for rules in sequences.values():  # the keys of one sequence item, matched in the same item
        columns = tuple(rules)
        narrow = [c for c in (r.sql(_column(col)) for col, r in rules.items()) if c is not None]
        sql = and_(*narrow) if narrow else None
        out.append(_Key(columns, matching.same_item(rules), sql, LEVELS.index(owner_level(columns[0]))))
    return out


def _instances_of_series():
    """A series' instances, counted on the (series_id) index; summed per study / patient in
    Python: a join grouped by study costs SQLite temporary B-trees and four times the time."""
    return select(func.count()).select_from(instance).where(instance.c.series_id == series.c.id).scalar_subquery()


def _counts(engine: Engine, level: str, ids: list[int], wanted: frozenset | None = None) -> dict[int, dict]:
    """Computed attributes (counts, Modalities in Study), spec Table 4-48; ``wanted``: only
    these (None: all). Counting instances is what costs, so it is done only when asked."""
    out: dict[int, dict] = defaultdict(dict)
    if not ids or level == "instance" or (wanted is not None and not wanted):
        return out

    def want(name: str) -> bool:
        return wanted is None or name in wanted
    with engine.connect() as conn:
        if level == "series":
            for sid, n in conn.execute(select(series.c.id, _instances_of_series()).where(series.c.id.in_(ids))):
                out[sid]["NumberOfSeriesRelatedInstances"] = n
        elif level == "study":
            instances = want("NumberOfStudyRelatedInstances")
            q = select(series.c.study_id, series.c.Modality, _instances_of_series() if instances else series.c.id)
            for stid, modality, ninst in conn.execute(q.where(series.c.study_id.in_(ids))):
                d = out[stid]
                d["NumberOfStudyRelatedSeries"] = d.get("NumberOfStudyRelatedSeries", 0) + 1
                if instances:
                    d["NumberOfStudyRelatedInstances"] = d.get("NumberOfStudyRelatedInstances", 0) + ninst
                if modality:
                    d.setdefault("ModalitiesInStudy", set()).add(modality)
            for d in out.values():
                d["ModalitiesInStudy"] = "\\".join(sorted(d.get("ModalitiesInStudy", ())))
        elif level == "patient":
            q = (select(study.c.patient_id, study.c.id, series.c.id, _instances_of_series())
                 .join(series, series.c.study_id == study.c.id, isouter=True)
                 .where(study.c.patient_id.in_(ids)))
            for pid, stid, seid, ninst in conn.execute(q):
                d = out[pid]
                d.setdefault("_studies", set()).add(stid)
                d["NumberOfPatientRelatedSeries"] = d.get("NumberOfPatientRelatedSeries", 0) + (seid is not None)
                d["NumberOfPatientRelatedInstances"] = d.get("NumberOfPatientRelatedInstances", 0) + \
                    (ninst if seid is not None else 0)
            for d in out.values():
                d["NumberOfPatientRelatedStudies"] = len(d.pop("_studies"))
    return out


def search(engine: Engine, level: str, keys: dict[str, str], *, limit: int | None = None) -> list[dict]:
    """Rows at ``level`` matching ``keys``; each row is keyed by DICOM keyword."""
    return list(iter_matches(engine, level, keys, limit=limit))


def iter_matches(engine: Engine, level: str, keys: dict[str, str], *, limit: int | None = None,
                 append_star: frozenset = frozenset(), batch: int = 200,
                 computed: frozenset | None = None) -> Iterator[dict]:
    """Rows at ``level`` matching ``keys`` (DICOM keywords or tags -> matching values), with
    the computed attributes of the level. The database narrows with each key's SQL
    condition; each row is then decided by its exact rule (app.store.matching), in batches,
    so only the rows looked at are counted. Keys of levels below ``level`` match through
    the database alone (``lightbox ls -k Modality=MG`` at study level). ``computed``: the
    computed attributes wanted (None: all of the level's)."""
    if level not in LEVEL_TABLES:
        raise QueryError(f"level must be one of {', '.join(LEVELS)}")
    try:
        parsed = _keys(keys, append_star)
    except matching.MatchError as exc:
        raise QueryError(str(exc)) from None
    depth = LEVELS.index(level)
    tables = [LEVEL_TABLES[lv] for lv in LEVELS[:depth + 1]]
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
    conds = [k.sql for k in parsed if k.owner <= depth and k.sql is not None]
    lower = [(k.owner, k.sql) for k in parsed if k.owner > depth and k.sql is not None]
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
             # IS values are text: by length first, so that 2 comes before 10 (no cast, which
             # would fail on a malformed value in PostgreSQL)
             "series": [func.length(series.c.SeriesNumber), series.c.SeriesNumber],
             "instance": [func.length(instance.c.InstanceNumber), instance.c.InstanceNumber]}[level]
    q = q.order_by(*order, tables[-1].c.id)
    exact = [k for k in parsed if k.owner <= depth]
    if computed is not None:  # those a rule matches on are needed too
        computed = computed | {c for k in exact for c in k.columns if c in COMPUTED_AT}
    sent = 0
    with engine.connect() as conn:
        result = conn.execute(q)
        while True:
            rows = [dict(r._mapping) for r in result.fetchmany(batch)]
            if not rows:
                return
            counts = _counts(engine, level, [r["_id"] for r in rows], computed)
            for r in rows:
                r.update(counts.get(r.pop("_id"), {}))
                if all(k.matches(r) for k in exact):
                    yield r
                    sent += 1
                    if limit and sent >= limit:
                        return
