"""DICOM over TLS (spec §4.4.1.1 and §7.1.2, done better: TLS 1.2/1.3, no TLS 1.0/3DES).

Remote nodes are trusted either by a pinned certificate (its SHA-256 thumbprint) or by a
CA file. Extended Key Usage, where present, must allow the role the peer plays: Client
Authentication (1.3.6.1.5.5.7.3.2) for a peer that calls us, Server Authentication
(1.3.6.1.5.5.7.3.1) for a peer we call.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from app.config import Settings


class TlsError(Exception):
    pass


def _versions(settings: Settings) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if settings["tls.min_version"] == "1.3" else ssl.TLSVersion.TLSv1_2


def _load_own(ctx: ssl.SSLContext, settings: Settings) -> None:
    cert, key = settings["tls.certificate"], settings["tls.private_key"]
    if not cert or not key:
        raise TlsError("TLS needs our certificate and private key: "
                       "lightbox config set tls.certificate FILE; lightbox config set tls.private_key FILE")
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load our certificate/key ({cert}, {key}): {exc}") from None


def _trust(ctx: ssl.SSLContext, settings: Settings, pinned: list[bytes]) -> None:
    loaded = False
    if settings["tls.ca_file"]:
        try:
            ctx.load_verify_locations(cafile=settings["tls.ca_file"])
            loaded = True
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load the CA file {settings['tls.ca_file']}: {exc}") from None
    for pem in pinned:
        ctx.load_verify_locations(cadata=pem.decode("ascii"))
        loaded = True
    # A pinned leaf is a trust anchor of its own, even if it is not self-signed.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if not loaded:
        # Nothing to trust: every peer certificate fails, which is the safe answer.
        pass


def server_context(settings: Settings, pinned: list[bytes]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _versions(settings)
    _load_own(ctx, settings)
    ctx.verify_mode = ssl.CERT_REQUIRED  # spec §4.4.1.1: the remote node's certificate authorises it
    _trust(ctx, settings, pinned)
    return ctx


def client_context(settings: Settings, pinned: bytes | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _versions(settings)
    _load_own(ctx, settings)
    ctx.check_hostname = False  # DICOM nodes are identified by certificate, not host name
    ctx.verify_mode = ssl.CERT_REQUIRED
    _trust(ctx, settings, [pinned] if pinned else [])
    return ctx


def thumbprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def check_peer(der: bytes | None, *, peer_is_client: bool, pin: str | None,
               ca_file: str | None) -> str:
    """Authorise a verified peer certificate for one remote node; returns its thumbprint.

    The handshake already checked the chain against CA file + pinned certificates; this
    decides whether *this* node's trust (its own pin, else the CA) covers the certificate.
    """
    if not der:
        raise TlsError("the peer sent no certificate")
    cert = x509.load_der_x509_certificate(der)
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None:
        need = ExtendedKeyUsageOID.CLIENT_AUTH if peer_is_client else ExtendedKeyUsageOID.SERVER_AUTH
        if need not in eku:
            what = "Client" if peer_is_client else "Server"
            raise TlsError(f"certificate's Extended Key Usage lacks {what} Authentication")
    thumb = thumbprint(der)
    if pin:
        if thumb != pin:
            raise TlsError(f"certificate thumbprint {thumb[:16]}… does not match the pinned {pin[:16]}…")
        return thumb
    if not ca_file:
        raise TlsError("no certificate is pinned for this node and no CA file is configured")
    if not _issued_by_ca(cert, Path(ca_file)):
        raise TlsError("certificate is not issued by a CA of tls.ca_file")
    return thumb


def _issued_by_ca(cert: x509.Certificate, ca_file: Path) -> bool:
    """The handshake verified the chain against CAs *and* pins; make sure a CA did it."""
    try:
        cas = x509.load_pem_x509_certificates(ca_file.read_bytes())
    except (OSError, ValueError):
        return False
    for ca in cas:
        if ca.subject == cert.issuer:
            try:
                cert.verify_directly_issued_by(ca)
                return True
            except (ValueError, TypeError, Exception):
                continue
    return False
