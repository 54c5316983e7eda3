"""A study of the archive hung by the protocol engine: its display sets and its priors'
(the patient's earlier studies in the local archive, newest first), the protocol chosen,
its stages, and a stage drawn offscreen ('lightbox hang') with the placements the viewer
uses (app.imaging.stage_layout)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from app.imaging import hanging

log = logging.getLogger(__name__)


class HangError(Exception):
    """Why a study cannot be hung, for the user."""


@dataclass
class HungStudy:
    protocol: hanging.Protocol
    stages: list[hanging.HungStage]
    studies: hanging.Studies
    # display set uid -> the files it is drawn from (one instance; a series' files in order)
    files: dict[str, list[Path]] = field(default_factory=dict)
    cad: list = field(default_factory=list)  # the current study's CAD reports (app.imaging.cad_marks)
    headers: dict[Path, Dataset] = field(default_factory=dict)  # those read to hang it, by file

    def marks_on(self, uid: str) -> list:
        """The CAD marks drawn on image ``uid``."""
        return [m for report in self.cad for m in report.marks if m.image == uid]

    def cad_text(self) -> str:
        """The CAD section of the image text (Table 8-14): what each CAD said and who it was."""
        parts = []
        for r in self.cad:
            words = r.summary or "summary not given"
            if r.failed:
                words = f"⚠ {words}"
            parts.append(f"CAD: {words} ({r.manufacturer} {r.software}, {len(r.marks)} mark"
                         f"{'s' if len(r.marks) != 1 else ''})")
        return "\n".join(parts)


@dataclass
class _Study:
    headers: list[Dataset]           # every header of a mammography series, the first of any other
    paths: dict[str, Path]           # SOP Instance UID -> file, for the headers read
    by_path: dict[Path, Dataset]     # file -> its header, for the headers read
    series: dict[str, list[Path]]    # Series Instance UID -> all its files, in instance order


def _read_study(archive, study_uid: str) -> _Study:
    """What the hanging needs of a study: the index lists its series and files; headers are
    read only where they decide something (every image of a mammography or tomosynthesis
    series, one per other series), so a 2000-slice CT costs a few reads, not 2000."""
    import pydicom

    from app.imaging.mammo_objects import recognise
    from app.store.query import iter_matches
    by_series: dict[str, list[dict]] = {}
    for row in iter_matches(archive.engine, "instance", {"StudyInstanceUID": study_uid}, computed=frozenset()):
        by_series.setdefault(row.get("SeriesInstanceUID") or "", []).append(row)
    out = _Study([], {}, {}, {})

    def read(row) -> Dataset | None:
        path = Path(archive.files.absolute(row["path"]))
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - one unreadable file does not stop the hanging
            log.warning("cannot read %s for hanging: %s", path, exc)
            return None
        out.paths[str(ds.SOPInstanceUID)] = path
        out.by_path[path] = ds
        return ds

    for series, rows in by_series.items():
        rows.sort(key=lambda r: (hanging.as_int(r.get("InstanceNumber")), r.get("SOPInstanceUID") or ""))
        out.series[series] = [Path(archive.files.absolute(r["path"])) for r in rows]
        first = next((ds for ds in map(read, rows[:1]) if ds is not None), None)
        if first is None:
            continue
        out.headers.append(first)
        if recognise(first).kind is not None:  # each image counts (views, one volume, CAD)
            out.headers += [ds for ds in map(read, rows[1:]) if ds is not None]
    return out


def priors_of(archive, study_uid: str) -> list[str]:
    """The patient's other studies in the archive dated before this one, newest first."""
    from app.store.query import search
    rows = search(archive.engine, "study", {"StudyInstanceUID": study_uid})
    if not rows or not rows[0].get("PatientID"):
        return []
    current = rows[0]
    when = (current.get("StudyDate") or "", current.get("StudyTime") or "")
    others = [r for r in search(archive.engine, "study", {"PatientID": current["PatientID"]})
              if r["StudyInstanceUID"] != study_uid
              and (r.get("IssuerOfPatientID") or "") == (current.get("IssuerOfPatientID") or "")
              and (r.get("StudyDate") or "", r.get("StudyTime") or "") < when]
    others.sort(key=lambda r: (r.get("StudyDate") or "", r.get("StudyTime") or ""), reverse=True)
    return [r["StudyInstanceUID"] for r in others]


