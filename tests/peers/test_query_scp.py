"""The C-FIND SCP (spec §4.2.1.4.3: Table 4-46 models, Table 4-48 keys and the matching text
under it, §4.2.1.4.3.4 relational queries, Table 4-49 statuses, the max-matches setting of
Table 4-53) driven by DCMTK findscu against the archive of tests/qr_samples.py.

Each case of qr_samples.CASES is one findscu call (-P / -S / -O, `-X` to extract the
identifiers of the pending responses to rsp*.dcm, `-d` for the DIMSE status of every
response). Checked per case: the set of returned entities, the final status, the pending
status (0xFF00, or 0xFF01 for a return-only key given a value), and in every identifier
the Query/Retrieve Level, Retrieve AE Title (the node's AE title), Instance Availability
ONLINE, a Specific Character Set when a value is not ASCII, and every requested key with the stored value (names
decoded to the original Unicode, computed counts and Modalities in Study).

Interpretations of the spec these tests commit to (qr_samples.py says the same):
- Patient's Name: '*' appended to the whole string, then split at '^' (`Doe^John` = family
  exactly Doe, given John*); components matched in each of the three component groups.
- Case-insensitive includes non-ASCII letters (MÜLLER finds Müller); no accent folding.
- Null values match only universal matching, except the time of a combined date-time range.
- A level the model does not have (PATIENT in Study Root, SERIES in Patient/Study Only)
  is an unknown level: 0xC001. A requested key below the level, even empty: 0x0106.
- Specific Character Set is required in an identifier only when a returned value is not
  ASCII (PS3.4 C.4.1.1.3.1); with it, every name must decode to the stored Unicode.

test_harness_against_dcmqrscp checks the plumbing (request encoding, -X extraction, status
parsing) against DCMTK's own dcmqrscp, whose matching differs and is not judged.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue

from conftest import PEERS, NodeProcess, dcmtk, free_port, lightbox, ls_json, wait_port
from peerutil import echoscu, storescu
from qr_samples import (
    ARCHIVE,
    CASES,
    JP_NAME,
    LEVEL_KEY,
    PENDING,
    SUCCESS,
    QueryCase,
    encode_value,
    instance_count,
    patients,
    reference_match,
    write_archive,
)

pytestmark = pytest.mark.peers

CALLING = "QRTEST"
# keys every successful case also asks for (empty = return keys), per level
RETURN_KEYS = {
    "PATIENT": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies",
                "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances"),
    "STUDY": ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
              "StudyID", "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances"),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
               "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "InstanceNumber"),
}


# -- findscu plumbing -----------------------------------------------------------------------
@dataclass
class FindResult:
    statuses: list[int]  # DIMSE status of every C-FIND-RSP, in order (the last is the final one)
    identifiers: list[pydicom.Dataset]  # the pending responses' identifiers (rsp0001.dcm, ...)
    output: str  # findscu's stdout + stderr
    request: dict = field(default_factory=dict)

    @property
    def final(self) -> int | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def pending(self) -> list[int]:
        return self.statuses[:-1]

    def summary(self) -> str:
        """findscu's output without the -d noise: info/warning/error lines and statuses."""
        keep = [ln for ln in self.output.splitlines()
                if ln.startswith(("I: Received", "I: Association", "E:", "W:", "F:")) or "DIMSE Status" in ln]
        return "\n".join(keep[-40:])


_RSP = re.compile(r"Message Type\s*:\s*C-FIND RSP")
_STATUS = re.compile(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})")


def parse_statuses(output: str) -> list[int]:
    """The status of each incoming C-FIND-RSP in findscu's -d output, e.g.
    'D: DIMSE Status                  : 0xff00: Pending: Matches are continuing'."""
    statuses, in_rsp = [], False
    for line in output.splitlines():
        if _RSP.search(line):
            in_rsp = True
        elif in_rsp and (m := _STATUS.search(line)):
            statuses.append(int(m.group(1), 16))
            in_rsp = False
    return statuses


