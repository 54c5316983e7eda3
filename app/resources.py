"""Where the data files the code reads live (spec tables, templates, icons)."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def resource(*parts: str) -> Path:
    return RESOURCES.joinpath(*parts)


def read_tsv(*parts: str) -> list[list[str]]:
    """Rows of a tab-separated resource file, '#' comment lines skipped."""
    rows = []
    for line in resource(*parts).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split("\t"))
    return rows
