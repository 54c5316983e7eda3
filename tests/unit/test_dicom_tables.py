from pydicom.uid import UID

from app.dicom import uids
from app.dicom.qr_attributes import stored_at, table_4_48
from app.dicom.sop_classes import all_sop_classes, lookup, storage_scp_classes
from app.dicom.transfer_syntaxes import STORAGE_SCP, TABLE_4_5


def test_table_8_1_is_complete_and_well_formed():
    storage = storage_scp_classes()
    assert len(storage) == 60  # 59 standard classes of Table 8-1 + CSA Non-Image
    assert "1.3.12.2.1107.5.9.1" in storage
    assert len(set(storage)) == len(storage)
    for c in all_sop_classes():
        assert uids.is_valid_uid(c.uid), c
    # the reference's typo (For Processing listed with the For Presentation UID) is fixed
    assert lookup("1.2.840.10008.5.1.4.1.1.1.1.1").name.endswith("For Processing")
    assert lookup("1.2.840.10008.5.1.4.1.1.1.2").visualization


def test_storage_transfer_syntaxes_cover_table_4_5_and_more():
    assert set(TABLE_4_5) <= set(STORAGE_SCP)
    for extra in ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5",
                  "1.2.840.10008.1.2.4.90"):
        assert extra in STORAGE_SCP
    for ts in STORAGE_SCP:
        assert UID(ts).is_transfer_syntax


def test_table_4_48_loaded_per_level():
    levels = {a.level for a in table_4_48()}
    assert levels == {"patient", "study", "series", "instance"}
    assert any(a.column == "InstitutionName" for a in stored_at("series"))  # typo fixed
    assert [a.column for a in stored_at("series") if a.unique] == ["SeriesInstanceUID"]
    # each attribute is stored at one level only
    cols = [a.column for lv in ("patient", "study", "series", "instance") for a in stored_at(lv)]
    assert len(cols) == len(set(cols))


def test_uid_validation_keeps_paths_safe():
    assert uids.is_valid_uid("1.2.840.10008.5.1.4.1.1.2")
    for bad in ("", "1.2.3/../../etc", "1..2", "1.02", "1.2.abc", "1.2.3.", "1" * 65, "1.2\x00", None, 5):
        assert not uids.is_valid_uid(bad), bad


def test_our_identity_is_ours():
    assert uids.IMPLEMENTATION_CLASS_UID.startswith("2.25.")
    assert not uids.IMPLEMENTATION_CLASS_UID.startswith("1.3.12.2.1107")
    assert len(uids.IMPLEMENTATION_VERSION_NAME) <= 16
    assert uids.new_uid().startswith("2.25.")
