"""Storage service (C-STORE). SCP: a thin adapter onto the one store pipeline."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID
from pynetdicom import evt

from app.dicom import statuses
from app.dicom.sop_classes import storage_scp_classes
from app.dicom.encoding import stored_transfer_syntax
from app.dicom.transfer_syntaxes import STORAGE_SCP, UNCOMPRESSED
from app.store.ingest import Ingest

log = logging.getLogger(__name__)
_HEAD = 16384  # read first from a stored file: the preamble and file meta, normally ~300 bytes


@dataclass(frozen=True)
class Instance:
    path: str
    sop_class: str
    sop_instance: str
    transfer_syntax: str


def scp_contexts() -> list[tuple[str, tuple[str, ...]]]:
    _register_private_classes()
    return [(uid, STORAGE_SCP) for uid in storage_scp_classes()]


def _register_private_classes() -> None:
    """Storage classes of Table 8-1 pynetdicom does not know (Siemens' CSA Non-Image) get its
    storage service, else it aborts the association at their first C-STORE."""
    from pynetdicom import sop_class
    from pynetdicom.service_class import ServiceClass, StorageServiceClass

    from app.dicom.sop_classes import lookup
    for uid in storage_scp_classes():
        if sop_class.uid_to_service_class(uid) is ServiceClass:
            sop = lookup(uid)
            # a keyword of its own: one pynetdicom already has would re-point that class
            keyword = "Lightbox" + "".join(ch for ch in (sop.name if sop else uid).title() if ch.isalnum())
            if not hasattr(sop_class, keyword):
                sop_class.register_uid(uid, keyword, StorageServiceClass)


def handle_store(event, ingest: Ingest):
    """EVT_C_STORE. Answers only once the instance is durable and indexed."""
    req = event.request
    try:
        raw = req.DataSet.getbuffer()
        ts = event.context.transfer_syntax
        result = ingest.store(raw, ts, source_aet=event.assoc.requestor.ae_title,
                              sop_class=str(req.AffectedSOPClassUID),
                              sop_instance=str(req.AffectedSOPInstanceUID))
    except Exception as exc:  # the pipeline maps errors itself; this is the last guard
        log.exception("C-STORE handler failed")
        result_status, comment = statuses.STORE_FAILED, f"internal error: {exc}"[:64]
    else:
        result_status, comment = result.status, result.comment
    if result_status == statuses.SUCCESS:
        return statuses.SUCCESS
    rsp = Dataset()
    rsp.Status = result_status
    rsp.ErrorComment = comment[:64]
    return rsp


# -- SCU: sending what the archive holds -----------------------------------------------------
class StoredInstance(Dataset):
    """An archived instance sent as it is stored: the data set's bytes after the File Meta
    Information, never parsed nor re-encoded (pydicom would take ~5 ms per CT image each way).
    Only handed to pynetdicom when the peer accepted the stored transfer syntax for its SOP
    class: pynetdicom then picks that exact context, whose encoding is the stored one."""

    def __init__(self, instance: Instance):
        super().__init__()
        self.SOPClassUID, self.SOPInstanceUID = instance.sop_class, instance.sop_instance
        self.file_meta = FileMetaDataset()
        self.file_meta.TransferSyntaxUID = instance.transfer_syntax
        self.lightbox_instance = instance

    def lightbox_encoded(self, implicit: bool, little: bool, deflated: bool) -> bytes | None:
        ts = UID(self.lightbox_instance.transfer_syntax)
        if (implicit, little, deflated) != (ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated):
            return None
        path = self.lightbox_instance.path
        try:
            data = Path(path).read_bytes()
            stored, offset = stored_transfer_syntax(data)
        except (OSError, ValueError) as exc:
            log.error("cannot read %s to send it: %s", path, exc)
            raise
        if stored != ts:
            return None  # not what the index says: decoded and encoded by pydicom instead
        return data[offset:]

    def lightbox_dataset(self) -> Dataset:
        ds = read_instance(self.lightbox_instance)
        if ds is None:
            raise ValueError(f"cannot read {self.lightbox_instance.path}")
        return ds


def _policy(node, sop_class: str) -> tuple[tuple[str, ...], frozenset[str]]:
    return node.send_syntaxes(sop_class) if node is not None else ((), frozenset())


def send_plan(instance: Instance, accepted: list, node=None) -> tuple[tuple[str, ...], str]:
    """How ``instance`` goes, decided without reading it (the node's transfer syntax
    preference for its class, §4.2.1.3.1.2; none: as stored, else uncompressed): the
    compressed syntaxes to try in order (made only when the instance meets their criteria;
    a lossy one only when nothing lossless was accepted), then "stored" (its stored bytes)
    or "uncompressed" (decompressed when the peer took an uncompressed syntax)."""
    from app.dicom import compression
    preferred, excluded = _policy(node, instance.sop_class)
    syntaxes = {cx.transfer_syntax[0] for cx in accepted if cx.abstract_syntax == instance.sop_class} - excluded
    ts = UID(instance.transfer_syntax)
    lossless_taken = any(s in UNCOMPRESSED or (UID(s).is_compressed and not compression.is_lossy(s))
                         for s in syntaxes)
    tries: list[str] = []
    for want in preferred:
        if want not in syntaxes:
            continue
        if want == ts and not ts.is_deflated:
            return tuple(tries), "stored"
        if want in UNCOMPRESSED:
            return tuple(tries), "uncompressed"
        if want in compression.PRODUCIBLE and not (compression.is_lossy(want) and lossless_taken):
            tries.append(want)
    return tuple(tries), "stored" if ts in syntaxes and not ts.is_deflated else "uncompressed"


def to_send(instance: Instance, accepted: list, node=None) -> Dataset | None:
    """What to hand pynetdicom for one C-STORE, given the contexts the peer accepted (for
    C-GET, those where we are the storage SCU), by ``send_plan``: the first compressed
    syntax the instance meets the criteria of, made by app.dicom.compression; else as
    stored, or decompressed; when nothing fits, as stored, and the C-STORE fails and is
    counted. None: unreadable."""
    from app.dicom import compression
    tries, then = send_plan(instance, accepted, node)
    ds = None
    for want in tries:
        ds = ds or read_instance(instance)
        if ds is None:
            return None
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress(generate_instance_uid=False)
        if compression.eligible(ds, want):
            try:
                return compression.compress(ds, want)
            except Exception as exc:  # noqa: BLE001 - sent uncompressed instead; the log says why
                log.warning("could not compress %s to %s (%s): sending it uncompressed", instance.sop_instance,
                            UID(want).name, exc)
                ds, then = read_instance(instance), "uncompressed"
                break
    if then == "stored":
        return StoredInstance(instance)
    ds = ds or read_instance(instance)
    if ds is not None and ds.file_meta.TransferSyntaxUID.is_compressed and \
            any(cx.transfer_syntax[0] in UNCOMPRESSED for cx in accepted if cx.abstract_syntax == instance.sop_class):
        ds.decompress(generate_instance_uid=False)  # the same instance, only re-encoded
    return ds


def read_instance(instance: Instance) -> Dataset | None:
    import pydicom
    try:
        return pydicom.dcmread(instance.path)
    except Exception as exc:  # noqa: BLE001 - counted as a failed sub-operation
        log.error("cannot read %s for a retrieve: %s", instance.path, exc)
        return None


def outgoing_contexts(instances: list[Instance], node=None) -> list:
    """Contexts to propose for sending ``instances``: per SOP class, each stored compressed
    transfer syntax and each compressed syntax of the node's preference on its own context
    (an acceptor taking several lets our preference choose), and the uncompressed ones, less
    the node's exclusions; one context per class when that would exceed 128. Also the classes
    an instance may become: MR Image for an Enhanced MR, the packing carrier for a Table 4-8
    class when the node packs."""
    from pynetdicom import build_context
    from app.dicom import packing
    from app.dicom.enhanced_split import ENHANCED_MR, MR_IMAGE
    by_class: dict[str, set[str]] = {}
    for i in instances:
        by_class.setdefault(i.sop_class, set()).add(i.transfer_syntax)
    if ENHANCED_MR in by_class:  # to split into, for a node without Enhanced MR (§4.2.1.3.1.5)
        by_class.setdefault(MR_IMAGE, set())
    if node is not None and node.pack and packing.packable().keys() & by_class.keys():
        by_class.setdefault(packing.CARRIERS[node.pack], set())
    out, single = [], []
    for sop, syntaxes in sorted(by_class.items()):
        preferred, excluded = _policy(node, sop)
        compressed = [ts for ts in preferred if UID(ts).is_compressed]
        compressed += sorted(ts for ts in syntaxes if ts and UID(ts).is_compressed and ts not in compressed)
        compressed = [ts for ts in compressed if ts not in excluded]
        plain = [ts for ts in UNCOMPRESSED if ts not in excluded]
        out += [build_context(sop, [ts]) for ts in compressed]
        if plain:
            out.append(build_context(sop, plain))
        single.append(build_context(sop, sorted(set(compressed) | set(plain))))
    return out if len(out) <= 128 else single[:128]


class Sender:
    """One association to a remote node; instances go one after another over it (spec
    §4.2.1.3.1.1), each in the best transfer syntax the node accepted for its SOP class:
    as stored when it took the stored one, else decompressed / re-encoded by pydicom.
    ``send`` gives each instance's outcome (Table 4-6); a lost association raises
    AssociationFailed (transient: the job retries from that instance)."""

    def __init__(self, settings, node, instances: list[Instance]):
        from app.net.remote import open_association, scu_ae
        self.node = node
        self.ae = scu_ae(settings)
        self.assoc = open_association(self.ae, settings, node, outgoing_contexts(instances, node))
        self._accepted_classes = {cx.abstract_syntax for cx in self.assoc.accepted_contexts}
        # where an instance goes as stored: the first accepted context of its class and syntax
        self._stored_contexts: dict[tuple[str, str], object] = {}
        for cx in self.assoc.accepted_contexts:
            self._stored_contexts.setdefault((cx.abstract_syntax, cx.transfer_syntax[0]), cx)
        self._message_id = 0
        # the direct path (below) unless someone listens to pynetdicom's message events
        assoc = self.assoc
        self._fast = getattr(assoc.ae, "lightbox_event_driven", False) and not any(
            assoc.get_handlers(e) for e in (evt.EVT_DIMSE_SENT, evt.EVT_PDU_SENT, evt.EVT_DATA_SENT))
        # written from the sending thread, not handed to the DUL thread: a plain socket, whose
        # reads (the DUL's) and writes (ours) may overlap; a TLS connection's may not
        import ssl
        self._write_here = self._fast and not isinstance(getattr(assoc.dul.socket, "socket", None), ssl.SSLSocket)
        self._buffers: list[bytearray | None] = [None, None]
        self._turn = 0
        self._prepared = None
        # what the node holds for the last instance sent, when not that instance itself (split
        # frames, a packed object): storage commitment asks about those
        self.sent_as: list[tuple[str, str]] | None = None

    def send(self, instance: Instance, following: Instance | None = None) -> tuple[str, str]:
        """(sent | present | failed, message for the user). ``following``: the instance to
        be sent next, read while the node works on this one."""
        from app.dicom import packing
        from app.dicom.enhanced_split import ENHANCED_MR, MR_IMAGE
        self.sent_as = None
        accepted = self._accepted_classes
        if instance.sop_class == ENHANCED_MR and ENHANCED_MR not in accepted and MR_IMAGE in accepted:
            return self._send_split(instance)
        if instance.sop_class not in accepted and self.node.pack and instance.sop_class in packing.packable() \
                and packing.CARRIERS[self.node.pack] in accepted:
            return self._send_packed(instance)
        if instance.sop_class not in accepted:
            return "failed", f"{_class_name(instance.sop_class)} is not accepted by {self.node.aet}"
        if self._fast:
            prepared, self._prepared = self._prepared, None
            if prepared is None or prepared[0] is not instance:
                prepared = self._prepare(instance)
            if isinstance(prepared[1], tuple):  # it could not be read
                return prepared[1]
            if prepared[1] is not None:
                return self._store_prepared(instance, prepared[1], following)
        return self._store(instance, to_send(instance, self.assoc.accepted_contexts, self.node))

    def _prepare(self, instance: Instance):
        """(instance, its C-STORE-RQ as ready P-DATA-TF PDUs) when the node takes it as stored:
        the command written directly and the file read straight into the PDUs
        (app.net.direct_messages.pdata_layout) in one of two buffers used in turn, so no copy
        of the pixels is made on the way to the socket. (instance, None): pynetdicom's path (not
        as stored, an odd file); (instance, (failed, why)): unreadable."""
        from app.net.direct_messages import command_bytes, pdata_layout
        if send_plan(instance, self.assoc.accepted_contexts, self.node) != ((), "stored"):
            return instance, None  # compressed or decompressed: pynetdicom's path, made once there
        context = self._stored_contexts.get((instance.sop_class, instance.transfer_syntax))
        if context is None:
            return instance, None
        try:
            with open(instance.path, "rb") as f:
                head = f.read(_HEAD)
                stored, offset = stored_transfer_syntax(head)
                if stored != instance.transfer_syntax or offset + 8 > len(head):
                    return instance, None  # not what the index says, or a file meta longer than the head
                length = os.fstat(f.fileno()).st_size - offset
                self._message_id = self._message_id % 65535 + 1
                command = command_bytes("C-STORE-RQ", {
                    "MessageID": self._message_id, "AffectedSOPClassUID": instance.sop_class,
                    "AffectedSOPInstanceUID": instance.sop_instance, "Priority": 2}.get, True)
                self._turn ^= 1
                pdus, slots = pdata_layout(context.context_id, command, length,
                                           self.assoc.dimse.maximum_pdu_size or 0, self._buffers[self._turn])
                self._buffers[self._turn] = pdus.obj
                f.seek(offset)
                for pos, n in slots:
                    if f.readinto(pdus[pos:pos + n]) != n:
                        return instance, ("failed", f"the stored file is shorter than it was: {instance.path}")
        except (OSError, ValueError) as exc:
            log.error("cannot read %s to send it: %s", instance.path, exc)
            return instance, ("failed", f"cannot read {instance.path}: {exc}")
        return instance, pdus

    def _store_prepared(self, instance: Instance, pdus: memoryview, following: Instance | None) -> tuple[str, str]:
        """Send prepared PDUs, read the following instance while the node stores this one,
        then take the response (app.net.command_reader decoded it)."""
        from app.net.direct_messages import RawPData
        from app.net.remote import AssociationFailed
        assoc = self.assoc
        # as pynetdicom's send_c_store: the association's own loop stays off the DIMSE queue
        # while we wait for our response on it
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.0001)
        try:
            if self._write_here:  # this thread writes; the DUL thread only reads meanwhile
                assoc.dul.socket.send(pdus)
            else:
                assoc.dul.send_pdu(RawPData(pdus))
            if following is not None:
                self._prepared = self._prepare(following)
            _, rsp = assoc.dimse.get_msg(block=True)
        finally:
            assoc._reactor_checkpoint.set()
        if rsp is None or getattr(rsp, "Status", None) is None:
            aborted = assoc.is_aborted or assoc.acse.is_aborted() or not assoc.is_established
            why = "aborted the association" if aborted else "did not answer in time (timeouts.storage)"
            self.close(abort=True)
            raise AssociationFailed(f"{self.node.aet} {why}")
        return self._outcome(instance, int(rsp.Status), str(getattr(rsp, "ErrorComment", "") or "").strip())

    def _send_packed(self, instance: Instance) -> tuple[str, str]:
        """§4.2.1.3.1.4: a Table 4-8 class the node lacks, packed into its carrier class."""
        from app.dicom import packing
        try:
            packed = packing.pack(Path(instance.path).read_bytes(), self.node.pack)
        except OSError as exc:
            return "failed", f"the stored file cannot be read: {instance.path} ({exc.strerror or exc})"
        except Exception as exc:  # noqa: BLE001 - reported as this instance's failure
            log.exception("could not pack %s", instance.sop_instance)
            return "failed", f"{_class_name(instance.sop_class)} could not be packed: {exc}"
        outcome, message = self._store(instance, packed)
        if outcome != "failed":
            self.sent_as = [(str(packed.SOPClassUID), str(packed.SOPInstanceUID))]
            log.info("%s %s sent to %s packed as %s %s", _class_name(instance.sop_class), instance.sop_instance,
                     self.node.aet, _class_name(packed.SOPClassUID), packed.SOPInstanceUID)
        return outcome, message

    def _send_split(self, instance: Instance) -> tuple[str, str]:
        """§4.2.1.3.1.5: an Enhanced MR to a node that only takes MR Image, frame by frame."""
        from app.dicom.enhanced_split import split
        ds = read_instance(instance)
        if ds is None:
            return "failed", f"the stored file cannot be read: {instance.path}"
        try:
            images = split(ds)
        except Exception as exc:  # noqa: BLE001 - reported as this instance's failure
            log.exception("could not split Enhanced MR %s", instance.sop_instance)
            return "failed", f"the Enhanced MR could not be split into MR images: {exc}"
        outcomes = [self._store(instance, image) for image in images]
        failed = [m for o, m in outcomes if o == "failed"]
        if failed:
            return "failed", f"{len(failed)} of {len(images)} frames (split into MR images) failed: {failed[0]}"
        log.info("Enhanced MR %s sent to %s as %d MR images", instance.sop_instance, self.node.aet, len(images))
        self.sent_as = [(str(i.SOPClassUID), str(i.SOPInstanceUID)) for i in images]
        return "sent", ""

    def _store(self, instance: Instance, ds) -> tuple[str, str]:
        from app.net.remote import AssociationFailed
        if ds is None:
            return "failed", f"the stored file cannot be read: {instance.path}"
        try:
            status = self.assoc.send_c_store(ds)
        except ValueError as exc:  # no accepted context can carry it
            return "failed", f"{_class_name(instance.sop_class)} in {UID(instance.transfer_syntax).name}: {exc}"
        except (OSError, AttributeError) as exc:
            if not self.assoc.is_established:
                raise AssociationFailed(f"the association to {self.node.aet} was lost: {exc}") from None
            return "failed", f"cannot send {instance.path}: {exc}"
        if not status or "Status" not in status:  # timeout (Table 4-7) or abort
            aborted = self.assoc.is_aborted or self.assoc.acse.is_aborted() or not self.assoc.is_established
            why = "aborted the association" if aborted else "did not answer in time (timeouts.storage)"
            self.close(abort=True)
            raise AssociationFailed(f"{self.node.aet} {why}")
        return self._outcome(instance, int(status.Status), str(status.get("ErrorComment", "") or "").strip())

    def _outcome(self, instance: Instance, status: int, comment: str) -> tuple[str, str]:
        outcome, message = statuses.send_outcome(status)
        if outcome == "failed":
            log.warning("C-STORE of %s to %s: status 0x%04X %s", instance.sop_instance, self.node.aet,
                        status, comment)
        return outcome, f"{message}: {comment}" if comment and message else message or comment

    def close(self, abort: bool = False) -> None:
        if self.assoc.is_established:
            self.assoc.abort() if abort else self.assoc.release()


def _class_name(uid: str) -> str:
    name = UID(uid).name
    return name if name and name != uid else f"SOP class {uid}"
