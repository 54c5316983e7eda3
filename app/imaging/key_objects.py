"""Key Object Selection documents (spec Table 8-1: displayed): the images a KO flags,
found in the local archive, in the order the document lists them."""

from __future__ import annotations

from pathlib import Path

KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"


def is_key_object(ds) -> bool:
    return str(ds.get("SOPClassUID", "")) == KEY_OBJECT_SELECTION


def referenced_instances(ds) -> list[str]:
    """SOP Instance UIDs of the IMAGE (and COMPOSITE) items of the content tree, in order,
    each once."""
    out: list[str] = []

    def walk(items) -> None:
        for item in items or ():
            if str(item.get("ValueType", "")) in ("IMAGE", "COMPOSITE"):
                for ref in item.get("ReferencedSOPSequence") or ():
                    uid = str(ref.get("ReferencedSOPInstanceUID", ""))
                    if uid and uid not in out:
                        out.append(uid)
            walk(item.get("ContentSequence"))
    walk(ds.get("ContentSequence"))
    return out


def title(ds) -> str:
    seq = ds.get("ConceptNameCodeSequence")
    return str(seq[0].get("CodeMeaning", "")) if seq else "Key images"


def archive_files(archive, sop_uids: list[str]) -> tuple[list[Path], list[int], list[str]]:
    """(files, frame counts, UIDs not in the archive) for the referenced instances."""
    from sqlalchemy import select

    from app.store.schema import instance
    if not sop_uids:
        return [], [], []
    with archive.engine.connect() as conn:
        rows = {r.SOPInstanceUID: r for r in conn.execute(
            select(instance.c.SOPInstanceUID, instance.c.path, instance.c.NumberOfFrames)
            .where(instance.c.SOPInstanceUID.in_(sop_uids)))}
    files, frames, missing = [], [], []
    for uid in sop_uids:
        row = rows.get(uid)
        if row is None:
            missing.append(uid)
            continue
        files.append(archive.files.absolute(row.path))
        try:
            frames.append(max(int(row.NumberOfFrames or 1), 1))
        except ValueError:
            frames.append(1)
    return files, frames, missing
