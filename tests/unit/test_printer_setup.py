"""A film printer's setup on its node (app.store.nodes.PrinterSetup): written as text on the
command line, kept in the database, checked against spec Tables 4-29 and 4-31."""

from __future__ import annotations

import pytest

from app.config import SettingsError
from app.store.archive import Archive
from app.store.nodes import PrinterSetup, RemoteNode, add_node, get_node
from conftest import lightbox


def test_setup_text_round_trip_and_what_is_refused():
    setup = PrinterSetup.from_text("sizes=14inx17in, 8INX10IN; layouts=1x1,4X5; dpi=320; bits=8; plut=yes; "
                                   "color=no; mediums=BLUE FILM,MAMMO CLEAR FILM; border=black; min_density=20")
    assert setup.film_sizes == ("14INX17IN", "8INX10IN") and setup.layouts == ("1x1", "4x5")
    assert (setup.dpi, setup.bits, setup.presentation_lut, setup.color) == (320, 8, True, False)
    assert setup.mediums == ("BLUE FILM", "MAMMO CLEAR FILM") and setup.border_density == "BLACK"
    assert PrinterSetup.from_text(setup.as_text()) == setup
    assert PrinterSetup.from_json(setup.as_json()) == setup
    for bad, why in (("sizes=A3", "Table 4-31"), ("layouts=0x2", "1 to 10"), ("dpi=20", "50 to 1200"),
                     ("bits=10", "8 or 12"), ("mediums=GLASS", "medium type"), ("plut=maybe", "yes or no"),
                     ("min_density=60", "0 < value < 50"), ("speed=3", "key=value"), ("dpi=fast", "whole number")):
        with pytest.raises(SettingsError, match=why):
            PrinterSetup.from_text(bad)


def test_a_printer_node_keeps_its_setup(tmp_path):
    archive = Archive(tmp_path / "home")
    try:
        add_node(archive.engine, RemoteNode("CAM", "CAM", "127.0.0.1", 5040, ("print",),
                                            printer=PrinterSetup(dpi=508, presentation_lut=True)))
        assert get_node(archive.engine, "CAM").printer == PrinterSetup(dpi=508, presentation_lut=True)
        add_node(archive.engine, RemoteNode("PACS", "PACS", "127.0.0.1", 104, ("store",)))
        assert "printer" not in get_node(archive.engine, "PACS").as_dict()
    finally:
        archive.close()
    home = tmp_path / "cli"
    out = lightbox(home, "nodes", "add", "DRY", "--aet", "DRYVIEW", "--host", "127.0.0.1", "--port", "5040",
                   "--roles", "echo,print", "--printer", "sizes=14INX17IN; dpi=320")
    assert "added DRY" in out.stdout
    listed = lightbox(home, "nodes", "list").stdout
    assert "printer: sizes=14INX17IN; layouts=1x1,1x2" in listed and "dpi=320" in listed
    bad = lightbox(home, "nodes", "add", "BAD", "--aet", "X", "--host", "127.0.0.1", "--port", "1", "--roles", "print",
                   "--printer", "sizes=A3", check=False)
    assert bad.returncode == 2 and "Table 4-31" in bad.stderr
