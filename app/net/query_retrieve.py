"""Query/Retrieve service, SCP side: C-FIND over the local archive (spec §4.2.1.4.3,
Tables 4-46 to 4-49) for the Patient Root, Study Root and Patient/Study Only models.

Every request is treated as relational (§4.2.1.4.3.4): any keys at or above the query level;
a key below it is refused (0106). Matching is app.store.query / app.store.matching; a key
the reference only returns ('-' in Table 4-48) given a value is not matched on, and the
responses say so (FF01). At most node.max_matches responses, and the final status is
Success even when clipped (Table 4-49). Names come back in the caller's character set when
it can carry them, otherwise in UTF-8.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import cache

from pydicom.charset import convert_encodings, encode_string
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from app.dicom import statuses
from app.dicom.qr_attributes import table_4_48
from app.dicom.transfer_syntaxes import UNCOMPRESSED
from app.net.direct_messages import PreEncoded
from app.net.storage import Instance, outgoing_contexts, to_send
from app.store import query

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Model:
    name: str
    find: str
    move: str
    get: str
    levels: tuple[str, ...]


# Table 4-46 / 4-50 (and C-GET, which the reference lacks): the information models
MODELS = (
    Model("patient", "1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.1.2", "1.2.840.10008.5.1.4.1.2.1.3",
          ("PATIENT", "STUDY", "SERIES", "IMAGE")),
    Model("study", "1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.2.2.2", "1.2.840.10008.5.1.4.1.2.2.3",
          ("STUDY", "SERIES", "IMAGE")),
    Model("patient-study", "1.2.840.10008.5.1.4.1.2.3.1", "1.2.840.10008.5.1.4.1.2.3.2",
          "1.2.840.10008.5.1.4.1.2.3.3", ("PATIENT", "STUDY")),
)
BY_FIND = {m.find: m for m in MODELS}
DB_LEVEL = {"PATIENT": "patient", "STUDY": "study", "SERIES": "series", "IMAGE": "instance"}
# the unique keys of each level, returned in every response at or below it
UNIQUE = {"patient": "PatientID", "study": "StudyInstanceUID", "series": "SeriesInstanceUID",
          "instance": "SOPInstanceUID"}
# Table 4-47: relational queries negotiated for these
RELATIONAL = (MODELS[0].find, MODELS[1].find)
NOT_KEYS = ("QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle", "InstanceAvailability")


def find_contexts() -> list[tuple[str, tuple[str, ...]]]:
    return [(m.find, UNCOMPRESSED) for m in MODELS]


def handle_extended(event) -> dict:
    """SOP Class Extended Negotiation: relational queries are supported (Table 4-47)."""
    return {uid: b"\x01" for uid in event.app_info if uid in RELATIONAL}


@cache
def _matching_of() -> dict[str, str]:
    """Index column -> how Table 4-48 matches it (wildcard | universal | return)."""
    out: dict[str, str] = {}
    for a in table_4_48():
        out.setdefault(a.column, a.matching)
    return out


class Refused(Exception):
    def __init__(self, status: int, comment: str):
        super().__init__(comment)
        self.status, self.comment = status, comment


def _failure(status: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


@dataclass
class FindRequest:
    level: str                      # index level: patient, study, series, instance
    keys: dict[str, str]            # index column -> matching value
    unsupported: list[str]          # keys given a value that are not matched on (FF01)
    computed: frozenset = frozenset()  # computed attributes asked for (counts cost a query)


def parse_request(identifier: Dataset, model: Model) -> FindRequest:
    """The query level and matching keys of a C-FIND identifier; Refused with the status of
    Table 4-49 / §4.2.1.4.3.4 if it cannot be answered."""
    level = _text(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in model.levels:
        raise Refused(statuses.QUERY_FAILED, f"Query/Retrieve Level '{level}' is not one of "
                                             f"{'/'.join(model.levels)} of this model")
    db_level = DB_LEVEL[level]
    depth = query.LEVELS.index(db_level)
    matching_of = _matching_of()
    keys: dict[str, str] = {}
    unsupported: list[str] = []
    computed: set[str] = set()
    for elem in identifier:
        kw = elem.keyword
        if not kw or kw in NOT_KEYS or elem.tag.is_private or elem.tag.element == 0:
            continue
        if elem.VR == "SQ":
            items = list(elem.value or [])
            for item in items[:1]:  # sequence matching: the item's keys, as columns 'Seq_Item'
                for sub in item:
                    column = f"{kw}_{sub.keyword}"
                    if column in matching_of:
                        _check_level(column, depth, level)
                        keys[column] = _text(sub.value)
                    elif _text(sub.value):
                        unsupported.append(column)
            continue
        value = _text(elem.value)
        if kw in query.COMPUTED_AT:
            _check_level(kw, depth, level)
            computed.add(kw)
            if kw == "ModalitiesInStudy":  # matched (list of modalities), Table 4-48
                keys[kw] = value
            elif value.strip() not in ("", "*"):
                unsupported.append(kw)
            continue
        how = matching_of.get(kw)
        if how is None:  # not kept in the index: returned empty
            if value.strip():
                unsupported.append(kw)
            continue
        _check_level(kw, depth, level)
        if how == "return":
            if value.strip():
                unsupported.append(kw)
            continue
        keys[kw] = value
    return FindRequest(db_level, keys, unsupported, frozenset(computed))


def _check_level(column: str, depth: int, level: str) -> None:
    owner = query.owner_level(column)
    if query.LEVELS.index(owner) > depth:
        raise Refused(statuses.INVALID_ATTRIBUTE,
                      f"{column.split('_')[0]} is a {owner.upper().replace('INSTANCE', 'IMAGE')} level key "
                      f"in a {level} level query")


def response_charset(requested, values) -> str | list[str] | None:
    """The caller's Specific Character Set if it can carry every value, else UTF-8."""
    texts = [v for v in values if isinstance(v, str) and not v.isascii()]
    requested = [c for c in (requested if isinstance(requested, (list, tuple)) else [requested]) if c] \
        if requested else []
    if not texts:
        return requested or None
    if requested:
        try:
            encodings = convert_encodings(requested)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                for t in texts:
                    encode_string(t, encodings)
            return requested if len(requested) > 1 else requested[0]
        except Exception:  # noqa: BLE001 - a character it cannot carry
            pass
    return "ISO_IR 192"


