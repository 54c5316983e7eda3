"""The embedded DICOM node: builds the pynetdicom AE, wires policies, TLS and handlers.

Acceptance policy (spec §4.2.1.4, §7.2, §4.4.1): the called AE must be ours; the calling
AE must be a configured remote node unless policy.check_calling_ae is off; a TLS peer must
present a certificate its node trusts; beyond node.max_associations the request is
rejected (transient, local limit exceeded); a presentation context with no acceptable
transfer syntax is rejected. Remote nodes and policy settings are re-read per association,
so changes take effect without a restart (§4.4.1.3).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time

from pynetdicom import AE, _config, build_context, evt
from pynetdicom.transport import ThreadedAssociationServer

from app.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from app.net import (acse_hooks, command_reader, commitment, direct_messages, query_retrieve, reactors, storage, tls,
                     verification)
from app.store import nodes as remote_nodes
from app.store.archive import Archive

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ (result, source, reason), PS3.8 §9.3.4
REJECT_CALLING_AE = (0x01, 0x01, 0x03)   # permanent, service user, calling AE not recognised
REJECT_NO_REASON = (0x01, 0x01, 0x01)    # permanent, service user, no reason given
REJECT_LOCAL_LIMIT = (0x02, 0x03, 0x02)  # transient, service provider (presentation), local limit exceeded

SERVICE_CONTEXTS = {
    "verification": verification.scp_contexts,
    "storage": storage.scp_contexts,
    "commitment": commitment.scp_contexts,
    "query": query_retrieve.find_contexts,
    "retrieve": query_retrieve.retrieve_contexts,
}


def configure_logging() -> None:
    """pynetdicom's standard handlers describe every PDU and DIMSE message for its INFO and
    DEBUG logs: only worth their cost when those are shown (lightbox -v). Without them our
    messages go out directly (app.net.direct_messages)."""
    verbose = logging.getLogger("pynetdicom").isEnabledFor(logging.INFO)
    _config.LOG_HANDLER_LEVEL = "standard" if verbose else "none"
    # and it formats every C-FIND identifier for those logs (a tenth of a response's cost)
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = verbose


def configure_ae(ae: AE, settings) -> None:
    """Identity and Table 4-53 limits, shared by the node (SCP) and our SCU calls."""
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.maximum_pdu_size = settings["node.max_pdu"]
    ae.acse_timeout = settings["timeouts.association"]
    ae.connection_timeout = settings["timeouts.open_close"]
    ae.network_timeout = settings["timeouts.message"]
    ae.dimse_timeout = settings["timeouts.storage"]


class _Server(ThreadedAssociationServer):
    """pynetdicom's server, with TCP_NODELAY, dual-stack IPv6 and the TLS handshake moved
    off the accept loop (a slow or hostile client must not stall everyone else)."""

    handshake_timeout = 5.0
    # listen() backlog. socketserver's default of 5 drops the SYNs of a burst of callers
    # (a PACS opening a dozen associations at once) and each dropped one waits 1 s to retry.
    request_queue_size = 128
    # Table 4-53 "timeout for TCP data" (timeouts.tcp_data): the longest silence allowed
    # inside a PDU. pynetdicom reads the rest of a PDU with a blocking recv() and accepted
    # sockets have no timeout, so a peer that sends half a PDU and then waits would hold its
    # thread, and one of node.max_associations, forever.
    data_timeout: float | None = None

    def server_bind(self) -> None:
        if self.socket.family == socket.AF_INET6:
            try:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:
                pass
        super().server_bind()

    def get_request(self):
        sock, address = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.data_timeout)
        return sock, address

    def process_request_thread(self, request, client_address) -> None:
        # Runs in the connection's own thread: the accept loop never waits for a handshake.
        if self.ssl_context is not None:
            before = getattr(self, "lightbox_before_handshake", None)
            if before is not None:
                try:
                    before()  # trust newly pinned certificates before this handshake
                except Exception:  # noqa: BLE001 - keep the trust we have
                    log.exception("could not refresh the TLS trust; using the previous one")
            address = client_address[0]
            try:
                request.settimeout(self.handshake_timeout)
                request = self.ssl_context.wrap_socket(request, server_side=True)
                request.settimeout(self.data_timeout)
            except Exception as exc:  # noqa: BLE001 - one bad client must never hurt the node
                if tls.is_silent_close(exc):
                    # port probes (and clients that dislike our certificate without saying so)
                    log.info("connection from %s closed before the TLS handshake completed", address)
                elif isinstance(exc, (ssl.SSLError, OSError)):
                    log.warning("refused TLS connection from %s: %s", address,
                                tls.explain(exc, peer_is_client=True))
                else:
                    log.exception("TLS handshake with %s failed", address)
                try:
                    request.close()
                except OSError:
                    pass
                return
        elif self._tls_client_on_plain_port(request, client_address):
            return
        super().process_request_thread(request, client_address)

    def _tls_client_on_plain_port(self, request, client_address) -> bool:
        """A TLS ClientHello (record type 0x16; an A-ASSOCIATE-RQ starts with 0x01) on a plain
        port: say so once, instead of pynetdicom's 'Unknown PDU type' lines."""
        try:
            request.settimeout(self.handshake_timeout)
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            first = b""  # silent or gone: pynetdicom's own timeouts deal with it
        finally:
            try:
                request.settimeout(self.data_timeout)
            except OSError:
                pass
        if first != b"\x16":
            return False
        log.warning("refused connection from %s: it starts a TLS handshake on the plain DICOM port %s; %s",
                    client_address[0], self.server_address[1],
                    getattr(self, "lightbox_tls_hint", "TLS is off here (tls.mode)"))
        try:
            request.close()
        except OSError:
            pass
        return True


