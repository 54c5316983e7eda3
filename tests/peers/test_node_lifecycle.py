"""The headless node: lifecycle, IPv4/IPv6, per-service AE titles and ports, the
asynchronous operations window (spec §4.2.1.2.1, §4.3.3, §4.4.1.2)."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.pdu_primitives import AsynchronousOperationsWindowNegotiation

from tests.conftest import dcmtk, free_port, lightbox, ls_json, run_dcmtk, wait_port

pytestmark = pytest.mark.peers
VERIFICATION = "1.2.840.10008.1.1"


def _echo_pynetdicom(host: str, port: int, aet: str = "LIGHTBOX", window=None):
    # DCMTK 3.6.7's echoscu cannot address IPv6 hosts nor propose an asynchronous
    # operations window, so pynetdicom stands in as the client for exactly these checks.
    ae = AE(ae_title="PYCLIENT")
    ae.add_requested_context(VERIFICATION)
    ext = []
    if window is not None:
        item = AsynchronousOperationsWindowNegotiation()
        item.maximum_number_operations_invoked, item.maximum_number_operations_performed = window
        ext.append(item)
    assoc = ae.associate(host, port, ae_title=aet, ext_neg=ext or None)
    assert assoc.is_established, f"no association with {host}:{port}"
    status = assoc.send_c_echo()
    negotiated = assoc.acceptor.asynchronous_operations
    assoc.release()
    return status.Status, negotiated


def test_sigterm_exits_zero_and_releases_the_port(node):
    assert run_dcmtk("echoscu", "-aec", "LIGHTBOX", "127.0.0.1", str(node.port)).returncode == 0
    assert node.stop(signal.SIGTERM) == 0
    assert "stopped" in node.output()
    # the port is released: the node restarts on it at once
    node.start()
    assert run_dcmtk("echoscu", "-aec", "LIGHTBOX", "127.0.0.1", str(node.port)).returncode == 0


def test_sigterm_lets_an_inflight_association_finish(node, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    study, series = generate_uid(), generate_uid()
    uids = []
    for i in range(40):
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID, ds.Modality, ds.InstanceNumber = "SHUT^DOWN", "SD1", "CT", i + 1
        ds.Rows = ds.Columns = 512
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = np.full((512, 512), i, np.uint16).tobytes()
        ds.save_as(src / f"{i:03d}.dcm", enforce_file_format=True)
        uids.append(ds.SOPInstanceUID)
    env_cmd = [dcmtk("storescu"), "-aec", "LIGHTBOX", "+sd", "127.0.0.1", str(node.port), str(src)]
    sender = subprocess.Popen(env_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while not list((node.home / "archive").rglob("*.dcm")) and time.monotonic() < deadline:
        time.sleep(0.02)  # wait until the association is storing
    rc = node.stop(signal.SIGTERM)
    out = sender.communicate(timeout=60)[0]
    assert rc == 0
    assert sender.returncode == 0, out  # the association was allowed to finish
    node.start()
    stored = {r["SOPInstanceUID"] for r in ls_json(node.home, "instance")}
    assert stored == set(uids)


def test_ipv6_loopback(node_factory):
    node = node_factory(host="::1").start()
    status, _ = _echo_pynetdicom("::1", node.port)
    assert status == 0


def test_dual_stack_when_no_host_is_given(node_factory):
    node = node_factory(host="::").start()
    assert _echo_pynetdicom("::1", node.port)[0] == 0
    assert run_dcmtk("echoscu", "-aec", "LIGHTBOX", "127.0.0.1", str(node.port)).returncode == 0


@pytest.mark.parametrize("proposed,expected", [((5, 3), (5, 3)), ((0, 0), (16, 16)), ((0, 2), (16, 2))])
def test_async_operations_window(node, proposed, expected):
    """§4.2.1.2.1: any non-infinite window is accepted; an infinite one gets a finite offer."""
    status, negotiated = _echo_pynetdicom("127.0.0.1", node.port, window=proposed)
    assert status == 0
    assert negotiated == expected


def test_each_service_can_have_its_own_ae_title_and_port(node_factory):
    node = node_factory()
    store_port = free_port()
    lightbox(node.home, "config", "set", "services.storage.aet", "LBSTORE")
    lightbox(node.home, "config", "set", "services.storage.port", str(store_port))
    node.start()
    wait_port(store_port)
    # verification on the main AE/port
    assert run_dcmtk("echoscu", "-aec", "LIGHTBOX", "127.0.0.1", str(node.port)).returncode == 0
    # storage answers only on its own AE title and port
    from pydicom.data import get_testdata_file
    ct = get_testdata_file("CT_small.dcm")
    assert run_dcmtk("storescu", "-aec", "LBSTORE", "127.0.0.1", str(store_port), ct).returncode == 0
    wrong = run_dcmtk("storescu", "-aec", "LIGHTBOX", "127.0.0.1", str(node.port), ct)
    assert wrong.returncode != 0  # no storage context on the verification port
    assert len(ls_json(node.home, "instance")) == 1
