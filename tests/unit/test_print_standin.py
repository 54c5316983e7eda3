"""The STAND-IN printer (tests/print_standin.py) driven by a plain pynetdicom SCU — no
Lightbox code: what it records, scripted statuses, N-EVENT-REPORTs to the requestor, abort."""

from __future__ import annotations

import threading
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom import AE, build_context, evt

from tests.print_standin import (COLOR_IMAGE_BOX, COLOR_META, FILM_BOX, FILM_SESSION,
                                 GRAYSCALE_IMAGE_BOX, GRAYSCALE_META, PRESENTATION_LUT,
                                 PRINT_JOB, PRINTER, PRINTER_INSTANCE, StandinPrinter)


@pytest.fixture
def printer():
    with StandinPrinter() as p:
        yield p


def _associate(printer, contexts=(GRAYSCALE_META,), handlers=()):
    ae = AE("SCU")
    ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = 5
    assoc = ae.associate(printer.host, printer.port, [build_context(uid) for uid in contexts],
                         ae_title=printer.aet, evt_handlers=list(handlers))
    assert assoc.is_established
    return assoc


def _image_item(color: bool) -> Dataset:
    item = Dataset()
    item.Rows, item.Columns = 4, 3
    item.BitsAllocated, item.BitsStored, item.HighBit, item.PixelRepresentation = 8, 8, 7, 0
    if color:
        item.SamplesPerPixel, item.PhotometricInterpretation, item.PlanarConfiguration = 3, "RGB", 1
    else:
        item.SamplesPerPixel, item.PhotometricInterpretation = 1, "MONOCHROME2"
    item.PixelData = bytes(range(4 * 3 * item.SamplesPerPixel))
    return item


def _print(assoc, meta=GRAYSCALE_META, *, plut=False, after_action=None) -> dict:
    """One film, STANDARD\\1,1, the way a Print SCU does it; returns every status."""
    out = {}
    status, printer = assoc.send_n_get([0x21100010, 0x21100020], PRINTER, PRINTER_INSTANCE, meta_uid=meta)
    out["get"], out["printer"] = status.get("Status"), printer
    lut_uid = None
    if plut:
        lut = Dataset()
        lut.PresentationLUTShape = "IDENTITY"
        lut_uid = generate_uid()
        status, _ = assoc.send_n_create(lut, PRESENTATION_LUT, lut_uid)
        out["plut"] = status.get("Status")
    session = Dataset()
    session.NumberOfCopies, session.MediumType = 1, "BLUE FILM"
    session_uid = generate_uid()
    status, _ = assoc.send_n_create(session, FILM_SESSION, session_uid, meta_uid=meta)
    out["session"] = status.get("Status")
    box = Dataset()
    box.ImageDisplayFormat, box.FilmSizeID = "STANDARD\\1,1", "14INX17IN"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = FILM_SESSION, session_uid
    box.ReferencedFilmSessionSequence = Sequence([ref])
    if lut_uid:
        lref = Dataset()
        lref.ReferencedSOPClassUID, lref.ReferencedSOPInstanceUID = PRESENTATION_LUT, lut_uid
        box.ReferencedPresentationLUTSequence = Sequence([lref])
    box_uid = generate_uid()
    status, answer = assoc.send_n_create(box, FILM_BOX, box_uid, meta_uid=meta)
    out["box"], out["box_answer"] = status.get("Status"), answer
    if answer is None:
        return out
    image = Dataset()
    image.ImageBoxPosition = 1
    color = meta == COLOR_META
    image_class = COLOR_IMAGE_BOX if color else GRAYSCALE_IMAGE_BOX
    if color:
        image.BasicColorImageSequence = Sequence([_image_item(True)])
    else:
        image.BasicGrayscaleImageSequence = Sequence([_image_item(False)])
    status, _ = assoc.send_n_set(image, image_class, answer.ReferencedImageBoxSequence[0].ReferencedSOPInstanceUID,
                                 meta_uid=meta)
    out["set"] = status.get("Status")
    if out["set"] is None or out["set"] >= 0xC000:
        return out
    status, reply = assoc.send_n_action(None, 1, FILM_BOX, box_uid, meta_uid=meta)
    out["action"], out["action_reply"] = status.get("Status"), reply
    if after_action:
        after_action()
    out["delete_box"] = assoc.send_n_delete(FILM_BOX, box_uid, meta_uid=meta).get("Status")
    out["delete_session"] = assoc.send_n_delete(FILM_SESSION, session_uid, meta_uid=meta).get("Status")
    return out


def test_a_grayscale_print_is_recorded(printer):
    assoc = _associate(printer, (GRAYSCALE_META, PRESENTATION_LUT))
    out = _print(assoc, plut=True)
    assoc.release()
    steps = ("get", "plut", "session", "box", "set", "action", "delete_box", "delete_session")
    assert [out[k] for k in steps] == [0] * len(steps)
    assert out["printer"].PrinterStatus == "NORMAL" and out["printer"].PrinterStatusInfo == "NORMAL"
    [item] = out["box_answer"].ReferencedImageBoxSequence
    assert item.ReferencedSOPClassUID == GRAYSCALE_IMAGE_BOX
    [film] = printer.films
    assert film["film_box"].ImageDisplayFormat == "STANDARD\\1,1"
    assert film["session"].MediumType == "BLUE FILM"
    assert film["presentation_lut"].PresentationLUTShape == "IDENTITY"
    assert film["meta"] == GRAYSCALE_META and film["calling_aet"] == "SCU"
    [image] = film["images"]
    assert image.BasicGrayscaleImageSequence[0].PixelData == bytes(range(12))
    assert [r[0] for r in printer.requests] == ["N-GET", "N-CREATE", "N-CREATE", "N-CREATE", "N-SET",
                                                "N-ACTION", "N-DELETE", "N-DELETE"]
    assert printer.requests[4][1] == GRAYSCALE_IMAGE_BOX
    assert not printer.film_boxes and not printer.sessions


