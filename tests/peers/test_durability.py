"""A success status means durable (DESIGN.md, Receive): kill -9 the node in the middle of a
storescu run and every acknowledged instance is there after a restart, readable, indexed,
with a sound database and no partial file. And a plain SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest
from pydicom.uid import generate_uid

from conftest import dcmtk, ls_json
from peerutil import (archive_files, ct_dataset, echoscu, journal_entries, partial_writes, read, save,
                      store_statuses, storescu)

pytestmark = pytest.mark.peers

TOTAL = 500
KILL_AFTER = 150


def _generate(folder, study: str, series: str) -> dict[str, object]:
    """TOTAL small CT images, each file named after its SOP Instance UID."""
    folder.mkdir()
    sources = {}
    for i in range(TOTAL):
        uid = generate_uid()
        path = save(ct_dataset(study, series, uid, i + 1, size=16), folder / f"{uid}.dcm")
        sources[uid] = path
    return sources


def test_kill_9_mid_transfer_loses_no_acknowledged_instance(node, tmp_path):
    study, series = generate_uid(), generate_uid()
    sources = _generate(tmp_path / "ct", study, series)

    proc = subprocess.Popen([dcmtk("storescu"), "-v", "-aec", node.aet, "+sd", node.host, str(node.port),
                             str(tmp_path / "ct")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, TCP_NODELAY="1"))
    lines: list[str] = []
    acknowledged = 0
    killed_at = None
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("I: Received Store Response (Success)"):
            acknowledged += 1
            if acknowledged >= KILL_AFTER and killed_at is None:
                node.proc.send_signal(signal.SIGKILL)
                killed_at = acknowledged
    proc.wait(60)
    node.proc.wait(10)
    assert killed_at is not None, "storescu finished before the kill:\n" + "\n".join(lines[-20:])
    acked = {os.path.basename(f)[:-4] for f, s in store_statuses("\n".join(lines)).items() if s == "Success"}
    assert len(acked) >= KILL_AFTER
    assert len(acked) < TOTAL, "the kill came too late to interrupt anything"

    # before the restart: whatever a crash left in the temp folder is never in the archive
    assert not [p for p in (node.home / "archive").rglob("*") if p.suffix == ".part" or p.name.endswith(".part")]
    check = sqlite3.connect(node.home / "lightbox.db")
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        check.close()

    node.start()
    assert echoscu(node).returncode == 0
    rows = {r["SOPInstanceUID"]: r for r in ls_json(node.home, "instance")}
    missing = acked - rows.keys()
    assert not missing, f"{len(missing)} acknowledged instances lost, e.g. {sorted(missing)[:3]}"
    for uid, row in rows.items():  # every indexed instance, acknowledged or not, is whole
        stored = read(node.home / "archive" / row["path"])
        assert stored.SOPInstanceUID == uid
        assert stored.PixelData == read(sources[uid]).PixelData
    assert not partial_writes(node.home)  # the dead node's unfinished writes are cleared at start
    assert not journal_entries(node.home)  # and what it acknowledged is archived and indexed
    with sqlite3.connect(node.home / "lightbox.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []

    # the sender retries everything: the stored ones are duplicates, the rest arrive
    out = storescu(node, tmp_path / "ct", opts=("+sd",), timeout=240)
    statuses = store_statuses(out.stdout)
    assert len(statuses) == TOTAL and set(statuses.values()) == {"Success"}, out.stdout[-2000:]
    assert len(ls_json(node.home, "instance")) == TOTAL
    assert len(archive_files(node.home)) == TOTAL
    [st] = [s for s in ls_json(node.home, "study") if s["StudyInstanceUID"] == study]
    assert st["NumberOfStudyRelatedInstances"] == TOTAL


def test_sigterm_stops_an_idle_node_cleanly(node, tmp_path):
    path = save(ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=16), tmp_path / "one.dcm")
    out = storescu(node, path)
    assert set(store_statuses(out.stdout).values()) == {"Success"}, out.stdout
    assert echoscu(node).returncode == 0
    started = time.monotonic()
    assert node.stop(signal.SIGTERM, timeout=30) == 0
    assert time.monotonic() - started < 10, "an idle node should stop at once"
    assert "Lightbox node stopped" in node.output()
    assert "Traceback" not in node.output()
    with sqlite3.connect(node.home / "lightbox.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # and it comes back with what it had
    node.start()
    assert len(ls_json(node.home, "instance")) == 1
    assert node.stop(signal.SIGINT, timeout=30) == 0
