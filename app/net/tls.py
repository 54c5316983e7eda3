"""DICOM over TLS (spec §4.4.1.1 and §7.1.2, done better: TLS 1.2/1.3, no TLS 1.0/3DES).

Remote nodes are trusted either by a pinned certificate (its SHA-256 thumbprint) or by a
CA file. Extended Key Usage, where present, must allow the role the peer plays: Client
Authentication (1.3.6.1.5.5.7.3.2) for a peer that calls us, Server Authentication
(1.3.6.1.5.5.7.3.1) for a peer we call.

Two layers check a peer: the handshake (OpenSSL verifies the chain against tls.ca_file plus
every pinned certificate, and the EKU purpose), then :func:`check_peer` decides whether the
trust of *this* remote node (its own pin, else tls.ca_file) covers the certificate, so one
node's pinned certificate never lets it pose as another node.
"""

from __future__ import annotations

import _ssl
import datetime
import hashlib
import logging
import os
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from app.config import Settings

log = logging.getLogger(__name__)

PIN_HINT = ("pin its certificate with 'lightbox nodes add NAME --aet AET --host HOST --port PORT "
            "--tls --cert FILE' (or --replace an existing node), or put its CA into tls.ca_file")


class TlsError(Exception):
    pass


class TlsHandshakeError(ConnectionError):
    """Our own refusal of a peer during a client handshake. An OSError, so pynetdicom treats it
    as a failed connection, but not an ssl.SSLError, so it does not log a traceback."""


def _versions(settings: Settings) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if settings["tls.min_version"] == "1.3" else ssl.TLSVersion.TLSv1_2


def _load_own(ctx: ssl.SSLContext, settings: Settings) -> None:
    cert, key = settings["tls.certificate"], settings["tls.private_key"]
    if not cert or not key:
        raise TlsError("TLS needs our certificate and private key: "
                       "lightbox config set tls.certificate FILE; lightbox config set tls.private_key FILE")
    for what, path in (("tls.certificate", cert), ("tls.private_key", key)):
        if not os.path.isfile(path):
            raise TlsError(f"{what} {path} does not exist (lightbox config set {what} FILE)")
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load our certificate/key ({cert}, {key}): {exc}; both must be PEM, "
                       "the key unencrypted and matching the certificate") from None


def _trust(ctx: ssl.SSLContext, settings: Settings, pinned: list[bytes]) -> None:
    if settings["tls.ca_file"]:
        try:
            ctx.load_verify_locations(cafile=settings["tls.ca_file"])
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load the CA file {settings['tls.ca_file']} (setting tls.ca_file): "
                           f"{exc}") from None
    for pem in pinned:
        try:
            ctx.load_verify_locations(cadata=pem.decode("ascii"))
        except (UnicodeDecodeError, ssl.SSLError) as exc:
            # One broken pin must not take TLS down for every other node.
            log.warning("ignoring a pinned certificate that cannot be loaded: %s", exc)
    # A pinned leaf is a trust anchor of its own, even if it is not self-signed.
    # Nothing loaded at all means every peer certificate fails, which is the safe answer.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN


