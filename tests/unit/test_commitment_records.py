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


def test_what_stands_for_an_instance_commits_it(tmp_path):
    """An Enhanced MR split into frames (or an object packed) for the node: the archived
    instance counts as committed once every object standing for it there is, the browser
    counts archived instances, and a database from before the column gets it filled in."""
    archive = Archive(tmp_path / "home")
    try:
        study, series = generate_uid(), generate_uid()
        ds = ct_dataset(study, series, generate_uid(), 1, size=8)
        assert archive.ingest.store_file(save(ds, tmp_path / "0.dcm")).ok
        mine = str(ds.SOPInstanceUID)
        frames = [("1.2.840.10008.5.1.4.1.1.4", generate_uid()) for _ in range(3)]
        commitment.record_request(archive.engine, "2.25.7", "PACS", [(c, u, mine) for c, u in frames])
        assert archive_states(archive.engine, [study]) == {study: "… PACS"}
        first = Dataset()
        first.TransactionUID = "2.25.7"
        first.ReferencedSOPSequence = Sequence([_ref(*f) for f in frames[:2]])
        first.FailedSOPSequence = Sequence([_ref(*frames[2], reason=0x0110)])
        commitment.record_report(archive.engine, first)
        assert archive_states(archive.engine, [study]) == {study: "✗ PACS: 1 failed"}  # one instance, not frames
        commitment.record_request(archive.engine, "2.25.8", "PACS", [(*frames[2], mine)])
        last = Dataset()
        last.TransactionUID = "2.25.8"
        last.ReferencedSOPSequence = Sequence([_ref(*frames[2])])
        commitment.record_report(archive.engine, last)
        assert archive_states(archive.engine, [study]) == {study: "✓ PACS"}
    finally:
        archive.close()


def test_an_older_database_gets_the_archived_instance_column_filled(tmp_path):
    from sqlalchemy import create_engine, text

    from app.store.db import open_engine
    home = tmp_path / "home"
    home.mkdir()
    old = create_engine(f"sqlite:///{home / 'lightbox.db'}")
    with old.begin() as conn:
        conn.execute(text("CREATE TABLE commit_item (id INTEGER PRIMARY KEY, transaction_uid VARCHAR(64) NOT NULL, "
                          "node VARCHAR(64) NOT NULL, sop_class VARCHAR(64) NOT NULL, sop_instance VARCHAR(64) "
                          "NOT NULL, state VARCHAR(16) NOT NULL, reason TEXT, requested_at DATETIME NOT NULL, "
                          "answered_at DATETIME)"))
        conn.execute(text("INSERT INTO commit_item (transaction_uid, node, sop_class, sop_instance, state, "
                          "requested_at) VALUES ('2.25.1', 'PACS', '1.2', '2.25.5', 'committed', '2026-01-01')"))
    old.dispose()
    engine = open_engine(home)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT archived_instance FROM commit_item")).scalar() == "2.25.5"
    engine.dispose()
