"""Two hooks into pynetdicom's association acceptance that its public API does not offer.

* An acceptance policy that runs before negotiation and may reject: the calling AE list
  and pinned TLS certificates change at run time (spec §4.4.1.3: remote nodes are
  configured without restarting), so they are checked per association, not frozen into
  ``ApplicationEntity.require_calling_aet``.
* The asynchronous operations window: pynetdicom always answers (1, 1). Spec §4.2.1.2.1:
  "On the SCP side any non-infinite maximum size will be accepted" — we echo the
  proposal and offer a finite window when the peer asks for an unlimited one (0).
  Pipelined requests queue in pynetdicom's DIMSE provider and are answered in order.

* A connection that closes (or is aborted) before its A-ASSOCIATE-RQ arrived ends the
  acceptor at once. pynetdicom keeps waiting for the request for the whole ACSE timeout
  even though nothing can come any more, so every port probe (a monitoring check, a
  'wait until it listens' loop) held one of node.max_associations for 30 s.

* Reading a PDU (``AssociationSocket.recv``): pynetdicom reads in 4 kB steps into a growing
  bytearray (some 130 calls for one 512 kB PDU, 6,800 for a mammogram) and reads as much as
  the PDU length field claims. We read straight into a buffer of the announced size, and
  refuse a PDU larger than our maximum PDU length (or 1 MiB for association PDUs) instead
  of letting a peer make us allocate gigabytes.

All of them only act for an ApplicationEntity that carries the ``lightbox_policy`` /
``lightbox_async_window`` attributes; any other AE keeps pynetdicom's behaviour.
"""

import time

from pynetdicom import evt
from pynetdicom.acse import ACSE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu_primitives import AsynchronousOperationsWindowNegotiation
from pynetdicom.transport import AssociationSocket

_original_negotiate = ACSE._negotiate_as_acceptor
_original_async = ACSE._check_async_ops
_original_receive_pdu = DULServiceProvider.receive_pdu
_original_recv = AssociationSocket.recv


def _negotiate_as_acceptor(self: ACSE) -> None:
    policy = getattr(self.assoc.ae, "lightbox_policy", None)
    if policy is not None:
        verdict = policy(self.assoc, self.requestor.primitive)
        if verdict:
            self.send_reject(*verdict)
            evt.trigger(self.assoc, evt.EVT_REJECTED, {})
            self.assoc.kill()
            return
    _original_negotiate(self)


def _check_async_ops(self: ACSE):
    window = getattr(self.assoc.ae, "lightbox_async_window", None)
    if window is None:
        return _original_async(self)
    invoked, performed = self.requestor.asynchronous_operations
    item = AsynchronousOperationsWindowNegotiation()
    item.maximum_number_operations_invoked = invoked or window
    item.maximum_number_operations_performed = performed or window
    return item


def _receive_pdu(self: DULServiceProvider, wait: bool = False, timeout: float | None = None):
    assoc = self.assoc
    if (not wait or getattr(assoc.ae, "lightbox_policy", None) is None
            or not assoc.is_acceptor or assoc.is_established):
        return _original_receive_pdu(self, wait, timeout)
    # The acceptor waiting for the A-ASSOCIATE-RQ: wait in short steps and stop once the
    # DUL has shut down (every closing action of its state machine kills it).
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = 0.05 if deadline is None else min(0.05, max(0.0, deadline - time.monotonic()))
        primitive = _original_receive_pdu(self, True, step)
        if primitive is not None:
            return primitive
        if self._kill_thread:  # connection gone; take what it queued before dying, if anything
            return _original_receive_pdu(self, False)
        if deadline is not None and time.monotonic() >= deadline:
            return None


_ASSOCIATION_PDU_LIMIT = 1 << 20


def _recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    assoc = self.assoc
    if getattr(assoc.ae, "lightbox_policy", None) is None or not assoc.is_acceptor:
        return _original_recv(self, nr_bytes)
    max_pdu = assoc.ae.maximum_pdu_size or 0
    limit = max(max_pdu, _ASSOCIATION_PDU_LIMIT) if max_pdu else None
    if limit is not None and nr_bytes > limit + 6:
        raise OSError(f"the peer announced a PDU of {nr_bytes} bytes, more than our maximum "
                      f"PDU length of {max_pdu} bytes")
    buf = bytearray(nr_bytes)
    view = memoryview(buf)
    got = 0
    sock = self.socket
    while got < nr_bytes:
        n = sock.recv_into(view[got:], nr_bytes - got)
        if not n:  # connection closed: return what arrived, as pynetdicom does
            del view
            del buf[got:]
            return buf
        got += n
    return buf


def install() -> None:
    ACSE._negotiate_as_acceptor = _negotiate_as_acceptor
    ACSE._check_async_ops = _check_async_ops
    DULServiceProvider.receive_pdu = _receive_pdu
    AssociationSocket.recv = _recv