def server_context(settings: Settings, pinned: list[bytes]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _versions(settings)
    _load_own(ctx, settings)
    ctx.verify_mode = ssl.CERT_REQUIRED  # spec §4.4.1.1: the remote node's certificate authorises it
    _trust(ctx, settings, pinned)
    return ctx


class _CheckedSocket(ssl.SSLSocket):
    """Client socket that authorises the server (pin/CA, EKU) right after the handshake,
    before any DICOM byte is sent, and keeps a readable reason for a failure."""

    def do_handshake(self, block: bool = False) -> None:
        ctx = self.context
        try:
            super().do_handshake(block)
        except ssl.SSLError as exc:
            ctx.lightbox_error = explain(exc, peer_is_client=False)
            raise TlsHandshakeError(ctx.lightbox_error) from None
        except OSError as exc:
            ctx.lightbox_error = explain(exc, peer_is_client=False)
            raise
        check = getattr(ctx, "lightbox_check", None)
        if check is not None:
            try:
                check(self)
            except TlsError as exc:
                ctx.lightbox_error = str(exc)
                raise TlsHandshakeError(str(exc)) from None

    def read(self, *args, **kwargs):
        # With TLS 1.3 the server judges our certificate after our side of the handshake is
        # done: its refusal arrives as an alert on the first read.
        try:
            return super().read(*args, **kwargs)
        except ssl.SSLError as exc:
            if getattr(self.context, "lightbox_error", None) is None:
                self.context.lightbox_error = explain(exc, peer_is_client=False)
            raise


def client_context(settings: Settings, pinned: bytes | None, *, pin: str | None = None,
                   peer: str = "the remote node") -> ssl.SSLContext:
    """Context for calling a remote node over TLS: it must present the pinned certificate (if
    one is pinned) or one issued by a CA of tls.ca_file, with Server Authentication in its EKU.
    After a failed connection, ``ctx.lightbox_error`` says why (or is None)."""
    ca_file = settings["tls.ca_file"] or None
    if not pinned and not ca_file:
        raise TlsError(f"cannot trust {peer}: no certificate is pinned for it and tls.ca_file is not set; "
                       + PIN_HINT.replace("its certificate", "its server certificate"))
    if pinned and not pin:
        pin = _pem_thumbprint(pinned)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _versions(settings)
    _load_own(ctx, settings)
    ctx.check_hostname = False  # DICOM nodes are identified by certificate, not host name
    ctx.verify_mode = ssl.CERT_REQUIRED
    _trust(ctx, settings, [pinned] if pinned else [])
    ctx.sslsocket_class = _CheckedSocket
    ctx.lightbox_error = None

    def check(sock: ssl.SSLSocket) -> None:
        try:
            check_peer(sock.getpeercert(binary_form=True), peer_is_client=False, pin=pin,
                       ca_file=ca_file, chain=verified_chain(sock))
        except TlsError as exc:
            raise TlsError(f"{peer}: {exc}") from None

    ctx.lightbox_check = check
    return ctx


def certificate_notes(pem: bytes | None) -> list[str]:
    """Warnings about a certificate about to be pinned: roles its EKU rules out, validity."""
    if not pem:
        return []
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return []
    notes = []
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        eku = None
    if eku is not None:
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            notes.append("the certificate's Extended Key Usage lacks Client Authentication: "
                         "this node cannot call us over TLS with it")
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
            notes.append("the certificate's Extended Key Usage lacks Server Authentication: "
                         "we cannot call this node over TLS with it")
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc < now:
        notes.append(f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    elif cert.not_valid_before_utc > now:
        notes.append(f"the certificate is valid only from {cert.not_valid_before_utc:%Y-%m-%d}")
    return notes


def thumbprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _pem_thumbprint(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    return thumbprint(cert.public_bytes(serialization.Encoding.DER))


def verified_chain(sock: ssl.SSLSocket) -> list[bytes] | None:
    """The chain OpenSSL verified (leaf first, trust anchor last) as DER, if Python exposes it
    (public from 3.13, a private method of the SSL object before)."""
    getter = getattr(sock, "get_verified_chain", None)
    if getter is None:
        getter = getattr(getattr(sock, "_sslobj", None), "get_verified_chain", None)
    if getter is None:
        return None
    try:
        chain = getter()
    except Exception:  # noqa: BLE001 - best effort; check_peer falls back to the CA file
        return None
    if not chain:
        return None
    out = []
    for c in chain:
        out.append(c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER))
    return out


def check_peer(der: bytes | None, *, peer_is_client: bool, pin: str | None,
               ca_file: str | None, chain: list[bytes] | None = None) -> str:
    """Authorise a verified peer certificate for one remote node; returns its thumbprint.

    The handshake already checked the chain against CA file + pinned certificates; this
    decides whether *this* node's trust (its own pin, else the CA) covers the certificate.
    ``chain`` is the verified chain (leaf … trust anchor) when known: then the anchor must be
    a certificate of the CA file, which admits intermediates the peer sent itself.
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
            raise TlsError(f"the certificate's Extended Key Usage lacks {what} Authentication "
                           f"({need.dotted_string}), which a remote {'SCU' if peer_is_client else 'SCP'} "
                           "needs (spec §4.4.1.1); issue it a certificate that allows it")
    thumb = thumbprint(der)
    if pin:
        if thumb != pin:
            raise TlsError(f"certificate thumbprint {thumb[:16]}… does not match the pinned {pin[:16]}…; "
                           "if the node has a new certificate, pin it again with "
                           "'lightbox nodes add NAME … --tls --cert FILE --replace'")
        return thumb
    if not ca_file:
        raise TlsError("no certificate is pinned for this node and tls.ca_file is not set; " + PIN_HINT)
    cas = _ca_certs(Path(ca_file))
    if chain:
        if chain[-1] in cas.ders:
            return thumb
        raise TlsError(f"the certificate is trusted through a pinned certificate of another node, "
                       f"not through a CA of tls.ca_file; {PIN_HINT}")
    if not _issued_by_ca(cert, cas.certs):
        raise TlsError(f"the certificate is not issued by a CA of tls.ca_file ({ca_file}); {PIN_HINT}")
    return thumb


class _CaFile:
    def __init__(self, certs: list[x509.Certificate]):
        self.certs = certs
        self.ders = {c.public_bytes(serialization.Encoding.DER) for c in certs}


_ca_cache: dict[Path, tuple[tuple[int, int], _CaFile]] = {}
_ca_lock = threading.Lock()


def _ca_certs(path: Path) -> _CaFile:
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        return _CaFile([])
    with _ca_lock:
        hit = _ca_cache.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        certs = []
    entry = _CaFile(certs)
    with _ca_lock:
        _ca_cache[path] = (stamp, entry)
    return entry


def _issued_by_ca(cert: x509.Certificate, cas: list[x509.Certificate]) -> bool:
    """Fallback without the verified chain: the certificate is, or is directly issued by, a
    certificate of the CA file."""
    for ca in cas:
        if ca == cert:
            return True
        if ca.subject == cert.issuer:
            try:
                cert.verify_directly_issued_by(ca)
                return True
            except Exception:  # noqa: BLE001 - wrong key, unsupported algorithm, ...
                continue
    return False


# -- readable reasons -----------------------------------------------------------------------
_VERIFY = {
    9: "the {peer} certificate is not valid yet (check both clocks)",
    10: "the {peer} certificate has expired; the node needs a new one",
    18: "the {peer} certificate is self-signed and not trusted here; " + PIN_HINT,
    19: "the {peer} certificate chains to a root that is not trusted here; " + PIN_HINT,
    20: "the {peer} certificate is not trusted here (its issuer is unknown); " + PIN_HINT,
    21: "the {peer} certificate is not trusted here (cannot verify it); " + PIN_HINT,
    23: "the {peer} certificate is revoked",
    26: "the {peer} certificate's Extended Key Usage lacks {eku}, which a remote {role} needs "
        "(spec §4.4.1.1); issue it a certificate that allows it",
}

_REASONS = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the {peer} sent no certificate; this node requires one "
                                         "(give it a certificate and key, e.g. DCMTK '+tls KEY CERT')",
    "UNSUPPORTED_PROTOCOL": "the {peer} offers only TLS versions below our minimum tls.min_version "
                            "(TLS 1.0/1.1 are not accepted)",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the {peer} does not support our TLS versions (tls.min_version)",
    "WRONG_VERSION_NUMBER": "the {peer} does not speak TLS (plain DICOM on a TLS port, or TLS to a plain "
                            "port?): check the port and the node's TLS setting",
    "HTTP_REQUEST": "the {peer} sent HTTP, not TLS",
    "NO_SHARED_CIPHER": "no cipher suite in common with the {peer}",
    "TLSV1_ALERT_UNKNOWN_CA": "the {peer} does not trust our certificate (tls.certificate): give it our "
                              "certificate or our CA",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the {peer} refused our certificate (tls.certificate): give it our "
                                   "certificate or our CA, and check its Extended Key Usage",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the {peer} refused our certificate (tls.certificate)",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "the {peer} refused our certificate as unsuitable "
                                           "(check its Extended Key Usage)",
    "TLSV1_ALERT_ACCESS_DENIED": "the {peer} denied access to our certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the {peer} aborted the handshake (no common TLS version or cipher, "
                                     "or it refused our certificate)",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the {peer} requires a certificate from us (tls.certificate)",
}


def is_silent_close(exc: BaseException) -> bool:
    """The peer closed the connection during the handshake without a TLS alert."""
    return isinstance(exc, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)) or \
        (isinstance(exc, ssl.SSLError) and exc.reason == "UNEXPECTED_EOF_WHILE_READING")


def explain(exc: BaseException, *, peer_is_client: bool) -> str:
    """One line saying why a handshake failed and what to do, for a log or the command line."""
    peer = "client" if peer_is_client else "server"
    eku = ("Client Authentication (1.3.6.1.5.5.7.3.2)" if peer_is_client
           else "Server Authentication (1.3.6.1.5.5.7.3.1)")
    role = "SCU" if peer_is_client else "SCP"
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = _VERIFY.get(exc.verify_code)
        if text:
            return text.format(peer=peer, eku=eku, role=role)
        return f"the {peer} certificate failed verification: {exc.verify_message}"
    if isinstance(exc, TimeoutError) or isinstance(exc, OSError) and "timed out" in str(exc):
        return f"no TLS handshake from the {peer} in time (slow, or not speaking TLS)"
    if is_silent_close(exc):
        return (f"the {peer} closed the connection during the TLS handshake "
                f"(it probably refused our certificate, or does not speak TLS)")
    if isinstance(exc, ssl.SSLError):
        text = _REASONS.get(exc.reason or "")
        if text:
            return text.format(peer=peer)
        return f"TLS handshake with the {peer} failed: {exc.reason or exc}"
    if isinstance(exc, TlsHandshakeError):
        return str(exc)
    return f"TLS handshake with the {peer} failed: {exc}"
