"""Shared fixtures: data homes, the Lightbox CLI and node as real processes, DCMTK tools.

Peer tests never skip: a missing DCMTK or Orthanc is a failure (DESIGN.md, Tests).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PEERS = SHARED / "peers"


def dcmtk(tool: str) -> str:
    """Absolute path of a DCMTK program. pynetdicom installs console scripts with the same
    names (storescu, echoscu, ...) that shadow DCMTK on PATH, so never rely on PATH."""
    for d in ("/usr/bin", "/usr/local/bin"):
        p = Path(d) / tool
        if p.exists():
            return str(p)
    pytest.fail(f"DCMTK program {tool} is not installed (apt-get install dcmtk)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket(family) as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def lightbox(home: Path, *args: str, check: bool = True, input: str | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real CLI (`python -m app`) against a data home."""
    proc = subprocess.run([sys.executable, "-m", "app", "--home", str(home), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"lightbox {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def ls_json(home: Path, level: str = "instance", *keys: str) -> list[dict]:
    args = ["ls", "--level", level, "--json"]
    for k in keys:
        args += ["-k", k]
    return json.loads(lightbox(home, *args).stdout)


class NodeProcess:
    """`lightbox node` as a real process on 127.0.0.1."""

    def __init__(self, home: Path, aet: str = "LIGHTBOX", port: int | None = None, host: str = "127.0.0.1",
                 extra: tuple[str, ...] = ()):
        self.home, self.aet, self.host = home, aet, host
        self.port = port or free_port()
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.log = home / "node-stderr.log"

    def start(self, wait_for: int | None = None) -> "NodeProcess":
        self.home.mkdir(parents=True, exist_ok=True)
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "--home", str(self.home), "node", "--aet", self.aet,
             "--port", str(self.port), "--host", self.host, *self.extra],
            cwd=ROOT, stdout=self._logf, stderr=subprocess.STDOUT)
        wait_port(wait_for or self.port, self.host, proc=self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._logf.close()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self._logf.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def node_factory(tmp_path):
    started: list[NodeProcess] = []

    def make(home: Path | None = None, *, allow_any: bool = True, **kw) -> NodeProcess:
        h = home or tmp_path / f"home{len(started)}"
        h.mkdir(parents=True, exist_ok=True)
        if allow_any:
            lightbox(h, "config", "set", "policy.check_calling_ae", "false")
        n = NodeProcess(h, **kw)
        started.append(n)
        return n

    yield make
    for n in started:
        n.kill()


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory):
    """One node for the cases of a parametrized test (saves a node start per case)."""
    home = tmp_path_factory.mktemp("shared") / "home"
    home.mkdir()
    lightbox(home, "config", "set", "policy.check_calling_ae", "false")
    node = NodeProcess(home).start()
    yield node
    node.kill()


@pytest.fixture
def node(node_factory) -> NodeProcess:
    """A running node accepting any calling AE, AE title LIGHTBOX on a free port."""
    return node_factory().start()


def run_dcmtk(tool: str, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, TCP_NODELAY="1")
    proc = subprocess.run([dcmtk(tool), *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def require(program: str) -> str:
    path = shutil.which(program)
    if not path:
        pytest.fail(f"{program} is not installed")
    return path


@pytest.fixture(autouse=True)
def close_vtk_windows():
    """After each test, close viewer windows (even when the test failed): their VTK render
    windows hold X connections of their own, and one still open when Xvfb stops at the end
    of the session makes Xlib abort the whole run."""
    yield
    if "app.ui.viewer.window" not in sys.modules:
        return
    import gc

    from PySide6.QtWidgets import QApplication

    from app.ui.viewer.window import ViewerWindow
    if QApplication.instance() is None:
        return
    from PySide6.QtCore import QEvent
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, ViewerWindow) and not getattr(widget, "_closing", False):
            widget.close()
    # closed viewers delete themselves; deferred deletions run only on this request
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    QApplication.processEvents()
    gc.collect()


# -- screenshots of the GUI tests (looked at by the engineers; tests/artifacts is not committed)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def screen_shot(widget, name: str, *, from_screen: bool = True) -> Path:
    """``widget`` saved as tests/artifacts/NAME. OpenGL views must be read from the screen
    (QScreen.grabWindow); plain widgets can be rendered by Qt (``from_screen=False``), which
    does not lag a repaint behind."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / name
    image = widget.screen().grabWindow(widget.winId()) if from_screen else widget.grab()
    assert image.save(str(out)) and out.stat().st_size > 0
    return out


def pdf_document(text: str) -> bytes:
    """A one-page PDF with a line of text (offsets computed, so any reader accepts it)."""
    content = f"BT /F1 24 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
               b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 200]/Contents 4 0 R"
               b"/Resources<</Font<</F1 5 0 R>>>>>>",
               b"<</Length %d>>stream\n" % len(content) + content + b"\nendstream",
               b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out
