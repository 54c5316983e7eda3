"""Corrections applied to a study in the archive (spec §4.2.1.3.1.8; the changes themselves
are app.dicom.corrections): every object of the study rewritten, or none.

1. Each object is read, changed and written as a corrected copy in
   <home>/corrections/<id>/, fsynced. Any failure here removes the copies: nothing changed.
2. The manifest (what replaces what) is written and fsynced: from here the correction
   happens, whatever comes (a crash is rolled forward at the next start).
3. Roll forward: the copies take their places in the archive, the index is rewritten in one
   transaction (the objects' rows and their study, series and patient), the files the
   correction moved away from are removed, the manifest last.

References to these objects in other objects (presentation states, reports, key images
elsewhere) are not rewritten, and copies already in a PACS keep the old values: the
caller tells the user so, as the reference does."""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import pydicom
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from sqlalchemy import delete, select, update

from app.store import audit
from app.store.files import fsync_dir, relative_path, write_durably
from app.store.schema import instance, patient, series, study

log = logging.getLogger(__name__)

WARNING = ("References to these images in other objects (presentation states, reports, key "
           "images) are not changed, and copies already sent to a PACS keep the old values: delete "
           "them there before archiving the corrected study again.")


class CorrectionFailed(Exception):
    """Why nothing was changed, for the user."""


@dataclass
class Corrected:
    study_before: str
    study_after: str
    instances: int
    changed: list[str] = field(default_factory=list)  # the attributes that changed
    warning: str = WARNING


@dataclass
class Request:
    """What the user asked to correct (one of: patient data, position, a move, a merge)."""
    study: str | None = None
    patient: dict[str, str] = field(default_factory=dict)   # keyword -> new value
    position: str | None = None
    to_procedure: int | None = None                         # a kept worklist item's id
    to_patient: str | None = None                           # a Patient ID of the archive
    merge_patient: str | None = None                        # merged away ...
    merge_into: str | None = None                           # ... into this Patient ID


def _patient_of(archive, patient_id: str) -> dict:
    with archive.engine.connect() as conn:
        row = conn.execute(select(patient).where(patient.c.PatientID == patient_id)).first()
    if row is None:
        raise CorrectionFailed(f"no patient with Patient ID '{patient_id}' in the local archive")
    return {k: getattr(row, k) or None for k in ("PatientName", "PatientID", "IssuerOfPatientID",
                                                   "PatientBirthDate", "PatientSex")}


def plan(archive, request: Request) -> list[tuple[str, Callable, str]]:
    """(study, change, what) for each study ``request`` touches: the CLI's and the browser's
    one way of turning a request into corrections."""
    from app.dicom import corrections
    from app.dicom.uids import new_uid
    from app.store import worklist
    from app.store.query import search
    when = datetime.now()
    if request.merge_into:
        if not request.merge_patient:
            raise CorrectionFailed("a merge needs the patient merged away (--patient) and the one kept (--merge-into)")
        target = _patient_of(archive, request.merge_into)
        studies = [r["StudyInstanceUID"] for r in search(archive.engine, "study", {"PatientID": request.merge_patient})]
        if not studies:
            raise CorrectionFailed(f"no studies of Patient ID '{request.merge_patient}' in the local archive")
        return [(uid, lambda ds, _s: corrections.correct_patient(ds, target, when=when),
                 f"merged patient {request.merge_patient} into {request.merge_into}") for uid in studies]
    if not request.study:
        raise CorrectionFailed("say which study: --study UID (or a merge of two patients)")
    if request.to_procedure is not None:
        rows = [r for r in worklist.items(archive.engine, include_vanished=True) if r["id"] == request.to_procedure]
        if not rows:
            raise CorrectionFailed(f"no worklist item {request.to_procedure} (see 'lightbox worklist --json': its id)")
        item = rows[0]
        who = {k: item.get(k) for k in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")}
        return [(request.study, lambda ds, _s: corrections.move_study(
            ds, item["StudyInstanceUID"], item["AccessionNumber"] or "", when=when, patient=who),
            f"moved to procedure {worklist.procedure_text(item)}")]
    if request.to_patient:
        target = _patient_of(archive, request.to_patient)
        study_uid = new_uid()
        return [(request.study, lambda ds, _s: corrections.move_study(ds, study_uid, None, when=when, patient=target),
                 f"moved to patient {request.to_patient}")]
    if request.position:
        position = request.position.upper()
        return [(request.study, lambda ds, per_series: corrections.correct_position(
            ds, position, per_series.setdefault("frame_of_reference", new_uid()), when=when),
            f"Patient Position corrected to {position}")]
    if request.patient:
        changes = dict(request.patient)
        return [(request.study, lambda ds, _s: corrections.correct_patient(ds, changes, when=when),
                 "patient data corrected")]
    raise CorrectionFailed("nothing to correct: give patient data (--patient-name, --patient-id, --birth-date, "
                           "--sex, --issuer), --position, --to-procedure or --to-patient")


def apply(archive, request: Request, *, actor: str) -> list[Corrected]:
    """Every correction ``request`` asks for, one study after another."""
    return [correct_study(archive, study_uid, change, actor=actor, what=what)
            for study_uid, change, what in plan(archive, request)]


def _folder(archive) -> Path:
    return archive.home / "corrections"


def correct_study(archive, study_uid: str, change: Callable[[Dataset, dict], list[str]], *, actor: str,
                  what: str) -> Corrected:
    """Apply ``change(ds, per_series)`` to every object of study ``study_uid``
    (``per_series``: a dict the change may keep values in per Series Instance UID, e.g. a new
    Frame of Reference); audited as ``what``."""
    with archive.engine.connect() as conn:
        rows = conn.execute(select(instance.c.SOPInstanceUID, instance.c.path, series.c.SeriesInstanceUID)
                            .join(series, series.c.id == instance.c.series_id)
                            .join(study, study.c.id == series.c.study_id)
                            .where(study.c.StudyInstanceUID == study_uid)).all()
    if not rows:
        raise CorrectionFailed(f"there is no study {study_uid} in the local archive")
    work = _folder(archive) / uuid.uuid4().hex
    work.mkdir(parents=True)
    entries, changed, per_series = [], set(), {}
    new_study = study_uid
    try:
        for n, (sop, rel, series_uid) in enumerate(rows):
            ds = pydicom.dcmread(archive.files.absolute(rel))
            changed.update(change(ds, per_series.setdefault(series_uid, {})))
            new_study = str(ds.StudyInstanceUID)
            copy = work / f"{n:06d}.dcm"
            buffer = DicomBytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            write_durably(copy, [buffer.getvalue()])
            entries.append({"copy": copy.name, "old": rel,
                            "new": relative_path(new_study, str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))})
        manifest = {"study_before": study_uid, "study_after": new_study, "actor": actor, "what": what,
                    "changed": sorted(changed), "entries": entries,
                    "at": datetime.now().isoformat(timespec="seconds")}
        write_durably(work / "manifest.json", [json.dumps(manifest).encode()])
        fsync_dir(work)
    except Exception as exc:
        shutil.rmtree(work, ignore_errors=True)
        log.error("correction of study %s not done (%s); nothing changed", study_uid, exc)
        if isinstance(exc, CorrectionFailed):
            raise
        raise CorrectionFailed(f"nothing was changed: {exc}") from exc
    _roll_forward(archive, work)  # the correction is decided: from here it completes, even after a crash
    return Corrected(study_uid, new_study, len(entries), sorted(changed))


