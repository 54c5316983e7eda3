"""Measurement graphics drawn over an image in VTK (world coordinates = image pixels,
x = column, y = rows counted from the bottom, as app.imaging.scene lays the image out)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkPolygon, vtkPolyLine
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkTextActor

from app.imaging import measure

COLOR = (0.3, 1.0, 0.4)


@dataclass
class Measurement:
    kind: str                          # "distance", "angle", "roi"
    points: list[tuple[float, float]]  # (column, row) image pixels
    label: str = ""
    actors: list = field(default_factory=list)


def label_for(m: Measurement, sp: measure.Spacing, values=None) -> str:
    if m.kind == "distance" and len(m.points) == 2:
        return f"{measure.distance(m.points[0], m.points[1], sp):.1f} {sp.unit}"
    if m.kind == "angle" and len(m.points) == 3:
        return f"{measure.angle(m.points[0], m.points[1], m.points[2], sp):.1f}°"
    if m.kind == "roi" and len(m.points) == 2 and values is not None:
        mask = measure.ellipse_mask(values.shape, m.points[0], m.points[1])
        st = measure.roi_stats(values, mask, sp)
        if st is None:
            return ""
        unit = sp.unit.split()[0]
        return (f"mean {st.mean:.1f}  SD {st.sd:.1f}\nmin {st.minimum:.0f}  max {st.maximum:.0f}\n"
                f"area {st.area:.1f} {unit}²" + (" (detector)" if "detector" in sp.unit else ""))
    return ""


def outline(m: Measurement) -> list[tuple[float, float]]:
    if m.kind == "roi" and len(m.points) == 2:
        (x0, y0), (x1, y1) = m.points
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in (2 * math.pi * i / 64 for i in range(65))]
    return list(m.points)


def actors_for(m: Measurement, image_height: int) -> list:
    """A polyline and its label; image rows become world y = height - 1 - row."""
    pts = outline(m)
    if len(pts) < 2:
        return []
    # distance: label at its end; angle: at the vertex; ROI: at the right of the ellipse
    anchor = {"distance": m.points[-1], "angle": m.points[1] if len(m.points) > 2 else m.points[-1]}.get(
        m.kind, max(m.points, key=lambda p: p[0]))
    return graphic_actors(pts, image_height, COLOR, label=m.label, label_at=(anchor[0] + 4, anchor[1]))


def graphic_actors(points: list[tuple[float, float]], image_height: int, color=COLOR, *, filled: bool = False,
                   label: str = "", label_at: tuple[float, float] | None = None, width: float = 2,
                   label_justify: str = "left") -> list:
    """A polyline through ``points`` ((column, row) image pixels; a filled polygon if
    ``filled``) and a text label at ``label_at``, as VTK actors over the image."""
    out: list = []
    if len(points) >= 2:
        vtk_points = vtkPoints()
        for x, y in points:
            vtk_points.InsertNextPoint(x, image_height - 1 - y, 0.5)
        cell = vtkPolygon() if filled else vtkPolyLine()
        cell.GetPointIds().SetNumberOfIds(len(points))
        for i in range(len(points)):
            cell.GetPointIds().SetId(i, i)
        cells = vtkCellArray()
        cells.InsertNextCell(cell)
        poly = vtkPolyData()
        poly.SetPoints(vtk_points)
        poly.SetPolys(cells) if filled else poly.SetLines(cells)
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(poly)
        actor = vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(*color)
        actor.GetProperty().SetLineWidth(width)
        if filled:
            actor.GetProperty().SetOpacity(0.4)  # the image stays readable under a filled area
        out.append(actor)
    if label and label_at is not None:
        text = vtkTextActor()
        text.SetInput(label)
        text.GetTextProperty().SetColor(*color)
        text.GetTextProperty().SetFontSize(14)
        text.GetTextProperty().ShadowOn()
        if label_justify == "right":  # the text ends at its anchor
            text.GetTextProperty().SetJustificationToRight()
        text.GetPositionCoordinate().SetCoordinateSystemToWorld()
        text.GetPositionCoordinate().SetValue(label_at[0], image_height - 1 - label_at[1], 0.5)
        out.append(text)
    return out


def _ring(cx: float, cy: float, a: float, b: float, angle: float = 0.0, n: int = 64) -> list[tuple[float, float]]:
    ca, sa = math.cos(angle), math.sin(angle)
    return [(cx + a * math.cos(t) * ca - b * math.sin(t) * sa, cy + a * math.cos(t) * sa + b * math.sin(t) * ca)
            for t in (2 * math.pi * i / n for i in range(n + 1))]


def annotation_actors(a, image_height: int) -> list:
    """A presentation state's graphic or text object (app.imaging.presentation_state.
    Annotation) as actors: circles and ellipses as outlines, a point as a small cross, a
    text at its bounding box (or anchor), joined to its anchor point by a line."""
    pts = list(a.points)
    if a.kind == "TEXT":
        at = (min(p[0] for p in pts), min(p[1] for p in pts)) if pts else a.anchor
        out = graphic_actors([], image_height, a.color, label=a.text, label_at=at)
        if pts and a.anchor is not None:
            out += graphic_actors([at, a.anchor], image_height, a.color, width=1)
        return out
    if a.kind == "POINT":
        (x, y), r = pts[0], 3.0
        return (graphic_actors([(x - r, y), (x + r, y)], image_height, a.color)
                + graphic_actors([(x, y - r), (x, y + r)], image_height, a.color))
    if a.kind == "CIRCLE":
        (cx, cy), (px, py) = pts
        pts = _ring(cx, cy, math.hypot(px - cx, py - cy), math.hypot(px - cx, py - cy))
    elif a.kind == "ELLIPSE":  # ends of the major axis, then of the minor axis
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = pts
        pts = _ring((x0 + x1) / 2, (y0 + y1) / 2, math.hypot(x1 - x0, y1 - y0) / 2,
                    math.hypot(x3 - x2, y3 - y2) / 2, math.atan2(y1 - y0, x1 - x0))
    return graphic_actors(pts, image_height, a.color, filled=a.filled)


CROSSHAIR_COLOR = (0.3, 1.0, 0.4)


def crosshair_actors(point: tuple[float, float], shape: tuple[int, int]) -> list:
    """A cross-hair through ``point`` (column, row) with a gap at its centre, so the spot it
    marks stays visible; arms of a twelfth of the image's smaller side."""
    x, y = point
    arm = max(8.0, min(shape) / 12)
    gap = arm / 4
    out = []
    for (x0, y0), (x1, y1) in (((x - arm, y), (x - gap, y)), ((x + gap, y), (x + arm, y)),
                               ((x, y - arm), (x, y - gap)), ((x, y + gap), (x, y + arm))):
        out += graphic_actors([(x0, y0), (x1, y1)], shape[0], CROSSHAIR_COLOR)
    return out


