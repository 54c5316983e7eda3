"""Command line: `lightbox` (GUI) and the headless commands of DESIGN.md."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from app import __version__, logs
from app.config import Settings, SettingsError, data_home, settings_help


class CliError(Exception):
    pass


def _archive(args):
    from app.store.archive import Archive
    return Archive(args.home, args.db)


def _engine(args):
    from app.store.db import open_engine
    return open_engine(args.home, args.db)


def _audit(engine, action: str, detail: str) -> None:
    from app.store import audit, users
    audit.log(engine, users.os_actor(), action, detail)


def _remote_node(archive, name: str):
    from app.store import nodes
    node = nodes.get_node(archive.engine, name)
    if node is None:
        raise CliError(f"no node named '{name}' (see 'lightbox nodes list')")
    return node


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


# -- node -------------------------------------------------------------------------------
def cmd_node(args) -> int:
    from app.net.node import Node
    from app.net.workers import Supervisor, default_workers
    archive = _archive(args)
    workers = args.workers if args.workers is not None else archive.settings["node.workers"]
    workers = workers or default_workers()
    if workers > 1:
        node = Supervisor(archive, workers, aet=args.aet, port=args.port, host=args.host,
                          db_url=args.db, verbose=args.verbose)
    else:
        node = Node(archive, aet=args.aet, port=args.port, host=args.host)
    stop = threading.Event()

    def on_signal(signum, _frame):
        logging.getLogger("app").info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for line in node.start():
            print(f"Lightbox node {line}", file=sys.stderr, flush=True)
    except Exception as exc:
        node.stop(grace=0)
        archive.close()
        raise CliError(str(exc)) from None
    # the jobs (sends, retrieves) of this data home: queued or interrupted ones resume here
    from app.jobs.runners import make_job_queue
    jobs = make_job_queue(archive)
    jobs.start()
    from app.jobs.router import Router
    from app.net.worklist import WorklistPoller
    from app.store.watermark import Watchdog
    watermark, router = Watchdog(archive).start(), Router(archive, jobs).start()
    worklist = WorklistPoller(archive).start()
    from app.jobs.print_job import CameraPoller, stopped_queues, sweep_spool
    stopped_queues(jobs)
    sweep_spool(archive, jobs)
    cameras = CameraPoller(archive, jobs).start()
    while not stop.wait(0.5):
        if workers > 1:
            node.respawn_dead()
    cameras.stop()
    worklist.stop()
    router.stop()
    watermark.stop()
    jobs.stop()
    node.stop()
    archive.close()
    print("Lightbox node stopped", file=sys.stderr, flush=True)
    return 0


# -- import -----------------------------------------------------------------------------
def cmd_import(args) -> int:
    from app.importer import collect, import_paths
    from app.progress import Progress
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        raise CliError(f"not found: {', '.join(map(str, missing))}")
    from app.media.medium import MediumError, import_medium, is_medium_file, open_medium
    # ISO images and ZIP archives: read in place, without mounting or unpacking
    images = [p for p in args.paths if p.is_file() and is_medium_file(p)]
    archive = _archive(args)
    try:
        files = collect([p for p in args.paths if p not in images])
        bar = Progress(len(files), "import")
        summary = import_paths(archive.ingest, files, lambda f, r: bar.advance(1, f.name))
        bar.close()
        for image in images:
            try:
                medium = open_medium(image)
            except MediumError as exc:
                summary.rejected.append((str(image), str(exc)))
                continue
            with medium:
                bar = Progress(sum(1 for _ in medium.instances()), image.name)
                done = import_medium(archive.ingest, medium, progress=lambda f, r: bar.advance(1, f.rsplit("/", 1)[-1]))
                bar.close()
            summary.imported += done.imported
            summary.present += done.present
            summary.rejected += [(f"{image}:{f}", why) for f, why in done.rejected]
    finally:
        archive.close()
    if args.json:
        _print_json(summary.as_dict())
    else:
        print(f"imported {summary.imported}, already present {summary.present}, rejected {len(summary.rejected)}")
        for path, reason in summary.rejected:
            print(f"  rejected {path}: {reason}")
    return 0 if not summary.rejected or summary.imported + summary.present else 1


# -- send -------------------------------------------------------------------------------
def cmd_send(args) -> int:
    from app.jobs import send_job
    from app.jobs.queue import DONE
    from app.jobs.runners import make_job_queue
    archive = _archive(args)
    try:
        node = _remote_node(archive, args.node)
        if args.study or args.series:
            archive.settle()
            uid = args.study or args.series
            instances = send_job.archive_instances(archive, study=args.study, series=args.series)
            if not instances:
                raise CliError(f"no {'study' if args.study else 'series'} {uid} in the local archive")
            what = f"{'study' if args.study else 'series'} {uid}"
            rejected = []
        else:
            missing = [p for p in args.paths if not p.exists()]
            if missing:
                raise CliError(f"not found: {', '.join(map(str, missing))}")
            instances, rejected = send_job.file_instances(args.paths)
            for path, reason in rejected:
                print(f"  skipped {path}: {reason}", file=sys.stderr)
            if not instances:
                raise CliError("no DICOM instance to send in " + ", ".join(map(str, args.paths)))
            what = f"{len(instances)} file{'s' if len(instances) != 1 else ''}"
        queue = make_job_queue(archive)
        job_id = queue.submit(send_job.KIND, send_job.title(node.name, what, len(instances)),
                              send_job.params(node.name, instances, archive.files.root, commit=args.commit),
                              group=send_job.group(node.name))
        _audit(archive.engine, "send", f"{what} to {node.name} ({node.aet}@{node.host}:{node.port}), job {job_id}"
               + (" with storage commitment" if args.commit else ""))
        job = _run_job_here(queue, job_id, f"send to {node.name}", len(instances))
        if job.status == DONE and job.state.get("commit_job"):
            print(f"job {job.id} {job.status}: {job.message}", file=sys.stderr)
            with _receiving(archive):  # the report may come on an association of its own
                job = _run_job_here(queue, job.state["commit_job"], f"commitment by {node.name}", len(instances))
    finally:
        archive.close()
    if args.json:
        _print_json(job.as_dict())
    else:
        print(f"job {job.id} {job.status}: {job.message}")
    return 0 if job.status == DONE and not rejected else 1


def _run_job_here(queue, job_id: int, label: str, total: int = 0):
    """Run a submitted job in this process with a progress bar; Ctrl-C stops it after the
    current step and leaves it queued, to resume at the next start of the GUI or node."""
    from app import events
    from app.progress import Progress
    bar = Progress(total, label)

    def on_update(job: dict) -> None:
        if job["id"] == job_id:
            bar.total = job["total"] or bar.total
            if job["done"] > bar.done:
                bar.advance(job["done"] - bar.done, job["message"])
    unsubscribe = events.subscribe("job-updated", on_update)
    finished = threading.Event()

    def work() -> None:
        try:
            queue.run_here(job_id)
        finally:
            finished.set()
    threading.Thread(target=work, name=label).start()
    try:
        while not finished.wait(0.2):  # not Thread.join: a Ctrl-C inside it can end the join early
            pass
    except KeyboardInterrupt:
        print("\ninterrupted: the job stops after the current step and resumes at the next start "
              "of Lightbox (GUI or 'lightbox node')", file=sys.stderr)
        queue.interrupt()
        finished.wait()
    finally:
        unsubscribe()
        bar.close()
    return queue.get(job_id)


# -- retrieve ---------------------------------------------------------------------------
def _listening(host: str, port: int) -> bool:
    import socket
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _receiving(archive, needed: bool = True):
    """Our node listening while the block runs: the GUI's or 'lightbox node' if one is up,
    else one started here for the time being (a C-MOVE, a late commitment report)."""
    aet, port = archive.settings.service_address("storage")
    if not needed or _listening("127.0.0.1", port):
        yield
        return
    from app.net.node import Node
    receiver = Node(archive)
    try:
        receiver.start()
    except Exception as exc:  # noqa: BLE001 - the port is taken or not allowed
        raise CliError(f"cannot receive on port {port}: {exc}") from None
    print(f"receiving as {aet} on port {port} while the job runs", file=sys.stderr)
    try:
        yield
    finally:
        receiver.stop()


def cmd_retrieve(args) -> int:
    from app.jobs import retrieve_job
    from app.jobs.queue import DONE
    from app.jobs.runners import make_job_queue
    archive = _archive(args)
    try:
        node = _remote_node(archive, args.node)
        queue = make_job_queue(archive)
        job_id = queue.submit(retrieve_job.KIND, retrieve_job.title(node.name, args.study, args.series, args.method),
                              retrieve_job.params(node.name, args.study, args.series, args.method),
                              group=retrieve_job.group(node.name))
        _audit(archive.engine, "retrieve", f"study {args.study}{' series ' + args.series if args.series else ''} "
                                           f"from {node.name} by {args.method}, job {job_id}")
        with _receiving(archive, needed=args.method == "move"):
            job = _run_job_here(queue, job_id, f"retrieve from {node.name}")
    finally:
        archive.close()
    if args.json:
        _print_json(job.as_dict())
    else:
        print(f"job {job.id} {job.status}: {job.message}")
    return 0 if job.status == DONE else 1


# -- routes -----------------------------------------------------------------------------
def cmd_routes(args) -> int:
    from app.jobs import router
    archive = _archive(args)
    try:
        if args.routes_cmd == "add":
            _remote_node(archive, args.to)
            router.add_route(archive.engine, router.Route(args.name, args.to, args.from_aet, args.modality,
                                                          args.commit))
            _audit(archive.engine, "route-add", f"{args.name}: to {args.to} from {args.from_aet or 'any AE'}, "
                                                f"{args.modality or 'any modality'}{', commit' if args.commit else ''}")
            print(f"route {args.name}: what arrives from now on "
                  f"{'from ' + args.from_aet if args.from_aet else ''}{' of modality ' + args.modality if args.modality else ''}"
                  f" goes to {args.to}{' with storage commitment' if args.commit else ''}")
        elif args.routes_cmd == "remove":
            if not router.remove_route(archive.engine, args.name):
                raise CliError(f"no route named '{args.name}'")
            _audit(archive.engine, "route-remove", args.name)
            print(f"removed {args.name}")
        else:
            routes = router.list_routes(archive.engine)
            if args.json:
                _print_json([r.as_dict() for r in routes])
            else:
                _print_table(["name", "to", "from_aet", "modality", "commit"],
                             [{k: ("yes" if v is True else "" if v in (None, False) else v) for k, v in r.as_dict().items()}
                              for r in routes])
    finally:
        archive.close()
    return 0


# -- query ------------------------------------------------------------------------------
_QUERY_COLUMNS = {
    "patient": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex"],
    "study": ["PatientName", "PatientID", "StudyDate", "AccessionNumber", "ModalitiesInStudy", "StudyDescription",
              "NumberOfStudyRelatedInstances", "StudyInstanceUID"],
    "series": ["StudyInstanceUID", "SeriesNumber", "Modality", "SeriesDescription", "NumberOfSeriesRelatedInstances",
               "SeriesInstanceUID"],
    "image": ["SeriesInstanceUID", "InstanceNumber", "SOPClassUID", "SOPInstanceUID"],
}


def cmd_query(args) -> int:
    from app.net.query_retrieve import QueryFailed, find_remote, identifier_values
    archive = _archive(args)
    try:
        node = _remote_node(archive, args.node)
        try:
            matches, note = find_remote(archive.settings, node, args.level, _keys(args.key), model=args.model)
        except QueryFailed as exc:
            raise CliError(str(exc)) from None
        except ValueError as exc:  # a keyword pydicom does not know
            raise CliError(f"bad key: {exc}") from None
    finally:
        archive.close()
    rows = [identifier_values(ds) for ds in matches]
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        _print_json(rows)
        return 0
    _print_table(_QUERY_COLUMNS[args.level], rows)
    print(f"{len(rows)} match{'es' if len(rows) != 1 else ''} from {node.aet}", file=sys.stderr)
    return 0


# -- worklist ---------------------------------------------------------------------------
_WORKLIST_COLUMNS = ["ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime", "Modality",
                     "ScheduledStationAETitle", "PatientName", "PatientID", "AccessionNumber",
                     "RequestedProcedureDescription", "status"]


def _worklist_date(text: str | None, option: str) -> str | None:
    if text is None:
        return None
    digits = text.replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        raise CliError(f"{option} {text}: give a date as YYYY-MM-DD or YYYYMMDD")
    return digits


def cmd_worklist(args) -> int:
    """One broad query of a worklist provider, its items kept and printed; without a node,
    the items kept and each provider's last query."""
    from app.net.query_retrieve import QueryFailed
    from app.net.worklist import query_and_store
    from app.store import worklist
    archive = _archive(args)
    try:
        note = ""
        if args.node:
            node = _remote_node(archive, args.node)
            if "worklist" not in node.roles:
                raise CliError(f"'{node.name}' is not a worklist provider: give it the role "
                               f"(lightbox nodes add {node.name} ... --roles {','.join(node.roles + ('worklist',))} --replace)")
            try:
                result = query_and_store(archive, node, modality=args.modality,
                                         date_from=_worklist_date(args.date_from, "--from"),
                                         date_to=_worklist_date(args.date_to, "--to"))
            except QueryFailed as exc:
                raise CliError(f"the worklist query of {node.name} failed: {exc} (the items kept from the last "
                               "good query are unchanged)") from None
            note = result.pop("note", "")
        rows = worklist.items(archive.engine, node=args.node or None, include_vanished=args.all)
        providers = worklist.status(archive.engine)
    finally:
        archive.close()
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        out = [{k: v for k, v in r.items() if k != "item"} | {"item": worklist.item_dataset(r).to_json_dict()}
               for r in rows]
        _print_json(out)
    else:
        _print_table(_WORKLIST_COLUMNS, rows)
    if args.node:
        print(f"{result['items']} item(s) from {args.node}: {result['new']} new, {result['changed']} changed, "
              f"{result['vanished']} vanished"
              + (f"; {result['skipped']} malformed item(s) not kept (see the log)" if result["skipped"] else ""),
              file=sys.stderr)
    else:
        for name, p in sorted(providers.items()):
            when = p["last_success"].strftime("%Y-%m-%d %H:%M:%S") if p["last_success"] else "never"
            print(f"{name}: last good query {when} ({p['last_count'] or 0} items)"
                  + (f"; last error: {p['last_error']}" if p["last_error"] else ""), file=sys.stderr)
    return 0


