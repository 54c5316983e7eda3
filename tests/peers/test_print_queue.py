"""The print queue (app.jobs.print_job) against printers: DCMTK dcmprscp for everything it
can do (a printer that is down and comes up, a film size it refuses, the Presentation LUT,
a grayscale printer asked for colour); the STAND-IN printer (tests/print_standin.py) only
for what dcmprscp cannot do: colour, scripted failure and warning statuses, FILM JAM / ELEC
SW ERROR printer statuses, N-EVENT-REPORTs and an association dropped in mid-job."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from app.film import cameras
from app.film.compose import compose, page_shape
from app.jobs import print_job
from app.jobs.queue import DONE, FAILED, QUEUED
from app.jobs.runners import make_job_queue
from app.net.printing import Film, PrintRefused, print_page
from app.store.archive import Archive
from app.store.nodes import PrinterSetup, RemoteNode, add_node
from conftest import ROOT, free_port, lightbox, wait_port
from print_standin import PRINT_JOB, PRINTER, StandinPrinter

pytestmark = pytest.mark.peers
SCRIPT = ROOT.parent / "shared" / "peers" / "peers" / "print_scp.sh"
_names = itertools.count(1)


# -- helpers ------------------------------------------------------------------------------
def page(i: int, size: str = "14INX17IN", *, dpi: int = 40, bits: int = 12, color: bool = False) -> np.ndarray:
    """A small composed film page, different for every ``i``."""
    top = 255 if bits == 8 else 4095
    ramp = ((np.arange(40 * 30).reshape(40, 30) * (i + 3)) % (top + 1)).astype(np.uint8 if bits == 8 else np.uint16)
    images = [ramp, None, ramp.T.copy(), ramp[::-1].copy()]
    if color:
        rgb = np.stack([ramp, ramp[::-1], np.full_like(ramp, 17 * i % 256)], axis=2)
        images = [rgb, ramp, None, rgb[:, ::-1].copy()]
    return compose(images, page_shape(size, "PORTRAIT", dpi), 2, 2, bits=bits, gap=3, background=(11 * i) % 200,
                   color=color)


def new_name(prefix: str) -> str:
    """A printer name of its own per test: the camera board is one per process."""
    return f"{prefix}{next(_names)}"


def add_printer(archive, name: str, aet: str, port: int, **setup) -> RemoteNode:
    return add_node(archive.engine, RemoteNode(name, aet, "127.0.0.1", port, ("print",),
                                               printer=PrinterSetup(**setup)))


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def start_dcmprscp(port: int, folder: Path) -> Path:
    run = subprocess.run(["bash", str(SCRIPT), str(port), str(folder)], env=dict(os.environ),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return folder / "db"


def stop_dcmprscp(folder: Path) -> None:
    subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=60)


def hardcopies(db: Path, skip: set[str] = frozenset()) -> list[pydicom.Dataset]:
    """The Hardcopy Grayscale images dcmprscp stored (one per image box N-SET), oldest first;
    not those named in ``skip``."""
    return [pydicom.dcmread(p) for p in sorted(db.glob("HG*"), key=lambda p: p.stat().st_mtime_ns)
            if p.name not in skip]


def pixel_bytes(ds: pydicom.Dataset) -> bytes:
    return np.asarray(ds.pixel_array, "<u2").tobytes()


def standin_pixels(film: dict) -> bytes:
    (image,) = film["images"]
    seq = image.get("BasicGrayscaleImageSequence") or image.get("BasicColorImageSequence")
    return bytes(seq[0].PixelData)


def le(p: np.ndarray) -> bytes:
    return np.asarray(p, "<u2" if p.dtype != np.uint8 else "u1").tobytes()


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "home")
    a.settings.set("print.retry_interval", 1)
    yield a
    a.close()


@pytest.fixture
def queue(archive):
    q = make_job_queue(archive)
    yield q
    q.stop()


@pytest.fixture
def dcmprscp(tmp_path):
    port = free_port()
    db = start_dcmprscp(port, tmp_path / "printer")
    yield port, db
    stop_dcmprscp(tmp_path / "printer")


@pytest.fixture
def standin():
    with StandinPrinter() as printer:
        yield printer


# -- dcmprscp -----------------------------------------------------------------------------
def test_jobs_wait_for_a_printer_that_is_down_and_print_in_order_when_it_comes_up(archive, queue, tmp_path):
    port = free_port()  # nothing listens there yet
    name = new_name("DOWN")
    add_printer(archive, name, "PRINTSCP", port)
    pages = [page(1), page(2)]
    first = print_job.submit(queue, archive, name, [pages[0]], Film(), what="film one")
    second = print_job.submit(queue, archive, name, [pages[1]], Film(), what="film two")
    assert first < second
    queue.start()
    job = wait_for(lambda: (j := queue.get(first)) and "waiting for the printer" in j.message and j, 10,
                   "the first job to wait for the printer")
    assert job.status == QUEUED and "tries again in 1 s" in job.message
    assert "cannot connect" in job.message, job.message
    time.sleep(1.5)  # longer than the retry interval: it tries again and still waits, the second behind it
    jobs = {j.id: j for j in (queue.get(first), queue.get(second))}
    assert [j.status for j in jobs.values()] == [QUEUED, QUEUED]
    assert "waiting for the printer" in jobs[first].message and jobs[first].attempts >= 2
    assert jobs[second].message.startswith("waiting") and jobs[second].attempts == 0  # kept behind the first
    camera = cameras.current()[name]
    assert camera.symbol == "interact" and camera.message.startswith("Camera not reachable")

    db = start_dcmprscp(port, tmp_path / "printer")
    try:
        done = [queue.wait(first, 30), queue.wait(second, 30)]
        assert [j.status for j in done] == [DONE, DONE], [j.message for j in done]
        assert all(f"1 film printed on {name}" in j.message for j in done)
        assert done[0].updated_at <= done[1].updated_at
        stored = hardcopies(db)
        assert len(stored) == 2
        # what the printer stored is each page, the first job's first
        assert [pixel_bytes(h) for h in stored] == [le(p) for p in pages]
        assert cameras.current()[name].symbol == "idle"
    finally:
        queue.stop()
        stop_dcmprscp(tmp_path / "printer")


def test_a_printer_stopped_in_the_middle_of_a_job_and_retry_when_it_is_back(archive, queue, tmp_path):
    """DCMTK dcmprscp killed while it receives a job of several large films: the job fails
    saying so, with the films it had accepted; back, Retry prints the rest."""
    import signal
    port = free_port()
    folder = tmp_path / "printer"
    db = start_dcmprscp(port, folder)
    name = new_name("KILLED")
    add_printer(archive, name, "PRINTSCP", port)
    pages = [page(i, dpi=200) for i in range(1, 5)]  # 4 films of 3400 x 2800, 19 MB each
    job_id = print_job.submit(queue, archive, name, pages, Film(), what="four films")
    pid = int((folder / "dcmprscp.pid").read_text().split()[0])
    try:
        killer_done = []

        def kill_after_first_film():
            wait_for(lambda: list(db.glob("HG*")), 60, "the first film at the printer")
            os.kill(pid, signal.SIGKILL)
            killer_done.append(True)
        import threading
        killer = threading.Thread(target=kill_after_first_film)
        killer.start()
        job = queue.run_here(job_id)
        killer.join(60)
        assert killer_done and job.status == FAILED, job.message
        accepted = job.state["next"]  # 0 when it died while taking the first film
        assert 0 <= accepted < 4, job.message
        assert f"{accepted} of 4 films printed; Retry prints the rest" in job.message, job.message
        assert "dropped the connection" in job.message or "did not answer" in job.message, job.message
        seen = {p.name for p in db.glob("HG*")}  # one may be half written: the printer died writing it

        stop_dcmprscp(folder)
        start_dcmprscp(port, folder)  # the printer is back
        queue.retry(job_id)
        job = queue.run_here(job_id)
        assert job.status == DONE and "4 films printed" in job.message, job.message
        new = [h for h in hardcopies(db, skip=seen)]
        assert [pixel_bytes(h) for h in new] == [le(p) for p in pages[accepted:]]  # the rest, once each, in order
    finally:
        stop_dcmprscp(folder)


def test_a_film_size_the_printer_refuses_fails_that_job_and_the_next_one_prints(archive, queue, tmp_path):
    folder = tmp_path / "printer"
    port = free_port()
    start_dcmprscp(port, folder)  # for its configuration file
    stop_dcmprscp(folder)
    cfg = folder / "dcmpstat.cfg"
    text, n = re.subn(r"^FilmSizeID = .*$", "FilmSizeID = 14INX17IN", cfg.read_text(), flags=re.M)
    assert n == 1
    cfg.write_text(text)
    shim = Path(os.environ.get("HARNESS_CACHE") or Path(os.environ.get("TMPDIR", "/tmp")) / "lightbox-peers") / \
        "bind_loopback.so"  # the script's loopback-only bind() shim, built by the start above
    env = dict(os.environ, **({"LD_PRELOAD": str(shim)} if shim.exists() else {}))
    with open(folder / "own-dcmprscp.log", "wb") as log:
        proc = subprocess.Popen(["/usr/bin/dcmprscp", "-c", str(cfg), "-p", "HARNESSPRINT", "-ll", "info"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port, proc=proc)
        name = new_name("SIZES")
        add_printer(archive, name, "PRINTSCP", port)
        small = print_job.submit(queue, archive, name, [page(1, "8INX10IN")], Film(size="8INX10IN"), what="small")
        large_page = page(2)
        large = print_job.submit(queue, archive, name, [large_page], Film(size="14INX17IN"), what="large")
        queue.start()
        refused, printed = queue.wait(small, 30), queue.wait(large, 30)
        # dcmprscp answers the film box N-CREATE with 0x0106 Invalid attribute value
        assert refused.status == FAILED
        assert "film box" in refused.message and "0106" in refused.message, refused.message
        assert "a value sent is not valid for it" in refused.message  # the table's plain words
        assert "Check the film size" in refused.message and "0 of 1 film printed" in refused.message
        assert printed.status == DONE, printed.message
        stored = hardcopies(folder / "db")
        assert len(stored) == 1 and pixel_bytes(stored[0]) == le(large_page)
        assert "illegal film size ID: '8INX10IN'" in (folder / "own-dcmprscp.log").read_text(errors="replace")
    finally:
        queue.stop()
        proc.terminate()
        proc.wait(10)


def test_a_presentation_lut_is_created_and_referenced_by_the_film_box(archive, queue, dcmprscp):
    port, db = dcmprscp
    name = new_name("PLUT")
    add_printer(archive, name, "PRINTSCP", port, presentation_lut=True)
    p = page(3)
    job = queue.run_here(print_job.submit(queue, archive, name, [p], Film(), what="with a LUT"))
    assert job.status == DONE, job.message
    (sp,) = [pydicom.dcmread(f) for f in db.glob("SP*")]
    (lut,) = sp.PresentationLUTContentSequence
    assert lut.PresentationLUTShape == "IDENTITY"
    (ref,) = sp.FilmBoxContentSequence[0].ReferencedPresentationLUTSequence
    assert ref.ReferencedSOPInstanceUID == lut.SOPInstanceUID
    (hg,) = hardcopies(db)
    assert pixel_bytes(hg) == le(p)


def test_a_grayscale_printer_refuses_a_colour_film(archive, queue, dcmprscp):
    port, db = dcmprscp
    name = new_name("GREY")
    node = add_printer(archive, name, "PRINTSCP", port)
    with pytest.raises(PrintRefused, match="does not print colour films") as caught:
        print_page(archive.settings, node, page(1, bits=8, color=True), Film())
    assert caught.value.code == 0x0122 and "Print Management Meta SOP Class" in str(caught.value)
    # in the queue: the job fails with the reason (it does not wait for a printer that is there)
    job = queue.run_here(print_job.submit(queue, archive, name, [page(2, bits=8, color=True)], Film(), what="colour"))
    assert job.status == FAILED and "does not print colour films" in job.message, job.message
    assert list(db.glob("HG*")) == []


# -- the stand-in printer -------------------------------------------------------------------
FAILURES = [
    (("N-SET", "image"), 0xC603, "the image has more pixels than it can print in the image box"),
    (("N-ACTION", "film box"), 0xC613, "the combined print image is larger than the image box"),
    (("N-SET", "image"), 0xC605, "it has not enough memory to store the image"),
    (("N-CREATE", "film box"), 0xC616, "an earlier film has not been printed yet"),
]


@pytest.mark.parametrize("key,code,meaning", FAILURES, ids=[f"{c:04X}" for _, c, _ in FAILURES])
def test_a_failure_status_fails_the_job_in_plain_words_and_the_next_job_prints(archive, queue, standin, key, code,
                                                                              meaning):
    name = new_name("FAIL")
    add_printer(archive, name, standin.aet, standin.port)
    standin.statuses[key] = code
    failed = queue.run_here(print_job.submit(queue, archive, name, [page(1)], Film(), what="refused"))
    assert failed.status == FAILED
    assert f"{code:04X}" in failed.message and meaning in failed.message, failed.message
    assert failed.message.startswith("The printer refused the film") and "0 of 1 film printed" in failed.message
    assert standin.films == []
    standin.statuses.clear()
    p = page(2)
    printed = queue.run_here(print_job.submit(queue, archive, name, [p], Film(), what="accepted"))
    assert printed.status == DONE, printed.message
    assert len(standin.films) == 1 and standin_pixels(standin.films[0]) == le(p)


def test_a_warning_status_prints_and_says_so(archive, queue, standin):
    name = new_name("WARN")
    add_printer(archive, name, standin.aet, standin.port)
    standin.statuses[("N-CREATE", "film box")] = 0xB605
    job = queue.run_here(print_job.submit(queue, archive, name, [page(1)], Film(), what="warned"))
    assert job.status == DONE, job.message
    assert "1 warning(s)" in job.message and "B605" in job.message and "film box" in job.message, job.message
    assert len(standin.films) == 1


class DropsOnNthImage(StandinPrinter):
    """Drops the association (A-ABORT) at the ``drop_at``-th image box N-SET it receives."""

    drop_at: int | None = 2

    def _should_abort(self, dimse: str, class_uid: str) -> bool:
        if self.drop_at is not None and dimse == "N-SET":
            return sum(1 for r in self.requests if r[0] == "N-SET") == self.drop_at
        return super()._should_abort(dimse, class_uid)


def test_a_dropped_association_fails_the_job_and_retry_prints_only_the_rest(archive, queue):
    with DropsOnNthImage() as printer:
        name = new_name("DROP")
        add_printer(archive, name, printer.aet, printer.port)
        pages = [page(1), page(2), page(3)]
        job_id = print_job.submit(queue, archive, name, pages, Film(), what="three films")
        job = queue.run_here(job_id)
        assert job.status == FAILED and printer.aborts == 1
        assert "dropped the connection" in job.message and "in time. 1 of 3 films printed" in job.message, job.message
        assert "Retry prints the rest" in job.message
        assert [standin_pixels(f) for f in printer.films] == [le(pages[0])]
        spool = print_job.spool_root(archive) / queue.get(job_id).params["spool"]
        assert print_job.sweep_spool(archive, queue) == 0 and spool.is_dir()  # kept for Retry
        printer.drop_at = None
        queue.retry(job_id)
        job = queue.run_here(job_id)
        assert job.status == DONE and "3 films printed" in job.message, job.message
        # each film once: the one accepted before the drop was not sent again
        assert [standin_pixels(f) for f in printer.films] == [le(p) for p in pages]
        assert sum(1 for r in printer.requests if r[0] == "N-ACTION") == 3
        assert not spool.exists()  # printed: its spooled films are gone
        other = print_job.submit(queue, archive, name, [page(4)], Film(), what="never sent")
        queue.cancel(other)
        queue.remove_finished()  # the list cleared: nothing refers to its films any more
        assert print_job.sweep_spool(archive, queue) == 1 and not any(print_job.spool_root(archive).iterdir())


def test_a_film_jam_does_not_stop_the_queue_but_asks_the_operator(archive, queue, standin):
    name = new_name("JAM")
    add_printer(archive, name, standin.aet, standin.port)
    standin.printer_status, standin.printer_status_info = "WARNING", "FILM JAM"
    job = queue.run_here(print_job.submit(queue, archive, name, [page(1)], Film(), what="jammed"))
    assert job.status == DONE, job.message
    assert len(standin.films) == 1 and queue.holds() == {}
    camera = cameras.current()[name]
    assert (camera.symbol, camera.message) == ("interact", "Film jam.")


def test_a_printer_failure_stops_its_queue_until_restarted(archive, queue, standin):
    name = new_name("ELEC")
    add_printer(archive, name, standin.aet, standin.port)
    standin.printer_status, standin.printer_status_info = "FAILURE", "ELEC SW ERROR"
    p = page(1)
    job_id = print_job.submit(queue, archive, name, [p], Film(), what="stopped")
    queue.start()
    holds = wait_for(lambda: queue.holds(), 10, "the queue to stop")
    assert holds == {print_job.group(name): "Camera software problem. Queue stopped."}
    job = wait_for(lambda: (j := queue.get(job_id)) and j.message.startswith("queue stopped") and j, 10, "the job")
    assert job.status == QUEUED and f"Restart the queue of {name}" in job.message, job.message
    assert cameras.current()[name].symbol == "stopped"
    assert [r[0] for r in standin.requests] == ["N-GET"]  # nothing created, nothing printed
    # the camera is fine again: the queue stays stopped until the operator restarts it
    standin.printer_status, standin.printer_status_info = "NORMAL", "NORMAL"
    time.sleep(1.5)  # longer than the retry interval
    assert queue.get(job_id).status == QUEUED and standin.films == [] and len(standin.requests) == 1
    assert print_job.stopped_queues(queue) == {name: "Camera software problem. Queue stopped."}
    print_job.restart(queue, name)
    job = queue.wait(job_id, 20)
    assert job.status == DONE, job.message
    assert len(standin.films) == 1 and standin_pixels(standin.films[0]) == le(p)
    assert queue.holds() == {} and cameras.current()[name].symbol == "idle"


def test_an_unknown_failure_info_stops_the_queue(archive, queue, standin):
    name = new_name("FIRE")
    add_printer(archive, name, standin.aet, standin.port)
    standin.printer_status, standin.printer_status_info = "FAILURE", "LASER ON FIRE"
    job = queue.run_here(print_job.submit(queue, archive, name, [page(1)], Film(), what="on fire"))
    assert job.status == QUEUED
    assert job.message.startswith("queue stopped: Camera info: LASER ON FIRE Queue stopped."), job.message
    assert queue.holds() == {print_job.group(name): "Camera info: LASER ON FIRE Queue stopped."}
    camera = cameras.current()[name]
    assert camera.symbol == "stopped" and camera.message.startswith("Camera info: LASER ON FIRE Queue stopped.")
    assert standin.films == [] and [r[0] for r in standin.requests] == ["N-GET"]


def test_a_printer_event_report_updates_the_camera(archive, queue, standin):
    name = new_name("EVENT")
    add_printer(archive, name, standin.aet, standin.port)
    info = Dataset()
    info.PrinterStatusInfo = "LOW 14X17 BLUE"
    standin.events.append((PRINTER, None, 2, info))
    job = queue.run_here(print_job.submit(queue, archive, name, [page(1)], Film(), what="reported"))
    assert job.status == DONE, job.message
    assert standin.wait_event_replies(1) == [(PRINTER, "1.2.840.10008.5.1.1.17", 2, 0)]  # answered: success
    camera = wait_for(lambda: (c := cameras.current()[name]).info == "LOW 14X17 BLUE" and c, 5, "the camera")
    assert (camera.symbol, camera.message) == ("interact", "14x17 blue film supply low.")


def test_a_print_job_failure_report_fails_the_job(archive, queue, standin):
    name = new_name("JOBFAIL")
    add_printer(archive, name, standin.aet, standin.port)
    info = Dataset()
    info.ExecutionStatus, info.ExecutionStatusInfo = "FAILURE", "FILM JAM"
    standin.events.append((PRINT_JOB, None, 4, info))
    job = queue.run_here(print_job.submit(queue, archive, name, [page(1)], Film(), what="jammed job"))
    (reply,) = standin.wait_event_replies(1)
    assert reply[0] == PRINT_JOB and reply[2:] == (4, 0)  # sent on the Print Job context, answered
    assert job.status == FAILED
    assert "reported that printing film 1 failed" in job.message and "film jam" in job.message.lower(), job.message
    assert "0 of 1 film printed; Retry prints the rest" in job.message, job.message  # accepted, yet not printed
    standin.events.clear()
    queue.retry(job.id)
    again = queue.run_here(job.id)
    assert again.status == DONE, again.message
    assert len(standin.films) == 2  # the jammed film, then printed again


def test_a_colour_film_goes_through_basic_color_print(archive, queue, standin):
    name = new_name("COLOR")
    add_printer(archive, name, standin.aet, standin.port, color=True, bits=8)
    p = page(4, bits=8, color=True)
    assert p.shape[2:] == (3,) and p.dtype == np.uint8
    job = queue.run_here(print_job.submit(queue, archive, name, [p], Film(), what="in colour"))
    assert job.status == DONE, job.message
    (film,) = standin.films
    assert film["meta"] == "1.2.840.10008.5.1.1.18"
    (item,) = film["images"][0].BasicColorImageSequence
    assert (item.PhotometricInterpretation, item.SamplesPerPixel, item.Rows, item.Columns) == \
        ("RGB", 3, *p.shape[:2])
    assert bytes(item.PixelData) == p.tobytes()


# -- the command line -----------------------------------------------------------------------
def test_lightbox_print_on_a_printer_that_is_down_leaves_the_job_queued(tmp_path):
    from peerutil import ct_dataset, save
    from pydicom.uid import generate_uid
    home = tmp_path / "home"
    a = Archive(home)
    try:
        add_printer(a, "LATER", "PRINTSCP", free_port())
    finally:
        a.close()
    image = save(ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=32), tmp_path / "ct.dcm")
    run = lightbox(home, "print", "LATER", str(image), "--dpi", "40", check=False)
    assert run.returncode == 75, run.stderr
    assert "not printed yet" in run.stderr and "It stays in the queue of LATER" in run.stderr
    assert "waiting for the printer" in run.stderr
    status = lightbox(home, "print", "LATER", "--status")
    lines = status.stdout.splitlines()
    assert lines[0].startswith("LATER: interact: Camera not reachable:"), status.stdout
    (job_line,) = [line for line in lines if line.strip().startswith("job ")]
    assert re.match(r"\s+job \d+ queued: Print 1 image on LATER \(1 film, 14INX17IN portrait\): waiting for the "
                    r"printer", job_line), job_line