def recover(archive) -> int:
    """Complete the corrections a crash interrupted after their manifest was written; drop
    the copies of those interrupted before (nothing of them happened). How many completed."""
    done = 0
    folder = _folder(archive)
    if not folder.is_dir():
        return 0
    for work in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (work / "manifest.json").exists():
            _roll_forward(archive, work)
            done += 1
        else:
            shutil.rmtree(work, ignore_errors=True)
    if done:
        log.info("completed %d correction(s) an interruption had left half-way", done)
    return done


def _roll_forward(archive, work: Path) -> None:
    manifest = json.loads((work / "manifest.json").read_text())
    entries = manifest["entries"]
    for e in entries:  # idempotent: a copy already moved is simply in place
        copy, target = work / e["copy"], archive.files.absolute(e["new"])
        if copy.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(copy, target)
            fsync_dir(target.parent)
    records = [archive.ingest.index_record(archive.files.absolute(e["new"]).read_bytes()) for e in entries]
    _reindex(archive, manifest, records)
    for e in entries:
        if e["old"] != e["new"]:
            archive.files.absolute(e["old"]).unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)


def _reindex(archive, manifest: dict, records: list) -> None:
    from app.store.index_writer import index_one
    sops = [r.instance["SOPInstanceUID"] for r in records]
    with archive.engine.begin() as conn:
        old_patient = conn.execute(select(patient.c.PatientID, patient.c.PatientName)
                                   .join(study, study.c.patient_id == patient.c.id)
                                   .where(study.c.StudyInstanceUID == manifest["study_before"])).first()
        for i in range(0, len(sops), 500):
            conn.execute(delete(instance).where(instance.c.SOPInstanceUID.in_(sops[i:i + 500])))
        # the series and study rows emptied go before the objects are indexed again: theirs
        # would otherwise be found and kept with the old values (the same UIDs)
        conn.execute(delete(series).where(~select(instance.c.id).where(instance.c.series_id == series.c.id)
                                          .exists()))
        conn.execute(delete(study).where(~select(series.c.id).where(series.c.study_id == study.c.id).exists()))
        conn.execute(delete(patient).where(~select(study.c.id).where(study.c.patient_id == patient.c.id).exists()))
        for record in records:
            index_one(conn, record)
        if records:  # the patient's row takes the corrected data (it may have other studies)
            values = dict(records[0].patient)
            values["PatientID"], values["IssuerOfPatientID"] = values.get("PatientID") or "", \
                values.get("IssuerOfPatientID") or ""
            conn.execute(update(patient).where(patient.c.PatientID == values["PatientID"],
                                               patient.c.IssuerOfPatientID == values["IssuerOfPatientID"])
                         .values(**values))
        detail = (f"{manifest['what']}: {len(records)} instance(s); changed {', '.join(manifest['changed']) or 'nothing'}"
                  + (f"; study {manifest['study_before']} is now {manifest['study_after']}"
                     if manifest["study_after"] != manifest["study_before"] else ""))
        audit.record(conn, manifest["actor"], "correct", detail,
                     patient_id=old_patient.PatientID if old_patient else None,
                     patient_name=old_patient.PatientName if old_patient else None,
                     study_uid=manifest["study_before"])
    log.info("%s corrected study %s: %s", manifest["actor"], manifest["study_before"], detail)
