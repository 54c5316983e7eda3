"""What a printer's answers mean for the user (no Qt).

Camera state (spec §8.6): the Printer Status (2110,0010) with its Printer Status Info
(2110,0020) — or a print job's Execution Status / Execution Status Info — gives the message
the status bar shows and the camera symbol: idle, interact (the user has to react soon) or
stopped (the print queue of that camera stops). The values of §8.6.1 are in
resources/spec/printer_status_info.tsv; any other value follows §8.6.2.

DIMSE statuses (spec §4.2.1.3.7, Tables 4-30 to 4-39): how the print SCU handles each
response status of a print message, and a sentence for the technologist
(resources/spec/print_statuses.tsv).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from app.resources import read_tsv

SYMBOLS = ("idle", "interact", "stopped")  # from harmless to worst

# Spec §8.6.2: a Printer Status Info / Execution Status Info not in §8.6.1 (they are defined
# terms a manufacturer may extend) — with WARNING the status bar shows "Camera info: <info>"
# and the camera symbol is interact; with FAILURE the message says so and the camera's queue
# stops. (§8.6.2 leaves NORMAL out: shown like WARNING's message, the camera stays idle.)
UNKNOWN_INFO_MESSAGE = "Camera info: {info}"
UNKNOWN_INFO_FAILURE_MESSAGE = "Camera info: {info} Queue stopped."
UNKNOWN_INFO_SYMBOL = {"NORMAL": "idle", "WARNING": "interact", "FAILURE": "stopped"}

# Print messages the reference gives no status table for: their statuses are the DICOM ones
# (table "PS3.4") or classed by range.
UNTABLED_MESSAGES = ("printer-get", "delete", "film-session-delete", "film-box-delete", "presentation-lut-delete")

# plain_words for a status in no table: the tables' advice column has nothing to say.
UNLISTED_ADVICE = "Print again; if it fails again, give the status to service."


@dataclass(frozen=True)
class CameraState:
    info: str  # the info value(s) as looked up (upper case, multiple values joined by '\')
    message: str  # the status bar's message
    symbol: str  # idle|interact|stopped
    stops_queue: bool  # the camera's print queue stops (symbol stopped)
    known: bool  # every info value is one of §8.6.1


@dataclass(frozen=True)
class StatusMeaning:
    table: str  # spec table ("4-33"), "PS3.4" (a DICOM status not in the message's table) or
    #             "" (in neither: classed by the code's range)
    message: str  # the message it answers: film-session-create, film-box-create, ...
    code: int
    status: str  # success|warning|failure
    meaning: str
    behaviour: str  # continue|continue-logged|fail-logged


@dataclass(frozen=True)
class _Info:
    description: str
    message: str
    symbol: str


@dataclass(frozen=True)
class _Status:
    table: str
    message: str
    code: int
    status: str
    meaning: str
    behaviour: str
    plain: str
    advice: str


@cache
def status_infos() -> dict[str, _Info]:
    """§8.6.1 by info value (upper case)."""
    infos = {}
    for info, description, message, symbol, _note in read_tsv("spec", "printer_status_info.tsv"):
        if symbol not in SYMBOLS:
            raise ValueError(f"printer_status_info.tsv: {info}: symbol {symbol!r} is not one of {SYMBOLS}")
        infos[info.strip().upper()] = _Info(description, message, symbol)
    return infos


@cache
def _statuses() -> tuple[dict[tuple[str, int], _Status], dict[int, _Status], dict[str, str]]:
    """(rows by (message, code), PS3.4 rows by code, table id by message)."""
    by_message: dict[tuple[str, int], _Status] = {}
    general: dict[int, _Status] = {}
    tables: dict[str, str] = {}
    for table, message, code, status, meaning, behaviour, plain, advice in read_tsv("spec", "print_statuses.tsv"):
        row = _Status(table, message, int(code, 16), status, meaning, behaviour,
                      "" if plain == "-" else plain, "" if advice == "-" else advice)
        if table == "PS3.4":
            general[row.code] = row
        else:
            tables.setdefault(message, table)
            by_message[(message, row.code)] = row
    return by_message, general, tables


def message_keys() -> list[str]:
    """The print messages of Tables 4-30 to 4-39 (film-session-create, ...)."""
    return list(_statuses()[2])


def _one(printer_status: str, value: str) -> tuple[str, str, bool]:
    """(message, symbol, known) of one info value (upper case)."""
    row = status_infos().get(value)
    if row is not None:  # the table is authoritative, whatever the Printer Status says
        return row.message, row.symbol, True
    if printer_status == "FAILURE":
        return UNKNOWN_INFO_FAILURE_MESSAGE.format(info=value), "stopped", False
    return UNKNOWN_INFO_MESSAGE.format(info=value), UNKNOWN_INFO_SYMBOL.get(printer_status, "interact"), False


def camera_state(printer_status: str, info: str) -> CameraState:
    """The camera state for Printer Status ``printer_status`` (NORMAL, WARNING, FAILURE; the
    same for a job's Execution Status) and its info ``info`` (spec §8.6). Several info
    values ("A\\B") give the worst symbol among them and their messages one after the
    other. Without info: NORMAL is the NORMAL row; WARNING / FAILURE (or an unknown status)
    is shown by §8.6.2 with the status itself as the info. An unknown Printer Status is
    taken as WARNING."""
    status = (printer_status or "").strip().upper() or "NORMAL"
    values = [v.strip().upper() for v in (info or "").split("\\") if v.strip()]
    if not values:
        values = ["NORMAL"] if status == "NORMAL" else [status]
    messages: list[str] = []
    symbol, known = "idle", True
    for value in values:
        message, one_symbol, one_known = _one(status, value)
        if message and message not in messages:
            messages.append(message)
        if SYMBOLS.index(one_symbol) > SYMBOLS.index(symbol):
            symbol = one_symbol
        known = known and one_known
    return CameraState("\\".join(values), " ".join(messages), symbol, symbol == "stopped", known)


def classify(code: int) -> tuple[str, str]:
    """(status, behaviour) of a DIMSE status by its range (PS3.7 Annex C): 0000 success;
    0001 and Bxxx warnings, go on, logged; anything else fails the print."""
    if code == 0:
        return "success", "continue"
    if code == 0x0001 or 0xB000 <= code <= 0xBFFF:
        return "warning", "continue-logged"
    return "failure", "fail-logged"


def dimse_status(message_key: str, code: int) -> StatusMeaning:
    """What status ``code`` in the answer to print message ``message_key`` means: its row in
    the message's table (4-30 ... 4-39); else the DICOM status it is (table "PS3.4"); else
    classed by its range. The messages of UNTABLED_MESSAGES have no table of their own."""
    by_message, general, tables = _statuses()
    if message_key not in tables and message_key not in UNTABLED_MESSAGES:
        raise ValueError(f"print message {message_key!r} is not one of {', '.join([*tables, *UNTABLED_MESSAGES])}")
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"status {code} is not a 16-bit DIMSE status")
    row = by_message.get((message_key, code)) or general.get(code)
    if row is not None:
        return StatusMeaning(row.table, message_key, code, row.status, row.meaning, row.behaviour)
    status, behaviour = classify(code)
    where = f"not in Table {tables[message_key]}" if message_key in tables else f"no table for {message_key}"
    return StatusMeaning("", message_key, code, status, f"status 0x{code:04X} ({where})", behaviour)


def plain_words(meaning: StatusMeaning) -> str:
    """A sentence for the technologist: what the printer did, why (with the status code),
    and what to do about it."""
    by_message, general, _tables = _statuses()
    code = f"{meaning.code:04X}"
    if meaning.status == "success":
        return f"The printer accepted the film (status {code})."
    if meaning.table == "PS3.4":
        row = general.get(meaning.code)
    else:
        row = by_message.get((meaning.message, meaning.code))
        if row is not None and row.table != meaning.table:
            row = None
    if meaning.status == "failure":
        lead = "The printer refused the film"
        if row is None or not row.plain:
            return f"{lead} with a status the print tables do not describe (status {code}). {UNLISTED_ADVICE}"
    else:
        lead = "The printer accepted the film with a warning"
        if row is None or not row.plain:
            return f"{lead} the print tables do not describe (status {code})."
    text = f"{lead}: {row.plain} (status {code})."
    return f"{text} {row.advice}" if row.advice else text
