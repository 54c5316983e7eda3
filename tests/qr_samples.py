"""A small archive and the C-FIND cases that check the Query SCP against it (spec
§4.2.1.4.3, Table 4-48 and the matching text under it, Table 4-49).

The archive is data: patients -> studies -> series (-> instances numbered 1..count), each
with a label. Every UID is derived from its label (`uid(kind, label)`), so the cases can
name entities before any file exists. `write_archive(folder)` writes the files with pydicom
(8x8 images, each patient in its own Specific Character Set); they are then imported or
sent to a node.

`CASES` are the specification: (model, level, keys, expected labels, statuses), each
expectation written by hand from the rule it checks, with the reason beside it. They are
not the output of the code under test. `reference_match` is a second, independent reading
of the same rules, used only to catch slips in the hand-written sets
(tests/peers/test_query_scp.py::test_expectations_follow_the_rules).

Interpretations chosen where the spec leaves room (see the module docstring of
tests/peers/test_query_scp.py for the list):
- Patient's Name: the '*' is appended to the user's string as a whole (footnote 2), and the
  result is then split into components at '^'. So `Doe^John` is family `Doe` (exact, case
  aside) and given `John*`; `Doe` alone is family `Doe*`.
- A query PN component that is empty or absent is universal; a stored group lacking the
  component has it empty.
- Case-insensitive means Unicode case folding (MÜLLER finds Müller), not accent folding.
- Stored times are points (missing digits are zeros); query times are intervals by
  meaning (`2230` = 22:30:00.000000 .. 22:30:59.999999).
- A null (empty/absent) stored value matches only universal matching, except the time of a
  combined date-time range (text under Table 4-48).
"""

from __future__ import annotations

import re
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.charset import convert_encodings, encode_string
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
)
from pydicom.valuerep import PersonName

ROOT = Path(__file__).resolve().parent.parent
QR_TABLE = ROOT / "resources" / "spec" / "qr_attributes.tsv"

PATIENT_ROOT, STUDY_ROOT, PATIENT_STUDY_ONLY = "P", "S", "O"  # findscu -P / -S / -O
MODEL_UIDS = {
    PATIENT_ROOT: "1.2.840.10008.5.1.4.1.2.1.1",
    STUDY_ROOT: "1.2.840.10008.5.1.4.1.2.2.1",
    PATIENT_STUDY_ONLY: "1.2.840.10008.5.1.4.1.2.3.1",
}
# the key that names an entity of each level in a response (the unique key, or Patient ID)
LEVEL_KEY = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
             "IMAGE": "SOPInstanceUID"}

SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage, "US": UltrasoundImageStorage,
             "OT": SecondaryCaptureImageStorage, "CR": ComputedRadiographyImageStorage}

UID_NAMESPACE = uuid.UUID("5b0c6f1e-8f55-4d1c-9a53-2f0f4c1e7a10")
SUCCESS, PENDING, PENDING_WARNING = 0x0000, 0xFF00, 0xFF01
BELOW_LEVEL, FAILED = 0x0106, 0xC001


def uid(kind: str, label: str) -> str:
    """The UID of an entity of the archive: deterministic, 2.25 form of a name-based UUID (no
    root of anyone's; pydicom's generate_uid ignores its entropy sources in the 2.25 form)."""
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, f'lightbox qr_samples/{kind}/{label}').int}"


# -- the archive --------------------------------------------------------------------------
@dataclass
class Series:
    label: str
    modality: str
    number: int
    count: int  # instances, numbered 1..count, labelled f"{label}_i{n}"
    # RequestAttributesSequence items: (RequestedProcedureID, ScheduledProcedureStepID)
    requests: tuple[tuple[str, str], ...] = ()


@dataclass
class Study:
    label: str
    date: str
    time: str | None  # None = no Study Time element at all; "" = present, empty
    accession: str
    study_id: str
    description: str
    series: list[Series]


@dataclass
class Patient:
    label: str
    name: str
    pid: str
    charset: str | list[str] | None  # Specific Character Set of its files; None = default repertoire
    sex: str
    birth: str
    studies: list[Study]
    extra: dict = field(default_factory=dict)  # further patient attributes (return-only ones)


def _one(label, date, time, acc, sid, desc, *series) -> Study:
    return Study(label, date, time, acc, sid, desc, list(series))


def _plain(label: str, date: str, time: str | None) -> Study:
    """A date/time probe: one study with one OT series of one instance, nothing else set."""
    return _one(label, date, time, "", "", "", Series(f"{label}_ot1", "OT", 1, 1))


# Stored times for the "by meaning" rules (text under Table 4-48): label -> StudyTime
TIME_STUDIES = {
    "tm_2230": "2230", "tm_223000": "223000", "tm_223000_500": "223000.500",
    "tm_223059_999999": "223059.999999", "tm_2231": "2231", "tm_22": "22", "tm_21": "21",
    "tm_2100": "2100", "tm_210000": "210000", "tm_224010_500": "224010.500", "tm_2059": "2059",
    "tm_224011": "224011",
}
# Date/time pairs around 2006-07-05..07 for the single, range and combined date-time rules;
# dt_0704_null has an empty Study Time, dt_0706_null none at all.
DATE_STUDIES = {
    "dt_0704_2300": ("20060704", "2300"), "dt_0704_null": ("20060704", ""),
    "dt_0705_0900": ("20060705", "0900"), "dt_0705_1000": ("20060705", "1000"),
    "dt_0706_0800": ("20060706", "0800"), "dt_0706_null": ("20060706", None),
    "dt_0707_1800": ("20060707", "1800"), "dt_0707_1900": ("20060707", "1900"),
    "dt_0708_1200": ("20060708", "1200"),
}

