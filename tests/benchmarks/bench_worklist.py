"""Modality Worklist benchmark: Lightbox's broad worklist query against DCMTK ``findscu``, same
items, same provider.

The provider is the real DCMTK ``wlmscpfs`` (../shared/peers/peers/worklist_scp.sh through
tests/worklist_samples.WorklistScp, TCP_NODELAY=1) serving ``varied_items(N, today)``: six
modalities, four character sets (ASCII, Latin-1, UTF-8, Japanese ISO 2022), Scheduled
Procedure Step Start Dates from today-3 to today+3 (all inside the queried window), about a
third on our AE title and the rest on other stations. Then, alternately, ``repeat`` times each:
  (a) the peer: ``findscu -W -X`` (one process, TCP_NODELAY=1), broad query (Modality ``*``,
      Scheduled Station AE Title universal, SPS Start Date today-7..today+7, every Table 4-24
      return key), every response written to a file; timed from the process start to its exit;
  (b) Lightbox: ``app.net.worklist.query_and_store(archive, node)`` (the same broad query with
      the archive's settings: worklist.days_past = worklist.days_future = 7, worklist.own_aet_only
      off so the station is universal as for findscu), every item stored in the database; each
      run in a fresh data home (all items new), timed around the call; then a second call on the
      same home (a refresh: nothing new) is timed beside it.
  (c) the worklist dialog (app.ui.worklist_dialog) over the items kept: from opening it to
      every item listed and drawn, and each filter (a typed patient ID, one modality, today).
Figures: seconds and items/s of each (median of ``repeat``), ratio = Lightbox items/s /
findscu items/s (> 1: Lightbox faster). Every run must bring every item.

The provider's own cost is in both figures and the same for both: worklist_scp.sh runs
wlmscpfs with -v (each response dataset is printed to its log) and -rfp (each query is written
to a file), and wlmscpfs reads and matches every .wl file at each query.

Sizes (LIGHTBOX_BENCH_SIZE or the first argument): smoke 200 items x 1 run (CI), full 5000 x 3.

    python tests/benchmarks/bench_worklist.py full     BENCH_OUT=wl.json for the figures as JSON

A temporary work folder is removed at the end unless LIGHTBOX_BENCH_KEEP=1.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent, HERE.parent.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import benchutil  # noqa: E402
from worklist_samples import (  # noqa: E402
    WorklistScp,
    dcmtk_tool,
    query_dataset,
    varied_items,
    write_query,
)


@dataclass(frozen=True)
class Size:
    items: int    # worklist items served
    repeat: int   # runs of each client (median)


SIZES = {"smoke": Size(200, 1), "full": Size(5000, 3)}
OUR_AET = "LIGHTBOX"       # our AE title: about a third of the items are scheduled on it
CALLING_AET = "BENCHWL"    # findscu's calling AE title
PROVIDER = "RIS"           # the remote node's name in Lightbox
DAYS = 7                   # the queried window: today-7 .. today+7 (the items: today-3 .. today+3)
ENV = {**os.environ, "TCP_NODELAY": "1"}


# -- (a) the peer ---------------------------------------------------------------------------------
def _findscu(port: int, aet: str, query: Path, out: Path) -> dict:
    """One ``findscu -W -X`` into an empty folder: seconds from start to exit, responses written."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [dcmtk_tool("findscu"), "-W", "-aet", CALLING_AET, "-aec", aet, "-X", "-od", str(out),
           "127.0.0.1", str(port), str(query)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                          timeout=3600, env=ENV)
    seconds = time.perf_counter() - t0
    files = sorted(out.glob("rsp*.dcm"))
    return {"seconds": round(seconds, 3), "responses": len(files), "returncode": proc.returncode,
            "mb": round(sum(f.stat().st_size for f in files) / 1e6, 2),
            "error": proc.stdout[-600:] if proc.returncode else ""}


def _accessions(folder: Path) -> set[str]:
    import pydicom
    out = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in folder.glob("rsp*.dcm"):
            out.add(str(pydicom.dcmread(f, specific_tags=["AccessionNumber"]).get("AccessionNumber", "")))
    return out


# -- (b) Lightbox ---------------------------------------------------------------------------------
def lightbox_available() -> tuple[object | None, str]:
    """(app.net.worklist.query_and_store, "") or (None, why not): the function is being written."""
    try:
        from app.net.worklist import query_and_store
    except Exception as exc:  # noqa: BLE001 - ImportError, or a module half written
        return None, f"app.net.worklist.query_and_store cannot be imported yet ({type(exc).__name__}: {exc})"
    return query_and_store, ""