def _print_table(cols: list[str], rows: list[dict]) -> None:
    table = [cols] + [[str(r.get(c) if r.get(c) is not None else "") for c in cols] for r in rows]
    widths = [min(40, max(len(row[i]) for row in table)) for i in range(len(cols))]
    for row in table:
        print("  ".join(v[:40].ljust(w) for v, w in zip(row, widths)).rstrip())


# -- ls ---------------------------------------------------------------------------------
_LS_COLUMNS = {
    "patient": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies"],
    "study": ["PatientName", "PatientID", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
              "StudyDescription", "NumberOfStudyRelatedInstances", "StudyInstanceUID"],
    "series": ["StudyInstanceUID", "SeriesNumber", "Modality", "SeriesDescription",
               "NumberOfSeriesRelatedInstances", "SeriesInstanceUID"],
    "instance": ["SeriesInstanceUID", "InstanceNumber", "SOPClassUID", "SOPInstanceUID"],
}


def _keys(pairs: list[str]) -> dict[str, str]:
    keys = {}
    for pair in pairs:
        if "=" not in pair:
            raise CliError(f"-k expects KEYWORD=VALUE, got '{pair}'")
        k, v = pair.split("=", 1)
        keys[k] = v
    return keys


def cmd_ls(args) -> int:
    from app.store.query import QueryError, search
    archive = _archive(args)
    try:
        archive.settle()  # list what was acknowledged just before, too
        rows = search(archive.engine, args.level, _keys(args.key), limit=args.limit)
    except QueryError as exc:
        raise CliError(str(exc)) from None
    finally:
        archive.close()
    if args.json:
        _print_json([{k: v for k, v in r.items() if v is not None} for r in rows])
        return 0
    _print_table(_LS_COLUMNS[args.level], rows)
    return 0


