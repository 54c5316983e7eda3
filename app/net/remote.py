"""Associations we open to a configured remote node: our identity and, for a TLS node, our
TLS settings with its pinned certificate (spec §4.4.1.1)."""

from __future__ import annotations

from app.net import tls


def association_args(settings, node) -> dict:
    """Keyword arguments for pynetdicom's AE.associate() to ``node`` (app.store.nodes.RemoteNode):
    its AE title and, for a TLS node, the client TLS context. Raises ConnectionError with a
    message for the user when the TLS settings cannot be used."""
    kwargs: dict = {"ae_title": node.aet, "max_pdu": settings["node.max_pdu"]}
    if node.tls:
        try:
            ctx = tls.client_context(settings, node.certificate, pin=node.cert_sha256,
                                     peer=f"node '{node.name}' ({node.aet}@{node.host}:{node.port})")
        except tls.TlsError as exc:
            raise ConnectionError(str(exc)) from None
        kwargs["tls_args"] = (ctx, None)
    return kwargs
