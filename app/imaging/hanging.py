"""The hanging protocol engine: which protocol a study is read with, and what each stage
shows where. Core only (no Qt): the viewer and 'lightbox hang' lay out what it decides.

A protocol (resources/hanging/*.json, and the user's own in <home>/hanging/) has
  * matching rules on the study being read, each with a weight, some required: the
    best-scoring protocol wins, a failing required rule rules it out;
  * display-set selectors: which image (a mammogram, a tomosynthesis volume) or series (CT,
    MR) of the current study or of a prior fills a viewport (laterality, view, kind, ...);
  * stages: a grid of viewports, each naming a selector, with options (size: fit, same or
    true; link group: zoom, pan, window and slice move together). A stage whose viewports
    match fewer than its "min" display sets (default: all of them) is skipped, so "current
    vs prior" disappears when there is no prior and "additional views" when there are none.

Priors are the patient's earlier studies, newest first: "prior" is the one before the study
being read (as OHIF's hanging protocol service does; its structure, not its rules).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from app.resources import resource

BUILT_IN = resource("hanging")


@dataclass(frozen=True)
class DisplaySet:
    """One thing a viewport shows: a mammogram, a tomosynthesis volume, a series."""
    uid: str                    # SOP Instance UID (MG, tomo object) or Series Instance UID
    study_uid: str
    study_date: str
    modality: str
    kind: str | None            # app.imaging.mammo_objects kinds; None for other images
    laterality: str = "U"
    view: str = ""              # CC, MLO ...; "?" unknown
    modifiers: tuple[str, ...] = ()
    series_number: int = 0
    instance_number: int = 0
    frames: int = 1
    description: str = ""
    problems: tuple[str, ...] = ()  # Table 8-7 to 8-12 violations, shown as a warning

    @property
    def label(self) -> str:
        if self.kind is None:
            return self.description or self.modality
        text = f"{self.laterality}{self.view}"
        return f"{text} {' '.join(self.modifiers)}" if self.modifiers else text


def display_sets(headers: list[Dataset], series_counts: dict[str, int] | None = None) -> list[DisplaySet]:
    """The display sets of one study's headers (one per header for mammography objects;
    one per series otherwise, tomosynthesis encoded as CT included). For Processing images
    and CAD SRs are left out: they are not hung for reading. ``series_counts``: the images
    of each series when only some headers were read (app.imaging.study_hanging)."""
    from app.imaging.breast_views import breast_view
    from app.imaging.mammo_objects import DBT_CT, recognise
    out: list[DisplaySet] = []
    series_done: set[str] = set()
    for ds in headers:
        got = recognise(ds)
        if got.kind is not None and not got.hung:
            continue
        common = {"study_uid": str(ds.get("StudyInstanceUID", "")), "study_date": str(ds.get("StudyDate", "") or ""),
                  "modality": str(ds.get("Modality", "") or ""), "series_number": as_int(ds.get("SeriesNumber")),
                  "description": str(ds.get("SeriesDescription", "") or "")}
        if got.kind is not None and got.kind != DBT_CT:
            view = breast_view(ds)
            out.append(DisplaySet(str(ds.SOPInstanceUID), kind=got.kind, laterality=view.laterality,
                                  view=view.view.label, modifiers=view.modifiers,
                                  instance_number=as_int(ds.get("InstanceNumber")),
                                  frames=as_int(ds.get("NumberOfFrames")) or 1, problems=tuple(got.problems), **common))
            continue
        series = str(ds.get("SeriesInstanceUID", ""))
        if series in series_done:
            continue
        series_done.add(series)
        members = [h for h in headers if str(h.get("SeriesInstanceUID", "")) == series]
        count = (series_counts or {}).get(series, len(members))
        if got.kind == DBT_CT:
            from app.imaging.mammo_objects import check_ct_volume
            view = breast_view(ds)
            out.append(DisplaySet(series, kind=DBT_CT, laterality=view.laterality, view=view.view.label,
                                  modifiers=view.modifiers, frames=count,
                                  problems=tuple(got.problems + check_ct_volume(members)), **common))
        else:
            out.append(DisplaySet(series, kind=None, frames=count, **common))
    return out


def as_int(value) -> int:
    """An IS/US value as int, 0 when absent or not a number."""
    try:
        return int(float(str(value)))
    except (TypeError, ValueError):
        return 0


# -- protocols -------------------------------------------------------------------------------
@dataclass
class Viewport:
    select: str | None              # a selector's name; None: an empty viewport
    size: str = "fit"               # fit | same (one mm the same across the stage) | true
    link: str | None = None         # viewports of one link group move together


@dataclass
class Stage:
    name: str
    rows: int
    columns: int
    viewports: list[Viewport]
    min: int | None = None          # display sets it needs to be shown (None: every viewport's)


@dataclass
class Protocol:
    id: str
    name: str
    match: list[dict]
    selectors: dict[str, dict]
    stages: list[Stage]
    source: Path | None = None

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "match": self.match, "selectors": self.selectors,
                "stages": [{"name": s.name, "rows": s.rows, "columns": s.columns,
                            **({"min": s.min} if s.min is not None else {}),
                            "viewports": [{k: v for k, v in vars(vp).items() if v is not None and
                                           not (k == "size" and v == "fit")} for vp in s.viewports]}
                           for s in self.stages]}


class ProtocolError(ValueError):
    pass


def parse_protocol(data: dict, source: Path | None = None) -> Protocol:
    where = f" in {source.name}" if source else ""
    try:
        stages = []
        for s in data["stages"]:
            viewports = [Viewport(v.get("select"), v.get("size", "fit"), v.get("link")) for v in s["viewports"]]
            if len(viewports) != int(s["rows"]) * int(s["columns"]):
                raise ProtocolError(f"stage '{s['name']}'{where} has {len(viewports)} viewports for a "
                                    f"{s['rows']}x{s['columns']} grid")
            for vp in viewports:
                if vp.select is not None and vp.select not in data["selectors"]:
                    raise ProtocolError(f"stage '{s['name']}'{where} names an unknown selector '{vp.select}'")
                if vp.size not in ("fit", "same", "true"):
                    raise ProtocolError(f"stage '{s['name']}'{where}: size '{vp.size}' is not fit, same or true")
            stages.append(Stage(s["name"], int(s["rows"]), int(s["columns"]), viewports, s.get("min")))
        return Protocol(str(data["id"]), str(data["name"]), list(data.get("match", [])), dict(data["selectors"]),
                        stages, source)
    except KeyError as exc:
        raise ProtocolError(f"hanging protocol{where} lacks {exc}") from None


def load_protocols(user_folder: Path | None = None) -> list[Protocol]:
    """The built-in protocols, then the user's (a user's protocol with a built-in's id
    replaces it). A broken file is skipped with a log line, never the viewer."""
    import logging
    log = logging.getLogger(__name__)
    found: dict[str, Protocol] = {}
    for folder in (BUILT_IN, user_folder):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                protocol = parse_protocol(json.loads(path.read_text(encoding="utf-8")), path)
            except (OSError, ValueError) as exc:
                log.warning("hanging protocol %s skipped: %s", path, exc)
                continue
            found[protocol.id] = protocol
    return list(found.values())


def save_protocol(protocol: Protocol, user_folder: Path) -> Path:
    user_folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in protocol.id)
    path = user_folder / f"{safe}.json"
    path.write_text(protocol_text(protocol.as_json()), encoding="utf-8")
    return path


def protocol_text(data, indent: int = 0) -> str:
    """JSON laid out for reading and editing by hand: a selector, a rule or a viewport on
    one line, the structure around them indented."""
    def flat(value) -> bool:
        if isinstance(value, dict):
            return all(not isinstance(v, (dict, list)) or (isinstance(v, list) and all(
                not isinstance(x, (dict, list)) for x in v)) for v in value.values())
        return isinstance(value, list) and all(not isinstance(x, (dict, list)) for x in value)

    pad, inner = "  " * indent, "  " * (indent + 1)
    if flat(data) or not isinstance(data, (dict, list)):
        return json.dumps(data)
    if isinstance(data, dict):
        items = [f"{inner}{json.dumps(k)}: {protocol_text(v, indent + 1)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}" + ("\n" if indent == 0 else "")
    items = [f"{inner}{protocol_text(v, indent + 1)}" for v in data]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


# -- matching --------------------------------------------------------------------------------
@dataclass
class Studies:
    """The study being read and the patient's earlier ones, newest first."""
    current: list[DisplaySet]
    priors: list[list[DisplaySet]] = field(default_factory=list)

    def of(self, which: str) -> list[DisplaySet]:
        if which == "current":
            return self.current
        n = 1 if which == "prior" else int(which.partition("-")[2] or 1)
        return self.priors[n - 1] if len(self.priors) >= n else []


