"""Matching rules of the reference (text under spec Table 4-48), case by case, with the
reference's own examples."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from app.store.matching import MatchError, combined, matcher


def matches(vr, query, stored, **kw):
    m = matcher("X", vr, query, **kw)
    return True if m is None else m(stored)


# the reference: TM "2230" matches 2230, 223000, 223000. to 223059.999999 (and e.g. 223000.500)
@pytest.mark.parametrize("stored, want", [
    ("2230", True), ("223000", True), ("223000.", True), ("223000.500", True), ("223059.999999", True),
    ("2231", False), ("22", False), ("222959.999999", False), ("", False), (None, False)])
def test_time_single_value_by_meaning(stored, want):
    assert matches("TM", "2230", stored) is want


# the reference: TM "21-224010" matches 21, 2100, 210000, ... 224010.999999 (e.g. 224010.500)
@pytest.mark.parametrize("stored, want", [
    ("21", True), ("2100", True), ("210000", True), ("224010", True), ("224010.500", True),
    ("224010.999999", True), ("2059", False), ("205959.999", False), ("224011", False), ("2241", False),
    ("22:40:10", True)])  # an ACR-NEMA style value read by meaning too
def test_time_range_by_meaning(stored, want):
    assert matches("TM", "21-224010", stored) is want


@pytest.mark.parametrize("query, stored, want", [
    ("20060705-20060707", "20060706", True), ("20060705-20060707", "20060708", False),
    ("-20060707", "19991231", True), ("20060705-", "20300101", True), ("20060705-", "20060704", False),
    ("20060705", "20060705", True), ("20060705", "2006.07.05", True), ("20060705", "20060706", False)])
def test_dates(query, stored, want):
    assert matches("DA", query, stored) is want


@pytest.mark.parametrize("query, stored, want", [
    ("2006", "20060705101010", True), ("2006-2007", "20071231235959.999", True), ("2006-2007", "2008", False),
    ("20060705101010-0500-20060706", "20060705120000", True),  # an offset is not a range separator
    ("20060705101010+0100", "20060705101010.5", True)])
def test_datetimes(query, stored, want):
    assert matches("DT", query, stored) is want


def test_combined_date_time_range():
    """The reference: Study Date 20060705-20060707 with Study Time 1000-1800 is one period,
    July 5 10:00 to July 7 18:00; a null time matches."""
    m = combined("StudyDate", "20060705-20060707", "StudyTime", "1000-1800")
    assert m(("20060706", "080000")) and m(("20060705", "1000")) and m(("20060707", "180059"))
    assert not m(("20060705", "0959")) and not m(("20060707", "1801")) and not m(("20060708", "1200"))
    assert m(("20060706", "")) and m(("20060706", None)) and not m(("20060704", None))
    assert combined("StudyDate", "20060705-20060707", "StudyTime", "1000") is None  # forms differ
    assert combined("StudyDate", "-20060707", "StudyTime", "-1800")(("20000101", "2359"))


@pytest.mark.parametrize("query, stored, want", [
    ("Doe", "Doe^John", True), ("doe", "DOE^JOHN", True), ("Doe", "Doeman^John", True),  # '*' appended
    ("Doe^J", "Doe^Jane^Q", True), ("Doe^J", "Smith^Doe", False), ("Doe^Jo?n", "Doe^John", True),
    ("D*^John", "Doe^John", True), ("D*John", "Doe^John", False),  # a wildcard never crosses '^'
    ("*Tarou", "Yamada^Tarou=山田^太郎", False),  # the family name is not 'Tarou'
    ("^Tarou", "Yamada^Tarou=山田^太郎", True), ("山田", "Yamada^Tarou=山田^太郎=やまだ^たろう", True),
    ("^^Q", "Doe^Jane^Q", True), ("^^Q", "Doe^John", False), ("*", "", True), ("Müller", "MÜLLER^Jürgen", True)])
def test_person_names(query, stored, want):
    assert matches("PN", query, stored, append_star=True) is want


def test_person_name_without_the_appended_star():
    assert not matches("PN", "Doe", "Doeman^John")


@pytest.mark.parametrize("query, stored, want", [
    ("CT", "CT", True), ("ct", "CT", True), ("CT", "MR\\CT", True), ("CT\\MR", "MR", True), ("CT\\MR", "US", False),
    ("AB*", "ab12", True), ("A?C", "ABC", True), ("A?C", "ABBC", False), ("", "anything", True)])
def test_strings_wildcards_and_lists(query, stored, want):
    assert matches("CS", query, stored) is want


def test_uids_and_numbers():
    assert matches("UI", "1.2.3\\1.2.4", "1.2.4") and not matches("UI", "1.2.3", "1.2.33")
    with pytest.raises(MatchError, match="wildcards"):
        matcher("StudyInstanceUID", "UI", "1.2.*")
    assert matches("IS", "7", "07") and not matches("IS", "7", "8")
    with pytest.raises(MatchError):
        matcher("StudyTime", "TM", "22*")
    with pytest.raises(MatchError):
        matcher("StudyDate", "DA", "2006-07-05")


@pytest.mark.parametrize("vr, query", [
    ("TM", "21-224010"), ("TM", "2230"), ("DA", "20060705-20060707"), ("PN", "Doe^J*"), ("CS", "CT\\MR"),
    ("LO", "A?C*"), ("DT", "2006-2007")])
def test_the_sql_condition_keeps_every_exact_match(vr, query):
    """What the database narrows to must contain every value the exact rule accepts."""
    values = ["21", "2100", "210000", "2059", "224010.5", "224011", "2230", "223000.500", "22", "2231",
              "20060704", "20060705", "20060707", "20060708", "Doe^John", "DOE^JANE", "Doeman^J", "Smith^Doe",
              "CT", "MR\\CT", "US", "ABC", "abcd", "AC", "2006", "20071231235959", "2008", ""]
    engine = create_engine("sqlite://")
    table = Table("t", MetaData(), Column("v", String))
    table.metadata.create_all(engine)
    m = matcher("X", vr, query, append_star=vr == "PN", multi_column=True)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"v": v} for v in values])
        condition = m.sql(table.c.v)
        narrowed = {r.v for r in conn.execute(select(table.c.v).where(condition) if condition is not None
                                              else select(table.c.v))}
    exact = {v for v in values if m(v)}
    assert exact <= narrowed and exact, (exact, narrowed)


def test_keys_of_one_sequence_item_match_in_the_same_item():
    from app.store.matching import same_item
    rule = same_item({"RP": matcher("RP", "SH", "RP-100"), "SPS": matcher("SPS", "SH", "SPS-1*")})
    assert rule(("RP-100\\RP-101", "SPS-100\\SPS-101"))        # item 1 has both
    assert not rule(("RP-101\\RP-100", "SPS-100\\"))            # RP-100 is item 2, where SPS is empty
    assert same_item({"RP": matcher("RP", "SH", "RP-101")})("RP-100\\RP-101")  # any item


def test_non_ascii_values_narrow_only_on_their_ascii_parts():
    """SQLite folds the case of ASCII letters only: a Cyrillic or accented pattern must not
    make the database drop what the exact rule accepts."""
    engine = create_engine("sqlite://")
    table = Table("t", MetaData(), Column("v", String))
    table.metadata.create_all(engine)
    values = ["Иванов^Иван", "ИВАНОВ^ИВАН", "Müller^Jürgen", "MÜLLER^JÜRGEN", "Mueller^J"]
    with engine.begin() as conn:
        conn.execute(insert(table), [{"v": v} for v in values])
        for query, want in (("иванов", {"Иванов^Иван", "ИВАНОВ^ИВАН"}), ("müller", {"Müller^Jürgen", "MÜLLER^JÜRGEN"})):
            m = matcher("PatientName", "PN", query, append_star=True)
            condition = m.sql(table.c.v)
            rows = {r.v for r in conn.execute(select(table.c.v).where(condition) if condition is not None
                                              else select(table.c.v))}
            assert {v for v in rows if m(v)} == want
        eq = matcher("StudyDescription", "LO", "ÉTUDE")
        rows = {r.v for r in conn.execute(select(table.c.v).where(eq.sql(table.c.v)))} if eq.sql(table.c.v) is not None \
            else set(values)
        assert rows >= {v for v in values if eq(v)}


def test_date_keys_and_enterprise_merge():
    from datetime import date

    from app.net.query_retrieve import merge_studies
    from app.store.browse import date_key
    assert date_key(date(2025, 12, 31), date(2026, 1, 2)) == "20251231-20260102"
    assert date_key(date(2026, 1, 2), date(2026, 1, 2)) == "20260102"
    assert date_key(None, date(2026, 1, 2)) == "-20260102" and date_key(date(2026, 1, 2), None) == "20260102-"
    assert date_key(None, None) is None
    merged = merge_studies({"A": [{"StudyInstanceUID": "1", "StudyDate": "20240101", "PatientName": ""},
                                  {"StudyInstanceUID": "2", "StudyDate": "20250101"}],
                            "B": [{"StudyInstanceUID": "1", "PatientName": "Doe^J", "StudyDate": "19990101"},
                                  {"StudyDescription": "no uid: left out"}]})
    assert [(r["StudyInstanceUID"], r["_nodes"]) for r in merged] == [("2", ["A"]), ("1", ["A", "B"])]
    assert merged[1]["PatientName"] == "Doe^J" and merged[1]["StudyDate"] == "20240101"
