"""Printer status and print DIMSE statuses (app.film.print_status) against the spec text:
every §8.6.1 value with its message and camera symbol, §8.6.2 for other values, every
status code of Tables 4-30 to 4-39 with its class and behaviour, codes in no table classed
by range, and the technologist's sentence."""

from __future__ import annotations

import re

import pytest

from app.film.print_status import (SYMBOLS, UNKNOWN_INFO_FAILURE_MESSAGE, UNKNOWN_INFO_MESSAGE, CameraState,
                                   StatusMeaning, camera_state, dimse_status, message_keys, plain_words,
                                   status_infos)
from app.resources import read_tsv
from conftest import SHARED

SPEC = SHARED / "spec" / "reference-conformance-statement.txt"

# the print message each table of §4.2.1.3.7 is about
TABLE_MESSAGES = {"4-30": "film-session-create", "4-32": "film-box-create", "4-33": "film-box-action",
                  "4-35": "grayscale-image-set", "4-37": "color-image-set", "4-39": "presentation-lut-create"}


def spec_lines() -> list[str]:
    return SPEC.read_text(encoding="utf-8").splitlines()


def section(lines: list[str], start: str, end: str) -> list[str]:
    """The lines from heading ``start`` to heading ``end`` (not the table of contents: its
    lines carry the page number after a tab)."""
    first = next(i for i, line in enumerate(lines) if line.startswith(start) and "\t" not in line)
    last = next(i for i, line in enumerate(lines) if i > first and line.startswith(end))
    return lines[first:last]


def spec_infos() -> dict[str, str]:
    """§8.6.1 info values of the spec text, with the raw camera symbol cell."""
    rows = {}
    for line in section(spec_lines(), "8.6.1 Common Status Information", "8.6.2 "):
        if re.match(r"[A-Z][A-Z0-9 ]*\t", line):
            cells = line.split("\t")
            rows[cells[0].strip()] = cells[3].strip() if len(cells) > 3 else ""
    return rows


def spec_statuses() -> dict[tuple[str, int], str]:
    """(table, code) -> Behavior cell of Tables 4-30 to 4-39 in the spec text."""
    rows, table = {}, None
    for line in section(spec_lines(), "Table 4-30:", "Table 4-40:"):
        if m := re.match(r"Table (4-\d\d):", line):
            table = m.group(1)
        elif m := re.search(r"\t([0-9A-F]{4})\t(Print job [^\t]*)$", line.strip("\t")):
            rows[(table, int(m.group(1), 16))] = m.group(2)
    return rows


# --- §8.6.1 / §8.6.2 ---------------------------------------------------------------------

def test_every_common_status_info_row_of_the_spec_is_in_the_table():
    spec = spec_infos()
    assert len(spec) > 100  # the table spans four pages of the source
    assert set(status_infos()) == set(spec)
    for info, cell in spec.items():
        cell = cell.lower()
        if "stopped" in cell:
            assert status_infos()[info].symbol == "stopped", info
        elif "idle" in cell or "interact" in cell:
            assert status_infos()[info].symbol == ("idle" if "idle" in cell else "interact"), info


def test_symbols_are_valid_and_every_row_has_a_message():
    for info, row in status_infos().items():
        assert row.symbol in SYMBOLS, info
        assert row.message and row.description, info
    rows = read_tsv("spec", "printer_status_info.tsv")
    assert all(len(r) == 5 for r in rows)
    notes = {r[0]: r[4] for r in rows}
    assert "filled in" in notes["PROC OVERFLOW HI"] and "filled in" in notes["QUEUED"]


def test_rows_split_across_page_breaks_are_joined_again():
    assert status_infos()["EMPTY 11X14 BLUE"].description == "The 11x14 inch blue film supply magazine is empty."
    assert status_infos()["EMPTY 11X14 BLUE"].message == "11x14 blue film supply empty."
    assert status_infos()["LOW 10X14"].description == "The 10x14 inch film supply magazine is low."