JP_NAME = "Yamada^Tarou=山田^太郎=やまだ^たろう"

PATIENTS: list[Patient] = [
    Patient("doe_john", "Doe^John", "PID-001", "ISO_IR 100", "M", "19600101", [
        _one("john_1", "20200101", "101500", "ACC1", "ST-A", "Chest CT",
             Series("john_1_ct1", "CT", 1, 3, (("RP-100", "SPS-100"), ("RP-101", "SPS-101"))),
             Series("john_1_ct2", "CT", 2, 2),
             Series("john_1_mr3", "MR", 3, 1)),
        _one("john_2", "20210315", "093000", "ACC10", "ST-B", "Head MR",
             Series("john_2_mr1", "MR", 1, 2)),
    ], extra={"PatientComments": "VIP"}),
    Patient("doe_jane", "Doe^Jane^Q", "PID-002", None, "F", "19650202", [
        _one("jane_1", "20200102", "110000", "ACC2", "ST-A", "Abdomen US",
             Series("jane_1_us1", "US", 1, 1, (("RP-150", "SPS-150"),))),
    ]),
    Patient("doeman", "Doeman^John", "PID-003", None, "M", "19700303", [
        _one("doeman_1", "20190505", "120000", "ACC20", "ST-C", "CHEST low dose",
             Series("doeman_1_ct1", "CT", 1, 1)),
    ]),
    Patient("smith_doe", "Smith^Doe", "PID-004", "ISO_IR 100", "F", "19750404", [
        _one("smith_1", "20220202", "080000", "acc1x", "ST-D", "Spine",
             Series("smith_1_ct5", "CT", 5, 1, (("RP-200", "SPS-200"),))),
    ]),
    Patient("doe_johnson", "Doe-Johnson^Al", "PID-005", None, "M", "19800505", [
        _one("johnson_1", "20220303", "090000", "ACC3", "ST-E", "Knee",
             Series("johnson_1_mr1", "MR", 1, 2),
             Series("johnson_1_ot2", "OT", 2, 1)),
    ]),
    Patient("doe_johnny", "Doe^Johnny", "PID-006", "ISO_IR 192", "M", "19900606", [
        _one("johnny_1", "20230101", "100000", "ACC4", "ST-F", "Hand",
             Series("johnny_1_cr1", "CR", 1, 1)),
    ]),
    # the same name in two encodings: each query must find both
    Patient("yamada_jis", JP_NAME, "PID-JP1", ["", "ISO 2022 IR 87"], "M", "19550707", [
        _one("yamada_jis_1", "20200601", "103000", "ACC5", "ST-G", "頭部",
             Series("yamada_jis_1_mr1", "MR", 1, 1)),
    ]),
    Patient("yamada_utf8", JP_NAME, "PID-JP2", "ISO_IR 192", "M", "19550707", [
        _one("yamada_utf8_1", "20200602", "103000", "ACC6", "ST-H", "頭部",
             Series("yamada_utf8_1_ct1", "CT", 1, 1)),
    ]),
    Patient("muller", "Müller^Jürgen", "PID-DE1", "ISO_IR 100", "M", "19610808", [
        _one("muller_1", "20200701", "113000", "ACC7", "ST-I", "Schädel",
             Series("muller_1_ct1", "CT", 1, 1)),
    ]),
    Patient("ivanov", "Иванов^Иван", "PID-RU1", "ISO_IR 144", "M", "19620909", [
        _one("ivanov_1", "20200801", "114500", "ACC8", "ST-J", "Грудь",
             Series("ivanov_1_mr1", "MR", 1, 1)),
    ]),
    Patient("greek", "Παπαδόπουλος^Γιώργος", "PID-GR1", "ISO_IR 126", "M", "19631010", [
        _one("greek_1", "20200901", "084500", "ACC9", "ST-K", "Θώρακας",
             Series("greek_1_us1", "US", 1, 1)),
    ]),
    Patient("time_pt", "Time^Test", "PID-TM", None, "O", "19991231",
            [_plain(label, "19990101", t) for label, t in TIME_STUDIES.items()]),
    Patient("date_pt", "Date^Test", "PID-DT", None, "O", "19991231",
            [_plain(label, d, t) for label, (d, t) in DATE_STUDIES.items()]),
]


