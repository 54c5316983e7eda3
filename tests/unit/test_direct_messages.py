"""Directly encoded DIMSE-C messages are byte for byte pynetdicom's, and the P-DATA-TF PDUs
they go out in decode with pynetdicom's own PDU and message decoders."""

from io import BytesIO
from types import SimpleNamespace

import pytest
from pynetdicom.dimse import _RQ_TO_MESSAGE, _RSP_TO_MESSAGE
from pynetdicom.dimse_messages import DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_GET, C_MOVE, C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu import P_DATA_TF

from app.net import direct_messages
from app.net.direct_messages import encode_command, pdata_pdus

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND, STUDY_MOVE, STUDY_GET = (f"1.2.840.10008.5.1.4.1.2.2.{n}" for n in (1, 2, 3))


def _make(cls, **fields):
    p = cls()
    for k, v in fields.items():
        setattr(p, k, v)
    return p


def _store_rsp(status, comment=None, instance="1.2.3.4.5"):
    return _make(C_STORE, MessageIDBeingRespondedTo=7, AffectedSOPClassUID=CT, AffectedSOPInstanceUID=instance,
                 Status=status, **({"ErrorComment": comment} if comment else {}))


CASES = {
    "store-rsp": _store_rsp(0x0000),
    "store-rsp-full": _store_rsp(0xA700, "out of disk space: No space left"),
    "store-rsp-odd-uid": _store_rsp(0xA900, "odd", instance="1.2.34"),
    "store-rsp-dup": _store_rsp(0xB007, "duplicate: kept the stored instance"),
    "echo-rsp": _make(C_ECHO, MessageIDBeingRespondedTo=65535, AffectedSOPClassUID="1.2.840.10008.1.1", Status=0),
    "store-rq": _make(C_STORE, MessageID=3, AffectedSOPClassUID=CT, AffectedSOPInstanceUID="1.2.3.4.5.6",
                      Priority=2, DataSet=BytesIO(b"\x08\x00\x16\x00\x02\x00\x00\x00AB")),
    "store-rq-move": _make(C_STORE, MessageID=65535, AffectedSOPClassUID=CT, AffectedSOPInstanceUID="1.2.3",
                           Priority=0, MoveOriginatorApplicationEntityTitle="MOVESCU",
                           MoveOriginatorMessageID=9, DataSet=BytesIO(b"")),
    "find-rsp-pending": _make(C_FIND, MessageIDBeingRespondedTo=3, AffectedSOPClassUID=STUDY_FIND, Status=0xFF00,
                              Identifier=BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")),
    "find-rsp-final": _make(C_FIND, MessageIDBeingRespondedTo=3, AffectedSOPClassUID=STUDY_FIND, Status=0),
    "find-rsp-failed": _make(C_FIND, MessageIDBeingRespondedTo=3, AffectedSOPClassUID=STUDY_FIND, Status=0xC001,
                             ErrorComment="archive query failed: no such table"),
    "move-rsp-pending": _make(C_MOVE, MessageIDBeingRespondedTo=1, AffectedSOPClassUID=STUDY_MOVE, Status=0xFF00,
                              NumberOfRemainingSuboperations=199, NumberOfCompletedSuboperations=1,
                              NumberOfFailedSuboperations=0, NumberOfWarningSuboperations=0),
    "move-rsp-final-failures": _make(C_MOVE, MessageIDBeingRespondedTo=1, AffectedSOPClassUID=STUDY_MOVE,
                                     Status=0xB000, NumberOfCompletedSuboperations=2, NumberOfFailedSuboperations=1,
                                     NumberOfWarningSuboperations=0,
                                     Identifier=BytesIO(b"\x08\x00\x58\x11\x06\x00\x00\x001.2.3\x00")),
    "get-rsp-pending": _make(C_GET, MessageIDBeingRespondedTo=5, AffectedSOPClassUID=STUDY_GET, Status=0xFF00,
                             NumberOfRemainingSuboperations=3, NumberOfCompletedSuboperations=0,
                             NumberOfFailedSuboperations=0, NumberOfWarningSuboperations=0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_bytes_as_pynetdicom(name):
    primitive = CASES[name]
    table = _RQ_TO_MESSAGE if primitive.MessageIDBeingRespondedTo is None else _RSP_TO_MESSAGE
    msg = table[type(primitive)]()
    msg.primitive_to_message(primitive)
    command, data = encode_command(primitive)
    assert command == encode(msg.command_set, True, True)
    assert data == (msg.data_set.getvalue() if msg.data_set is not None and msg.command_set.CommandDataSetType != 0x0101
                    else None)


def test_unusual_messages_left_to_pynetdicom():
    rsp = _store_rsp(0xC000, "bad")
    rsp.OffendingElement = [0x00100010]
    assert encode_command(rsp) is None


def _decode(raw: bytes, max_pdu: int) -> tuple[DIMSEMessage, int]:
    """pynetdicom's PDU decoder, PDU by PDU, then its message decoder."""
    msg, pos, pdus, done = DIMSEMessage(), 0, 0, False
    while pos < len(raw):
        assert raw[pos] == 0x04  # P-DATA-TF
        length = int.from_bytes(raw[pos + 2:pos + 6], "big")
        assert not max_pdu or length <= max_pdu
        pdu = P_DATA_TF()
        pdu.decode(raw[pos:pos + 6 + length])
        assert not done
        done = msg.decode_msg(pdu.to_primitive())
        pos, pdus = pos + 6 + length, pdus + 1
    assert done and pos == len(raw)
    return msg, pdus


@pytest.mark.parametrize("max_pdu", [4096, 16384, 0])
@pytest.mark.parametrize("size", [0, 100, 10_242, 524_288])
def test_pdus_decode_with_pynetdicom(max_pdu, size):
    """The data set rides in the command's PDU when both fit, else in fragments that fit the
    peer's maximum PDU, the last one flagged."""
    data = bytes(range(256)) * (size // 256) + b"\x01\x02" * ((size % 256) // 2)
    primitive = _make(C_STORE, MessageID=3, AffectedSOPClassUID=CT, AffectedSOPInstanceUID="1.2.3.4.5.6",
                      Priority=2, DataSet=BytesIO(data))
    command, payload = encode_command(primitive)
    msg, pdus = _decode(pdata_pdus(5, command, payload, max_pdu), max_pdu)
    together = not max_pdu or len(command) + len(data) + 12 <= max_pdu
    assert pdus == (1 if together else 1 + -(-len(data) // (max_pdu - 6)))
    assert msg.context_id == 5 and msg.command_set.AffectedSOPInstanceUID == "1.2.3.4.5.6"
    assert msg.data_set.getvalue() == data


def test_send_msg_hands_one_raw_request_to_the_dul():
    sent = []
    provider = SimpleNamespace(
        assoc=SimpleNamespace(ae=SimpleNamespace(lightbox_event_driven=True), get_handlers=lambda event: []),
        maximum_pdu_size=16384, dul=SimpleNamespace(send_pdu=sent.append))
    direct_messages._send_msg(provider, CASES["move-rsp-pending"], 3)
    (pdata,) = sent
    assert isinstance(pdata, direct_messages.RawPData)
    msg, _ = _decode(pdata.raw, 16384)
    assert msg.command_set.NumberOfRemainingSuboperations == 199 and msg.command_set.CommandField == 0x8021
