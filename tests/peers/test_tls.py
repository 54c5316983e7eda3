"""DICOM over TLS against DCMTK (spec §4.4.1.1, §7.1.2 done as TLS 1.2/1.3).

Every certificate is made here, in a temporary folder, with `cryptography`: a test CA (and an
intermediate CA), Lightbox's own node certificate (Server + Client Authentication) and one
client or server certificate per case. DCMTK's echoscu/storescu call the node, DCMTK's storescp
is the TLS SCP that `lightbox nodes echo` calls. Each refusal is checked on both sides: the
peer fails, and the node logs a line that says why.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import pytest
from conftest import NodeProcess, dcmtk, free_port, lightbox, ls_json, run_dcmtk, wait_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from cryptography.x509.oid import NameOID
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

pytestmark = [pytest.mark.peers, pytest.mark.timeout(120)]

NODE_AET = "LIGHTBOX"


# -- a small PKI ---------------------------------------------------------------------------
class Pki:
    def __init__(self, folder: Path):
        self.dir = folder
        self._certs: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]] = {}

    def make(self, name: str, *, issuer: str | None = None, ca: bool = False, eku=(),
             chain_file: bool = False) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lightbox tests"),
                             x509.NameAttribute(NameOID.COMMON_NAME, name)])
        if issuer:
            issuer_cert, issuer_key = self._certs[issuer]
            issuer_name = issuer_cert.subject
        else:
            issuer_cert, issuer_key, issuer_name = None, key, subject
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=7))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False))
        if ca:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                              key_encipherment=False, data_encipherment=False,
                                              key_agreement=False, key_cert_sign=True, crl_sign=True,
                                              encipher_only=False, decipher_only=False), critical=True)
        else:
            # what hospital certificates usually carry: RSA signature + key encipherment, no CA bit
            b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                              key_encipherment=True, data_encipherment=False,
                                              key_agreement=False, key_cert_sign=False, crl_sign=False,
                                              encipher_only=False, decipher_only=False), critical=True)
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        cert = b.sign(issuer_key, hashes.SHA256())
        self._certs[name] = (cert, key)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if chain_file and issuer_cert is not None:
            pem += issuer_cert.public_bytes(serialization.Encoding.PEM)
        self.cert(name).write_bytes(pem)
        self.key(name).write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                                     serialization.NoEncryption()))
        self.key(name).chmod(0o600)

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.make("ca", ca=True)
    p.make("intermediate", issuer="ca", ca=True)
    p.make("lightbox", issuer="ca", eku=(EKU.SERVER_AUTH, EKU.CLIENT_AUTH))   # our node
    p.make("client_ca", issuer="ca", eku=(EKU.CLIENT_AUTH,))                    # (a) CA-issued
    p.make("client_inter", issuer="intermediate", eku=(EKU.CLIENT_AUTH,), chain_file=True)
    p.make("client_pinned", eku=(EKU.CLIENT_AUTH,))                             # (b) self-signed, pinned
    p.make("client_untrusted", eku=(EKU.CLIENT_AUTH,))                          # (c) self-signed, unknown
    p.make("client_server_eku", eku=(EKU.SERVER_AUTH,))                         # (d) pinned, wrong EKU
    p.make("client_ca_server_eku", issuer="ca", eku=(EKU.SERVER_AUTH,))         # (d') CA-issued, wrong EKU
    p.make("scp_pinned", eku=(EKU.SERVER_AUTH,))                                # remote SCP, good
    p.make("scp_client_eku", eku=(EKU.CLIENT_AUTH,))                            # remote SCP, wrong EKU
    return p


@pytest.fixture(scope="module")
def dicom_file(tmp_path_factory) -> tuple[Path, str]:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "TLS^Test", "TLS-1", "CT"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", "TLS1"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(8 * 8 * 2)
    path = tmp_path_factory.mktemp("dicom") / "ct.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, ds.SOPInstanceUID


# -- helpers ---------------------------------------------------------------------------------
def tls_node(node_factory, pki: Pki, *, mode: str = "only", ca_file: bool = False,
             check_calling_ae: bool = True, pins: dict[str, tuple[str, str | None]] | None = None,
             tls_port: int | None = None) -> NodeProcess:
    """A started node with our certificate; ``pins``: node name -> (calling AE, cert name or None)."""
    node = node_factory(allow_any=not check_calling_ae, aet=NODE_AET)
    h = node.home
    lightbox(h, "config", "set", "tls.mode", mode)
    lightbox(h, "config", "set", "tls.certificate", str(pki.cert("lightbox")))
    lightbox(h, "config", "set", "tls.private_key", str(pki.key("lightbox")))
    if ca_file:
        lightbox(h, "config", "set", "tls.ca_file", str(pki.cert("ca")))
    if tls_port:
        lightbox(h, "config", "set", "tls.port", str(tls_port))
    for name, (aet, cert) in (pins or {}).items():
        args = ["nodes", "add", name, "--aet", aet, "--host", "127.0.0.1", "--port", "1", "--tls"]
        if cert:
            args += ["--cert", str(pki.cert(cert))]
        out = lightbox(h, *args)
        assert ("pinned SHA-256" in out.stdout) == bool(cert), out.stdout
    node.start()
    if tls_port:
        wait_port(tls_port, proc=node.proc)
    return node


def echo(pki: Pki, port: int, client: str | None, *, aet: str = "ECHOSCU") -> subprocess.CompletedProcess:
    """DCMTK echoscu; ``client`` names the certificate to present, None = plain TCP."""
    args = ["-aet", aet, "-aec", NODE_AET, "-to", "10", "-ta", "10", "-td", "10"]
    if client:
        args += ["+tls", str(pki.key(client)), str(pki.cert(client)), "+cf", str(pki.cert("ca"))]
    return run_dcmtk("echoscu", *args, "127.0.0.1", str(port), timeout=60)


def node_log(node: NodeProcess) -> str:
    log_file = node.home / "logs" / "lightbox.log"
    return node.output() + (log_file.read_text(errors="replace") if log_file.exists() else "")


def wait_log(node: NodeProcess, *needles: str, timeout: float = 10) -> str:
    """Wait until one log line contains every needle (the node may log just after the peer gave up)."""
    deadline = time.monotonic() + timeout
    while True:
        text = node_log(node)
        if any(all(n in line for n in needles) for line in text.splitlines()):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line with {needles!r} in:\n{text}")
        time.sleep(0.1)


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def assert_failed(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode != 0, f"unexpected success\n{proc.stdout}\n{proc.stderr}"


def python_tls_client(pki: Pki, port: int, *, maximum: ssl.TLSVersion,
                      minimum: ssl.TLSVersion | None = None) -> ssl.SSLError | None:
    """Handshake with the given TLS versions and the pinned client certificate; the error, if any."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(pki.cert("client_pinned"), pki.key("client_pinned"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1/TLSv1_1 members are deprecated
        if minimum is not None:
            ctx.minimum_version = minimum
        ctx.maximum_version = maximum
    if maximum < ssl.TLSVersion.TLSv1_2:
        # OpenSSL 3 refuses SHA-1 signatures (needed below TLS 1.2) at security level 1 and up
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw) as tls_sock:
                # TLS 1.3 reports a refused client certificate only on the first read; an
                # accepted client meets silence (the node waits for an A-ASSOCIATE-RQ).
                tls_sock.settimeout(1.5)
                try:
                    tls_sock.recv(1)
                except TimeoutError:
                    return None
        except ssl.SSLError as exc:
            return exc
        except OSError as exc:  # connection reset after the server's alert
            return ssl.SSLError(str(exc))
    return None


