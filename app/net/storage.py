"""Storage service (C-STORE). SCP: a thin adapter onto the one store pipeline."""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset

from app.dicom import statuses
from app.dicom.sop_classes import storage_scp_classes
from app.dicom.transfer_syntaxes import STORAGE_SCP
from app.store.ingest import Ingest

log = logging.getLogger(__name__)


def scp_contexts() -> list[tuple[str, tuple[str, ...]]]:
    return [(uid, STORAGE_SCP) for uid in storage_scp_classes()]


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
