"""The file store: where instances live on disk, written atomically and durably."""

from __future__ import annotations

import errno
import fcntl
import zlib
from contextlib import contextmanager
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable

ARCHIVE = "archive"


class OutOfSpace(OSError):
    pass


def relative_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Archive layout. Callers must have checked the UIDs (app.dicom.uids.is_valid_uid):
    a UID is only digits and dots, so it can never climb out of the archive."""
    return f"{study_uid}/{series_uid}/{sop_uid}.dcm"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs_durable(path: Path, stop: Path) -> None:
    """mkdir -p, fsyncing the parent of every folder created so the folder survives a crash."""
    missing = []
    p = path
    while not p.exists() and p != stop:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        fsync_dir(d.parent)


def write_durably(path: Path, chunks, fd: int | None = None) -> None:
    """Create ``path`` (never overwriting; or use ``fd``, an empty file open on it for
    writing), write ``chunks`` and fsync; nothing left on error."""
    if fd is None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


class FileStore:
    def __init__(self, home: Path, free_space_floor_mb: int = 0):
        self.root = home / ARCHIVE
        self.floor = free_space_floor_mb * 1024 * 1024
        self.root.mkdir(parents=True, exist_ok=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def check_space(self, incoming: int) -> None:
        free = self.free_bytes()
        if free - incoming < self.floor:
            raise OutOfSpace(errno.ENOSPC,
                             f"only {free // 2**20} MB free, floor is {self.floor // 2**20} MB")

    def absolute(self, rel: str) -> Path:
        return self.root / rel

    def link(self, source: Path, rel: str, *, replace: bool) -> bool:
        """Give the durable file ``source`` its archive name (same file system, no copy).

        Returns False (and leaves the existing file alone) if the name is taken and
        ``replace`` is false: link() never overwrites, so two senders of one SOP Instance
        UID cannot clobber each other. The caller makes the name durable with
        :meth:`sync_folders` before it indexes the instance.
        """
        final = self.root / rel
        makedirs_durable(final.parent, self.root)
        if replace:
            tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}")
            os.link(source, tmp)
            os.replace(tmp, final)
            return True
        try:
            os.link(source, final)
        except FileExistsError:
            return False
        return True

    def sync_folders(self, rels) -> None:
        for folder in {(self.root / rel).parent for rel in rels}:
            fsync_dir(folder)

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)


class UidLocks:
    """Exclusive access per SOP Instance UID, across threads and processes.

    Two senders of one SOP Instance UID at once (two associations, two worker processes,
    an import beside the node) must not both decide that the instance is new: the second
    would overwrite the first's file, or leave an unindexed copy. The lock is held from the
    link into the archive to the index commit. UIDs map onto 256 lock files; flock() locks
    taken through separate open() calls exclude each other in one process too.
    """

    STRIPES = 256

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def hold(self, uids: Iterable[str]):
        """Hold the locks of all ``uids`` (taken in one global order: no deadlock between
        two holders of overlapping sets)."""
        fds = []
        try:
            for stripe in sorted({zlib.crc32(uid.encode()) % self.STRIPES for uid in uids}):
                fd = os.open(self.folder / f"{stripe:03d}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            for fd in fds:
                os.close(fd)  # releases the lock
