"""The archive through the real command line: import, ls, nodes, config."""

import json
import subprocess
import sys

from pydicom.data import get_testdata_file

from tests.conftest import ROOT, lightbox, ls_json


def test_import_dicomdir_then_ls_every_level(home):
    out = lightbox(home, "import", "--json", get_testdata_file("DICOMDIR"))
    summary = json.loads(out.stdout)
    assert summary["imported"] == 31 and summary["rejected"] == []
    studies = ls_json(home, "study")
    assert len(studies) == 6
    brain = [s for s in studies if s.get("StudyDescription") == "Brain-MRA"][0]
    assert brain["NumberOfStudyRelatedInstances"] == 11
    assert brain["ModalitiesInStudy"] == "MR"
    assert brain["PatientName"] == "Doe^Peter"
    patients = ls_json(home, "patient")
    assert {p["PatientName"]: p["NumberOfPatientRelatedStudies"] for p in patients} == \
        {"Doe^Peter": 4, "Doe^Archibald": 2}
    series = ls_json(home, "series", f"StudyInstanceUID={brain['StudyInstanceUID']}")
    assert sum(s["NumberOfSeriesRelatedInstances"] for s in series) == 11
    # importing again finds everything present
    again = json.loads(lightbox(home, "import", "--json", get_testdata_file("DICOMDIR")).stdout)
    assert again["imported"] == 0 and again["already_present"] == 31


def test_ls_matching(home):
    lightbox(home, "import", get_testdata_file("DICOMDIR"))
    assert {s["PatientName"] for s in ls_json(home, "study", "PatientName=doe^p*")} == {"Doe^Peter"}
    assert len(ls_json(home, "study", "StudyDate=20010101")) == 2
    assert len(ls_json(home, "study", "StudyDate=20020101-")) == 3
    assert len(ls_json(home, "study", "0010,0020=77654033")) == 2
    # a lower-level key filters the upper level (relational)
    assert {s["ModalitiesInStudy"] for s in ls_json(home, "study", "Modality=CR")} == {"CR"}
    bad = lightbox(home, "ls", "-k", "NoSuchKeyword=1", check=False)
    assert bad.returncode != 0 and "cannot be searched" in bad.stderr


