"""C-STORE and C-ECHO responses encoded directly.

pynetdicom turns every response primitive into a pydicom Dataset, validates and encodes it
(some 0.3-0.5 ms per C-STORE, a tenth of a CT image's time over one association). These
two responses have a fixed shape, so we write their Command Set (Implicit VR Little
Endian, PS3.7 §9.3.1.2 / §9.3.5.2, E.1) straight into the P-DATA PDV. Anything unusual
(an Offending Element, handlers bound to EVT_DIMSE_SENT, a tiny peer PDU) goes through
pynetdicom as before.
"""

from __future__ import annotations

import struct

from pynetdicom import evt
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.pdu_primitives import P_DATA

_original_send_msg = DIMSEServiceProvider.send_msg

_COMMAND_FIELD = {C_STORE: 0x8001, C_ECHO: 0x8030}
_NO_DATA_SET = 0x0101
_LAST_COMMAND_FRAGMENT = b"\x03"  # message control header: command, last fragment


def _element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def _text(value: str, pad: bytes) -> bytes:
    data = value.encode("ascii")
    return data + pad if len(data) % 2 else data


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def encode_response(primitive) -> bytes | None:
    """The encoded Command Set of a C-STORE/C-ECHO response, or None for pynetdicom."""
    field = _COMMAND_FIELD.get(type(primitive))
    if field is None or primitive.MessageIDBeingRespondedTo is None or primitive.Status is None:
        return None
    if getattr(primitive, "OffendingElement", None) or getattr(primitive, "ErrorID", None):
        return None
    parts = []
    if primitive.AffectedSOPClassUID:
        parts.append(_element(0x00000002, _text(str(primitive.AffectedSOPClassUID), b"\x00")))
    parts.append(_element(0x00000100, _us(field)))
    parts.append(_element(0x00000120, _us(primitive.MessageIDBeingRespondedTo)))
    parts.append(_element(0x00000800, _us(_NO_DATA_SET)))
    parts.append(_element(0x00000900, _us(primitive.Status)))
    if primitive.ErrorComment:
        parts.append(_element(0x00000902, _text(str(primitive.ErrorComment), b" ")))
    if isinstance(primitive, C_STORE) and primitive.AffectedSOPInstanceUID:
        parts.append(_element(0x00001000, _text(str(primitive.AffectedSOPInstanceUID), b"\x00")))
    body = b"".join(parts)
    return _element(0x00000000, struct.pack("<I", len(body))) + body


def _send_msg(self: DIMSEServiceProvider, primitive, context_id: int) -> None:
    assoc = self.assoc
    if getattr(assoc.ae, "lightbox_event_driven", False) and not assoc.get_handlers(evt.EVT_DIMSE_SENT):
        command = encode_response(primitive)
        max_pdu = self.maximum_pdu_size
        if command is not None and (not max_pdu or len(command) + 6 <= max_pdu):
            pdata = P_DATA()
            pdata.presentation_data_value_list.append((context_id, _LAST_COMMAND_FRAGMENT + command))
            self.dul.send_pdu(pdata)
            return
    _original_send_msg(self, primitive, context_id)


def install() -> None:
    DIMSEServiceProvider.send_msg = _send_msg