def _rule_holds(rule: dict, studies: Studies, protocol: Protocol) -> bool:
    sets = studies.current
    if "selector" in rule:
        return bool(select(protocol.selectors[rule["selector"]], studies))
    if "modality" in rule:
        return any(s.modality.upper() == str(rule["modality"]).upper() for s in sets)
    if "kind" in rule:
        kinds = rule["kind"] if isinstance(rule["kind"], list) else [rule["kind"]]
        return any(s.kind in kinds for s in sets)
    if "any" in rule:  # matches every study: the generic fallback
        return True
    raise ProtocolError(f"unknown matching rule {rule} in protocol '{protocol.id}'")


def score(protocol: Protocol, studies: Studies) -> float:
    total = 0.0
    for rule in protocol.match:
        if _rule_holds(rule, studies, protocol):
            total += float(rule.get("weight", 1))
        elif rule.get("required"):
            return 0.0
    return total


def choose(protocols: list[Protocol], studies: Studies) -> Protocol | None:
    scored = [(score(p, studies), i, p) for i, p in enumerate(protocols)]
    best = max(scored, key=lambda t: (t[0], -t[1]), default=None)
    return best[2] if best and best[0] > 0 else None


def select(selector: dict, studies: Studies) -> list[DisplaySet]:
    """The display sets a selector matches, best first: in the order of its kinds (a 2D
    mammogram before a synthesised view when both are asked for), then series and instance
    number. Its "index" takes the n-th of them; "extra": true only views other than a plain
    CC or MLO (additional views: XCCL, ML, spot, magnification, implant displaced ...)."""
    sets = studies.of(selector.get("study", "current"))
    kinds = selector.get("kind")
    kinds = kinds if isinstance(kinds, list) or kinds is None else [kinds]
    out = []
    for s in sets:
        if kinds is not None and s.kind not in kinds:
            continue
        if selector.get("extra") and s.view in ("CC", "MLO") and not s.modifiers:
            continue
        if "modality" in selector and s.modality.upper() != str(selector["modality"]).upper():
            continue
        if "laterality" in selector and s.laterality != selector["laterality"]:
            continue
        if "view" in selector:
            views = selector["view"] if isinstance(selector["view"], list) else [selector["view"]]
            if s.view not in views:
                continue
        modifiers = selector.get("modifiers", "any" if selector.get("extra") else "none")
        if modifiers == "none" and s.modifiers:
            continue
        if modifiers == "some" and not s.modifiers:
            continue
        if isinstance(modifiers, list) and not set(modifiers) & set(s.modifiers):
            continue
        out.append(s)
    out.sort(key=lambda s: (kinds.index(s.kind) if kinds else 0, s.series_number, s.instance_number, s.uid))
    index = selector.get("index")
    if index is not None:
        return out[index:index + 1]
    return out


