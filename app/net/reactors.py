"""Event-driven reactor loops for pynetdicom associations.

pynetdicom 3.0 runs two polling loops per association: the DUL thread sleeps 1 ms whenever
it found nothing to do, and the association's reactor sleeps 1 ms before every look at
its DIMSE queue. A C-STORE crosses both loops twice (request in, response out), so every
instance waited 2-3 ms in sleeps: at 512 kB PDUs that was a third of the time a CT image
took over one association.

These replacements keep pynetdicom's state machine, queues and checks, and change only
how the loops wait:

* the DUL thread blocks in ``select()`` on the peer's socket and on a wake-up socket that
  ``send_pdu`` writes to, so incoming PDUs and outgoing primitives are handled at once;
* the association reactor blocks on an event that is set when a DIMSE message or an
  ACSE primitive is queued for it, or when the DUL thread ends.

Both still wake up every ``_IDLE_STEP`` seconds to look at the timers (ARTIM, network
idle) and at kill flags, as the polling loops did every millisecond.

Only associations of an ApplicationEntity that carries ``lightbox_event_driven = True``
use these loops; any other AE keeps pynetdicom's behaviour.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import struct
import threading
import time

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket

log = logging.getLogger(__name__)

_IDLE_STEP = 0.05

_original_dul_run = DULServiceProvider.run_reactor
_original_send_pdu = DULServiceProvider.send_pdu
_original_assoc_run = Association._run_reactor
_original_kill = Association.kill
_original_read_pdu_data = DULServiceProvider._read_pdu_data
_P_DATA_TF = 0x04


def _event_driven(assoc) -> bool:
    return bool(getattr(getattr(assoc, "ae", None), "lightbox_event_driven", False))


class _WakingQueue(queue.Queue):
    """A queue that sets ``event`` whenever something is put on it."""

    def __init__(self, event: threading.Event, source: queue.Queue):
        super().__init__()
        self._wake = event
        # Anything queued before the swap stays queued, in order.
        while True:
            try:
                self.put_nowait(source.get_nowait())
            except queue.Empty:
                break

    def _put(self, item) -> None:
        super()._put(item)
        self._wake.set()


def _install_reactor_event(assoc) -> threading.Event:
    """The event the association reactor waits on. Installed by the DUL thread before it
    lets the association run, so no primitive can be queued on a queue being replaced."""
    event = threading.Event()
    assoc.dul.to_user_queue = _WakingQueue(event, assoc.dul.to_user_queue)
    assoc.dimse.msg_queue = _WakingQueue(event, assoc.dimse.msg_queue)
    assoc._lightbox_wake = event
    return event


# -- DUL ------------------------------------------------------------------------------------
def _wake_dul(dul: DULServiceProvider) -> None:
    waker = getattr(dul, "_lightbox_waker", None)
    if waker is not None:
        try:
            waker[1].send(b"\0")
        except OSError:  # full (already woken) or closed (DUL has ended): nothing to do
            pass


def _send_pdu(self: DULServiceProvider, primitive) -> None:
    _original_send_pdu(self, primitive)
    _wake_dul(self)


def _dul_wait(self: DULServiceProvider, waker: tuple[socket.socket, socket.socket]) -> None:
    """Wait until the peer sent something, a primitive was queued, or _IDLE_STEP passed."""
    transport = self.socket
    sock = getattr(transport, "socket", None) if transport is not None else None
    if sock is None or not getattr(transport, "_is_connected", False) or sock.fileno() < 0:
        # No connection (yet, or any more): the state machine moves on by timers only.
        time.sleep(0.001)
        return
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():  # TLS: bytes already decrypted and buffered
        return
    try:
        ready, _, _ = select.select([sock, waker[0]], [], [], _IDLE_STEP)
    except (OSError, ValueError):
        return  # socket closed under us: the next transport check reports it
    if waker[0] in ready:
        try:
            while waker[0].recv(4096):
                pass
        except OSError:  # drained (non-blocking)
            pass


def _dul_run_reactor(self: DULServiceProvider) -> None:
    """pynetdicom's DUL loop, waiting on sockets instead of sleeping 1 ms per idle turn."""
    if not _event_driven(self.assoc):
        return _original_dul_run(self)
    waker = socket.socketpair()
    for s in waker:
        s.setblocking(False)
    self._lightbox_waker = waker
    _install_reactor_event(self.assoc)
    try:
        self._idle_timer.start()
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
            if self._kill_thread:
                break
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                if self._process_recv_primitive():
                    pass
                elif self._is_transport_event():
                    self._idle_timer.restart()
            except Exception as exc:
                # As pynetdicom: a failure here leaves the state machine unusable, so abort
                # directly on the socket and stop both reactors.
                log.error("DUL failure, aborting the association: %s", exc)
                log.debug("DUL failure", exc_info=True)
                abort_pdu = A_ABORT_RQ()
                abort_pdu.source = 0x02
                abort_pdu.reason_diagnostic = 0x00
                try:
                    self.socket.send(abort_pdu.encode())
                except Exception:  # noqa: BLE001 - the connection may be gone already
                    pass
                self.assoc.is_aborted = True
                self.assoc.is_established = False
                self.assoc._kill = True
                self._kill_thread = True
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                _dul_wait(self, waker)
                continue
            self.state_machine.do_action(event)
    finally:
        self._lightbox_waker = None
        for s in waker:
            s.close()
        wake = getattr(self.assoc, "_lightbox_wake", None)
        if wake is not None:
            wake.set()  # the association reactor notices the DUL has ended


