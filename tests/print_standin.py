"""STAND-IN printer for tests — NOT a real printer peer.

The real Print Management peer of the tests is DCMTK ``dcmprscp``. This pynetdicom SCP
stands in for it ONLY where dcmprscp cannot go:

* Basic Color Print Management (1.2.840.10008.5.1.1.18),
* scripted failure / warning statuses (0xC603, 0xC613, 0xC605, 0xC616, 0xB605, 0xB603, ...),
* a printer that reports FILM JAM (N-GET status) or sends N-EVENT-REPORTs, or that drops the
  association mid-job (A-ABORT).

Everything else is tested against dcmprscp. Use as a context manager::

    with StandinPrinter() as printer:          # listening on 127.0.0.1:printer.port
        printer.statuses[("N-SET", "image")] = 0xC603
        ...
        assert printer.films == []

Scripting keys (``statuses`` and ``abort_on``) are ``(dimse, target)``:

* ``dimse`` is one of ``"N-GET"``, ``"N-CREATE"``, ``"N-SET"``, ``"N-ACTION"``, ``"N-DELETE"``;
* ``target`` is a SOP Class UID (e.g. ``"1.2.840.10008.5.1.1.2"``), or an alias:
  ``"printer"``, ``"session"``, ``"film box"``, ``"image"`` (grayscale or color image box),
  ``"plut"`` (Presentation LUT), ``"print job"``; or ``None`` for any SOP class.

A request looks up ``(dimse, class uid)``, then ``(dimse, alias)``, then ``(dimse, None)``.
A ``statuses`` value is an ``int`` status, or ``(int, "error comment")``. A failure status
(anything but 0x0000, 0xBxxx, 0x0107, 0x0116) is answered instead of doing the operation:
nothing is stored, created or printed. A warning status does the operation as on success
but answers with that code. ``abort_on`` is a dimse name (``"N-SET"``) or a key as above:
the stand-in sends A-ABORT instead of answering that request.

N-EVENT-REPORTs: after answering an N-ACTION (whatever its status), the stand-in sends every
``events`` entry ``(class uid, instance uid, event type id, Dataset or None)`` to the SCU on
the same association, right behind the N-ACTION response on the wire (before the SCU can send
its next request). Instance ``None`` means the Printer instance (1.2.840.10008.5.1.1.17) for
the Printer SOP Class and the Print Job just created for the Print Job SOP Class. Printer
events go on the Print Management Meta context the N-ACTION came on; Print Job events on the
Print Job context, and are not sent if the SCU did not negotiate one. The SCU's answers land
in ``event_replies``: ``(class uid, instance uid, event type, status or None)`` — ``None``
when no answer came (or no context). The requests are sent without waiting for the answers
(pynetdicom's blocking ``Association.send_n_event_report`` would take the SCU's next request,
e.g. its N-DELETE, off the queue as if it were the answer, and abort).
"""

from __future__ import annotations

import threading
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import N_ACTION, N_EVENT_REPORT
from pynetdicom.dsutils import encode
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

VERIFICATION = "1.2.840.10008.1.1"

ALIASES = {
    PRINTER: "printer", FILM_SESSION: "session", FILM_BOX: "film box",
    GRAYSCALE_IMAGE_BOX: "image", COLOR_IMAGE_BOX: "image", PRESENTATION_LUT: "plut",
    PRINT_JOB: "print job",
}
TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
N_EVENT_REPORT_RSP = 0x8100


def is_warning(code: int) -> bool:
    return 0xB000 <= code <= 0xBFFF or code in (0x0107, 0x0116)


def _has(stream) -> bool:
    return stream is not None and bool(stream.getvalue())


def _image_box_count(display_format: str) -> int:
    """How many image boxes a film box of this Image Display Format has (STANDARD\\C,R: C*R;
    ROW\\ or COL\\: the sum; anything else: one)."""
    kind, _, spec = str(display_format or "").partition("\\")
    try:
        numbers = [int(n) for n in spec.split(",")]
    except ValueError:
        return 1
    if kind == "STANDARD" and len(numbers) == 2:
        return max(1, numbers[0] * numbers[1])
    if kind in ("ROW", "COL") and numbers:
        return max(1, sum(numbers))
    return 1


