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
        if self.date_from or self.date_to:
            lo = self.date_from.strftime("%Y%m%d") if self.date_from else ""
            hi = self.date_to.strftime("%Y%m%d") if self.date_to else ""
            keys["StudyDate"] = lo if lo == hi else f"{lo}-{hi}"
        return keys


def studies(engine: Engine, flt: StudyFilter, limit: int = STUDY_LIMIT) -> list[dict]:
    return search(engine, "study", flt.keys(), limit=limit)


def series_of(engine: Engine, study_uid: str) -> list[dict]:
    return search(engine, "series", {"StudyInstanceUID": study_uid})
