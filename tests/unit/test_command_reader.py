"""Command Sets read directly (app.net.command_reader) give the very primitives pynetdicom's
own decoder gives, for every DIMSE-C and DIMSE-N message type, and leave the unusual ones
(AT elements, bad UIDs, truncated data) to pynetdicom."""

from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pynetdicom import _config
from pynetdicom import dimse_messages
from pynetdicom.dimse import _RQ_TO_MESSAGE, _RSP_TO_MESSAGE
from pynetdicom.dimse_messages import DIMSEMessage
from pynetdicom.dimse_primitives import (C_ECHO, C_FIND, C_GET, C_MOVE, C_STORE, N_ACTION, N_CREATE, N_DELETE,
                                         N_EVENT_REPORT, N_GET, N_SET)

from app.net import command_reader
from tests.unit.test_direct_messages import CASES, STUDY_FIND, STUDY_GET, STUDY_MOVE, _make

PUSH = "1.2.840.10008.1.20.1"
MORE = {
    # CASES' has an empty data set, which never completes a received message
    "store-rq-move": _make(C_STORE, MessageID=65535, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
                           AffectedSOPInstanceUID="1.2.3", Priority=0, MoveOriginatorApplicationEntityTitle="MOVESCU",
                           MoveOriginatorMessageID=9, DataSet=BytesIO(b"\x08\x00\x16\x00\x02\x00\x00\x00AB")),
    "echo-rq": _make(C_ECHO, MessageID=1, AffectedSOPClassUID="1.2.840.10008.1.1"),
    "find-rq": _make(C_FIND, MessageID=2, AffectedSOPClassUID=STUDY_FIND, Priority=0,
                     Identifier=BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")),
    "move-rq": _make(C_MOVE, MessageID=3, AffectedSOPClassUID=STUDY_MOVE, Priority=0, MoveDestination="STORESCP",
                     Identifier=BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")),
    "get-rq": _make(C_GET, MessageID=4, AffectedSOPClassUID=STUDY_GET, Priority=1,
                    Identifier=BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")),
    "action-rq": _make(N_ACTION, MessageID=5, RequestedSOPClassUID=PUSH, RequestedSOPInstanceUID="1.2.840.10008.1.20.1.1",
                       ActionTypeID=1, ActionInformation=BytesIO(b"\x08\x00\x95\x11\x04\x00\x00\x001.2\x00")),
    "action-rsp": _make(N_ACTION, MessageIDBeingRespondedTo=5, AffectedSOPClassUID=PUSH, Status=0,
                        AffectedSOPInstanceUID="1.2.840.10008.1.20.1.1", ActionTypeID=1),
    "report-rq": _make(N_EVENT_REPORT, MessageID=6, AffectedSOPClassUID=PUSH,
                       AffectedSOPInstanceUID="1.2.840.10008.1.20.1.1", EventTypeID=2,
                       EventInformation=BytesIO(b"\x08\x00\x95\x11\x04\x00\x00\x001.2\x00")),
    "report-rsp": _make(N_EVENT_REPORT, MessageIDBeingRespondedTo=6, AffectedSOPClassUID=PUSH, Status=0x0110,
                        ErrorComment="cannot record it"),
    "create-rq": _make(N_CREATE, MessageID=7, AffectedSOPClassUID="1.2.840.10008.5.1.1.1",
                       AttributeList=BytesIO(b"\x08\x00\x16\x00\x02\x00\x00\x00AB")),
    "set-rq": _make(N_SET, MessageID=8, RequestedSOPClassUID="1.2.840.10008.5.1.1.1", RequestedSOPInstanceUID="1.2.3",
                    ModificationList=BytesIO(b"\x08\x00\x16\x00\x02\x00\x00\x00AB")),
    "get-n-rq": _make(N_GET, MessageID=9, RequestedSOPClassUID="1.2.840.10008.5.1.1.16",
                      RequestedSOPInstanceUID="1.2.840.10008.5.1.1.17"),
    "delete-rsp": _make(N_DELETE, MessageIDBeingRespondedTo=10, AffectedSOPClassUID="1.2.840.10008.5.1.1.1",
                        AffectedSOPInstanceUID="1.2.3", Status=0),
}
ALL = {**CASES, **MORE}


def _fields(p) -> dict:
    out = {}
    for name in dir(type(p)):
        if isinstance(getattr(type(p), name, None), property) and name[0].isupper():
            v = getattr(p, name)
            out[name] = v.getvalue() if isinstance(v, BytesIO) else v
    out["context"] = p._context_id
    return out


def _received(primitive, fast: bool):
    table = _RQ_TO_MESSAGE if primitive.MessageIDBeingRespondedTo is None else _RSP_TO_MESSAGE
    msg = table[type(primitive)]()
    msg.primitive_to_message(primitive)
    pdatas = list(msg.encode_msg(3, 16384))
    saved = (dimse_messages.decode, DIMSEMessage.message_to_primitive, _config.LOG_HANDLER_LEVEL)
    try:
        if fast:
            command_reader.install()
            _config.LOG_HANDLER_LEVEL = "none"
        got = DIMSEMessage()
        assert [got.decode_msg(p) for p in pdatas][-1]
        fast_used = isinstance(got.command_set, command_reader.CommandSet)
        return got.message_to_primitive(), fast_used
    finally:
        dimse_messages.decode, DIMSEMessage.message_to_primitive, _config.LOG_HANDLER_LEVEL = saved


@pytest.mark.parametrize("name", list(ALL))
def test_the_same_primitive_as_pynetdicom(name):
    theirs, _ = _received(ALL[name], fast=False)
    ours, fast = _received(ALL[name], fast=True)
    assert fast
    assert type(ours) is type(theirs) and _fields(ours) == _fields(theirs)
    assert ours.is_valid_request == theirs.is_valid_request and ours.is_valid_response == theirs.is_valid_response


def test_unusual_command_sets_go_to_pynetdicom():
    def command(ds: Dataset) -> bytes:
        from pynetdicom.dsutils import encode
        return encode(ds, True, True)
    base = Dataset()
    base.CommandField, base.MessageIDBeingRespondedTo, base.CommandDataSetType, base.Status = 0x8001, 1, 0x0101, 0xC000
    assert command_reader.read_command(command(base)) is not None
    offending = Dataset()
    offending.update(base)
    offending.OffendingElement = [0x00100010]
    assert command_reader.read_command(command(offending)) is None      # AT
    bad_uid = Dataset()
    bad_uid.update(base)
    bad_uid.AffectedSOPInstanceUID = "1.2.abc"
    assert command_reader.read_command(command(bad_uid)) is None        # pynetdicom refuses it and says why
    assert command_reader.read_command(command(base)[:-1]) is None      # truncated
    private = command(base) + b"\x00\x00\x99\x99\x02\x00\x00\x00ab"  # not a command element
    assert command_reader.read_command(private) is None
