"""Two hooks into pynetdicom's association acceptance that its public API does not offer.

* An acceptance policy that runs before negotiation and may reject: the calling AE list
  and pinned TLS certificates change at run time (spec §4.4.1.3: remote nodes are
  configured without restarting), so they are checked per association, not frozen into
  ``ApplicationEntity.require_calling_aet``.
* The asynchronous operations window: pynetdicom always answers (1, 1). Spec §4.2.1.2.1:
  "On the SCP side any non-infinite maximum size will be accepted" — we echo the
  proposal and offer a finite window when the peer asks for an unlimited one (0).
  Pipelined requests queue in pynetdicom's DIMSE provider and are answered in order.

Both only act for an ApplicationEntity that carries the ``lightbox_policy`` /
``lightbox_async_window`` attributes; any other AE keeps pynetdicom's behaviour.
"""

from pynetdicom import evt
from pynetdicom.acse import ACSE
from pynetdicom.pdu_primitives import AsynchronousOperationsWindowNegotiation

_original_negotiate = ACSE._negotiate_as_acceptor
_original_async = ACSE._check_async_ops


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


def install() -> None:
    ACSE._negotiate_as_acceptor = _negotiate_as_acceptor
    ACSE._check_async_ops = _check_async_ops
