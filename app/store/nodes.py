"""Remote DICOM nodes (spec §4.4.1.3): who may call us and whom we call."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from app.config import SettingsError, check_aet
from app.store.index_writer import insert_ignore
from app.store.schema import config_version, remote_node

ROLES = ("echo", "store", "commit", "find", "move", "get", "worklist", "print")
def syntaxes_from_text(text: str) -> tuple[str, ...]:
    """'jpeg-lossless,explicit' (names or UIDs) -> UIDs, in that order."""
    from app.dicom.transfer_syntaxes import SYNTAX_NAMES
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        uid = SYNTAX_NAMES.get(part.lower(), part)
        if not uid.replace(".", "").isdigit():
            raise SettingsError(f"unknown transfer syntax '{part}'; use a UID or one of {', '.join(SYNTAX_NAMES)}")
        out.append(uid)
    return tuple(out)


@dataclass(frozen=True)
class RemoteNode:
    name: str
    aet: str
    host: str
    port: int
    roles: tuple[str, ...]
    tls: bool = False
    certificate: bytes | None = None
    cert_sha256: str | None = None
    comment: str | None = None
    # transfer syntaxes to send in, in order of preference (spec §4.2.1.3.1.2); the ones left
    # out are not used unless an instance is stored in one. Empty: as stored, else uncompressed.
    transfer_syntaxes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"name": self.name, "aet": self.aet, "host": self.host, "port": self.port,
                "roles": list(self.roles), "tls": self.tls, "cert_sha256": self.cert_sha256,
                "comment": self.comment, "transfer_syntaxes": list(self.transfer_syntaxes)}


def certificate_thumbprint(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _bump(conn) -> None:
    n = conn.execute(update(config_version).where(config_version.c.name == "nodes")
                     .values(version=config_version.c.version + 1)).rowcount
    if not n:
        insert_ignore(conn, config_version, {"name": "nodes", "version": 1})


def version(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(config_version.c.version)
                            .where(config_version.c.name == "nodes")).scalar() or 0


def _row(r) -> RemoteNode:
    return RemoteNode(r.name, r.aet, r.host, r.port, tuple(x for x in r.roles.split(",") if x),
                      bool(r.tls), r.certificate, r.cert_sha256, r.comment,
                      tuple(x for x in (r.transfer_syntaxes or "").split(",") if x))


def list_nodes(engine: Engine) -> list[RemoteNode]:
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(remote_node).order_by(remote_node.c.name))]


def get_node(engine: Engine, name: str) -> RemoteNode | None:
    with engine.connect() as conn:
        r = conn.execute(select(remote_node).where(remote_node.c.name == name)).first()
    return _row(r) if r else None


def add_node(engine: Engine, node: RemoteNode, *, replace: bool = False) -> RemoteNode:
    if not node.name.strip():
        raise SettingsError("a node needs a name")
    check_aet(node.aet)
    if not 0 < node.port < 65536:
        raise SettingsError(f"port {node.port} is out of range 1-65535")
    from app.dicom.compression import PRODUCIBLE
    from app.dicom.transfer_syntaxes import SYNTAX_NAMES, UNCOMPRESSED
    cannot = [ts for ts in node.transfer_syntaxes if ts not in PRODUCIBLE and ts not in UNCOMPRESSED]
    if cannot:
        raise SettingsError(f"Lightbox cannot produce transfer syntax {', '.join(cannot)} (it sends in "
                            f"{', '.join(SYNTAX_NAMES)})")
    unknown = [r for r in node.roles if r not in ROLES]
    if unknown:
        raise SettingsError(f"unknown role(s) {', '.join(unknown)}; choose from {', '.join(ROLES)}")
    thumb = node.cert_sha256.lower().replace(":", "") if node.cert_sha256 else None
    if node.certificate:
        try:
            actual = certificate_thumbprint(node.certificate)
        except ValueError:
            raise SettingsError("the certificate file is not a PEM X.509 certificate") from None
        if thumb and thumb != actual:
            raise SettingsError(f"the certificate's SHA-256 thumbprint is {actual}, not {thumb}")
        thumb = actual
    values = {"name": node.name, "aet": node.aet, "host": node.host, "port": node.port,
              "roles": ",".join(node.roles), "tls": int(node.tls), "certificate": node.certificate,
              "cert_sha256": thumb, "comment": node.comment,
              "transfer_syntaxes": ",".join(node.transfer_syntaxes) or None}
    with engine.begin() as conn:
        exists = conn.execute(select(remote_node.c.name).where(remote_node.c.name == node.name)).first()
        if exists and not replace:
            raise SettingsError(f"a node named '{node.name}' exists; remove it first or use --replace")
        if exists:
            conn.execute(update(remote_node).where(remote_node.c.name == node.name).values(**values))
        else:
            conn.execute(remote_node.insert().values(**values))
        _bump(conn)
    return get_node(engine, node.name)


def remove_node(engine: Engine, name: str) -> bool:
    with engine.begin() as conn:
        n = conn.execute(delete(remote_node).where(remote_node.c.name == name)).rowcount
        _bump(conn)
    return bool(n)


@dataclass(frozen=True)
class NodeTemplate:
    name: str
    aet: str
    port: int
    roles: tuple[str, ...]
    comment: str


def templates() -> list[NodeTemplate]:
    """Common peers that prefill a new node (resources/node_templates.tsv)."""
    from app.resources import read_tsv
    return [NodeTemplate(name, aet, int(port), tuple(roles.split(",")), comment)
            for name, aet, port, roles, comment in read_tsv("node_templates.tsv")]


def check_host(host: str) -> str | None:
    """Why ``host`` cannot be reached by name, or None if it resolves."""
    import socket
    if not host.strip():
        return "a node needs a host name or address"
    try:
        socket.getaddrinfo(host.strip(), None)
    except (socket.gaierror, UnicodeError) as exc:
        return f"the host '{host}' cannot be found ({exc.strerror if hasattr(exc, 'strerror') else exc}); " \
               "check its spelling or use its IP address"
    return None
