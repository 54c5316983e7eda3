"""The directly encoded C-STORE / C-ECHO / C-FIND responses are byte for byte pynetdicom's."""

from types import SimpleNamespace

import pytest
from pynetdicom.dimse_messages import C_ECHO_RSP, C_FIND_RSP, C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_STORE
from pynetdicom.dsutils import encode

from app.net import fast_responses
from app.net.fast_responses import encode_response


def _store(status, comment=None, instance="1.2.3.4.5"):
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    rsp.AffectedSOPInstanceUID = instance
    rsp.Status = status
    if comment:
        rsp.ErrorComment = comment
    return rsp


def _echo(status):
    rsp = C_ECHO()
    rsp.MessageIDBeingRespondedTo = 65535
    rsp.AffectedSOPClassUID = "1.2.840.10008.1.1"
    rsp.Status = status
    return rsp


@pytest.mark.parametrize("primitive, message", [
    (_store(0x0000), C_STORE_RSP),
    (_store(0xA700, "out of disk space: No space left"), C_STORE_RSP),
    (_store(0xA900, "odd", instance="1.2.34"), C_STORE_RSP),
    (_store(0xB007, "duplicate: kept the stored instance"), C_STORE_RSP),
    (_echo(0x0000), C_ECHO_RSP),
])
def test_same_bytes_as_pynetdicom(primitive, message):
    msg = message()
    msg.primitive_to_message(primitive)
    assert encode_response(primitive) == encode(msg.command_set, True, True)


def test_unusual_responses_left_to_pynetdicom():
    rsp = _store(0xC000, "bad")
    rsp.OffendingElement = [0x00100010]
    assert encode_response(rsp) is None
    request = C_STORE()
    request.MessageID = 1
    assert encode_response(request) is None


def _find(status, identifier: bytes | None = None):
    from io import BytesIO
    rsp = C_FIND()
    rsp.MessageIDBeingRespondedTo = 3
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    rsp.Status = status
    rsp.Identifier = BytesIO(identifier) if identifier is not None else None
    return rsp


@pytest.mark.parametrize("status, identifier", [(0xFF00, b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "),
                                                (0xFF01, b"\x10\x00\x10\x00\x02\x00\x00\x00AB"), (0x0000, None),
                                                (0xFE00, None)])
def test_find_command_same_bytes_as_pynetdicom(status, identifier):
    primitive = _find(status, identifier)
    msg = C_FIND_RSP()
    msg.primitive_to_message(primitive)
    assert encode_response(primitive, data_set=identifier is not None) == encode(msg.command_set, True, True)


@pytest.mark.parametrize("max_pdu", [4096, 16384, 0])
def test_find_response_fragments_decode_with_pynetdicom(max_pdu):
    """The identifier rides in the command's PDU when both fit, else it is split into PDVs
    that fit the peer's maximum PDU, the last one flagged; pynetdicom's own decoder puts the
    message back together."""
    from pynetdicom.dimse_messages import DIMSEMessage
    identifier = bytes(range(256)) * 40 + b"\x01\x02"  # 10,242 bytes, even
    sent = []
    provider = SimpleNamespace(
        assoc=SimpleNamespace(ae=SimpleNamespace(lightbox_event_driven=True), get_handlers=lambda event: []),
        maximum_pdu_size=max_pdu, dul=SimpleNamespace(send_pdu=sent.append))
    fast_responses._send_msg(provider, _find(0xFF00, identifier), 5)
    command = encode_response(_find(0xFF00, identifier), data_set=True)
    together = not max_pdu or len(command) + len(identifier) + 12 <= max_pdu
    assert len(sent) == (1 if together else 1 + -(-len(identifier) // (max_pdu - 6)))
    msg = DIMSEMessage()
    done = False
    for pdata in sent:
        pdvs = pdata.presentation_data_value_list
        assert all(context_id == 5 for context_id, _ in pdvs)
        assert not max_pdu or sum(len(pdv) + 4 for _, pdv in pdvs) <= max_pdu
        assert not done
        done = msg.decode_msg(pdata)
    assert done
    assert msg.command_set.Status == 0xFF00 and msg.command_set.CommandDataSetType != 0x0101
    assert msg.data_set.getvalue() == identifier
