"""What a node meets in the field: datasets without the UIDs of spec §4.2.1.4.1.3, UIDs that
would climb out of the archive, garbage and half-sent PDUs, senders that vanish mid-dataset,
a full disk (Table 4-43, A700) and more callers than node.max_associations (§4.2.1.4)."""

from __future__ import annotations

import re
import shutil
import socket
import time
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config

from conftest import lightbox, ls_json
from peerutil import (
    RawAssociation,
    archive_files,
    journal_entries,
    partial_writes,
    associate_rq,
    c_store_command,
    ct_dataset,
    echoscu,
    p_data,
    rejected,
    save,
    store_statuses,
    storescu,
    wait_until,
)

pytestmark = pytest.mark.peers


VERIFICATION = "1.2.840.10008.1.1"
_STATUS = re.compile(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})")
_COMMENT = re.compile(r"\(0000,0902\) LO \[([^\]]*)\]")


def is_failure(status: int) -> bool:
    """Table 4-43 failures: A700 (out of resources), A9xx (dataset does not match), Cxxx."""
    return status == 0xA700 or status & 0xFF00 == 0xA900 or status & 0xF000 == 0xC000


def storescu_status(node, path: Path) -> tuple[int, str]:
    """Send one file with storescu -d; (DIMSE status, error comment) of its response."""
    out = storescu(node, path, opts=("-d",))
    found = _STATUS.findall(out.stdout)
    assert len(found) == 1, out.stdout[-3000:]
    comment = _COMMENT.search(out.stdout)
    return int(found[0], 16), comment.group(1) if comment else ""


def pynetdicom_status(node, path: Path) -> tuple[int, str]:
    """storescu refuses to send a file whose dataset lacks SOP Class or SOP Instance UID
    ("No SOP Class or Instance UID in file"), so these go out with pynetdicom as the client.
    With STORE_SEND_CHUNKED_DATASET it sends the bytes after the file meta unchanged, taking
    the command's UIDs from the file meta."""
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    saved = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        assoc = ae.associate(node.host, node.port, ae_title=node.aet)
        assert assoc.is_established
        try:
            rsp = assoc.send_c_store(path)
        finally:
            assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = saved
    assert "Status" in rsp, "no C-STORE response"
    return int(rsp.Status), str(rsp.get("ErrorComment", ""))


def home_files(home: Path) -> set[Path]:
    return {p for p in home.rglob("*") if p.is_file()}


def assert_nothing_stored(node, before: set[Path] | None = None) -> None:
    assert ls_json(node.home, "instance") == []
    assert archive_files(node.home) == []
    assert journal_entries(node.home) == [] and partial_writes(node.home) == []
    if before is not None:
        new = home_files(node.home) - before
        allowed = ("lightbox.db", "lightbox.db-wal", "lightbox.db-shm", "lightbox.log", "node-stderr.log")
        journal = node.home / "journal"
        # the journal's own bookkeeping: owner locks and empty spare files made ahead
        bookkeeping = {p for p in new if p.parent == journal and p.suffix == ".lock"
                       or p.parent.parent == journal and p.suffix == ".part" and not p.stat().st_size}
        assert {p for p in new - bookkeeping if p.name not in allowed} == set(), "files written outside the archive"


