"""Measurement graphics drawn over an image in VTK (world coordinates = image pixels,
x = column, y = rows counted from the bottom, as app.imaging.scene lays the image out)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkPolyLine
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
    points = vtkPoints()
    line = vtkPolyLine()
    line.GetPointIds().SetNumberOfIds(len(pts))
    for i, (x, y) in enumerate(pts):
        points.InsertNextPoint(x, image_height - 1 - y, 0.5)
        line.GetPointIds().SetId(i, i)
    cells = vtkCellArray()
    cells.InsertNextCell(line)
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetLines(cells)
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(poly)
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*COLOR)
    actor.GetProperty().SetLineWidth(2)
    out = [actor]
    if m.label:
        text = vtkTextActor()
        text.SetInput(m.label)
        text.GetTextProperty().SetColor(*COLOR)
        text.GetTextProperty().SetFontSize(14)
        text.GetTextProperty().ShadowOn()
        # distance: at its end; angle: at the vertex; ROI: at the right of the ellipse
        anchor = {"distance": m.points[-1], "angle": m.points[1] if len(m.points) > 2 else m.points[-1]}.get(
            m.kind, max(m.points, key=lambda p: p[0]))
        text.GetPositionCoordinate().SetCoordinateSystemToWorld()
        text.GetPositionCoordinate().SetValue(anchor[0] + 4, image_height - 1 - anchor[1], 0.5)
        out.append(text)
    return out