def hang_study(archive, study_uid: str, user_folder: Path | None = None) -> HungStudy:
    study = _read_study(archive, study_uid)
    if not study.headers:
        raise HangError(f"there is no study {study_uid} in the local archive (see 'lightbox ls')")
    counts = {uid: len(files) for uid, files in study.series.items()}
    current = hanging.display_sets(study.headers, counts)
    paths, series, by_path = dict(study.paths), dict(study.series), dict(study.by_path)
    priors = []
    for prior_uid in priors_of(archive, study_uid):
        prior = _read_study(archive, prior_uid)
        paths.update(prior.paths)
        series.update(prior.series)
        by_path.update(prior.by_path)
        priors.append(hanging.display_sets(prior.headers, {uid: len(f) for uid, f in prior.series.items()}))
    studies = hanging.Studies(current, priors)
    protocol = hanging.choose(hanging.load_protocols(user_folder), studies)
    if protocol is None:
        raise HangError("no hanging protocol matches this study")
    # an image is drawn from its file, a series (a CT tomosynthesis volume too) from all of its
    files = {s.uid: [paths[s.uid]] if s.uid in paths else series.get(s.uid, []) for sets in [current, *priors]
             for s in sets}
    return HungStudy(protocol, hanging.hang(protocol, studies), studies, files, _cad_reports(study.headers), by_path)


def _cad_reports(headers: list[Dataset]) -> list:
    """The study's Mammography CAD SRs, their marks moved onto For Presentation images."""
    from app.imaging import cad_marks
    from app.imaging.mammo_objects import CAD_SR, MG, recognise
    presentation = [h for h in headers if recognise(h).kind == MG]
    out = []
    for h in headers:
        if recognise(h).kind != CAD_SR:
            continue
        try:
            report = cad_marks.read_report(h)
        except Exception as exc:  # noqa: BLE001 - a broken report is named, the images still hang
            log.warning("CAD report %s cannot be read: %s", h.get("SOPInstanceUID"), exc)
            continue
        report.marks = cad_marks.on_presentation_images(report.marks, presentation)
        out.append(report)
    return out


def shown_image(files: list[Path]) -> tuple[Dataset, np.ndarray]:
    """The header and stored values of the image a viewport shows first: the middle one of
    a volume or series in reading order, as the viewer opens it (app.imaging.series)."""
    from app.imaging.series import SeriesImages
    images = SeriesImages(files, workers=1)
    try:
        middle = len(images) // 2
        return images.header(middle), images.stored(middle)
    finally:
        images.close()


def render_stage(hung: HungStudy, stage_index: int, size: tuple[int, int], cad: str = "") -> np.ndarray:
    """uint8 RGB (H, W, 3) of one stage, drawn by VTK offscreen as the viewer draws it;
    ``cad``: "required" draws the CAD marks to be presented, "all" the optional ones too."""
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from app.imaging import pixels
    from app.imaging.scene import ImageText, fit_camera, image_actor, read_back
    from app.imaging.stage_layout import grid, place
    if not 0 <= stage_index < len(hung.stages):
        raise HangError(f"--stage {stage_index + 1} is out of range: protocol '{hung.protocol.name}' has "
                        f"{len(hung.stages)} stage(s) for this study")
    stage = hung.stages[stage_index]
    from app.imaging.overlays import cad_actors
    shown: list[Dataset | None] = []
    images: list[np.ndarray | None] = []
    for hv in stage.viewports:
        if hv.display_set is None:
            shown.append(None)
            images.append(None)
            continue
        try:
            header, stored = shown_image(hung.files[hv.display_set.uid])
            images.append(pixels.display(header, stored))
            shown.append(header)
        except Exception as exc:  # noqa: BLE001 - an undecodable image leaves its viewport empty
            log.warning("cannot draw %s: %s", hv.display_set.label, exc)
            shown.append(None)
            images.append(None)
    placements = place(stage, shown,
                       [img.shape[:2] if img is not None else None for img in images],
                       grid(stage.rows, stage.columns, size))
    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetMultiSamples(0)
    window.SetSize(*size)
    keep = []
    for hv, img, p in zip(stage.viewports, images, placements):
        x, y, w, h = p.rect
        renderer = vtkRenderer()
        renderer.SetBackground(0, 0, 0)
        # VTK's viewport origin is the bottom-left
        renderer.SetViewport(x / size[0], 1 - (y + h) / size[1], (x + w) / size[0], 1 - y / size[1])
        window.AddRenderer(renderer)
        if img is None:
            continue
        renderer.AddActor(image_actor(img))
        marks = [m for m in hung.marks_on(hv.display_set.uid) if not m.optional or cad == "all"] if cad else []
        for mark in marks:
            for actor in cad_actors(mark, img.shape[0], "right" if p.pinned == "left" else "left", p.rotation, p.flip):
                renderer.AddViewProp(actor)
        fit_camera(renderer, img.shape, (w, h), p.zoom, p.rotation, p.flip, p.pan)
        text = ImageText(font_size=13)
        text.add_to(renderer)
        s = hv.display_set
        label = f"{s.label}  {_date(s.study_date)}"
        outer = "top-left" if p.pinned != "left" else "top-right"
        corners = {outer: label}
        bottom = []
        if s.problems:
            bottom.append("⚠ " + "\n".join(s.problems[:2]))
        if cad and hung.cad:
            bottom.append(hung.cad_text())
        if bottom:
            corners["bottom-left" if p.pinned != "left" else "bottom-right"] = "\n".join(bottom)
        text.set(corners, None)
        keep.append(text)  # the text actors live as long as the window draws them
    return read_back(window)


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value
