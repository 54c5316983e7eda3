"""Query/Retrieve benchmark (issue 5): C-FIND latency over a big index, C-MOVE / C-GET throughput.

(a) C-FIND latency, p50/p95 per query kind, every query timed inside ONE association opened
    by the same pynetdicom SCU for every server:
      study level   Patient's Name ``Sm*`` style prefix, a month of Study Date, an Accession
                    Number, Modalities in Study;
      series level  the series of one study (Study Instance UID);
      image level   the images of one series (Study + Series Instance UID).
    Each kind is asked ``reps`` times, cycling over different values; every answer's number of
    matches is checked against the count computed from the generator.
    * "large": Lightbox alone over 10,000 studies / 1,000,000 instances (full) whose index rows
      are bulk-inserted straight into the database (no files: queries never open one);
    * "compare": the same smaller corpus (3,000 studies / 300,000 instances at full: Orthanc
      takes them in ~4 minutes over REST, 1,250/s here) in a second Lightbox home (bulk-inserted
      rows) and in Orthanc (real tiny DICOM files, 8x8 pixels, POSTed to its REST API), queried
      with the same identifiers -> Lightbox/Orthanc ratios.
(b) Retrieve throughput: one study of real 512x512 CT images (bench_ingest's) stored in the
    compare Lightbox and in Orthanc (storescu), then moved with C-MOVE to one DCMTK storescp
    (both know it as a destination), and fetched with C-GET by the SCU; images/s and ratios.

Sizes (LIGHTBOX_BENCH_SIZE or the first argument):
  smoke  large 200 studies / 2,000 instances, compare 50 / 500, a 20-image CT study (CI)
  full   large 10,000 / 1,000,000, compare 3,000 / 300,000, a 200-image CT study (~7 minutes
         once the 300,000 files are cached; writing them takes ~3 minutes, once)

    python tests/benchmarks/bench_query.py full          BENCH_OUT=q.json for the figures as JSON

A temporary work folder is removed at the end unless LIGHTBOX_BENCH_KEEP=1.

Limits: Lightbox ``node.max_matches`` = 1000 (the default 100 would clip the name and modality
queries); Orthanc's LimitFindResults / LimitFindInstances are 0 (its default: no limit) in
qr_scp.sh's configuration, which also leaves StorageAccessOnFind at its default "Always".
The generated corpora (rows and files) are deterministic (seeded) and the files are cached
under bench_ingest.cache_root()/query-*. The client: see make_ae (LIGHTBOX_BENCH_CLIENT=stock for
pynetdicom's own polling loops).
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import http.client
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_ingest  # noqa: E402
from conftest import NodeProcess, free_port, lightbox  # noqa: E402


@dataclass(frozen=True)
class Size:
    large: tuple[int, int]      # studies, instances: Lightbox only, bulk-inserted rows
    compare: tuple[int, int]    # studies, instances: Lightbox and Orthanc, the same data
    move_images: int            # CT images of the retrieved study
    reps: int                   # timed C-FINDs per query kind and server
    retrieve_reps: int          # C-MOVE / C-GET runs per server (median)


SIZES = {
    "smoke": Size((200, 2_000), (50, 500), 20, 20, 1),
    "full": Size((10_000, 1_000_000), (3_000, 300_000), 200, 30, 3),
}
SEED = 20261128
DATA_VERSION = 1           # bump when the generated corpus changes (the file cache is keyed by it)
MAX_MATCHES = 1000         # Lightbox node.max_matches for both homes
CALLING_AET = "BENCHQR"
LIGHTBOX_AET = "LIGHTBOX"
DEST_AET = "STORESCP"
KINDS = ("name", "date", "accession", "modality", "series", "image")
KIND_LABEL = {"name": "study: PatientName prefix*", "date": "study: StudyDate one month",
              "accession": "study: AccessionNumber", "modality": "study: ModalitiesInStudy",
              "series": "series: of one study", "image": "image: of one series"}

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"

# -- the corpus ---------------------------------------------------------------------------------
# Family names, Zipf-weighted (the first is the commonest). Query prefixes (NAME_PREFIXES) are
# checked against every name: Orthanc folds case and drops or folds accents, Lightbox folds
# case only, so a non-ASCII name must not reach a prefix by either folding.
FAMILY = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
          "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
          "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
          "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen",
          "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
          "Carter", "Roberts", "Smyth", "Small", "Smart", "Ng", "Kowalski", "Novak", "Jansen", "Peters",
          "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Kim", "Park", "Chen", "Wang", "Li", "Zhang",
          "Singh", "Kumar", "Patel", "Ali", "Khan", "Rossi", "Russo", "Ferrari", "Dubois", "Moreau",
          "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Bakker", "Visser", "Smits", "Meyer")
FAMILY_NON_ASCII = ("Müller", "Schäfer", "Groß", "Bjørnstad", "Åberg", "Ødegaard", "Çelik", "Aydın",
                    "Łukasiewicz", "Dvořák", "Ibáñez", "Peña", "Żak", "Öztürk", "Élise-Durand")
GIVEN = ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
         "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
         "Charles", "Karen", "Wei", "Hiroshi", "Aiko", "Priya", "Arjun", "Fatima", "Omar", "Lucas", "Emma",
         "Noah", "Olivia", "Liam", "Sophie", "Jan", "Anna", "Pieter", "Marie", "Luca", "Giulia")
GIVEN_NON_ASCII = ("José", "Zoë", "Jürgen", "Søren", "Björn", "Agnès", "François", "Małgorzata")
JAPANESE = (("Yamada^Tarou", "山田^太郎", "やまだ^たろう"), ("Tanaka^Hanako", "田中^花子", "たなか^はなこ"),
            ("Suzuki^Ichiro", "鈴木^一郎", "すずき^いちろう"), ("Sato^Yuki", "佐藤^雪", "さとう^ゆき"))
NAME_PREFIXES = ("Sm", "Jo", "Ng", "Ga", "Wi", "Ro", "Ma", "Le", "Ha", "Ba", "Ta", "Ki", "Ca", "Mi",
                 "Ne", "Pe", "Fi", "We", "Ya", "Ch", "Da", "Ho", "Lo", "Si", "Ra", "Ku", "Sa", "Wa",
                 "Th", "Al")

# modality mix of the studies: (share, primary modality, study descriptions, body parts)
STUDY_KINDS = (
    (0.24, "CT", ("CT CHEST WITH CONTRAST", "CT HEAD WITHOUT CONTRAST", "CT ABDOMEN PELVIS", "CTA PULMONARY"),
     ("CHEST", "HEAD", "ABDOMEN", "CHEST")),
    (0.20, "MR", ("MR BRAIN", "MR KNEE LEFT", "MR LUMBAR SPINE", "MR PROSTATE", "MR SHOULDER RIGHT"),
     ("BRAIN", "KNEE", "LSPINE", "PROSTATE", "SHOULDER")),
    (0.16, "CR", ("XR CHEST PA AND LATERAL", "XR HAND 3 VIEWS", "XR KNEE 2 VIEWS"), ("CHEST", "HAND", "KNEE")),
    (0.06, "DX", ("XR PELVIS AP", "XR FOOT 3 VIEWS"), ("PELVIS", "FOOT")),
    (0.12, "US", ("US ABDOMEN COMPLETE", "US THYROID", "US OB 2ND TRIMESTER"), ("ABDOMEN", "NECK", "ABDOMEN")),
    (0.08, "MG", ("MAMMOGRAPHY SCREENING BILATERAL", "MAMMOGRAPHY DIAGNOSTIC"), ("BREAST", "BREAST")),
    (0.04, "PT", ("PET CT WHOLE BODY FDG",), ("WHOLEBODY",)),
    (0.03, "NM", ("NM BONE SCAN WHOLE BODY", "NM THYROID UPTAKE"), ("WHOLEBODY", "NECK")),
    (0.04, "XA", ("XA CORONARY ANGIOGRAPHY",), ("HEART",)),
    (0.03, "RF", ("RF BARIUM SWALLOW",), ("ESOPHAGUS",)),
)
MODALITIES = ("MR", "CT", "US", "CR", "MG", "DX", "PT", "NM", "XA", "RF", "SR", "KO", "PR")
SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4", "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1", "US": "1.2.840.10008.5.1.4.1.1.6.1", "MG": "1.2.840.10008.5.1.4.1.1.1.2",
    "PT": "1.2.840.10008.5.1.4.1.1.128", "NM": "1.2.840.10008.5.1.4.1.1.20", "XA": "1.2.840.10008.5.1.4.1.1.12.1",
    "RF": "1.2.840.10008.5.1.4.1.1.12.2", "SR": "1.2.840.10008.5.1.4.1.1.88.67", "KO": "1.2.840.10008.5.1.4.1.1.88.59",
    "PR": "1.2.840.10008.5.1.4.1.1.11.1",
}
NON_IMAGE = {"SR", "KO", "PR"}
SCALABLE = {"CT", "MR", "PT"}  # series whose instance counts are scaled to reach the target total


def _fold_variants(text: str) -> set[str]:
    """How a peer may fold a name before a case-insensitive prefix match: accents removed,
    or non-ASCII characters dropped (Orthanc normalises identifiers to printable ASCII)."""
    special = {"ß": "ss", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "æ": "ae", "Æ": "AE"}
    folded = "".join(special.get(c, c) for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return {text.lower(), folded.lower(), "".join(c for c in text if c.isascii()).lower()}


def _check_prefixes() -> None:
    for fam in FAMILY_NON_ASCII + tuple(j[0].split("^")[0] for j in JAPANESE):
        for prefix in NAME_PREFIXES:
            hits = {v.startswith(prefix.lower()) for v in _fold_variants(fam)}
            assert len(hits) == 1, f"query prefix {prefix!r} would match {fam!r} on one server only"


_check_prefixes()


@dataclass
class Patient:
    pid: str
    name: str
    birth: str
    sex: str
    charset: str | None


@dataclass
class Series:
    uid: str
    number: int
    modality: str
    description: str
    body_part: str
    count: int


@dataclass
class Study:
    n: int
    uid: str
    patient: Patient
    accession: str
    study_id: str
    date: str
    time: str
    description: str
    referring: str
    series: list[Series] = field(default_factory=list)

    @property
    def instances(self) -> int:
        return sum(s.count for s in self.series)

    @property
    def modalities(self) -> set[str]:
        return {s.modality for s in self.series}


@dataclass
class Corpus:
    label: str
    n_studies: int
    n_instances: int
    patients: list[Patient]
    studies: list[Study]

    @property
    def n_series(self) -> int:
        return sum(len(s.series) for s in self.studies)

    def describe(self) -> dict:
        counts = sorted(s.instances for s in self.studies)
        return {"patients": len(self.patients), "studies": len(self.studies), "series": self.n_series,
                "instances": sum(counts), "instances_per_study": {"min": counts[0], "median": counts[len(counts) // 2],
                                                                  "mean": round(sum(counts) / len(counts), 1),
                                                                  "max": counts[-1]}}


def _uid(rng: random.Random) -> str:
    return f"2.25.{rng.getrandbits(127) | (1 << 126)}"  # a random UUID-sized integer, deterministic from the seed


def _name(rng: random.Random, weights_cum: list[float]) -> tuple[str, str | None]:
    r = rng.random()
    if r < 0.01:
        return "=".join(rng.choice(JAPANESE)), "ISO_IR 192"
    if r < 0.06:
        fam = rng.choice(FAMILY_NON_ASCII)
    else:
        fam = FAMILY[bisect.bisect(weights_cum, rng.random() * weights_cum[-1])]
    given = rng.choice(GIVEN_NON_ASCII) if rng.random() < 0.05 else rng.choice(GIVEN)
    name = f"{fam}^{given}" + (f"^{rng.choice('ABCDEFGHJKLMNPRSTW')}" if rng.random() < 0.3 else "")
    return name, (None if name.isascii() else "ISO_IR 192")


def generate(label: str, n_studies: int, n_instances: int, seed: int = SEED) -> Corpus:
    """Patients (1-4 studies each), studies over ten years with 1-10 series of realistic
    modalities, ``n_instances`` instances in all: fixed small counts for radiographs, US,
    MG, NM, XA, key objects..., the rest spread over the CT / MR / PET series (log-normal)."""
    rng = random.Random(f"{seed}/{label}/{n_studies}/{n_instances}/{DATA_VERSION}")
    weights_cum, acc = [], 0.0
    for i in range(len(FAMILY)):
        acc += 1.0 / (i + 1) ** 0.3
        weights_cum.append(acc)
    kinds_cum, acc = [], 0.0
    for k in STUDY_KINDS:
        acc += k[0]
        kinds_cum.append(acc)
    first_day = dt.date(2016, 1, 1).toordinal()
    days = dt.date(2025, 12, 31).toordinal() - first_day + 1
    patients: list[Patient] = []
    studies: list[Study] = []
    weights: list[tuple[Series, float]] = []
    while len(studies) < n_studies:
        name, charset = _name(rng, weights_cum)
        birth = dt.date.fromordinal(dt.date(1930, 1, 1).toordinal() + rng.randrange(90 * 365))
        pat = Patient(f"MRN{len(patients) + 1:07d}", name, birth.strftime("%Y%m%d"), rng.choice("MMMMFFFFFO"),
                      charset)
        patients.append(pat)
        for _ in range(min(rng.choice((1, 1, 1, 2, 2, 3, 4)), n_studies - len(studies))):
            n = len(studies) + 1
            _, modality, descriptions, parts = STUDY_KINDS[bisect.bisect(kinds_cum, rng.random() * kinds_cum[-1])]
            which = rng.randrange(len(descriptions))
            date = dt.date.fromordinal(first_day + rng.randrange(days))
            st = Study(n, _uid(rng), pat, f"A{date.year}{n:07d}", str(1000 + n),
                       date.strftime("%Y%m%d"),
                       f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
                       descriptions[which], rng.choice(("Referrer^Rita", "House^Gregory", "Quinn^Michaela",
                                                        "Grey^Meredith", "", "Dubois^Amélie")))
            part = parts[which]
            plan: list[tuple[str, str, float | int]] = []  # modality, description, weight (float) or count (int)
            if modality in ("CT", "MR"):
                for k in range(rng.randint(2, 5) if modality == "CT" else rng.randint(4, 9)):
                    plan.append((modality, f"{part} series {k + 1}", rng.lognormvariate(0, 0.8)))
                if modality == "CT" and rng.random() < 0.4:
                    plan.append(("SR", "Dose Report", 1))
            elif modality == "PT":
                plan += [("CT", "CT AC WB", rng.lognormvariate(0, 0.5)),
                         ("PT", "PET AC WB", rng.lognormvariate(0.4, 0.5)),
                         ("PT", "PET NAC WB", rng.lognormvariate(0.4, 0.5))]
            elif modality in ("CR", "DX"):
                plan += [(modality, f"{part} view {k + 1}", rng.randint(1, 2)) for k in range(rng.randint(1, 3))]
            elif modality == "US":
                plan += [("US", f"{part} {k + 1}", rng.randint(5, 40)) for k in range(rng.randint(1, 2))]
            elif modality == "MG":
                plan += [("MG", view, 1) for view in ("R CC", "L CC", "R MLO", "L MLO")]
            elif modality == "NM":
                plan += [("NM", f"{part} {k + 1}", rng.randint(1, 30)) for k in range(rng.randint(1, 3))]
            else:  # XA, RF
                plan += [(modality, f"Run {k + 1}", rng.randint(1, 4)) for k in range(rng.randint(2, 6))]
            if rng.random() < 0.08:
                plan.append(("KO", "Key Images", 1))
            if rng.random() < 0.05:
                plan.append(("PR", "Presentation State", 1))
            for number, (mod, desc, w) in enumerate(plan, start=1):
                se = Series(f"{st.uid}.{number}", number, mod, desc, part, w if isinstance(w, int) else 0)
                st.series.append(se)
                if isinstance(w, float):
                    weights.append((se, w))
            studies.append(st)
    # scale the CT / MR / PET series so that the corpus has n_instances (largest remainder, >= 1 each)
    fixed_series = [s for st in studies for s in st.series if s.count]
    fixed = sum(s.count for s in fixed_series)
    if fixed > n_instances // 2:  # few instances per study (smoke sizes): shrink the fixed counts too
        factor = n_instances / 2 / fixed
        for s in fixed_series:
            s.count = max(1, round(s.count * factor))
        fixed = sum(s.count for s in fixed_series)
    left = n_instances - fixed
    if left < len(weights):
        raise ValueError(f"{n_instances} instances are too few for {n_studies} studies of this mix "
                         f"(fixed series take {fixed}, {len(weights)} scalable series need one each)")
    total_w = sum(w for _, w in weights)
    shares = [(se, 1 + (left - len(weights)) * w / total_w) for se, w in weights]
    for se, share in shares:
        se.count = int(share)
    rest = left - sum(se.count for se, _ in shares)
    for se, share in sorted(shares, key=lambda x: x[1] - int(x[1]), reverse=True)[:rest]:
        se.count += 1
    corpus = Corpus(label, n_studies, n_instances, patients, studies)
    assert sum(s.instances for s in studies) == n_instances
    return corpus


# -- attribute values: one source for the index rows and the files -------------------------------
def patient_values(p: Patient) -> dict:
    return {"PatientName": p.name, "PatientID": p.pid, "PatientBirthDate": p.birth, "PatientSex": p.sex}


def study_values(st: Study) -> dict:
    return {"StudyInstanceUID": st.uid, "AccessionNumber": st.accession, "StudyID": st.study_id,
            "StudyDate": st.date, "StudyTime": st.time, "StudyDescription": st.description,
            "ReferringPhysicianName": st.referring or None}


def series_values(st: Study, se: Series) -> dict:
    return {"SeriesInstanceUID": se.uid, "Modality": se.modality, "SeriesNumber": str(se.number),
            "SeriesDescription": se.description, "BodyPartExamined": se.body_part, "SeriesDate": st.date,
            "SeriesTime": st.time, "Manufacturer": "Lightbox Benchmark", "InstitutionName": "Loopback General"}


def instance_values(st: Study, se: Series, i: int) -> dict:
    """Every instance row has the same keys (an executemany needs them); None: absent."""
    image = se.modality not in NON_IMAGE
    return {"SOPInstanceUID": f"{se.uid}.{i}", "SOPClassUID": SOP_CLASS[se.modality], "InstanceNumber": str(i),
            "Rows": "8" if image else None, "Columns": "8" if image else None,
            "BitsAllocated": "16" if image else None, "ContentDate": st.date if image else None,
            "ContentTime": st.time if image else None}


def charset_of(st: Study) -> str | None:
    """ISO_IR 192 when a text value of the study is not ASCII (names, referring physician)."""
    texts = [st.patient.name, st.referring, st.description]
    return None if all(t.isascii() for t in texts) else "ISO_IR 192"


def file_size(se: Series) -> int:
    return 700 if se.modality in NON_IMAGE else 830  # about what the tiny files take; never read


# -- Lightbox: index rows bulk-inserted into a home -----------------------------------------------
def bulk_load(home: Path, corpus: Corpus, log=print, batch: int = 50_000) -> dict:
    """The corpus as index rows of a fresh home: the schema made by Archive (tables and
    indexes as the application creates them), then SQLAlchemy Core executemany inserts in one
    transaction. Paths name files that do not exist: queries never open them."""
    from sqlalchemy import func, select

    from app.store.archive import Archive
    from app.store.db import open_engine
    from app.store.files import relative_path
    from app.store.schema import instance, patient, series, study

    Archive(home).close()
    engine = open_engine(home)
    t0 = time.perf_counter()
    n_inst = 0
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MB of page cache, this connection only
            if conn.execute(select(func.count()).select_from(patient)).scalar():
                raise RuntimeError(f"{home} already holds an index")
            pat_id = {p.pid: i for i, p in enumerate(corpus.patients, 1)}
            conn.execute(patient.insert(), [{"id": i, **patient_values(p), "IssuerOfPatientID": ""}
                                            for p, i in ((p, pat_id[p.pid]) for p in corpus.patients)])
            conn.execute(study.insert(), [{"id": st.n, "patient_id": pat_id[st.patient.pid], **study_values(st)}
                                          for st in corpus.studies])
            rows, se_id = [], 0
            for st in corpus.studies:
                for se in st.series:
                    se_id += 1
                    rows.append({"id": se_id, "study_id": st.n, **series_values(st, se)})
            conn.execute(series.insert(), rows)
            rows, se_id = [], 0
            for st in corpus.studies:
                cs = charset_of(st)
                for se in st.series:
                    se_id += 1
                    size = file_size(se)
                    for i in range(1, se.count + 1):
                        n_inst += 1
                        v = instance_values(st, se, i)
                        v.update(id=n_inst, series_id=se_id, TransferSyntaxUID=EXPLICIT_LE, SpecificCharacterSet=cs,
                                 path=relative_path(st.uid, se.uid, v["SOPInstanceUID"]), size=size)
                        rows.append(v)
                        if len(rows) >= batch:
                            conn.execute(instance.insert(), rows)
                            rows = []
            if rows:
                conn.execute(instance.insert(), rows)
        seconds = time.perf_counter() - t0
    finally:
        engine.dispose()
    db = home / "lightbox.db"
    out = {"seconds": round(seconds, 2), "instances_per_s": round(n_inst / seconds),
           "db_mb": round(db.stat().st_size / 1e6, 1) if db.exists() else None}
    log(f"  Lightbox {corpus.label}: {len(corpus.patients)} patients, {len(corpus.studies)} studies, "
        f"{corpus.n_series} series, {n_inst} instances bulk-inserted in {seconds:.1f} s "
        f"({out['instances_per_s']} rows/s), database {out['db_mb']} MB")
    return out


# -- the same corpus as tiny DICOM files (for Orthanc) ---------------------------------------------
def corpus_folder(corpus: Corpus) -> Path:
    return bench_ingest.cache_root() / f"query-v{DATA_VERSION}-{corpus.label}-{corpus.n_studies}-{corpus.n_instances}"


def _study_files(args) -> int:
    """Write the files of the studies ``args`` = (folder, [study, ...]); returns files written."""
    import numpy as np
    from pydicom.datadict import dictionary_VR
    from pydicom.dataset import Dataset, FileMetaDataset

    folder, studies = args
    pixels = (np.arange(64, dtype="<u2") * 50).tobytes()
    written = 0
    for st in studies:
        target = folder / f"study-{st.n:06d}"
        if (target / "done").exists():
            continue
        target.mkdir(parents=True, exist_ok=True)
        cs = charset_of(st)
        for se in st.series:
            base = Dataset()
            if cs:
                base.SpecificCharacterSet = cs
            for kw, value in {**patient_values(st.patient), **study_values(st), **series_values(st, se)}.items():
                if value is not None:
                    setattr(base, kw, value)
            if se.modality not in NON_IMAGE:
                base.SamplesPerPixel = 1
                base.PhotometricInterpretation = "MONOCHROME2"
                base.BitsStored, base.HighBit, base.PixelRepresentation = 12, 11, 0
            for i in range(1, se.count + 1):
                ds = Dataset()
                ds.update(base)
                for kw, value in instance_values(st, se, i).items():
                    if value is not None:
                        setattr(ds, kw, int(value) if dictionary_VR(kw) == "US" else value)
                if se.modality not in NON_IMAGE:
                    ds.PixelData = pixels
                    ds["PixelData"].VR = "OW"
                meta = FileMetaDataset()
                meta.MediaStorageSOPClassUID = ds.SOPClassUID
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                meta.TransferSyntaxUID = EXPLICIT_LE
                meta.ImplementationClassUID = "2.25.190120110331419223355640386394950393453"
                ds.file_meta = meta
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds.save_as(target / f"{se.number:03d}-{i:05d}.dcm", enforce_file_format=True)
                written += 1
        (target / "done").touch()
    return written


def ensure_files(corpus: Corpus, log=print) -> tuple[list[Path], float]:
    """The corpus as Part-10 files (8x8 pixels), generated once (two processes) and cached."""
    from concurrent.futures import ProcessPoolExecutor
    folder = corpus_folder(corpus)
    t0 = time.perf_counter()
    todo = [st for st in corpus.studies if not (folder / f"study-{st.n:06d}" / "done").exists()]
    if todo:
        log(f"  writing {sum(s.instances for s in todo)} files of {len(todo)} studies into {folder} ...")
        chunks = [(folder, todo[i::16]) for i in range(16)]
        with ProcessPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
            written = sum(pool.map(_study_files, chunks))
        log(f"  {written} files written in {time.perf_counter() - t0:.1f} s")
    files = sorted(folder.glob("study-*/*.dcm"))
    if len(files) != corpus.n_instances:
        raise RuntimeError(f"{folder} holds {len(files)} files, expected {corpus.n_instances}: remove it")
    return files, time.perf_counter() - t0


def check_rows_match_ingest(corpus: Corpus, files: list[Path], work: Path) -> dict:
    """Import a sample of the files with Lightbox's own ingest into a scratch home and compare
    its index rows with the bulk-inserted values: the two paths must describe the same data."""
    from app.store.archive import Archive
    from app.store.query import search

    by_study = {st.n: st for st in corpus.studies}
    sample, seen = [], set()
    for f in files:  # one file per modality, plus every study with a non-ASCII value, up to 40
        st = by_study[int(f.parent.name.split("-")[1])]
        se = st.series[int(f.name.split("-")[0]) - 1]
        key = se.modality if charset_of(st) is None else ("cs", st.n)
        if key not in seen and len(sample) < 40:
            seen.add(key)
            sample.append((f, st, se, int(f.stem.split("-")[1])))
    home = work / "ingest-check-home"
    archive = Archive(home)
    mismatches = []
    try:
        for f, st, se, i in sample:
            result = archive.ingest.store_file(f)
            if not result.ok:
                mismatches.append(f"{f.name}: not stored ({result.comment})")
                continue
            want = {**patient_values(st.patient), **study_values(st), **series_values(st, se),
                    **instance_values(st, se, i)}
            rows = search(archive.engine, "instance", {"SOPInstanceUID": want["SOPInstanceUID"]})
            row = rows[0] if rows else {}
            for kw, value in want.items():
                if (row.get(kw) or None) != value:
                    mismatches.append(f"{f.name} {kw}: ingest {row.get(kw)!r}, bulk {value!r}")
    finally:
        archive.close()
        shutil.rmtree(home, ignore_errors=True)
    return {"files": len(sample), "mismatches": mismatches}


# -- Orthanc ---------------------------------------------------------------------------------------
class Orthanc:
    """Orthanc 1.10 through shared/peers/peers/qr_scp.sh with QR_ALLOW_ANY=1 (any calling AE may
    C-FIND / C-MOVE / C-GET), TCP_NODELAY=1; fresh storage on every start."""

    aet = "ORTHANC"
    script = bench_ingest.PEERS / "peers" / "qr_scp.sh"

    def __init__(self, folder: Path):
        self.dir = folder
        self.port = free_port()
        self.http = free_port()
        while self.http == self.port:
            self.http = free_port()
        self.started = False

    def start(self) -> "Orthanc":
        env = {**os.environ, "TCP_NODELAY": "1", "QR_ALLOW_ANY": "1", "QR_AET": self.aet}
        proc = subprocess.run(["bash", str(self.script), str(self.port), str(self.dir), str(self.http)],
                              capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"qr_scp.sh failed ({proc.returncode}):\n{proc.stderr}")
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            subprocess.run(["bash", str(self.script), "stop", str(self.dir)], capture_output=True, text=True,
                           timeout=60)
            self.started = False

    def rest(self, method: str, path: str, body: dict | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as rsp:
            data = rsp.read()
        return json.loads(data) if data.strip() else None

    def count(self) -> int:
        return int(self.rest("GET", "/statistics")["CountInstances"])

    def upload(self, files: list[Path], threads: int = 4) -> float:
        """POST /instances, ``threads`` keep-alive connections in parallel; seconds taken."""
        errors: list[str] = []
        lock = threading.Lock()
        parts = [files[i::threads] for i in range(threads)]

        def send(part: list[Path]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.http, timeout=120)
            try:
                for f in part:
                    conn.request("POST", "/instances", body=f.read_bytes(),
                                 headers={"Content-Type": "application/dicom"})
                    rsp = conn.getresponse()
                    body = rsp.read()
                    if rsp.status != 200:
                        with lock:
                            errors.append(f"{f}: HTTP {rsp.status} {body[:200]!r}")
            finally:
                conn.close()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(send, parts))
        seconds = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"{len(errors)} upload(s) to Orthanc failed, first: {errors[0]}")
        return seconds

    def add_destination(self, name: str, aet: str, port: int) -> None:
        self.rest("PUT", f"/modalities/{name}", {"AET": aet, "Host": "127.0.0.1", "Port": port})


# -- the queries -------------------------------------------------------------------------------
RETURN_KEYS = {
    "STUDY": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
              "StudyTime", "AccessionNumber", "StudyID", "StudyDescription", "ReferringPhysicianName",
              "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
               "BodyPartExamined", "SeriesDate", "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "InstanceNumber"),
}
UNIQUE_KEY = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}


@dataclass
class Query:
    kind: str
    level: str
    keys: dict            # matching keys (keyword -> value); the return keys are added empty
    expected: int         # matches in the corpus (before any server limit)

    def identifier(self):
        from pydicom.dataset import Dataset
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.QueryRetrieveLevel = self.level
        for kw in RETURN_KEYS[self.level]:
            setattr(ds, kw, "" if kw not in ("NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                                             "NumberOfSeriesRelatedInstances") else None)
        for kw, value in self.keys.items():
            setattr(ds, kw, value)
        return ds

    def describe(self) -> str:
        return f"{self.level} " + " ".join(f"{k}={v if len(v) < 24 else v[:10] + '...' + v[-8:]}"
                                           for k, v in self.keys.items())


def _name_matches(name: str, prefix: str) -> bool:
    """The family name of any component group starts with ``prefix`` (case-insensitive)."""
    return any(g.split("^")[0].lower().startswith(prefix.lower()) for g in name.split("="))


def queries(corpus: Corpus, count: int) -> dict[str, list[Query]]:
    """``count`` queries of every kind, different values each (spread deterministically over
    the corpus), with the number of matches computed from the corpus."""
    rng = random.Random(f"{SEED}/queries/{corpus.label}/{corpus.n_studies}")
    studies = corpus.studies
    out: dict[str, list[Query]] = {k: [] for k in KINDS}
    for i in range(count):
        prefix = NAME_PREFIXES[i % len(NAME_PREFIXES)]
        out["name"].append(Query("name", "STUDY", {"PatientName": f"{prefix}*"},
                                 sum(1 for st in studies if _name_matches(st.patient.name, prefix))))
        year, month = 2016 + (i * 7) % 10, 1 + (i * 5) % 12
        lo, hi = f"{year}{month:02d}01", f"{year}{month:02d}{calendar.monthrange(year, month)[1]:02d}"
        out["date"].append(Query("date", "STUDY", {"StudyDate": f"{lo}-{hi}"},
                                 sum(1 for st in studies if lo <= st.date <= hi)))
        st = studies[rng.randrange(len(studies))]
        out["accession"].append(Query("accession", "STUDY", {"AccessionNumber": st.accession},
                                      sum(1 for s in studies if s.accession == st.accession)))
        modality = MODALITIES[i % len(MODALITIES)]
        out["modality"].append(Query("modality", "STUDY", {"ModalitiesInStudy": modality},
                                     sum(1 for s in studies if modality in s.modalities)))
        multi = [s for s in studies if len(s.series) > 1] or studies
        st = multi[rng.randrange(len(multi))]
        out["series"].append(Query("series", "SERIES", {"StudyInstanceUID": st.uid}, len(st.series)))
        # a series of a CT / MR / PET study (the big ones), or any
        big = [s for s in studies if s.instances >= 20] or studies
        st = big[rng.randrange(len(big))]
        se = max(st.series, key=lambda s: (s.count, -s.number)) if rng.random() < 0.5 else \
            st.series[rng.randrange(len(st.series))]
        out["image"].append(Query("image", "IMAGE", {"StudyInstanceUID": st.uid, "SeriesInstanceUID": se.uid},
                                  se.count))
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))]


# -- the SCU ---------------------------------------------------------------------------------------
def _client_nodelay() -> None:
    """TCP_NODELAY on the sockets of this process's requested associations (pynetdicom does not
    set it): without it a C-FIND request (command and identifier in two PDUs) meets Nagle's
    algorithm and the server's delayed ACK, and every query takes 40 ms more."""
    import socket

    from pynetdicom.transport import AssociationSocket
    if getattr(AssociationSocket, "_bench_nodelay", False):
        return
    original = AssociationSocket._create_socket

    def create(self, address):
        sock = original(self, address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    AssociationSocket._create_socket = create
    AssociationSocket._bench_nodelay = True


CLIENT = os.environ.get("LIGHTBOX_BENCH_CLIENT", "event")  # event | stock (pynetdicom's polling loops)


class _PromptCheckpoint(threading.Event):
    """An association's reactor checkpoint that wakes the event-driven reactor when cleared.
    pynetdicom's send_c_find / send_c_move / send_c_get clear it and spin until the reactor
    says it is paused; app.net.reactors' loop only looks every 50 ms unless woken, so without
    this every request of the client would first wait up to 50 ms (the same wait slows the
    node's own C-MOVE sub-operations: see the README)."""

    def __init__(self, assoc):
        super().__init__()
        self._assoc = assoc
        self.set()

    def clear(self) -> None:
        super().clear()
        wake = getattr(self._assoc, "_lightbox_wake", None)
        if wake is not None:
            wake.set()


REQUEUED = [0]  # responses the client's reactor took and gave back (see _keep_responses)


def _keep_responses(assoc) -> None:
    """Give a response the association's reactor took back to the request waiting for it.
    pynetdicom pauses the reactor around send_c_find & co. through a flag set just before
    the pause; a reactor thread that loses the GIL between that flag and taking a message
    off the DIMSE queue can still take a response (logged as "Received unexpected C-FIND
    service message"), and the request then waits for it until the DIMSE timeout. Requests
    (the C-STOREs of a C-GET) are served as before."""
    serve = assoc._serve_request

    def serve_request(msg, context_id):
        if getattr(msg, "MessageIDBeingRespondedTo", None) is not None:
            REQUEUED[0] += 1
            queue = assoc.dimse.msg_queue
            with queue.mutex:
                queue.queue.appendleft((context_id, msg))
                queue.not_empty.notify()
            return
        serve(msg, context_id)
    assoc._serve_request = serve_request


def associate(ae, port: int, aet: str, **kwargs):
    assoc = ae.associate("127.0.0.1", port, ae_title=aet, **kwargs)
    if not assoc.is_established:
        raise RuntimeError(f"association to {aet}@127.0.0.1:{port} not established")
    _keep_responses(assoc)
    if getattr(ae, "lightbox_event_driven", False):
        assoc._reactor_checkpoint = _PromptCheckpoint(assoc)
    return assoc


def make_ae(contexts: tuple[str, ...] = (STUDY_ROOT_FIND,)):
    """A pynetdicom AE for the SCU side, the same for every server: TCP_NODELAY, Lightbox's
    event-driven reactor loops (app.net.reactors; LIGHTBOX_BENCH_CLIENT=stock for pynetdicom's
    1 ms polling) and pynetdicom's per-message log handlers off, so that the client adds
    little to what is measured."""
    from pynetdicom import AE, _config

    _client_nodelay()
    _config.LOG_HANDLER_LEVEL = "none"
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False  # formatted even when not logged
    ae = AE(ae_title=CALLING_AET)
    if CLIENT == "event":
        from app.net import reactors
        reactors.install()
        ae.lightbox_event_driven = True
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 300
    ae.maximum_pdu_size = 16384
    for uid in contexts:
        ae.add_requested_context(uid, [EXPLICIT_LE, IMPLICIT_LE])
    return ae


def find(assoc, query: Query, unique: set | None = None) -> tuple[float, int, int]:
    """One C-FIND: (seconds until the final response, pending responses, final status)."""
    identifier = query.identifier()
    key = UNIQUE_KEY[query.level]
    n, status = 0, -1
    t0 = time.perf_counter()
    for st, ds in assoc.send_c_find(identifier, STUDY_ROOT_FIND):
        if st is None or "Status" not in st:
            break
        status = int(st.Status)
        if status in (0xFF00, 0xFF01):
            n += 1
            if unique is not None and ds is not None:
                unique.add(str(ds.get(key, "")))
    return time.perf_counter() - t0, n, status


def time_queries(server: str, port: int, aet: str, plan: dict[str, list[Query]], reps: int, limit: int,
                 log=print, answers: dict | None = None) -> dict:
    """All the queries of ``plan`` over ONE association: a first (untimed for the statistics)
    query of each kind, then ``reps`` rounds of every kind, interleaved. ``answers`` collects
    the unique keys returned per query, to compare servers."""
    ae = make_ae()
    assoc = associate(ae, port, aet)
    res: dict[str, dict] = {k: {"ms": [], "matches": [], "expected": [], "bad": []} for k in KINDS}
    try:
        for kind in KINDS:
            s, _, _ = find(assoc, plan[kind][0])
            res[kind]["first_ms"] = s * 1000
        for rep in range(reps):
            for kind in KINDS:
                q = plan[kind][rep % len(plan[kind])]
                unique: set = set()
                s, n, status = find(assoc, q, unique)
                want = min(q.expected, limit) if limit else q.expected
                r = res[kind]
                r["ms"].append(s * 1000)
                r["matches"].append(n)
                r["expected"].append(want)
                if n != want or status != 0 or len(unique) != n:
                    r["bad"].append(f"{q.describe()}: {n} matches (expected {want}), {len(unique)} distinct, "
                                    f"final status 0x{status & 0xFFFF:04X}")
                if answers is not None:
                    answers[(kind, rep % len(plan[kind]))] = unique
    finally:
        assoc.release()
        ae.shutdown()
    out = {}
    for kind, r in res.items():
        ms = r["ms"]
        out[kind] = {"p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
                     "mean_ms": round(statistics.fmean(ms), 2), "max_ms": round(max(ms), 2),
                     "first_ms": round(r["first_ms"], 2), "queries": len(ms),
                     "matches_min": min(r["matches"]), "matches_median": statistics.median(r["matches"]),
                     "matches_max": max(r["matches"]), "matches_total": sum(r["matches"]),
                     "expected_total": sum(r["expected"]),
                     "clipped": sum(1 for q in plan[kind][:reps] if limit and q.expected > limit),
                     "ms_per_match": round(sum(ms) / max(1, sum(r["matches"])), 3),
                     "ok": not r["bad"], "errors": r["bad"][:5]}
        o = out[kind]
        log(f"    {server:18s} {KIND_LABEL[kind]:28s} p50 {o['p50_ms']:8.2f} ms  p95 {o['p95_ms']:8.2f} ms  "
            f"matches {o['matches_min']}..{o['matches_max']} (median {o['matches_median']})"
            f"{'' if o['ok'] else '  WRONG COUNTS: ' + '; '.join(o['errors'][:2])}")
    return out


# -- Lightbox nodes ----------------------------------------------------------------------------------
def settings_template(work: Path) -> Path:
    """settings.toml of the benchmark homes, written by the CLI: any calling AE may query, and
    node.max_matches raised to MAX_MATCHES."""
    template = work / "settings-template"
    template.mkdir(parents=True, exist_ok=True)
    lightbox(template, "config", "set", "policy.check_calling_ae", "false")
    lightbox(template, "config", "set", "node.max_matches", str(MAX_MATCHES))
    return template / "settings.toml"


def new_home(work: Path, name: str, settings: Path) -> Path:
    home = work / name
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    shutil.copy2(settings, home / "settings.toml")
    return home


def start_node(home: Path) -> NodeProcess:
    return NodeProcess(home, aet=LIGHTBOX_AET).start()


def stop_node(node: NodeProcess, log=print) -> None:
    rc = node.stop()
    if rc != 0:
        log(f"  warning: Lightbox node exited {rc}: {node.output()[-1500:]}")


# -- retrieve -------------------------------------------------------------------------------------
def storescu(files: list[Path], port: int, aet: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([bench_ingest.STORESCU, "-aet", CALLING_AET, "-aec", aet, "127.0.0.1", str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "TCP_NODELAY": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"storescu to {aet} exited {proc.returncode}: {proc.stderr[-1500:]}")
    return time.perf_counter() - t0


def study_query(study_uid: str, expected: int) -> Query:
    return Query("image", "IMAGE", {"StudyInstanceUID": study_uid}, expected)


def wait_indexed(port: int, aet: str, study_uid: str, count: int, timeout: float = 60) -> int:
    """Until a C-FIND at image level finds ``count`` instances of the study (Lightbox indexes
    after acknowledging)."""
    deadline = time.monotonic() + timeout
    ae = make_ae()
    try:
        while True:
            assoc = associate(ae, port, aet)
            _, n, _ = find(assoc, study_query(study_uid, count))
            assoc.release()
            if n >= count or time.monotonic() > deadline:
                return n
            time.sleep(0.2)
    finally:
        ae.shutdown()


def _timed_retrieve(ae, assoc, send) -> dict:
    """Seconds from the request to the final response, its status and counts."""
    final = None
    try:
        t0 = time.perf_counter()
        for st, _ in send():
            if st is not None and "Status" in st:
                final = st
        seconds = time.perf_counter() - t0
    finally:
        assoc.release()
        ae.shutdown()

    def count(name: str) -> int:
        return int(final.get(name, 0) or 0) if final is not None else 0
    return {"seconds": seconds, "status": int(final.Status) if final is not None else None,
            "completed": count("NumberOfCompletedSuboperations"), "failed": count("NumberOfFailedSuboperations")}


def _study_identifier(study_uid: str):
    from pydicom.dataset import Dataset
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def c_move(port: int, aet: str, study_uid: str) -> dict:
    """C-MOVE of the study to DEST_AET: seconds from the request to the final response."""
    ae = make_ae((STUDY_ROOT_MOVE,))
    assoc = associate(ae, port, aet)
    return _timed_retrieve(ae, assoc, lambda: assoc.send_c_move(_study_identifier(study_uid), DEST_AET,
                                                                STUDY_ROOT_MOVE))


def c_get(port: int, aet: str, study_uid: str, sop_class: str) -> dict:
    """C-GET of the study over the SCU's association (SCP role for ``sop_class``, Explicit VR
    Little Endian only, as stored, so neither server transcodes); instances counted, not kept."""
    from pynetdicom import build_role, evt
    ae = make_ae((STUDY_ROOT_GET,))
    ae.add_requested_context(sop_class, [EXPLICIT_LE])
    received = {"n": 0, "bytes": 0}

    def on_store(event):
        received["n"] += 1
        received["bytes"] += len(event.request.DataSet.getvalue())
        return 0x0000

    assoc = associate(ae, port, aet, ext_neg=[build_role(sop_class, scp_role=True)],
                      evt_handlers=[(evt.EVT_C_STORE, on_store)])
    out = _timed_retrieve(ae, assoc, lambda: assoc.send_c_get(_study_identifier(study_uid), STUDY_ROOT_GET))
    return out | {"received": received["n"], "mb": received["bytes"] / 1e6}


def clear(folder: Path) -> None:
    for f in folder.iterdir():
        if f.is_file():
            f.unlink()


# -- inside the node: where the time of a C-FIND goes --------------------------------------------
def server_side(home: Path, plan: dict[str, list[Query]], reps: int = 5, log=print) -> dict:
    """In this process, on the home of the node (stopped by then): the C-FIND handler itself
    (app.net.query_retrieve.handle_find with a stand-in event: SQL, matching, response
    datasets, no network), the main SQL statement alone (all rows fetched), and SQLite's
    EXPLAIN QUERY PLAN of the statements the handler ran."""
    from sqlalchemy import event

    from app.net import query_retrieve
    from app.store.archive import Archive

    archive = Archive(home)
    if archive.settings["node.max_matches"] != MAX_MATCHES:
        raise RuntimeError(f"{home}: node.max_matches is {archive.settings['node.max_matches']}")
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    out: dict[str, dict] = {}
    try:
        for kind in KINDS:
            times, statements = [], []
            for i in range(reps + 1):
                q = plan[kind][i % len(plan[kind])]
                ev = SimpleNamespace(assoc=SimpleNamespace(requestor=SimpleNamespace(ae_title=CALLING_AET),
                                                           acceptor=SimpleNamespace(ae_title=LIGHTBOX_AET)),
                                     request=SimpleNamespace(AffectedSOPClassUID=STUDY_ROOT_FIND),
                                     identifier=q.identifier(), is_cancelled=False)
                captured.clear()
                event.listen(archive.engine, "before_cursor_execute", capture)
                t0 = time.perf_counter()
                n = sum(1 for _, ds in query_retrieve.handle_find(ev, archive) if ds is not None)
                elapsed = time.perf_counter() - t0
                event.remove(archive.engine, "before_cursor_execute", capture)
                if i:  # the first run warms up
                    times.append(elapsed * 1000)
                if i == 1:
                    statements = list(captured)
                    matches = n
            main_sql, params = statements[0] if statements else ("", ())
            sql_ms, plans = None, []
            with archive.engine.connect() as conn:
                if main_sql:
                    runs = []
                    for _ in range(3):
                        t0 = time.perf_counter()
                        rows = conn.exec_driver_sql(main_sql, params).fetchall()
                        runs.append((time.perf_counter() - t0) * 1000)
                    sql_ms = round(statistics.median(runs), 2)
                    sql_rows = len(rows)
                for stmt, prm in statements[:2]:
                    detail = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, prm)]
                    plans.append(detail)
            out[kind] = {"handler_ms_median": round(statistics.median(times), 2), "matches": matches,
                         "statements": len(statements), "main_sql_ms_all_rows": sql_ms,
                         "main_sql_rows": sql_rows if main_sql else None,
                         "main_sql": " ".join(main_sql.split()), "plans": plans}
            log(f"    handler {KIND_LABEL[kind]:28s} {out[kind]['handler_ms_median']:8.2f} ms for {matches} matches "
                f"({len(statements)} statements; main SQL alone {sql_ms} ms for {out[kind]['main_sql_rows']} rows)")
    finally:
        archive.close()
    return out


# -- the run -------------------------------------------------------------------------------------
def _summary(runs: list[dict], images: int, mb: float) -> dict:
    secs = [r["seconds"] for r in runs]
    med = statistics.median(secs)
    return {"runs": runs, "median_s": round(med, 3), "images_per_s": round(images / med, 1),
            "mb_per_s": round(mb / med, 1)}


def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    import benchutil
    own_work = work is None
    size, sz, work = benchutil.prepare(size, SIZES, work, "lightbox-bench-query-")
    try:
        return _run(size, sz, work, log)
    finally:
        if own_work and not os.environ.get("LIGHTBOX_BENCH_KEEP"):  # the full size leaves gigabytes
            shutil.rmtree(work, ignore_errors=True)


def _run(size: str, sz: Size, work: Path, log) -> dict:
    import pydicom
    started = time.time()
    load_before = os.getloadavg()[0]
    large = generate("large", *sz.large)
    compare = generate("compare", *sz.compare)
    log(f"query benchmark '{size}': large {sz.large[0]} studies / {sz.large[1]} instances (Lightbox), compare "
        f"{sz.compare[0]} / {sz.compare[1]} (Lightbox and Orthanc), retrieve {sz.move_images} CT; work dir {work}")
    files, files_s = ensure_files(compare, log)
    ct = bench_ingest.ensure_images("CT", sz.move_images, log=log)
    ct_uid = str(pydicom.dcmread(ct[0], stop_before_pixels=True).StudyInstanceUID)
    ct_mb = sum(f.stat().st_size for f in ct) / 1e6
    settings = settings_template(work)
    report: dict = {
        "size": size, "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "loadavg_1m_before": round(load_before, 2)},
        "limits": {"lightbox_max_matches": MAX_MATCHES,
                   "orthanc": "LimitFindResults 0, LimitFindInstances 0 (no limit: Orthanc's defaults, not set by "
                              "qr_scp.sh); StorageAccessOnFind Always (default)"},
        "client": f"pynetdicom ({CLIENT} loops"
                  f"{', app.net.reactors with a prompt pause' if CLIENT == 'event' else ''}), "
                  "TCP_NODELAY, log handlers off; one association per server and query set, Study Root FIND; "
                  "each query timed from send_c_find to its "
                  "final response with every pending response decoded",
        "corpus": {"large": large.describe(), "compare": compare.describe()},
    }
    log("loading ...")
    large_home = new_home(work, "lightbox-large", settings)
    report["load"] = {"lightbox_large": bulk_load(large_home, large, log)}
    cmp_home = new_home(work, "lightbox-compare", settings)
    report["load"]["lightbox_compare"] = bulk_load(cmp_home, compare, log)
    report["ingest_check"] = check_rows_match_ingest(compare, files, work)
    log(f"  Lightbox's own ingest of {report['ingest_check']['files']} of the files gives the bulk-inserted values: "
        f"{'yes' if not report['ingest_check']['mismatches'] else report['ingest_check']['mismatches'][:3]}")

    storescp = bench_ingest.StorescpReceiver(16384)
    orthanc = Orthanc(work / "orthanc")
    node = None
    try:
        storescp.start(work / "storescp", parallel=False)
        lightbox(cmp_home, "nodes", "add", "DEST", "--aet", DEST_AET, "--host", "127.0.0.1",
                 "--port", str(storescp.port), "--roles", "echo,store")
        orthanc.start()
        bench_ingest.warm_page_cache(files)
        up_s = orthanc.upload(files, threads=2)
        held = orthanc.count()
        report["load"]["orthanc_compare"] = {"seconds": round(up_s, 2), "instances_per_s": round(len(files) / up_s),
                                             "instances": held, "files_cached_or_written_s": round(files_s, 1),
                                             "how": "REST POST /instances, 2 keep-alive connections"}
        log(f"  Orthanc compare: {len(files)} files POSTed in {up_s:.1f} s ({len(files) / up_s:.0f}/s), "
            f"it holds {held}")
        if held != len(files):
            raise RuntimeError(f"Orthanc holds {held} of {len(files)} instances")

        log("C-FIND, one association per server:")
        plan_large, plan_cmp = queries(large, sz.reps), queries(compare, sz.reps)
        node = start_node(large_home)
        find_large = time_queries("Lightbox large", node.port, LIGHTBOX_AET, plan_large, sz.reps, MAX_MATCHES, log)
        stop_node(node, log)
        node = start_node(cmp_home)
        ans_lb: dict = {}
        ans_or: dict = {}
        find_lb = time_queries("Lightbox compare", node.port, LIGHTBOX_AET, plan_cmp, sz.reps, MAX_MATCHES, log,
                               ans_lb)
        find_or = time_queries("Orthanc compare", orthanc.port, orthanc.aet, plan_cmp, sz.reps, 0, log, ans_or)
        differ = [f"{k[0]} #{k[1]}: Lightbox {len(ans_lb[k])}, Orthanc {len(ans_or.get(k, ()))}"
                  for k in ans_lb if ans_lb[k] != ans_or.get(k)]
        report["find"] = {
            "large": find_large, "compare_lightbox": find_lb, "compare_orthanc": find_or,
            "same_answers": not differ, "answer_differences": differ[:10],
            "ratios": {k: {"p50_orthanc_over_lightbox": round(find_or[k]["p50_ms"] / find_lb[k]["p50_ms"], 2),
                           "p95_orthanc_over_lightbox": round(find_or[k]["p95_ms"] / find_lb[k]["p95_ms"], 2)}
                       for k in KINDS},
            "queries": {k: [q.describe() for q in plan_large[k][:3]] for k in KINDS},
        }

        log(f"retrieve: one study of {len(ct)} CT 512x512 ({ct_mb:.1f} MB) to storescp (pdu 16384) ...")
        bench_ingest.warm_page_cache(ct)
        t_lb = storescu(ct, node.port, LIGHTBOX_AET)
        indexed = wait_indexed(node.port, LIGHTBOX_AET, ct_uid, len(ct))
        t_or = storescu(ct, orthanc.port, orthanc.aet)
        orthanc.add_destination("DEST", DEST_AET, storescp.port)
        log(f"  stored with storescu: Lightbox {t_lb:.2f} s ({indexed} indexed), Orthanc {t_or:.2f} s")
        targets = {"lightbox": (node.port, LIGHTBOX_AET), "orthanc": (orthanc.port, orthanc.aet)}
        moves: dict[str, list] = {k: [] for k in targets}
        gets: dict[str, list] = {k: [] for k in targets}
        for rep in range(sz.retrieve_reps):
            order = list(targets) if rep % 2 == 0 else list(targets)[::-1]
            for who in order:
                clear(storescp.out)
                r = c_move(*targets[who], ct_uid)
                deadline = time.monotonic() + 5
                while storescp.count() < len(ct) and time.monotonic() < deadline:
                    time.sleep(0.1)
                r["delivered"] = storescp.count()
                moves[who].append(r)
                log(f"  C-MOVE from {who:8s} {r['seconds']:6.2f} s  {len(ct) / r['seconds']:7.1f} images/s  "
                    f"storescp got {r['delivered']}/{len(ct)}, final status 0x{(r['status'] or 0):04X}")
            for who in order:
                r = c_get(*targets[who], ct_uid, bench_ingest.CT_UID)
                gets[who].append(r)
                log(f"  C-GET  from {who:8s} {r['seconds']:6.2f} s  {len(ct) / r['seconds']:7.1f} images/s  "
                    f"received {r['received']}/{len(ct)}, final status 0x{(r['status'] or 0):04X}")
        move = {k: _summary(v, len(ct), ct_mb) for k, v in moves.items()}
        get = {k: _summary(v, len(ct), ct_mb) for k, v in gets.items()}
        report["retrieve"] = {
            "images": len(ct), "mb": round(ct_mb, 1),
            "destination": "DCMTK storescp --single-process +xa -pm -pdu 16384 (TCP_NODELAY=1)",
            "stored_s": {"lightbox": round(t_lb, 2), "orthanc": round(t_or, 2)},
            "indexed": indexed, "move": move, "get": get,
            "ratios": {"move_lightbox_over_orthanc": round(move["lightbox"]["images_per_s"]
                                                           / move["orthanc"]["images_per_s"], 2),
                       "get_lightbox_over_orthanc": round(get["lightbox"]["images_per_s"]
                                                          / get["orthanc"]["images_per_s"], 2),
                       "get_lightbox_over_move_orthanc": round(get["lightbox"]["images_per_s"]
                                                               / move["orthanc"]["images_per_s"], 2)},
        }
    finally:
        if node is not None:
            stop_node(node, log)
        orthanc.stop()
        storescp.stop()

    log("inside the node (this process, large home):")
    report["server_side_large"] = server_side(large_home, plan_large, log=log)
    report["duration_s"] = round(time.time() - started, 1)
    report["machine"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    report["client_responses_requeued"] = REQUEUED[0]
    report["problems"] = checks(report)
    return report


def checks(report: dict) -> list[str]:
    """What went wrong (empty: every query found what the corpus holds on every server, every
    retrieve delivered every image)."""
    problems = []
    for where in ("large", "compare_lightbox", "compare_orthanc"):
        for kind, r in report["find"][where].items():
            if not r["ok"]:
                problems.append(f"{where} {kind}: {'; '.join(r['errors'][:2])}")
    if not report["find"]["same_answers"]:
        problems.append(f"Lightbox and Orthanc answered differently: {report['find']['answer_differences'][:3]}")
    if report["ingest_check"]["mismatches"]:
        problems.append(f"bulk rows differ from ingest: {report['ingest_check']['mismatches'][:3]}")
    n = report["retrieve"]["images"]
    for op, key in (("move", "delivered"), ("get", "received")):
        for who, s in report["retrieve"][op].items():
            for r in s["runs"]:
                if r[key] != n or r["failed"] or r["status"] != 0:
                    problems.append(f"C-{op.upper()} from {who}: {r[key]}/{n} images, {r['failed']} failed, "
                                    f"status 0x{(r['status'] or 0):04X}")
    return problems


def format_report(r: dict) -> str:
    c = r["corpus"]
    lines = [f"Query/Retrieve benchmark, size {r['size']}, {r['machine']['cpus']} CPUs, load average "
             f"{r['machine']['loadavg_1m_before']} before / {r['machine'].get('loadavg_1m_after')} after, "
             f"{r.get('duration_s')} s",
             f"large corpus (Lightbox): {c['large']['studies']} studies, {c['large']['series']} series, "
             f"{c['large']['instances']} instances, {c['large']['patients']} patients; bulk insert "
             f"{r['load']['lightbox_large']['seconds']} s ({r['load']['lightbox_large']['instances_per_s']} rows/s)",
             f"compare corpus (both): {c['compare']['studies']} studies, {c['compare']['series']} series, "
             f"{c['compare']['instances']} instances; Lightbox bulk insert "
             f"{r['load']['lightbox_compare']['seconds']} s, "
             f"Orthanc REST upload {r['load']['orthanc_compare']['seconds']} s "
             f"({r['load']['orthanc_compare']['instances_per_s']} instances/s)",
             f"limits: Lightbox node.max_matches {r['limits']['lightbox_max_matches']}; Orthanc "
             f"{r['limits']['orthanc']}", ""]
    f = r["find"]
    head = (f"{'C-FIND (ms)':30s} {'large p50':>9s} {'p95':>8s} {'matches':>13s} | {'cmp LB p50':>10s} {'p95':>7s} "
            f"{'OR p50':>8s} {'p95':>7s} {'OR/LB p50':>9s} {'p95':>5s} {'matches':>9s}")
    lines += [head, "-" * len(head)]
    for k in KINDS:
        a, b, o, q = f["large"][k], f["compare_lightbox"][k], f["compare_orthanc"][k], f["ratios"][k]
        clip = f" ({a['clipped']} clip)" if a["clipped"] else ""
        lines.append(f"{KIND_LABEL[k]:30s} {a['p50_ms']:9.2f} {a['p95_ms']:8.2f} "
                     f"{str(a['matches_min']) + '..' + str(a['matches_max']) + clip:>13s} | {b['p50_ms']:10.2f} "
                     f"{b['p95_ms']:7.2f} {o['p50_ms']:8.2f} {o['p95_ms']:7.2f} {q['p50_orthanc_over_lightbox']:9.2f} "
                     f"{q['p95_orthanc_over_lightbox']:5.2f} "
                     f"{str(b['matches_min']) + '..' + str(b['matches_max']):>9s}")
    lines.append("OR/LB > 1: Lightbox faster. Goal: p95 <= 50 ms on the large corpus (full: 1,000,000 instances) and "
                 "faster than Orthanc. 'clip': queries with more matches than node.max_matches")
    lines.append(f"answers: Lightbox and Orthanc returned the same entities for every compare query: "
                 f"{'yes' if f['same_answers'] else 'NO ' + '; '.join(f['answer_differences'][:3])}")
    rt = r["retrieve"]
    lines += ["", f"retrieve one study of {rt['images']} CT 512x512 ({rt['mb']} MB); destination {rt['destination']}; "
              f"median of {len(rt['move']['lightbox']['runs'])}"]
    for op in ("move", "get"):
        lb, orc = rt[op]["lightbox"], rt[op]["orthanc"]
        lines.append(f"  C-{op.upper():4s} Lightbox {lb['images_per_s']:7.1f} images/s ({lb['mb_per_s']} MB/s)   "
                     f"Orthanc {orc['images_per_s']:7.1f} images/s   "
                     f"Lightbox/Orthanc {lb['images_per_s'] / orc['images_per_s']:.2f}")
    lines.append(f"  Lightbox C-GET / Orthanc C-MOVE: {rt['ratios']['get_lightbox_over_move_orthanc']:.2f}")
    ss = r.get("server_side_large")
    if ss:
        lines += ["", "inside the node, large corpus (handle_find with no network; main SQL statement alone):"]
        for k in KINDS:
            s = ss[k]
            lines.append(f"  {KIND_LABEL[k]:30s} handler {s['handler_ms_median']:8.2f} ms ({s['matches']} matches), "
                         f"SQL {s['main_sql_ms_all_rows']} ms; "
                         f"plan: {' | '.join(s['plans'][0]) if s['plans'] else '-'}")
    lines.append("")
    lines.append("checks: " + ("every query found what the corpus holds, every retrieve delivered every image"
                               if not r["problems"] else "; ".join(r["problems"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import benchutil
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    os.chdir(bench_ingest.ROOT)
    sys.exit(main())
