"""`lightbox render`: one image as the viewer shows it, drawn by VTK offscreen.

The pixels come from the viewer's pipeline (app.imaging.pixels) and are drawn by the same
scene code as the viewports (app.imaging.scene): at native size one output pixel is one
image pixel; with a size, the image is fitted into it on black, as in a viewport.
"""

from __future__ import annotations

import logging

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.imaging import pixels


class RenderError(Exception):
    """Why an image cannot be rendered, for the user."""


@dataclass(frozen=True)
class RenderRequest:
    frame: int = 1                   # 1-based: frame of a multi-frame image, or image of a series
    window: tuple[float, float] | None = None
    size: tuple[int, int] | None = None
    annotate: bool = False
    image: int = 1    # for the image text: which image of how many
    images: int = 1


def parse_window(text: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*", text or "")
    if not m or float(m.group(2)) <= 0:
        raise RenderError(f"--window expects CENTER/WIDTH with a width above 0, e.g. 40/400; got '{text}'")
    return float(m.group(1)), float(m.group(2))


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m or not (0 < int(m.group(1)) <= 16384 and 0 < int(m.group(2)) <= 16384):
        raise RenderError(f"--size expects WIDTHxHEIGHT (1-16384 each), e.g. 1024x1024; got '{text}'")
    return int(m.group(1)), int(m.group(2))


def series_files(archive, series_uid: str) -> list[Path]:
    """The files of a series in reading order (geometry, else Instance Number)."""
    from app.imaging.series import archive_series_files
    files = archive_series_files(archive, series_uid)
    if not files:
        raise RenderError(f"there is no series {series_uid} in the local archive (see 'lightbox ls --level series')")
    return files


def render_dataset(ds, req: RenderRequest) -> np.ndarray:
    """uint8 RGB (H, W, 3) of one frame of ``ds`` as drawn by VTK."""
    from app.imaging.scene import render_offscreen
    if "PixelData" not in ds:
        raise RenderError("this object has no image (a report, presentation state or other non-image object)")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if not 1 <= req.frame <= frames:
        raise RenderError(f"--frame {req.frame} is out of range: the image has {frames} frame(s)")
    window = None
    if req.window is not None:
        declared = pixels.file_windows(ds)
        function = declared[0].function if declared else pixels.LINEAR
        window = pixels.Window(req.window[0], req.window[1], function)
    try:
        stored = pixels.frame_array(ds, req.frame - 1)
        if window is None and not pixels.is_color(ds):  # the window shown is the one used
            window = pixels.default_window(ds, stored)
        img = pixels.display(ds, stored, window)
    except Exception as exc:  # noqa: BLE001 - undecodable pixels: say so, never a traceback
        raise RenderError(f"the pixel data cannot be decoded: {exc}") from None
    from app.imaging.decoders import incomplete
    note = incomplete(ds, req.frame - 1)
    if note:
        logging.getLogger(__name__).warning("frame %d: %s", req.frame, note)
    corners = markers = None
    if req.annotate:
        from app.imaging.image_text import ViewState, corner_text, orientation_markers
        shown = window
        zoom = min(req.size[0] / img.shape[1], req.size[1] / img.shape[0]) if req.size else 1.0
        position = ds.get("SliceLocation")
        corners = corner_text(ds, ViewState(req.image, max(req.images, frames), f"W {shown.width:g} L {shown.center:g}"
                                            if shown and img.ndim == 2 else "", f"{zoom:.2f}",
                                            f"{float(position):.1f} mm" if position not in (None, "") else ""))
        markers = orientation_markers(ds.get("ImageOrientationPatient"))
    return render_offscreen(img, req.size, corners, markers)


def render_path(path: Path, req: RenderRequest) -> np.ndarray:
    import pydicom
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001
        raise RenderError(f"{path} is not a readable DICOM file: {exc}") from None
    return render_dataset(ds, req)