# -- incoming: Lightbox as TLS SCP -----------------------------------------------------------
def test_pinned_client_echo_and_store(node_factory, pki, dicom_file):
    """(b) a self-signed client certificate pinned with `nodes add --tls --cert` may echo and
    store; the stored instance is listed."""
    node = tls_node(node_factory, pki, pins={"MODALITY": ("ECHOSCU", "client_pinned")})
    assert_ok(echo(pki, node.port, "client_pinned"))
    wait_log(node, "C-ECHO from ECHOSCU")

    path, sop_uid = dicom_file
    store = run_dcmtk("storescu", "-aet", "ECHOSCU", "-aec", NODE_AET, "-to", "10", "-ta", "10",
                      "+tls", str(pki.key("client_pinned")), str(pki.cert("client_pinned")),
                      "+cf", str(pki.cert("ca")), "127.0.0.1", str(node.port), str(path), timeout=60)
    assert_ok(store)
    listed = ls_json(node.home, "instance")
    assert [r["SOPInstanceUID"] for r in listed] == [sop_uid]


def test_ca_issued_client(node_factory, pki):
    """(a) with tls.ca_file: a configured node without a pin is trusted through the CA, an
    intermediate the client sends itself included; an unknown calling AE too once
    policy.check_calling_ae is off (read at run time, no restart)."""
    node = tls_node(node_factory, pki, ca_file=True, pins={"CT1": ("CASCU", None), "CT2": ("INTERSCU", None)})
    assert_ok(echo(pki, node.port, "client_ca", aet="CASCU"))
    wait_log(node, "C-ECHO from CASCU")
    # client_inter.pem holds leaf + intermediate; tls.ca_file holds only the root
    assert_ok(echo(pki, node.port, "client_inter", aet="INTERSCU"))
    wait_log(node, "C-ECHO from INTERSCU")

    assert_failed(echo(pki, node.port, "client_ca", aet="STRANGER"))
    wait_log(node, "rejected association from STRANGER", "calling AE not configured")
    lightbox(node.home, "config", "set", "policy.check_calling_ae", "false")
    assert_ok(echo(pki, node.port, "client_ca", aet="STRANGER"))
    wait_log(node, "C-ECHO from STRANGER")