CAD_COLOR = (1.0, 0.35, 0.35)
CAD_OPTIONAL_COLOR = (1.0, 0.75, 0.3)


def cad_actors(mark, image_height: int, free_side: str = "right", rotation: int = 0, flip: bool = False) -> list:
    """A CAD mark (app.imaging.cad_marks.Mark) in its graphic type; MULTIPOINT as crosses;
    its finding named beside it on the screen's ``free_side`` of the mark (away from the
    chest wall and the other breast), given the view's ``rotation`` and ``flip``."""
    from types import SimpleNamespace
    color = CAD_OPTIONAL_COLOR if mark.optional else CAD_COLOR
    if not mark.points:
        return []
    if mark.graphic == "MULTIPOINT":
        out = []
        for p in mark.points:
            out += annotation_actors(SimpleNamespace(kind="POINT", points=[p], color=color, filled=False), image_height)
    else:
        kind = mark.graphic if mark.graphic in ("POINT", "CIRCLE", "ELLIPSE") else "POLYLINE"
        out = annotation_actors(SimpleNamespace(kind=kind, points=mark.points, color=color, filled=False), image_height)
    # which way image columns run on screen: only a half turn or a flip reverses them
    x_runs_right = {0: not flip, 180: flip}.get(rotation % 360, True)
    toward = 1 if (free_side == "right") == x_runs_right else -1
    edge = max(mark.points, key=lambda p: p[0] * toward)
    label = mark.meaning + (f" {mark.value}" if mark.value else "")
    return out + graphic_actors([], image_height, color, label=label, label_at=(edge[0] + 6 * toward, edge[1]),
                                label_justify="left" if free_side == "right" else "right")
