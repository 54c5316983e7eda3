"""DICOM attribute matching as the reference describes it (PS3.4 C.2.2.2 and the text under
spec Table 4-48), in two parts per key:

- ``exact(stored)``: whether a stored value matches, by the rules: wildcards ``*``/``?``
  case-insensitive; Person Names per component (family, given, middle) of any of the three
  component groups, wildcards never crossing ``^`` or ``=``; dates and times single-value and
  range matching *by meaning* (TM ``2230`` is 22:30:00 to 22:30:59.999999); lists of values
  (UIDs, Modalities in Study); multi-valued stored values match if one value does.
- ``sql(column)``: a condition the database can evaluate that every exact match satisfies (a
  superset), so that the index narrows the rows and ``exact`` decides.

A date and a time key given as ranges of the same form match as one date-time range, where
a missing time matches (`combined`). No Qt, no database session: pure rules, unit-tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import and_, func, or_


class MatchError(ValueError):
    """The query asks for a match the rules do not allow (e.g. a wildcard in a UID)."""


WILDCARDS = ("*", "?")
# Date/time pairs matched as one date-time range when both are ranges of the same form
DATE_TIME_PAIRS = (("StudyDate", "StudyTime"), ("SeriesDate", "SeriesTime"),
                   ("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime"),
                   ("PatientBirthDate", "PatientBirthTime"),
                   ("PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime"),
                   ("InstanceCreationDate", "InstanceCreationTime"))
_NUMERIC = ("IS", "DS", "US", "SS", "UL", "SL", "FL", "FD")


def has_wildcard(value: str) -> bool:
    return any(w in value for w in WILDCARDS)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _wildcard_regex(pattern: str, *, stop: str = "") -> re.Pattern:
    """``pattern`` with * and ? as a case-insensitive regex matching a whole value; the
    wildcards do not match the characters of ``stop`` (PN separators)."""
    any_char = f"[^{re.escape(stop)}]" if stop else "."
    body = "".join(f"{any_char}*" if c == "*" else any_char if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body + r"\Z", re.IGNORECASE | re.DOTALL)


def _literal_runs(value: str, separators: str = "") -> list[str]:
    """The runs of literal characters in a pattern (between wildcards and separators)."""
    return [run for run in re.split("[" + re.escape("*?" + separators) + "]", value) if run]


def _ascii_pieces(runs: list[str]) -> list[str]:
    """The ASCII parts of literal runs: databases fold the case of ASCII letters alike
    (SQLite's lower() and LIKE fold nothing else), so only those narrow safely."""
    return [p for r in runs for p in re.split(r"[^\x00-\x7f]+", r) if p]


def _contains_all(column, runs: list[str]):
    """SQL: the column contains each literal run (case-insensitive): a superset condition."""
    pieces = _ascii_pieces(runs)
    if not pieces:
        return None
    low = func.lower(column)
    return and_(*[low.like("%" + _like_escape(p.lower()) + "%", escape="\\") for p in pieces])


def _values(stored) -> list[str]:
    if stored is None:
        return []
    if isinstance(stored, (list, tuple)):
        return [str(v) for v in stored]
    return str(stored).split("\\")


@dataclass
class Matcher:
    keyword: str
    value: str
    exact: Callable[[object], bool]
    sql: Callable[[object], object] = field(default=lambda column: None)

    def __call__(self, stored) -> bool:
        return self.exact(stored)


# -- strings ------------------------------------------------------------------------------------
def _string(keyword: str, value: str, multi_column: bool) -> Matcher:
    """Single value, wildcard or list (backslash-separated) matching of a string."""
    patterns = [v for v in value.split("\\")]
    regexes = [_wildcard_regex(p.strip()) for p in patterns]

    def exact(stored) -> bool:
        return any(r.match(v.strip()) for v in _values(stored) for r in regexes)

    def sql(column):
        if len(patterns) == 1 and not has_wildcard(value) and not multi_column and value.isascii():
            return func.lower(column) == value.strip().lower()
        alternatives = [_contains_all(column, _literal_runs(p)) for p in patterns]
        if any(a is None for a in alternatives):  # a pattern with nothing to narrow on
            return None
        return or_(*alternatives)
    return Matcher(keyword, value, exact, sql)


def _numeric(keyword: str, value: str) -> Matcher:
    try:
        wanted = [float(v) for v in value.split("\\") if v.strip()]
    except ValueError:
        raise MatchError(f"{keyword}: '{value}' is not a number") from None

    def exact(stored) -> bool:
        for v in _values(stored):
            try:
                if float(v) in wanted:
                    return True
            except ValueError:
                continue
        return False
    return Matcher(keyword, value, exact)


def _uid_list(keyword: str, value: str) -> Matcher:
    if has_wildcard(value):
        raise MatchError(f"{keyword}: wildcards are not allowed in UIDs (PS3.4 C.2.2.2.4)")
    uids = [u.strip() for u in value.split("\\") if u.strip()]
    wanted = set(uids)
    return Matcher(keyword, value, lambda stored: any(v.strip() in wanted for v in _values(stored)),
                   lambda column: column.in_(uids))


# -- person names -------------------------------------------------------------------------------
def _pn(keyword: str, value: str, append_star: bool) -> Matcher | None:
    """Per component: family, given and middle name of the query against those of each
    component group of the stored name (alphabetic, ideographic, phonetic); an empty query
    component matches anything; wildcards stay inside their component."""
    if append_star and not value.endswith("*"):
        value += "*"
    groups = []
    for group in value.split("="):
        components = (group.split("^") + ["", "", ""])[:3]
        if any(c and c != "*" for c in components):
            groups.append([_wildcard_regex(c, stop="^=") if c and c != "*" else None for c in components])
    if not groups:
        return None  # '*', '^', '' ...: universal

    def one(stored_value: str) -> bool:
        for stored_group in stored_value.split("="):
            parts = (stored_group.split("^") + ["", "", ""])[:3]
            for query in groups:
                if all(r is None or r.match(part.strip()) for r, part in zip(query, parts)):
                    return True
        return False

    def exact(stored) -> bool:
        return any(one(v) for v in _values(stored))

    runs = _literal_runs(value, "^=")
    return Matcher(keyword, value, exact, lambda column: _contains_all(column, runs))


# -- dates and times, by meaning ----------------------------------------------------------------
_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{0,6}))?\Z")  # '223000.' is read as 22:30:00
_DA = re.compile(r"(\d{4})(\d{2})(\d{2})\Z")
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?\Z")