def test_untrusted_client_refused_node_keeps_serving(node_factory, pki):
    """(c) a self-signed certificate nobody pinned fails the handshake; a CA-issued certificate
    presented under the AE title of a pinned node is rejected at A-ASSOCIATE (one node's trust
    never covers another's); the node keeps serving."""
    node = tls_node(node_factory, pki, ca_file=True, pins={"MODALITY": ("ECHOSCU", "client_pinned")})
    assert_failed(echo(pki, node.port, "client_untrusted"))
    wait_log(node, "refused TLS connection", "self-signed and not trusted", "nodes add")

    bad = echo(pki, node.port, "client_ca", aet="ECHOSCU")
    assert_failed(bad)
    assert "Rejected" in bad.stdout + bad.stderr
    wait_log(node, "rejected TLS association from ECHOSCU", "does not match the pinned")

    assert_ok(echo(pki, node.port, "client_pinned"))
    wait_log(node, "C-ECHO from ECHOSCU")
    assert node.proc.poll() is None


def test_stalled_handshakes_do_not_block_others(node_factory, pki):
    """Clients that connect and send nothing, or half a ClientHello, hold only their own thread:
    a good echo goes through meanwhile, and the stalled ones are dropped with a log line."""
    node = tls_node(node_factory, pki, pins={"MODALITY": ("ECHOSCU", "client_pinned")})
    silent = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(3)]
    partial = socket.create_connection(("127.0.0.1", node.port))
    partial.sendall(bytes.fromhex("16030100c8010000c40303"))  # the first bytes of a ClientHello
    try:
        started = time.monotonic()
        assert_ok(echo(pki, node.port, "client_pinned"))
        assert time.monotonic() - started < 4, "the echo waited for the stalled handshakes"
        wait_log(node, "refused TLS connection", "no TLS handshake from the client in time")
    finally:
        for s in silent + [partial]:
            s.close()
    assert_ok(echo(pki, node.port, "client_pinned"))


def test_misconfigured_tls_is_explained(node_factory, pki):
    """The node does not start with TLS on but no certificate, or with tls.port on the plain
    port; it warns when nothing at all is trusted."""
    node = node_factory(aet=NODE_AET)
    lightbox(node.home, "config", "set", "tls.mode", "only")
    run = lightbox(node.home, "node", "--port", str(free_port()), "--host", "127.0.0.1", check=False, timeout=60)
    assert run.returncode != 0 and "lightbox config set tls.certificate FILE" in run.stderr, run.stderr

    lightbox(node.home, "config", "set", "tls.certificate", str(pki.cert("lightbox")))
    lightbox(node.home, "config", "set", "tls.private_key", str(pki.cert("ca")))  # not our key
    run = lightbox(node.home, "node", "--port", str(free_port()), "--host", "127.0.0.1", check=False, timeout=60)
    assert run.returncode != 0 and "cannot load our certificate/key" in run.stderr, run.stderr

    lightbox(node.home, "config", "set", "tls.private_key", str(pki.key("lightbox")))
    lightbox(node.home, "config", "set", "tls.mode", "also")
    port = free_port()
    lightbox(node.home, "config", "set", "tls.port", str(port))
    run = lightbox(node.home, "node", "--port", str(port), "--host", "127.0.0.1", check=False, timeout=60)
    assert run.returncode != 0 and "tls.port" in run.stderr and "plain DICOM port" in run.stderr, run.stderr

    lightbox(node.home, "config", "set", "tls.mode", "only")
    node.start()
    wait_log(node, "no remote node has a pinned certificate and tls.ca_file is not set")


