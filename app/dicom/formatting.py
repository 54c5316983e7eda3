"""How DICOM values read on screen and in image text: names, dates and times the way a
reader expects (no Qt: the browser, the viewer and headless renders share it)."""

from __future__ import annotations


def person_name(value: str | None) -> str:
    """'Doe^Jane^M^Dr' -> 'Doe, Jane M, Dr' (the alphabetic group only; the ideographic
    and phonetic groups follow in parentheses if present)."""
    if not value:
        return ""
    groups = value.split("=")

    def one(group: str) -> str:
        family, given, middle, prefix, suffix = (group.split("^") + [""] * 5)[:5]
        first = " ".join(p for p in (prefix, given, middle) if p)
        name = ", ".join(p for p in (family, first) if p)
        return f"{name}, {suffix}" if suffix else name

    main = one(groups[0]) if groups[0] else ""
    others = [one(g) for g in groups[1:] if g]
    if not main:
        return " ".join(others)
    return f"{main} ({' '.join(others)})" if others else main


def date(value: str | None) -> str:
    """'20261127' -> '2026-11-27'; anything else as it is."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""


def time(value: str | None) -> str:
    """'093015.123' -> '09:30:15'; '0930' -> '09:30'."""
    if not value:
        return ""
    digits = value.split(".")[0]
    if not digits.isdigit():
        return value
    parts = [digits[i:i + 2] for i in range(0, min(len(digits), 6), 2)]
    return ":".join(parts)


def sex(value: str | None) -> str:
    return {"M": "M", "F": "F", "O": "O"}.get((value or "").strip().upper(), "")


def multi(value: str | None) -> str:
    return ", ".join(v for v in (value or "").split("\\") if v)
