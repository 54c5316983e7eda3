"""Print Management SCU (spec §4.2.1.3.7, Tables 4-27 to 4-42): composed pages
(app.film.compose / app.film.sheet) printed as STANDARD\\1,1 films through the Basic
Grayscale Print Management Meta SOP Class, or Basic Color for colour films — printer status
(N-GET), film session, Presentation LUT and film box (N-CREATE), the image box with the page
(N-SET), print (N-ACTION), and what was created deleted again (N-DELETE). Every status is read
through the tables of app.film.print_status: warnings continue and are logged, failures stop
the job with the reason in plain words. Printer and Print Job N-EVENT-REPORTs that arrive on
the association are answered and passed on (the camera status of spec §8.6)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.sop_class import BasicColorImageBox as COLOR_IMAGE_BOX
from pynetdicom.sop_class import BasicColorPrintManagementMeta as COLOR_META
from pynetdicom.sop_class import BasicFilmBox as FILM_BOX
from pynetdicom.sop_class import BasicFilmSession as FILM_SESSION
from pynetdicom.sop_class import BasicGrayscaleImageBox as GRAYSCALE_IMAGE_BOX
from pynetdicom.sop_class import BasicGrayscalePrintManagementMeta as GRAYSCALE_META
from pynetdicom.sop_class import PresentationLUT as PRESENTATION_LUT
from pynetdicom.sop_class import Printer as PRINTER
from pynetdicom.sop_class import PrinterInstance as PRINTER_INSTANCE
from pynetdicom.sop_class import PrintJob as PRINT_JOB

from app.dicom.uids import new_uid
from app.film import print_status

log = logging.getLogger(__name__)


class PrintFailed(Exception):
    """Why the film was not printed, for the user."""


class PrinterUnavailable(PrintFailed):
    """No association with the printer (down, unreachable, busy): the job waits and tries again."""


class PrintDropped(PrintFailed):
    """The printer dropped the association or stopped answering during the job."""


class PrintRefused(PrintFailed):
    """The printer answered a failure status (Tables 4-30 to 4-39)."""

    def __init__(self, message: str, code: int, resume_at: int | None = None):
        super().__init__(message)
        self.code = code
        self.resume_at = resume_at  # the first film not printed, when one already accepted failed


class PrinterStopped(PrintFailed):
    """The printer's status stops its queue (spec §8.6) until an operator restarts it."""

    def __init__(self, state):
        super().__init__(state.message)
        self.state = state


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
    films: int = 0  # printed (N-ACTION answered)
    events: list[str] = field(default_factory=list)  # N-EVENT-REPORTs, as received


def _check(status, key: str, what: str, node, out: Printed) -> None:
    if status is None or "Status" not in status:
        raise PrintDropped(f"{node.aet} dropped the connection or did not answer the {what} in time")
    code = int(status.Status)
    meaning = print_status.dimse_status(key, code)
    if meaning.status == "success":
        return
    if meaning.status == "warning":
        out.warnings.append(f"{what}: {meaning.meaning} (0x{code:04X})")
        log.warning("%s: %s answered the %s with warning 0x%04X: %s", node.name, node.aet, what, code, meaning.meaning)
        return
    comment = str(status.get("ErrorComment", "") or "").strip()
    log.error("%s: %s refused the %s: 0x%04X %s%s", node.name, node.aet, what, code, meaning.meaning,
              f" ({comment})" if comment else "")
    raise PrintRefused(print_status.plain_words(meaning) + f" Refused request: {what}."
                       + (f" The printer said: {comment}." if comment else ""),
                       code)


def image_box_item(page: np.ndarray) -> Dataset:
    """The Basic Grayscale (Table 4-34: 8 or 12 bits, MONOCHROME2) or Basic Color (Table
    4-36: RGB, 8 bits, colour-by-pixel) Image Sequence item of the page."""
    item = Dataset()
    item.Rows, item.Columns = page.shape[:2]
    item.PixelAspectRatio = [1, 1]
    if page.ndim == 3:
        item.SamplesPerPixel, item.PhotometricInterpretation, item.PlanarConfiguration = 3, "RGB", 0
        item.BitsAllocated, item.BitsStored, item.HighBit = 8, 8, 7
    else:
        item.SamplesPerPixel, item.PhotometricInterpretation = 1, "MONOCHROME2"
        if page.dtype == np.uint8:
            item.BitsAllocated, item.BitsStored, item.HighBit = 8, 8, 7
        else:
            item.BitsAllocated, item.BitsStored, item.HighBit = 16, 12, 11
    item.PixelRepresentation = 0
    item.PixelData = np.ascontiguousarray(page).astype("<u2" if page.dtype != np.uint8 else "u1", copy=False).tobytes()
    return item


