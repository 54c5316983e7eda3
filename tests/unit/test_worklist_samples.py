"""The worklist generator (tests/worklist_samples.py) against the real DCMTK ``wlmscpfs``
(../shared/peers/peers/worklist_scp.sh) queried with DCMTK ``findscu -W -X``: pydicom-written
.wl files are served, every item comes back whole in its own character set, and what the
peer does differently from the standard (worklist_samples.WLMSCPFS_NOTES) is pinned here, so
the SCU tests built on it know what they are talking to.

Worklist items are not storage IODs (no dciodvfy); each written file is checked to re-read
with pydicom and to carry every type 1 return key of the spec's Table 4-24 instead.
"""

from __future__ import annotations

import collections
import datetime as dt
import warnings

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from worklist_samples import (
    ASCII,
    CHARSET_VALUE,
    CHARSETS,
    JAPANESE,
    JP_NAME,
    LATIN1,
    MODALITIES,
    MWL_FIND,
    TABLE_4_24,
    UTF8,
    WLMSCPFS_DROPPED_KEYS,
    WorklistScp,
    findscu_worklist,
    get_path,
    missing_type1,
    query_dataset,
    read_item,
    varied_items,
    worklist_item,
)

pytestmark = pytest.mark.peers

TODAY = dt.date.today()
N = 20


def _day(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).strftime("%Y%m%d")


def _sps(ds: Dataset) -> Dataset:
    return ds.ScheduledProcedureStepSequence[0]