def key_path(keyword: str) -> str:
    """findscu -k path: '(gggg,eeee)', or '(seq)[0].(item)' for 'Sequence/Item'."""
    parts = []
    for kw in keyword.split("/"):
        tag = tag_for_keyword(kw)
        assert tag is not None, f"unknown keyword {kw}"
        parts.append(f"({tag >> 16:04x},{tag & 0xFFFF:04x})")
    return "[0].".join(parts)


def findscu(host: str, port: int, called: str, model: str, level: str | None, keys: dict,
            charset: str | None, workdir: Path, *, calling: str = CALLING, timeout: float = 120) -> FindResult:
    """One C-FIND with DCMTK findscu. `keys` are keywords (or 'Sequence/Item') -> str values,
    encoded as bytes in `charset` (the request's Specific Character Set)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("rsp*.dcm"):
        old.unlink()
    args: list[bytes] = [os.fsencode(a) for a in (
        dcmtk("findscu"), "-d", f"-{model}", "-aet", calling, "-aec", called,
        "-to", "20", "-ta", "30", "-td", "60", "-X", "-od", str(workdir))]
    request = {}
    if charset is not None:
        request["SpecificCharacterSet"] = charset
    if level is not None:
        request["QueryRetrieveLevel"] = level
    request.update(keys)
    for keyword, value in request.items():
        path = key_path(keyword).encode()
        args += [b"-k", path + b"=" + encode_value(keyword, value, charset) if value != "" else path]
    args += [host.encode(), str(port).encode()]
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          env=dict(os.environ, TCP_NODELAY="1"))
    output = proc.stdout.decode("utf-8", errors="replace")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        identifiers = [pydicom.dcmread(p, force=True) for p in sorted(workdir.glob("rsp*.dcm"))]
    return FindResult(parse_statuses(output), identifiers, output, request)


def request_keys(case: QueryCase) -> dict:
    """The keys actually sent for a case: its own, the level's key, and (for the cases that
    should succeed) the level's return keys."""
    keys = dict(case.keys)
    if case.level in LEVEL_KEY:
        keys.setdefault(LEVEL_KEY[case.level], "")
        if not case.failure:
            for k in RETURN_KEYS[case.level]:
                keys.setdefault(k, "")
    return keys


def returned(ds: pydicom.Dataset, keyword: str):
    """A returned value in the form Archive.expected_value uses."""
    elem = ds[keyword]
    value = elem.value
    values = list(value) if isinstance(value, MultiValue) else [] if value in (None, "") else [value]
    if keyword == "ModalitiesInStudy":
        return frozenset(str(v).strip() for v in values)
    if not values:
        return ""
    if elem.VR == "IS":
        return int(values[0])
    return "\\".join(str(v) for v in values).strip()


