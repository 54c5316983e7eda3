"""What the size-driven benchmarks share: the standalone entry point and the pytest run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def prepare(size: str | None, sizes: dict, work: Path | None, prefix: str):
    """(size name, its counts, work folder): the size argument, else LIGHTBOX_BENCH_SIZE,
    else smoke; a fresh temporary work folder unless one is given."""
    import tempfile
    size = (size or os.environ.get("LIGHTBOX_BENCH_SIZE") or "smoke").lower()
    work = work or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    return size, sizes.get(size, sizes["smoke"]), work


def report_text(lines: list[str], problems: list[str]) -> str:
    """A report's lines, and what went wrong in its runs (a run that lost images) last."""
    return "\n".join(lines + (["  PROBLEMS: " + "; ".join(problems)] if problems else []))


def main(run_benchmark, format_report, argv: list[str] | None = None) -> int:
    """``python bench_x.py [smoke|full]``: run, print the figures, BENCH_OUT=file for JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    report = run_benchmark(argv[0] if argv else None)
    print("\n" + format_report(report))
    if out := os.environ.get("BENCH_OUT"):
        Path(out).write_text(json.dumps(report, indent=2, default=str))
    return 0


def run_in_pytest(module, tmp_path, capsys) -> dict:
    """Run a benchmark module at LIGHTBOX_BENCH_SIZE (default smoke), print its figures and
    write them to BENCH_OUT as JSON when that is set."""
    lines: list[str] = []
    report = module.run_benchmark(os.environ.get("LIGHTBOX_BENCH_SIZE", "smoke"), work=tmp_path / "work",
                                  log=lines.append)
    with capsys.disabled():
        print("\n" + "\n".join(lines) + "\n\n" + module.format_report(report))
    if out := os.environ.get("BENCH_OUT"):
        Path(out).write_text(json.dumps(report, indent=2, default=str))
    return report