# -- nodes ------------------------------------------------------------------------------
def cmd_nodes(args) -> int:
    from app.store import nodes
    archive = _archive(args)
    try:
        if args.nodes_cmd == "add":
            from app.net import tls
            try:
                cert = args.cert.read_bytes() if args.cert else None
            except OSError as exc:
                raise CliError(f"cannot read the certificate file {args.cert}: {exc.strerror or exc}") from None
            pin = args.pin.strip().lower().replace(":", "") if args.pin else None
            if pin and (len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin)):
                raise CliError("--pin expects a SHA-256 thumbprint: 64 hex digits (colons allowed)")
            roles = tuple(args.roles.split(",")) if args.roles else nodes.ROLES
            node = nodes.add_node(archive.engine, nodes.RemoteNode(
                args.name, args.aet, args.host, args.port, roles, args.tls, cert, pin, args.comment,
                nodes.syntaxes_from_text(args.syntaxes or ""), nodes.class_syntaxes_from_text(args.class_syntaxes or ""),
                "" if args.pack == "none" else args.pack,
                nodes.PrinterSetup.from_text(args.printer) if args.printer else nodes.PrinterSetup()),
                replace=args.replace)
            _audit(archive.engine, "node-add", f"{node.name}: {node.aet}@{node.host}:{node.port}")
            print(f"added {node.name}: {node.aet}@{node.host}:{node.port}"
                  + (f" TLS, pinned SHA-256 {node.cert_sha256}" if node.cert_sha256 else " TLS" if node.tls else ""))
            for note in tls.certificate_notes(cert):
                print(f"note: {note}", file=sys.stderr)
            if node.tls and not node.cert_sha256 and not archive.settings["tls.ca_file"]:
                print("note: no certificate is pinned and tls.ca_file is not set, so no TLS peer can be "
                      "trusted yet: add --cert FILE, or lightbox config set tls.ca_file FILE", file=sys.stderr)
        elif args.nodes_cmd == "list":
            found = nodes.list_nodes(archive.engine)
            if args.json:
                _print_json([n.as_dict() for n in found])
            else:
                for n in found:
                    print(f"{n.name:16} {n.aet:16} {n.host}:{n.port}{'  TLS' if n.tls else ''}  {','.join(n.roles)}"
                          + (f"  printer: {n.printer.as_text()}" if "print" in n.roles else ""))
        elif args.nodes_cmd == "remove":
            if not nodes.remove_node(archive.engine, args.name):
                raise CliError(f"no node named '{args.name}'")
            _audit(archive.engine, "node-remove", args.name)
            print(f"removed {args.name}")
        elif args.nodes_cmd == "echo":
            return _echo(archive, args.name)
    finally:
        archive.close()
    return 0


def _echo(archive, name: str) -> int:
    from app.net import verification
    node = _remote_node(archive, name)
    started = time.monotonic()
    try:
        status = verification.echo_node(archive.settings, node)
    except ConnectionError as exc:
        raise CliError(str(exc)) from None
    ms = (time.monotonic() - started) * 1000
    print(f"C-ECHO {node.aet}@{node.host}:{node.port}: status 0x{status:04X}"
          + (" (success)" if status == 0 else "") + f", {ms:.0f} ms round trip (association, echo, release)")
    return 0 if status == 0 else 1


# -- config -----------------------------------------------------------------------------
def cmd_config(args) -> int:
    settings = Settings.load(args.home)
    if args.config_cmd == "get":
        value = settings.get(args.key)
        _print_json({args.key: value}) if args.json else print(value)
    elif args.config_cmd == "set":
        value = settings.set(args.key, args.value)
        settings.save()
        _audit(_engine(args), "settings", f"{args.key} = {value}")
        print(f"{args.key} = {value}")
    elif args.config_cmd == "unset":
        settings.unset(args.key)
        settings.save()
        _audit(_engine(args), "settings", f"{args.key} = {settings.get(args.key)} (default)")
        print(f"{args.key} = {settings.get(args.key)} (default)")
    elif args.config_cmd == "list":
        items = [{"key": s.key, "value": settings.get(s.key), "default": s.default,
                  "set": settings.is_set(s.key), "help": s.help} for s in settings_help()]
        if args.json:
            _print_json(items)
        else:
            for it in items:
                mark = "*" if it["set"] else " "
                print(f"{mark} {it['key']:32} {str(it['value']):24} {it['help']}")
    return 0


