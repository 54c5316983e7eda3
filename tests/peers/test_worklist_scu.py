"""Modality Worklist SCU (spec §4.2.1.3.6, Tables 4-22 to 4-26) against DCMTK wlmscpfs:
the broad query (modality, own AE or any, a window of dates), every return key of Table
4-24 kept, items in four character sets, new / changed / vanished after the provider's list
changes, a provider that is down (the last good list kept), 'lightbox worklist' headless."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.net.query_retrieve import QueryFailed
from app.net.worklist import broad_query, query_and_store, scope_from_settings, worklist_keys
from app.store import worklist
from app.store.archive import Archive
from app.store.nodes import RemoteNode, add_node, get_node
from conftest import free_port, lightbox
from tests.worklist_samples import WorklistScp, worklist_item

pytestmark = pytest.mark.peers
TODAY = dt.date.today()


def _day(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).strftime("%Y%m%d")


@pytest.fixture
def ris(tmp_path):
    items = [
        worklist_item(patient_name="Müller^Jürgen", patient_id="P1", modality="MG", station_aet="LIGHTBOX",
                      start_date=_day(0), charset="ISO_IR 192", accession="A1", sps_id="S1",
                      requested_procedure_id="R1", study_uid="1.2.826.0.1.3680043.10.1.1"),
        worklist_item(patient_name="García^José Ángel", patient_id="P2", modality="CT", station_aet="CT01",
                      start_date=_day(1), charset="ISO_IR 100", accession="A2", sps_id="S2",
                      requested_procedure_id="R2", study_uid="1.2.826.0.1.3680043.10.1.2"),
        worklist_item(patient_name="Yamada^Tarou=山田^太郎=やまだ^たろう", patient_id="P3", modality="MR",
                      station_aet="LIGHTBOX", start_date=_day(-1), charset="ISO 2022 IR 87", accession="A3",
                      sps_id="S3", requested_procedure_id="R3", study_uid="1.2.826.0.1.3680043.10.1.3"),
        worklist_item(patient_name="Old^Item", patient_id="P4", modality="MG", station_aet="LIGHTBOX",
                      start_date=_day(-10), accession="A4", sps_id="S4", requested_procedure_id="R4",
                      study_uid="1.2.826.0.1.3680043.10.1.4"),
    ]
    scp = WorklistScp(tmp_path / "ris", items)
    archive = Archive(tmp_path / "home")
    archive.settings.set("node.aet", "LIGHTBOX")
    archive.settings.save()  # for 'lightbox worklist' too
    add_node(archive.engine, RemoteNode("RIS", scp.aet, "127.0.0.1", scp.port, ("worklist",)))
    yield archive, scp, items
    archive.close()
    scp.stop()


def test_the_broad_query_asks_for_every_return_key_of_table_4_24():
    class Settings(dict):
        pass
    s = Settings({"worklist.days_past": 2, "worklist.days_future": 3, "node.aet": "LIGHTBOX",
                  "worklist.own_aet_only": True, "worklist.modality": "*"})
    q = broad_query(scope_from_settings(s, today=dt.date(2026, 3, 10)))
    sps = q.ScheduledProcedureStepSequence[0]
    assert (sps.Modality, sps.ScheduledStationAETitle, sps.ScheduledProcedureStepStartDate) == \
        ("*", "LIGHTBOX", "20260308-20260313")
    for key in worklist_keys():
        holder = q
        for kw in key.path[:-1]:
            holder = holder[kw].value[0]
        assert key.path[-1] in holder, "/".join(key.path)
    assert "CodeValue" in sps.ScheduledProtocolCodeSequence[0] and not q.PatientName


def test_query_keeps_the_items_of_the_window_and_station_in_their_character_sets(ris):
    archive, scp, _ = ris
    node = get_node(archive.engine, "RIS")
    result = query_and_store(archive, node)  # own AE, today -1 .. +1
    assert (result["items"], result["new"]) == (2, 2)
    names = {r["PatientID"]: r["PatientName"] for r in worklist.items(archive.engine)}
    assert names == {"P1": "Müller^Jürgen", "P3": "Yamada^Tarou=山田^太郎=やまだ^たろう"}
    archive.settings.set("worklist.own_aet_only", False)
    result = query_and_store(archive, node)
    assert (result["items"], result["new"], result["vanished"]) == (3, 1, 0)
    rows = {r["PatientID"]: r for r in worklist.items(archive.engine, datasets=True)}
    assert rows["P2"]["PatientName"] == "García^José Ángel" and rows["P2"]["Modality"] == "CT"
    item = rows["P1"]["dataset"]  # the whole item: every key the provider returned
    assert item.AccessionNumber == "A1" and item.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID == "S1"
    assert item.RequestedProcedureCodeSequence[0].CodeValue
    mg = query_and_store(archive, node, modality="MG", date_from=_day(-30), date_to=_day(30))
    assert mg["items"] == 2 and mg["vanished"] == 0  # CT and MR are outside this query: not vanished


def test_refresh_after_the_list_changes_new_changed_vanished(ris):
    archive, scp, items = ris
    node = get_node(archive.engine, "RIS")
    archive.settings.set("worklist.own_aet_only", False)
    assert query_and_store(archive, node)["new"] == 3
    changed = worklist_item(patient_name="Müller^Jürgen", patient_id="P1", modality="MG", station_aet="LIGHTBOX",
                            start_date=_day(0), start_time="143000", charset="ISO_IR 192", accession="A1",
                            sps_id="S1", requested_procedure_id="R1", study_uid="1.2.826.0.1.3680043.10.1.1")
    added = worklist_item(patient_name="New^Patient", patient_id="P5", modality="CR", station_aet="LIGHTBOX",
                          start_date=_day(0), accession="A5", sps_id="S5", requested_procedure_id="R5",
                          study_uid="1.2.826.0.1.3680043.10.1.5")
    scp.replace([changed, items[2], items[3], added])  # P2 gone, P1 rescheduled, P5 new
    result = query_and_store(archive, node)
    assert (result["items"], result["new"], result["changed"], result["vanished"]) == (3, 1, 1, 1)
    kept = {r["PatientID"]: r for r in worklist.items(archive.engine, include_vanished=True)}
    assert kept["P2"]["status"] == "vanished" and kept["P1"]["ScheduledProcedureStepStartTime"] == "143000"
    assert "P2" not in {r["PatientID"] for r in worklist.items(archive.engine)}


def test_a_provider_that_is_down_keeps_the_last_good_list(ris):
    archive, scp, _ = ris
    node = get_node(archive.engine, "RIS")
    assert query_and_store(archive, node)["items"] == 2
    scp.stop()
    with pytest.raises(QueryFailed, match="cannot connect"):
        query_and_store(archive, node)
    assert len(worklist.items(archive.engine)) == 2
    state = worklist.status(archive.engine)["RIS"]
    assert state["last_count"] == 2 and "cannot connect" in state["last_error"]
    assert state["last_success"] < state["last_attempt"]


def test_lightbox_worklist_headless(ris, tmp_path):
    archive, scp, _ = ris
    home = archive.home
    archive.close()
    out = lightbox(home, "worklist", "RIS", "--from", TODAY.strftime("%Y-%m-%d"), "--to", _day(1), "--json")
    rows = json.loads(out.stdout)
    assert [r["PatientID"] for r in rows] == ["P1"], out.stderr  # own AE (LIGHTBOX), today..tomorrow
    assert rows[0]["item"]["00100010"]["Value"][0]["Alphabetic"] == "Müller^Jürgen"
    assert "1 item(s) from RIS: 1 new" in out.stderr
    listed = lightbox(home, "worklist")
    assert "Müller^Jürgen" in listed.stdout and "RIS: last good query" in listed.stderr
    bad = lightbox(home, "worklist", "RIS", "--from", "yesterday", check=False)
    assert bad.returncode == 2 and "--from yesterday" in bad.stderr
    scp.stop()
    down = lightbox(home, "worklist", "RIS", check=False)
    assert down.returncode == 2 and "the items kept from the last good query are unchanged" in down.stderr
    lightbox(home, "nodes", "add", "PACS", "--aet", "X", "--host", "127.0.0.1", "--port", str(free_port()),
             "--roles", "find")
    no_role = lightbox(home, "worklist", "PACS", check=False)
    assert no_role.returncode == 2 and "is not a worklist provider" in no_role.stderr
