"""Reading an export back (spec §5, issue "Verify"): the ISO image or folder just written is
opened as any medium is (app.media.medium: pycdlib for an image, no mounting) and every file
its DICOMDIR references is read: it must be there, be a readable DICOM instance, be the
instance its record names, and have the checksum it was written with. Whatever else the
medium holds or lacks is reported too."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class VerifyReport:
    path: Path
    checked: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file on the medium or UID, what is wrong)

    @property
    def ok(self) -> bool:
        return self.checked > 0 and not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"{self.path}: {self.checked} file(s) read back, all as written"
        shown = "; ".join(f"{f}: {why}" for f, why in self.problems[:5])
        return f"{self.path}: {self.checked} file(s) read back, {len(self.problems)} problem(s): {shown}"


def verify(path: Path, checksums: dict[str, str] | None = None) -> VerifyReport:
    """``checksums``: SOP Instance UID -> SHA-256 of the file as written (every one must be
    on the medium, as written)."""
    from app.media.medium import MediumError, _decode, open_medium
    report = VerifyReport(Path(path))
    expected = dict(checksums or {})
    try:
        medium = open_medium(Path(path))
    except MediumError as exc:
        report.problems.append((str(path), f"cannot be opened: {exc}"))
        return report
    with medium:
        if medium.scanned:
            report.problems.append(("DICOMDIR", "missing or unreadable"))
        report.problems += [(f, why) for f, why in medium.problems]
        report.problems += [(f, "not referenced by the DICOMDIR") for f in medium.unindexed]
        for _patient, _study, _series, inst in medium.instances():
            report.checked += 1
            try:
                data = medium.read(inst.file_id)
                _part10, header = _decode(data)
            except Exception as exc:  # noqa: BLE001 - reported, the others are still checked
                report.problems.append((inst.file_id, f"cannot be read back: {exc}"))
                continue
            uid = str(header.get("SOPInstanceUID", ""))
            if inst.sop_instance_uid and uid != inst.sop_instance_uid:
                report.problems.append((inst.file_id, f"holds {uid}, its DICOMDIR record names {inst.sop_instance_uid}"))
            want = expected.pop(uid, None)
            if want is not None and hashlib.sha256(data).hexdigest() != want:
                report.problems.append((inst.file_id, "differs from what was written (checksum)"))
    if checksums is not None:
        report.problems += [(uid, "written but not on the medium") for uid in expected]
    return report