def test_known_values():
    assert camera_state("WARNING", "FILM JAM") == CameraState("FILM JAM", "Film jam.", "interact", False, True)
    assert camera_state("NORMAL", "") == CameraState("NORMAL", "Camera is ready", "idle", False, True)
    assert camera_state("normal", "  normal ").message == "Camera is ready"
    elec = camera_state("FAILURE", "ELEC SW ERROR")
    assert elec.symbol == "stopped" and elec.stops_queue and elec.message == "Camera software problem. Queue stopped."
    media = camera_state("FAILURE", "REQ MED NOT AVAI")
    assert media.stops_queue and "Change camera." in media.message
    assert camera_state("WARNING", "empty 14x17 blue ").message == "14x17 blue film supply empty."
    assert camera_state("WARNING", "PROC OVERFLOW HI").symbol == "interact"
    assert camera_state("NORMAL", "QUEUED") == CameraState("QUEUED", "Print job in queue.", "idle", False, True)
    assert camera_state("WARNING", "UNKNOWN").message == "Unspecified problem with camera."


def test_the_table_is_authoritative_for_known_values_even_with_failure():
    state = camera_state("FAILURE", "FILM JAM")
    assert (state.symbol, state.stops_queue, state.known) == ("interact", False, True)
    assert camera_state("FAILURE", "PRINTER INIT").symbol == "idle"


def test_unknown_values_follow_section_8_6_2():
    warning = camera_state("WARNING", "TONER SMELLS")
    assert warning == CameraState("TONER SMELLS", "Camera info: TONER SMELLS", "interact", False, False)
    failure = camera_state("FAILURE", "Laser Dead")
    assert failure == CameraState("LASER DEAD", "Camera info: LASER DEAD Queue stopped.", "stopped", True, False)
    assert UNKNOWN_INFO_MESSAGE.format(info="X") == "Camera info: X"
    assert UNKNOWN_INFO_FAILURE_MESSAGE.format(info="X") == "Camera info: X Queue stopped."
    normal = camera_state("NORMAL", "WARMING UP SLOWLY")
    assert (normal.symbol, normal.message, normal.known) == ("idle", "Camera info: WARMING UP SLOWLY", False)
    assert camera_state("FAILURE", "").stops_queue  # a failure without info still stops the queue
    assert camera_state("WARNING", "").symbol == "interact"


def test_multi_valued_info_takes_the_worst_symbol_and_all_messages():
    state = camera_state("WARNING", "LOW 14X17 BLUE\\COVER OPEN")
    assert state.symbol == "interact" and state.message == "14x17 blue film supply low. Camera cover, drawer or door open."
    state = camera_state("FAILURE", "CALIBRATING\\ELEC SW ERROR\\FILM JAM")
    assert state.symbol == "stopped" and state.stops_queue and state.known
    assert state.message == "Self-calibration. Please wait. Camera software problem. Queue stopped. Film jam."
    state = camera_state("FAILURE", "FILM JAM\\MYSTERY")
    assert state.symbol == "stopped" and not state.known
    assert state.message == "Film jam. Camera info: MYSTERY Queue stopped."
    assert camera_state("NORMAL", "PRINTER INIT\\\\CALIBRATING").symbol == "idle"


# --- Tables 4-30 to 4-39 -----------------------------------------------------------------

def test_every_status_of_the_spec_tables_is_in_the_table_and_nothing_else():
    spec = spec_statuses()
    assert {table for table, _ in spec} == set(TABLE_MESSAGES)
    assert len(spec) == 30
    ours = {(r[0], int(r[2], 16)) for r in read_tsv("spec", "print_statuses.tsv") if r[0] != "PS3.4"}
    assert ours == set(spec)
    assert set(message_keys()) == set(TABLE_MESSAGES.values())


def test_dimse_status_of_each_table_code_matches_the_table():
    spec = spec_statuses()
    assert len(spec) == 30
    for (table, code), behaviour in spec.items():
        got = dimse_status(TABLE_MESSAGES[table], code)
        assert (got.table, got.message, got.code) == (table, TABLE_MESSAGES[table], code)
        if "failed" in behaviour:
            assert (got.status, got.behaviour) == ("failure", "fail-logged"), (table, hex(code))
        elif "logged" in behaviour:
            assert (got.status, got.behaviour) == ("warning", "continue-logged"), (table, hex(code))
        else:
            assert (code, got.status, got.behaviour) == (0, "success", "continue"), table
    assert dimse_status("grayscale-image-set", 0xC605).meaning == "Insufficient memory in printer to store the image"