# -- render ------------------------------------------------------------------------------
def cmd_render(args) -> int:
    from app.imaging import render
    from app.imaging.png import encode_png
    if (args.path is None) == (args.series is None):
        raise CliError("give either a file PATH or --series UID")
    try:
        window = render.parse_window(args.window) if args.window else None
        size = render.parse_size(args.size) if args.size else None
        if args.series:
            archive = _archive(args)
            try:
                files = render.series_files(archive, args.series)
            finally:
                archive.close()
            if not 1 <= args.frame <= len(files):
                raise render.RenderError(f"--frame {args.frame} is out of range: the series has {len(files)} image(s)")
            path = files[args.frame - 1]
            req = render.RenderRequest(1, window, size, args.annotate, args.frame, len(files))
        else:
            path, req = args.path, render.RenderRequest(args.frame, window, size, args.annotate, args.frame)
        img = render.render_path(path, req)
    except render.RenderError as exc:
        raise CliError(str(exc)) from None
    try:
        args.out.write_bytes(encode_png(img))
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"{args.out}: {img.shape[1]}x{img.shape[0]}")
    return 0


# -- hang --------------------------------------------------------------------------------
def cmd_hang(args) -> int:
    from app.imaging import render
    from app.imaging.png import encode_png
    from app.imaging.study_hanging import HangError, hang_study, render_stage
    archive = _archive(args)
    try:
        try:
            size = render.parse_size(args.size)
            if not args.local:
                _fetch_priors(archive, args.study)
            hung = hang_study(archive, args.study, args.home / "hanging")
            img = render_stage(hung, args.stage - 1, size, args.cad or "") if args.out else None
        except (HangError, render.RenderError) as exc:
            raise CliError(str(exc)) from None
    finally:
        archive.close()
    stages = [{"stage": i + 1, "name": s.name, "grid": f"{s.rows}x{s.columns}",
               "viewports": [hv.display_set.label if hv.display_set else None for hv in s.viewports]}
              for i, s in enumerate(hung.stages)]
    if args.json:
        _print_json({"protocol": hung.protocol.id, "name": hung.protocol.name, "stages": stages})
    elif img is None:
        print(f"protocol: {hung.protocol.name} ({hung.protocol.id})")
        for st in stages:
            print(f"  {st['stage']:2d}  {st['grid']:4s} {st['name']}: {', '.join(v or '-' for v in st['viewports'])}")
    if img is not None:
        try:
            args.out.write_bytes(encode_png(img))
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        if not args.json:
            print(f"{args.out}: {img.shape[1]}x{img.shape[0]}, stage {args.stage} of {len(hung.stages)} "
                  f"({hung.stages[args.stage - 1].name}) of '{hung.protocol.name}'")
    return 0


def _fetch_priors(archive, study: str) -> None:
    """The study's priors from the archive of hanging.priors_node, as the viewer fetches
    them: a priors job run here. Its failure is said, and the study hangs with the priors
    already here (a reading must not wait on an archive that is down)."""
    from app.jobs import priors_job
    from app.jobs.queue import DONE
    from app.jobs.runners import make_job_queue
    from app.store import nodes
    from app.store.query import search
    name = archive.settings["hanging.priors_node"]
    rows = search(archive.engine, "study", {"StudyInstanceUID": study}) if name else []
    if not rows:
        return
    node = nodes.get_node(archive.engine, name)
    if node is None:
        print(f"warning: hanging.priors_node '{name}' is not a configured remote node (lightbox nodes list); "
              "hanging with the priors held here", file=sys.stderr)
        return
    method = archive.settings["hanging.priors_method"]
    queue = make_job_queue(archive)
    job_id = queue.submit(priors_job.KIND, priors_job.title(node.name, str(rows[0].get("PatientName") or "")),
                          priors_job.params(node.name, study, archive.settings["hanging.priors_count"], method),
                          group=priors_job.group(node.name))
    _audit(archive.engine, "retrieve", f"priors of study {study} from {node.name} by {method}, job {job_id}")
    try:
        with _receiving(archive, needed=method == "move"):
            job = _run_job_here(queue, job_id, f"priors from {node.name}")
    except CliError as exc:
        print(f"warning: {exc}; hanging with the priors held here", file=sys.stderr)
        return
    if job.status == DONE:
        print(f"priors: {job.message}", file=sys.stderr)
    else:
        print(f"warning: the priors could not be fetched from {node.name}: {job.message}; hanging with the "
              "priors held here", file=sys.stderr)


# -- correct ---------------------------------------------------------------------------
_PATIENT_OPTIONS = {"patient_name": "PatientName", "patient_id": "PatientID", "issuer": "IssuerOfPatientID",
                    "birth_date": "PatientBirthDate", "sex": "PatientSex"}


def cmd_correct(args) -> int:
    """Correct a study (spec §4.2.1.3.1.8): patient data, Patient Position, or move it to a
    scheduled procedure or another patient; or merge two patients."""
    from app.dicom.corrections import CorrectionError
    from app.store import users
    from app.store.correct import WARNING, CorrectionFailed, Request, apply
    archive = _archive(args)
    try:
        request = Request(study=args.study, patient={kw: getattr(args, opt) for opt, kw in _PATIENT_OPTIONS.items()
                                                     if getattr(args, opt) is not None},
                          position=args.position, to_procedure=args.to_procedure, to_patient=args.to_patient,
                          merge_patient=args.patient, merge_into=args.merge_into)
        try:
            results = apply(archive, request, actor=users.os_actor())
        except (CorrectionFailed, CorrectionError) as exc:
            raise CliError(str(exc)) from None
    finally:
        archive.close()
    if args.json:
        _print_json([r.__dict__ for r in results])
    else:
        for r in results:
            moved = f" (now study {r.study_after})" if r.study_after != r.study_before else ""
            print(f"study {r.study_before}{moved}: {r.instances} instance(s) corrected; changed "
                  f"{', '.join(r.changed) or 'nothing'}")
    print(f"warning: {WARNING}", file=sys.stderr)
    return 0


