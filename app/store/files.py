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

ARCHIVE = "archive"
TMP = "tmp"


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


class FileStore:
    def __init__(self, home: Path, free_space_floor_mb: int = 0):
        self.root = home / ARCHIVE
        self.tmp = home / TMP
        self.floor = free_space_floor_mb * 1024 * 1024
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def clear_partial(self) -> int:
        """Remove temp files a crash left behind: they were never acknowledged."""
        n = 0
        for p in self.tmp.glob("*.part"):
            p.unlink(missing_ok=True)
            n += 1
        return n

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def check_space(self, incoming: int) -> None:
        free = self.free_bytes()
        if free - incoming < self.floor:
            raise OutOfSpace(errno.ENOSPC,
                             f"only {free // 2**20} MB free, floor is {self.floor // 2**20} MB")

    def absolute(self, rel: str) -> Path:
        return self.root / rel

    def write_temp(self, chunks: list[bytes]) -> Path:
        """Write and fsync a temp file in the data home (same file system as the archive)."""
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return tmp

    def publish(self, tmp: Path, rel: str, *, replace: bool) -> bool:
        """Move a fsynced temp file to its archive path, durably.

        Returns False (and leaves the existing file alone) if the path is taken and
        ``replace`` is false: link() never overwrites, so two senders of one SOP Instance
        UID cannot clobber each other.
        """
        final = self.root / rel
        makedirs_durable(final.parent, self.root)
        if replace:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            tmp.unlink()
        fsync_dir(final.parent)
        return True

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
    def hold(self, uid: str):
        path = self.folder / f"{zlib.crc32(uid.encode()) % self.STRIPES:03d}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
