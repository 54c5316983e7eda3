"""Verification service (C-ECHO), SCP and SCU."""

from __future__ import annotations

import logging

from pynetdicom import AE

from app.dicom.transfer_syntaxes import UNCOMPRESSED

log = logging.getLogger(__name__)
VERIFICATION = "1.2.840.10008.1.1"


def scp_contexts() -> list[tuple[str, tuple[str, ...]]]:
    return [(VERIFICATION, UNCOMPRESSED)]


def handle_echo(event) -> int:
    log.info("C-ECHO from %s", event.assoc.requestor.ae_title)
    return 0x0000


def echo(ae: AE, host: str, port: int, called_aet: str, **assoc_kwargs) -> int:
    """C-ECHO a remote node; returns the DIMSE status, raises ConnectionError if no association."""
    ae.add_requested_context(VERIFICATION, list(UNCOMPRESSED))
    assoc = ae.associate(host, port, ae_title=called_aet, **assoc_kwargs)
    if not assoc.is_established:
        raise ConnectionError(_why_not(assoc, host, port, called_aet))
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status:
        raise ConnectionError(f"no answer to C-ECHO from {called_aet}@{host}:{port} (timeout or abort)")
    return int(status.Status)


def _why_not(assoc, host: str, port: int, aet: str) -> str:
    if assoc.is_rejected:
        rsp = assoc.acceptor.primitive
        return (f"{aet}@{host}:{port} rejected the association "
                f"(result {rsp.result}, source {rsp.result_source}, reason {rsp.diagnostic}): "
                "check that this node's AE title is configured there")
    if assoc.acceptor.primitive is None:
        return (f"cannot connect to {aet}@{host}:{port}: is it running and reachable, "
                "and (for TLS) does it trust our certificate?")
    return f"{aet}@{host}:{port} aborted the association"


def echo_node(settings, node) -> int:
    """C-ECHO a configured remote node (app.store.nodes.RemoteNode) with our identity and,
    for a TLS node, our TLS settings and its pinned certificate. Returns the DIMSE status;
    raises ConnectionError with a message for the user."""
    from app.net.node import configure_ae
    from app.net.remote import association_args
    ae = AE(ae_title=settings["node.aet"])
    configure_ae(ae, settings)
    kwargs = association_args(settings, node)
    kwargs.pop("ae_title")
    ctx = kwargs.get("tls_args", (None,))[0]
    try:
        return echo(ae, node.host, node.port, node.aet, **kwargs)
    except ConnectionError:
        if ctx is not None and getattr(ctx, "lightbox_error", None):
            raise ConnectionError(f"TLS connection to {node.aet}@{node.host}:{node.port} refused: "
                                  f"{ctx.lightbox_error}") from None
        raise
