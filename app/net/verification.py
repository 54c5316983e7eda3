"""Verification service (C-ECHO), SCP and SCU."""

from __future__ import annotations

import logging

from app.dicom.transfer_syntaxes import UNCOMPRESSED

log = logging.getLogger(__name__)
VERIFICATION = "1.2.840.10008.1.1"


def scp_contexts() -> list[tuple[str, tuple[str, ...]]]:
    return [(VERIFICATION, UNCOMPRESSED)]


def handle_echo(event) -> int:
    log.info("C-ECHO from %s", event.assoc.requestor.ae_title)
    return 0x0000


def echo_node(settings, node) -> int:
    """C-ECHO a configured remote node (app.store.nodes.RemoteNode) with our identity and,
    for a TLS node, our TLS settings and its pinned certificate. Returns the DIMSE status;
    raises ConnectionError (app.net.remote.AssociationFailed) with a message for the user."""
    from pynetdicom import build_context

    from app.net.remote import open_association, scu_ae
    ae = scu_ae(settings)
    assoc = open_association(ae, settings, node, [build_context(VERIFICATION, list(UNCOMPRESSED))])
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status:
        raise ConnectionError(f"no answer to C-ECHO from {node.aet}@{node.host}:{node.port} (timeout or abort)")
    return int(status.Status)
