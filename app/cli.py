"""Command line: `lightbox` (GUI) and the headless commands of DESIGN.md."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from app import __version__, logs
from app.config import Settings, SettingsError, data_home, settings_help


class CliError(Exception):
    pass


def _archive(args):
    from app.store.archive import Archive
    return Archive(args.home, args.db)


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
    while not stop.wait(0.5):
        if workers > 1:
            node.respawn_dead()
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
    archive = _archive(args)
    try:
        files = collect(args.paths)
        bar = Progress(len(files), "import")
        summary = import_paths(archive.ingest, files, lambda f, r: bar.advance(1, f.name))
        bar.close()
    finally:
        archive.close()
    if args.json:
        _print_json(summary.as_dict())
    else:
        print(f"imported {summary.imported}, already present {summary.present}, rejected {len(summary.rejected)}")
        for path, reason in summary.rejected:
            print(f"  rejected {path}: {reason}")
    return 0 if not summary.rejected or summary.imported + summary.present else 1


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
    cols = _LS_COLUMNS[args.level]
    table = [cols] + [[str(r.get(c) if r.get(c) is not None else "") for c in cols] for r in rows]
    widths = [min(40, max(len(row[i]) for row in table)) for i in range(len(cols))]
    for row in table:
        print("  ".join(v[:40].ljust(w) for v, w in zip(row, widths)).rstrip())
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
                args.name, args.aet, args.host, args.port, roles, args.tls, cert, pin, args.comment),
                replace=args.replace)
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
                    print(f"{n.name:16} {n.aet:16} {n.host}:{n.port}{'  TLS' if n.tls else ''}  {','.join(n.roles)}")
        elif args.nodes_cmd == "remove":
            if not nodes.remove_node(archive.engine, args.name):
                raise CliError(f"no node named '{args.name}'")
            print(f"removed {args.name}")
        elif args.nodes_cmd == "echo":
            return _echo(archive, args.name)
    finally:
        archive.close()
    return 0


def _echo(archive, name: str) -> int:
    from pynetdicom import AE

    from app.net import tls, verification
    from app.net.node import configure_ae
    from app.store import nodes
    node = nodes.get_node(archive.engine, name)
    if node is None:
        raise CliError(f"no node named '{name}' (see 'lightbox nodes list')")
    settings = archive.settings
    ae = AE(ae_title=settings["node.aet"])
    configure_ae(ae, settings)
    kwargs = {}
    ctx = None
    if node.tls:
        try:
            ctx = tls.client_context(settings, node.certificate, pin=node.cert_sha256,
                                     peer=f"node '{node.name}' ({node.aet}@{node.host}:{node.port})")
        except tls.TlsError as exc:
            raise CliError(str(exc)) from None
        kwargs["tls_args"] = (ctx, None)
    try:
        status = verification.echo(ae, node.host, node.port, node.aet, **kwargs)
    except ConnectionError as exc:
        if ctx is not None and getattr(ctx, "lightbox_error", None):
            raise CliError(f"TLS connection to {node.aet}@{node.host}:{node.port} refused: "
                           f"{ctx.lightbox_error}") from None
        raise CliError(str(exc)) from None
    print(f"C-ECHO {node.aet}@{node.host}:{node.port}: status 0x{status:04X}"
          + (" (success)" if status == 0 else ""))
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
        print(f"{args.key} = {value}")
    elif args.config_cmd == "unset":
        settings.unset(args.key)
        settings.save()
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

    s = sub.add_parser("import", help="import files, folders or DICOMDIRs into the archive")
    s.add_argument("paths", nargs="+", type=Path)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_import)

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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.home = data_home(args.home)
    fn = getattr(args, "fn", cmd_gui)
    logs.setup(args.home, args.verbose, to_file=fn in (cmd_node, cmd_gui, cmd_import))
    try:
        return fn(args)
    except (CliError, SettingsError) as exc:
        print(f"lightbox: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