def check(case: QueryCase, result: FindResult, aet: str) -> None:
    where = f"{case.name}: {case.why}\nrequest {result.request}\n{result.summary()}"
    assert result.statuses, f"no C-FIND response at all\n{where}"
    assert result.final == case.status, f"final status {result.final:#06x}, expected {case.status:#06x}\n{where}"
    if case.failure:
        assert result.pending == [] and result.identifiers == [], f"a failure after pending responses\n{where}"
        return
    assert len(result.identifiers) == len(result.pending), f"pending responses without identifier\n{where}"
    level = case.level
    labels = []
    for ds in result.identifiers:
        value = str(ds.get(LEVEL_KEY[level], "")).strip()
        label = ARCHIVE.label_of(level, value)
        assert label is not None, f"response names no entity of the archive ({LEVEL_KEY[level]}={value!r})\n{where}"
        labels.append(label)
    got = set(labels)
    assert len(labels) == len(got), f"duplicate responses {sorted(labels)}\n{where}"
    assert got == case.expected, (f"missing {sorted(case.expected - got)}, unexpected {sorted(got - case.expected)}"
                                  f"\n{where}")
    if case.pending is not None:
        assert set(result.pending) <= {case.pending}, \
            f"pending statuses {[hex(s) for s in result.pending]}, expected {case.pending:#06x}\n{where}"

    for ds, label in zip(result.identifiers, labels):
        at = f"{label}\n{where}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for keyword, want in (("QueryRetrieveLevel", level), ("RetrieveAETitle", aet),
                                  ("InstanceAvailability", "ONLINE")):
                got = str(ds.get(keyword, "")).strip() if keyword in ds else None
                assert got == want, f"{keyword}: {got!r}, expected {want!r} (always returned): {at}"
            if any(not str(ARCHIVE.expected_value(level, label, k)).isascii() for k in request_keys(case)):
                # PS3.4 C.4.1.1.3.1: needed as soon as a returned value is not ASCII
                assert "SpecificCharacterSet" in ds, f"no Specific Character Set with non-ASCII values: {at}"
            sequences: dict[str, list[str]] = {}
            for keyword in request_keys(case):
                if "/" in keyword:
                    sequences.setdefault(keyword.split("/")[0], []).append(keyword.split("/")[1])
                    continue
                assert keyword in ds, f"requested key {keyword} not returned: {at}"
                want = ARCHIVE.expected_value(level, label, keyword)
                assert returned(ds, keyword) == want, f"{keyword}: {returned(ds, keyword)!r} != {want!r}: {at}"
            for seq, item_keys in sequences.items():
                assert seq in ds, f"requested sequence {seq} not returned: {at}"
                stored = ARCHIVE.expected_value(level, label, seq) or []
                for item_key in item_keys:
                    sent = {str(item.get(item_key, "")).strip() for item in ds[seq].value} - {""}
                    assert sent and sent <= {it[item_key] for it in stored}, f"{seq}/{item_key}: {sent}: {at}"


# -- the node with the archive --------------------------------------------------------------
def load(home: Path, folder: Path, pats=None) -> int:
    files = write_archive(folder, pats) if pats is not None else write_archive(folder)
    summary = json.loads(lightbox(home, "import", "--json", str(folder)).stdout)
    assert summary["imported"] == len(files) and not summary["rejected"], summary
    return len(files)


@pytest.fixture(scope="module")
def qr_node(tmp_path_factory):
    base = tmp_path_factory.mktemp("qr")
    home = base / "home"
    home.mkdir()
    lightbox(home, "config", "set", "policy.check_calling_ae", "false")
    assert load(home, base / "files") == instance_count()
    node = NodeProcess(home).start()
    yield node
    node.kill()


def test_expectations_follow_the_rules():
    """The hand-written expectations agree with qr_samples.reference_match, a second reading
    of the same rules (a disagreement is a slip in the cases, not in the SCP)."""
    disputed = {c.name: (sorted(c.expected), sorted(reference_match(c))) for c in CASES
                if not c.failure and reference_match(c) != c.expected}
    assert not disputed, disputed
    models = {(c.model, c.level) for c in CASES if not c.failure}
    assert models == {("P", "PATIENT"), ("P", "STUDY"), ("P", "SERIES"), ("P", "IMAGE"), ("S", "STUDY"),
                      ("S", "SERIES"), ("S", "IMAGE"), ("O", "PATIENT"), ("O", "STUDY")}


def test_archive_indexed_as_modelled(qr_node):
    """Before judging queries: the index holds the archive as qr_samples describes it."""
    rows = {r["PatientID"]: r for r in ls_json(qr_node.home, "patient")}
    for label in ARCHIVE.patients:
        want = ARCHIVE.attributes("PATIENT", label)
        row = rows[want["PatientID"]]
        assert row["PatientName"] == want["PatientName"], label
        for k in ("NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances"):
            assert row[k] == want[k], (label, k)
    assert len(ls_json(qr_node.home, "instance")) == instance_count()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_find(qr_node, case, tmp_path):
    result = findscu(qr_node.host, qr_node.port, qr_node.aet, case.model, case.level, request_keys(case),
                     case.charset, tmp_path / "rsp")
    check(case, result, qr_node.aet)


