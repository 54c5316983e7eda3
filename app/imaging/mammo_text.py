"""Image text of mammograms and tomosynthesis that is computed, not read (spec Table 8-14);
the lines themselves are the MG rows of resources/image_text.tsv, where these appear as
{mg_label}, {mg_acquired}, {mg_resolution}, {mg_counter}, {mg_tomo_derivation}."""

from __future__ import annotations

from app.dicom.formatting import date, time


def mg_label(ds, view) -> str:
    """"RCC", "LMLO ID", "R?" (a view or modifier that is not valid), "U" for unpaired."""
    from app.imaging.breast_views import breast_view
    return breast_view(ds).label


def mg_acquired(ds, view) -> str:
    """Acquisition date and time; else the study's, with the disclaimer the reference shows."""
    acquired = str(ds.get("AcquisitionDate", "") or "").strip()
    if acquired:
        return f"{date(acquired)} {time(str(ds.get('AcquisitionTime', '') or ''))}".strip()
    study = str(ds.get("StudyDate", "") or "").strip()
    if not study:
        return ""
    when = f"{date(study)} {time(str(ds.get('StudyTime', '') or ''))}".strip()
    return f"{when} (study date: acquisition date not set)"


def mg_resolution(ds, view) -> str:
    """mm per pixel in the breast and the magnification, by Table 8-14's variants A/B/C."""
    from app.imaging import pixels
    from app.imaging.stage_layout import mm_per_pixel
    mm, variant = mm_per_pixel(ds)
    if mm is None:
        return ""
    text = f"{mm:.3f} mm/px"
    if variant == "A":
        factor = pixels.floats(ds.get("EstimatedRadiographicMagnificationFactor"))
        if not factor:
            sid, sod = pixels.floats(ds.get("DistanceSourceToDetector")), pixels.floats(ds.get("DistanceSourceToPatient"))
            factor = [sid[0] / sod[0]] if sid and sod and sod[0] else []
        if factor:
            text += f"  mag {factor[0]:.2f}"
    return text


def mg_counter(ds, view) -> str:
    """"Slice n/N" through a tomosynthesis volume (Number of Frames), else "Im n/N"."""
    if _tomo(ds):
        text = f"Slice {view.image}/{max(int(ds.get('NumberOfFrames', 1) or 1), view.images)}"
        depth = _depth(ds)
        return f"{text}  {depth:.1f} mm" if depth is not None else text
    return f"Im {view.image}/{view.images}"


def _depth(ds) -> float | None:
    """The slice's position along its normal (mm), from the frame's Image Position and
    Image Orientation (Patient)."""
    from app.imaging import pixels
    position, orientation = pixels.floats(ds.get("ImagePositionPatient")), pixels.floats(ds.get("ImageOrientationPatient"))
    if len(position) != 3 or len(orientation) != 6:
        return None
    r, c = orientation[:3], orientation[3:]
    normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    return sum(p * n for p, n in zip(position, normal))


def _tomo(ds) -> bool:
    """Slices of a volume (not a synthesised 2D view, whose Image Type says GENERATED_2D)."""
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if "GENERATED_2D" in image_type:
        return False
    return int(ds.get("NumberOfFrames", 1) or 1) > 1 or "TOMOSYNTHESIS" in image_type


def mg_tomo_derivation(ds, view) -> str:
    """Derivation Description, which Table 8-14 shows for tomosynthesis (not the compression
    note every lossless-compressed mammogram carries there)."""
    return str(ds.get("DerivationDescription", "") or "").strip() if _tomo(ds) else ""


FIELDS = {"mg_label": mg_label, "mg_acquired": mg_acquired, "mg_resolution": mg_resolution,
          "mg_counter": mg_counter, "mg_tomo_derivation": mg_tomo_derivation}