# -- missing and malformed UIDs ---------------------------------------------------------
@pytest.mark.parametrize("missing", ["SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_dataset_without_a_required_uid_is_refused(shared_node, tmp_path, missing):
    node = shared_node  # every case is refused, so the shared archive stays empty
    ds = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=16)
    sop_class, sop_instance = ds.SOPClassUID, ds.SOPInstanceUID
    delattr(ds, missing)
    # the file meta still names the instance: that is what the C-STORE command carries
    path = save(ds, tmp_path / f"no-{missing}.dcm", meta_sop_class=sop_class, meta_sop_instance=sop_instance)
    if missing in ("SOPClassUID", "SOPInstanceUID"):
        status, comment = pynetdicom_status(node, path)
    else:
        status, comment = storescu_status(node, path)
    assert is_failure(status), hex(status)
    assert status != 0xA700
    name = {"SOPClassUID": "SOP Class UID", "StudyInstanceUID": "Study Instance UID",
            "SeriesInstanceUID": "Series Instance UID", "SOPInstanceUID": "SOP Instance UID"}[missing]
    assert name in comment, comment
    assert_nothing_stored(node)
    assert echoscu(node).returncode == 0


@pytest.mark.parametrize("keyword, value", [
    ("StudyInstanceUID", "1.2.3/../../etc"),
    ("SeriesInstanceUID", "../../../../../tmp/evil"),
    ("SOPInstanceUID", "1.2.abc"),
    ("SOPInstanceUID", "1.2.3/../../../../x"),
    ("StudyInstanceUID", "1.2.840.10008.123456789012345678901234567890123456789012345678901"),  # 65 chars
    ("SeriesInstanceUID", "1.02.3"),
])
def test_illegal_uid_is_refused_and_touches_no_file(shared_node, tmp_path, keyword, value):
    node = shared_node
    src = tmp_path / "src"
    src.mkdir()
    ds = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=16)
    setattr(ds, keyword, value)
    path = save(ds, src / "bad-uid.dcm")
    before = home_files(node.home)
    outside_before = {p for p in tmp_path.rglob("*")} - {p for p in node.home.rglob("*")}
    status, comment = storescu_status(node, path)
    assert is_failure(status) and status != 0xA700, hex(status)
    assert "not a valid UID" in comment, comment
    assert_nothing_stored(node, before)
    outside_after = {p for p in tmp_path.rglob("*")} - {p for p in node.home.rglob("*")}
    assert outside_after == outside_before
    assert not Path("/tmp/evil").exists()
    assert echoscu(node).returncode == 0


# -- broken PDUs ---------------------------------------------------------------------------
def _send_and_close(node, data: bytes, linger: float = 0.3) -> None:
    with socket.create_connection((node.host, node.port), timeout=5) as s:
        s.sendall(data)
        time.sleep(linger)


def test_garbage_and_truncated_pdus_are_logged_and_the_node_keeps_serving(node):
    rq = associate_rq(node.aet, "RAW", [(1, VERIFICATION, [ExplicitVRLittleEndian])])
    cases = [
        b"GET / HTTP/1.1\r\nHost: lightbox\r\n\r\n",            # not DICOM at all
        bytes(range(0x08, 0x80)),                                # unknown PDU type 0x08
        rq[:40],                                                 # A-ASSOCIATE-RQ cut short
        rq[:6] + rq[6:20],                                       # header only half followed
        b"\x01\x00\xff\xff\xff\xf0" + rq[6:],                   # absurd PDU length
        rq[:6] + bytes(len(rq) - 6),                             # right length, zeroed body
        rq[:74] + b"\x10\x00\xff\xff" + rq[78:],                 # item length beyond the PDU
        b"\x04\x00\x00\x00\x00\x06\x00\x00\x00\x02\x01\x03",     # P-DATA before any association
    ]
    for data in cases:
        _send_and_close(node, data)
        out = echoscu(node)
        assert out.returncode == 0, f"after {data[:16]!r}: {out.stdout}"
    # a truncated request left open does not block anyone else either
    held = socket.create_connection((node.host, node.port))
    try:
        held.sendall(rq[:30])
        assert echoscu(node).returncode == 0
    finally:
        held.close()
    assert node.proc.poll() is None
    log = node.output()
    assert "Unknown PDU type" in log
    assert "shorter than expected" in log or "before the entire PDU" in log


@pytest.mark.parametrize("pdu", [
    b"\x04\x00\x00\x00\x00\x0a\x00\x00\x00\x40\x01\x03abcd",           # PDV longer than its PDU
    b"\x04\x00\x00\x00\x00\x05\x00\x00\x00\x01\x01",                  # PDV shorter than its header
    b"\x04\x00\x00\x00\x00\x00",                                        # P-DATA-TF without a PDV
    b"\x09\x00\x00\x00\x00\x02\x00\x00",                                # unknown PDU type
])
def test_malformed_pdus_during_data_transfer_abort_only_that_association(shared_node, pdu):
    """The short way P-DATA-TF PDUs take once an association is established (app.net.reactors)
    still refuses what is malformed: the association is aborted, a log line says why, and the
    node goes on serving."""
    raw = RawAssociation(shared_node.host, shared_node.port)
    try:
        assert raw.associate(shared_node.aet, "RAWSCU", [(1, CTImageStorage, [ExplicitVRLittleEndian])]) == 0x02
        raw.send(pdu)
        pdu_type, _ = raw.recv_pdu()
        assert pdu_type == 0x07  # A-ABORT
    finally:
        raw.close()
    assert echoscu(shared_node).returncode == 0
    assert shared_node.proc.poll() is None
    assert re.search(r"malformed presentation data values|unknown PDU type 0x09|Unknown PDU type",
                     shared_node.output()), shared_node.output()[-2000:]


