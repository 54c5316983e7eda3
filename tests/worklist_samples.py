"""Modality Worklist items as .wl files for DCMTK's ``wlmscpfs``, and that SCP as a peer.

- `worklist_item(**fields)`: one item with every return key of the spec's Table 4-24
  (Modality Worklist C-Find Return keys), sensible defaults, keyword arguments override;
- `write_worklist(folder, items)`: one ``NNNNN.wl`` per item, written by pydicom as a Part 10
  file (meta header, Explicit VR Little Endian), which ``wlmscpfs`` reads as it reads the
  ``dump2dcm`` output of ../shared/peers/peers/worklist_scp.sh (checked with the real program:
  tests/unit/test_worklist_samples.py);
- `varied_items(n, today)`: n items spread over modalities, days (today-3 .. today+3),
  stations and four character sets (ASCII, Latin-1, UTF-8, Japanese ISO 2022), deterministic;
- `WorklistScp(work_dir, items)`: the real ``wlmscpfs`` serving those items on 127.0.0.1
  (started through worklist_scp.sh, without its sample items), ``replace(items)`` to change
  the worklist between queries, ``stop()``;
- `query_dataset(...)` and `findscu_worklist(...)`: a broad worklist query (every Table 4-24
  key as a return key) sent with DCMTK ``findscu -W -X``, the responses as files.

Import as ``from worklist_samples import ...`` (tests/ is on sys.path, as for
gsps_samples and qr_samples).

What ``wlmscpfs`` (DCMTK 3.6.7) does with these items, seen with the real program:
- it matches raw bytes and converts no character set (../shared/peers/README.md): a query
  value must be in the item's own encoding; run with ``-csk`` it returns each item's own
  Specific Character Set, so pydicom decodes every response (ISO 2022 IR 87 included);
- see `WLMSCPFS_NOTES` for the rest (return keys it drops, FF01, matching, files it skips).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import random
import subprocess
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = ROOT.parent / "shared" / "peers"
SCRIPT = PEERS / "peers" / "worklist_scp.sh"

MWL_FIND = "1.2.840.10008.5.1.4.31"  # Modality Worklist Information Model - FIND
UID_NAMESPACE = uuid.UUID("8f0b3c52-6d1e-4f7a-b2a9-3e5d7c1f9a24")

ASCII, LATIN1, UTF8, JAPANESE = None, "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87"
CHARSETS = (ASCII, LATIN1, UTF8, JAPANESE)
# what each short name above puts into Specific Character Set (0008,0005)
CHARSET_VALUE = {ASCII: None, LATIN1: "ISO_IR 100", UTF8: "ISO_IR 192",
                 JAPANESE: ["ISO 2022 IR 6", "ISO 2022 IR 87"]}
JP_NAME = "Yamada^Tarou=山田^太郎=やまだ^たろう"

MODALITIES = ("MG", "CT", "MR", "CR", "US", "DX")

# Table 4-24 of the spec (reference-conformance-statement.txt): (keyword path, return key type).
# A path of two or three keywords is an attribute inside the first item of a sequence.
TABLE_4_24: tuple[tuple[tuple[str, ...], str], ...] = (
    (("SpecificCharacterSet",), "1C"),
    (("ScheduledProcedureStepSequence",), "1"),
    (("ScheduledProcedureStepSequence", "Modality"), "1"),
    (("ScheduledProcedureStepSequence", "ScheduledStationAETitle"), "1"),
    (("ScheduledProcedureStepSequence", "ScheduledProcedureStepStartDate"), "1"),
    (("ScheduledProcedureStepSequence", "ScheduledProcedureStepStartTime"), "1"),
    (("ScheduledProcedureStepSequence", "ScheduledProcedureStepEndDate"), "3"),
    (("ScheduledProcedureStepSequence", "ScheduledProcedureStepEndTime"), "3"),
    (("ScheduledProcedureStepSequence", "ScheduledPerformingPhysicianName"), "1"),
    (("ScheduledProcedureStepSequence", "ScheduledProcedureStepDescription"), "1C"),
    (("ScheduledProcedureStepSequence", "ScheduledProtocolCodeSequence"), "1C"),
    (("ScheduledProcedureStepSequence", "ScheduledProtocolCodeSequence", "CodeValue"), "1C"),
    (("ScheduledProcedureStepSequence", "ScheduledProtocolCodeSequence", "CodingSchemeDesignator"), "1C"),
    (("ScheduledProcedureStepSequence", "ScheduledProtocolCodeSequence", "CodingSchemeVersion"), "3"),
    (("ScheduledProcedureStepSequence", "ScheduledProtocolCodeSequence", "CodeMeaning"), "3"),
    (("ScheduledProcedureStepSequence", "ScheduledProcedureStepID"), "1"),
    (("ScheduledProcedureStepSequence", "ScheduledStationName"), "2"),
    (("ScheduledProcedureStepSequence", "ScheduledProcedureStepLocation"), "2"),
    (("ScheduledProcedureStepSequence", "ScheduledProcedureStepStatus"), "3"),
    (("ScheduledProcedureStepSequence", "CommentsOnTheScheduledProcedureStep"), "3"),
    (("StudyDate",), "3"),
    (("StudyTime",), "3"),
    (("ReferencedStudySequence",), "2"),
    (("StudyInstanceUID",), "1"),
    (("RequestedProcedureDescription",), "1C"),
    (("RequestedProcedureCodeSequence",), "1C"),
    (("RequestedProcedureCodeSequence", "CodeValue"), "1C"),
    (("RequestedProcedureCodeSequence", "CodingSchemeDesignator"), "1C"),
    (("RequestedProcedureCodeSequence", "CodingSchemeVersion"), "3"),
    (("RequestedProcedureCodeSequence", "CodeMeaning"), "3"),
    (("RequestedProcedureID",), "1"),
    (("ReasonForTheRequestedProcedure",), "3"),
    (("RequestedProcedurePriority",), "2"),
    (("PatientTransportArrangements",), "2"),
    (("ConfidentialityCode",), "3"),
    (("ReportingPriority",), "3"),
    (("NamesOfIntendedRecipientsOfResults",), "3"),
    (("RequestedProcedureComments",), "3"),
    (("AccessionNumber",), "2"),
    (("ReferringPhysicianName",), "2"),
    (("RequestingPhysician",), "2"),
    (("RequestingService",), "3"),
    (("IssueDateOfImagingServiceRequest",), "3"),
    (("IssueTimeOfImagingServiceRequest",), "3"),
    (("PlacerOrderNumberImagingServiceRequest",), "3"),
    (("FillerOrderNumberImagingServiceRequest",), "3"),
    (("OrderEnteredBy",), "3"),
    (("OrderEntererLocation",), "3"),
    (("OrderCallbackPhoneNumber",), "3"),
    (("ImagingServiceRequestComments",), "3"),
    (("AdmissionID",), "2"),
    (("IssuerOfAdmissionID",), "3"),
    (("CurrentPatientLocation",), "2"),
    (("AdmittingDiagnosesDescription",), "3"),
    (("AdmittingDate",), "3"),
    (("PatientName",), "1"),
    (("PatientID",), "1"),
    (("IssuerOfPatientID",), "3"),
    (("OtherPatientIDs",), "3"),
    (("OtherPatientNames",), "3"),
    (("PatientBirthName",), "3"),
    (("PatientBirthDate",), "2"),
    (("PatientBirthTime",), "3"),
    (("PatientSex",), "2"),
    (("PatientInsurancePlanCodeSequence",), "3"),
    (("PatientInsurancePlanCodeSequence", "CodeValue"), "1C"),
    (("PatientInsurancePlanCodeSequence", "CodingSchemeDesignator"), "1C"),
    (("PatientInsurancePlanCodeSequence", "CodingSchemeVersion"), "3"),
    (("PatientInsurancePlanCodeSequence", "CodeMeaning"), "3"),
    (("PatientAge",), "3"),
    (("PatientSize",), "3"),
    (("PatientWeight",), "2"),
    (("PatientAddress",), "3"),
    (("MilitaryRank",), "3"),
    (("BranchOfService",), "3"),
    (("EthnicGroup",), "3"),
    (("PatientComments",), "3"),
    (("MedicalAlerts",), "2"),
    (("Allergies",), "2"),
    (("PregnancyStatus",), "2"),
    (("SmokingStatus",), "3"),
    (("LastMenstrualDate",), "3"),
    (("AdditionalPatientHistory",), "3"),
    (("SpecialNeeds",), "2"),
)
TYPE1_KEYS = tuple(path for path, kind in TABLE_4_24 if kind == "1")
# Table 4-24 says "Referenced Study Sequence ... Uses universal sequence match"; an item
# scheduled before its study exists has none, so the sequence is present and empty.
EMPTY_SEQUENCES = ("ReferencedStudySequence",)

# What the real wlmscpfs 3.6.7 (run by worklist_scp.sh: -csk, file rejection on) does with
# these items and queries, seen with the program itself; tests/unit/test_worklist_samples.py
# checks each of these, so it fails when one stops being true.
WLMSCPFS_DROPPED_KEYS = frozenset({  # Table 4-24 return keys it does not support: never returned
    "PatientBirthName", "PatientBirthTime", "PatientAge", "BranchOfService", "PatientInsurancePlanCodeSequence",
    "AdmittingDate"})
WLMSCPFS_NOTES = (
    "return keys it does not support (WLMSCPFS_DROPPED_KEYS) are left out of every response, and "
    "every pending response of such a query has status FF01 (Pending, unsupported optional keys), not FF00",
    "matching compares raw bytes: case-sensitive (PatientName 'okafor*' misses 'Okafor^Chinedu') and no "
    "character set conversion (a UTF-8 query value does not match a Latin-1 item)",
    "Scheduled Station AE Title: '*' or a list of values (LIGHTBOX\\CT01), no other wildcard ('LIGHT*' "
    "finds nothing); Modality: one value or '*' ('M*' and 'MG\\CT' find nothing)",
    "SPS Start Date: single dates, closed and open ranges (YYYYMMDD-, -YYYYMMDD) match as the standard "
    "says; with a time range as well, date and time form one date-time range (PS3.4 C.2.2.2.5: "
    "20260301-20260303 with 0700-1159 is 1 March 07:00 to 3 March 11:59, not mornings only)",
    "-csk: each item's own Specific Character Set comes back; an item without one comes back "
    "without (0008,0005) although the query asked for it",
    "Pregnancy Status absent or empty in a file comes back as 4 (unknown)",
    "Referenced Study Sequence empty or absent in a file comes back as an empty sequence",
    "a file without a value for Patient's Name, Patient ID, SPS Start Date or Time, Modality, Scheduled "
    "Station AE Title, SPS ID, Requested Procedure ID or Study Instance UID, without both SPS "
    "Description and Scheduled Protocol Code Sequence (or Requested Procedure Description and Code "
    "Sequence), or with two SPS items, is skipped silently (its log: 'is incomplete, file will be "
    "ignored'); an empty Scheduled Performing Physician's Name or Accession Number is accepted",
)

# -- procedures per modality: (code value, description, station name, location, minutes) ---------
PROCEDURES = {
    "MG": (("MGSCRBI", "MAMMOGRAPHY SCREENING BILATERAL", "MG_ROOM_1", "BREAST CENTRE", 15),
           ("MGDIAGL", "MAMMOGRAPHY DIAGNOSTIC LEFT", "MG_ROOM_2", "BREAST CENTRE", 30),
           ("MGTOMOB", "DIGITAL BREAST TOMOSYNTHESIS BILATERAL", "MG_ROOM_1", "BREAST CENTRE", 20)),
    "CT": (("CTCHESTC", "CT CHEST WITH CONTRAST", "CT_SCANNER_1", "RADIOLOGY CT", 20),
           ("CTHEADNC", "CT HEAD WITHOUT CONTRAST", "CT_SCANNER_2", "EMERGENCY CT", 10),
           ("CTABDPEL", "CT ABDOMEN PELVIS WITH CONTRAST", "CT_SCANNER_1", "RADIOLOGY CT", 25)),
    "MR": (("MRBRAIN", "MR BRAIN WITHOUT AND WITH CONTRAST", "MR_3T", "RADIOLOGY MR", 45),
           ("MRKNEEL", "MR KNEE LEFT", "MR_1_5T", "RADIOLOGY MR", 30),
           ("MRLSPINE", "MR LUMBAR SPINE", "MR_1_5T", "RADIOLOGY MR", 30)),
    "CR": (("CRCHEST2", "XR CHEST PA AND LATERAL", "CR_ROOM_1", "RADIOLOGY XR", 10),
           ("CRHAND3", "XR HAND 3 VIEWS", "CR_ROOM_2", "RADIOLOGY XR", 10)),
    "US": (("USABD", "US ABDOMEN COMPLETE", "US_ROOM_1", "ULTRASOUND", 30),
           ("USBREAST", "US BREAST BILATERAL", "US_ROOM_2", "BREAST CENTRE", 20),
           ("USTHYR", "US THYROID", "US_ROOM_1", "ULTRASOUND", 20)),
    "DX": (("DXPELVIS", "XR PELVIS AP", "DX_ROOM_1", "RADIOLOGY XR", 10),
           ("DXFOOT3", "XR FOOT 3 VIEWS", "DX_ROOM_1", "RADIOLOGY XR", 10)),
}
OTHER_STATIONS = {"MG": "MG02", "CT": "CT01", "MR": "MR01", "CR": "CR01", "US": "US01", "DX": "DX01"}
CODING_SCHEME = "99LBXPROC"  # a local (private, "99" prefix) coding scheme

# patients per character set: (patient name, sex, requesting physician); the Japanese names
# are in the three component groups of PS3.5 Annex H (alphabetic = ideographic = phonetic)
NAMES = {
    ASCII: (("Smith^Jane^A", "F", "Brown^Robert"), ("Johnson^Mary", "F", "Wilson^Anne"),
            ("Williams^John^Henry", "M", "Taylor^Paul"), ("Nguyen^Linh", "F", "Clark^Susan"),
            ("Okafor^Chinedu", "M", "Walker^James"), ("Kowalski^Anna", "F", "Young^Peter")),
    LATIN1: (("García^José Ángel", "M", "Peña^Lucía"), ("Müller^Jürgen", "M", "Ärztin^Sophie"),
             ("Åberg^Björn", "M", "Lindqvist^Märta"), ("Lefèvre^Agnès", "F", "Dubois^François"),
             ("Ødegaard^Søren", "M", "Bjørnstad^Åse"), ("Gonçalves^Inês", "F", "Simões^João")),
    UTF8: (("Łukasiewicz^Małgorzata", "F", "Dvořák^Jiří"), ("Öztürk^Ayşe", "F", "Çelik^Mehmet"),
           ("Παπαδοπούλου^Ελένη", "F", "Νικολάου^Γιώργος"), ("Иванова^Ольга", "F", "Петров^Сергей"),
           ("Żak^Zoë", "F", "Ibáñez^Raúl"), ("王^小红", "F", "李^明")),
    JAPANESE: ((JP_NAME, "M", "Suzuki^Ichiro=鈴木^一郎=すずき^いちろう"),
               ("Tanaka^Hanako=田中^花子=たなか^はなこ", "F", "Sato^Yuki=佐藤^雪=さとう^ゆき"),
               ("Takahashi^Yoko=高橋^陽子=たかはし^ようこ", "F", "Ito^Kenji=伊藤^健二=いとう^けんじ"),
               ("Watanabe^Akira=渡辺^明=わたなべ^あきら", "M", "Kato^Mei=加藤^芽衣=かとう^めい")),
}
# a non-ASCII address or comment per character set (checked after the round trip too)
ADDRESS = {ASCII: "12 Main Street^^Springfield^^12345", LATIN1: "Königstraße 5^^Düsseldorf^^40212",
           UTF8: "ul. Świętokrzyska 14^^Łódź^^90-001", JAPANESE: "千代田区千代田1-1^^東京都^^100-0001"}


def uid(kind: str, label: str) -> str:
    """A deterministic UID (2.25 form of a name-based UUID)."""
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, f'lightbox worklist_samples/{kind}/{label}').int}"


def _da(value) -> str:
    return value.strftime("%Y%m%d") if isinstance(value, (dt.date, dt.datetime)) else str(value)


def code_item(value: str, meaning: str, scheme: str = CODING_SCHEME, version: str | None = None) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    if version is not None:
        item.CodingSchemeVersion = version
    item.CodeMeaning = meaning
    return item


def _age(birth: str, on: str) -> str:
    b, d = dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:8])), dt.date(int(on[:4]), int(on[4:6]), int(on[6:8]))
    years = d.year - b.year - ((d.month, d.day) < (b.month, b.day))
    return f"{max(years, 0):03d}Y"


def _end(date: str, time: str, minutes: int) -> tuple[str, str]:
    start = dt.datetime.strptime(date + time[:6].ljust(6, "0"), "%Y%m%d%H%M%S")
    end = start + dt.timedelta(minutes=minutes)
    return end.strftime("%Y%m%d"), end.strftime("%H%M%S")


def worklist_item(**fields) -> Dataset:
    """One worklist item with every return key of Table 4-24. Keyword arguments override the
    defaults: patient_name, patient_id, issuer, birth_date, sex, modality, station_aet,
    station_name, start_date (str YYYYMMDD or date), start_time, minutes (duration: end
    date/time), performing_physician, description (the SPS description), protocol_code
    (value, meaning), sps_id, location, status, comments, study_uid, requested_procedure_id,
    requested_description, requested_code (value, meaning), reason, priority, transport,
    accession, referring, requesting, admission_id, patient_location, medical_alerts,
    allergies, pregnancy (1 not pregnant, 2 possibly, 3 definitely, 4 unknown, None: empty),
    special_needs, address, size, weight, charset (None, "ISO_IR 100", "ISO_IR 192",
    "ISO 2022 IR 87" or a list for Specific Character Set itself), referenced_studies (list of
    (SOP class, SOP instance) for the Referenced Study Sequence; default none: empty)."""
    f = dict(fields)
    unknown = set(f) - _FIELDS
    if unknown:
        raise TypeError(f"worklist_item: unknown field(s) {', '.join(sorted(unknown))}")
    modality = f.get("modality", "MG")
    proc = PROCEDURES.get(modality, PROCEDURES["MG"])[0]
    start_date = _da(f.get("start_date", dt.date.today()))
    start_time = f.get("start_time", "090000")
    accession = f.get("accession", "ACC000001")
    sex = f.get("sex", "F")
    birth = f.get("birth_date", "19650412")
    charset = f.get("charset", ASCII)
    end_date, end_time = _end(start_date, start_time, f.get("minutes", proc[4]))

    ds = Dataset()
    cs = charset if isinstance(charset, list | tuple) else CHARSET_VALUE.get(charset, charset)
    if cs:
        ds.SpecificCharacterSet = cs
    # -- Scheduled Procedure Step
    sps = Dataset()
    sps.Modality = modality
    sps.ScheduledStationAETitle = f.get("station_aet", "LIGHTBOX")
    sps.ScheduledProcedureStepStartDate = start_date
    sps.ScheduledProcedureStepStartTime = start_time
    sps.ScheduledProcedureStepEndDate = end_date
    sps.ScheduledProcedureStepEndTime = end_time
    sps.ScheduledPerformingPhysicianName = f.get("performing_physician", "Technologist^Pat")
    sps.ScheduledProcedureStepDescription = f.get("description", proc[1])
    protocol = f.get("protocol_code", (proc[0], proc[1]))
    sps.ScheduledProtocolCodeSequence = Sequence([code_item(*protocol, version="2026")])
    sps.ScheduledProcedureStepID = f.get("sps_id", "SPS000001")
    sps.ScheduledStationName = f.get("station_name", proc[2])
    sps.ScheduledProcedureStepLocation = f.get("location", proc[3])
    sps.ScheduledProcedureStepStatus = f.get("status", "SCHEDULED")
    sps.CommentsOnTheScheduledProcedureStep = f.get("comments", "Please bring previous images")
    ds.ScheduledProcedureStepSequence = Sequence([sps])
    # -- Requested Procedure
    ds.StudyDate = start_date
    ds.StudyTime = start_time
    ds.ReferencedStudySequence = Sequence([_ref(*r) for r in f.get("referenced_studies", ())])
    ds.StudyInstanceUID = f.get("study_uid") or uid("study", accession)
    ds.RequestedProcedureDescription = f.get("requested_description", f.get("description", proc[1]))
    requested = f.get("requested_code", (proc[0], f.get("description", proc[1])))
    ds.RequestedProcedureCodeSequence = Sequence([code_item(*requested, version="2026")])
    ds.RequestedProcedureID = f.get("requested_procedure_id", "RP000001")
    ds.ReasonForTheRequestedProcedure = f.get("reason", "Routine examination")
    ds.RequestedProcedurePriority = f.get("priority", "ROUTINE")
    ds.PatientTransportArrangements = f.get("transport", "AMBULATORY")
    ds.ConfidentialityCode = ""
    ds.ReportingPriority = "ROUTINE"
    ds.NamesOfIntendedRecipientsOfResults = f.get("referring", "Referrer^Ruth")
    ds.RequestedProcedureComments = "none"
    # -- Imaging Service Request
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = f.get("referring", "Referrer^Ruth")
    ds.RequestingPhysician = f.get("requesting", "Requester^Rick")
    ds.RequestingService = "RADIOLOGY"
    ds.IssueDateOfImagingServiceRequest = start_date
    ds.IssueTimeOfImagingServiceRequest = "080000"
    ds.PlacerOrderNumberImagingServiceRequest = f"PLC{accession}"
    ds.FillerOrderNumberImagingServiceRequest = f"FIL{accession}"
    ds.OrderEnteredBy = "Clerk^Carol"
    ds.OrderEntererLocation = "RECEPTION"
    ds.OrderCallbackPhoneNumber = "+1 555 0100"
    ds.ImagingServiceRequestComments = ""
    # -- Visit
    ds.AdmissionID = f.get("admission_id", f"ADM{accession}")
    ds.IssuerOfAdmissionID = "HIS"
    ds.CurrentPatientLocation = f.get("patient_location", "OUTPATIENT")
    ds.AdmittingDiagnosesDescription = ""
    ds.AdmittingDate = start_date
    # -- Patient
    ds.PatientName = f.get("patient_name", "Doe^Jane")
    ds.PatientID = f.get("patient_id", "PID000001")
    ds.IssuerOfPatientID = f.get("issuer", "HOSPITAL")
    ds.OtherPatientIDs = ""
    ds.OtherPatientNames = ""
    ds.PatientBirthName = ""
    ds.PatientBirthDate = birth
    ds.PatientBirthTime = ""
    ds.PatientSex = sex
    ds.PatientInsurancePlanCodeSequence = Sequence([code_item("STD", "Standard plan", "99LBXINS", version="1")])
    ds.PatientAge = _age(birth, start_date) if birth else ""
    ds.PatientSize = f.get("size", "1.65" if sex == "F" else "1.78")
    ds.PatientWeight = f.get("weight", "62" if sex == "F" else "80")
    ds.PatientAddress = f.get("address", ADDRESS[ASCII])
    ds.MilitaryRank = ""
    ds.BranchOfService = ""
    ds.EthnicGroup = ""
    ds.PatientComments = ""
    ds.MedicalAlerts = f.get("medical_alerts", "NONE")
    ds.Allergies = f.get("allergies", "NONE")
    pregnancy = f.get("pregnancy", 1 if sex == "F" else 4)
    ds.PregnancyStatus = pregnancy
    ds.SmokingStatus = "UNKNOWN"
    ds.LastMenstrualDate = ""
    ds.AdditionalPatientHistory = ""
    ds.SpecialNeeds = f.get("special_needs", "")
    return ds


_FIELDS = {
    "patient_name", "patient_id", "issuer", "birth_date", "sex", "modality", "station_aet", "station_name",
    "start_date", "start_time", "minutes", "performing_physician", "description", "protocol_code", "sps_id",
    "location", "status", "comments", "study_uid", "requested_procedure_id", "requested_description",
    "requested_code", "reason", "priority", "transport", "accession", "referring", "requesting", "admission_id",
    "patient_location", "medical_alerts", "allergies", "pregnancy", "special_needs", "address", "size", "weight",
    "charset", "referenced_studies",
}


def _ref(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


# -- many items ----------------------------------------------------------------------------------------
def varied_items(n: int, today: dt.date | None = None, station_aet: str = "LIGHTBOX", seed: int = 0) -> list[Dataset]:
    """``n`` items, deterministic for (n, today, station_aet, seed): modalities MG CT MR CR US DX
    in equal shares, Scheduled Procedure Step Start Dates from today-3 to today+3, about a
    third scheduled on ``station_aet`` and the rest on the modality's other station, the four
    character sets in equal shares (each patient's name and address in its own set; the
    names of each set in turn, `JP_NAME` first among the Japanese ones). Every item has its
    own Patient ID, Accession Number, Requested Procedure ID, SPS ID and Study Instance UID."""
    today = today or dt.date.today()
    rng = random.Random(f"{seed}/{n}/{station_aet}")
    modalities = [MODALITIES[i % len(MODALITIES)] for i in range(n)]
    charsets = [CHARSETS[i % len(CHARSETS)] for i in range(n)]
    rng.shuffle(modalities)
    rng.shuffle(charsets)
    items = []
    seen = dict.fromkeys(CHARSETS, 0)
    for i in range(n):
        modality, charset = modalities[i], charsets[i]
        code, description, station_name, location, minutes = rng.choice(PROCEDURES[modality])
        pool = NAMES[charset]  # in turn, so a few items already have every name (JP_NAME first)
        if modality == "MG":  # a woman's name for a mammogram
            while pool[seen[charset] % len(pool)][1] != "F":
                seen[charset] += 1
        name, sex, requesting = pool[seen[charset] % len(pool)]
        seen[charset] += 1
        day = today + dt.timedelta(days=rng.randint(-3, 3))
        minute = rng.randrange(7 * 60, 18 * 60, 5)
        label = f"{seed}-{i}"
        birth = dt.date(rng.randint(1935, 2005), rng.randint(1, 12), rng.randint(1, 28))
        items.append(worklist_item(
            charset=charset, patient_name=name, sex=sex, requesting=requesting,
            patient_id=f"WL{seed:02d}{i:06d}", birth_date=birth.strftime("%Y%m%d"),
            modality=modality, station_aet=station_aet if rng.random() < 0.34 else OTHER_STATIONS[modality],
            station_name=station_name, location=location, minutes=minutes,
            start_date=day.strftime("%Y%m%d"), start_time=f"{minute // 60:02d}{minute % 60:02d}00",
            description=description, protocol_code=(code, description), requested_code=(code, description),
            accession=f"A{seed:02d}{i:07d}", sps_id=f"S{seed:02d}{i:07d}", requested_procedure_id=f"R{seed:02d}{i:07d}",
            study_uid=uid("study", label), admission_id=f"V{seed:02d}{i:07d}",
            priority=rng.choice(("ROUTINE", "ROUTINE", "ROUTINE", "MEDIUM", "HIGH", "STAT")),
            transport=rng.choice(("AMBULATORY", "AMBULATORY", "WHEELCHAIR", "STRETCHER")),
            patient_location=rng.choice(("OUTPATIENT", "WARD 3B", "EMERGENCY", "ICU 2")),
            medical_alerts=rng.choice(("NONE", "NONE", "PACEMAKER", "DIABETES")),
            allergies=rng.choice(("NONE", "NONE", "IODINE", "LATEX")),
            pregnancy=(rng.choice((1, 1, 4)) if sex == "F" else 4),
            special_needs=rng.choice(("", "", "", "INTERPRETER", "WHEELCHAIR ACCESS")),
            address=ADDRESS[charset],
        ))
    return items


# -- files ---------------------------------------------------------------------------------------------
def write_item(ds: Dataset, path: Path) -> Path:
    """One item as a Part 10 file: meta header (pydicom's, conformant), Explicit VR Little
    Endian; written to a temporary name and renamed, so a query never reads half a file."""
    path = Path(path)
    ds = Dataset(ds)  # a shallow copy: the caller's item keeps no file meta
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MWL_FIND
    meta.MediaStorageSOPInstanceUID = uid("file", f"{ds.get('AccessionNumber', '')}/{ds.get('StudyInstanceUID', '')}"
                                                  f"/{_sps_id(ds)}")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Latin-1/UTF-8 values pydicom checks against the VR's repertoire
        ds.save_as(tmp, enforce_file_format=True)
    os.replace(tmp, path)
    return path


def _sps_id(ds: Dataset) -> str:
    seq = ds.get("ScheduledProcedureStepSequence")
    return str(seq[0].get("ScheduledProcedureStepID", "")) if seq else ""


def write_worklist(folder: Path, items) -> list[Path]:
    """Each item as ``folder/NNNNN.wl`` (1-based, zero-padded); the folder is created."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_item(ds, folder / f"{n:05d}.wl") for n, ds in enumerate(items, 1)]


def read_item(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def get_path(ds: Dataset, path: tuple[str, ...]):
    """The element at a Table 4-24 keyword path (first item of each sequence), or None."""
    node = ds
    for i, keyword in enumerate(path):
        if keyword not in node:
            return None
        elem = node[keyword]
        if i == len(path) - 1:
            return elem
        if not elem.value:
            return None
        node = elem.value[0]
    return None


def missing_type1(ds: Dataset) -> list[str]:
    """Table 4-24 type 1 keys absent or empty in ``ds``."""
    out = []
    for path in TYPE1_KEYS:
        elem = get_path(ds, path)
        if elem is None or elem.value in (None, "", b"") or (elem.VR == "SQ" and len(elem.value) == 0):
            out.append(">".join(path))
    return out


# -- the query ----------------------------------------------------------------------------------------
def query_dataset(*, start: dt.date | str | None = None, end: dt.date | str | None = None, modality: str = "*",
                  station_aet: str | None = None, charset=None, **keys) -> Dataset:
    """A broad worklist query (Table 4-23) asking for every return key of Table 4-24:
    SPS Start Date ``start-end`` (either open; both None: universal), Modality (``*``:
    universal), Scheduled Station AE Title (None: universal). ``keys``: further matching
    values by top-level keyword (e.g. PatientName="Smith*")."""
    ds = Dataset()
    for path, _ in TABLE_4_24:
        node = ds
        for i, keyword in enumerate(path):
            last = i == len(path) - 1
            if keyword not in node:
                if pydicom.datadict.dictionary_VR(keyword) == "SQ":
                    setattr(node, keyword, Sequence([Dataset()]) if not last or keyword != "ReferencedStudySequence"
                            else Sequence([]))
                else:
                    setattr(node, keyword, None)
            if not last:
                node = node[keyword].value[0]
    if charset:
        ds.SpecificCharacterSet = CHARSET_VALUE.get(charset, charset)
    sps = ds.ScheduledProcedureStepSequence[0]
    sps.Modality = "" if modality in ("*", "", None) else modality
    sps.ScheduledStationAETitle = station_aet or ""
    if start is not None or end is not None:
        a = _da(start) if start is not None else ""
        b = _da(end) if end is not None else ""
        sps.ScheduledProcedureStepStartDate = a if a == b else f"{a}-{b}"
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def write_query(ds: Dataset, path: Path) -> Path:
    """A query as a Part 10 file findscu reads (its dataset is the identifier sent)."""
    return write_item(ds, path)


def findscu_worklist(port: int, query: Dataset | Path, out_dir: Path, *, aet: str = "WORKLIST",
                     calling: str = "FINDSCU", extra: tuple[str, ...] = (), timeout: float = 600,
                     host: str = "127.0.0.1") -> tuple[subprocess.CompletedProcess, list[Path]]:
    """DCMTK ``findscu -W -X`` (TCP_NODELAY=1): every response written to ``out_dir``
    (rsp0001.dcm ...), which is emptied of earlier responses first. Returns the process
    (stdout and stderr merged) and the response files in order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("rsp*.dcm"):
        old.unlink()
    if isinstance(query, Dataset):
        query = write_query(query, out_dir / "query.dcm")
    env = dict(os.environ, TCP_NODELAY="1")
    proc = subprocess.run([dcmtk_tool("findscu"), "-W", "-aet", calling, "-aec", aet, "-X", "-od", str(out_dir),
                           *extra, host, str(port), str(query)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                          timeout=timeout, env=env)
    return proc, sorted(out_dir.glob("rsp*.dcm"))


def dcmtk_tool(tool: str) -> str:
    """Absolute path of a DCMTK program (pynetdicom's console scripts shadow findscu on PATH)."""
    for d in ("/usr/bin", "/usr/local/bin"):
        p = Path(d) / tool
        if p.exists():
            return str(p)
    raise FileNotFoundError(f"DCMTK program {tool} is not installed (apt-get install dcmtk)")


# -- the peer ------------------------------------------------------------------------------------------
def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorklistScp:
    """DCMTK ``wlmscpfs`` on 127.0.0.1 (../shared/peers/peers/worklist_scp.sh, without its
    sample items: WL_NO_SAMPLES=1; TCP_NODELAY=1) serving ``items`` as ``work_dir/<aet>/NNNNN.wl``; called
    AE title ``aet``. ``replace(items)`` rewrites the folder (under the lockfile wlmscpfs
    reads it by), ``stop()`` stops exactly the process started. Also a context manager."""

    SCRIPT = SCRIPT

    def __init__(self, work_dir: Path, items, aet: str = "WORKLIST", port: int | None = None):
        self.work_dir = Path(work_dir)
        self.aet = aet
        self.host = "127.0.0.1"
        self.folder = self.work_dir / aet
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "lockfile").touch()
        items = list(items)
        self.files = self.replace(items)
        placeholder = None
        if not items:  # the start script refuses a folder without a .wl file: one nobody sees
            placeholder = write_item(worklist_item(), self.folder / "placeholder.wl")
        self.port = port or _free_port()
        # TCP_NODELAY: DCMTK's small PDUs otherwise meet Nagle and delayed ACKs (../shared/peers/README.md)
        env = dict(os.environ, WL_AET=aet, WL_NO_SAMPLES="1", TCP_NODELAY="1")
        run = subprocess.run(["bash", str(self.SCRIPT), str(self.port), str(self.work_dir)], env=env,
                             capture_output=True, text=True, timeout=120)
        if placeholder is not None:
            placeholder.unlink()
        if run.returncode != 0:
            raise RuntimeError(f"worklist_scp.sh exited {run.returncode}: {run.stderr}\n{self.log()}")

    @property
    def log_path(self) -> Path:
        return self.work_dir / "wlmscpfs.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @contextmanager
    def _locked(self):
        """wlmscpfs holds a POSIX read lock (fcntl F_RDLCK) on ``lockfile`` while it reads the
        folder; this write lock (lockf, the same kind of lock) keeps it out meanwhile."""
        with open(self.folder / "lockfile", "a") as lock:
            fcntl.lockf(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(lock, fcntl.LOCK_UN)

    def replace(self, items) -> list[Path]:
        """Make ``items`` the whole worklist (for refresh tests: new, changed, vanished items)."""
        with self._locked():
            old = set(self.folder.glob("*.wl"))
            self.files = write_worklist(self.folder, items)
            for p in old - set(self.files):
                p.unlink()
        return self.files

    def stop(self) -> None:
        subprocess.run(["bash", str(self.SCRIPT), "stop", str(self.work_dir)], capture_output=True, timeout=60)

    def __enter__(self) -> "WorklistScp":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
