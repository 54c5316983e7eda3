"""Receiving in several worker processes: ``lightbox node`` with node.workers > 1.

One Python process is CPU- and GIL-bound well below what a 2-core machine can ingest, so
the headless node runs a supervisor and N worker processes. The supervisor owns the
listening sockets and only accepts: each connection goes, as a file descriptor over a Unix
socket, to the worker with the fewest open associations. A worker is a whole node (AE,
policy, TLS, store pipeline, index writer) that never listens itself. Workers publish their
open association counts in shared memory, so node.max_associations holds for the sum.

A worker dies with the supervisor (PR_SET_PDEATHSIG): a killed node leaves nothing running,
exactly as the single-process node, and what was acknowledged is durable either way.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import selectors
import signal
import socket
import struct
import threading
import time
from pathlib import Path

from app.store.archive import Archive

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the channel's EOF still stops the worker
        pass


def _worker_main(home: str, db_url: str | None, overrides: dict, index: int, chan: socket.socket,
                 load, verbose: bool, parent_pid: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
        os._exit(1)
    from app import logs
    from app.memory import tune_malloc
    from app.net.node import Node
    tune_malloc()
    logs.setup(Path(home), verbose, to_file=True, rotate=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; Ctrl-C reaches all
    archive = Archive(Path(home), db_url)
    node = Node(archive, dispatch_only=True, shared_load=(load, index), **overrides)
    node.start()
    chan.send(b"ready")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def receive() -> None:
        while not stop.is_set():
            try:
                msg, fds, _flags, _addr = socket.recv_fds(chan, 1024, 1)
            except OSError:
                break
            if not msg:  # supervisor gone
                break
            listener, port = struct.unpack("!HH", msg[:4])
            host = msg[4:].decode()
            for fd in fds:
                sock = socket.socket(fileno=fd)
                try:
                    node.dispatch(listener, sock, (host, port))
                except Exception:
                    log.exception("could not serve a connection from %s", host)
                    sock.close()
        stop.set()

    def publish() -> None:
        while not stop.wait(0.02):
            node.publish_load()

    threading.Thread(target=receive, name="dispatch", daemon=True).start()
    threading.Thread(target=publish, name="load", daemon=True).start()
    stop.wait()
    node.stop()
    archive.close()


class Supervisor:
    def __init__(self, archive: Archive, workers: int, *, aet: str | None = None, port: int | None = None,
                 host: str | None = None, db_url: str | None = None, verbose: bool = False):
        self.archive = archive
        self.n = workers
        self.overrides = {"aet": aet, "port": port, "host": host}
        self.db_url = db_url
        self.verbose = verbose
        self.listeners: list[socket.socket] = []
        self.procs: list[mp.Process] = []
        self.channels: list[socket.socket] = []
        self.load = None
        self._recent: list[list[float]] = []
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _plan(self) -> tuple[list[tuple[str, int, bool]], list[str]]:
        """Listening addresses in the workers' order, and their descriptions."""
        from app.net.node import Node
        node = Node(self.archive, dispatch_only=True, **self.overrides)
        lines = node.start()
        addrs = [(s.server_address[0], s.server_address[1], s.lightbox_explicit_host) for s in node.servers]
        node.stop(grace=0)
        return addrs, lines

    @staticmethod
    def _listen(host: str, port: int, explicit: bool) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            if explicit:
                raise
            family, host = socket.AF_INET, "0.0.0.0"
            sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:
                pass
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def start(self) -> list[str]:
        addrs, lines = self._plan()
        self.load = mp.get_context("spawn").Array("i", self.n, lock=False)
        self._recent = [[] for _ in range(self.n)]
        self.procs = [None] * self.n
        self.channels = [None] * self.n
        for i in range(self.n):
            self._spawn(i)
        # Listen only once every worker can serve: a worker that cannot start (bad TLS
        # files, an unreachable database) fails the start with its reason in the log.
        for i, chan in enumerate(self.channels):
            chan.settimeout(60)
            try:
                ready = chan.recv(16)
            except OSError:
                ready = b""
            chan.settimeout(None)
            if ready != b"ready":
                self.stop(grace=0)
                raise RuntimeError(f"worker process {i} did not start (exit code {self.procs[i].exitcode}); "
                                   f"see {self.archive.home / 'logs' / 'lightbox.log'}")
        for host, port, explicit in addrs:
            self.listeners.append(self._listen(host, port, explicit))
        for index, sock in enumerate(self.listeners):
            self._selector.register(sock, selectors.EVENT_READ, index)
        self._thread = threading.Thread(target=self._accept_loop, name="accept", daemon=True)
        self._thread.start()
        return [f"{line} ({self.n} worker processes)" for line in lines]

    def _spawn(self, i: int) -> None:
        ctx = mp.get_context("spawn")
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        proc = ctx.Process(target=_worker_main, name=f"worker-{i}", daemon=False,
                           args=(str(self.archive.home), self.db_url, self.overrides, i, child,
                                 self.load, self.verbose, os.getpid()))
        proc.start()
        child.close()
        old = self.channels[i]
        self.procs[i], self.channels[i] = proc, parent
        self.load[i] = 0
        if old is not None:
            old.close()

    def respawn_dead(self) -> None:
        """A worker that died (a crash in a library, the OOM killer) is replaced; the
        associations it held are lost, everything it acknowledged is stored."""
        if self._stop.is_set():
            return
        for i, proc in enumerate(self.procs):
            if not proc.is_alive():
                log.error("worker process %s exited with %s; starting a new one", proc.name, proc.exitcode)
                self._spawn(i)

    def _choose(self) -> int:
        now = time.monotonic()
        best, best_load = 0, None
        for i in range(self.n):
            # connections handed over in the last moment are not in the shared counts yet
            self._recent[i] = [t for t in self._recent[i] if now - t < 0.2]
            load = self.load[i] + len(self._recent[i])
            if self.procs[i].is_alive() and (best_load is None or load < best_load):
                best, best_load = i, load
        self._recent[best].append(now)
        return best

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                try:
                    conn, address = key.fileobj.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    log.error("accept failed: %s", exc)
                    continue
                try:
                    worker = self._choose()
                    msg = struct.pack("!HH", key.data, address[1]) + address[0].encode()
                    socket.send_fds(self.channels[worker], [msg], [conn.fileno()])
                except OSError as exc:
                    log.error("could not hand a connection from %s to a worker: %s", address[0], exc)
                finally:
                    conn.close()

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting; each worker finishes its in-flight associations, then exits."""
        grace = self.archive.settings["timeouts.storage"] if grace is None else grace
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for sock in self.listeners:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        procs = [p for p in self.procs if p is not None]
        for proc in procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace + 10
        for proc in procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("worker %s did not stop in time; killing it", proc.name)
                proc.kill()
                proc.join(5)
        for chan in self.channels:
            if chan is not None:
                chan.close()