def test_max_matches_clips_and_still_succeeds(node_factory, tmp_path):
    """Table 4-49 / 4-53: at most node.max_matches responses, final status Success."""
    home = tmp_path / "capped"
    home.mkdir()
    lightbox(home, "config", "set", "node.max_matches", "3")
    load(home, tmp_path / "files", patients("time_pt"))  # 12 studies, 12 instances
    node = node_factory(home).start()
    tm = {label for label in ARCHIVE.studies if label.startswith("tm_")}
    for model, level, keys, universe in (
            ("S", "STUDY", {"PatientID": "PID-TM", "StudyInstanceUID": ""}, tm),
            ("P", "IMAGE", {"PatientID": "PID-TM", "SOPInstanceUID": ""},
             {f"{s}_ot1_i1" for s in tm})):
        r = findscu(node.host, node.port, node.aet, model, level, keys, None, tmp_path / level)
        assert r.final == SUCCESS and len(r.identifiers) == 3, r.summary()  # dcmqrscp ignores the sequence
        assert r.pending == [PENDING] * 3 and len(r.identifiers) == 3, r.summary()
        labels = {ARCHIVE.label_of(level, str(ds.get(LEVEL_KEY[level], ""))) for ds in r.identifiers}
        assert len(labels) == 3 and labels <= universe, labels
    # fewer matches than the cap: all of them (22:31:00 .. 22:40:10.999999)
    r = findscu(node.host, node.port, node.aet, "S", "STUDY", {"StudyTime": "2231-224010", "StudyInstanceUID": ""},
                None, tmp_path / "few")
    assert r.final == SUCCESS, r.summary()
    assert {ARCHIVE.label_of("STUDY", str(ds.get("StudyInstanceUID", ""))) for ds in r.identifiers} == \
        {"tm_2231", "tm_224010_500"} and len(r.identifiers) == 2, r.summary()


def test_database_failure_answers_c001_and_the_node_recovers(node_factory, tmp_path):
    """Table 4-49: the archive's database failing under a C-FIND answers C001 "Unable to
    process" with the reason, logs it, and the node keeps serving; once the database is back,
    the same query answers again, without a restart."""
    import sqlite3
    home = tmp_path / "dbfail"
    home.mkdir()
    load(home, tmp_path / "files", patients("time_pt"))
    node = node_factory(home).start()
    keys = {"PatientID": "PID-TM", "StudyInstanceUID": ""}
    r = findscu(node.host, node.port, node.aet, "S", "STUDY", keys, None, tmp_path / "before")
    assert r.final == SUCCESS and len(r.identifiers) == 12, r.summary()
    db = sqlite3.connect(home / "lightbox.db", timeout=30)
    try:
        db.execute("ALTER TABLE study RENAME TO study_away")  # the schema breaks under the node
        db.commit()
        r = findscu(node.host, node.port, node.aet, "S", "STUDY", keys, None, tmp_path / "during")
        assert r.statuses == [0xC001] and r.identifiers == [], r.summary()
        assert "archive query failed: no such table: study" in r.output, r.output[-2000:]
        assert echoscu(node).returncode == 0
    finally:
        db.execute("ALTER TABLE study_away RENAME TO study")
        db.commit()
        db.close()
    r = findscu(node.host, node.port, node.aet, "S", "STUDY", keys, None, tmp_path / "after")
    assert r.final == SUCCESS and len(r.identifiers) == 12, r.summary()
    log = (home / "logs" / "lightbox.log").read_text()
    assert "the archive query failed" in log and "no such table" in log


# -- the harness itself, against DCMTK's dcmqrscp ------------------------------------------
def _loopback_shim() -> str:
    """The LD_PRELOAD shim of ../shared/peers (bind 0.0.0.0 -> 127.0.0.1), built on first use."""
    script = f'source "{PEERS / "lib" / "common.sh"}" && harness_ensure_shim && printf %s "$HARNESS_SHIM"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert out and Path(out).exists(), "could not build the loopback bind() shim of shared/peers"
    return out


