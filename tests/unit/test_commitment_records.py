"""What a storage commitment report does to the archive's records (the network side is in
tests/peers/test_commitment.py, against Orthanc): items marked, wholly committed studies
recorded, the browser told which studies changed."""

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from app import events
from app.net import commitment
from app.store.archive import Archive
from app.store.browse import archive_states
from tests.peers.peerutil import ct_dataset, save


def _ref(sop_class, sop_instance, reason=None):
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
    if reason:
        item.FailureReason = reason
    return item


def test_report_marks_items_records_studies_and_tells_the_browser(tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        study, series = generate_uid(), generate_uid()
        items = []
        for i in range(2):
            ds = ct_dataset(study, series, generate_uid(), i + 1, size=8)
            assert archive.ingest.store_file(save(ds, tmp_path / f"{i}.dcm")).ok
            items.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
        seen = []
        unsubscribe = events.subscribe("commitment-updated", seen.append)
        try:
            commitment.record_request(archive.engine, "2.25.1", "PACS", items)
            assert archive_states(archive.engine, [study]) == {study: "… PACS"}
            report = Dataset()
            report.TransactionUID = "2.25.1"
            report.ReferencedSOPSequence = Sequence([_ref(*items[0])])
            report.FailedSOPSequence = Sequence([_ref(*items[1], reason=0x0110)])
            assert commitment.record_report(archive.engine, report) == (1, 1)
            assert archive_states(archive.engine, [study]) == {study: "✗ PACS: 1 failed"}
            commitment.record_request(archive.engine, "2.25.2", "PACS", items[1:])
            again = Dataset()
            again.TransactionUID = "2.25.2"
            again.ReferencedSOPSequence = Sequence([_ref(*items[1])])
            assert commitment.record_report(archive.engine, again) == (1, 0)
            assert archive_states(archive.engine, [study]) == {study: "✓ PACS"}  # now wholly committed
            unknown = Dataset()
            unknown.TransactionUID = "2.25.99"
            assert commitment.record_report(archive.engine, unknown) == (0, 0)
        finally:
            unsubscribe()
        assert seen == [[study], [study]]
    finally:
        archive.close()