def printer_status(settings, node) -> tuple[str, str]:
    """(Printer Status, Printer Status Info) by N-GET (Table 4-41); PrinterUnavailable or
    PrintDropped when it cannot be asked."""
    from pynetdicom import build_context

    from app.net.remote import AssociationFailed, open_association, scu_ae
    ae = scu_ae(settings)
    ae.dimse_timeout = settings["timeouts.message"]
    try:
        assoc = open_association(ae, settings, node, [build_context(GRAYSCALE_META), build_context(COLOR_META)])
    except AssociationFailed as exc:
        raise PrinterUnavailable(str(exc)) from None
    try:
        meta = GRAYSCALE_META if _accepted(assoc, GRAYSCALE_META) else COLOR_META
        status, printer = assoc.send_n_get([0x21100010, 0x21100020], PRINTER, PRINTER_INSTANCE, meta_uid=meta)
        _check(status, "printer-get", "printer status request (N-GET)", node, Printed())
        return (str(printer.get("PrinterStatus", "") or "") if printer is not None else "",
                str(printer.get("PrinterStatusInfo", "") or "") if printer is not None else "")
    finally:
        if assoc.is_established:
            assoc.release()


def _accepted(assoc, uid: str) -> bool:
    return any(c.abstract_syntax == uid for c in assoc.accepted_contexts)


def print_page(settings, node, page: np.ndarray, film: Film, **kw) -> Printed:
    """Print ``page`` (uint8, uint16 holding 12 bits, or uint8 RGB) on printer ``node``."""
    return print_films(settings, node, [page], film, **kw)


def print_films(settings, node, pages: list[np.ndarray], film: Film, *, presentation_lut: bool = False,
                on_status: Callable[[str, str], None] | None = None,
                on_film: Callable[[int], None] | None = None, start: int = 0) -> Printed:
    """Print ``pages`` from ``start`` on, one film box each, in one film session on one
    association. ``on_status(printer status, info)``: the N-GET answer and every Printer
    N-EVENT-REPORT; ``on_film(i)``: film i was accepted for printing (N-ACTION answered).
    A status that stops the printer's queue (§8.6) raises PrinterStopped before anything is
    created; PrintRefused, PrintDropped and PrinterUnavailable say why the rest was not printed."""
    from pynetdicom import build_context, evt

    from app.net.remote import AssociationFailed, open_association, scu_ae
    color = any(p is not None and p.ndim == 3 for p in pages)
    meta = COLOR_META if color else GRAYSCALE_META
    image_class = COLOR_IMAGE_BOX if color else GRAYSCALE_IMAGE_BOX
    ae = scu_ae(settings)
    ae.dimse_timeout = settings["timeouts.message"]
    clock = _Clock()
    out = Printed(seconds=clock.seconds)
    job_failure: list[tuple[str, str]] = []  # (Execution Status Info, Print Job UID) of failed print jobs
    film_of_job: dict[str, int] = {}  # Print Job UID (N-ACTION answer) -> the film it prints

    def on_event(event) -> tuple[int, None]:
        """Printer and Print Job N-EVENT-REPORTs (Tables 4-40, 4-42): answered, passed on."""
        info = event.event_information or Dataset()
        klass, kind = str(event.request.AffectedSOPClassUID), int(event.event_type)
        if klass == PRINTER:
            status = {1: "NORMAL", 2: "WARNING", 3: "FAILURE"}.get(kind, "")
            detail = str(info.get("PrinterStatusInfo", "") or "")
            out.events.append(f"printer {status} {detail}".strip())
            if on_status:
                on_status(status, detail)
        elif klass == PRINT_JOB:
            state = {1: "PENDING", 2: "PRINTING", 3: "DONE", 4: "FAILURE"}.get(kind, str(kind))
            detail = str(info.get("ExecutionStatusInfo", "") or "")
            out.events.append(f"print job {state} {detail}".strip())
            if kind == 4:
                job_failure.append((detail or "UNKNOWN", str(event.request.AffectedSOPInstanceUID or "")))
        log.info("%s: %s reported %s", node.name, node.aet, out.events[-1] if out.events else kind)
        return 0x0000, None

    # both metas: a printer that refuses the one needed still accepts the association (a refusal, not an abort)
    contexts = [build_context(GRAYSCALE_META), build_context(COLOR_META), build_context(PRINT_JOB)]
    if presentation_lut:
        contexts.append(build_context(PRESENTATION_LUT))
    try:
        assoc = open_association(ae, settings, node, contexts,
                                 evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_event)])
    except AssociationFailed as exc:
        raise PrinterUnavailable(str(exc)) from None
    if not _accepted(assoc, meta):
        assoc.release()
        what = "colour" if color else "grayscale"
        raise PrintRefused(f"{node.aet} does not print {what} films (it refused the Basic "
                           f"{'Color' if color else 'Grayscale'} Print Management Meta SOP Class). Choose another printer"
                           + (" or a grayscale film." if color else "."), 0x0122)
    clock.lap("connect")
    created: list[tuple[str, str]] = []
    try:
        status, printer = assoc.send_n_get([0x21100010, 0x21100020], PRINTER, PRINTER_INSTANCE, meta_uid=meta)
        _check(status, "printer-get", "printer status request (N-GET)", node, out)
        if printer is not None:
            out.printer_status = str(printer.get("PrinterStatus", "") or "")
            out.printer_status_info = str(printer.get("PrinterStatusInfo", "") or "")
            if on_status:
                on_status(out.printer_status, out.printer_status_info)
            state = print_status.camera_state(out.printer_status, out.printer_status_info)
            if state.stops_queue:
                raise PrinterStopped(state)
        session = Dataset()
        session.NumberOfCopies, session.MediumType = film.copies, film.medium
        session_uid = new_uid()
        status, _ = assoc.send_n_create(session, FILM_SESSION, session_uid, meta_uid=meta)
        _check(status, "film-session-create", "film session (N-CREATE)", node, out)
        created.append((FILM_SESSION, session_uid))
        lut_uid = None
        if presentation_lut and _accepted(assoc, PRESENTATION_LUT):
            lut = Dataset()
            lut.PresentationLUTShape = "IDENTITY"
            lut_uid = new_uid()
            status, _ = assoc.send_n_create(lut, PRESENTATION_LUT, lut_uid)
            _check(status, "presentation-lut-create", "Presentation LUT (N-CREATE)", node, out)
            created.append((PRESENTATION_LUT, lut_uid))
        elif presentation_lut:
            out.warnings.append(f"{node.aet} refused the Presentation LUT SOP Class: printed without one")
            log.warning("%s: %s refused Presentation LUT; printing without", node.name, node.aet)
        clock.lap("session")
        for i in range(start, len(pages)):
            box_uid = _film_box(assoc, node, out, film, meta, session_uid, lut_uid)
            created.append((FILM_BOX, box_uid[0]))
            image = Dataset()
            image.ImageBoxPosition = 1
            item = image_box_item(pages[i])
            if color:
                image.BasicColorImageSequence = Sequence([item])
            else:
                image.BasicGrayscaleImageSequence = Sequence([item])
            status, _ = assoc.send_n_set(image, image_class, box_uid[1], meta_uid=meta)
            _check(status, "color-image-set" if color else "grayscale-image-set", "image box (N-SET)", node, out)
            clock.lap("image")
            status, answer = assoc.send_n_action(None, 1, FILM_BOX, box_uid[0], meta_uid=meta)
            _check(status, "film-box-action", "print (N-ACTION)", node, out)
            for ref in (answer.get("ReferencedPrintJobSequence") or []) if answer is not None else []:
                film_of_job[str(ref.ReferencedSOPInstanceUID)] = i
            if job_failure:
                raise _job_failed(node, job_failure, film_of_job, i)
            out.films += 1
            if on_film:
                on_film(i)
            clock.lap("print")
            status = assoc.send_n_delete(FILM_BOX, box_uid[0], meta_uid=meta)
            created.pop()
            _check(status, "delete", "clean-up of the film box (N-DELETE)", node, out)
        for class_uid, instance_uid in reversed(created):
            status = assoc.send_n_delete(class_uid, instance_uid, meta_uid=meta if class_uid != PRESENTATION_LUT else None)
            _check(status, "delete", "clean-up (N-DELETE)", node, out)
        created.clear()
        if job_failure:  # a Print Job report handled while the clean-up went on (its own thread)
            raise _job_failed(node, job_failure, film_of_job, len(pages) - 1)
    finally:
        if out.events and assoc.is_established:
            # pynetdicom answers an N-EVENT-REPORT from its own thread once our handler has
            # returned; a release at once (a failure just reported) could overtake that answer
            time.sleep(0.25)
        if assoc.is_established:
            assoc.release()
    clock.lap("cleanup")
    clock.seconds["total"] = time.perf_counter() - clock.start
    return out