class Archive:
    """Lookups over PATIENTS: entities by label, and the value a response must carry."""

    def __init__(self, patients: list[Patient] = PATIENTS):
        self.patients = {p.label: p for p in patients}
        self.studies: dict[str, tuple[Patient, Study]] = {}
        self.series: dict[str, tuple[Patient, Study, Series]] = {}
        self.instances: dict[str, tuple[Patient, Study, Series, int]] = {}
        for p in patients:
            for st in p.studies:
                self.studies[st.label] = (p, st)
                for se in st.series:
                    self.series[se.label] = (p, st, se)
                    for n in range(1, se.count + 1):
                        self.instances[f"{se.label}_i{n}"] = (p, st, se, n)
        labels = [*self.patients, *self.studies, *self.series, *self.instances]
        assert len(labels) == len(set(labels)), "labels must be unique across levels"

    def labels(self, level: str) -> dict[str, object]:
        return {"PATIENT": self.patients, "STUDY": self.studies, "SERIES": self.series,
                "IMAGE": self.instances}[level]

    def label_of(self, level: str, value: str) -> str | None:
        """Label of the entity a response names by its LEVEL_KEY value."""
        for label in self.labels(level):
            if self.attributes(level, label)[LEVEL_KEY[level]] == value:
                return label
        return None

    def attributes(self, level: str, label: str) -> dict:
        """Every attribute of the entity and of the entities above it, as stored (str), with
        the computed counts (int), ModalitiesInStudy (frozenset) and the request items."""
        out: dict = {}
        if level == "PATIENT":
            p = self.patients[label]
            studies = p.studies
        elif level == "STUDY":
            p, st = self.studies[label]
        elif level == "SERIES":
            p, st, se = self.series[label]
        else:
            p, st, se, n = self.instances[label]
        out.update(PatientName=p.name, PatientID=p.pid, PatientSex=p.sex, PatientBirthDate=p.birth, **p.extra)
        if level == "PATIENT":
            out["NumberOfPatientRelatedStudies"] = len(studies)
            out["NumberOfPatientRelatedSeries"] = sum(len(s.series) for s in studies)
            out["NumberOfPatientRelatedInstances"] = sum(se.count for s in studies for se in s.series)
            return out
        out.update(StudyInstanceUID=uid("study", st.label), StudyDate=st.date, AccessionNumber=st.accession,
                   StudyID=st.study_id, StudyDescription=st.description,
                   NumberOfStudyRelatedSeries=len(st.series),
                   NumberOfStudyRelatedInstances=sum(s.count for s in st.series),
                   ModalitiesInStudy=frozenset(s.modality for s in st.series))
        if st.time is not None:
            out["StudyTime"] = st.time
        if level == "STUDY":
            return out
        out.update(SeriesInstanceUID=uid("series", se.label), Modality=se.modality, SeriesNumber=se.number,
                   SeriesDescription=f"series {se.number}", NumberOfSeriesRelatedInstances=se.count)
        if se.requests:
            out["RequestAttributesSequence"] = [
                {"RequestedProcedureID": rp, "ScheduledProcedureStepID": sps} for rp, sps in se.requests]
        if level == "SERIES":
            return out
        out.update(SOPInstanceUID=uid("instance", f"{se.label}_i{n}"), SOPClassUID=SOP_CLASS[se.modality],
                   InstanceNumber=n)
        return out

    def expected_value(self, level: str, label: str, keyword: str):
        """What a response for this entity must hold for a requested key: the stored value,
        or '' when the entity has none (counts are ints, ModalitiesInStudy a frozenset)."""
        return self.attributes(level, label).get(keyword, "")


ARCHIVE = Archive()


def instance_count(patients: list[Patient] = PATIENTS) -> int:
    return sum(se.count for p in patients for st in p.studies for se in st.series)


# -- files ----------------------------------------------------------------------------------
def _peerutil():
    """tests/peers/peerutil (ct_dataset, save); on sys.path under pytest for the peer tests."""
    try:
        import peerutil
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import peerutil
    return peerutil


def datasets(patients: list[Patient] = PATIENTS):
    """(file name, dataset) for every instance of the archive."""
    pu = _peerutil()
    for p in patients:
        for st in p.studies:
            for se in st.series:
                for n in range(1, se.count + 1):
                    label = f"{se.label}_i{n}"
                    ds = pu.ct_dataset(uid("study", st.label), uid("series", se.label), uid("instance", label), n,
                                       size=8, patient_name=p.name, patient_id=p.pid, modality=se.modality,
                                       series_number=se.number, sop_class=SOP_CLASS[se.modality])
                    if p.charset is None:
                        del ds.SpecificCharacterSet
                    else:
                        ds.SpecificCharacterSet = p.charset
                    ds.PatientSex, ds.PatientBirthDate = p.sex, p.birth
                    for k, v in p.extra.items():
                        setattr(ds, k, v)
                    ds.StudyDate, ds.AccessionNumber, ds.StudyID = st.date, st.accession, st.study_id
                    ds.StudyDescription = st.description
                    if st.time is None:
                        del ds.StudyTime
                    else:
                        ds.StudyTime = st.time
                    if se.requests:
                        items = []
                        for rp, sps in se.requests:
                            item = Dataset()
                            item.RequestedProcedureID, item.ScheduledProcedureStepID = rp, sps
                            items.append(item)
                        ds.RequestAttributesSequence = Sequence(items)
                    yield f"{label}.dcm", ds