# -- print -------------------------------------------------------------------------------
def cmd_print(args) -> int:
    """Lay the images out on films (a header on each), queue them for the printer and send
    them; or write the pages to a file (print to file)."""
    from app.film.compose import FilmError, parse_layout
    from app.film.sheet import Cell, FilmFormat, Sheet, render
    from app.jobs import print_job
    from app.jobs.queue import DONE, QUEUED
    from app.jobs.runners import make_job_queue
    from app.net.printing import Film, printer_status
    if args.printer and Path(args.printer).is_file():  # 'print --out page.png a.dcm b.dcm': no printer
        args.paths, args.printer = [args.printer, *args.paths], None
    archive = _archive(args)
    try:
        node = _remote_node(archive, args.printer) if args.printer else None
        if args.status or args.restart:
            if node is None:
                raise CliError("give the printer whose queue to show or restart")
            queue = make_job_queue(archive)
            if args.restart:
                print_job.restart(queue, node.name)
                _audit(archive.engine, "print-restart", node.name)
                print(f"queue of {node.name} restarted")
            return _print_queue_status(archive, queue, node, printer_status, print_job)
        if not node and not args.out:
            raise CliError("give a printer (see 'lightbox nodes list') or --out FILE (.png or .pdf) for the pages")
        setup = node.printer if node else None
        dpi = args.dpi or (setup.dpi if setup else 300)
        bits = args.bits or (setup.bits if setup else 12)
        if setup and args.film not in setup.film_sizes:
            raise CliError(f"{node.name} takes the film sizes {', '.join(setup.film_sizes)}, not {args.film} "
                           "(printer settings)")
        try:
            rows, columns = parse_layout(args.layout)
            fmt = FilmFormat(args.film, args.orientation, dpi, bits, color=bool(setup and setup.color and args.color),
                             header=not args.no_header)
            files = archive_series_paths(archive, args.series) if args.series else [str(p) for p in args.paths]
            if not files:
                raise CliError("no images to print: give --series UID or files")
            cells = [Cell(f, true_size=args.true_size) for f in files]
            per = rows * columns
            sheets = [Sheet(args.layout, cells[i:i + per]) for i in range(0, len(cells), per)]
            pages = [render(sheet, fmt) for sheet in sheets]
        except FilmError as exc:
            raise CliError(str(exc)) from None
        films = f"{len(pages)} {args.film} {args.orientation.lower()} film{'s' if len(pages) != 1 else ''}"
        shape = f"{pages[0].shape[1]}x{pages[0].shape[0]} pixels, {bits} bits"
        if args.out:
            from app.film.to_file import write_pages
            try:
                written = write_pages(pages, args.out, dpi)
            except OSError as exc:
                raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
            print(f"{', '.join(map(str, written))}: {films} ({shape})")
        if not node:
            return 0
        film = Film(size=args.film, orientation=args.orientation, medium=args.medium,
                    magnification=args.magnification or setup.magnification,
                    border_density=args.border or setup.border_density or None,
                    min_density=args.min_density or setup.min_density, max_density=args.max_density or setup.max_density)
        queue = make_job_queue(archive)
        what = f"series {args.series}" if args.series else f"{len(files)} image{'s' if len(files) != 1 else ''}"
        job_id = print_job.submit(queue, archive, node.name, pages, film, what=what)
        _audit(archive.engine, "print", f"{len(cells)} image(s) on {films} ({args.layout}) to {node.name}, job {job_id}")
        job = _run_job_here(queue, job_id, f"print on {node.name}", len(pages))
    finally:
        archive.close()
    if job.status == DONE:
        print(f"printed {len(cells)} image(s) on {films} ({shape}) on {node.name}: {job.message}")
        return 0
    if job.status == QUEUED:
        print(f"not printed yet, job {job.id} {job.message}. It stays in the queue of {node.name}: Lightbox (the GUI "
              f"or 'lightbox node') sends it when the printer is available.", file=sys.stderr)
        return 75  # EX_TEMPFAIL
    raise CliError(f"job {job.id} {job.status}: {job.message}")


def _print_queue_status(archive, queue, node, printer_status, print_job) -> int:
    from app.film import cameras
    from app.jobs.queue import FINISHED
    from app.net.printing import PrintFailed
    stopped = print_job.stopped_queues(queue)
    try:
        cameras.update(node.name, *printer_status(archive.settings, node))
    except PrintFailed as exc:
        cameras.unreachable(node.name, str(exc))
    camera = cameras.current()[node.name]
    print(f"{node.name}: {camera.symbol}: {camera.message}"
          + (f" [{camera.status} {camera.info}]" if camera.status else ""))
    if node.name in stopped:
        print(f"queue stopped: {stopped[node.name]} ('lightbox print {node.name} --restart' restarts it)")
    for job in queue.list():
        if job.group == print_job.group(node.name) and job.status not in FINISHED:
            print(f"  job {job.id} {job.status}: {job.title}: {job.message}")
    return 0


def archive_series_paths(archive, series_uid: str) -> list[str]:
    from app.imaging.series import archive_series_files
    return [str(p) for p in archive_series_files(archive, series_uid)]


# -- export -------------------------------------------------------------------------------
def cmd_export(args) -> int:
    """Studies or series as a File-set on CD/DVD (an ISO image) or USB (a folder), read back."""
    from app.jobs import export_job
    from app.jobs.queue import DONE
    from app.jobs.runners import make_job_queue
    from app.media import profiles
    from app.media.export import ExportOptions, items_from_archive
    media = args.media or ("usb" if args.dir else "cd")
    kind = args.kind or ("patient" if media == "usb" else "standard")  # a stick has only the J2K profile
    profile = args.profile or profiles.CHOICES.get(kind, {}).get(media)
    if profile is None:
        raise CliError(f"there is no {kind} profile for {media}: "
                       + ", ".join(f"{k}: {', '.join(v)}" for k, v in profiles.CHOICES.items()))
    if profile in profiles.PROFILES and (args.iso or args.dir):
        iso = profiles.PROFILES[profile].iso
        if iso != bool(args.iso):
            raise CliError(f"{profile} writes {'an ISO image: use --iso FILE' if iso else 'a folder: use --dir DIR'}")
    args.out = args.out or args.iso or args.dir
    archive = _archive(args)
    try:
        archive.settle()
        items = items_from_archive(archive, studies=args.study or [], series=args.series or [])
        if not items:
            raise CliError("nothing to export: no such study or series in the local archive")
        options = ExportOptions(profile, args.out, fileset_id=args.fileset_id, deidentify=args.deidentify,
                                mapping=args.mapping, patient_name=args.patient_name,
                                icons=args.icons or None, lossy=args.lossy,
                                leave_out_burned_in=args.leave_out_burned_in)
        queue = make_job_queue(archive)
        job_id = queue.submit(export_job.KIND, export_job.title(options, len(items)), export_job.params(items, options))
        _audit(archive.engine, "export", f"{len(items)} instance(s) as {profile} to {args.out}"
               + (f", de-identified ({args.deidentify})" if args.deidentify else "") + f", job {job_id}")
        job = _run_job_here(queue, job_id, f"export {profile}", len(items))
    finally:
        archive.close()
    if args.json:
        _print_json(job.as_dict())
    else:
        print(f"job {job.id} {job.status}: {job.message}")
        for line in job.state.get("verified", []):
            print(f"  verified: {line}")
        for sop, why in job.state.get("refused", [])[:20]:
            print(f"  not exported {sop}: {why}", file=sys.stderr)
        for warning in job.state.get("warnings", [])[:20]:
            print(f"  warning: {warning}", file=sys.stderr)
    return 0 if job.status == DONE else 1


