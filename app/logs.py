"""Logging set-up shared by the command line and the node's worker processes."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


def log_file(home: Path) -> Path:
    return home / "logs" / "lightbox.log"


def setup(home: Path, verbose: bool, to_file: bool, *, rotate: bool = True) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    fmt = logging.Formatter(FORMAT)
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(fmt)
    err.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.addHandler(err)
    if to_file:
        path = log_file(home)
        path.parent.mkdir(parents=True, exist_ok=True)
        if rotate:
            fh: logging.Handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=10 * 2**20, backupCount=5, encoding="utf-8")
        else:
            # worker processes: the supervisor rotates, workers reopen the new file
            fh = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    # pynetdicom logs every PDU at INFO/DEBUG; that costs throughput (CTK #746) and buries ours.
    # The node logs its protocol errors (to the log file); the other commands reword
    # connection errors in their own messages.
    quiet = logging.WARNING if to_file else logging.CRITICAL
    logging.getLogger("pynetdicom").setLevel(logging.DEBUG if verbose else quiet)