class StandinPrinter:
    """A STAND-IN pynetdicom Print SCP (see the module docstring) — not a real printer.

    Attributes the test reads or sets while it runs:

    * ``port``, ``aet`` (default ``"STANDIN"``), ``host`` (127.0.0.1);
    * ``printer_status`` / ``printer_status_info`` (``"NORMAL"``): the N-GET answer on the
      Printer, e.g. ``"FAILURE"`` / ``"FILM JAM"``;
    * ``statuses``: scripted answers, ``abort_on``: where to drop the association,
      ``events``: N-EVENT-REPORTs sent after each N-ACTION answer (module docstring);
    * ``requests``: every request as ``(dimse, sop class uid, instance uid, dataset or None)``
      (dataset: N-CREATE attribute list, N-SET modification list, N-ACTION information;
      ``"C-ECHO"`` requests too);
    * ``films``: printed films, dicts with ``film_box``, ``images`` (the image box datasets
      as received by N-SET, in Image Box Position order, boxes never set left out),
      ``session``, ``presentation_lut`` (the Presentation LUT the film box references, or
      None), ``meta`` (meta SOP Class UID), ``print_job`` (Print Job UID), ``calling_aet``;
    * ``associations``: ``(calling aet, [accepted abstract syntaxes])`` per association;
    * ``aborts``: how many associations the stand-in aborted (``abort_on``);
    * ``event_replies``: the SCU's answers to the event reports.
    """

    def __init__(self, aet: str = "STANDIN", *, printer_status: str = "NORMAL",
                 printer_status_info: str = "NORMAL", statuses: dict | None = None,
                 abort_on=None, events: list | None = None):
        self.aet = aet
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.printer_status = printer_status
        self.printer_status_info = printer_status_info
        self.statuses: dict = dict(statuses or {})
        self.abort_on = abort_on
        self.events: list = list(events or [])
        self.requests: list[tuple] = []
        self.films: list[dict] = []
        self.associations: list[tuple[str, list[str]]] = []
        self._replies: list[list] = []
        self._replied = threading.Condition(threading.RLock())
        self.aborts = 0
        # created instances: uid -> Dataset (sessions, film boxes, image boxes, LUTs)
        self.sessions: dict[str, Dataset] = {}
        self.film_boxes: dict[str, Dataset] = {}
        self.image_boxes: dict[str, Dataset | None] = {}
        self.presentation_luts: dict[str, Dataset] = {}
        self._box_images: dict[str, list[str]] = {}   # film box uid -> its image box uids
        self._box_session: dict[str, str] = {}        # film box uid -> film session uid
        self._lock = self._replied
        self._pending: dict[int, list] = {}           # message id -> event_replies entry
        self._msg_id = 0x7000
        self._ae: AE | None = None
        self._server = None

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> "StandinPrinter":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        ae = AE(self.aet)
        ae.maximum_pdu_size = 0
        for uid in (GRAYSCALE_META, COLOR_META, PRESENTATION_LUT, PRINT_JOB, VERIFICATION):
            ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        handlers = [
            (evt.EVT_C_ECHO, self._on_echo), (evt.EVT_N_GET, self._on_get),
            (evt.EVT_N_CREATE, self._on_create), (evt.EVT_N_SET, self._on_set),
            (evt.EVT_N_ACTION, self._on_action), (evt.EVT_N_DELETE, self._on_delete),
            (evt.EVT_ESTABLISHED, self._on_established), (evt.EVT_DIMSE_RECV, self._on_dimse_recv),
        ]
        self._ae = ae
        self._server = ae.start_server((self.host, 0), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- helpers ------------------------------------------------------------------------
    def _lookup(self, table, dimse: str, class_uid: str):
        for key in ((dimse, class_uid), (dimse, ALIASES.get(class_uid)), (dimse, None)):
            if key in table:
                return table[key]
        return None

    def _scripted(self, dimse: str, class_uid: str):
        """The scripted status as (code, Dataset for the response status), or (0, None)."""
        value = self._lookup(self.statuses, dimse, class_uid)
        if value is None:
            return 0, None
        code, comment = (value if isinstance(value, tuple) else (value, None))
        status = Dataset()
        status.Status = int(code)
        if comment:
            status.ErrorComment = comment
        return int(code), status

    def _should_abort(self, dimse: str, class_uid: str) -> bool:
        rule = self.abort_on
        if rule is None:
            return False
        if isinstance(rule, str):
            return rule == dimse
        return self._lookup({tuple(rule): True}, dimse, class_uid) is True

    def _record(self, dimse, class_uid, instance_uid, ds) -> None:
        with self._lock:
            self.requests.append((dimse, str(class_uid) if class_uid else None,
                                  str(instance_uid) if instance_uid else None, ds))

    def _abort(self, event) -> None:
        with self._lock:
            self.aborts += 1
        event.assoc.abort()  # non-blocking inside a handler; no response is sent after it

    def _begin(self, event, dimse: str, class_uid, instance_uid, ds):
        """Record the request; returns (abort?, scripted code, status dataset)."""
        self._record(dimse, class_uid, instance_uid, ds)
        if self._should_abort(dimse, str(class_uid)):
            self._abort(event)
            return True, 0, None
        code, status = self._scripted(dimse, str(class_uid))
        return False, code, status

    @staticmethod
    def _answer(status):
        """The response status: the scripted warning, or success."""
        return status if status is not None else 0x0000

    # -- handlers -----------------------------------------------------------------------
    def _on_established(self, event) -> None:
        assoc = event.assoc
        with self._lock:
            self.associations.append((assoc.requestor.ae_title,
                                      [str(cx.abstract_syntax) for cx in assoc.accepted_contexts]))

    def _on_echo(self, event):
        self._record("C-ECHO", VERIFICATION, None, None)
        return 0x0000

    def _on_get(self, event):
        req = event.request
        class_uid, instance_uid = req.RequestedSOPClassUID, req.RequestedSOPInstanceUID
        aborted, code, status = self._begin(event, "N-GET", class_uid, instance_uid, None)
        if aborted:
            return 0x0110, None
        if code and not is_warning(code):
            return status, None
        if class_uid == PRINTER:
            ds = Dataset()
            ds.PrinterStatus = self.printer_status
            ds.PrinterStatusInfo = self.printer_status_info
            ds.PrinterName = "STANDIN"
            ds.Manufacturer = "Lightbox tests (stand-in)"
        else:
            with self._lock:
                found = (self.sessions.get(instance_uid) or self.film_boxes.get(instance_uid)
                         or self.presentation_luts.get(instance_uid))
            if found is None:
                return 0x0112, None
            ds = Dataset()
            ds.update(found)
        wanted = list(event.attribute_identifiers or [])
        if wanted:
            kept = Dataset()
            for tag in wanted:
                if tag in ds:
                    kept.add(ds[tag])
            ds = kept
        return self._answer(status), ds

    def _on_create(self, event):
        req = event.request
        class_uid = req.AffectedSOPClassUID
        attrs = event.attribute_list
        aborted, code, status = self._begin(event, "N-CREATE", class_uid, req.AffectedSOPInstanceUID, attrs)
        if aborted:
            return 0x0110, None
        if code and not is_warning(code):
            return status, None
        instance_uid = req.AffectedSOPInstanceUID or generate_uid()
        answer = Dataset()
        answer.update(attrs)
        if req.AffectedSOPInstanceUID is None:
            answer.AffectedSOPInstanceUID = instance_uid
        with self._lock:
            if class_uid == FILM_SESSION:
                self.sessions[instance_uid] = attrs
            elif class_uid == PRESENTATION_LUT:
                self.presentation_luts[instance_uid] = attrs
            elif class_uid == FILM_BOX:
                refs = attrs.get("ReferencedFilmSessionSequence") or []
                session_uid = str(refs[0].ReferencedSOPInstanceUID) if refs else ""
                if session_uid not in self.sessions:
                    bad = Dataset()
                    bad.Status, bad.ErrorComment = 0x0106, "no such film session"
                    return bad, None
                meta = str(event.context.abstract_syntax)
                box_class = COLOR_IMAGE_BOX if meta == COLOR_META else GRAYSCALE_IMAGE_BOX
                items, uids = [], []
                for _ in range(_image_box_count(attrs.get("ImageDisplayFormat", ""))):
                    item = Dataset()
                    item.ReferencedSOPClassUID = box_class
                    item.ReferencedSOPInstanceUID = generate_uid()
                    items.append(item)
                    uids.append(str(item.ReferencedSOPInstanceUID))
                    self.image_boxes[uids[-1]] = None
                answer.ReferencedImageBoxSequence = Sequence(items)
                self.film_boxes[instance_uid] = attrs
                self._box_images[instance_uid] = uids
                self._box_session[instance_uid] = session_uid
            else:
                return 0x0118, None  # no such SOP class
        return self._answer(status), answer

    def _on_set(self, event):
        req = event.request
        class_uid, instance_uid = req.RequestedSOPClassUID, str(req.RequestedSOPInstanceUID)
        mods = event.modification_list
        aborted, code, status = self._begin(event, "N-SET", class_uid, instance_uid, mods)
        if aborted:
            return 0x0110, None
        if code and not is_warning(code):
            return status, None
        with self._lock:
            if class_uid in (GRAYSCALE_IMAGE_BOX, COLOR_IMAGE_BOX):
                if instance_uid not in self.image_boxes:
                    return 0x0112, None
                self.image_boxes[instance_uid] = mods
            else:
                store = {FILM_SESSION: self.sessions, FILM_BOX: self.film_boxes}.get(class_uid)
                if store is None or instance_uid not in store:
                    return 0x0112, None
                store[instance_uid].update(mods)
        return self._answer(status), Dataset()

    def _film(self, box_uid: str, meta: str, calling_aet: str, job_uid: str) -> dict:
        box = self.film_boxes[box_uid]
        images = [self.image_boxes[u] for u in self._box_images.get(box_uid, [])
                  if self.image_boxes.get(u) is not None]
        images.sort(key=lambda ds: int(ds.get("ImageBoxPosition", 0) or 0))
        lut = None
        refs = box.get("ReferencedPresentationLUTSequence") or []
        if refs:
            lut = self.presentation_luts.get(str(refs[0].ReferencedSOPInstanceUID))
        return {"film_box": box, "images": images,
                "session": self.sessions.get(self._box_session.get(box_uid, "")),
                "presentation_lut": lut, "meta": meta, "print_job": job_uid,
                "calling_aet": calling_aet}

    def _on_action(self, event):
        req = event.request
        class_uid, instance_uid = req.RequestedSOPClassUID, str(req.RequestedSOPInstanceUID)
        aborted, code, status = self._begin(event, "N-ACTION", class_uid, instance_uid,
                                            event.action_information if _has(req.ActionInformation) else None)
        if aborted:
            return 0x0110, None
        meta = str(event.context.abstract_syntax)
        job_uid = generate_uid()
        self._queue_events(event, job_uid)
        if code and not is_warning(code):
            return status, None
        with self._lock:
            if class_uid == FILM_BOX:
                boxes = [instance_uid] if instance_uid in self.film_boxes else []
            elif class_uid == FILM_SESSION:
                boxes = [b for b, s in self._box_session.items() if s == instance_uid]
            else:
                boxes = []
            if not boxes:
                return 0x0112, None
            for box_uid in boxes:
                self.films.append(self._film(box_uid, meta, event.assoc.requestor.ae_title, job_uid))
        reply = Dataset()
        if any(str(cx.abstract_syntax) == PRINT_JOB for cx in event.assoc.accepted_contexts):
            ref = Dataset()
            ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = PRINT_JOB, job_uid
            reply.ReferencedPrintJobSequence = Sequence([ref])
        return self._answer(status), reply

    def _on_delete(self, event):
        req = event.request
        class_uid, instance_uid = req.RequestedSOPClassUID, str(req.RequestedSOPInstanceUID)
        aborted, code, status = self._begin(event, "N-DELETE", class_uid, instance_uid, None)
        if aborted:
            return 0x0110
        if code and not is_warning(code):
            return status
        with self._lock:
            if class_uid == FILM_BOX:
                for u in self._box_images.pop(instance_uid, []):
                    self.image_boxes.pop(u, None)
                self._box_session.pop(instance_uid, None)
                found = self.film_boxes.pop(instance_uid, None)
            elif class_uid == FILM_SESSION:
                found = self.sessions.pop(instance_uid, None)
            elif class_uid == PRESENTATION_LUT:
                found = self.presentation_luts.pop(instance_uid, None)
            else:
                found = None
        if found is None:
            return 0x0112
        return self._answer(status)

    # -- N-EVENT-REPORT -----------------------------------------------------------------
    def _queue_events(self, event, job_uid: str) -> None:
        """Have this association send ``self.events`` right after the N-ACTION response.

        pynetdicom sends the response from the reactor thread once the handler returns, via
        ``assoc.dimse.send_msg``; wrapping that (for this association only) puts the event
        reports on the DUL queue right behind the response, so they reach the SCU before it
        can send anything else."""
        if not self.events:
            return
        assoc = event.assoc
        meta_cx = event.context.context_id
        requests = []
        for class_uid, instance_uid, event_type, info in list(self.events):
            class_uid = str(class_uid)
            if instance_uid is None:
                instance_uid = job_uid if class_uid == PRINT_JOB else PRINTER_INSTANCE
            if class_uid == PRINT_JOB:
                cx = next((c for c in assoc.accepted_contexts if str(c.abstract_syntax) == PRINT_JOB), None)
            else:
                cx = next((c for c in assoc.accepted_contexts if c.context_id == meta_cx), None)
            requests.append((class_uid, str(instance_uid), int(event_type), info, cx))
        original = assoc.dimse.send_msg

        def send_msg(primitive, context_id):
            original(primitive, context_id)
            if isinstance(primitive, N_ACTION) and primitive.MessageIDBeingRespondedTo is not None:
                assoc.dimse.send_msg = original
                for req in requests:
                    self._send_event(assoc, original, *req)

        assoc.dimse.send_msg = send_msg

    def _send_event(self, assoc, send, class_uid, instance_uid, event_type, info, cx) -> None:
        entry = [class_uid, instance_uid, event_type, None, False]  # ..., status, sent
        with self._lock:
            self._replies.append(entry)
            if cx is None or not assoc.is_established:
                self._replied.notify_all()
                return
            entry[4] = True
            self._msg_id = self._msg_id + 1 if self._msg_id < 0xFFFF else 0x7001
            msg_id = self._msg_id
            self._pending[msg_id] = entry
        req = N_EVENT_REPORT()
        req.MessageID = msg_id
        req.AffectedSOPClassUID = class_uid
        req.AffectedSOPInstanceUID = instance_uid
        req.EventTypeID = event_type
        if info is not None:
            ts = cx.transfer_syntax[0]
            req.EventInformation = BytesIO(encode(info, ts.is_implicit_VR, ts.is_little_endian,
                                                  ts.is_deflated))
        send(req, cx.context_id)

    def _on_dimse_recv(self, event) -> None:
        """Catch the SCU's N-EVENT-REPORT answers (the reactor itself only logs and drops
        responses it did not ask for)."""
        cs = getattr(event.message, "command_set", None)
        if cs is None or cs.get("CommandField") != N_EVENT_REPORT_RSP:
            return
        with self._lock:
            entry = self._pending.pop(int(cs.get("MessageIDBeingRespondedTo", -1)), None)
            if entry is not None:
                entry[3] = int(cs.Status)
                self._replied.notify_all()

    @property
    def event_replies(self) -> list[tuple]:
        """The event reports sent so far as ``(class uid, instance uid, event type, status)``,
        status ``None`` while (or if) unanswered."""
        with self._lock:
            return [tuple(e[:4]) for e in self._replies]

    def wait_event_replies(self, count: int, timeout: float = 5.0) -> list[tuple]:
        """Wait until ``count`` event reports were sent and answered (or ``timeout``), and
        return ``event_replies``."""
        with self._replied:
            self._replied.wait_for(lambda: len(self._replies) >= count
                                   and all(e[3] is not None or not e[4] for e in self._replies), timeout)
        return self.event_replies