def _element_value(vr: str, value):
    if value in (None, ""):
        return None
    if vr in ("US", "UL", "SS", "SL"):
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return str(value)


class Responder:
    """The pending responses of one C-FIND request. What to return is worked out once from
    the identifier; each match then gives its elements: every key asked for (its stored
    value or empty), the unique keys down to the level, Retrieve AE Title and Instance
    Availability, in the caller's character set when it can carry them (else UTF-8)."""

    def __init__(self, identifier: Dataset, db_level: str, retrieve_aet: str):
        self.flat: list[tuple[int, str, str]] = []                       # (tag, VR, column)
        self.sequences: list[tuple[int, list[tuple[int, str, str]]]] = []  # (tag, item's)
        asked = set()
        for elem in identifier:
            kw = elem.keyword
            if not kw or kw in NOT_KEYS or elem.tag.is_private or elem.tag.element == 0:
                continue
            asked.add(kw)
            if elem.VR == "SQ":
                template = list(elem.value or [])
                subs = [(int(sub.tag), sub.VR, f"{kw}_{sub.keyword}") for sub in template[0]] if template else []
                self.sequences.append((int(elem.tag), subs))
            else:
                self.flat.append((int(elem.tag), elem.VR, kw))
        self.unique = [(int(Tag(UNIQUE[lv])), UNIQUE[lv]) for lv in query.LEVELS[:query.LEVELS.index(db_level) + 1]
                       if UNIQUE[lv] not in asked]
        requested = identifier.get("SpecificCharacterSet")
        self.requested = list(requested) if isinstance(requested, (list, tuple)) or \
            type(requested).__name__ == "MultiValue" else requested
        self.fixed = [(0x00080052, "CS", _text(identifier.get("QueryRetrieveLevel")).strip().upper()),
                      (0x00080054, "AE", retrieve_aet), (0x00080056, "CS", "ONLINE")]

    def response(self, row: dict) -> PreEncoded:
        elements: list = list(self.fixed)
        values = []
        for tag, vr, kw in self.flat:
            value = row.get(kw)
            elements.append((tag, vr, _element_value(vr, value)))
            values.append(value)
        for tag, subs in self.sequences:
            found = [(sub_tag, sub_vr, _text(row.get(col)).split("\\") if row.get(col) else [])
                     for sub_tag, sub_vr, col in subs]
            items = []
            for i in range(max((len(parts) for _, _, parts in found), default=0)):
                items.append([(sub_tag, sub_vr, parts[i] if i < len(parts) else None)
                              for sub_tag, sub_vr, parts in found])
                values += [parts[i] if i < len(parts) else "" for _, _, parts in found]
            elements.append((tag, "SQ", items))
        for tag, kw in self.unique:
            if row.get(kw):
                elements.append((tag, "UI" if kw != "PatientID" else "LO", row[kw]))
                values.append(row[kw])
        return PreEncoded(elements, response_charset(self.requested, values))


