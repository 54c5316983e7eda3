"""Media application profiles (app.media.profiles) against the spec text: Tables 5-3, 5-4 and
5-5 row for row (SOP class UIDs counted in the text, not hard-coded), every UID checked
against pydicom's dictionary, the syntaxes each class is written in, and Table 1-2."""

from __future__ import annotations

import re

import pytest
from pydicom.uid import UID

from app.media import profiles
from app.media.profiles import CHOICES, PROFILES, allowed, profile_for, rows, sop_classes, target_syntax
from conftest import SHARED

SPEC = SHARED / "spec" / "reference-conformance-statement.txt"

ELE = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K_LOSSY = "1.2.840.10008.1.2.4.91"
P = "1.2.840.10008.5.1.4.1.1."
CT, MR, MG, MG_PROC, DBT = P + "2", P + "4", P + "1.2", P + "1.2.1", P + "13.1.3"
NM, PET = P + "20", P + "128"
DX_PROCESSING = P + "1.1.1"
CSA_NON_IMAGE = "1.3.12.2.1107.5.9.1"
NON_IMAGE = {
    "Basic Text SR": P + "88.11", "Enhanced SR": P + "88.22", "Comprehensive SR": P + "88.33",
    "Mammography CAD SR": P + "88.50", "X-Ray Radiation Dose SR": P + "88.67",
    "GSPS": P + "11.1", "Color PS": P + "11.2", "Pseudo-Color PS": P + "11.3", "Blending PS": P + "11.4",
    "Key Object Selection": P + "88.59", "Encapsulated PDF": P + "104.1",
}
J2K_PROFILES = ("STD-GEN-DVD-J2K", "STD-GEN-USB-J2K")
PLAIN_PROFILES = ("STD-GEN-CD", "STD-GEN-DVD")

SOP_CLASS_RE = re.compile(r"(?<![\d.])(1\.2\.840\.10008\.(?:5\.1\.4\.1\.1(?:\.\d+)+|1\.3\.10)|1\.3\.12\.2\.1107\.5\.9\.1)(?![\d.])")
SYNTAX_RE = re.compile(r"(?<![\d.])(1\.2\.840\.10008\.1\.2(?:\.\d+)*)(?![\d.])")

# (heading of the table, heading after it)
SECTIONS = {
    "5-3": ("Table 5-3: SOP Classes", "Table 5-4: SOP Classes"),
    "5-4": ("Table 5-4: SOP Classes", "5.3 AUGMENTED"),
    "5-5": ("Table 5-5: Private SOP Classes", "5.4 MEDIA CONFIGURATION"),
}


def spec_lines() -> list[str]:
    return SPEC.read_text(encoding="utf-8").splitlines()


def section(start: str, end: str) -> str:
    """The text from heading ``start`` to heading ``end`` (not the lists of tables: their
    lines carry the page number after a tab)."""
    lines = spec_lines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start) and "\t" not in line)
    last = next(i for i, line in enumerate(lines) if i > first and line.startswith(end))
    return "\n".join(lines[first:last])


def table_rows(table: str) -> list[profiles.Row]:
    return [r for r in rows() if r.table == table]


def corrected(table: str) -> set[str]:
    """Classes whose UID the reference prints wrong (the note says so)."""
    return {r.sop_class_uid for r in table_rows(table) if r.note.startswith("UID corrected")}


@pytest.mark.parametrize("table", SECTIONS)
def test_one_row_per_sop_class_of_the_spec_table(table):
    text_uids = set(SOP_CLASS_RE.findall(section(*SECTIONS[table])))
    uids = [r.sop_class_uid for r in table_rows(table)]
    assert len(uids) == len(set(uids))
    # the text's garbled repeats of a row carry the same UID; a corrected UID replaces a
    # duplicate one (Table 5-4 prints DX For Processing with the For Presentation UID)
    assert set(uids) == text_uids | corrected(table)
    assert len(uids) == len(text_uids) + len(corrected(table))


def test_row_counts():
    # what the counting above gives; a change to the table data should be deliberate
    assert {t: len(table_rows(t)) for t in SECTIONS} == {
        t: len(set(SOP_CLASS_RE.findall(section(*SECTIONS[t])))) + len(corrected(t)) for t in SECTIONS}
    assert corrected("5-3") == set() and corrected("5-4") == {DX_PROCESSING}
    assert len(table_rows("5-4")) == len(table_rows("5-3")) + 1  # 5-3 has no DX For Processing
    assert {r.sop_class_uid for r in table_rows("5-3")} | {DX_PROCESSING} == {
        r.sop_class_uid for r in table_rows("5-4")}


@pytest.mark.parametrize("table", SECTIONS)
def test_transfer_syntaxes_are_those_of_the_spec_table(table):
    in_text = set(SYNTAX_RE.findall(section(*SECTIONS[table])))
    in_data = {ts for r in table_rows(table) for ts in r.transfer_syntaxes}
    assert in_data == in_text


def test_every_uid_is_valid_and_named_as_pydicom_names_it():
    for r in rows():
        uid = UID(r.sop_class_uid)
        assert uid.is_valid, r
        if r.sop_class_uid == CSA_NON_IMAGE:  # private: not in PS3.6
            assert uid.name == r.sop_class_uid and r.name == "CSA Non-Image Storage"
        else:
            assert uid.type == "SOP Class", r
            assert r.name == uid.name + (" (Retired)" if uid.is_retired else ""), r
        assert r.transfer_syntaxes and len(set(r.transfer_syntaxes)) == len(r.transfer_syntaxes), r
        for ts in r.transfer_syntaxes:
            assert UID(ts).is_valid and UID(ts).is_transfer_syntax, (r, ts)


