"""Import files, folders and DICOMDIRs into the archive through the one store pipeline."""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from pydicom import dcmread

from app.store.ingest import Ingest, StoreResult

log = logging.getLogger(__name__)
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


@dataclass
class ImportSummary:
    imported: int = 0
    present: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"imported": self.imported, "already_present": self.present,
                "rejected": [{"path": p, "reason": r} for p, r in self.rejected]}


def _dicomdir_files(path: Path) -> list[Path]:
    ds = dcmread(path, stop_before_pixels=True)
    root = path.parent
    files = []
    for rec in ds.get("DirectoryRecordSequence", []):
        ref = rec.get("ReferencedFileID")
        if ref:
            parts = [ref] if isinstance(ref, str) else list(ref)
            files.append(_find_case_insensitive(root, parts))
    return files


def _find_case_insensitive(root: Path, parts: list[str]) -> Path:
    """Media written on other systems vary in case; match each component loosely."""
    p = root
    for part in parts:
        cand = p / part
        if not cand.exists() and p.is_dir():
            for child in p.iterdir():
                if child.name.upper() == part.upper():
                    cand = child
                    break
        p = cand
    return p


def _is_dicomdir(path: Path) -> bool:
    if path.name.upper() != "DICOMDIR":
        return False
    try:
        meta = dcmread(path, stop_before_pixels=True, specific_tags=["MediaStorageSOPClassUID"]).file_meta
        return str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS
    except Exception:
        return False


def collect(paths: Iterable[Path]) -> list[Path]:
    """Every file to import: folders walked, DICOMDIRs expanded, DICOMDIR files themselves
    skipped (they index media, they are not instances)."""
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            out.append(p)

    for path in paths:
        if path.is_dir():
            for dirpath, dirs, names in os.walk(path):
                dirs.sort()  # the same order every time: an import job resumes by position
                for name in sorted(names):
                    f = Path(dirpath) / name
                    if not _is_dicomdir(f):
                        add(f)
        elif _is_dicomdir(path):
            for f in _dicomdir_files(path):
                add(f)
        else:
            add(path)
    return out


def import_paths(ingest: Ingest, files: Iterable[Path],
                 progress: Callable[[Path, StoreResult], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> ImportSummary:
    """Import ``files`` (as :func:`collect` lists them: callers count them first)."""
    def stored(f: Path) -> StoreResult:
        if not f.exists():
            return StoreResult(0xC000, "file not found")
        return ingest.store_file(f, wait_indexed=False)
    return store_all(ingest, ((f, lambda f=f: stored(f)) for f in files), ImportSummary(), progress, cancelled)


def store_all(ingest: Ingest, sources: Iterable, summary: ImportSummary, progress=None,
              cancelled: Callable[[], bool] | None = None) -> ImportSummary:
    """Store every (label, store) of ``sources`` — ``store()`` stores one file without waiting
    for its index commit — one after another; their index commits are waited for in a
    window, so that a folder or a medium shares commits instead of paying one per file."""
    window: deque = deque()

    def settle_one() -> None:
        label, result = window.popleft()
        result = ingest.settle_result(result)
        if result.ok and result.duplicate:
            summary.present += 1
        elif result.ok:
            summary.imported += 1
        else:
            summary.rejected.append((str(label), result.comment))
        if progress:
            progress(label, result)

    for label, store in sources:
        if cancelled is not None and cancelled():
            break
        window.append((label, store()))
        if len(window) >= _WINDOW:
            settle_one()
    while window:
        settle_one()
    return summary


_WINDOW = 64