def _read(path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """wlmscpfs serving varied_items(20, today); (scp, items by accession, a folder for answers)."""
    work = tmp_path_factory.mktemp("wl")
    items = varied_items(N, TODAY)
    scp = WorklistScp(work / "scp", items)
    yield scp, {str(i.AccessionNumber): i for i in items}, work / "answers"
    scp.stop()


def _ask(served, query: Dataset, *extra: str) -> tuple[list[Dataset], str]:
    scp, _, out = served
    proc, files = findscu_worklist(scp.port, query, out, aet=scp.aet, extra=extra)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return [_read(f) for f in files], proc.stdout


def _flat(ds: Dataset, prefix: str = "") -> dict[str, object]:
    """keyword path -> value (sequences: their item count, then their items' elements)."""
    out: dict[str, object] = {}
    for e in ds:
        if e.tag.element == 0:
            continue
        key = prefix + e.keyword
        if e.VR == "SQ":
            out[key] = len(e.value)
            for n, item in enumerate(e.value):
                out.update(_flat(item, f"{key}[{n}]."))
        else:
            out[key] = str(e.value)
    return out


# -- the generator ------------------------------------------------------------------------------
def test_varied_items_are_deterministic_spread_and_unique():
    a, b = varied_items(N, TODAY), varied_items(N, TODAY)
    assert [_flat(x) for x in a] == [_flat(x) for x in b]
    assert [_flat(x) for x in varied_items(N, TODAY, seed=1)] != [_flat(x) for x in a]
    modalities = collections.Counter(_sps(i).Modality for i in a)
    assert set(modalities) == set(MODALITIES) and max(modalities.values()) - min(modalities.values()) <= 1
    charsets = collections.Counter(str(i.get("SpecificCharacterSet")) for i in a)
    assert len(charsets) == len(CHARSETS) and set(charsets.values()) == {N // len(CHARSETS)}
    dates = {_sps(i).ScheduledProcedureStepStartDate for i in a}
    assert min(dates) >= _day(-3) and max(dates) <= _day(3) and len(dates) >= 4
    stations = collections.Counter(_sps(i).ScheduledStationAETitle for i in a)
    assert 0 < stations["LIGHTBOX"] < N
    for key in ("PatientID", "AccessionNumber", "RequestedProcedureID", "StudyInstanceUID"):
        assert len({str(i[key].value) for i in a}) == N, key
    assert len({_sps(i).ScheduledProcedureStepID for i in a}) == N
    assert JP_NAME in {str(i.PatientName) for i in a}
    assert all(i.PatientSex == "F" for i in a if _sps(i).Modality == "MG")


def test_worklist_item_has_every_key_of_table_4_24_and_takes_overrides():
    item = worklist_item(patient_name="Doe^John", patient_id="X1", sex="M", modality="CT", station_aet="CT01",
                         station_name="CT_A", start_date=dt.date(2026, 3, 10), start_time="101500", accession="ACC9",
                         study_uid="1.2.3.4", requested_procedure_id="RP9", sps_id="SPS9", charset=LATIN1,
                         description="CT SOMETHING", priority="STAT")
    for path, _ in TABLE_4_24:
        assert get_path(item, path) is not None, ">".join(path)
    assert not missing_type1(item)
    sps = _sps(item)
    assert (sps.Modality, sps.ScheduledStationAETitle, sps.ScheduledStationName) == ("CT", "CT01", "CT_A")
    assert (sps.ScheduledProcedureStepStartDate, sps.ScheduledProcedureStepStartTime) == ("20260310", "101500")
    assert sps.ScheduledProcedureStepEndDate == "20260310" and sps.ScheduledProcedureStepEndTime > "101500"
    assert (sps.ScheduledProcedureStepID, sps.ScheduledProcedureStepStatus) == ("SPS9", "SCHEDULED")
    assert sps.ScheduledProcedureStepDescription == item.RequestedProcedureDescription == "CT SOMETHING"
    assert len(sps.ScheduledProtocolCodeSequence) == 1 and sps.ScheduledProtocolCodeSequence[0].CodeValue
    assert (item.PatientName, item.PatientID, item.PatientSex, item.PregnancyStatus) == ("Doe^John", "X1", "M", 4)
    assert (item.AccessionNumber, item.StudyInstanceUID, item.RequestedProcedureID) == ("ACC9", "1.2.3.4", "RP9")
    assert item.RequestedProcedurePriority == "STAT" and item.SpecificCharacterSet == "ISO_IR 100"
    assert len(item.ReferencedStudySequence) == 0
    assert "SpecificCharacterSet" not in worklist_item()
    assert worklist_item(charset=JAPANESE).SpecificCharacterSet == ["ISO 2022 IR 6", "ISO 2022 IR 87"]
    with pytest.raises(TypeError, match="unknown field"):
        worklist_item(patient="typo")


def test_written_files_reread_with_pydicom_and_have_the_type_1_keys(served):
    scp, items, _ = served
    assert len(scp.files) == N and all(p.parent == scp.folder and p.suffix == ".wl" for p in scp.files)
    assert (scp.folder / "lockfile").exists()
    for path in scp.files:
        ds = read_item(path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == MWL_FIND and "FileMetaInformationGroupLength" in ds.file_meta
        assert missing_type1(ds) == [], path
        assert _flat(ds) == _flat(items[str(ds.AccessionNumber)]), path


# -- wlmscpfs serving them ------------------------------------------------------------------------
def test_a_broad_query_returns_every_item_whole(served):
    _, items, _ = served
    answers, log = _ask(served, query_dataset(start=_day(-7), end=_day(7)), "-v")
    assert len(answers) == N
    assert {str(a.AccessionNumber) for a in answers} == set(items)
    asked = _flat(query_dataset())
    for a in answers:
        got, source = _flat(a), _flat(items[str(a.AccessionNumber)])
        dropped = {k.split("[")[0].split(".")[0] for k in asked if k not in got} - {"SpecificCharacterSet"}
        assert dropped == WLMSCPFS_DROPPED_KEYS, a.AccessionNumber
        assert {k: v for k, v in got.items() if k in source and source[k] != v} == {}
        assert all(k in source for k in got), [k for k in got if k not in source]
    # ... and because of the keys it left out, every match is FF01, not FF00
    assert log.count("Pending: WarningUnsupportedOptionalKeys") == N, log[-1500:]


@pytest.mark.parametrize("modality", MODALITIES)
def test_items_per_modality(served, modality):
    _, items, _ = served
    expected = {acc for acc, i in items.items() if _sps(i).Modality == modality}
    answers, _ = _ask(served, query_dataset(start=_day(-7), end=_day(7), modality=modality))
    assert {str(a.AccessionNumber) for a in answers} == expected and expected
    assert {_sps(a).Modality for a in answers} == {modality}


@pytest.mark.parametrize("charset", CHARSETS, ids=["ascii", "latin1", "utf8", "iso2022-jp"])
def test_each_character_set_comes_back_decoded(served, charset):
    scp, items, out = served
    ours = {acc: i for acc, i in items.items() if i.get("SpecificCharacterSet") == CHARSET_VALUE[charset]}
    assert ours
    answers, _ = _ask(served, query_dataset(start=_day(-7), end=_day(7)))
    answers = [a for a in answers if str(a.AccessionNumber) in ours]
    assert len(answers) == len(ours)
    for a in answers:
        source = ours[str(a.AccessionNumber)]
        assert a.get("SpecificCharacterSet") == CHARSET_VALUE[charset]  # -csk: the file's own; none for ASCII
        for key in ("PatientName", "RequestingPhysician", "PatientAddress"):
            assert str(a[key].value) == str(source[key].value), key
    raw = b"".join(p.read_bytes() for p in sorted(out.glob("rsp*.dcm")))
    if charset == LATIN1:
        assert "Müller^Jürgen".encode("latin-1") in raw or "García".encode("latin-1") in raw
    if charset == JAPANESE:
        names = {str(a.PatientName) for a in answers}
        assert JP_NAME in names
        jp = next(a for a in answers if str(a.PatientName) == JP_NAME)
        assert (jp.PatientName.ideographic, jp.PatientName.phonetic) == ("山田^太郎", "やまだ^たろう")
        assert "山田".encode("iso2022_jp") in raw and b"\x1b$B" in raw  # real ISO 2022 escapes on the wire
    if charset == UTF8:
        assert "Łukasiewicz".encode() in raw


def test_date_window_station_and_time_matching(served):
    _, items, _ = served

    def count(query: Dataset) -> int:
        return len(_ask(served, query)[0])

    def expect(pred) -> int:
        return sum(1 for i in items.values() if pred(_sps(i)))

    assert count(query_dataset(start=_day(0), end=_day(0))) == expect(
        lambda s: s.ScheduledProcedureStepStartDate == _day(0))
    assert count(query_dataset(start=_day(0))) == expect(lambda s: s.ScheduledProcedureStepStartDate >= _day(0))
    assert count(query_dataset(end=_day(-1))) == expect(lambda s: s.ScheduledProcedureStepStartDate <= _day(-1))
    assert count(query_dataset(start=_day(4), end=_day(9))) == 0
    assert count(query_dataset()) == N
    ours = expect(lambda s: s.ScheduledStationAETitle == "LIGHTBOX")
    assert count(query_dataset(station_aet="LIGHTBOX")) == ours
    assert count(query_dataset(station_aet="*")) == N
    ct01 = expect(lambda s: s.ScheduledStationAETitle == "CT01")
    assert count(query_dataset(station_aet="LIGHTBOX\\CT01")) == ours + ct01  # a list of AE titles
    q = query_dataset()
    _sps(q).ScheduledProcedureStepStartTime = "0700-1159"  # universal date: a time of any day
    assert count(q) == expect(lambda s: s.ScheduledProcedureStepStartTime < "120000")
    # a date range with a time range is one date-time range (PS3.4 C.2.2.2.5), from the
    # first day at 07:00 to the last at 11:59, not "07:00-11:59 on each day"
    q = query_dataset(start=_day(-2), end=_day(2))
    _sps(q).ScheduledProcedureStepStartTime = "0700-1159"
    assert count(q) == expect(lambda s: _day(-2) + "070000" <= s.ScheduledProcedureStepStartDate
                              + s.ScheduledProcedureStepStartTime <= _day(2) + "115900")


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # 'M*', on purpose
def test_what_wlmscpfs_does_not_match(served):
    """Pinned quirks of the peer (WLMSCPFS_NOTES): a SCU test must not expect these to match."""
    _, items, _ = served

    def count(query: Dataset) -> int:
        return len(_ask(served, query)[0])

    assert count(query_dataset(station_aet="LIGHT*")) == 0  # no wildcard on the AE title
    assert count(query_dataset(station_aet="lightbox")) == 0  # case-sensitive
    assert count(query_dataset(modality="M*")) == 0 and count(query_dataset(modality="MG\\CT")) == 0
    latin = next(i for i in items.values() if i.get("SpecificCharacterSet") == "ISO_IR 100")
    family = str(latin.PatientName).split("^")[0]
    same = sum(1 for i in items.values() if str(i.PatientName).startswith(family + "^")
               and i.get("SpecificCharacterSet") == "ISO_IR 100")
    assert count(query_dataset(PatientName=family + "*", charset=LATIN1)) == same
    assert count(query_dataset(PatientName=family + "*", charset=UTF8)) == 0  # raw bytes, no conversion
    assert count(query_dataset(PatientName=family.lower() + "*", charset=LATIN1)) == 0


def test_replace_changes_what_is_served_and_an_empty_start(tmp_path):
    first = [worklist_item(patient_id=f"P{n}", accession=f"A{n}", sps_id=f"S{n}", requested_procedure_id=f"R{n}",
                           start_date=TODAY) for n in range(3)]
    with WorklistScp(tmp_path / "scp", [], aet="RIS") as scp:
        assert scp.aet == "RIS" and scp.folder == tmp_path / "scp" / "RIS" and not list(scp.folder.glob("*.wl"))

        def accessions() -> list[str]:
            proc, files = findscu_worklist(scp.port, query_dataset(), tmp_path / "out", aet="RIS")
            assert proc.returncode == 0, proc.stdout[-1500:]
            return sorted(str(_read(f).AccessionNumber) for f in files)

        assert accessions() == []
        scp.replace(first)
        assert accessions() == ["A0", "A1", "A2"]
        moved = worklist_item(patient_id="P1", accession="A1", sps_id="S1", requested_procedure_id="R1",
                              start_date=TODAY, start_time="163000")
        scp.replace([first[0], moved, worklist_item(patient_id="P9", accession="A9", sps_id="S9",
                                                    requested_procedure_id="R9", start_date=TODAY)])
        assert accessions() == ["A0", "A1", "A9"] and len(list(scp.folder.glob("*.wl"))) == 3
        q = query_dataset()
        _sps(q).ScheduledProcedureStepStartTime = "1600-1700"
        proc, files = findscu_worklist(scp.port, q, tmp_path / "out", aet="RIS")
        assert [str(_read(f).AccessionNumber) for f in files] == ["A1"]


def test_incomplete_files_are_skipped_silently(tmp_path):
    ok = worklist_item(patient_id="OK", accession="A0", sps_id="S0", requested_procedure_id="R0")
    no_name = worklist_item(patient_id="NONAME", patient_name="", accession="A1", sps_id="S1",
                            requested_procedure_id="R1")
    no_physician = worklist_item(patient_id="NOPHYS", performing_physician="", accession="", sps_id="S2",
                                 requested_procedure_id="R2")
    with WorklistScp(tmp_path / "scp", [ok, no_name, no_physician]) as scp:
        proc, files = findscu_worklist(scp.port, query_dataset(), tmp_path / "out")
        assert proc.returncode == 0
        assert sorted(str(_read(f).PatientID) for f in files) == ["NOPHYS", "OK"]
        assert "is incomplete, file will be ignored" in scp.log()


def test_pregnancy_status_and_empty_sequences_as_wlmscpfs_returns_them(tmp_path):
    items = [worklist_item(patient_id="NOPREG", pregnancy=None, accession="A0", sps_id="S0",
                           requested_procedure_id="R0", sex="O")]
    del items[0].ReferencedStudySequence
    with WorklistScp(tmp_path / "scp", items) as scp:
        proc, files = findscu_worklist(scp.port, query_dataset(), tmp_path / "out")
        (answer,) = [_read(f) for f in files]
    assert answer.PregnancyStatus == 4  # filled in by wlmscpfs
    assert "ReferencedStudySequence" in answer and len(answer.ReferencedStudySequence) == 0
    assert "SpecificCharacterSet" not in answer and ASCII is None