# -- delete ------------------------------------------------------------------------------
def cmd_delete(args) -> int:
    from app.store import users
    from app.store.delete import delete_studies, never_committed
    archive = _archive(args)
    try:
        unsafe = never_committed(archive.engine, args.study)
        if unsafe and not args.force:
            raise CliError(f"{len(unsafe)} of the studies were never committed to an archive (storage commitment), "
                           f"e.g. {unsafe[0]}; this may be the only copy. Add --force to delete anyway.")
        result = delete_studies(archive.engine, archive.files, args.study, actor=users.os_actor())
    finally:
        archive.close()
    print(f"deleted {result.studies} stud(ies), {result.instances} instance(s)")
    if result.studies < len(set(args.study)):
        print(f"{len(set(args.study)) - result.studies} not found", file=sys.stderr)
    return 0 if not result.files_left else 1


# -- users and audit --------------------------------------------------------------------
def _new_password(args, name: str) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise CliError("give the password on standard input with --password-stdin")
    import getpass
    first = getpass.getpass(f"New password for {name}: ")
    if getpass.getpass("Repeat it: ") != first:
        raise CliError("the two passwords differ; nothing changed")
    return first


def cmd_users(args) -> int:
    from app.store import users
    engine = _engine(args)
    actor = users.os_actor()
    try:
        if args.users_cmd == "add":
            user = users.add_user(engine, args.name, args.role, _new_password(args, args.name),
                                  full_name=args.full_name, actor=actor)
            print(f"added {user.name} ({users.ROLE_NAMES[user.role]})")
        elif args.users_cmd == "list":
            found = users.list_users(engine)
            if args.json:
                _print_json([{"name": u.name, "role": u.role, "full_name": u.full_name,
                              "created_at": u.created_at, "last_login": u.last_login} for u in found])
            else:
                for u in found:
                    last = u.last_login.strftime("%Y-%m-%d %H:%M") if u.last_login else "never"
                    print(f"{u.name:20} {u.role:13} {u.full_name or '':30} last login {last}")
        elif args.users_cmd == "passwd":
            if users.get_user(engine, args.name) is None:
                raise CliError(f"there is no user '{args.name}' (see 'lightbox users list')")
            users.set_password(engine, args.name, _new_password(args, args.name), actor=actor)
            print(f"new password set for {args.name}")
        elif args.users_cmd == "role":
            users.set_role(engine, args.name, args.role, actor=actor)
            print(f"{args.name} is now {users.ROLE_NAMES[args.role]}")
        elif args.users_cmd == "remove":
            users.remove_user(engine, args.name, actor=actor)
            print(f"removed {args.name}")
    except users.UserError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
    return 0


def cmd_audit(args) -> int:
    from datetime import datetime, timezone

    from app.store import audit
    engine = _engine(args)
    try:
        since = None
        if args.since:
            try:
                since = datetime.fromisoformat(args.since)
            except ValueError:
                raise CliError(f"--since expects a date or date and time (2026-11-27 or 2026-11-27T08:00), "
                               f"got '{args.since}'") from None
            since = since if since.tzinfo else since.astimezone(timezone.utc)
        rows = audit.search(engine, actor=args.user, action=args.action, since=since, patient=args.patient,
                            limit=args.limit)
    finally:
        engine.dispose()
    if args.json:
        _print_json([{k: v for k, v in r.items() if v is not None and k != "id"} for r in rows])
        return 0
    for r in rows:
        when = r["at"].strftime("%Y-%m-%d %H:%M:%S") if r["at"] else ""
        patient = f"  [{r['patient_id']}]" if r.get("patient_id") else ""
        print(f"{when}  {r['actor']:20} {r['action']:14} {r['outcome']:8} {r['detail'] or ''}{patient}")
    return 0


def cmd_gui(args) -> int:
    from app.ui.main import run
    return run(args)


