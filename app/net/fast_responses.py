"""C-STORE, C-ECHO and C-FIND responses encoded directly.

pynetdicom turns every response primitive into a pydicom Dataset, validates and encodes it
(some 0.3-0.5 ms per response: a tenth of a CT image's time over one association, most of a
C-FIND match's). These responses have a fixed shape, so we write their Command Set (Implicit
VR Little Endian, PS3.7 §9.3.1.2 / §9.3.2.2 / §9.3.5.2, E.1) straight into the P-DATA PDV,
followed by the C-FIND identifier pynetdicom has already encoded, in fragments that fit the
peer's maximum PDU. Anything unusual (an Offending Element, handlers bound to
EVT_DIMSE_SENT, a peer PDU too small for the command) goes through pynetdicom as before.

Data sets can come pre-encoded: C-FIND identifiers (``PreEncoded``) and stored instances sent
as they are on disk (app.net.query_retrieve's ``StoredInstance``): pynetdicom's ``encode`` is
wrapped so that it asks them for their bytes.
"""

from __future__ import annotations

import struct

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import evt
from pynetdicom import association as _association
from pynetdicom import service_class as _service_class
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_STORE
from pynetdicom.pdu_primitives import P_DATA

from app.dicom.element_writer import Element, dataset_bytes, element, encodings_of, padded

_original_send_msg = DIMSEServiceProvider.send_msg
_original_encode = _service_class.encode

_COMMAND_FIELD = {C_STORE: 0x8001, C_ECHO: 0x8030, C_FIND: 0x8020}
_NO_DATA_SET, _DATA_SET = 0x0101, 0x0001
# message control headers (PS3.8 E.2): command or data set, last fragment or not
_COMMAND_LAST, _DATA, _DATA_LAST = b"\x03", b"\x00", b"\x02"
_PDV_OVERHEAD = 6  # PDV item length (4) + context ID (1) + control header (1)


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def _ui(tag: int, value) -> bytes:
    return element(tag, "UI", padded(str(value), b"\x00"), True)


def encode_response(primitive, data_set: bool = False) -> bytes | None:
    """The encoded Command Set of a C-STORE/C-ECHO/C-FIND response, or None for pynetdicom."""
    field = _COMMAND_FIELD.get(type(primitive))
    if field is None or primitive.MessageIDBeingRespondedTo is None or primitive.Status is None:
        return None
    if getattr(primitive, "OffendingElement", None) or getattr(primitive, "ErrorID", None):
        return None
    parts = []
    if primitive.AffectedSOPClassUID:
        parts.append(_ui(0x00000002, primitive.AffectedSOPClassUID))
    parts.append(element(0x00000100, "US", _us(field), True))
    parts.append(element(0x00000120, "US", _us(primitive.MessageIDBeingRespondedTo), True))
    parts.append(element(0x00000800, "US", _us(_DATA_SET if data_set else _NO_DATA_SET), True))
    parts.append(element(0x00000900, "US", _us(primitive.Status), True))
    if primitive.ErrorComment:
        parts.append(element(0x00000902, "LO", padded(str(primitive.ErrorComment), b" "), True))
    if isinstance(primitive, C_STORE) and primitive.AffectedSOPInstanceUID:
        parts.append(_ui(0x00001000, primitive.AffectedSOPInstanceUID))
    body = b"".join(parts)
    return element(0x00000000, "UL", struct.pack("<I", len(body)), True) + body


def _identifier_of(primitive) -> bytes | None:
    identifier = getattr(primitive, "Identifier", None)
    return identifier.getvalue() if identifier is not None else None


def _send_msg(self: DIMSEServiceProvider, primitive, context_id: int) -> None:
    assoc = self.assoc
    if getattr(assoc.ae, "lightbox_event_driven", False) and not assoc.get_handlers(evt.EVT_DIMSE_SENT):
        data = _identifier_of(primitive) if isinstance(primitive, C_FIND) else None
        command = encode_response(primitive, data_set=bool(data))
        max_pdu = self.maximum_pdu_size
        if command is not None and (not max_pdu or len(command) + _PDV_OVERHEAD <= max_pdu):
            pdata = P_DATA()
            pdvs = pdata.presentation_data_value_list
            pdvs.append((context_id, _COMMAND_LAST + command))
            size = len(command) + _PDV_OVERHEAD
            if data and (not max_pdu or size + len(data) + _PDV_OVERHEAD <= max_pdu):
                pdvs.append((context_id, _DATA_LAST + data))  # one PDU: PS3.8 allows several PDVs
                data = None
            self.dul.send_pdu(pdata)
            step = (max_pdu - _PDV_OVERHEAD) if max_pdu else len(data or b"") or 1
            for start in range(0, len(data or b""), step):
                last = start + step >= len(data)
                pdata = P_DATA()
                pdata.presentation_data_value_list.append(
                    (context_id, (_DATA_LAST if last else _DATA) + data[start:start + step]))
                self.dul.send_pdu(pdata)
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
    _service_class.encode = _encode   # C-FIND identifiers
    _association.encode = _encode     # C-STORE data sets: sub-operations of C-MOVE / C-GET