def test_table_5_2_profiles_are_ours():
    text = section("Table 5-2: Media", "5.2.1.1 ")
    assert set(re.findall(r"^(STD-GEN-[A-Z0-9-]+)", text, re.M)) == set(PROFILES)


@pytest.mark.parametrize("sop_class", [CT, MR, MG, MG_PROC, DBT])
def test_images_are_jpeg_2000_in_table_5_3_and_uncompressed_in_table_5_4(sop_class):
    for profile in J2K_PROFILES:
        assert {J2K_LOSSLESS, J2K_LOSSY} <= set(allowed(profile, sop_class))
        assert ELE in allowed(profile, sop_class)
        assert target_syntax(profile, sop_class) == J2K_LOSSLESS
        assert target_syntax(profile, sop_class, lossy=True) == J2K_LOSSY
    for profile in PLAIN_PROFILES:
        assert allowed(profile, sop_class) == (ELE,)
        assert target_syntax(profile, sop_class) == ELE
        assert target_syntax(profile, sop_class, lossy=True) == ELE


@pytest.mark.parametrize("sop_class", NON_IMAGE.values(), ids=NON_IMAGE)
def test_sr_pr_ko_pdf_are_explicit_little_endian_in_both_tables(sop_class):
    for profile in PROFILES:
        assert allowed(profile, sop_class) == (ELE,)
        assert target_syntax(profile, sop_class) == ELE
        assert target_syntax(profile, sop_class, lossy=True) == ELE


def test_nm_and_pet_stay_lossless():
    for profile in J2K_PROFILES:
        for sop_class in (NM, PET):
            assert J2K_LOSSY not in allowed(profile, sop_class)
            assert target_syntax(profile, sop_class, lossy=True) == J2K_LOSSLESS


def test_rle_is_read_only():
    assert any(RLE in r.transfer_syntaxes for r in table_rows("5-3"))  # listed, for reading
    for profile in PROFILES:
        for sop_class in sop_classes(profile):
            assert RLE not in allowed(profile, sop_class)
            for lossy in (False, True):
                assert target_syntax(profile, sop_class, lossy=lossy) not in (None, RLE)


def test_classes_outside_a_profile():
    # Table 5-3 has no DX For Processing; Table 5-4 has it (UID corrected)
    for profile in J2K_PROFILES:
        assert allowed(profile, DX_PROCESSING) == ()
        assert target_syntax(profile, DX_PROCESSING) is None
    for profile in PLAIN_PROFILES:
        assert target_syntax(profile, DX_PROCESSING) == ELE
    ophthalmic = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
    for profile in PROFILES:
        assert allowed(profile, ophthalmic) == () and target_syntax(profile, ophthalmic) is None
    with pytest.raises(ValueError):
        allowed("STD-GEN-BD", CT)


def test_augmented_profiles_hold_csa_non_image():
    for profile in PROFILES:
        assert target_syntax(profile, CSA_NON_IMAGE, lossy=True) == ELE
        assert "1.2.840.10008.1.3.10" in sop_classes(profile)  # the DICOMDIR's class
    assert len(sop_classes("STD-GEN-CD")) == len(table_rows("5-4")) + len(table_rows("5-5"))
    assert len(sop_classes("STD-GEN-USB-J2K")) == len(table_rows("5-3")) + len(table_rows("5-5"))


def test_store_and_forward_only_is_noted():
    color = {r.table: r.note for r in rows() if r.sop_class_uid == P + "11.2"}
    assert color["5-3"].startswith("store & forward only")
    assert "store & forward only" in color["5-4"]


def test_choices_follow_table_1_2():
    text = section("Table 1-2 Media Services", "2 TABLE OF CONTENTS")
    listed = set(re.findall(r"^(STD-GEN-[A-Z0-9-]+)", text, re.M))
    assert {p for media in CHOICES.values() for p in media.values()} == listed == set(PROFILES)
    # "'Standard' ... the STD-GEN-XXX profile; ... 'Patient' ... the STD-GEN-XXX-J2K profile"
    assert "'Standard' profile" in text and "'Patient' profile" in text
    for choice, j2k in (("standard", False), ("patient", True)):
        for medium, name in CHOICES[choice].items():
            assert PROFILES[name].j2k is j2k and PROFILES[name].medium == medium
            assert profile_for(choice, medium) == name
    with pytest.raises(ValueError):
        profile_for("standard", "usb")  # Table 1-2 has no uncompressed USB profile
    with pytest.raises(ValueError):
        profile_for("patient", "cd")  # nor a J2K CD profile


def test_capacities_and_output():
    assert PROFILES["STD-GEN-CD"].capacity == 737_280_000 == 360_000 * 2048
    assert PROFILES["STD-GEN-DVD"].capacity == PROFILES["STD-GEN-DVD-J2K"].capacity == 4_700_372_992
    assert PROFILES["STD-GEN-USB-J2K"].capacity is None
    assert [p.name for p in PROFILES.values() if not p.iso] == ["STD-GEN-USB-J2K"]