def handle_find(event, archive):
    """EVT_C_FIND: pending responses for the matches (at most node.max_matches), then
    Success; a failure status of Table 4-49 for what cannot be answered."""
    assoc = event.assoc
    caller = assoc.requestor.ae_title
    model = BY_FIND.get(str(event.request.AffectedSOPClassUID))
    aet = archive.settings["services.retrieve.aet"] or assoc.acceptor.ae_title
    try:
        identifier = event.identifier
        if model is None:
            raise Refused(statuses.QUERY_FAILED, "not a Query/Retrieve FIND SOP class")
        request = parse_request(identifier, model)
        responder = Responder(identifier, request.level, aet)
    except Refused as exc:
        log.warning("C-FIND from %s refused (0x%04X): %s", caller, exc.status, exc.comment)
        yield _failure(exc.status, exc.comment), None
        return
    except Exception as exc:  # noqa: BLE001 - a malformed identifier
        log.warning("C-FIND from %s: the identifier cannot be read: %s", caller, exc)
        yield _failure(statuses.QUERY_FAILED, f"identifier cannot be read: {exc}"), None
        return
    limit = archive.settings["node.max_matches"]
    pending = statuses.PENDING_WARNING if request.unsupported else statuses.PENDING
    if request.unsupported:
        log.info("C-FIND from %s: not matched on %s (returned only)", caller, ", ".join(request.unsupported))
    sent = 0
    try:
        for row in query.iter_matches(archive.engine, request.level, request.keys, limit=limit,
                                      append_star=frozenset({"PatientName"}), computed=request.computed):
            if event.is_cancelled:
                log.info("C-FIND from %s cancelled after %d matches", caller, sent)
                yield statuses.CANCELLED, None
                return
            yield pending, responder.response(row)
            sent += 1
    except query.QueryError as exc:
        log.warning("C-FIND from %s refused: %s", caller, exc)
        yield _failure(statuses.QUERY_FAILED, str(exc)), None
        return
    except Exception as exc:  # noqa: BLE001 - the database failed: Table 4-49 C001
        log.exception("C-FIND from %s: the archive query failed", caller)
        reason = getattr(exc, "orig", None) or exc  # the database's own words, not SQLAlchemy's wrapping
        yield _failure(statuses.QUERY_FAILED, f"archive query failed: {reason}"), None
        return
    log.info("C-FIND from %s at %s level: %d match(es)%s", caller, request.level, sent,
             f" (clipped at node.max_matches = {limit})" if sent >= limit else "")


# -- retrieve: C-MOVE (Tables 4-50 to 4-52) and C-GET ----------------------------------------
BY_MOVE = {m.move: m for m in MODELS}
BY_GET = {m.get: m for m in MODELS}
UNIQUE_OF_LEVEL = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
                   "IMAGE": "SOPInstanceUID"}


def retrieve_contexts() -> list[tuple[str, tuple[str, ...]]]:
    return [(uid, UNCOMPRESSED) for m in MODELS for uid in (m.move, m.get)]


