"""glibc malloc tuning for a process that handles megabyte-sized buffers all day.

Every received image passes through several buffers of half a megabyte (a CT PDU) to tens
of megabytes (a mammogram): the socket read, pynetdicom's PDU and DIMSE copies, the dataset.
glibc serves allocations above its mmap threshold with a fresh mmap() and returns them with
munmap(), so each of those buffers cost page faults and zeroing of new pages in the kernel:
some 0.5 ms of system time per CT image, a fifth of the node's CPU. Raising the threshold
to 32 MiB (glibc's maximum) and keeping up to 256 MiB of freed memory lets the buffers be
reused instead. The price is a larger resident size after a burst, which a workstation
has to spare.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt() parameters, <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_SETTINGS = ((_M_MMAP_THRESHOLD, 32 * 2**20), (_M_TRIM_THRESHOLD, 256 * 2**20), (_M_TOP_PAD, 64 * 2**20))


def tune_malloc() -> bool:
    """Apply the settings above; False where there is no glibc (nothing to do there)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = all(mallopt(param, value) == 1 for param, value in _SETTINGS)
    if not ok:
        log.debug("mallopt refused a setting; keeping glibc's defaults")
    return ok