def write_archive(folder: Path, patients: list[Patient] = PATIENTS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    pu = _peerutil()
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, ds in datasets(patients):
            paths.append(pu.save(ds, folder / name))
    return paths


def patients(*labels: str) -> list[Patient]:
    return [p for p in PATIENTS if p.label in labels]


# -- the cases ------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueryCase:
    name: str
    model: str  # P | S | O (findscu -P / -S / -O)
    level: str | None  # QueryRetrieveLevel; None = not in the request at all
    keys: dict  # keyword (or 'Sequence/Item') -> value; '' = return key / universal
    expected: frozenset | None  # labels of the level; None for a failure
    why: str
    status: int = SUCCESS  # final status
    pending: int | None = PENDING  # status of every pending response (None: not checked)
    charset: str | None = None  # Specific Character Set of the request; values encoded in it

    @property
    def failure(self) -> bool:
        return self.status not in (SUCCESS,)


def _s(*labels: str) -> frozenset:
    return frozenset(labels)


DOES = _s("doe_john", "doe_jane", "doeman", "doe_johnson", "doe_johnny")
YAMADAS = _s("yamada_jis", "yamada_utf8")
ALL_PATIENTS = frozenset(p.label for p in PATIENTS)
ALL_DT = frozenset(DATE_STUDIES)
U = uid

CASES: list[QueryCase] = [
    # -- Patient's Name (footnote 2 and the text under Table 4-48), Patient Root, PATIENT level
    QueryCase("pn_star_appended", "P", "PATIENT", {"PatientName": "Doe"}, DOES,
              "'Doe' becomes family 'Doe*': Doe, Doeman, Doe-Johnson; not Smith^Doe (Doe is its given name)"),
    QueryCase("pn_family_exact_given_prefix", "P", "PATIENT", {"PatientName": "Doe^John"},
              _s("doe_john", "doe_johnny"),
              "'Doe^John*': family exactly Doe, given John*: Doe^John and Doe^Johnny, not Doeman^John"),
    QueryCase("pn_case_insensitive", "P", "PATIENT", {"PatientName": "doe^JOHN"}, _s("doe_john", "doe_johnny"),
              "as above, case ignored"),
    QueryCase("pn_star_does_not_cross_caret", "P", "PATIENT", {"PatientName": "*John"}, _s("doe_johnson"),
              "'*John*' is a family name pattern: only Doe-Johnson; the '*' must not reach the given name John"),
    QueryCase("pn_question_does_not_match_caret", "P", "PATIENT", {"PatientName": "Doe?John"}, _s("doe_johnson"),
              "'Doe?John*' in the family name: '?' matches the '-' of Doe-Johnson, never the '^' of Doe^John"),
    QueryCase("pn_given_component", "P", "PATIENT", {"PatientName": "*^John"},
              _s("doe_john", "doeman", "doe_johnny"), "given name John*: Doe^John, Doeman^John, Doe^Johnny"),
    QueryCase("pn_empty_family_is_universal", "P", "PATIENT", {"PatientName": "^Doe"}, _s("smith_doe"),
              "empty family component = universal; given Doe*: only Smith^Doe"),
    QueryCase("pn_middle_name", "P", "PATIENT", {"PatientName": "*^*^Q"}, _s("doe_jane"),
              "middle name Q*: only Doe^Jane^Q (the others have no middle name)"),
    QueryCase("pn_wildcards_per_component", "P", "PATIENT", {"PatientName": "D*^J*"},
              _s("doe_john", "doe_jane", "doeman", "doe_johnny"),
              "family D* and given J*: not Doe-Johnson^Al (given Al), not Date^Test (given Test)"),
    QueryCase("pn_empty_is_universal", "P", "PATIENT", {"PatientName": ""}, ALL_PATIENTS,
              "empty value: universal matching, every patient"),
    QueryCase("pn_patient_study_only", "O", "PATIENT", {"PatientName": "Doe^J"},
              _s("doe_john", "doe_jane", "doe_johnny"),
              "Patient/Study Only: family exactly Doe, given J*: not Doeman, not Doe-Johnson"),
    # non-ASCII names in the request's own character set; each group of a PN is searched
    QueryCase("pn_ideographic_utf8", "P", "PATIENT", {"PatientName": "山田^太郎"}, YAMADAS,
              "matches the ideographic group, whichever encoding the file used (JIS or UTF-8)",
              charset="ISO_IR 192"),
    QueryCase("pn_phonetic_utf8", "P", "PATIENT", {"PatientName": "やまだ"}, YAMADAS,
              "family やまだ* matches the phonetic group", charset="ISO_IR 192"),
    QueryCase("pn_alphabetic_ascii", "P", "PATIENT", {"PatientName": "Yamada"}, YAMADAS,
              "family Yamada* matches the alphabetic group; default repertoire request"),
    QueryCase("pn_ideographic_jis", "P", "PATIENT", {"PatientName": "山田"}, YAMADAS,
              "a request in ISO 2022 IR 87 finds both encodings", charset="\\ISO 2022 IR 87"),
    QueryCase("pn_wildcard_does_not_cross_equals", "P", "PATIENT", {"PatientName": "Yamada^Tarou?山田"},
              frozenset(), "'?' must not stand for the '=' between Tarou and 山田", charset="ISO_IR 192"),
    QueryCase("pn_latin1", "P", "PATIENT", {"PatientName": "Müller"}, _s("muller"),
              "Latin-1 bytes under ISO_IR 100", charset="ISO_IR 100"),
    QueryCase("pn_latin1_upper_case", "P", "PATIENT", {"PatientName": "MÜLLER^JÜRGEN"}, _s("muller"),
              "case-insensitive beyond ASCII: Ü folds to ü", charset="ISO_IR 100"),
    QueryCase("pn_utf8_finds_latin1_file", "P", "PATIENT", {"PatientName": "Müller^Jürgen"}, _s("muller"),
              "UTF-8 request, ISO_IR 100 file: matched on characters, not bytes", charset="ISO_IR 192"),
    QueryCase("pn_no_accent_folding", "P", "PATIENT", {"PatientName": "Muller"}, frozenset(),
              "u is not ü: case-insensitive does not mean accent-insensitive"),
    QueryCase("pn_cyrillic", "P", "PATIENT", {"PatientName": "Иванов"}, _s("ivanov"),
              "ISO_IR 144 request, ISO_IR 144 file", charset="ISO_IR 144"),
    QueryCase("pn_cyrillic_lower_utf8", "P", "PATIENT", {"PatientName": "иванов"}, _s("ivanov"),
              "lower-case Cyrillic in UTF-8 finds Иванов stored in ISO_IR 144", charset="ISO_IR 192"),
    QueryCase("pn_greek", "P", "PATIENT", {"PatientName": "Παπαδόπουλος^Γ"}, _s("greek"),
              "ISO_IR 126 request, given Γ*", charset="ISO_IR 126"),
    # -- Patient ID (wildcard, no '*' appended), unknown values
    QueryCase("pid_question_mark", "P", "PATIENT", {"PatientID": "PID-00?"}, DOES | _s("smith_doe"),
              "PID-001 .. PID-006"),
    QueryCase("pid_case_insensitive_star", "P", "PATIENT", {"PatientID": "pid-jp*"}, YAMADAS,
              "PID-JP1, PID-JP2, case ignored"),
    QueryCase("pid_no_star_appended", "O", "PATIENT", {"PatientID": "PID-0"}, frozenset(),
              "only Patient's Name gets the appended '*': PID-0 is single value matching"),
    QueryCase("unknown_value_returned_empty", "P", "PATIENT", {"PatientID": "PID-001", "PatientBirthTime": ""},
              _s("doe_john"), "Patient's Birth Time is in no file: returned empty"),

    # -- STUDY level
    QueryCase("study_hierarchical", "P", "STUDY", {"PatientID": "PID-001"}, _s("john_1", "john_2"),
              "both studies of Doe^John"),
    QueryCase("study_root_pn", "S", "STUDY", {"PatientName": "Doe^John"}, _s("john_1", "john_2", "johnny_1"),
              "Study Root: Patient's Name is a study level key; Doe^John* also finds Doe^Johnny"),
    QueryCase("psonly_study_pn", "O", "STUDY", {"PatientName": "Doe"},
              _s("john_1", "john_2", "jane_1", "doeman_1", "johnson_1", "johnny_1"),
              "the studies of the five 'Doe*' family names"),
    QueryCase("accession_single", "S", "STUDY", {"AccessionNumber": "ACC1"}, _s("john_1"),
              "single value: not ACC10, not acc1x (no '*' appended outside PN)"),
    QueryCase("accession_star", "S", "STUDY", {"AccessionNumber": "ACC1*"}, _s("john_1", "john_2", "smith_1"),
              "ACC1, ACC10 and acc1x (case ignored)"),
    QueryCase("accession_question", "P", "STUDY", {"AccessionNumber": "acc?0"}, _s("john_2", "doeman_1"),
              "ACC10, ACC20"),
    QueryCase("study_id_case_insensitive", "S", "STUDY", {"StudyID": "st-a"}, _s("john_1", "jane_1"),
              "single value ST-A, case ignored"),
    QueryCase("study_description_wildcard", "S", "STUDY", {"StudyDescription": "*chest*"},
              _s("john_1", "doeman_1"), "'Chest CT' and 'CHEST low dose'"),
    QueryCase("study_description_non_ascii", "S", "STUDY", {"StudyDescription": "schädel"}, _s("muller_1"),
              "UTF-8 request for a Latin-1 'Schädel', case ignored", charset="ISO_IR 192"),
    QueryCase("modalities_list", "S", "STUDY", {"ModalitiesInStudy": "CT\\MR"},
              _s("john_1", "john_2", "doeman_1", "smith_1", "johnson_1", "yamada_jis_1", "yamada_utf8_1",
                 "muller_1", "ivanov_1"),
              "every study with a CT or an MR series (john_1 has both)"),
    QueryCase("modalities_single", "S", "STUDY", {"ModalitiesInStudy": "US"}, _s("jane_1", "greek_1"),
              "the two studies with a US series"),
    QueryCase("modalities_psonly", "O", "STUDY", {"ModalitiesInStudy": "CR"}, _s("johnny_1"), "the one CR study"),
    QueryCase("modalities_with_other_keys", "P", "STUDY", {"PatientID": "PID-00*", "ModalitiesInStudy": "MR\\OT"},
              _s("john_1", "john_2", "johnson_1"), "MR or OT among the PID-00x patients (the OT probes are PID-TM/DT)"),
    QueryCase("study_uid_list", "S", "STUDY", {"StudyInstanceUID": f"{U('study', 'john_1')}\\{U('study', 'greek_1')}"},
              _s("john_1", "greek_1"), "UID list matching"),

    # -- times by meaning (stored points, query intervals)
    QueryCase("time_single_by_meaning", "S", "STUDY", {"StudyTime": "2230"},
              _s("tm_2230", "tm_223000", "tm_223000_500", "tm_223059_999999"),
              "2230 = 22:30:00 .. 22:30:59.999999: not 2231, not 22 (= 22:00:00); no other study is near 22:30"),
    QueryCase("time_range_by_meaning", "S", "STUDY", {"PatientID": "PID-TM", "StudyTime": "21-224010"},
              _s("tm_21", "tm_2100", "tm_210000", "tm_22", "tm_2230", "tm_223000", "tm_223000_500",
                 "tm_223059_999999", "tm_2231", "tm_224010_500"),
              "21:00:00 .. 22:40:10.999999: 21, 2100, 210000, 22 (22:00), everything at 22:30-22:31 and "
              "224010.500; not 2059 (20:59), not 224011"),
    QueryCase("time_open_upper", "S", "STUDY", {"PatientID": "PID-TM", "StudyTime": "-2059"}, _s("tm_2059"),
              "up to 20:59:59.999999: only 2059"),
    QueryCase("time_open_lower", "S", "STUDY", {"PatientID": "PID-TM", "StudyTime": "2231-"},
              _s("tm_2231", "tm_224010_500", "tm_224011"),
              "from 22:31:00: 2231, 224010.500, 224011; 223059.999999 is still 22:30"),
    QueryCase("time_hour_only", "P", "STUDY", {"PatientID": "PID-TM", "StudyTime": "22"},
              _s("tm_22", "tm_2230", "tm_223000", "tm_223000_500", "tm_223059_999999", "tm_2231",
                 "tm_224010_500", "tm_224011"),
              "22 = the whole hour 22:00:00 .. 22:59:59.999999"),
    # -- dates, single and range
    QueryCase("date_single", "S", "STUDY", {"StudyDate": "20060706"}, _s("dt_0706_0800", "dt_0706_null"),
              "both studies of July 6, whatever their time"),
    QueryCase("date_range", "S", "STUDY", {"StudyDate": "20060705-20060707"},
              _s("dt_0705_0900", "dt_0705_1000", "dt_0706_0800", "dt_0706_null", "dt_0707_1800", "dt_0707_1900"),
              "July 5 to 7 inclusive"),
    QueryCase("date_open_upper", "P", "STUDY", {"PatientID": "PID-DT", "StudyDate": "-20060705"},
              _s("dt_0704_2300", "dt_0704_null", "dt_0705_0900", "dt_0705_1000"), "up to July 5 inclusive"),
    QueryCase("date_open_lower", "O", "STUDY", {"PatientID": "PID-DT", "StudyDate": "20060707-"},
              _s("dt_0707_1800", "dt_0707_1900", "dt_0708_1200"), "from July 7"),
    # -- combined date-time ranges (same form of range in Study Date and Study Time)
    QueryCase("datetime_combined", "S", "STUDY", {"StudyDate": "20060705-20060707", "StudyTime": "1000-1800"},
              _s("dt_0705_1000", "dt_0706_0800", "dt_0706_null", "dt_0707_1800"),
              "July 5 10:00 .. July 7 18:00:59: July 6 08:00 in, July 5 09:00 and July 7 19:00 out; "
              "a null time matches when the date is in range"),
    QueryCase("datetime_combined_open_lower", "S", "STUDY",
              {"PatientID": "PID-DT", "StudyDate": "20060706-", "StudyTime": "1200-"},
              _s("dt_0706_null", "dt_0707_1800", "dt_0707_1900", "dt_0708_1200"),
              "from July 6 12:00: not July 6 08:00; July 6 with null time in; July 8 12:00 in"),
    QueryCase("datetime_combined_open_upper", "P", "STUDY",
              {"PatientID": "PID-DT", "StudyDate": "-20060705", "StudyTime": "-0900"},
              _s("dt_0704_2300", "dt_0704_null", "dt_0705_0900"),
              "up to July 5 09:00:59: July 4 23:00 in (separately 2300 > 0900 would exclude it), July 5 10:00 out"),
    QueryCase("datetime_different_forms_separate", "S", "STUDY",
              {"StudyDate": "20060705-20060707", "StudyTime": "-1800"},
              _s("dt_0705_0900", "dt_0705_1000", "dt_0706_0800", "dt_0707_1800"),
              "closed date range and open time range are not the same form: matched separately, "
              "so null times do not match and July 7 19:00 is out"),
    QueryCase("date_single_time_range_separate", "S", "STUDY", {"StudyDate": "20060706", "StudyTime": "0700-0900"},
              _s("dt_0706_0800"), "a single date is no range: separate matching, the null time of July 6 does not match"),
    QueryCase("time_range_alone", "S", "STUDY", {"PatientID": "PID-DT", "StudyTime": "1000-1800"},
              _s("dt_0705_1000", "dt_0707_1800", "dt_0708_1200"), "time of day only; null times do not match"),
    QueryCase("universal_empty_keys", "S", "STUDY",
              {"PatientID": "PID-DT", "StudyDate": "", "StudyTime": "", "AccessionNumber": ""}, ALL_DT,
              "empty values are universal and match null values too"),

    # -- SERIES level
    QueryCase("series_hierarchical", "P", "SERIES", {"PatientID": "PID-001", "StudyInstanceUID": U("study", "john_1")},
              _s("john_1_ct1", "john_1_ct2", "john_1_mr3"), "the three series of john_1"),
    QueryCase("series_number", "S", "SERIES", {"StudyInstanceUID": U("study", "john_1"), "SeriesNumber": "2"},
              _s("john_1_ct2"), "series number 2 of john_1"),
    QueryCase("series_relational_pn_modality", "S", "SERIES", {"PatientName": "Doe^John", "Modality": "MR"},
              _s("john_1_mr3", "john_2_mr1"), "relational: no Study Instance UID; Doe^Johnny has only CR"),
    QueryCase("series_relational_accession", "P", "SERIES", {"AccessionNumber": "ACC1*", "Modality": "CT"},
              _s("john_1_ct1", "john_1_ct2", "smith_1_ct5"), "CT series of the ACC1* studies (john_2 is MR only)"),
    QueryCase("series_modality_case", "S", "SERIES", {"Modality": "us"}, _s("jane_1_us1", "greek_1_us1"),
              "Modality case ignored"),
    QueryCase("series_uid_list", "S", "SERIES",
              {"SeriesInstanceUID": f"{U('series', 'john_1_ct2')}\\{U('series', 'jane_1_us1')}"},
              _s("john_1_ct2", "jane_1_us1"), "UID list matching, series of two patients"),
    QueryCase("sequence_any_item", "S", "SERIES", {"RequestAttributesSequence/RequestedProcedureID": "RP-101"},
              _s("john_1_ct1"), "RP-101 is the second item of john_1_ct1"),
    QueryCase("sequence_wildcard", "S", "SERIES", {"RequestAttributesSequence/RequestedProcedureID": "RP-1*"},
              _s("john_1_ct1", "jane_1_us1"), "RP-100/RP-101 and RP-150; not RP-200"),
    QueryCase("sequence_same_item", "S", "SERIES",
              {"RequestAttributesSequence/RequestedProcedureID": "RP-100",
               "RequestAttributesSequence/ScheduledProcedureStepID": "SPS-101"},
              frozenset(), "both keys must hold in one item: RP-100 goes with SPS-100, SPS-101 with RP-101"),
    QueryCase("sequence_two_keys", "P", "SERIES",
              {"RequestAttributesSequence/RequestedProcedureID": "RP-100",
               "RequestAttributesSequence/ScheduledProcedureStepID": "SPS-100"},
              _s("john_1_ct1"), "the first item of john_1_ct1"),
    QueryCase("sequence_step_id", "S", "SERIES", {"RequestAttributesSequence/ScheduledProcedureStepID": "sps-2??"},
              _s("smith_1_ct5"), "SPS-200, case ignored"),

    # -- IMAGE level
    QueryCase("image_hierarchical", "P", "IMAGE",
              {"PatientID": "PID-001", "StudyInstanceUID": U("study", "john_1"),
               "SeriesInstanceUID": U("series", "john_1_ct1")},
              _s("john_1_ct1_i1", "john_1_ct1_i2", "john_1_ct1_i3"), "the three instances of john_1_ct1"),
    QueryCase("image_number", "P", "IMAGE",
              {"PatientID": "PID-001", "StudyInstanceUID": U("study", "john_1"),
               "SeriesInstanceUID": U("series", "john_1_ct1"), "InstanceNumber": "2"},
              _s("john_1_ct1_i2"), "instance number 2"),
    QueryCase("image_study_root", "S", "IMAGE",
              {"StudyInstanceUID": U("study", "john_1"), "SeriesInstanceUID": U("series", "john_1_ct2")},
              _s("john_1_ct2_i1", "john_1_ct2_i2"), "the two instances of john_1_ct2"),
    QueryCase("image_uid_list", "S", "IMAGE",
              {"SOPInstanceUID": f"{U('instance', 'john_1_ct1_i3')}\\{U('instance', 'greek_1_us1_i1')}"},
              _s("john_1_ct1_i3", "greek_1_us1_i1"), "UID list, relational (no study or series UID)"),
    QueryCase("image_relational", "S", "IMAGE", {"AccessionNumber": "ACC1", "Modality": "MR"},
              _s("john_1_mr3_i1"), "study and series keys above the IMAGE level, no UIDs"),
    QueryCase("image_relational_pn", "P", "IMAGE", {"PatientName": "Doe^Jane"}, _s("jane_1_us1_i1"),
              "patient key only: the one instance of Doe^Jane^Q"),

    # -- failures (Table 4-49, §4.2.1.4.3.4)
    QueryCase("below_level_patient", "P", "PATIENT", {"PatientID": "", "StudyDate": "20200101"}, None,
              "Study Date is below the PATIENT level", status=BELOW_LEVEL),
    QueryCase("below_level_study_empty_key", "S", "STUDY", {"StudyInstanceUID": "", "Modality": ""}, None,
              "a series key asked for (even empty) in a STUDY query", status=BELOW_LEVEL),
    QueryCase("below_level_psonly", "O", "STUDY", {"StudyInstanceUID": "", "SeriesNumber": "1"}, None,
              "Patient/Study Only has no series keys at all", status=BELOW_LEVEL),
    QueryCase("below_level_series", "S", "SERIES", {"SeriesInstanceUID": "", "SOPInstanceUID": ""}, None,
              "an instance key in a SERIES query", status=BELOW_LEVEL),
    QueryCase("uid_wildcard_star", "S", "STUDY", {"StudyInstanceUID": "2.25.*"}, None,
              "wildcards are not allowed in UIDs", status=FAILED),
    QueryCase("uid_wildcard_question", "S", "SERIES",
              {"StudyInstanceUID": U("study", "john_1"), "SeriesInstanceUID": "1.2.3?"}, None,
              "'?' in a UID", status=FAILED),
    QueryCase("level_unknown", "S", "FOO", {"StudyInstanceUID": ""}, None, "no such level", status=FAILED),
    QueryCase("level_missing", "S", None, {"PatientID": "PID-001", "StudyInstanceUID": ""}, None,
              "no Query/Retrieve Level in the identifier", status=FAILED),
    QueryCase("level_empty", "P", "", {"PatientID": "PID-001"}, None, "empty Query/Retrieve Level", status=FAILED),
    QueryCase("level_patient_in_study_root", "S", "PATIENT", {"PatientID": ""}, None,
              "Study Root has no PATIENT level", status=FAILED),
    QueryCase("level_series_in_psonly", "O", "SERIES", {"SeriesInstanceUID": ""}, None,
              "Patient/Study Only has no SERIES level", status=FAILED),

    # -- return-only keys ('-' in Table 4-48) given a value: FF01, and never matched
    QueryCase("return_only_with_value", "S", "STUDY", {"PatientID": "PID-001", "PatientComments": "nomatch"},
              _s("john_1", "john_2"), "Patient Comments is return-only: value ignored for matching, "
              "stored 'VIP' returned, pending 0xFF01", pending=PENDING_WARNING),
    QueryCase("return_only_series_key", "P", "SERIES",
              {"StudyInstanceUID": U("study", "john_1"), "Laterality": "R"},
              _s("john_1_ct1", "john_1_ct2", "john_1_mr3"),
              "Laterality is return-only: the three series, returned empty, pending 0xFF01",
              pending=PENDING_WARNING),
]

assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


# -- an independent reading of the rules (checks the hand-written expectations only) ---------
def _return_only() -> set[str]:
    out = set()
    for line in QR_TABLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            level, path, _typ, matching = line.split("\t")
            if matching == "return":
                out.add(path)
    return out


def _wild(pattern: str, value: str) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.casefold())
    return re.fullmatch(rx, value.casefold(), re.S) is not None


