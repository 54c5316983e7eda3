"""DIMSE-C messages encoded directly and sent as whole P-DATA-TF PDUs.

pynetdicom turns every message primitive into a pydicom Dataset, validates and encodes it
(0.3-0.5 ms per message), then cuts the data set into PDVs, makes a P_DATA primitive and a
P_DATA_TF PDU object per fragment and hands each through its state machine (another few
milliseconds for a CT image at 16 kB PDUs: most of a C-MOVE sub-operation's time). Here
the Command Set is written from pynetdicom's own command tables (which elements, in which
order) by app.dicom.element_writer, and the command and data set go out as ready-made
P-DATA-TF PDUs (PS3.8 §9.3.5, E.2) in one P-DATA request, so the state machine and the
socket see one write per message. tests/unit/test_direct_messages.py holds the bytes
against pynetdicom's encoder. Anything unusual (an Offending Element, handlers bound to
EVT_DIMSE_SENT for logging, a data set streamed from a file) goes through pynetdicom.

Data sets can come pre-encoded: C-FIND identifiers (``PreEncoded``) and stored instances sent
as they are on disk (app.net.storage's ``StoredInstance``): pynetdicom's ``encode`` is wrapped
so that it asks them for their bytes.
"""

from __future__ import annotations

import struct

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import association as _association
from pynetdicom import evt
from pynetdicom import service_class as _service_class
from pynetdicom.dimse import _RQ_TO_MESSAGE, _RSP_TO_MESSAGE, DIMSEServiceProvider
from pynetdicom.dimse_messages import _COMMAND_SET_KEYWORDS, _DATASET_KEYWORDS, _MESSAGE_TYPES
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_GET, C_MOVE, C_STORE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

from app.dicom.element_writer import Element, dataset_bytes, element, encodings_of

_original_send_msg = DIMSEServiceProvider.send_msg
_original_encode = _service_class.encode
_original_from_primitive = P_DATA_TF.from_primitive
_original_pdu_encode = P_DATA_TF.encode

_DIRECT = (C_STORE, C_ECHO, C_FIND, C_MOVE, C_GET)
_FIELD = {name: field for field, (name, _) in _MESSAGE_TYPES.items()}
_COMMAND_VR = {kw: (tag_for_keyword(kw), dictionary_VR(kw))
               for kws in _COMMAND_SET_KEYWORDS.values() for kw in kws}
_NO_DATA_SET, _DATA_SET = 0x0101, 0x0001
# message control headers (PS3.8 E.2): command or data set, last fragment or not
_COMMAND_LAST, _DATA, _DATA_LAST = 0x03, 0x00, 0x02
_PDV_OVERHEAD = 6  # PDV item length (4) + presentation context ID (1) + control header (1)


def _message_class(primitive):
    table = _RQ_TO_MESSAGE if primitive.MessageIDBeingRespondedTo is None else _RSP_TO_MESSAGE
    return table.get(type(primitive))


def encode_command(primitive) -> tuple[bytes, bytes | None] | None:
    """(Command Set, data set or None) of a DIMSE-C message primitive, as pynetdicom would
    encode them; None when pynetdicom should (AT values, a data set streamed from a file)."""
    if not isinstance(primitive, _DIRECT) or getattr(primitive, "_dataset_path", None):
        return None
    message = _message_class(primitive)
    if message is None:
        return None
    data_keyword = _DATASET_KEYWORDS.get(message.__name__)
    data = getattr(primitive, data_keyword, None) if data_keyword else None
    name = message.__name__.replace("_", "-")
    command = command_bytes(name, lambda keyword: getattr(primitive, keyword, None), data is not None)
    return None if command is None else (command, (data.getvalue() if data is not None else None))


def command_bytes(name: str, value_of, with_data: bool) -> bytes | None:
    """The Command Set of message ``name`` ('C-STORE-RQ' ...): its elements in pynetdicom's
    order, each from ``value_of(keyword)`` (None: left out, as pynetdicom does)."""
    elements = []
    for keyword in _COMMAND_SET_KEYWORDS[name][1:]:  # after the group length
        if keyword == "CommandField":
            value = _FIELD[name]
        elif keyword == "CommandDataSetType":
            value = _DATA_SET if with_data else _NO_DATA_SET
        else:
            value = value_of(keyword)
        if value is None:
            continue
        tag, vr = _COMMAND_VR[keyword]
        if vr == "AT":
            return None
        elements.append((tag, vr, value))
    body = dataset_bytes(elements, True)
    return element(0x00000000, "UL", struct.pack("<I", len(body)), True) + body