def _instants(fields, first, last, frac: str | None) -> tuple[str, str]:
    """(first, last instant) a value with only some ``fields`` given means: the missing
    ones filled with their ``first`` / ``last`` values, the fraction to 6 digits. (Fields
    after a missing one are missing too: the formats allow no gaps.)"""
    frac = frac or ""
    start = "".join(f or lo for f, lo in zip(fields, first)) + "." + frac.ljust(6, "0")
    end = "".join(f or hi for f, hi in zip(fields, last)) + "." + frac.ljust(6, "9")
    return start, end


def _tm_bounds(text: str) -> tuple[str, str] | None:
    """A TM value as the first and last instant it means, 'HHMMSS.FFFFFF' each: '2230' is
    223000.000000 to 223059.999999. A colon-separated (ACR-NEMA) value is read too."""
    text = text.strip().replace(":", "")
    m = _TM.match(text)
    if not m:
        return None
    *fields, frac = m.groups()
    return _instants(fields, ("00", "00", "00"), ("23", "59", "59"), frac)


def _da_bounds(text: str) -> tuple[str, str] | None:
    text = text.strip().replace(".", "")  # 'YYYY.MM.DD' of old ACR-NEMA values
    return (text, text) if _DA.match(text) else None


def _dt_bounds(text: str) -> tuple[str, str] | None:
    """DT 'YYYYMMDDHHMMSS.FFFFFF&ZZXX' by meaning; the offset is not applied (as the reference
    says: values are compared as given)."""
    text = re.sub(r"[+-]\d{4}\Z", "", text.strip())
    m = _DT.match(text)
    if not m:
        return None
    *fields, frac = m.groups()
    return _instants(fields, ("", "01", "01", "00", "00", "00"), ("", "12", "31", "23", "59", "59"), frac)


_BOUNDS = {"DA": _da_bounds, "TM": _tm_bounds, "DT": _dt_bounds}


def _range(vr: str, value: str) -> tuple[str | None, str | None]:
    """(first instant, last instant) of a single value or an 'A-B', '-B', 'A-' range."""
    bounds = _BOUNDS[vr]
    if vr == "DT":  # UTC offsets ('-0500' after a time of day) are not range separators
        value = re.sub(r"(?<=\d{10})(?:\.\d{1,6})?[+-]\d{4}(?=-|\Z)", lambda m: m.group(0)[:-5], value)
    if "-" in value:
        lo_text, _, hi_text = value.partition("-")
        lo = bounds(lo_text) if lo_text.strip() else None
        hi = bounds(hi_text) if hi_text.strip() else None
        if (lo_text.strip() and lo is None) or (hi_text.strip() and hi is None) or (lo is None and hi is None):
            raise MatchError(f"'{value}' is not a {vr} range")
        return (lo[0] if lo else None), (hi[1] if hi else None)
    single = bounds(value)
    if single is None:
        raise MatchError(f"'{value}' is not a valid {vr} value")
    return single