def _lightbox(query_and_store, home: Path, port: int, aet: str) -> dict:
    """query_and_store into a fresh home (timed), then once more on the same home (a refresh)."""
    from app.store.archive import Archive
    from app.store.nodes import RemoteNode, add_node
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    archive = Archive(home)
    try:
        archive.settings.set("node.aet", OUR_AET)
        archive.settings.set("worklist.days_past", DAYS)
        archive.settings.set("worklist.days_future", DAYS)
        try:  # the station universal, as for findscu (the default asks for our AE title only)
            archive.settings.set("worklist.own_aet_only", False)
            station = "*"
        except ValueError:  # SettingsError: no such setting (yet)
            station = "(default)"
        node = add_node(archive.engine, RemoteNode(PROVIDER, aet, "127.0.0.1", port, ("worklist",)))
        t0 = time.perf_counter()
        first = query_and_store(archive, node)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = query_and_store(archive, node)
        refresh = time.perf_counter() - t0
        stored = None
        try:
            from app.store import worklist
            stored = len(worklist.items(archive.engine))
        except Exception:  # noqa: BLE001 - only a cross-check
            pass
    finally:
        archive.close()
    return {"seconds": round(seconds, 3), "items": first.get("items"), "new": first.get("new"),
            "changed": first.get("changed"), "vanished": first.get("vanished"), "stored": stored,
            "station": station, "refresh_s": round(refresh, 3),
            "refresh": {k: again.get(k) for k in ("items", "new", "changed", "vanished")}}


# -- (c) the dialog ---------------------------------------------------------------------------------
def dialog_show_and_filter(home: Path, n: int, log) -> dict | None:
    """The worklist dialog over the ``n`` items query_and_store kept in ``home``: seconds from
    opening it to every item listed and drawn, then to each filter applied (a typed patient
    ID, one modality, today only) and back to all. None when no home was filled."""
    if not (home / "lightbox.db").exists():
        return None
    if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    from app.store.archive import Archive
    from app.ui.worklist_dialog import WorklistDialog
    app = QApplication.instance() or QApplication([])
    archive = Archive(home)
    try:
        t0 = time.perf_counter()
        dialog = WorklistDialog(archive)
        dialog.dates.setCurrentIndex(2)  # every date: all n items
        dialog.show()
        deadline = t0 + 120
        while dialog.model.rowCount() < n and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.001)
        app.processEvents()
        shown = time.perf_counter() - t0
        out = {"available": True, "items": dialog.model.rowCount(), "show_s": round(shown, 3)}

        def timed(change) -> tuple[float, int]:
            t = time.perf_counter()
            change()
            app.processEvents()  # the table drawn again
            return round(time.perf_counter() - t, 4), dialog.model.rowCount()
        out["filter_patient_id_s"], out["rows_patient_id"] = timed(lambda: dialog.search.setText("WL00000042"))
        out["clear_s"], _ = timed(lambda: dialog.search.setText(""))
        out["filter_modality_s"], out["rows_modality"] = timed(lambda: dialog.modality.setCurrentText("CT"))
        out["filter_today_s"], out["rows_today"] = timed(lambda: dialog.dates.setCurrentIndex(0))
        dialog.close()
        log(f"  (c) dialog: {out['items']} items shown in {shown:.3f} s; filters {out['filter_patient_id_s']} / "
            f"{out['filter_modality_s']} / {out['filter_today_s']} s")
        return out
    finally:
        archive.close()


