"""Print Management SCU (spec §4.2.1.3.7, Tables 4-27 to 4-42): one composed page
(app.film.compose) printed as STANDARD\\1,1 through the Basic Grayscale Print Management
Meta SOP Class — printer status (N-GET), film session and film box (N-CREATE), the image box
with the page (N-SET), print (N-ACTION), and what was created deleted again (N-DELETE).
Warning statuses continue and are logged; anything else fails the print with the reason."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.dicom.uids import new_uid

log = logging.getLogger(__name__)

GRAYSCALE_META = "1.2.840.10008.5.1.1.9"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
FILM_BOX = "1.2.840.10008.5.1.1.2"
GRAYSCALE_IMAGE_BOX = "1.2.840.10008.5.1.1.4"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"


class PrintFailed(Exception):
    """Why the film was not printed, for the user."""


@dataclass
class Film:
    """What the film box is created with (Table 4-31)."""
    size: str = "14INX17IN"
    orientation: str = "PORTRAIT"
    magnification: str = "NONE"
    medium: str = "BLUE FILM"
    copies: int = 1
    border_density: str | None = None
    min_density: int | None = None
    max_density: int | None = None


@dataclass
class Printed:
    printer_status: str = ""
    printer_status_info: str = ""
    warnings: list[str] = field(default_factory=list)
    # seconds per step: connect (association), session (N-GET, N-CREATEs), image (the page's
    # N-SET), print (N-ACTION), cleanup (N-DELETEs and release), total
    seconds: dict[str, float] = field(default_factory=dict)


def _check(status, what: str, node, warnings: list[str]) -> None:
    if status is None or "Status" not in status:
        raise PrintFailed(f"{node.aet} did not answer the {what} in time or dropped the association")
    code = int(status.Status)
    if code == 0:
        return
    if 0xB000 <= code <= 0xBFFF or code == 0x0107 or code == 0x0116:  # warnings: go on, logged
        warnings.append(f"{what}: warning 0x{code:04X}")
        log.warning("%s: %s answered the %s with warning 0x%04X", node.name, node.aet, what, code)
        return
    comment = str(status.get("ErrorComment", "") or "").strip()
    raise PrintFailed(f"{node.aet} refused the {what}: status 0x{code:04X}" + (f" ({comment})" if comment else ""))


def image_box_item(page: np.ndarray) -> Dataset:
    """The Basic Grayscale Image Sequence item of the page (Table 4-34: 8 or 12 bits,
    MONOCHROME2)."""
    item = Dataset()
    item.SamplesPerPixel, item.PhotometricInterpretation = 1, "MONOCHROME2"
    item.Rows, item.Columns = page.shape
    item.PixelAspectRatio = [1, 1]
    if page.dtype == np.uint8:
        item.BitsAllocated, item.BitsStored, item.HighBit = 8, 8, 7
    else:
        item.BitsAllocated, item.BitsStored, item.HighBit = 16, 12, 11
    item.PixelRepresentation = 0
    item.PixelData = np.ascontiguousarray(page).astype("<u2" if page.dtype != np.uint8 else "u1").tobytes()
    return item


def print_page(settings, node, page: np.ndarray, film: Film) -> Printed:
    """Print ``page`` (uint8, or uint16 holding 12 bits) on printer ``node``."""
    from pynetdicom import build_context

    from app.net.remote import AssociationFailed, open_association, scu_ae
    ae = scu_ae(settings)
    ae.dimse_timeout = settings["timeouts.message"]
    clock = _Clock()
    try:
        assoc = open_association(ae, settings, node, [build_context(GRAYSCALE_META)])
    except AssociationFailed as exc:
        raise PrintFailed(str(exc)) from None
    out = Printed(seconds=clock.seconds)
    clock.lap("connect")
    created: list[tuple[str, str]] = []
    try:
        status, printer = assoc.send_n_get([0x21100010, 0x21100020], PRINTER, PRINTER_INSTANCE,
                                           meta_uid=GRAYSCALE_META)
        _check(status, "printer status request (N-GET)", node, out.warnings)
        if printer is not None:
            out.printer_status = str(printer.get("PrinterStatus", "") or "")
            out.printer_status_info = str(printer.get("PrinterStatusInfo", "") or "")
        session = Dataset()
        session.NumberOfCopies, session.MediumType = film.copies, film.medium
        session_uid = new_uid()
        status, _ = assoc.send_n_create(session, FILM_SESSION, session_uid, meta_uid=GRAYSCALE_META)
        _check(status, "film session (N-CREATE)", node, out.warnings)
        created.append((FILM_SESSION, session_uid))
        box = Dataset()
        box.ImageDisplayFormat = "STANDARD\\1,1"
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = FILM_SESSION, session_uid
        box.ReferencedFilmSessionSequence = Sequence([ref])
        box.FilmOrientation, box.FilmSizeID, box.MagnificationType = film.orientation, film.size, film.magnification
        if film.border_density:
            box.BorderDensity = film.border_density
        if film.min_density is not None:
            box.MinDensity = film.min_density
        if film.max_density is not None:
            box.MaxDensity = film.max_density
        box_uid = new_uid()
        status, answer = assoc.send_n_create(box, FILM_BOX, box_uid, meta_uid=GRAYSCALE_META)
        _check(status, "film box (N-CREATE)", node, out.warnings)
        created.append((FILM_BOX, box_uid))
        boxes = answer.get("ReferencedImageBoxSequence") if answer is not None else None
        if not boxes:
            raise PrintFailed(f"{node.aet} created the film box without an image box to fill")
        clock.lap("session")
        image = Dataset()
        image.ImageBoxPosition = 1
        image.BasicGrayscaleImageSequence = Sequence([image_box_item(page)])
        status, _ = assoc.send_n_set(image, GRAYSCALE_IMAGE_BOX, boxes[0].ReferencedSOPInstanceUID,
                                     meta_uid=GRAYSCALE_META)
        _check(status, "image box (N-SET)", node, out.warnings)
        clock.lap("image")
        status, _ = assoc.send_n_action(None, 1, FILM_BOX, box_uid, meta_uid=GRAYSCALE_META)
        _check(status, "print (N-ACTION)", node, out.warnings)
        clock.lap("print")
        for class_uid, instance_uid in reversed(created):
            status = assoc.send_n_delete(class_uid, instance_uid, meta_uid=GRAYSCALE_META)
            _check(status, "clean-up (N-DELETE)", node, out.warnings)
        created.clear()
    finally:
        if assoc.is_established:
            assoc.release()
    clock.lap("cleanup")
    clock.seconds["total"] = time.perf_counter() - clock.start
    return out


class _Clock:
    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = now - self.last
        self.last = now