def instances_to_retrieve(archive, identifier: Dataset, model: Model) -> list[Instance]:
    """The instances a C-MOVE / C-GET identifier names: the unique key of its level (a list
    allowed) and the keys above it. Refused (A900) without the level's unique key."""
    level = _text(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in model.levels:
        raise Refused(statuses.DATASET_DOES_NOT_MATCH, f"Query/Retrieve Level '{level}' is not one of "
                                                       f"{'/'.join(model.levels)} of this model")
    unique = UNIQUE_OF_LEVEL[level]
    if not _text(identifier.get(unique, "")).strip():
        raise Refused(statuses.DATASET_DOES_NOT_MATCH, f"a {level} level retrieve needs {unique}")
    request = parse_request(identifier, model)
    out = []
    for row in query.iter_matches(archive.engine, "instance", request.keys, computed=frozenset()):
        out.append(Instance(str(archive.files.absolute(row["path"])), row.get("SOPClassUID") or "",
                            row.get("SOPInstanceUID") or "", row.get("TransferSyntaxUID") or ""))
    return out


def handle_move(event, archive):
    """EVT_C_MOVE: the destination must be a configured remote node (else A801); the
    instances go to it over a new association in a transfer syntax it accepts; pynetdicom
    sends the pending responses with the counts of Table 4-51 and the final status."""
    from pynetdicom import evt

    from app.net.remote import association_args
    from app.store import nodes
    caller = event.assoc.requestor.ae_title
    destination = str(event.move_destination or "").strip()
    node = next((n for n in nodes.list_nodes(archive.engine) if n.aet == destination), None)
    if node is None:
        log.warning("C-MOVE from %s refused: move destination %r is not a configured remote node "
                    "(add it with 'lightbox nodes add')", caller, destination)
        yield None, None
        return
    model = BY_MOVE.get(str(event.request.AffectedSOPClassUID))
    refused = None
    try:
        found = instances_to_retrieve(archive, event.identifier, model)
    except Refused as exc:
        refused, found = exc, []
    except Exception as exc:  # noqa: BLE001 - unreadable identifier or database failure
        log.exception("C-MOVE from %s: the instances cannot be listed", caller)
        refused, found = Refused(statuses.QUERY_FAILED, f"cannot list the instances: {exc}"), []
    accepted: dict = {}
    try:
        kwargs = association_args(archive.settings, node)
    except ConnectionError as exc:
        log.error("C-MOVE from %s: cannot open an association to %s: %s", caller, destination, exc)
        yield None, None
        return
    kwargs["contexts"] = outgoing_contexts(found, node) if found else [build_default_context()]
    kwargs["evt_handlers"] = [(evt.EVT_ACCEPTED, lambda e: accepted.__setitem__("assoc", e.assoc))]
    yield node.host, node.port, kwargs
    if refused is not None:
        log.warning("C-MOVE from %s refused (0x%04X): %s", caller, refused.status, refused.comment)
        yield 1
        yield _failure(refused.status, refused.comment), None
        return
    log.info("C-MOVE from %s: %d instance(s) to %s", caller, len(found), destination)
    yield len(found)
    for instance in found:
        if event.is_cancelled:
            log.info("C-MOVE from %s to %s cancelled", caller, destination)
            yield statuses.CANCELLED, None
            return
        assoc = accepted.get("assoc")
        ds = to_send(instance, assoc.accepted_contexts if assoc else [], node)
        yield statuses.PENDING, ds if ds is not None else "unreadable"  # not a dataset: a failure


def build_default_context():
    from pynetdicom import build_context
    return build_context("1.2.840.10008.1.1")  # Verification: a valid proposal with nothing to send


def handle_get(event, archive):
    """EVT_C_GET: the instances go back over the caller's own association (it proposed the
    storage contexts with the SCP role), in a transfer syntax it accepted."""
    caller = event.assoc.requestor.ae_title
    model = BY_GET.get(str(event.request.AffectedSOPClassUID))
    try:
        found = instances_to_retrieve(archive, event.identifier, model)
    except Refused as exc:
        log.warning("C-GET from %s refused (0x%04X): %s", caller, exc.status, exc.comment)
        yield 1
        yield _failure(exc.status, exc.comment), None
        return
    except Exception as exc:  # noqa: BLE001
        log.exception("C-GET from %s: the instances cannot be listed", caller)
        yield 1
        yield _failure(statuses.QUERY_FAILED, f"cannot list the instances: {exc}"), None
        return
    log.info("C-GET from %s: %d instance(s)", caller, len(found))
    yield len(found)
    ours = [cx for cx in event.assoc.accepted_contexts if cx.as_scu]
    for instance in found:
        if event.is_cancelled:
            log.info("C-GET from %s cancelled", caller)
            yield statuses.CANCELLED, None
            return
        ds = to_send(instance, ours)
        yield statuses.PENDING, ds if ds is not None else "unreadable"


# -- SCU: querying a remote node (spec §4.2.1.3.4, Tables 4-14 to 4-18) ------------------------
SCU_LEVELS = {"patient": "PATIENT", "study": "STUDY", "series": "SERIES", "image": "IMAGE"}
MODEL_BY_NAME = {m.name: m for m in MODELS}
# the unique key of the level above, which a hierarchical query must give (PS3.4 C.4.1.2.1)
_PARENT_KEY = {"SERIES": "StudyInstanceUID", "IMAGE": "SeriesInstanceUID"}


class QueryFailed(Exception):
    """A remote query or retrieve that did not succeed, in words for the user."""


def scu_identifier(level: str, keys: dict[str, str]) -> tuple[Dataset, bool]:
    """(identifier, relational needed): the keys given, plus Table 4-18's return keys of the
    level (study keys too for a series query, so results can be shown by study). Specific
    Character Set ISO_IR 192 only when a value is not ASCII."""
    from pydicom.datadict import dictionary_VR

    from app.dicom.qr_attributes import table_4_18
    qr_level = SCU_LEVELS[level]
    ds = Dataset()
    ds.QueryRetrieveLevel = qr_level
    wanted = {"study": ("study",), "series": ("study", "series"), "image": ("study", "series"),
              "patient": ()}[level]
    for attr in table_4_18():
        if attr.level in wanted and len(attr.path) == 1:
            setattr(ds, attr.path[0], None)
    if qr_level == "IMAGE":
        ds.SOPInstanceUID, ds.SOPClassUID, ds.InstanceNumber = None, None, None
    if qr_level == "PATIENT":
        ds.PatientName = ds.PatientID = ds.PatientBirthDate = ds.PatientSex = None
    for key, value in keys.items():
        kw = query.keyword_of(key)
        vr = dictionary_VR(kw)
        setattr(ds, kw, (int(value) if value not in ("", None) else None) if vr in ("US", "UL") else value)
    if any(isinstance(v, str) and not v.isascii() for v in keys.values()):
        ds.SpecificCharacterSet = "ISO_IR 192"
    parent = _PARENT_KEY.get(qr_level)
    relational = bool(parent) and not str(ds.get(parent, "") or "").strip()
    return ds, relational


def find_remote(settings, node, level: str, keys: dict[str, str], *, model: str = "study",
                on_pending=None, cancelled=lambda: False) -> tuple[list[Dataset], str]:
    """C-FIND ``node`` (app.store.nodes.RemoteNode): (matches, note). Relational queries are
    negotiated when the keys need them (Table 4-15); statuses per Table 4-16: pending answers
    are collected (``on_pending(count)`` tells the caller), FF01 is noted, anything else
    raises QueryFailed with the reason; a timeout or abort too (Table 4-17)."""
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
    chosen = MODEL_BY_NAME[model]
    if SCU_LEVELS[level] not in chosen.levels:
        raise QueryFailed(f"the {model} root model has no {level} level ({', '.join(chosen.levels).lower()})")
    identifier, relational = scu_identifier(level, keys)
    ext = []
    if relational and chosen.find in RELATIONAL:
        item = SOPClassExtendedNegotiation()
        item.sop_class_uid, item.service_class_application_information = chosen.find, b"\x01"
        ext.append(item)
    matches, note = c_find(settings, node, chosen.find, identifier, ext=ext, on_pending=on_pending,
                           cancelled=cancelled)
    if relational and not ext:
        note = (note + "; " if note else "") + "relational query (no parent key) in a model without relational support"
    return matches, note


def c_find(settings, node, sop_class: str, identifier: Dataset, *, ext=None, on_pending=None,
           cancelled=lambda: False) -> tuple[list[Dataset], str]:
    """One C-FIND of ``sop_class`` to ``node`` (a query/retrieve model, the modality
    worklist): (matches, note). Pending answers are collected (``on_pending(count)`` tells
    the caller); FF01 is noted; a failure status, a timeout or an abort raises QueryFailed
    with the reason (Tables 4-16/4-17, 4-25/4-26)."""
    from pynetdicom import build_context

    from app.net.remote import AssociationFailed, open_association, scu_ae
    ae = scu_ae(settings)
    ae.dimse_timeout = settings["timeouts.query"]
    try:
        assoc = open_association(ae, settings, node, [build_context(sop_class, list(UNCOMPRESSED))],
                                 **({"ext_neg": ext} if ext else {}))
    except AssociationFailed as exc:
        raise QueryFailed(str(exc)) from None
    matches: list[Dataset] = []
    note = ""
    try:
        for status, ds in assoc.send_c_find(identifier, sop_class):
            if not status or "Status" not in status:
                raise QueryFailed(f"{node.aet} did not answer the query in time (timeouts.query) "
                                  "or dropped the association")
            code = int(status.Status)
            if code in (statuses.PENDING, statuses.PENDING_WARNING):
                if ds is not None:
                    matches.append(ds)
                if code == statuses.PENDING_WARNING:
                    note = (f"{node.aet} did not match on some optional keys (status FF01): there may be more "
                            "results than asked for")
                if on_pending:
                    on_pending(len(matches))
                if cancelled():
                    assoc.send_c_cancel(1, context_id=assoc.accepted_contexts[0].context_id)
                continue
            if code == statuses.SUCCESS:
                break
            if code == statuses.CANCELLED:
                note = "cancelled"
                break
            comment = str(status.get("ErrorComment", "") or "").strip()
            raise QueryFailed(f"{node.aet} refused the query: status 0x{code:04X}"
                              + (f" ({comment})" if comment else "") + _find_failure_hint(code))
    finally:
        if assoc.is_established:
            assoc.release()
    return matches, note


def _find_failure_hint(code: int) -> str:
    if code == 0xA700:
        return ": the remote node is out of resources, try again later"
    if 0xA900 <= code <= 0xA9FF:
        return ": the remote node does not understand these keys; try fewer"
    if 0xC000 <= code <= 0xCFFF:
        return ": the remote node could not process the query"
    return ""


# -- SCU: retrieving from a remote node (spec §4.2.1.3.5, Tables 4-19 to 4-21; C-GET beyond it) ---
MOVE_DESTINATION_UNKNOWN = 0xA801


@dataclass
class RetrieveProgress:
    remaining: int | None = None
    completed: int = 0
    failed: int = 0
    warning: int = 0

    def update(self, status) -> None:
        for field, key in (("remaining", "NumberOfRemainingSuboperations"),
                           ("completed", "NumberOfCompletedSuboperations"),
                           ("failed", "NumberOfFailedSuboperations"), ("warning", "NumberOfWarningSuboperations")):
            value = status.get(key)
            if value is not None:
                setattr(self, field, int(value))

    @property
    def total(self) -> int:
        return self.completed + self.failed + self.warning + (self.remaining or 0)


def our_address(node) -> str:
    """The address this machine has on the way to ``node`` (what it must configure for us)."""
    import socket
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((node.host, node.port or 104))
            return s.getsockname()[0]
    except OSError:
        return socket.gethostname()


def retrieve_remote(settings, ingest, node, study: str, series: str | None = None, *, method: str = "move",
                    on_progress=None, cancelled=lambda: False) -> RetrieveProgress:
    """C-MOVE (to our own storage AE, which must be listening: the node of the GUI or of
    'lightbox node', or one the caller started) or C-GET (the instances come back over the
    same association, into ``ingest``, the one store pipeline) of a study or series of
    ``node``. Pending responses feed ``on_progress(RetrieveProgress)``; the final status
    follows Table 4-20: QueryFailed with what to do for anything but success (A801: what the
    remote must configure for us; B000: how many failed)."""
    from pynetdicom import build_context, build_role, evt

    from app.dicom.sop_classes import storage_scp_classes
    from app.dicom.transfer_syntaxes import STORAGE_SCP
    from app.net import storage
    from app.net.remote import AssociationFailed, open_association, scu_ae
    model = MODEL_BY_NAME["study"]
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES" if series else "STUDY"
    identifier.StudyInstanceUID = study
    if series:
        identifier.SeriesInstanceUID = series
    ae = scu_ae(settings)
    ae.dimse_timeout = settings["timeouts.move_response"]
    extra: dict = {}
    if method == "get":
        classes = storage_scp_classes()[:127]
        contexts = [build_context(model.get, list(UNCOMPRESSED))]
        contexts += [build_context(uid, list(STORAGE_SCP)) for uid in classes]
        extra = {"ext_neg": [build_role(uid, scp_role=True) for uid in classes],
                 "evt_handlers": [(evt.EVT_C_STORE, lambda event: storage.handle_store(event, ingest))]}
    else:
        contexts = [build_context(model.move, list(UNCOMPRESSED))]
    try:
        assoc = open_association(ae, settings, node, contexts, **extra)
    except AssociationFailed as exc:
        raise QueryFailed(str(exc)) from None
    progress = RetrieveProgress()
    final = None
    our_aet, our_port = settings.service_address("storage")
    try:
        responses = (assoc.send_c_get(identifier, model.get) if method == "get"
                     else assoc.send_c_move(identifier, our_aet, model.move))
        cancel_sent = False
        for status, _ in responses:
            if not status or "Status" not in status:
                raise QueryFailed(f"{node.aet} did not answer the retrieve in time (timeouts.move_response) "
                                  f"or dropped the association: does it know this workstation ({ae.ae_title}) "
                                  "as a DICOM node allowed to retrieve?")
            progress.update(status)
            code = int(status.Status)
            if code in (statuses.PENDING, statuses.PENDING_WARNING):
                if on_progress:
                    on_progress(progress)
                if cancelled() and not cancel_sent:
                    assoc.send_c_cancel(1, context_id=assoc.accepted_contexts[0].context_id)
                    cancel_sent = True
                continue
            final = status
    finally:
        if assoc.is_established:
            assoc.release()
    code = int(final.Status) if final is not None else None
    if on_progress:
        on_progress(progress)
    if code == statuses.SUCCESS:
        return progress
    comment = str(final.get("ErrorComment", "") or "").strip() if final is not None else ""
    configure = (f"add AE title {our_aet}, host {our_address(node)}, port {our_port} to its DICOM nodes "
                 "(modalities), then retry" + ("; or retrieve with C-GET, which needs no configuration there "
                                               "(--method get)" if "get" in node.roles else ""))
    if code == MOVE_DESTINATION_UNKNOWN:
        raise QueryFailed(f"{node.aet} does not know this workstation as a move destination: {configure}")
    if code == statuses.CANCELLED:
        raise QueryFailed(f"cancelled after {progress.completed} instance(s)")
    if code is not None and 0xB000 <= code <= 0xBFFF:
        raise QueryFailed(f"{progress.failed} of {progress.total} instance(s) could not be retrieved from {node.aet} "
                          f"(status 0x{code:04X}{', ' + comment if comment else ''}); {progress.completed} arrived")
    text = f"{node.aet} refused the retrieve: status 0x{code:04X}" + (f" ({comment})" if comment else "")
    if method == "move" and not progress.completed:  # some PACS say so with a general failure
        text += f". If it does not know this workstation as a move destination: {configure}"
    raise QueryFailed(text)


def identifier_values(ds: Dataset) -> dict:
    """A response identifier as keyword -> text, in its character set (several values
    joined by backslashes; sequences and empty values left out)."""
    out = {}
    for elem in ds:
        if elem.keyword and elem.VR != "SQ" and elem.keyword != "SpecificCharacterSet":
            value = elem.value
            if value is None or value == "":
                continue
            out[elem.keyword] = "\\".join(map(str, value)) if elem.VM > 1 else str(value)
    return out


def merge_studies(found: dict[str, list[dict]]) -> list[dict]:
    """The "enterprise query" done from the workstation: study rows of several nodes
    (node name -> rows keyed by keyword) merged by Study Instance UID, each with the nodes
    that hold it (``_nodes``, in the order given), the first node's values winning and
    the others filling what it left empty; newest study first."""
    merged: dict[str, dict] = {}
    for node_name, rows in found.items():
        for row in rows:
            uid = row.get("StudyInstanceUID")
            if not uid:
                continue
            into = merged.setdefault(uid, {"_nodes": []})
            into["_nodes"].append(node_name)
            for k, v in row.items():
                if v not in (None, "") and into.get(k) in (None, ""):
                    into[k] = v
    return sorted(merged.values(), key=lambda r: (r.get("StudyDate") or "", r.get("StudyTime") or ""), reverse=True)