def test_half_sent_requests_do_not_hold_association_slots(node_factory):
    """Table 4-53 'timeout for TCP data': a peer silent in the middle of a PDU is dropped, so
    twelve half-sent A-ASSOCIATE-RQs (node.max_associations) cannot lock the node out."""
    node = node_factory()
    lightbox(node.home, "config", "set", "timeouts.tcp_data", "2")
    node.start()
    rq = associate_rq(node.aet, "RAW", [(1, VERIFICATION, [ExplicitVRLittleEndian])])
    held = []
    try:
        for _ in range(12):
            s = socket.create_connection((node.host, node.port))
            s.sendall(rq[:40])
            held.append(s)
        time.sleep(1.0)  # every connection handed to a worker and counted
        out = echoscu(node)
        assert rejected(out.stdout) and "Local Limit Exceeded" in out.stdout, out.stdout
        # the half-sent requests are still open, yet the node answers again soon
        # (well before timeouts.association, 30 s, which bounds a silent connection anyway)
        ok = wait_until(lambda: echoscu(node).returncode == 0, timeout=12, interval=0.5)
        assert ok, "the node never freed the slots of half-sent requests"
    finally:
        for s in held:
            s.close()
    assert node.proc.poll() is None


# -- a sender that vanishes in the middle of a dataset ----------------------------------
def _raw_store(node, ds, *, fraction: float = 1.0, abort_pdu: bool = False) -> bytes | None:
    """C-STORE `ds` over a raw association, sending only `fraction` of the dataset; then
    either wait for the response (complete send) or vanish (close, or A-ABORT first)."""
    raw = RawAssociation(node.host, node.port)
    try:
        assert raw.associate(node.aet, "RAWSCU", [(1, CTImageStorage, [ExplicitVRLittleEndian])]) == 0x02
        raw.send(p_data(1, c_store_command(CTImageStorage, ds.SOPInstanceUID), command=True, last=True))
        data = encode_explicit(ds)
        chunk = 16000
        pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
        count = len(pieces) if fraction >= 1 else max(1, int(len(pieces) * fraction))
        for i, piece in enumerate(pieces[:count]):
            raw.send(p_data(1, piece, command=False, last=i == len(pieces) - 1))
        if fraction >= 1:
            pdu_type, body = raw.recv_pdu()
            assert pdu_type == 0x04
            raw.send(b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00")  # A-RELEASE-RQ
            raw.recv_pdu()
            return body
        if abort_pdu:
            raw.send(b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00")  # A-ABORT
        return None
    finally:
        raw.close()


def encode_explicit(ds) -> bytes:
    from pynetdicom.dsutils import encode
    return encode(ds, False, True)


def test_sender_vanishing_mid_dataset_leaves_nothing(node):
    # a complete send over the raw client first: proves the client itself is right
    good = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=512)
    body = _raw_store(node, good)
    assert body and b"\x00\x00\x00\x09\x02\x00\x00\x00\x00\x00" in body  # (0000,0900) US Status = 0
    assert [r["SOPInstanceUID"] for r in ls_json(node.home, "instance")] == [good.SOPInstanceUID]

    vanished = []
    for abort_pdu in (False, True):
        ds = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 2, size=512)
        assert _raw_store(node, ds, fraction=0.5, abort_pdu=abort_pdu) is None
        vanished.append(ds.SOPInstanceUID)
        assert echoscu(node).returncode == 0
    time.sleep(1)
    assert [r["SOPInstanceUID"] for r in ls_json(node.home, "instance")] == [good.SOPInstanceUID]
    assert len(archive_files(node.home)) == 1
    assert wait_until(lambda: not partial_writes(node.home), timeout=10)
    assert not any(uid in str(p) for p in node.home.rglob("*") for uid in vanished)
    assert node.proc.poll() is None
    # and the node still stores
    out = storescu(node, save(ct_dataset(generate_uid(), generate_uid(), generate_uid(), 3, size=16),
                              node.home.parent / "after.dcm"))
    assert set(store_statuses(out.stdout).values()) == {"Success"}, out.stdout