def test_import_reports_rejections_per_file(home, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not dicom at all")
    out = json.loads(lightbox(home, "import", "--json", str(junk), get_testdata_file("CT_small.dcm"),
                              check=False).stdout)
    assert out["imported"] == 1
    assert out["rejected"] == [{"path": str(junk), "reason": "not a DICOM file"}]


def test_import_missing_path_is_a_clear_error(home):
    r = lightbox(home, "import", "/no/such/folder", check=False)
    assert r.returncode == 2 and "not found" in r.stderr


def test_nodes_add_list_remove(home):
    lightbox(home, "nodes", "add", "PACS", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", "4242",
             "--roles", "echo,store,find,move", "--syntaxes", "jpeg-lossless,1.2.840.10008.1.2.1,!jpeg-baseline",
             "--class-syntaxes", "CTImageStorage=j2k-lossless,explicit; 1.2.840.10008.5.1.4.1.1.4=!rle", "--pack", "sc")
    nodes = json.loads(lightbox(home, "nodes", "list", "--json").stdout)
    assert nodes == [{"name": "PACS", "aet": "ORTHANC", "host": "127.0.0.1", "port": 4242,
                      "roles": ["echo", "store", "find", "move"], "tls": False, "cert_sha256": None,
                      "comment": None,
                      "transfer_syntaxes": ["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1", "!1.2.840.10008.1.2.4.50"],
                      "class_syntaxes": {"1.2.840.10008.5.1.4.1.1.2": ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.1"],
                                         "1.2.840.10008.5.1.4.1.1.4": ["!1.2.840.10008.1.2.5"]},
                      "pack": "sc"}]
    for flag, value, words in (("--class-syntaxes", "CTImage=explicit", "unknown SOP class"),
                               ("--class-syntaxes", "CTImageStorage", "SOPClass=syntax"),
                               ("--syntaxes", "jpeg-ls", "unknown transfer syntax"),
                               ("--syntaxes", "1.2.840.10008.1.2.4.80", "cannot produce")):
        r = lightbox(home, "nodes", "add", "X", "--aet", "X", "--host", "h", "--port", "1", flag, value, check=False)
        assert r.returncode == 2 and words in r.stderr, (value, r.stderr)
    dup = lightbox(home, "nodes", "add", "PACS", "--aet", "X", "--host", "h", "--port", "1", check=False)
    assert dup.returncode == 2 and "exists" in dup.stderr
    bad = lightbox(home, "nodes", "add", "BAD", "--aet", "WAY_TOO_LONG_AE_TITLE", "--host", "h",
                   "--port", "1", check=False)
    assert bad.returncode == 2 and "AE title" in bad.stderr
    lightbox(home, "nodes", "remove", "PACS")
    assert json.loads(lightbox(home, "nodes", "list", "--json").stdout) == []
    assert lightbox(home, "nodes", "remove", "PACS", check=False).returncode == 2


def test_nodes_echo_unreachable_says_what_to_check(home):
    lightbox(home, "nodes", "add", "GONE", "--aet", "GONE", "--host", "127.0.0.1", "--port", "9")
    r = lightbox(home, "nodes", "echo", "GONE", check=False)
    assert r.returncode == 2 and "cannot connect" in r.stderr


def test_config_cli(home):
    assert lightbox(home, "config", "get", "node.max_pdu").stdout.strip() == "32768"
    lightbox(home, "config", "set", "node.max_pdu", "65536")
    assert lightbox(home, "config", "get", "node.max_pdu").stdout.strip() == "65536"
    r = lightbox(home, "config", "set", "node.max_pdu", "9999999", check=False)
    assert r.returncode == 2 and "maximum" in r.stderr
    listing = json.loads(lightbox(home, "config", "list", "--json").stdout)
    assert {"key": "node.max_associations", "value": 12, "default": 12, "set": False,
            "help": listing[[i["key"] for i in listing].index("node.max_associations")]["help"]} in listing
    lightbox(home, "config", "unset", "node.max_pdu")
    assert lightbox(home, "config", "get", "node.max_pdu").stdout.strip() == "32768"


def test_python_m_app_and_console_script_agree():
    r = subprocess.run([sys.executable, "-m", "app", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.startswith("lightbox ")


def test_delete_study_removes_rows_files_and_is_audited(tmp_path):
    from app.cli import main
    from pydicom.uid import generate_uid
    from tests.peers.peerutil import ct_dataset, save
    home = tmp_path / "home"
    keep_study, gone_study = generate_uid(), generate_uid()
    (tmp_path / "in").mkdir()
    for study, pid in ((keep_study, "KEEP"), (gone_study, "GONE")):
        series = generate_uid()
        for i in range(3):
            ds = ct_dataset(study, series, generate_uid(), i + 1, size=8, patient_id=pid)
            save(ds, tmp_path / "in" / f"{pid}{i}.dcm")
    assert main(["--home", str(home), "import", str(tmp_path / "in")]) == 0
    # never committed: refused without --force, and nothing is touched
    assert main(["--home", str(home), "delete", "--study", gone_study]) == 2
    archive_files = lambda: sorted(p for p in (home / "archive").rglob("*.dcm"))
    assert len(archive_files()) == 6
    assert main(["--home", str(home), "delete", "--study", gone_study, "--force"]) == 0
    assert len(archive_files()) == 3 and not (home / "archive" / gone_study).exists()
    from app.store.db import open_engine
    from app.store import audit
    from app.store.query import search
    engine = open_engine(home)
    assert [s["StudyInstanceUID"] for s in search(engine, "study", {})] == [keep_study]
    assert [p["PatientID"] for p in search(engine, "patient", {})] == ["KEEP"]  # the empty patient went too
    [entry] = audit.search(engine, action="delete")
    assert entry["study_uid"] == gone_study and entry["patient_id"] == "GONE" and "3 instance" in entry["detail"]
    engine.dispose()


def test_a_reader_that_goes_away_ends_the_command_quietly(home):
    """'lightbox ls --json | head': no traceback, the shell's status for SIGPIPE."""
    import subprocess
    import sys

    from conftest import ROOT
    lightbox(home, "nodes", "add", "PACS", "--aet", "PACS", "--host", "127.0.0.1", "--port", "104")
    proc = subprocess.Popen([sys.executable, "-m", "app", "--home", str(home), "nodes", "list", "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    assert proc.wait(60) == 141
    assert proc.stderr.read() == b""