class _DispatchServer(_Server):
    """A server that never listens: a worker process of app.net.workers gets connections
    accepted by the supervisor and hands them in through ``process_request``."""

    def server_bind(self) -> None:
        pass

    def server_activate(self) -> None:
        pass


class Node:
    def __init__(self, archive: Archive, *, aet: str | None = None, port: int | None = None,
                 host: str | None = None, dispatch_only: bool = False, shared_load=None):
        """``dispatch_only``: no listening sockets (a worker process; connections arrive by
        ``dispatch``). ``shared_load``: (array, index) of per-worker association counts, so
        node.max_associations holds across every worker process."""
        acse_hooks.install()
        reactors.install()
        direct_messages.install()
        command_reader.install()
        self.dispatch_only = dispatch_only
        self.shared_load = shared_load
        self.archive = archive
        self.overrides = {"node.aet": aet, "node.port": port, "node.host": host}
        self.ae: AE | None = None
        self.servers: list[_Server] = []
        self.listening: list[str] = []
        self._nodes_version = -1
        self._nodes: list[remote_nodes.RemoteNode] = []
        self._settings_mtime = archive.settings.mtime()
        self._lock = threading.Lock()

    # -- settings -------------------------------------------------------------------------
    def setting(self, key: str):
        value = self.overrides.get(key)
        return value if value is not None else self.archive.settings[key]

    def _refresh(self) -> None:
        """Pick up edits of the settings file and of the remote node table."""
        with self._lock:
            retrust = False
            mtime = self.archive.settings.mtime()
            if mtime != self._settings_mtime:
                self._settings_mtime = mtime
                try:
                    self.archive.reload_settings()
                    log.info("settings reloaded")
                    retrust = True
                except Exception as exc:
                    log.error("settings file not reloaded, keeping the previous settings: %s", exc)
            version = remote_nodes.version(self.archive.engine)
            if version != self._nodes_version:
                self._nodes = remote_nodes.list_nodes(self.archive.engine)
                self._nodes_version = version
                retrust = True
            if retrust:
                self._update_tls_trust()

    def _update_tls_trust(self) -> None:
        """New pins, a new CA file or certificate take effect for the next handshake."""
        if not any(server.ssl_context is not None for server in self.servers):
            return
        try:
            ctx = self._server_ssl()
        except tls.TlsError as exc:
            log.error("TLS settings not applied, keeping the previous ones: %s", exc)
            return
        for server in self.servers:
            if server.ssl_context is not None:
                server.ssl_context = ctx

    def _server_ssl(self) -> ssl.SSLContext:
        return tls.server_context(self.archive.settings,
                                  [n.certificate for n in self._nodes if n.certificate])

    # -- acceptance policy ----------------------------------------------------------------
    def policy(self, assoc, request) -> tuple[int, int, int] | None:
        try:
            self._refresh()
        except Exception:
            log.exception("could not read the remote node list; rejecting")
            return REJECT_NO_REASON
        calling = request.calling_ae_title.strip()
        address = assoc.requestor.address
        if self.shared_load is not None:
            total = self.publish_load()
            limit = self.archive.settings["node.max_associations"]
            if total > limit:
                log.warning("rejected association from %s (%s): %d associations open, the limit is %d "
                            "(node.max_associations)", calling, address, total - 1, limit)
                return REJECT_LOCAL_LIMIT
        known = [n for n in self._nodes if n.aet == calling]
        if self.archive.settings["policy.check_calling_ae"] and not known:
            log.warning("rejected association from %s (%s): calling AE not configured; "
                        "add it with 'lightbox nodes add'", calling, address)
            return REJECT_CALLING_AE
        sock = assoc.dul.socket.socket if assoc.dul.socket else None
        if isinstance(sock, ssl.SSLSocket):
            reason = self._tls_refusal(sock, known)
            if reason:
                log.warning("rejected TLS association from %s (%s): %s", calling, address, reason)
                return REJECT_NO_REASON
        return None

    def _tls_refusal(self, sock: ssl.SSLSocket, known: list) -> str | None:
        """Why the caller's certificate does not authorise it, or None if it does (§4.4.1.1).

        A caller whose AE title is a configured node must present that node's pinned
        certificate (or, if it has none, one from a CA of tls.ca_file). An unknown caller (only
        admitted with policy.check_calling_ae off) may present any pinned or CA-issued one."""
        try:
            der = sock.getpeercert(binary_form=True)
            chain = tls.verified_chain(sock)
        except (ssl.SSLError, OSError, ValueError) as exc:
            return f"cannot read its certificate: {exc}"
        ca_file = self.archive.settings["tls.ca_file"] or None
        if known:  # pin -> the node(s) it belongs to; None: trust the CA file
            candidates = {n.cert_sha256: f"node '{n.name}': " for n in known}
        else:
            candidates = {n.cert_sha256: "" for n in self._nodes if n.cert_sha256} | {None: ""}
        errors: list[str] = []
        for pin, whose in candidates.items():
            try:
                tls.check_peer(der, peer_is_client=True, pin=pin, ca_file=ca_file, chain=chain)
                return None
            except tls.TlsError as exc:
                if whose + str(exc) not in errors:
                    errors.append(whose + str(exc))
            except Exception as exc:  # noqa: BLE001 - a malformed certificate is a refusal
                return f"unreadable certificate: {exc}"
        if "Extended Key Usage" in errors[0] or known:
            return "; ".join(errors)
        return ("its AE title is not a configured node and its certificate is neither pinned for any node "
                "nor issued by a CA of tls.ca_file; " + tls.PIN_HINT)

    def associations_in_use(self) -> int:
        """Established associations this node accepted (status bar; cheap, in memory)."""
        if self.ae is None:
            return 0
        return len([a for a in self.ae.active_associations if a.is_acceptor and a.is_established])

    # -- worker processes -----------------------------------------------------------------
    def publish_load(self) -> int:
        """Write this process's open associations to the shared array; return the total."""
        array, index = self.shared_load
        array[index] = len([a for a in self.ae.active_associations if a.is_acceptor]) if self.ae else 0
        return sum(array)

    def dispatch(self, index: int, sock: socket.socket, address) -> None:
        """Serve a connection the supervisor accepted on listener ``index``."""
        server = self.servers[index]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(server.data_timeout)
        server.process_request(sock, address)

    # -- lifecycle ------------------------------------------------------------------------
    def _listeners(self) -> dict[tuple[str, int], list[str]]:
        """(AE title, port) -> services, spec §4.4.1.2 (default: one AE, one port)."""
        groups: dict[tuple[str, int], list[str]] = {}
        for service in SERVICE_CONTEXTS:
            aet = self.archive.settings[f"services.{service}.aet"] or self.setting("node.aet")
            port = self.archive.settings[f"services.{service}.port"] or self.setting("node.port")
            groups.setdefault((aet, port), []).append(service)
        ports: dict[int, str] = {}
        for aet, port in groups:
            if port in ports:  # one listener answers one AE title
                raise ValueError(f"AE titles {ports[port]} and {aet} both on port {port}: give a service with its "
                                 f"own AE title its own port too (lightbox config set services.SERVICE.port N)")
            ports[port] = aet
        return groups

    def start(self) -> list[str]:
        settings = self.archive.settings
        self._refresh()
        configure_logging()
        ae = AE(ae_title=self.setting("node.aet"))
        configure_ae(ae, settings)
        ae.maximum_associations = settings["node.max_associations"]
        ae.require_called_aet = True
        ae.lightbox_policy = self.policy
        ae.lightbox_async_window = settings["policy.async_window"]
        ae.lightbox_event_driven = True
        self.ae = ae

        handlers = [
            (evt.EVT_C_ECHO, verification.handle_echo),
            (evt.EVT_C_STORE, storage.handle_store, [self.archive.ingest]),
            (evt.EVT_C_FIND, query_retrieve.handle_find, [self.archive]),
            (evt.EVT_SOP_EXTENDED, query_retrieve.handle_extended),
            (evt.EVT_C_MOVE, query_retrieve.handle_move, [self.archive]),
            (evt.EVT_C_GET, query_retrieve.handle_get, [self.archive]),
            (evt.EVT_N_ACTION, commitment.handle_action, [self.archive]),
            (evt.EVT_N_EVENT_REPORT, commitment.handle_report, [self.archive]),
        ]
        host = self.setting("node.host")
        bind_host = host or "::"
        mode = settings["tls.mode"]
        secure = self._server_ssl() if mode != "off" else None
        if secure is not None and not settings["tls.ca_file"] and not any(n.certificate for n in self._nodes):
            log.warning("TLS is on but no remote node has a pinned certificate and tls.ca_file is not set: "
                        "every TLS caller will be refused until one is (lightbox nodes add NAME --aet AET "
                        "--host HOST --port PORT --tls --cert FILE)")
        listening = []
        groups = self._listeners()
        tls_group = None
        if mode == "also":
            # One TLS port (tls.port) for the AE on node.port; services with a port of their own
            # stay plain unless tls.mode is "only".
            tls_group = next((g for g in groups if g[1] == self.setting("node.port")), next(iter(groups)))
            clash = [g for g in groups if g[1] == settings["tls.port"]]
            if clash:
                raise tls.TlsError(f"tls.port {settings['tls.port']} is also a plain DICOM port; with "
                                   "tls.mode = also choose another one (lightbox config set tls.port N)")
            for aet, port in groups:
                if (aet, port) != tls_group:
                    log.warning("%s on port %d has no TLS listener in tls.mode = also; "
                                "use tls.mode = only to secure every port", aet, port)
        for (aet, port), services in groups.items():
            contexts = [build_context(uid, list(ts)) for s in services for uid, ts in SERVICE_CONTEXTS[s]()]
            if "retrieve" in services and "storage" in services:
                # C-GET: a caller proposes the storage classes to receive on, taking the SCP
                # role (SCP/SCU Role Selection), on the association of its C-GET. (Retrieve
                # on an AE/port without storage offers C-MOVE only: that port must not
                # accept C-STOREs.)
                storage_uids = {uid for uid, _ in SERVICE_CONTEXTS["storage"]()}
                for cx in contexts:
                    if cx.abstract_syntax in storage_uids:
                        cx.scu_role, cx.scp_role = True, True
            for cx in contexts:
                if cx.abstract_syntax == commitment.PUSH_MODEL:
                    # a commitment SCP reporting on an association it opens takes the SCP role
                    cx.scu_role, cx.scp_role = True, True
            plans = []
            if mode == "only":
                plans.append((port, secure))
            else:
                plans.append((port, None))
                if (aet, port) == tls_group:
                    plans.append((settings["tls.port"], secure))
            for p, ctx in plans:
                server = self._make_server(ae, bind_host, p, aet, contexts, ctx, handlers, explicit=bool(host))
                server.lightbox_before_handshake = self._refresh
                server.lightbox_tls_hint = (f"TLS is on port {settings['tls.port']}" if tls_group
                                            else "TLS is off here (tls.mode = off)")
                self.servers.append(server)
                addr = server.server_address
                listening.append(f"{aet} on {'[' + addr[0] + ']' if ':' in addr[0] else addr[0]}:{addr[1]}"
                                 f"{' (TLS)' if ctx else ''} for {', '.join(services)}")
        for line in listening:
            log.info("listening: %s", line)
        self.listening = listening
        return listening

    def _make_server(self, ae, host, port, aet, contexts, ssl_ctx, handlers, *, explicit: bool) -> _Server:
        if self.dispatch_only:
            server = ae.make_server((host, port), ae_title=aet, contexts=contexts, ssl_context=ssl_ctx,
                                    evt_handlers=handlers, server_class=_DispatchServer)
            server.data_timeout = self.archive.settings["timeouts.tcp_data"]
            server.lightbox_explicit_host = explicit
            ae._servers.append(server)
            return server
        try:
            server = ae.make_server((host, port), ae_title=aet, contexts=contexts, ssl_context=ssl_ctx,
                                    evt_handlers=handlers, server_class=_Server)
        except OSError as exc:
            if not explicit and host == "::":  # no IPv6 on this machine: fall back to IPv4
                server = ae.make_server(("0.0.0.0", port), ae_title=aet, contexts=contexts,
                                        ssl_context=ssl_ctx, evt_handlers=handlers, server_class=_Server)
            else:
                raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
        server.data_timeout = self.archive.settings["timeouts.tcp_data"]
        # shutdown() waits for the loop's next look at its flag: 0.5 s by default, which every
        # 'lightbox retrieve' (a node of its own while it runs) paid on its way out
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                  name=f"listener-{aet}-{port}", daemon=True)
        thread.start()
        ae._servers.append(server)
        return server

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight associations finish (bounded), then abort the rest."""
        grace = self.archive.settings["timeouts.storage"] if grace is None else grace
        for server in self.servers:
            if isinstance(server, _DispatchServer):
                server.server_close()  # never served: shutdown() would wait for serve_forever
                self.ae._servers.remove(server)
            else:
                server.shutdown()
        self.servers.clear()
        if self.ae is None:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            # Connections that never sent an A-ASSOCIATE-RQ (port probes, half-open
            # sockets) have nothing in flight: they do not hold up the shutdown.
            if not [a for a in self.ae.active_associations if a.is_established]:
                break
            time.sleep(0.01)
        for assoc in self.ae.active_associations:
            if assoc.is_established:
                log.warning("aborting association with %s at shutdown", assoc.requestor.ae_title)
            assoc.abort()