def test_every_row_is_consistent():
    for table, message, code, status, meaning, behaviour, plain, advice in read_tsv("spec", "print_statuses.tsv"):
        assert re.fullmatch(r"[0-9A-F]{4}", code)
        assert (status, behaviour) in {("success", "continue"), ("warning", "continue-logged"),
                                       ("failure", "fail-logged")}
        assert meaning
        if status == "failure":
            assert plain != "-" and advice != "-", (table, code)


def test_codes_not_in_the_message_table():
    # a print-specific DICOM status the reference's table for this message lacks
    got = dimse_status("film-session-create", 0xC600)
    assert (got.table, got.status, got.behaviour) == ("PS3.4", "failure", "fail-logged")
    assert "does not contain Film Box" in got.meaning
    assert dimse_status("film-box-create", 0xC602).meaning.endswith("print queue is full")
    # general DIMSE statuses
    assert dimse_status("film-box-action", 0x0110).meaning == "Processing failure"
    assert dimse_status("film-box-action", 0x0112).status == "failure"
    for code in (0x0107, 0x0116):
        assert (dimse_status("film-box-create", code).status,
                dimse_status("film-box-create", code).behaviour) == ("warning", "continue-logged")
    for code in (0x0105, 0x0106, 0x0117, 0x0118, 0x0119, 0x0120, 0x0121, 0x0122, 0x0211, 0x0213):
        got = dimse_status("grayscale-image-set", code)
        assert (got.table, got.status, got.behaviour) == ("PS3.4", "failure", "fail-logged"), hex(code)
    # in no table: by range
    got = dimse_status("film-box-action", 0xB6FF)
    assert (got.table, got.status, got.behaviour) == ("", "warning", "continue-logged")
    assert got.meaning == "status 0xB6FF (not in Table 4-33)"
    assert dimse_status("presentation-lut-create", 0x0001).status == "warning"
    got = dimse_status("color-image-set", 0xA700)
    assert (got.status, got.behaviour, got.meaning) == ("failure", "fail-logged", "status 0xA700 (not in Table 4-37)")
    assert dimse_status("film-session-create", 0xCAFE).status == "failure"
    # messages without a table of their own: the DICOM statuses, else by range
    assert dimse_status("delete", 0x0112).meaning == "No such object instance"
    got = dimse_status("printer-get", 0xB0FF)
    assert (got.table, got.status, got.meaning) == ("", "warning", "status 0xB0FF (no table for printer-get)")
    with pytest.raises(ValueError):
        dimse_status("film-box-print", 0)
    with pytest.raises(ValueError):
        dimse_status("film-box-action", 0x10000)


def test_plain_words_say_what_happened_and_what_to_do():
    c603 = plain_words(dimse_status("grayscale-image-set", 0xC603))
    assert c603 == ("The printer refused the film: the image has more pixels than it can print in the image box "
                    "(status C603). Print at a lower resolution (printer settings: DPI) or choose a larger film.")
    c605 = plain_words(dimse_status("grayscale-image-set", 0xC605))
    assert "Try again later" in c605 and "fewer films" in c605
    assert "queue is full" in plain_words(dimse_status("film-box-action", 0xC602))
    assert "film size and medium" in plain_words(dimse_status("film-box-create", 0x0106))
    assert "film size and medium" in plain_words(dimse_status("film-box-create", 0x0116))
    assert plain_words(dimse_status("film-box-create", 0xB605)).startswith("The printer accepted the film with a warning")
    assert plain_words(dimse_status("film-box-action", 0)) == "The printer accepted the film (status 0000)."
    assert "C6FF" in plain_words(dimse_status("film-box-action", 0xC6FF))
    assert "service" in plain_words(dimse_status("film-box-action", 0xC6FF))
    # every code of every table, and the general ones, is named in its sentence
    for row in read_tsv("spec", "print_statuses.tsv"):
        message = row[1] if row[0] != "PS3.4" else "film-box-action"
        meaning = dimse_status(message, int(row[2], 16))
        words = plain_words(meaning)
        assert f"(status {row[2]})" in words, row[:3]
        if meaning.status == "failure":
            assert words.startswith("The printer refused the film: ") and len(words) > 60, row[:3]


def test_plain_words_of_a_meaning_built_by_hand():
    meaning = StatusMeaning("4-33", "film-box-action", 0xC613, "failure", "x", "fail-logged")
    assert "combined print image" in plain_words(meaning)
