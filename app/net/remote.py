"""Associations we open to a configured remote node: our identity, our limits, for a TLS
node our TLS settings with its pinned certificate (spec §4.4.1.1), and failures told apart
the way the reference's retry rules need them (§4.2.1.3.1.1): a permanent rejection is not
retried, an unreachable or dropped peer is."""

from __future__ import annotations

from pynetdicom import AE

from app.net import tls


class AssociationFailed(ConnectionError):
    """No association. ``permanent``: retrying cannot help (rejected permanently, every
    presentation context refused, TLS settings unusable); else a transient failure."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


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


def scu_ae(settings) -> AE:
    """An AE for our own requests: our AE title, identity and Table 4-53 timeouts, the
    event-driven loops and direct responses of the node (no polling sleeps, TCP_NODELAY)."""
    from app.net import command_reader, direct_messages, reactors
    from app.net.node import configure_ae, configure_logging
    reactors.install()
    direct_messages.install()
    command_reader.install()
    configure_logging()  # before the AE: it binds the standard handlers when it is made
    ae = AE(ae_title=settings["node.aet"])
    configure_ae(ae, settings)
    ae.lightbox_event_driven = True
    return ae


def why_not(assoc, node_text: str) -> AssociationFailed:
    """Why ``assoc`` was not established, in words for the user."""
    if assoc.is_rejected:
        rsp = assoc.acceptor.primitive
        permanent = rsp.result == 0x01
        return AssociationFailed(
            f"{node_text} rejected the association ({'permanently' if permanent else 'for now'}: "
            f"result {rsp.result}, source {rsp.result_source}, reason {rsp.diagnostic}): "
            "check that this node's AE title is configured there", permanent=permanent)
    if assoc.acceptor.primitive is None:
        return AssociationFailed(f"cannot connect to {node_text}: is it running and reachable, "
                                 "and (for TLS) does it trust our certificate?")
    return AssociationFailed(f"{node_text} aborted the association")


def open_association(ae: AE, settings, node, contexts: list, **extra):
    """An established association to ``node`` proposing ``contexts`` (``extra``: more
    arguments of AE.associate, e.g. ext_neg, evt_handlers); AssociationFailed (with
    ``permanent`` set as §4.2.1.3.1.1 needs) otherwise."""
    try:
        kwargs = association_args(settings, node)
    except ConnectionError as exc:
        raise AssociationFailed(str(exc), permanent=True) from None
    aet = kwargs.pop("ae_title")
    node_text = f"{node.aet}@{node.host}:{node.port}"
    assoc = ae.associate(node.host, node.port, contexts=contexts, ae_title=aet, **kwargs, **extra)
    if not assoc.is_established:
        ctx = kwargs.get("tls_args", (None,))[0]
        if ctx is not None and getattr(ctx, "lightbox_error", None):
            raise AssociationFailed(f"TLS connection to {node_text} refused: {ctx.lightbox_error}")
        raise why_not(assoc, node_text)
    if not assoc.accepted_contexts:
        assoc.release()
        raise AssociationFailed(f"{node_text} accepted none of the presentation contexts proposed "
                                "(SOP classes / transfer syntaxes): check its configuration", permanent=True)
    return assoc