def _instant(vr: str, stored) -> str | None:
    b = _BOUNDS[vr](str(stored)) if stored not in (None, "") else None
    return b[0] if b else None


def _temporal(keyword: str, vr: str, value: str) -> Matcher:
    values = [v for v in value.split("\\") if v.strip()]
    ranges = [_range(vr, v) for v in values]

    def exact(stored) -> bool:
        for v in _values(stored):
            at = _instant(vr, v)
            if at is not None and any((lo is None or at >= lo) and (hi is None or at <= hi) for lo, hi in ranges):
                return True
        return False

    def sql(column):
        # stored values are compared as text: a shorter stored value ('21', 22:00 by meaning)
        # sorts before its padded form, so the lower bound is cut to its first field (the
        # hour, the year), which keeps every match; the upper bound padded to its last instant
        # already sorts after every value it includes
        cut = {"TM": 2, "DT": 4, "DA": 8}[vr]
        alternatives = []
        for lo, hi in ranges:
            parts = []
            if lo is not None:
                parts.append(column >= lo[:cut])
            if hi is not None:
                parts.append(column <= hi)
            alternatives.append(and_(*parts))
        return or_(*alternatives)
    return Matcher(keyword, value, exact, sql)


def same_item(rules: dict[str, Matcher]) -> Matcher:
    """Sequence matching (PS3.4 C.2.2.2.6): the keys of one sequence item must all match in
    the same item. Each stored column holds one value per item, in item order."""
    def exact(stored) -> bool:
        stored = stored if isinstance(stored, tuple) else (stored,)
        columns = [_values(v) if v not in (None, "") else [] for v in stored]
        items = max((len(c) for c in columns), default=0)
        return any(all(rule(c[i] if i < len(c) else "") for rule, c in zip(rules.values(), columns))
                   for i in range(items))
    return Matcher("/".join(rules), "", exact)


def combined(date_keyword: str, date_value: str, time_keyword: str, time_value: str) -> Matcher | None:
    """A date and a time both given as ranges of the same form ('A-B', '-B' or 'A-') matched
    as one date-time range; a missing time matches when the date does. None if the pair does
    not qualify (then each key matches on its own)."""
    def form(v: str):
        if "-" not in v or "\\" in v:
            return None
        lo, _, hi = v.partition("-")
        return bool(lo.strip()), bool(hi.strip())
    f = form(date_value)
    if f is None or f != form(time_value):
        return None
    d_lo, d_hi = _range("DA", date_value)
    t_lo, t_hi = _range("TM", time_value)
    lo = d_lo + t_lo if d_lo is not None else None
    hi = d_hi + t_hi if d_hi is not None else None

    def exact(stored) -> bool:
        date, time = stored
        day = _instant("DA", date)
        if day is None:
            return False
        if time in (None, ""):  # a null time matches (the date alone decides)
            return (d_lo is None or day >= d_lo) and (d_hi is None or day <= d_hi)
        t = _instant("TM", time)
        if t is None:
            return False
        at = day + t
        return (lo is None or at >= lo) and (hi is None or at <= hi)

    def sql(date_column):  # the date range narrows; the time is decided exactly
        parts = []
        if d_lo is not None:
            parts.append(date_column >= d_lo)
        if d_hi is not None:
            parts.append(date_column <= d_hi)
        return and_(*parts)
    return Matcher(f"{date_keyword}+{time_keyword}", f"{date_value} {time_value}", exact, sql)


# -- one key ------------------------------------------------------------------------------------
def matcher(keyword: str, vr: str, value: str, *, append_star: bool = False,
            multi_column: bool = False) -> Matcher | None:
    """The matcher for one key, or None for universal matching. ``append_star``: the
    reference's footnote 2 (Patient's Name). ``multi_column``: the stored column may hold
    several backslash-separated values."""
    if value is None:
        return None
    value = str(value)
    if value.strip() in ("", "*"):
        return None
    if vr == "UI":
        return _uid_list(keyword, value)
    if vr == "PN":
        return _pn(keyword, value, append_star)
    if vr in _BOUNDS:
        if has_wildcard(value):
            raise MatchError(f"{keyword}: wildcards are not allowed in a {vr} value")
        return _temporal(keyword, vr, value)
    if vr in _NUMERIC:
        if has_wildcard(value):
            raise MatchError(f"{keyword}: wildcards are not allowed in a number")
        return _numeric(keyword, value)
    return _string(keyword, value, multi_column)
