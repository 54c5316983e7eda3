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
        return f"Slice {view.image}/{max(int(ds.get('NumberOfFrames', 1) or 1), view.images)}"
    return f"Im {view.image}/{view.images}"


def _tomo(ds) -> bool:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return frames > 1 or "TOMOSYNTHESIS" in [str(v).upper() for v in (ds.get("ImageType") or [])]


def mg_tomo_derivation(ds, view) -> str:
    """Derivation Description, which Table 8-14 shows for tomosynthesis (not the compression
    note every lossless-compressed mammogram carries there)."""
    return str(ds.get("DerivationDescription", "") or "").strip() if _tomo(ds) else ""


FIELDS = {"mg_label": mg_label, "mg_acquired": mg_acquired, "mg_resolution": mg_resolution,
          "mg_counter": mg_counter, "mg_tomo_derivation": mg_tomo_derivation}