def test_a_color_print_gets_color_image_boxes(printer):
    assoc = _associate(printer, (COLOR_META,))
    out = _print(assoc, COLOR_META)
    assoc.release()
    assert out["box_answer"].ReferencedImageBoxSequence[0].ReferencedSOPClassUID == COLOR_IMAGE_BOX
    assert out["set"] == 0 and out["action"] == 0
    [film] = printer.films
    assert film["meta"] == COLOR_META and film["presentation_lut"] is None
    assert film["images"][0].BasicColorImageSequence[0].PhotometricInterpretation == "RGB"


def test_a_scripted_failure_on_the_image_box_is_answered_and_nothing_printed(printer):
    printer.statuses[("N-SET", "image")] = (0xC603, "image larger than the box")
    assoc = _associate(printer)
    out = _print(assoc)
    again = Dataset()
    again.ImageBoxPosition = 1
    failed = assoc.send_n_set(again, GRAYSCALE_IMAGE_BOX, "1.2.3", meta_uid=GRAYSCALE_META)[0]
    assoc.release()
    assert out["set"] == 0xC603 and "action" not in out
    assert failed.Status == 0xC603 and failed.ErrorComment == "image larger than the box"
    assert printer.films == [] and all(ds is None for ds in printer.image_boxes.values())


def test_a_scripted_warning_goes_on_as_success(printer):
    printer.statuses[("N-CREATE", FILM_BOX)] = 0xB605
    printer.statuses[("N-ACTION", None)] = 0xB603
    assoc = _associate(printer)
    out = _print(assoc)
    assoc.release()
    assert (out["box"], out["set"], out["action"]) == (0xB605, 0, 0xB603)
    assert out["box_answer"].ReferencedImageBoxSequence and len(printer.films) == 1


def test_printer_status_can_be_film_jam(printer):
    printer.printer_status, printer.printer_status_info = "FAILURE", "FILM JAM"
    assoc = _associate(printer)
    status, ds = assoc.send_n_get([0x21100010, 0x21100020], PRINTER, PRINTER_INSTANCE, meta_uid=GRAYSCALE_META)
    assoc.release()
    assert status.Status == 0 and (ds.PrinterStatus, ds.PrinterStatusInfo) == ("FAILURE", "FILM JAM")


def test_an_event_report_film_jam_reaches_the_requestor(printer):
    info = Dataset()
    info.PrinterStatusInfo = "FILM JAM"
    printer.events = [(PRINTER, None, 3, info)]
    received, arrived = [], threading.Event()

    def on_report(event):  # runs in a thread of its own, not the caller of send_n_action
        received.append((str(event.request.AffectedSOPClassUID), str(event.request.AffectedSOPInstanceUID),
                         event.event_type, event.event_information.PrinterStatusInfo,
                         event.context.abstract_syntax))
        arrived.set()
        return 0x0000, None

    assoc = _associate(printer, handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    out = _print(assoc, after_action=lambda: arrived.wait(5))
    assoc.release()
    assert received == [(PRINTER, PRINTER_INSTANCE, 3, "FILM JAM", GRAYSCALE_META)]
    # the requests after the N-ACTION are still answered properly
    assert (out["action"], out["delete_box"], out["delete_session"]) == (0, 0, 0)
    assert printer.wait_event_replies(1) == [(PRINTER, PRINTER_INSTANCE, 3, 0)]


def test_print_job_events_go_on_the_print_job_context(printer):
    done = Dataset()
    done.ExecutionStatusInfo = "NORMAL"
    printer.events = [(PRINT_JOB, None, 3, done)]
    received = []
    assoc = _associate(printer, (GRAYSCALE_META, PRINT_JOB),
                       handlers=[(evt.EVT_N_EVENT_REPORT,
                                  lambda e: received.append((e.event_type, e.context.abstract_syntax,
                                                             str(e.request.AffectedSOPInstanceUID))) or (0, None))])
    out = _print(assoc)
    assoc.release()
    job = out["action_reply"].ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID
    assert printer.wait_event_replies(1) == [(PRINT_JOB, job, 3, 0)]
    assert received == [(3, PRINT_JOB, job)]


def test_abort_on_the_image_box_drops_the_association(printer):
    printer.abort_on = "N-SET"
    assoc = _associate(printer)
    started = time.monotonic()
    out = _print(assoc)
    assert out["set"] is None and "action" not in out
    assert time.monotonic() - started < 3  # dropped, not a DIMSE timeout
    deadline = time.monotonic() + 3
    while not assoc.is_aborted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert assoc.is_aborted and not assoc.is_established
    assert printer.aborts == 1 and printer.films == []
    assert printer.requests[-1][0] == "N-SET"