# -- full disk ------------------------------------------------------------------------------
def test_full_disk_answers_out_of_resources_and_keeps_what_it_has(node, tmp_path):
    study, series = generate_uid(), generate_uid()
    first = save(ct_dataset(study, series, generate_uid(), 1, size=32), tmp_path / "1.dcm")
    second = save(ct_dataset(study, series, generate_uid(), 2, size=32), tmp_path / "2.dcm")
    out = storescu(node, first)
    assert store_statuses(out.stdout) == {str(first): "Success"}, out.stdout
    stored = archive_files(node.home)
    assert len(stored) == 1
    content = stored[0].read_bytes()

    # a floor above the disk's size: the disk is "full" (the node re-reads its settings)
    assert shutil.disk_usage(node.home).total < 10_000_000 * 2**20
    lightbox(node.home, "config", "set", "storage.free_space_floor_mb", "10000000")
    status, comment = storescu_status(node, second)
    assert status == 0xA700, (hex(status), comment)
    assert "space" in comment.lower()

    rows = ls_json(node.home, "instance")
    assert [r["InstanceNumber"] for r in rows] == ["1"]
    assert archive_files(node.home) == stored and stored[0].read_bytes() == content
    assert journal_entries(node.home) == [] and partial_writes(node.home) == []
    assert echoscu(node).returncode == 0

    # room again: the same file goes through without a restart
    lightbox(node.home, "config", "set", "storage.free_space_floor_mb", "0")
    out = storescu(node, second)
    assert store_statuses(out.stdout) == {str(second): "Success"}, out.stdout
    assert len(ls_json(node.home, "instance")) == 2


# -- max associations ---------------------------------------------------------------------
def test_thirteenth_association_is_rejected_while_twelve_are_held(node):
    assert lightbox(node.home, "config", "get", "node.max_associations").stdout.strip() == "12"
    ae = AE(ae_title="HOLDER")
    ae.add_requested_context(VERIFICATION)
    held = []
    try:
        for i in range(12):
            assoc = ae.associate(node.host, node.port, ae_title=node.aet)
            assert assoc.is_established, f"association {i + 1} of 12 refused\n{node.output()[-3000:]}"
            held.append(assoc)
        out = echoscu(node)
        assert out.returncode != 0 and rejected(out.stdout), out.stdout
        assert "Rejected Transient" in out.stdout and "Local Limit Exceeded" in out.stdout, out.stdout
        # the held ones still work
        assert held[5].send_c_echo().Status == 0
        held.pop(0).release()
        assert wait_until(lambda: echoscu(node).returncode == 0, timeout=10, interval=0.2)
    finally:
        for assoc in held:
            assoc.release()
    assert wait_until(lambda: echoscu(node).returncode == 0, timeout=10)


def test_pdu_longer_than_our_maximum_is_refused(shared_node):
    """A P-DATA-TF announcing 200 MB (our maximum PDU length is 32 kB) is refused at its
    header: the node does not buffer what the peer claims, and keeps serving."""
    import struct
    raw = RawAssociation(shared_node.host, shared_node.port)
    try:
        assert raw.associate(shared_node.aet, "RAWSCU", [(1, CTImageStorage, [ExplicitVRLittleEndian])]) == 0x02
        raw.send(struct.pack(">BBL", 0x04, 0, 200 * 2**20))
        sent, closed = 0, False
        chunk = b"\0" * 65536
        deadline = time.monotonic() + 10
        while sent < 32 * 2**20 and time.monotonic() < deadline:
            try:
                raw.sock.sendall(chunk)
                sent += len(chunk)
            except OSError:
                closed = True
                break
        assert closed, f"the node accepted {sent} bytes of an oversized PDU"
    finally:
        raw.close()
    assert "more than our maximum PDU length" in shared_node.output() + _log(shared_node)
    assert echoscu(shared_node).returncode == 0


def _log(node) -> str:
    path = node.home / "logs" / "lightbox.log"
    return path.read_text(errors="replace") if path.exists() else ""
