"""Spec Table 4-48 (attributes of the Query SCP) read from resources/spec/qr_attributes.tsv.

The archive index stores every attribute of this table, so the Q/R SCP can answer from the
database alone; ingest and query both read the table from here.
"""

from dataclasses import dataclass
from functools import cache

from app.resources import read_tsv

LEVELS = ("patient", "study", "series", "instance")


@dataclass(frozen=True)
class QrAttribute:
    level: str
    path: tuple[str, ...]  # keyword, or (sequence keyword, item keyword)
    unique: bool
    matching: str  # wildcard | universal | return

    @property
    def column(self) -> str:
        """Column name in the index: the keyword, or 'Sequence_Keyword' inside a sequence."""
        return "_".join(self.path)


@cache
def table_4_48() -> tuple[QrAttribute, ...]:
    return tuple(
        QrAttribute(level, tuple(path.split("/")), typ == "U", matching)
        for level, path, typ, matching in read_tsv("spec", "qr_attributes.tsv")
    )


@cache
def stored_at(level: str) -> tuple[QrAttribute, ...]:
    """Attributes kept in the index table of ``level`` (each attribute lives at one level).

    The Study level of Table 4-48 repeats the patient attributes for the Study Root model;
    they are stored once, with the patient.
    """
    patient_cols = {a.column for a in table_4_48() if a.level == "patient"}
    seen: set[str] = set()
    out = []
    for a in table_4_48():
        if a.level != level or a.column in seen:
            continue
        if level == "study" and a.column in patient_cols:
            continue
        seen.add(a.column)
        out.append(a)
    return tuple(out)


@dataclass(frozen=True)
class ScuAttribute:
    level: str                 # study | series
    path: tuple[str, ...]      # keyword, or (sequence keyword, item keyword)
    unique: bool
    searchable: bool           # the user may enter a value ("enter value")


@cache
def table_4_18() -> tuple[ScuAttribute, ...]:
    """Spec Table 4-18: what our study / series queries ask for and let the user search on
    (resources/spec/qr_scu_attributes.tsv)."""
    return tuple(ScuAttribute(level, tuple(path.split("/")), typ == "U", user_input == "enter")
                 for level, path, typ, user_input, _ui in read_tsv("spec", "qr_scu_attributes.tsv"))