# -- association reactor --------------------------------------------------------------------
def _kill(self: Association) -> None:
    _original_kill(self)
    wake = getattr(self, "_lightbox_wake", None)
    if wake is not None:
        wake.set()
    if getattr(self, "dul", None) is not None:
        _wake_dul(self.dul)


def _assoc_run_reactor(self: Association) -> None:
    """pynetdicom's acceptor loop (same checks, same order), waiting on an event that the
    DIMSE and ACSE queues set instead of sleeping 1 ms per turn."""
    if not _event_driven(self):
        return _original_assoc_run(self)
    wake = getattr(self, "_lightbox_wake", None)
    if wake is None:  # the DUL loop was not ours (should not happen): keep pynetdicom's
        return _original_assoc_run(self)
    while not self._kill:
        # Idle, the loop touches no queue: it counts as paused, so a send_c_*() or release()
        # of our own (a C-MOVE sub-association, a commitment report) that clears the
        # checkpoint and spins until the reactor is paused goes on at once instead of
        # waiting out the idle step (40-50 ms per image of a C-MOVE).
        self._is_paused = True
        wake.wait(_IDLE_STEP)
        while True:
            while not self._reactor_checkpoint.wait(_IDLE_STEP):  # paused: keep saying so, pynetdicom's
                self._is_paused = True  # N-EVENT-REPORT thread resets the flag when it has served one
            self._is_paused = False
            if self._reactor_checkpoint.is_set():
                break
            # a pause began between the wait and the flag: whoever asked for it may already
            # have seen us paused and be reading its response, so stay off the queues
            self._is_paused = True
        wake.clear()

        context_id, msg = self.dimse.get_msg(block=False)
        if msg:
            self._serve_request(msg, context_id)
            wake.set()  # more may have been queued while serving; look again at once

        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            log.debug("association released by %s", self.requestor.ae_title)
            self.is_released = True
            self.is_established = False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return

        if self.acse.is_aborted():
            self.dul.receive_pdu(wait=False)  # so EVT_ACSE_RECV fires, as in pynetdicom
            self.is_aborted = True
            self.is_established = False
            evt.trigger(self, evt.EVT_ABORTED, {})
            self.kill()
            return

        if not self.dul.is_alive():
            self.kill()
            return

        if self.dul.idle_timer_expired():
            log.error("network timeout reached (timeouts.message) with %s", self.requestor.ae_title)
            if self.network_timeout_response == "A-RELEASE":
                self._is_paused = True
                self._reactor_checkpoint.wait()
                self.release()
                self._is_paused = False
            else:
                self.abort()
            self.kill()
            return