def test_pinned_after_start_is_trusted_without_restart(node_factory, pki):
    """A certificate pinned while the node runs is trusted by the next handshake."""
    node = tls_node(node_factory, pki)
    assert_failed(echo(pki, node.port, "client_pinned"))
    wait_log(node, "refused TLS connection", "not trusted")
    lightbox(node.home, "nodes", "add", "LATE", "--aet", "ECHOSCU", "--host", "127.0.0.1", "--port", "1",
             "--tls", "--cert", str(pki.cert("client_pinned")))
    assert_ok(echo(pki, node.port, "client_pinned"))


def test_client_without_client_authentication_eku_rejected(node_factory, pki):
    """(d) a client certificate whose EKU has Server Authentication only is refused, pinned or
    CA-issued alike; `nodes add` warns about it up front."""
    node = tls_node(node_factory, pki, ca_file=True,
                    pins={"GOOD": ("ECHOSCU", "client_pinned"), "CT1": ("CASCU", None)})
    added = lightbox(node.home, "nodes", "add", "BADEKU", "--aet", "BADEKU", "--host", "127.0.0.1",
                     "--port", "1", "--tls", "--cert", str(pki.cert("client_server_eku")))
    assert "lacks Client Authentication" in added.stderr

    assert_failed(echo(pki, node.port, "client_server_eku", aet="BADEKU"))
    wait_log(node, "refused TLS connection", "Extended Key Usage lacks Client Authentication")
    assert_failed(echo(pki, node.port, "client_ca_server_eku", aet="CASCU"))
    assert node_log(node).count("lacks Client Authentication (1.3.6.1.5.5.7.3.2)") >= 1
    assert "C-ECHO from BADEKU" not in node_log(node) and "C-ECHO from CASCU" not in node_log(node)

    assert_ok(echo(pki, node.port, "client_pinned"))


def test_plain_client_refused_when_secure_only(node_factory, pki):
    """tls.mode = only: no plain listener; a plain echoscu fails, TLS keeps working."""
    node = tls_node(node_factory, pki, pins={"MODALITY": ("ECHOSCU", "client_pinned")})
    wait_log(node, f"127.0.0.1:{node.port} (TLS)")
    assert_failed(echo(pki, node.port, None))
    wait_log(node, "refused TLS connection", "does not speak TLS")
    assert_ok(echo(pki, node.port, "client_pinned"))
    assert "C-ECHO from" in node_log(node)


def test_also_mode_plain_and_tls_ports(node_factory, pki):
    """tls.mode = also: plain DICOM on node.port, TLS on tls.port; each refuses the other."""
    tls_port = free_port()
    node = tls_node(node_factory, pki, mode="also", tls_port=tls_port,
                    pins={"MODALITY": ("ECHOSCU", "client_pinned")})
    wait_log(node, f"127.0.0.1:{node.port} for")
    wait_log(node, f"127.0.0.1:{tls_port} (TLS)")

    assert_ok(echo(pki, node.port, None))
    assert_ok(echo(pki, tls_port, "client_pinned"))
    assert node_log(node).count("C-ECHO from ECHOSCU") == 2

    assert_failed(echo(pki, tls_port, None))
    wait_log(node, "refused TLS connection", "does not speak TLS")
    assert_failed(echo(pki, node.port, "client_pinned"))  # TLS to the plain port
    wait_log(node, "starts a TLS handshake on the plain DICOM port", f"TLS is on port {tls_port}")
    assert "Unknown PDU type" not in node_log(node)
    assert_ok(echo(pki, tls_port, "client_pinned"))