# -- the run ----------------------------------------------------------------------------------------
def run_benchmark(size: str | None = None, *, work: Path | None = None, log=print) -> dict:
    own_work = work is None
    size, sz, work = benchutil.prepare(size, SIZES, work, "lightbox-bench-worklist-")
    try:
        return _run(size, sz, work, log)
    finally:
        if own_work and not os.environ.get("LIGHTBOX_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def _summary(runs: list[dict], n: int) -> dict:
    seconds = statistics.median(r["seconds"] for r in runs)
    return {"seconds": round(seconds, 3), "items_per_s": round(n / seconds, 1), "runs": runs}


def _run(size: str, sz: Size, work: Path, log) -> dict:
    started = time.time()
    today = dt.date.today()
    n = sz.items
    t0 = time.perf_counter()
    items = varied_items(n, today, station_aet=OUR_AET)
    generate_s = time.perf_counter() - t0
    query = write_query(query_dataset(start=today - dt.timedelta(days=DAYS), end=today + dt.timedelta(days=DAYS)),
                        work / "query.dcm")
    query_and_store, why_not = lightbox_available()
    log(f"worklist benchmark '{size}': {n} items, {sz.repeat} run(s) each; work dir {work}")
    problems: list[str] = []
    runs: dict[str, list[dict]] = {"findscu": [], "lightbox": []}
    t0 = time.perf_counter()
    scp = WorklistScp(work / "scp", items)
    start_s = time.perf_counter() - t0
    log(f"  wlmscpfs on port {scp.port} serving {n} .wl files (written and started in {start_s:.2f} s)")
    complete = None
    try:
        for rep in range(sz.repeat):
            order = ("findscu", "lightbox") if rep % 2 == 0 else ("lightbox", "findscu")
            for who in order:
                if who == "findscu":
                    r = _findscu(scp.port, scp.aet, query, work / "findscu")
                    if complete is None:
                        complete = _accessions(work / "findscu") == {str(i.AccessionNumber) for i in items}
                        if not complete:
                            problems.append("findscu's responses are not exactly the items served")
                    if r["returncode"] or r["responses"] != n:
                        problems.append(f"findscu run {rep}: {r['responses']} of {n} responses, "
                                        f"exit {r['returncode']} {r['error']}")
                    log(f"  findscu -W -X   {r['seconds']:7.2f} s  {n / r['seconds']:8.1f} items/s  "
                        f"({r['responses']} responses, {r['mb']} MB)")
                elif query_and_store is not None:
                    try:
                        r = _lightbox(query_and_store, work / "home", scp.port, scp.aet)
                    except Exception as exc:  # noqa: BLE001 - reported; the peer's figures still stand
                        problems.append(f"Lightbox run {rep}: {type(exc).__name__}: {exc}")
                        log(f"  Lightbox        failed: {type(exc).__name__}: {exc}")
                        continue
                    if r["items"] != n or r["new"] != n:
                        problems.append(f"Lightbox run {rep}: {r['items']} items, {r['new']} new of {n} "
                                        f"(station {r['station']})")
                    log(f"  query_and_store {r['seconds']:7.2f} s  {n / r['seconds']:8.1f} items/s  "
                        f"({r['items']} items, {r['new']} new, {r['stored']} listed); refresh {r['refresh_s']:.2f} s "
                        f"({r['refresh']})")
                else:
                    continue
                runs[who].append(r)
    finally:
        scp.stop()
    report: dict = {
        "size": size, "items": n, "repeat": sz.repeat, "today": today.isoformat(),
        "window": f"today-{DAYS} .. today+{DAYS}",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "loadavg_1m": round(os.getloadavg()[0], 2)},
        "provider": "DCMTK wlmscpfs (worklist_scp.sh: -s -v -csk -rfp), TCP_NODELAY=1",
        "generate_s": round(generate_s, 3), "write_and_start_s": round(start_s, 3),
        "findscu": {**_summary(runs["findscu"], n), "all_items": complete},
    }
    if query_and_store is None:
        report["lightbox"] = {"available": False, "reason": why_not}
        report["ratio_lightbox_over_findscu"] = None
    elif runs["lightbox"]:
        lb = _summary(runs["lightbox"], n)
        refresh = statistics.median(r["refresh_s"] for r in runs["lightbox"])
        report["lightbox"] = {"available": True, **lb, "refresh_s": round(refresh, 3),
                              "refresh_items_per_s": round(n / refresh, 1) if refresh else None}
        report["ratio_lightbox_over_findscu"] = round(lb["items_per_s"] / report["findscu"]["items_per_s"], 2)
    else:
        report["lightbox"] = {"available": True, "runs": [], "reason": "every run failed (see problems)"}
        report["ratio_lightbox_over_findscu"] = None
    dialog = dialog_show_and_filter(work / "home", n, log)
    report["dialog"] = dialog if dialog is not None else {"available": False, "reason": "no items were kept"}
    report["duration_s"] = round(time.time() - started, 1)
    report["problems"] = problems
    return report


def format_report(r: dict) -> str:
    n = r["items"]
    f = r["findscu"]
    lines = [f"worklist {n} items (6 modalities, 4 character sets, {r['window']}) from {r['provider']}, "
             f"median of {r['repeat']}; items written and wlmscpfs started in {r['write_and_start_s']} s",
             f"  {'(a) findscu -W -X':28s} {f['seconds']:7.2f} s  {f['items_per_s']:8.1f} items/s  "
             f"(every item: {'yes' if f['all_items'] else 'NO'})"]
    lb = r["lightbox"]
    if not lb.get("available"):
        lines.append(f"  (b) Lightbox: not available - {lb['reason']}")
    elif not lb.get("runs"):
        lines.append(f"  (b) Lightbox: {lb['reason']}")
    else:
        last = lb["runs"][-1]
        lines.append(f"  (b) Lightbox query_and_store {lb['seconds']:7.2f} s  {lb['items_per_s']:8.1f} items/s  "
                     f"({last['items']} items, {last['new']} new, station {last['station']}); "
                     f"refresh of the same list {lb['refresh_s']:.2f} s")
        lines.append(f"      ratio Lightbox/findscu items/s {r['ratio_lightbox_over_findscu']} (> 1: Lightbox faster)")
    d = r["dialog"]
    lines.append("  (c) dialog: " + (f"{d['items']} items listed and drawn in {d['show_s']:.3f} s; typed patient ID "
                                     f"{d['filter_patient_id_s']:.3f} s, one modality {d['filter_modality_s']:.3f} s, "
                                     f"today only {d['filter_today_s']:.3f} s" if d.get("available") else d["reason"]))
    return benchutil.report_text(lines, r["problems"])


def main(argv: list[str] | None = None) -> int:
    return benchutil.main(run_benchmark, format_report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