_original_create_socket = AssociationSocket._create_socket


def _create_socket(self: AssociationSocket, address):
    """Sockets we open (C-MOVE destinations, reports) without Nagle's delay, as the
    accepted ones: the last short PDU of each message would otherwise wait ~40 ms for the
    peer's delayed ACK."""
    sock = _original_create_socket(self, address)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    return sock


def _socket_send(self: AssociationSocket, bytestream) -> None:
    """pynetdicom's send, without its copy of what is left to send after every partial
    write (bytestream[total_sent:]: quadratic in a CT image's PDUs): sendall takes bytes,
    a bytearray or a memoryview as they are."""
    try:
        self.socket.sendall(bytestream)
        evt.trigger(self.assoc, evt.EVT_DATA_SENT, {"data": bytestream})
    except Exception:  # as pynetdicom: Evt17, transport connection closed
        self.event_queue.put("Evt17")


def _read_pdu_data(self: DULServiceProvider) -> None:
    """pynetdicom's PDU read, with a short way for a P-DATA-TF during data transfer: its PDVs
    go to the DIMSE provider as views into the received bytes, where pynetdicom would build a
    PDU object, queue an event, run its state machine (Sta6 + Evt10 -> DT-2, which does just
    that) and copy every fragment twice: ~40 us per PDU, ~20 PDUs per CT image at the
    reference's 32 kB. Everything else (other PDUs and states, events queued before it, any
    handler bound to PDU events) takes pynetdicom's way."""
    assoc = self.assoc
    if not _event_driven(assoc) or self.state_machine.current_state != "Sta6" or not self.event_queue.empty() \
            or assoc.get_handlers(evt.EVT_PDU_RECV) or assoc.get_handlers(evt.EVT_DATA_RECV):
        return _original_read_pdu_data(self)
    try:
        header = self.socket.recv(6)
        if len(header) != 6:
            raise OSError("the connection closed inside a PDU header")
        pdu_type, _, length = struct.unpack(">BBL", header)
        if pdu_type not in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
            log.error("unknown PDU type 0x%02X received", pdu_type)
            self.event_queue.put("Evt19")
            return
        body = self.socket.recv(length)
        if len(body) != length:
            raise OSError(f"the received PDU is shorter than announced ({len(body)} of {length} bytes)")
    except (OSError, TimeoutError) as exc:
        log.error("connection closed before the entire PDU was received: %s", exc)
        self.event_queue.put("Evt17")
        return
    if pdu_type != _P_DATA_TF:
        try:
            pdu, event = self._decode_pdu(bytearray(header) + body)
        except Exception as exc:  # noqa: BLE001 - as pynetdicom: Evt19, invalid PDU
            log.error("unable to decode the received PDU: %s", exc)
            self.event_queue.put("Evt19")
            return
        self.event_queue.put(event)
        self._recv_pdu.put(pdu)
        return
    view, pos, pdvs = memoryview(body), 0, []
    while pos < length:
        if pos + 6 > length:
            pdvs = None
            break
        (item_length,) = struct.unpack_from(">L", view, pos)
        if item_length < 2 or pos + 4 + item_length > length:
            pdvs = None
            break
        pdvs.append([view[pos + 4], view[pos + 5:pos + 4 + item_length]])
        pos += 4 + item_length
    if not pdvs:
        log.error("a P-DATA-TF PDU with malformed presentation data values was received")
        self.event_queue.put("Evt19")
        return
    primitive = P_DATA()
    primitive._presentation_data_value_list = pdvs  # views: its setter takes bytes only
    assoc.dimse.receive_primitive(primitive)


def install() -> None:
    DULServiceProvider._read_pdu_data = _read_pdu_data
    AssociationSocket._create_socket = _create_socket
    AssociationSocket.send = _socket_send
    DULServiceProvider.run_reactor = _dul_run_reactor
    DULServiceProvider.send_pdu = _send_pdu
    Association._run_reactor = _assoc_run_reactor
    Association.kill = _kill
