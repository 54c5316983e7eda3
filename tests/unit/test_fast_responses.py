"""The directly encoded C-STORE / C-ECHO responses are byte for byte pynetdicom's."""

import pytest
from pynetdicom.dimse_messages import C_ECHO_RSP, C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dsutils import encode

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
