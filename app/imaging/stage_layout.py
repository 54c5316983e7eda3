"""Where and how big each image of a hanging stage is drawn (core: the viewer and 'lightbox
hang' both place images by it, so they hang a stage alike).

Per viewport: its rectangle in the stage's grid, the rotation and flip of the mirrored
hanging (app.imaging.breast_views), the zoom (screen pixels per image pixel) for its size
mode, and the pan that pins a breast to the inner edge, chest wall on the centre line.

Size modes: "fit" fills the viewport; "same" shows one millimetre at the same size in every
"same" viewport of the stage (the largest size at which all of them fit), so breasts of
different detectors compare; "true" shows one millimetre as one millimetre on the screen.
Millimetres per pixel follow Table 8-14's variants: A, Imager Pixel Spacing corrected by the
Estimated Radiographic Magnification Factor (else by Distance Source to Detector / to
Patient); B, Pixel Spacing; C, Image Plane Pixel Spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from app.imaging import pixels


@dataclass
class Placement:
    rect: tuple[int, int, int, int]   # x, y (from the top-left), width, height in screen pixels
    rotation: int = 0
    flip: bool = False
    zoom: float = 1.0                 # screen pixels per image pixel
    pan: tuple[float, float] = (0.0, 0.0)  # image pixels right and down on the screen
    mm_per_pixel: float | None = None
    pinned: str | None = None         # "left" / "right": the edge the chest wall is held to


def mm_per_pixel(ds: Dataset) -> tuple[float | None, str]:
    """(mm in the breast per image pixel, which Table 8-14 variant gave it)."""
    imager = pixels.floats(ds.get("ImagerPixelSpacing"))
    if imager:
        factor = pixels.floats(ds.get("EstimatedRadiographicMagnificationFactor"))
        if factor and factor[0] > 0:
            return imager[0] / factor[0], "A"
        sid, sod = pixels.floats(ds.get("DistanceSourceToDetector")), pixels.floats(ds.get("DistanceSourceToPatient"))
        if sid and sod and sod[0] > 0 and sid[0] > 0:
            return imager[0] * sod[0] / sid[0], "A"
    for keyword, variant in (("PixelSpacing", "B"), ("ImagePlanePixelSpacing", "C")):
        value = pixels.floats(ds.get(keyword))
        if value and value[0] > 0:
            return value[0], variant
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and shared[0].get("PixelMeasuresSequence"):
        value = pixels.floats(shared[0].PixelMeasuresSequence[0].get("PixelSpacing"))
        if value and value[0] > 0:
            return value[0], "B"
    return None, ""


def grid(rows: int, columns: int, size: tuple[int, int], gap: int = 2) -> list[tuple[int, int, int, int]]:
    """Viewport rectangles, row by row, ``gap`` pixels between them."""
    width, height = size
    w, h = (width - gap * (columns - 1)) // columns, (height - gap * (rows - 1)) // rows
    return [(c * (w + gap), r * (h + gap), w, h) for r in range(rows) for c in range(columns)]


def _shown_size(shape: tuple[int, int], rotation: int) -> tuple[int, int]:
    h, w = shape
    return (h, w) if rotation % 180 else (w, h)


def place(stage, headers: list[Dataset | None], shapes: list[tuple[int, int] | None],
          rects: list[tuple[int, int, int, int]], screen_mm_per_pixel: float = 25.4 / 96) -> list[Placement]:
    """Placements for the viewports of ``stage`` (app.imaging.hanging.HungStage): ``headers``
    and ``shapes`` (rows, columns) of what each shows, None for an empty viewport; ``rects``
    where the viewports are (``grid``, or the viewer's widgets)."""
    from app.imaging.breast_views import breast_view, chest_wall_side, display_transform
    out: list[Placement] = []
    for hv, ds, shape, rect in zip(stage.viewports, headers, shapes, rects):
        placement = Placement(rect)
        if ds is not None and shape is not None:
            view = breast_view(ds) if hv.display_set is not None and hv.display_set.kind else None
            transform = display_transform(ds, view) if view is not None else None
            if transform is not None:
                placement.rotation, placement.flip = transform
                placement.pinned = chest_wall_side(view.laterality)
            placement.mm_per_pixel = mm_per_pixel(ds)[0]
            w, h = _shown_size(shape, placement.rotation)
            placement.zoom = min(rect[2] / max(w, 1), rect[3] / max(h, 1))
        out.append(placement)
    # "same": the largest screen pixels per mm at which every such image fits its viewport
    same = [(p, hv) for p, hv, ds in zip(out, stage.viewports, headers)
            if ds is not None and hv.viewport.size == "same" and p.mm_per_pixel]
    if same:
        px_per_mm = min(p.zoom / p.mm_per_pixel for p, _ in same)
        for p, _ in same:
            p.zoom = px_per_mm * p.mm_per_pixel
    for p, hv, ds in zip(out, stage.viewports, headers):
        if ds is not None and hv.viewport.size == "true" and p.mm_per_pixel:
            p.zoom = p.mm_per_pixel / screen_mm_per_pixel
    for p, shape, ds in zip(out, shapes, headers):
        if ds is None or shape is None or p.pinned is None:
            continue
        w, h = _shown_size(shape, p.rotation)
        slack = p.rect[2] / p.zoom - w  # image pixels of empty width beside the image
        if slack > 0:  # pinned to the inner edge: shift the image toward it by half the slack
            shift = slack / 2
            p.pan = (shift if p.pinned == "right" else -shift, 0.0)
        else:  # wider than the viewport (true size): the chest wall stays in view
            shift = -slack / 2
            p.pan = (-shift if p.pinned == "right" else shift, 0.0)
    return out