@pytest.fixture
def dcmqrscp(tmp_path):
    """DCMTK dcmqrscp (AE DCMQRSCP, any peer) on 127.0.0.1. Fork mode: its single-process
    mode (-s) crashes after the first association in 3.6.7."""
    db = tmp_path / "qrdb"
    db.mkdir()
    port = free_port()
    cfg = tmp_path / "dcmqrscp.cfg"
    cfg.write_text(f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
                   "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
                   f"AETable BEGIN\nDCMQRSCP {db} RW (200, 1024mb) ANY\nAETable END\n")
    log = open(tmp_path / "dcmqrscp.log", "wb")
    proc = subprocess.Popen([dcmtk("dcmqrscp"), "-c", str(cfg), str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, LD_PRELOAD=_loopback_shim(), TCP_NODELAY="1"))
    try:
        wait_port(port, proc=proc)
        yield SimpleNamespace(host="127.0.0.1", port=port, aet="DCMQRSCP")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_harness_against_dcmqrscp(dcmqrscp, tmp_path):
    """findscu plumbing only: statuses parsed per response, -X identifiers read back and
    mapped to labels, non-ASCII request bytes in the request's character set, sequence keys.
    dcmqrscp matches bytes, case-sensitively, and ignores keys it does not know."""
    folder = tmp_path / "files"
    files = write_archive(folder, patients("doe_john", "yamada_utf8", "muller"))
    out = storescu(dcmqrscp, *files)
    assert out.returncode == 0 and out.stdout.count("Received Store Response (Success)") == len(files), out.stdout
    node, work = dcmqrscp, tmp_path / "rsp"

    def find(model, level, keys, charset=None):
        return findscu(node.host, node.port, node.aet, model, level, keys, charset, work)

    r = find("S", "STUDY", {"PatientID": "PID-001", "StudyInstanceUID": "", "PatientName": ""})
    assert r.statuses == [PENDING, PENDING, SUCCESS], r.summary()
    assert {ARCHIVE.label_of("STUDY", ds.StudyInstanceUID) for ds in r.identifiers} == {"john_1", "john_2"}
    assert {str(ds.PatientName) for ds in r.identifiers} == {"Doe^John"}
    assert all(ds.RetrieveAETitle == "DCMQRSCP" for ds in r.identifiers)

    john_1 = ARCHIVE.attributes("STUDY", "john_1")["StudyInstanceUID"]
    ct1 = ARCHIVE.attributes("SERIES", "john_1_ct1")["SeriesInstanceUID"]
    r = find("P", "IMAGE", {"PatientID": "PID-001", "StudyInstanceUID": john_1, "SeriesInstanceUID": ct1,
                            "SOPInstanceUID": ""})
    assert r.final == SUCCESS and len(r.pending) == 3, r.summary()
    assert {ARCHIVE.label_of("IMAGE", ds.SOPInstanceUID) for ds in r.identifiers} == \
        {"john_1_ct1_i1", "john_1_ct1_i2", "john_1_ct1_i3"}

    r = find("S", "FOO", {"StudyInstanceUID": ""})  # a failure: only the final status, no identifier
    assert r.statuses == [0xC000] and r.identifiers == [], r.summary()  # dcmqrscp: "Unable to process"
    r = find("S", None, {"StudyInstanceUID": ""})
    assert r.pending == [] and r.final is not None and r.final >= 0xA000, r.summary()

    # UTF-8 bytes under ISO_IR 192 ('=' inside a -k value survives), Latin-1 under ISO_IR 100
    r = find("S", "STUDY", {"PatientName": JP_NAME, "StudyInstanceUID": ""}, "ISO_IR 192")
    assert "山田^太郎" in r.output, r.summary()  # findscu echoes the request it sent
    assert [ARCHIVE.label_of("STUDY", ds.StudyInstanceUID) for ds in r.identifiers] == ["yamada_utf8_1"], r.summary()
    assert str(r.identifiers[0].PatientName) == JP_NAME
    r = find("S", "STUDY", {"PatientName": "Müller*", "StudyInstanceUID": ""}, "ISO_IR 100")
    assert [ARCHIVE.label_of("STUDY", ds.StudyInstanceUID) for ds in r.identifiers] == ["muller_1"], r.summary()
    assert r.identifiers[0].SpecificCharacterSet == "ISO_IR 100"
    assert str(r.identifiers[0].PatientName) == "Müller^Jürgen"

    # sequence keys are sent as one item holding both keys
    r = find("S", "SERIES", {"StudyInstanceUID": john_1, "SeriesInstanceUID": "",
                             "RequestAttributesSequence/RequestedProcedureID": "RP-100",
                             "RequestAttributesSequence/ScheduledProcedureStepID": ""})
    dump = "\n".join(ln for ln in r.output.splitlines() if re.match(r"I: +\(", ln))
    assert re.search(r"\(0040,0275\) SQ .*\n.*\(fffe,e000\).*\n.*\(0040,0009\) SH \(no value.*\n"
                     r".*\(0040,1001\) SH \[RP-100\]", dump), dump
    assert r.final == SUCCESS and len(r.identifiers) == 3, r.summary()  # dcmqrscp ignores the sequence