@dataclass
class HungViewport:
    display_set: DisplaySet | None
    viewport: Viewport


@dataclass
class HungStage:
    name: str
    rows: int
    columns: int
    viewports: list[HungViewport]


def hang(protocol: Protocol, studies: Studies) -> list[HungStage]:
    """The stages to step through, the ones matching too little left out. A selector fills
    each viewport with its first display set not already shown in that stage (two viewports
    with one selector show its first and second match)."""
    out = []
    for stage in protocol.stages:
        used: set[str] = set()
        filled = []
        for vp in stage.viewports:
            chosen = None
            if vp.select is not None:
                for s in select(protocol.selectors[vp.select], studies):
                    if s.uid not in used:
                        chosen = s
                        used.add(s.uid)
                        break
            filled.append(HungViewport(chosen, vp))
        needed = stage.min if stage.min is not None else sum(1 for vp in stage.viewports if vp.select is not None)
        if sum(1 for f in filled if f.display_set is not None) >= max(needed, 1):
            out.append(HungStage(stage.name, stage.rows, stage.columns, filled))
    return out


def layout_protocol(name: str, stage: HungStage) -> Protocol:
    """A protocol of one stage from what the user arranged ("save layout as protocol"): each
    shown display set becomes a selector by what identifies it (kind, laterality, view;
    modality and series order for other images)."""
    selectors, viewports = {}, []
    for i, hv in enumerate(stage.viewports):
        s = hv.display_set
        if s is None:
            viewports.append(Viewport(None))
            continue
        key = f"vp{i + 1}"
        if s.kind is not None:
            selectors[key] = {"kind": [s.kind], "laterality": s.laterality, "view": s.view,
                              "modifiers": list(s.modifiers) if s.modifiers else "none"}
        else:
            selectors[key] = {"modality": s.modality, "modifiers": "any"}
        viewports.append(Viewport(key, hv.viewport.size, hv.viewport.link))
    kinds = sorted({hv.display_set.kind for hv in stage.viewports if hv.display_set and hv.display_set.kind})
    modalities = sorted({hv.display_set.modality for hv in stage.viewports if hv.display_set})
    match = [{"kind": kinds, "weight": 1}] if kinds else [{"modality": m, "weight": 1} for m in modalities]
    safe = "".join(c.lower() if c.isalnum() else "-" for c in name).strip("-") or "layout"
    return Protocol(f"user-{safe}", name, match, selectors,
                    [Stage(stage.name, stage.rows, stage.columns, viewports, min=1)])
