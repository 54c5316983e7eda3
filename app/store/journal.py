"""The intake journal: where a received instance becomes durable before it is acknowledged.

Spec §4.2.1.4.1 acknowledges before storing; we acknowledge once the instance would survive
a crash or a power cut, without paying the index commit in every C-STORE's latency:

1. the encoded instance (Part 10) is written to ``journal/<owner>/<id>.part`` and fsynced,
2. renamed to ``<id>.dcm`` and the folder fsynced: the entry is durable -> success status,
3. the index writer (app.store.index_writer) links the entry into the archive, commits its
   index row (group commit) and only then removes the entry.

Each process that receives owns a folder of its own, ``journal/<owner>/``, for as long as
it holds an exclusive lock on ``journal/<owner>.lock``. A folder whose lock nobody holds
belongs to a process that died (``kill -9``, power cut): any process adopts it — a
``.part`` file was never acknowledged and is deleted, a ``.dcm`` entry was and is indexed
now — whether at the next start or while other worker processes keep receiving.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

from app.store.files import fsync_dir, write_durably

log = logging.getLogger(__name__)

JOURNAL = "journal"
ENTRY = ".dcm"
PARTIAL = ".part"
LOCK = ".lock"


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path``, or None if another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class _Spares:
    """Empty ``.part`` files created ahead by a thread of their own.

    Creating a file costs 0.05-0.5 ms (the folder's lock and a journal handle, which wait
    while the index writer links, unlinks and commits in the same file system): time a
    sender waits for its response if it is spent between receiving and answering."""

    KEEP = 2

    def __init__(self):
        self._ready: list[tuple[Path, int]] = []
        self._folder: Path | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def take(self, folder: Path) -> tuple[Path, int]:
        with self._cond:
            if self._thread is None and not self._closed:
                self._folder = folder
                self._thread = threading.Thread(target=self._run, name="journal-spares", daemon=True)
                self._thread.start()
            spare = self._ready.pop() if self._ready else None
            self._cond.notify()
        return spare if spare is not None else _create(folder)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self.KEEP:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                spare = _create(self._folder)
            except OSError as exc:  # full disk, ...: write() creates its own and reports it
                log.debug("no spare journal file: %s", exc)
                with self._cond:
                    self._cond.wait(1.0)
                continue
            with self._cond:
                if self._closed:
                    os.close(spare[1])
                    spare[0].unlink(missing_ok=True)
                    return
                self._ready.append(spare)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            spares, self._ready = self._ready, []
        if self._thread is not None:
            self._thread.join(timeout=5)
        for path, fd in spares:
            os.close(fd)
            path.unlink(missing_ok=True)


def _create(folder: Path) -> tuple[Path, int]:
    path = folder / f"{uuid.uuid4().hex}{PARTIAL}"
    return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


class Journal:
    def __init__(self, home: Path):
        self.root = home / JOURNAL
        self.root.mkdir(parents=True, exist_ok=True)
        self._owner: str | None = None  # created on the first write: readers own nothing
        self._lock_fd: int | None = None
        self._mutex = threading.Lock()
        self._spares = _Spares()

    # -- writing --------------------------------------------------------------------------
    def _folder(self) -> Path:
        with self._mutex:
            if self._owner is None:
                owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
                # Lock first, folder second: a folder is never visible without a held lock.
                fd = _try_lock(self.root / f"{owner}{LOCK}")
                if fd is None:
                    raise OSError(f"cannot lock the journal folder {owner}")
                (self.root / owner).mkdir()
                fsync_dir(self.root)
                self._owner, self._lock_fd = owner, fd
            return self.root / self._owner

    def write(self, chunks: Iterable[bytes | memoryview]) -> Path:
        """Write one entry durably; its path once it is safe to acknowledge."""
        folder = self._folder()
        part, fd = self._spares.take(folder)
        write_durably(part, chunks, fd=fd)
        entry = part.with_suffix(ENTRY)
        try:
            os.rename(part, entry)
            fsync_dir(folder)
        except BaseException:
            part.unlink(missing_ok=True)
            entry.unlink(missing_ok=True)
            raise
        return entry

    def close(self) -> None:
        """Give up our folder; kept (and adopted later) if entries are still in it."""
        self._spares.close()
        with self._mutex:
            if self._owner is None:
                return
            folder = self.root / self._owner
            for p in folder.glob(f"*{PARTIAL}"):
                p.unlink(missing_ok=True)
            if not any(folder.glob(f"*{ENTRY}")):
                shutil.rmtree(folder, ignore_errors=True)
                (self.root / f"{self._owner}{LOCK}").unlink(missing_ok=True)
            else:
                log.warning("%d received instance(s) not indexed yet; they will be at the next start",
                            len(list(folder.glob(f"*{ENTRY}"))))
            os.close(self._lock_fd)
            self._owner = self._lock_fd = None

    # -- recovery -------------------------------------------------------------------------
    def adopt_orphans(self, replay: Callable[[Path], bool]) -> tuple[int, int]:
        """Index the entries of dead processes' folders with ``replay`` (True: indexed and
        removed), delete their partial files. Returns (entries replayed, partials removed)."""
        replayed = removed = 0
        for lock in sorted(self.root.glob(f"*{LOCK}")):
            owner = lock.name[:-len(LOCK)]
            if owner == self._owner:
                continue
            fd = _try_lock(lock)
            if fd is None:
                continue  # a live process
            try:
                folder = self.root / owner
                if folder.is_dir():
                    for p in folder.glob(f"*{PARTIAL}"):
                        p.unlink(missing_ok=True)
                        removed += 1
                    for entry in sorted(folder.glob(f"*{ENTRY}")):
                        if replay(entry):
                            replayed += 1
                    if any(folder.glob(f"*{ENTRY}")):
                        continue  # could not index everything: try again next time
                    shutil.rmtree(folder, ignore_errors=True)
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return replayed, removed

    # -- readers --------------------------------------------------------------------------
    def pending(self) -> set[Path]:
        """Every entry waiting to be indexed, in any process's folder."""
        return {p for p in self.root.glob(f"*/*{ENTRY}")}

    def settle(self, timeout: float) -> bool:
        """Wait until the entries pending now are indexed (a reader that must see every
        acknowledged instance: ``lightbox ls`` right after a send)."""
        waiting = self.pending()
        deadline = time.monotonic() + timeout
        while waiting:
            waiting = {p for p in waiting if p.exists()}
            if not waiting:
                break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True
