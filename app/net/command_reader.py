"""DIMSE Command Sets read directly into pynetdicom's message primitives.

pynetdicom decodes every received Command Set into a pydicom Dataset and then copies it
element by element into a primitive, whose setters validate each UID again: ~0.5 ms per
message, a third of what sending a CT image costs us (the C-STORE-RSP coming back) and a
large share of receiving one (the C-STORE-RQ). A Command Set is a short run of Implicit VR
Little Endian elements of group 0000 whose VRs pynetdicom's own tables give, so here it is
read with struct into a plain object that answers what pynetdicom asks of it
(``CommandField``, ``CommandDataSetType``, iteration for ``message_to_primitive``), and the
primitive's UIDs are checked once (app.dicom.uids) and set without the second validation.
Anything unusual (an AT element such as Offending Element, a tag outside the tables, a
malformed length, pynetdicom's verbose logging) takes pynetdicom's own path.
tests/unit/test_command_reader.py holds the result against pynetdicom's for every message.
"""

from __future__ import annotations

import struct

from pydicom.uid import UID
from pynetdicom import _config
from pynetdicom import dimse_messages as _messages
from pynetdicom.dimse_messages import _COMMAND_SET_KEYWORDS, DIMSEMessage
from pynetdicom.dsutils import decode as _pynetdicom_decode

from app.dicom.uids import is_valid_uid

_original_message_to_primitive = DIMSEMessage.message_to_primitive
_HEADER = struct.Struct("<HHI")


def _command_vrs() -> dict[int, tuple[str, str]]:
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    return {tag_for_keyword(kw): (kw, dictionary_VR(kw)) for kws in _COMMAND_SET_KEYWORDS.values() for kw in kws}


_VR_OF = _command_vrs()
_INTEGER = {"US": 2, "UL": 4}
_TEXT = {"UI", "AE", "LO", "SH", "CS"}
# primitive attributes whose setters re-validate a UID (pynetdicom.utils.set_uid)
_UID_ATTRIBUTE = {"AffectedSOPClassUID": "_affected_sop_class_uid",
                  "AffectedSOPInstanceUID": "_affected_sop_instance_uid",
                  "RequestedSOPClassUID": "_requested_sop_class_uid",
                  "RequestedSOPInstanceUID": "_requested_sop_instance_uid"}


class _Element:
    __slots__ = ("tag", "keyword", "value")
    VM = 1

    def __init__(self, tag: int, keyword: str, value):
        self.tag, self.keyword, self.value = tag, keyword, value


class CommandSet:
    """A received Command Set's elements by keyword (group length left out)."""

    def __init__(self, elements: list[_Element]):
        self._elements = elements
        for e in elements:
            self.__dict__[e.keyword] = e.value

    def __iter__(self):
        return iter(self._elements)

    def __contains__(self, keyword: str) -> bool:
        return keyword in self.__dict__

    def get(self, keyword: str, default=None):
        return self.__dict__.get(keyword, default)


def read_command(data: bytes) -> CommandSet | None:
    """The Command Set in ``data``; None when it needs pynetdicom's decoder."""
    view, pos, end, elements = memoryview(data), 0, len(data), []
    while pos < end:
        if pos + 8 > end:
            return None
        group, number, length = _HEADER.unpack_from(view, pos)
        pos += 8
        tag = (group << 16) | number
        if length == 0xFFFFFFFF or pos + length > end or tag not in _VR_OF:
            return None
        keyword, vr = _VR_OF[tag]
        raw = bytes(view[pos:pos + length])
        pos += length
        if tag == 0x00000000:
            continue
        if vr in _INTEGER:
            if length != _INTEGER[vr]:
                return None
            value = int.from_bytes(raw, "little")
        elif vr in _TEXT:
            try:
                value = raw.decode("ascii").rstrip("\0 ").lstrip(" ") if vr != "UI" else raw.decode("ascii").rstrip("\0 ")
            except UnicodeDecodeError:
                return None
            if vr == "UI":
                if value and not is_valid_uid(value):
                    return None  # pynetdicom's setter logs it and the request is refused
                value = UID(value)
        else:  # AT (Offending Element, Attribute Identifier List): pynetdicom's own path
            return None
        elements.append(_Element(tag, keyword, value))
    return CommandSet(elements) if "CommandField" in {e.keyword for e in elements} else None


def _decode(stream, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False):
    """pynetdicom.dimse_messages' ``decode``, which it only calls for Command Sets."""
    if is_implicit_vr and is_little_endian and not deflated and _config.LOG_HANDLER_LEVEL != "standard":
        command = read_command(stream.getvalue())
        if command is not None:
            return command
    return _pynetdicom_decode(stream, is_implicit_vr, is_little_endian, deflated)


def _message_to_primitive(self: DIMSEMessage):
    command = self.command_set
    if not isinstance(command, CommandSet):
        return _original_message_to_primitive(self)
    name = type(self).__name__
    primitive = _messages._MSG_TO_PRIMITVE[name[:name.rfind("_R")]]()
    for e in command:
        private = _UID_ATTRIBUTE.get(e.keyword)
        if private is not None and hasattr(primitive, e.keyword):
            setattr(primitive, private, e.value or None)  # checked in read_command
        elif hasattr(primitive, e.keyword):
            setattr(primitive, e.keyword, e.value)
    keyword = _messages._DATASET_KEYWORDS.get(name)
    if keyword:
        setattr(primitive, keyword, self.data_set)
    primitive._context_id = self.context_id
    primitive._dataset_path = self._data_set_path
    primitive._dataset_file = self._data_set_file
    return primitive


def install() -> None:
    _messages.decode = _decode
    DIMSEMessage.message_to_primitive = _message_to_primitive