def _text(query: str, value) -> bool:
    if value in ("", None):
        return False
    value = str(value)
    if "*" in query or "?" in query:
        return _wild(query, value)
    return query.casefold() == value.strip().casefold()


def _pn(query: str, stored: str) -> bool:
    if not stored:
        return False
    components = (query + "*").split("^")[:3]
    for group in stored.split("="):
        have = (group.split("^") + ["", "", ""])[:3]
        if all(q in ("", "*") or _wild(q, have[i]) for i, q in enumerate(components)):
            return True
    return False


def _tm_point(t: str) -> int:
    """Microseconds since midnight of a stored TM (missing digits are zeros)."""
    main, _, frac = t.partition(".")
    main = main.ljust(6, "0")
    return ((int(main[:2]) * 60 + int(main[2:4])) * 60 + int(main[4:6])) * 10**6 + int(frac.ljust(6, "0")[:6])


def _tm_bounds(t: str) -> tuple[int, int]:
    """The interval a query TM means."""
    main, dot, frac = t.partition(".")
    lo = _tm_point(t)
    if dot:
        hi_frac = frac.ljust(6, "9")[:6]
        return lo, lo - int(frac.ljust(6, "0")[:6]) + int(hi_frac)
    rest = {2: 3600, 4: 60, 6: 1}[len(main)] * 10**6 - 1
    return lo, lo + rest