def _job_failed(node, failures: list[tuple[str, str]], film_of_job: dict[str, int], last: int) -> PrintRefused:
    """The printer reported a print job FAILURE (Table 4-42): the film of that job (by its
    Print Job UID; the last one sent if the printer gave none) and those after it were not
    printed, whatever the N-ACTION said."""
    info, job_uid = failures[0]
    film = film_of_job.get(job_uid, last)
    return PrintRefused(f"{node.aet} reported that printing film {film + 1} failed: "
                        f"{print_status.camera_state('FAILURE', info).message}", 0xC000, resume_at=film)


def _film_box(assoc, node, out: Printed, film: Film, meta: str, session_uid: str,
              lut_uid: str | None) -> tuple[str, str]:
    """N-CREATE one film box (Table 4-31): (its UID, its image box's UID)."""
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
    if lut_uid:
        lut = Dataset()
        lut.ReferencedSOPClassUID, lut.ReferencedSOPInstanceUID = PRESENTATION_LUT, lut_uid
        box.ReferencedPresentationLUTSequence = Sequence([lut])
    box_uid = new_uid()
    status, answer = assoc.send_n_create(box, FILM_BOX, box_uid, meta_uid=meta)
    _check(status, "film-box-create", "film box (N-CREATE)", node, out)
    boxes = answer.get("ReferencedImageBoxSequence") if answer is not None else None
    if not boxes:
        raise PrintRefused(f"{node.aet} created the film box without an image box to fill", 0x0110)
    return box_uid, str(boxes[0].ReferencedSOPInstanceUID)


class _Clock:
    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = now - self.last
        self.last = now
