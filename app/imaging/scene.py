"""VTK scenes for 8-bit display images: what the viewer's viewports and `lightbox render`
both draw, so that a headless render is exactly what the viewer shows.

The image is handed to VTK already windowed to 8 bits (app.imaging.pixels): uploading
8-bit textures is what keeps software OpenGL fast enough to scroll, and the pixel values
are then the pipeline's, not a second implementation's. Pixels are drawn unfiltered, one
pixel per cell, with image row 0 at the top.
"""

from __future__ import annotations

import math

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkImageActor, vtkRenderer, vtkRenderWindow, vtkWindowToImageFilter

import vtkmodules.vtkRenderingOpenGL2  # noqa: F401 - registers the OpenGL render window classes


def reduction_factor(zoom: float) -> int:
    """Image pixels per texture pixel at ``zoom`` screen pixels per image pixel: 1 unless
    the image is shown at half size or less (a fitted mammogram), then as many as one screen
    pixel covers."""
    return max(1, int(1.0 / zoom)) if zoom <= 0.5 else 1


def reduce(img: np.ndarray, factor: int) -> tuple[np.ndarray, tuple[float, float]]:
    """``img`` averaged over factor x factor blocks, and the world origin that keeps the
    blocks where their pixels are (world units stay full-resolution image pixels): a
    mammogram fitted into a viewport needs a sixteenth of the texture, which software
    OpenGL uploads and draws far faster."""
    if factor <= 1:
        return img, (0.0, 0.0)
    h, w = img.shape[:2]
    hc, wc = h // factor * factor, w // factor * factor
    whole = img[:hc, :wc]  # whole blocks only: the partial ones at the edges are dropped
    if img.dtype == np.uint8 and img.ndim in (2, 3):
        from PIL import Image
        # Pillow's box reduction: a fifth of the time numpy's block mean takes on a
        # 13-megapixel mammogram, with the interpreter released
        small = np.asarray(Image.fromarray(np.ascontiguousarray(whole)).reduce(factor))
    else:
        blocks = whole.reshape(hc // factor, factor, wc // factor, factor, *img.shape[2:])
        small = blocks.mean(axis=(1, 3)).round().astype(np.uint8)
    return small, ((factor - 1) / 2.0, (h - hc) + (factor - 1) / 2.0)


def image_data(img: np.ndarray, spacing: float = 1.0, origin: tuple[float, float] = (0.0, 0.0)) -> vtkImageData:
    """uint8 (H, W) or (H, W, 3) -> vtkImageData (VTK's rows run bottom-up)."""
    h, w = img.shape[:2]
    channels = 1 if img.ndim == 2 else img.shape[2]
    data = vtkImageData()
    data.SetDimensions(w, h, 1)
    data.SetSpacing(spacing, spacing, 1.0)
    data.SetOrigin(origin[0], origin[1], 0.0)
    scalars = numpy_to_vtk(np.ascontiguousarray(np.flipud(img)).reshape(h * w, channels), deep=True)
    data.GetPointData().SetScalars(scalars)
    return data


def image_actor(img: np.ndarray, spacing: float = 1.0, origin: tuple[float, float] = (0.0, 0.0)) -> vtkImageActor:
    actor = vtkImageActor()
    actor.GetMapper().SetInputData(image_data(img, spacing, origin))
    # Border: the edge pixels are drawn whole (VTK otherwise ends the image at the centres
    # of its outermost pixels and cuts half of each away).
    actor.GetMapper().BorderOn()
    actor.InterpolateOff()  # one display pixel per image pixel at 1:1, nearest when zoomed
    return actor


def screen_axes(rotation: int = 0, flip: bool = False) -> tuple[tuple[float, float], tuple[float, float]]:
    """World (image) directions shown at the screen's right and top, for a display rotated
    clockwise by ``rotation`` degrees after an optional left-right flip."""
    t = math.radians(rotation)
    up = (math.sin(t), math.cos(t)) if flip else (-math.sin(t), math.cos(t))
    right = (-up[1], up[0]) if flip else (up[1], -up[0])
    return right, up


def update_image(actor: vtkImageActor, img: np.ndarray, spacing: float = 1.0) -> bool:
    """Put ``img`` into the actor's image in place (no new texture object while scrolling);
    False if its size, channels or spacing differ (make a new actor then)."""
    data = actor.GetMapper().GetInput()
    h, w = img.shape[:2]
    channels = 1 if img.ndim == 2 else img.shape[2]
    dims = data.GetDimensions()
    scalars = data.GetPointData().GetScalars()
    if (dims[0], dims[1]) != (w, h) or scalars.GetNumberOfComponents() != channels \
            or data.GetSpacing()[0] != spacing:
        return False
    target = vtk_to_numpy(scalars).reshape(h, w, channels) if channels > 1 else vtk_to_numpy(scalars).reshape(h, w)
    np.copyto(target, np.flipud(img))
    scalars.Modified()
    data.Modified()
    return True


def fit_camera(renderer: vtkRenderer, img_shape: tuple[int, ...], view_size: tuple[int, int],
               zoom: float | None = None, rotation: int = 0, flip: bool = False,
               pan: tuple[float, float] = (0.0, 0.0),
               area: tuple[float, float, float, float] | None = None) -> float:
    """Centre the image, or ``area`` of it (left, top, right, bottom pixel edges: a
    presentation state's displayed area), moved by ``pan`` (image pixels right and down on
    the screen); ``zoom`` screen pixels per image pixel (None: fit it in the view). Returns
    the zoom used."""
    h, w = img_shape[:2]
    left, top, right_edge, bottom = area or (0, 0, w, h)
    aw, ah = right_edge - left, bottom - top
    vw, vh = view_size
    rw, rh = (ah, aw) if rotation % 180 else (aw, ah)
    if zoom is None:
        zoom = min(vw / max(rw, 1e-6), vh / max(rh, 1e-6))
    right, up = screen_axes(rotation, flip)
    x0, y0 = (left + right_edge) / 2.0 - 0.5, (h - 1) - ((top + bottom) / 2.0 - 0.5)  # world: rows bottom-up
    cx = x0 - pan[0] * right[0] + pan[1] * up[0]
    cy = y0 - pan[0] * right[1] + pan[1] * up[1]
    camera = renderer.GetActiveCamera()
    camera.ParallelProjectionOn()
    camera.SetFocalPoint(cx, cy, 0.0)
    camera.SetPosition(cx, cy, -1000.0 if flip else 1000.0)
    camera.SetViewUp(up[0], up[1], 0.0)
    camera.SetParallelScale(vh / (2.0 * zoom))
    renderer.ResetCameraClippingRange()
    return zoom


# where each block of image text sits: normalized viewport position, horizontal and
# vertical justification (0 left/bottom, 1 centre, 2 right/top)
_PLACES = {"top-left": (0.008, 0.992, 0, 2), "top-right": (0.992, 0.992, 2, 2),
           "bottom-left": (0.008, 0.008, 0, 0), "bottom-right": (0.992, 0.008, 2, 0),
           "top": (0.5, 0.992, 1, 2), "bottom": (0.5, 0.008, 1, 0),
           "left": (0.008, 0.5, 0, 1), "right": (0.992, 0.5, 2, 1)}


TEXT_SIZE = 14  # image text, pixels


class ImageText:
    """The four corners of image text and the four edge orientation markers, one text actor
    each: scrolling changes one corner, and only that block is typeset again (a single
    vtkCornerAnnotation re-typesets all of them, a sixth of a frame in software OpenGL)."""

    def __init__(self, font_size: int = TEXT_SIZE):
        from vtkmodules.vtkRenderingCore import vtkTextActor
        self.actors = {}
        for slot, (x, y, h, v) in _PLACES.items():
            actor = vtkTextActor()
            actor.SetTextScaleModeToNone()
            actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
            actor.GetPositionCoordinate().SetValue(x, y)
            prop = actor.GetTextProperty()
            prop.SetFontSize(font_size)
            prop.SetColor(1.0, 0.85, 0.3)
            prop.ShadowOn()
            prop.SetJustification(h)
            prop.SetVerticalJustification(v)
            actor.SetInput("")
            self.actors[slot] = actor

    def add_to(self, renderer: vtkRenderer) -> None:
        for actor in self.actors.values():
            renderer.AddViewProp(actor)

    def set_visible(self, visible: bool) -> None:
        for actor in self.actors.values():
            actor.SetVisibility(visible)

    def set(self, corners: dict[str, str], markers: dict[str, str] | None) -> None:
        """Corner text (app.imaging.image_text.corner_text) and edge orientation markers."""
        for slot, actor in self.actors.items():
            value = corners.get(slot, "") if slot in corners else (markers or {}).get(slot, "")
            if actor.GetInput() != value:  # unchanged text is not typeset again
                actor.SetInput(value)

    def text(self, slot: str) -> str:
        return self.actors[slot].GetInput() or ""


def render_offscreen(img: np.ndarray, size: tuple[int, int] | None = None,
                     corners: dict[str, str] | None = None, markers: dict[str, str] | None = None) -> np.ndarray:
    """Draw ``img`` in an offscreen window (native size unless ``size``) and read it back
    as uint8 RGB (H, W, 3), row 0 at the top."""
    h, w = img.shape[:2]
    vw, vh = size or (w, h)
    renderer = vtkRenderer()
    renderer.SetBackground(0, 0, 0)
    renderer.AddActor(image_actor(img))
    if corners is not None or markers:
        text = ImageText()
        text.set(corners or {}, markers)
        text.add_to(renderer)
    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetMultiSamples(0)
    window.AddRenderer(renderer)
    window.SetSize(vw, vh)
    fit_camera(renderer, img.shape, (vw, vh), 1.0 if size is None else None)
    return read_back(window)


def read_back(window: vtkRenderWindow) -> np.ndarray:
    """Render an offscreen window, read it as uint8 RGB (H, W, 3), row 0 at the top, and
    release it."""
    window.Render()
    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    out = grab.GetOutput()
    gw, gh, _ = out.GetDimensions()
    pixels = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(gh, gw, 3)
    window.Finalize()
    return np.flipud(pixels).copy()