def test_tls_versions(node_factory, pki):
    """TLS 1.0/1.1 are refused (spec §7.1.2's TLS 1.0 replaced by 1.2/1.3); tls.min_version 1.3,
    set while the node runs, refuses a TLS 1.2 client from the next handshake on."""
    node = tls_node(node_factory, pki, pins={"MODALITY": ("ECHOSCU", "client_pinned")})
    err = python_tls_client(pki, node.port, maximum=ssl.TLSVersion.TLSv1_1, minimum=ssl.TLSVersion.TLSv1)
    assert err is not None, "a TLS 1.1 handshake succeeded"
    if err.reason == "NO_PROTOCOLS_AVAILABLE":
        # This OpenSSL build cannot even offer TLS 1.0/1.1 (compiled out): no such client can
        # reach the node at all, which is the property under test; the node logs nothing.
        pass
    else:
        wait_log(node, "refused TLS connection", "below our minimum")

    assert python_tls_client(pki, node.port, maximum=ssl.TLSVersion.TLSv1_2) is None  # 1.2 is fine
    lightbox(node.home, "config", "set", "tls.min_version", "1.3")
    assert python_tls_client(pki, node.port, maximum=ssl.TLSVersion.TLSv1_2) is not None
    wait_log(node, "refused TLS connection", "below our minimum")
    assert python_tls_client(pki, node.port, maximum=ssl.TLSVersion.TLSv1_3) is None
    assert_ok(echo(pki, node.port, "client_pinned"))  # DCMTK negotiates TLS 1.3


# -- outgoing: Lightbox as TLS SCU (`lightbox nodes echo`) -------------------------------------
@pytest.fixture
def storescp(tmp_path, pki):
    started: list[subprocess.Popen] = []

    def start(cert: str, trusts: str = "ca") -> int:
        port = free_port()
        out = tmp_path / f"scp{len(started)}"
        out.mkdir()
        proc = subprocess.Popen([dcmtk("storescp"), "+tls", str(pki.key(cert)), str(pki.cert(cert)),
                                 "+cf", str(pki.cert(trusts)), "-od", str(out), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        wait_port(port, proc=proc)
        return port

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def scu_home(home, pki) -> Path:
    lightbox(home, "config", "set", "node.aet", NODE_AET)
    lightbox(home, "config", "set", "tls.certificate", str(pki.cert("lightbox")))
    lightbox(home, "config", "set", "tls.private_key", str(pki.key("lightbox")))
    return home


def add_scp(home: Path, name: str, port: int, cert: str | None, pki: Pki) -> subprocess.CompletedProcess:
    args = ["nodes", "add", name, "--aet", "STORESCP", "--host", "127.0.0.1", "--port", str(port), "--tls"]
    if cert:
        args += ["--cert", str(pki.cert(cert))]
    return lightbox(home, *args)


def test_outgoing_echo_to_pinned_tls_scp(scu_home, pki, storescp):
    port = storescp("scp_pinned")
    add_scp(scu_home, "PACS", port, "scp_pinned", pki)
    ok = lightbox(scu_home, "nodes", "echo", "PACS", check=False)
    assert ok.returncode == 0, ok.stderr
    assert "status 0x0000 (success)" in ok.stdout


def test_outgoing_echo_refusals(scu_home, pki, storescp):
    """`nodes echo` fails with one clear line when the SCP's certificate lacks Server
    Authentication, is not the pinned one, nothing trusts it, or the SCP refuses ours."""
    port = storescp("scp_client_eku")
    added = add_scp(scu_home, "BADEKU", port, "scp_client_eku", pki)
    assert "lacks Server Authentication" in added.stderr
    bad = lightbox(scu_home, "nodes", "echo", "BADEKU", check=False)
    assert bad.returncode != 0
    assert "Extended Key Usage lacks Server Authentication (1.3.6.1.5.5.7.3.1)" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr

    good_port = storescp("scp_pinned")
    add_scp(scu_home, "WRONGPIN", good_port, "client_pinned", pki)
    wrong = lightbox(scu_home, "nodes", "echo", "WRONGPIN", check=False)
    assert wrong.returncode != 0 and "not trusted" in wrong.stderr and "--cert" in wrong.stderr, wrong.stderr

    add_scp(scu_home, "NOTRUST", good_port, None, pki)
    none = lightbox(scu_home, "nodes", "echo", "NOTRUST", check=False)
    assert none.returncode != 0 and "no certificate is pinned" in none.stderr and "tls.ca_file" in none.stderr

    picky_port = storescp("scp_pinned", trusts="client_untrusted")  # does not trust our certificate
    add_scp(scu_home, "PICKY", picky_port, "scp_pinned", pki)
    picky = lightbox(scu_home, "nodes", "echo", "PICKY", check=False)
    assert picky.returncode != 0 and "does not trust our certificate" in picky.stderr, picky.stderr

    missing = lightbox(scu_home, "nodes", "add", "X", "--aet", "X", "--host", "h", "--port", "1", "--tls",
                       "--cert", str(scu_home / "nope.pem"), check=False)
    assert missing.returncode != 0 and "cannot read the certificate file" in missing.stderr
