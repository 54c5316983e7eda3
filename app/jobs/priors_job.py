"""The priors job (issue 7): a study's earlier studies of the same patient fetched from the
configured archive (setting hanging.priors_node), so the hanging protocol can put current
and prior side by side. A C-FIND at study level by Patient ID and dates up to the study's,
the newest hanging.priors_count that share a modality with it and are not complete here,
each retrieved like a retrieve job (C-MOVE or C-GET, hanging.priors_method) through the one
store pipeline. Asked again, it brings only what is still missing."""

from __future__ import annotations

from app.jobs.queue import JobContext, JobError

KIND = "priors"


def group(node_name: str) -> str:
    return f"retrieve:{node_name}"  # one association at a time to a node, with the retrieve jobs


def title(node_name: str, patient: str) -> str:
    return f"Fetch prior studies of {patient or 'the patient'} from {node_name}"


def params(node_name: str, study: str, count: int, method: str) -> dict:
    return {"node": node_name, "study": study, "count": count, "method": method}


def priors_to_fetch(archive, node, study_uid: str, count: int) -> list[dict]:
    """The study rows (C-FIND identifiers as keyword -> text) of ``node`` worth fetching:
    of the patient's other studies dated up to this one that share a modality with it (a
    mammogram's priors are mammograms), the newest ``count``, less those already complete
    in the archive."""
    from app.net.query_retrieve import find_remote, identifier_values
    from app.store.query import search
    rows = search(archive.engine, "study", {"StudyInstanceUID": study_uid})
    if not rows or not rows[0].get("PatientID"):
        return []
    current = rows[0]
    date = current.get("StudyDate") or ""
    keys = {"PatientID": current["PatientID"], "StudyDate": f"-{date}" if date else "",
            "ModalitiesInStudy": "", "NumberOfStudyRelatedInstances": ""}
    found, _ = find_remote(archive.settings, node, "study", keys)
    ours = set(str(current.get("ModalitiesInStudy") or "").split("\\")) - {""}
    candidates = []
    for ds in found:
        row = identifier_values(ds)
        uid = row.get("StudyInstanceUID")
        if not uid or uid == study_uid or row.get("PatientID", current["PatientID"]) != current["PatientID"]:
            continue
        theirs = set(row.get("ModalitiesInStudy", "").split("\\")) - {""}
        if ours and theirs and not ours & theirs:
            continue
        candidates.append(row)
    candidates.sort(key=lambda r: (r.get("StudyDate") or "", r.get("StudyTime") or ""), reverse=True)
    wanted = []
    for row in candidates[:count]:
        uid = row["StudyInstanceUID"]
        local = search(archive.engine, "study", {"StudyInstanceUID": uid})
        have = int(local[0].get("NumberOfStudyRelatedInstances") or 0) if local else 0
        remote = int(row.get("NumberOfStudyRelatedInstances") or 0)
        if local and have >= remote > 0:
            continue  # complete here already
        wanted.append(row)
    return wanted


def runner(archive):
    def run(ctx: JobContext) -> str:
        from app.jobs.retrieve_job import configured_node
        from app.net.query_retrieve import QueryFailed, retrieve_remote
        p = ctx.job.params
        node = configured_node(archive, p["node"], "or set hanging.priors_node to another archive")
        ctx.progress(0, 0, f"asking {node.aet} for the patient's earlier studies")
        try:
            wanted = priors_to_fetch(archive, node, p["study"], int(p.get("count", 2)))
            if not wanted:
                return f"no earlier studies on {node.aet} that are not here already"
            total = sum(int(r.get("NumberOfStudyRelatedInstances") or 0) for r in wanted) or None
            done = 0
            for row in wanted:
                ctx.check()
                before = done

                def on_progress(progress, before=before, row=row) -> None:
                    ctx.progress(before + progress.completed + progress.warning, total,
                                 f"study of {row.get('StudyDate', '?')}: {progress.completed + progress.warning} "
                                 f"of {progress.total} received")
                progress = retrieve_remote(archive.settings, archive.ingest, node, row["StudyInstanceUID"],
                                           method=p.get("method", "move"), on_progress=on_progress,
                                           cancelled=lambda: ctx.cancelled)
                done += progress.completed + progress.warning
        except QueryFailed as exc:
            ctx.check()  # cancelled or stopped by a shutdown: not a failure
            raise JobError(str(exc)) from None
        archive.settle()  # indexed: the hanging that follows finds them
        dates = ", ".join(r.get("StudyDate", "?") for r in wanted)
        return f"{len(wanted)} prior stud{'y' if len(wanted) == 1 else 'ies'} ({dates}), {done} instance(s), " \
               f"retrieved from {node.aet}"
    return run