# -- parser -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lightbox", description="Lightbox DICOM workstation")
    p.add_argument("--home", type=Path, default=None, help="data home (env LIGHTBOX_HOME)")
    p.add_argument("--db", default=None, help="SQLAlchemy database URL (env LIGHTBOX_DB)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    p.add_argument("--version", action="version", version=f"lightbox {__version__}")
    sub = p.add_subparsers(dest="cmd")

    s = sub.add_parser("node", help="run the DICOM node headless until SIGINT/SIGTERM")
    s.add_argument("--aet", help="AE title (default: setting node.aet)")
    s.add_argument("--port", type=int, help="port (default: setting node.port)")
    s.add_argument("--host", help="listen address (default: every IPv4 and IPv6 address)")
    s.add_argument("--workers", type=int, help="worker processes (default: setting node.workers)")
    s.set_defaults(fn=cmd_node)

    s = sub.add_parser("import", help="import files, folders, DICOMDIRs, ISO images or ZIP archives into the archive")
    s.add_argument("paths", nargs="+", type=Path)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_import)

    s = sub.add_parser("send", help="send studies, series or files to a remote node (a job)")
    s.add_argument("node", help="remote node name (see 'lightbox nodes list')")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--study", metavar="UID", help="a study of the local archive")
    what.add_argument("--series", metavar="UID", help="a series of the local archive")
    what.add_argument("paths", nargs="*", type=Path, default=[], help="DICOM files or folders")
    s.add_argument("--commit", action="store_true",
                   help="then ask the node for storage commitment (after commit.delay seconds)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_send)

    s = sub.add_parser("retrieve", help="retrieve a study or series from a remote node (a job)")
    s.add_argument("node", help="remote node name (see 'lightbox nodes list')")
    s.add_argument("--study", required=True, metavar="UID")
    s.add_argument("--series", metavar="UID")
    s.add_argument("--method", default="move", choices=["move", "get"],
                   help="C-MOVE to this node (default) or C-GET over one association (firewalls)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_retrieve)

    s = sub.add_parser("routes", help="auto-archive: send what is received to a node (run by the node)")
    rs = s.add_subparsers(dest="routes_cmd", required=True)
    a = rs.add_parser("add")
    a.add_argument("name")
    a.add_argument("--to", required=True, metavar="NODE", help="destination node")
    a.add_argument("--from-aet", help="only what this AE title sends (default: from anyone)")
    a.add_argument("--modality", help="only series of this modality (default: all)")
    a.add_argument("--commit", action="store_true", help="and ask for storage commitment")
    lst = rs.add_parser("list")
    lst.add_argument("--json", action="store_true")
    rs.add_parser("remove").add_argument("name")
    s.set_defaults(fn=cmd_routes)

    s = sub.add_parser("query", help="search a remote node (C-FIND)")
    s.add_argument("node", help="remote node name (see 'lightbox nodes list')")
    s.add_argument("--level", default="study", choices=["patient", "study", "series", "image"])
    s.add_argument("--model", default="study", choices=["study", "patient", "patient-study"],
                   help="query/retrieve information model (default: study root)")
    s.add_argument("-k", "--key", action="append", default=[], metavar="KEYWORD=VALUE")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_query)

    s = sub.add_parser("worklist", help="query a worklist provider (MWL C-FIND) and list the items kept")
    s.add_argument("node", nargs="?", help="worklist provider to query now (without it: list what is kept)")
    s.add_argument("--modality", help="modality asked for (default: setting worklist.modality)")
    s.add_argument("--from", dest="date_from", metavar="DATE", help="first scheduled date (default: today - "
                   "worklist.days_past)")
    s.add_argument("--to", dest="date_to", metavar="DATE", help="last scheduled date (default: today + "
                   "worklist.days_future)")
    s.add_argument("--all", action="store_true", help="also the items a provider no longer returns (vanished)")
    s.add_argument("--json", action="store_true", help="the items with every return key (DICOM JSON)")
    s.set_defaults(fn=cmd_worklist)

    s = sub.add_parser("ls", help="list the local archive")
    s.add_argument("--level", default="study", choices=["patient", "study", "series", "instance"])
    s.add_argument("-k", "--key", action="append", default=[], metavar="KEYWORD=VALUE")
    s.add_argument("--limit", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_ls)

    s = sub.add_parser("nodes", help="remote DICOM nodes")
    ns = s.add_subparsers(dest="nodes_cmd", required=True)
    a = ns.add_parser("add")
    a.add_argument("name")
    a.add_argument("--aet", required=True)
    a.add_argument("--host", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--roles", help="comma-separated: echo,store,commit,find,move,get,worklist,print (default all)")
    a.add_argument("--tls", action="store_true", help="talk to this node over TLS")
    a.add_argument("--cert", type=Path, help="pin this node's certificate (PEM)")
    a.add_argument("--pin", help="expected SHA-256 thumbprint of --cert")
    a.add_argument("--comment")
    a.add_argument("--syntaxes", metavar="LIST",
                   help="transfer syntaxes to send in, preferred first: names (explicit, implicit, jpeg-lossless, "
                        "j2k-lossless, rle, jpeg-extended, jpeg-baseline, j2k) or UIDs, '!' before one to "
                        "exclude it; default: as stored")
    a.add_argument("--class-syntaxes", metavar="RULES",
                   help="per SOP class, replacing --syntaxes for it: 'CTImageStorage=j2k-lossless,explicit; "
                        "DigitalMammographyXRayImageStorageForPresentation=!jpeg-baseline' (keywords or UIDs)")
    a.add_argument("--pack", choices=("none", "sr", "sc"), default="none",
                   help="pack the classes of spec Table 4-8 the node lacks into Basic Text SR (sr) or "
                        "Secondary Capture (sc); default: none (they fail)")
    a.add_argument("--printer", metavar="SETUP",
                   help="a film printer's setup: 'sizes=14INX17IN,8INX10IN; layouts=1x1,2x2,4x5; dpi=320; bits=12; "
                        "plut=yes; color=no; mediums=BLUE FILM,CLEAR FILM; magnification=NONE; border=BLACK'")
    a.add_argument("--replace", action="store_true", help="replace a node of the same name")
    lst = ns.add_parser("list")
    lst.add_argument("--json", action="store_true")
    ns.add_parser("remove").add_argument("name")
    ns.add_parser("echo").add_argument("name")
    s.set_defaults(fn=cmd_nodes)

    s = sub.add_parser("config", help="local node settings")
    cs = s.add_subparsers(dest="config_cmd", required=True)
    g = cs.add_parser("get")
    g.add_argument("key")
    g.add_argument("--json", action="store_true")
    st = cs.add_parser("set")
    st.add_argument("key")
    st.add_argument("value")
    cs.add_parser("unset").add_argument("key")
    cl = cs.add_parser("list")
    cl.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_config)

    s = sub.add_parser("render", help="render an image as the viewer shows it (PNG, offscreen)")
    s.add_argument("path", nargs="?", type=Path, help="a DICOM file")
    s.add_argument("--series", metavar="UID", help="a series of the local archive (images in reading order)")
    s.add_argument("--out", type=Path, required=True, help="PNG file to write")
    s.add_argument("--frame", type=int, default=1, help="1-based frame (multi-frame) or image of the series")
    s.add_argument("--window", metavar="C/W", help="window center/width in modality units (default: the file's)")
    s.add_argument("--size", metavar="WxH", help="fit into this size (default: one pixel per image pixel)")
    s.add_argument("--annotate", action="store_true", help="draw the image text")
    s.set_defaults(fn=cmd_render)

    s = sub.add_parser("hang", help="render a stage of the hanging protocol a study gets (PNG, offscreen)")
    s.add_argument("--study", required=True, metavar="UID", help="Study Instance UID of the local archive")
    s.add_argument("--stage", type=int, default=1, help="1-based stage of the protocol (default 1)")
    s.add_argument("--out", type=Path, help="PNG file to write (without it: list the protocol's stages)")
    s.add_argument("--size", metavar="WxH", default="1920x1080", help="image size (default 1920x1080)")
    s.add_argument("--local", action="store_true",
                   help="do not fetch priors from hanging.priors_node: hang with the studies held here")
    s.add_argument("--cad", choices=["required", "all"],
                   help="draw the study's CAD marks: those to be presented, or the optional ones too")
    s.add_argument("--json", action="store_true", help="the protocol and its stages as JSON")
    s.set_defaults(fn=cmd_hang)

    s = sub.add_parser("correct", help="correct a study: patient data, Patient Position, move it to a "
                       "procedure or patient; merge patients (each change kept in the objects)")
    s.add_argument("--study", metavar="UID", help="the study to correct")
    s.add_argument("--patient-name", help="new Patient's Name (e.g. DOE^JANE)")
    s.add_argument("--patient-id", help="new Patient ID")
    s.add_argument("--issuer", help="new Issuer of Patient ID")
    s.add_argument("--birth-date", metavar="YYYYMMDD", help="new Patient's Birth Date (the age is computed again)")
    s.add_argument("--sex", choices=["M", "F", "O"], help="new Patient's Sex")
    s.add_argument("--position", choices=["HFS", "FFS", "HFP", "FFP"],
                   help="the Patient Position the study was really acquired in (geometry turned with it)")
    s.add_argument("--to-procedure", type=int, metavar="ID",
                   help="move the study to this worklist item (its id in 'lightbox worklist --json')")
    s.add_argument("--to-patient", metavar="PATIENT_ID", help="move the study to this patient (new Study UID)")
    s.add_argument("--patient", metavar="PATIENT_ID", help="with --merge-into: the patient merged away")
    s.add_argument("--merge-into", metavar="PATIENT_ID", help="merge --patient's studies into this patient")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_correct)

    s = sub.add_parser("print", help="compose a film and print it on a DICOM printer (or write the page)")
    s.add_argument("printer", nargs="?", help="printer node (see 'lightbox nodes list')")
    s.add_argument("paths", nargs="*", help="image files (instead of --series)")
    s.add_argument("--series", metavar="UID", help="the images of this series, in reading order")
    s.add_argument("--film", default="14INX17IN", help="film size (spec Table 4-31; default 14INX17IN)")
    s.add_argument("--layout", default="1x1", help="rows x columns (default 1x1)")
    s.add_argument("--orientation", default="PORTRAIT", type=str.upper, choices=["PORTRAIT", "LANDSCAPE"])
    s.add_argument("--dpi", type=float, help="resolution (default: the printer's, see its settings; 300)")
    s.add_argument("--bits", type=int, choices=[8, 12], help="bits per pixel (default: the printer's)")
    s.add_argument("--medium", default="BLUE FILM", help="medium type (Table 4-29; default BLUE FILM)")
    s.add_argument("--true-size", action="store_true", help="print mm for mm (mammography: Imager Pixel Spacing)")
    s.add_argument("--magnification", type=str.upper, choices=["NONE", "BILINEAR", "CUBIC", "REPLICATE"],
                   help="Magnification Type (Table 4-31; default: the printer's setup)")
    s.add_argument("--border", type=str.upper, choices=["BLACK", "WHITE"], help="Border Density (Table 4-31)")
    s.add_argument("--min-density", type=int, help="Min Density, hundredths of OD (0 < value < 50)")
    s.add_argument("--max-density", type=int, help="Max Density, hundredths of OD")
    s.add_argument("--color", action="store_true", help="a colour film (a printer set up for colour)")
    s.add_argument("--no-header", action="store_true", help="without the patient/study line on each film")
    s.add_argument("--out", type=Path, help="also write the pages as FILE.pdf or FILE.png (alone: print to file)")
    s.add_argument("--status", action="store_true", help="show the printer's status and its queue")
    s.add_argument("--restart", action="store_true", help="restart the printer's stopped queue")
    s.set_defaults(fn=cmd_print)

    s = sub.add_parser("export", help="write studies or series to CD/DVD (ISO image) or USB (a folder), with "
                                      "a DICOMDIR (spec §5)")
    s.add_argument("--study", nargs="+", action="extend", metavar="UID", help="studies of the local archive")
    s.add_argument("--series", nargs="+", action="extend", metavar="UID", help="series of the local archive")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="CD/DVD: the ISO image to write; USB: the folder (stick)")
    where.add_argument("--iso", type=Path, metavar="FILE", help="the ISO image to write (CD/DVD)")
    where.add_argument("--dir", type=Path, metavar="DIR", help="the folder to write to (a USB stick)")
    s.add_argument("--media", choices=["cd", "dvd", "usb"], help="default: usb with --dir, else cd")
    s.add_argument("--kind", choices=["standard", "patient"],
                   help="standard: uncompressed (STD-GEN-CD/DVD, the default for discs); patient: JPEG 2000 "
                        "(STD-GEN-DVD/USB-J2K, the only one for USB)")
    s.add_argument("--profile", help="an application profile by name instead (STD-GEN-CD, STD-GEN-DVD, "
                                     "STD-GEN-DVD-J2K, STD-GEN-USB-J2K)")
    s.add_argument("--deidentify", "--anonymize", dest="deidentify", choices=["full", "reduced", "service"],
                   help="de-identify (spec Table 5-6)")
    s.add_argument("--patient-name", default="ANONYMOUS", help="the de-identified patient's name")
    s.add_argument("--mapping", type=Path, help="keep the original -> new UID map in this CSV file")
    s.add_argument("--leave-out-burned-in", action="store_true",
                   help="leave out images with Burned In Annotation YES: de-identification cannot remove text "
                        "written in the pixels (spec 5.5.1)")
    s.add_argument("--fileset-id", default="LIGHTBOX", help="File-set ID (16 characters)")
    s.add_argument("--icons", type=int, choices=[0, 64, 128], default=64, help="icon images in the DICOMDIR")
    s.add_argument("--lossy", action="store_true", help="J2K profiles: JPEG 2000 lossy where Table 5-3 allows")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("delete", help="delete studies from the local archive")
    s.add_argument("--study", action="append", required=True, metavar="UID", help="Study Instance UID (repeatable)")
    s.add_argument("--force", action="store_true", help="also studies no archive has committed to keep")
    s.set_defaults(fn=cmd_delete)

    from app.store.users import ROLES
    s = sub.add_parser("users", help="users of the workstation (spec §7.3)")
    us = s.add_subparsers(dest="users_cmd", required=True)
    a = us.add_parser("add")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=list(ROLES))
    a.add_argument("--full-name")
    a.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    lst = us.add_parser("list")
    lst.add_argument("--json", action="store_true")
    pw = us.add_parser("passwd")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    r = us.add_parser("role")
    r.add_argument("name")
    r.add_argument("role", choices=list(ROLES))
    us.add_parser("remove").add_argument("name")
    s.set_defaults(fn=cmd_users)

    s = sub.add_parser("audit", help="the audit trail (admin)")
    s.add_argument("--user", help="only this actor (a user name or os:LOGIN)")
    s.add_argument("--action", help="only this action (login, settings, user-add, ...)")
    s.add_argument("--since", help="from this date or date and time (ISO 8601)")
    s.add_argument("--patient", help="patient ID or name contains")
    s.add_argument("--limit", type=int, default=1000)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_audit)
    return p


def run() -> None:
    """The 'lightbox' command: main(), then out without the interpreter's teardown (~0.1 s of
    freeing modules and objects, a sizeable share of a short command) when nothing is left
    to finish: every thread that could still be working has ended, output and logs flushed."""
    code = main()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    logging.shutdown()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    from app.memory import tune_malloc
    tune_malloc()
    args = build_parser().parse_args(argv)
    args.home = data_home(args.home)
    fn = getattr(args, "fn", cmd_gui)
    logs.setup(args.home, args.verbose, to_file=fn in (cmd_node, cmd_gui, cmd_import, cmd_send, cmd_retrieve))
    try:
        code = fn(args)
        sys.stdout.flush()  # here, where a reader that went away is handled below
        return code
    except (CliError, SettingsError) as exc:
        print(f"lightbox: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away ('lightbox ls --json | head'): as other Unix tools, quietly;
        # stdout is pointed at /dev/null so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