def pdata_layout(context_id: int, command: bytes, data_length: int | None, max_pdu: int,
                 buffer: bytearray | None = None) -> tuple[memoryview, list[tuple[int, int]]]:
    """The P-DATA-TF PDUs of one message with the data set's bytes still to be filled in:
    (the PDUs, (offset, length) of each data fragment in them, in order). The command goes
    in one PDV, the data set in fragments that fit the peer's maximum PDU length, in the
    command's PDU when both fit. ``buffer``: reused when large enough (a sender fills it
    straight from the file: no copy of an image's bytes is made on the way to the socket)."""
    fragments: list[int] = []
    together = data_length is not None and (not max_pdu or len(command) + data_length + 2 * _PDV_OVERHEAD <= max_pdu)
    if data_length is not None and not together:
        step = max_pdu - _PDV_OVERHEAD
        fragments = [min(step, data_length - start) for start in range(0, data_length, step)] or [0]
    size = 6 + _PDV_OVERHEAD + len(command) + (_PDV_OVERHEAD + data_length if together else 0) \
        + sum(6 + _PDV_OVERHEAD + n for n in fragments)
    out = memoryview(buffer if buffer is not None and len(buffer) >= size else bytearray(size))[:size]
    slots, pos = [], 0

    def pdu(pdvs: list[tuple[int, bytes | int]]) -> None:
        nonlocal pos
        lengths = [v if isinstance(v, int) else len(v) for _, v in pdvs]
        struct.pack_into(">BBI", out, pos, 0x04, 0, sum(_PDV_OVERHEAD + n for n in lengths))
        pos += 6
        for (control, value), n in zip(pdvs, lengths):
            struct.pack_into(">IBB", out, pos, n + 2, context_id, control)
            pos += _PDV_OVERHEAD
            if isinstance(value, int):
                slots.append((pos, n))
            else:
                out[pos:pos + n] = value
            pos += n

    if together:
        pdu([(_COMMAND_LAST, command), (_DATA_LAST, data_length)])
    else:
        pdu([(_COMMAND_LAST, command)])
        for i, n in enumerate(fragments):
            pdu([(_DATA_LAST if i == len(fragments) - 1 else _DATA, n)])
    return out, slots


def pdata_pdus(context_id: int, command: bytes, data: bytes | None, max_pdu: int) -> bytes:
    """The P-DATA-TF PDUs of one message (pdata_layout, filled)."""
    out, slots = pdata_layout(context_id, command, None if data is None else len(data), max_pdu)
    start = 0
    for pos, n in slots:
        out[pos:pos + n] = data[start:start + n]
        start += n
    return out.obj if len(out) == len(out.obj) else bytes(out)


class RawPData(P_DATA):
    """A P-DATA request whose PDUs are already encoded (one or several, one message)."""

    def __init__(self, raw: bytes):
        super().__init__()
        self.raw = raw


def _from_primitive(self: P_DATA_TF, primitive) -> None:
    if isinstance(primitive, RawPData):
        self._lightbox_raw = primitive.raw
        return
    _original_from_primitive(self, primitive)


def _pdu_encode(self: P_DATA_TF) -> bytes:
    raw = getattr(self, "_lightbox_raw", None)
    return raw if raw is not None else _original_pdu_encode(self)


def _send_msg(self: DIMSEServiceProvider, primitive, context_id: int) -> None:
    assoc = self.assoc
    if getattr(assoc.ae, "lightbox_event_driven", False) and not assoc.get_handlers(evt.EVT_DIMSE_SENT):
        encoded = encode_command(primitive)
        max_pdu = self.maximum_pdu_size or 0
        if encoded is not None and (not max_pdu or len(encoded[0]) + _PDV_OVERHEAD <= max_pdu):
            self.dul.send_pdu(RawPData(pdata_pdus(context_id, *encoded, max_pdu)))
            return
    _original_send_msg(self, primitive, context_id)


class PreEncoded:
    """A response identifier as (tag, VR, value) elements, written by app.dicom.element_writer
    when pynetdicom encodes it; a pydicom Dataset only when one is needed (Big Endian, the
    identifier log of ``--verbose``)."""

    __slots__ = ("elements", "charset")

    def __init__(self, elements: list[Element], charset: str | list[str] | None):
        self.elements, self.charset = elements, charset

    def _all(self) -> list[Element]:
        if not self.charset:
            return self.elements
        return [*self.elements, (0x00080005, "CS", self.charset)]

    def lightbox_encoded(self, implicit: bool, little: bool, deflated: bool) -> bytes | None:
        if not little or deflated:
            return None
        charset = tuple(self.charset) if isinstance(self.charset, list) else self.charset
        return dataset_bytes(self._all(), implicit, encodings_of(charset))

    def lightbox_dataset(self) -> Dataset:
        def build(elements) -> Dataset:
            ds = Dataset()
            for tag, vr, value in elements:
                ds.add_new(tag, vr, Sequence([build(item) for item in value]) if vr == "SQ" else value)
            return ds
        return build(self._all())

    def __iter__(self):  # pynetdicom's pretty_dataset, for the identifier log
        return iter(self.lightbox_dataset())


def _encode(ds, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False):
    """pynetdicom's data set encoder, asking a data set that knows its own bytes for them
    (PreEncoded; app.net.stored_bytes' StoredInstance): ``lightbox_encoded`` gives them, or
    None when it cannot in that encoding, and then ``lightbox_dataset`` a Dataset to encode."""
    own = getattr(type(ds), "lightbox_encoded", None)
    if own is not None:
        data = own(ds, is_implicit_vr, is_little_endian, deflated)
        if data is not None:
            return data
        ds = ds.lightbox_dataset()
    return _original_encode(ds, is_implicit_vr, is_little_endian, deflated)


def install() -> None:
    DIMSEServiceProvider.send_msg = _send_msg
    P_DATA_TF.from_primitive = _from_primitive
    P_DATA_TF.encode = _pdu_encode
    _service_class.encode = _encode   # C-FIND identifiers
    _association.encode = _encode     # C-STORE data sets: sub-operations of C-MOVE / C-GET