def _range(q: str, bounds, point, value) -> bool:
    if value in ("", None):
        return False
    lo, hi = q.split("-") if "-" in q else (q, q)
    v = point(value)
    return (not lo or v >= bounds(lo)[0]) and (not hi or v <= bounds(hi)[1])


def _da_bounds(d: str):
    return d, d


def _form(q: str) -> str | None:
    if "-" not in q:
        return None
    lo, hi = q.split("-")
    return "closed" if lo and hi else "to" if hi else "from"


def _datetime(date_q: str, time_q: str, date: str, time: str | None) -> bool:
    dlo, dhi = date_q.split("-")
    tlo, thi = time_q.split("-")
    if not time:  # null time: the time condition matches, the date must
        return (not dlo or date >= dlo) and (not dhi or date <= dhi)
    v = (date, _tm_point(time))
    lo = (dlo, _tm_bounds(tlo)[0]) if dlo else None
    hi = (dhi, _tm_bounds(thi)[1]) if dhi else None
    return (lo is None or v >= lo) and (hi is None or v <= hi)


def _key_match(keyword: str, query: str, attrs: dict) -> bool:
    value = attrs.get(keyword, "")
    vr = dictionary_VR(keyword)
    if keyword == "ModalitiesInStudy":
        wanted = {m.casefold() for m in query.split("\\")}
        return bool(wanted & {m.casefold() for m in value})
    if vr == "PN":
        return _pn(query, value)
    if vr == "UI":
        return value in query.split("\\")
    if vr == "DA":
        return _range(query, _da_bounds, str, value)
    if vr == "TM":
        return _range(query, _tm_bounds, _tm_point, value)
    if vr == "IS":
        return value != "" and int(query) == int(value)
    return _text(query, value)


