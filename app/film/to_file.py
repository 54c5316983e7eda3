"""Print to file: film pages for a paper printer or a report, as one PDF whose pages have
the film's size, or as PNG files (one per film). 12-bit pages are written with 8 bits."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_pages(pages: list[np.ndarray], out: Path, dpi: float) -> list[Path]:
    """``out`` .pdf: one file, a page per film at ``dpi`` (so it prints at film size); else
    PNGs NAME.png, NAME-2.png ... The files written; OSError when they cannot be."""
    from PIL import Image
    images = [Image.fromarray(p if p.dtype.itemsize == 1 else (p >> 4).astype("u1")) for p in pages]
    if out.suffix.lower() == ".pdf":
        images[0].save(out, save_all=True, append_images=images[1:], resolution=float(dpi))
        return [out]
    names = [out if i == 0 else out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(len(images))]
    for image, name in zip(images, names):
        image.save(name, format="PNG")
    return names
