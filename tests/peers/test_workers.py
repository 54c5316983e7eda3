"""The headless node's worker processes (node.workers): parallel associations are spread
over processes, the association limit holds for their sum, a dead worker is replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from pydicom.uid import generate_uid

from tests.conftest import dcmtk, ls_json, run_dcmtk
from tests.peers.peerutil import ct_dataset, save

pytestmark = pytest.mark.peers


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def _worker_pids(node) -> list[int]:
    # spawn starts a resource tracker beside the workers; workers run app's worker entry
    pids = []
    for pid in _children(node.proc.pid):
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
        if b"resource_tracker" not in cmd:
            pids.append(pid)
    return pids


def test_parallel_associations_over_two_workers(node_factory, tmp_path):
    node = node_factory(extra=("--workers", "2")).start()
    deadline = time.monotonic() + 10  # the port listens a moment before the line is printed
    while "2 worker processes" not in node.output():
        assert time.monotonic() < deadline, node.output()
        time.sleep(0.05)
    study = generate_uid()
    dirs = []
    for d in range(4):
        folder = tmp_path / f"part{d}"
        folder.mkdir()
        series = generate_uid()
        for i in range(10):
            save(ct_dataset(study, series, generate_uid(), i + 1), folder / f"{i}.dcm")
        dirs.append(folder)
    senders = [subprocess.Popen([dcmtk("storescu"), "-aec", "LIGHTBOX", "+sd", "127.0.0.1", str(node.port),
                                 str(d)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for d in dirs]
    for s in senders:
        out = s.communicate(timeout=120)[0]
        assert s.returncode == 0, out
    studies = ls_json(node.home, "study")
    assert len(studies) == 1 and studies[0]["NumberOfStudyRelatedInstances"] == 40
    assert studies[0]["NumberOfStudyRelatedSeries"] == 4


def test_dead_worker_is_replaced_and_node_keeps_serving(node_factory):
    node = node_factory(extra=("--workers", "2")).start()
    workers = _worker_pids(node)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = _worker_pids(node)
        if len(now) == 2 and workers[0] not in now:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"worker not replaced: {_worker_pids(node)}")
    for _ in range(4):  # whichever worker gets it
        assert run_dcmtk("echoscu", "-aec", "LIGHTBOX", "127.0.0.1", str(node.port)).returncode == 0
    assert "starting a new one" in node.output()


def test_workers_die_with_a_killed_node(node_factory):
    node = node_factory(extra=("--workers", "2")).start()
    workers = _worker_pids(node)
    node.kill()  # SIGKILL: no chance to stop its workers itself
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"
              for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in workers if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    assert alive == []


def test_limit_holds_across_workers(node_factory):
    from pynetdicom import AE
    node = node_factory(extra=("--workers", "2"))
    from tests.conftest import lightbox
    lightbox(node.home, "config", "set", "node.max_associations", "3")
    node.start()
    time.sleep(0.5)  # the start-up port probe's connection counts until its thread has ended
    ae = AE(ae_title="HOLDER")
    ae.add_requested_context("1.2.840.10008.1.1")
    held = []
    try:
        for _ in range(3):
            a = ae.associate("127.0.0.1", node.port, ae_title="LIGHTBOX")
            assert a.is_established
            held.append(a)
        time.sleep(0.5)  # both workers publish their counts every 20 ms
        fourth = run_dcmtk("echoscu", "-aec", "LIGHTBOX", "127.0.0.1", str(node.port))
        assert fourth.returncode != 0
        assert "Local Limit Exceeded" in fourth.stdout + fourth.stderr
    finally:
        for a in held:
            a.release()
    deadline = time.monotonic() + 10  # a released association's thread ends a moment later
    while run_dcmtk("echoscu", "-aec", "LIGHTBOX", "127.0.0.1", str(node.port)).returncode != 0:
        assert time.monotonic() < deadline, "the limit was not lifted after the release"
        time.sleep(0.2)