def _bulk_studies(home: Path, count: int) -> None:
    """``count`` studies of one patient as index rows only (no files: C-FIND never opens one)."""
    from app.store.archive import Archive
    from app.store.schema import patient, study
    archive = Archive(home)
    try:
        with archive.engine.begin() as conn:
            pid = conn.execute(patient.insert().values(PatientID="PID-MANY", IssuerOfPatientID="",
                                                       PatientName="Many^Studies")).inserted_primary_key[0]
            conn.execute(study.insert(), [{"patient_id": pid, "StudyInstanceUID": f"2.25.{n}",
                                           "StudyDate": "20240101", "AccessionNumber": f"MANY{n}"}
                                          for n in range(1, count + 1)])
    finally:
        archive.close()


def test_cancel_stops_the_responses(node_factory, tmp_path):
    """C-CANCEL (no DCMTK client sends one: pynetdicom's SCU does) ends the responses with
    0xFE00 before all matches are sent. 20,000 matches: far more than the node can send
    before the cancel, sent after the first response, arrives."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    home = tmp_path / "many"
    home.mkdir()
    lightbox(home, "config", "set", "node.max_matches", "20000")
    _bulk_studies(home, 20000)
    node = node_factory(home).start()
    study_root = "1.2.840.10008.5.1.4.1.2.2.1"
    ae = AE(ae_title="CANCELLER")
    ae.add_requested_context(study_root)
    assoc = ae.associate(node.host, node.port, ae_title=node.aet)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID, query.PatientName = "STUDY", "", ""
    got = []
    for status, _ in assoc.send_c_find(query, study_root, msg_id=9):
        got.append(int(status.Status))
        if len(got) == 1:
            assoc.send_c_cancel(9, context_id=assoc.accepted_contexts[0].context_id)
    assert got[0] in (0xFF00, 0xFF01) and got[-1] == 0xFE00 and len(got) < 20000, got[-3:]
    assoc.release()
    assert "cancelled after" in node.output() or "cancelled after" in (home / "logs" / "lightbox.log").read_text()


def test_relational_queries_are_negotiated(qr_node):
    """Table 4-47: a caller asking for relational queries (SOP Class Extended Negotiation,
    PS3.4 C.5.1.1) is told they are supported, for Patient Root and Study Root."""
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
    ae = AE(ae_title="RELATIONAL")
    items = []
    for uid in ("1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.2.1"):
        ae.add_requested_context(uid)
        item = SOPClassExtendedNegotiation()
        item.sop_class_uid, item.service_class_application_information = uid, b"\x01"
        items.append(item)
    assoc = ae.associate(qr_node.host, qr_node.port, ae_title=qr_node.aet, ext_neg=items)
    assert assoc.is_established
    answered = {str(i.sop_class_uid): bytes(i.service_class_application_information)
                for i in assoc.acceptor.user_information if isinstance(i, SOPClassExtendedNegotiation)}
    assoc.release()
    assert answered == {"1.2.840.10008.5.1.4.1.2.1.1": b"\x01", "1.2.840.10008.5.1.4.1.2.2.1": b"\x01"}