def reference_match(case: QueryCase, archive: Archive = ARCHIVE) -> frozenset:
    """Labels of the level that the rules (as read above) select for a successful case."""
    return_only = _return_only()
    keys = {k: v for k, v in case.keys.items() if v != "" and k not in return_only}
    combined = None
    d, t = keys.get("StudyDate"), keys.get("StudyTime")
    if d and t and _form(d) and _form(d) == _form(t):
        combined = (keys.pop("StudyDate"), keys.pop("StudyTime"))
    seq: dict[str, dict[str, str]] = {}
    for k in list(keys):
        if "/" in k:
            s, item_key = k.split("/")
            seq.setdefault(s, {})[item_key] = keys.pop(k)
    out = set()
    for label in archive.labels(case.level):
        attrs = archive.attributes(case.level, label)
        if not all(_key_match(k, v, attrs) for k, v in keys.items()):
            continue
        if combined and not _datetime(*combined, attrs["StudyDate"], attrs.get("StudyTime")):
            continue
        if any(not any(all(_text(q, item.get(ik, "")) for ik, q in sub.items()) for item in attrs.get(s, []))
               for s, sub in seq.items()):
            continue
        out.add(label)
    return frozenset(out)


# -- requests -------------------------------------------------------------------------------
def encode_value(keyword: str, value: str, charset: str | None) -> bytes:
    """The bytes of a request value in the request's Specific Character Set."""
    encodings = convert_encodings(charset.split("\\") if charset else ["ISO_IR 6"])
    item_key = keyword.split("/")[-1]
    if dictionary_VR(item_key) == "PN":
        return PersonName(value).encode(encodings)
    return encode_string(value, encodings)


if __name__ == "__main__":  # print the cases whose expectation the reference reading disputes
    bad = [c.name for c in CASES if not c.failure and reference_match(c) != c.expected]
    print(f"{len(CASES)} cases, {instance_count()} instances; disputed: {bad or 'none'}")
