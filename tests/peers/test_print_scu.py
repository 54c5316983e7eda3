"""Print Management SCU against DCMTK dcmprscp (spec §4.2.1.3.7): a composed film page is
printed as STANDARD\\1,1; what the printer stored (the Hardcopy Grayscale image of the image
box, the Stored Print of the film box) holds exactly our page and the film box attributes."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pydicom
import pytest

from app.film.compose import compose, page_shape
from app.net.printing import Film, PrintFailed, print_page
from app.store.archive import Archive
from app.store.nodes import RemoteNode, add_node, get_node
from conftest import ROOT, free_port

pytestmark = pytest.mark.peers
SCRIPT = ROOT.parent / "shared" / "peers" / "peers" / "print_scp.sh"


@pytest.fixture
def printer(tmp_path):
    port = free_port()
    run = subprocess.run(["bash", str(SCRIPT), str(port), str(tmp_path / "printer")], env=dict(os.environ),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    archive = Archive(tmp_path / "home")
    add_node(archive.engine, RemoteNode("CAMERA", "PRINTSCP", "127.0.0.1", port, ("print",)))
    yield archive, get_node(archive.engine, "CAMERA"), tmp_path / "printer" / "db"
    archive.close()
    subprocess.run(["bash", str(SCRIPT), "stop", str(tmp_path / "printer")], capture_output=True, timeout=60)


@pytest.mark.parametrize("bits", [12, 8])
def test_a_film_page_arrives_pixel_for_pixel(printer, bits):
    archive, node, db = printer
    shape = page_shape("14INX17IN", "PORTRAIT", 40)  # a small resolution: the test's page is 680x560
    top = 2 ** bits - 1
    ramp = (np.arange(64 * 48).reshape(64, 48) % (top + 1)).astype(np.uint16 if bits == 12 else np.uint8)
    page = compose([ramp, ramp.T.copy(), None, ramp], shape, 2, 2, bits=bits, gap=4)
    result = print_page(archive.settings, node, page, Film(size="14INX17IN", orientation="PORTRAIT"))
    assert result.printer_status in ("NORMAL", "WARNING", "FAILURE", "")
    images = [pydicom.dcmread(p) for p in db.glob("HG*")]
    prints = [pydicom.dcmread(p) for p in db.glob("SP*")]
    assert len(images) == 1 and len(prints) == 1
    hg = images[0]
    assert (hg.Rows, hg.Columns) == shape == (680, 560)  # portrait: more rows than columns
    assert np.array_equal(hg.pixel_array, page)
    box = prints[0].FilmBoxContentSequence[0]
    assert (box.FilmSizeID, box.FilmOrientation, box.ImageDisplayFormat) == ("14INX17IN", "PORTRAIT", "STANDARD\\1,1")


def test_a_printer_that_is_down_says_so(tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        add_node(archive.engine, RemoteNode("GONE", "PRINTSCP", "127.0.0.1", free_port(), ("print",)))
        with pytest.raises(PrintFailed, match="cannot connect"):
            print_page(archive.settings, get_node(archive.engine, "GONE"), np.zeros((10, 8), np.uint16), Film())
    finally:
        archive.close()


def test_lightbox_print_a_series_on_several_films_and_to_a_file(printer, tmp_path):
    from conftest import lightbox
    from peerutil import ct_dataset, save
    from pydicom.uid import generate_uid

    from app.film.sheet import Cell, FilmFormat, Sheet, render
    archive, node, db = printer
    home = archive.home
    archive.close()
    study, series = generate_uid(), generate_uid()
    files = [save(ct_dataset(study, series, generate_uid(), i + 1, size=32, seed=i), tmp_path / f"{i}.dcm")
             for i in range(5)]
    lightbox(home, "import", *map(str, files))
    out = lightbox(home, "print", "CAMERA", "--series", series, "--film", "8INX10IN", "--layout", "1x3",
                   "--dpi", "50", "--out", str(tmp_path / "films.pdf"), "--border", "white", "--min-density", "20")
    assert "printed 5 image(s) on 2 8INX10IN portrait films (400x500 pixels, 12 bits) on CAMERA" in out.stdout
    hg = [pydicom.dcmread(p) for p in db.glob("HG*")]
    assert len(hg) == 2 and all((h.Rows, h.Columns, h.BitsStored) == (500, 400, 12) for h in hg)
    box = pydicom.dcmread(next(db.glob("SP*"))).FilmBoxContentSequence[0]
    assert (box.BorderDensity, box.MinDensity) == ("WHITE", 20)
    # what arrived is the films as composed from the archived images: 3 then 2, a header on each
    fmt = FilmFormat("8INX10IN", "PORTRAIT", 50, 12)
    pages = {h.pixel_array.tobytes() for h in hg}
    from app.cli import archive_series_paths
    from app.store.archive import Archive
    again = Archive(home)
    try:
        paths = archive_series_paths(again, series)
    finally:
        again.close()
    expected = [render(Sheet("1x3", [Cell(p) for p in paths[:3]]), fmt), render(Sheet("1x3", [Cell(p) for p in paths[3:]]), fmt)]
    assert pages == {e.tobytes() for e in expected}
    pdf = (tmp_path / "films.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-" and b"/Count 2" in pdf
    assert pdf.count(b"/MediaBox [ 0 0 576.0 720.0 ]") == 2  # two pages the size of the film: 8 x 10 inches
    from PIL import Image
    alone = lightbox(home, "print", "--out", str(tmp_path / "alone.png"), "--layout", "2x2", "--dpi", "20",
                     *map(str, files))
    assert "alone.png, " in alone.stdout and "alone-2.png: 2 14INX17IN portrait films (280x340 pixels" in alone.stdout
    with Image.open(tmp_path / "alone-2.png") as second:
        assert second.size == (280, 340)
    bad = lightbox(home, "print", "CAMERA", "--film", "A3", "--series", series, check=False)
    assert bad.returncode == 2 and "CAMERA takes the film sizes" in bad.stderr and "not A3" in bad.stderr
    bad = lightbox(home, "print", "--out", str(tmp_path / "x.png"), "--film", "A3", *map(str, files), check=False)
    assert bad.returncode == 2 and "film size A3 is not one of" in bad.stderr
