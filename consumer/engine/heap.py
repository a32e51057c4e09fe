"""Keeping decoded photos out of the C heap's arenas, so memory freed is memory given back.

glibc's malloc serves a block above its mmap threshold with a mapping of its own,
unmapped when freed; smaller blocks come from arenas that keep freed memory for
reuse. The threshold starts at 128 KiB and rises to the size of each mapped
block freed, up to 32 MiB, so after a few large photos the processing threads'
arenas hold tens of megabytes of pixels and downscaled copies the worker no
longer uses, and a pod's memory limit counts them.
`configure_heap` fixes the threshold at LARGE_BLOCK_BYTES: a 1024-px photo
(2-4 MiB decoded) is still served from the arenas, as before; the pixels of
anything larger are mapped and unmapped. Fixing it also stops the trim threshold
(free memory an arena's top keeps before shrinking) from following it, so that is
set to twice the mmap threshold, as glibc's own adjustment would: left at its
128 KiB default, every 1024-px photo would fault its pages in afresh.

Each thread that allocates also gets an arena of its own (up to eight per core):
the processing threads, the model runtime's threads and librdkafka's, each keeping
freed memory up to the trim threshold. `configure_heap` makes all threads share
one arena, unless glibc's own MALLOC_ARENA_MAX is set, which then decides.
The price is contention on the one arena's lock, a few percent of in-process
throughput. Other C libraries are left as they are. The measurements behind
both: docs/benchmarks.md, "Why the code is as it is".
"""

from __future__ import annotations

import ctypes
import os

LARGE_BLOCK_BYTES = 8 * 1024 * 1024
# mallopt's parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def configure_heap(threshold: int = LARGE_BLOCK_BYTES, arenas: int = 1) -> bool:
    """Serve heap blocks of `threshold` bytes and more with their own mappings, and let all threads share
    `arenas` arenas, unless MALLOC_ARENA_MAX is set (glibc; process-wide, to be called before threads
    start). False where the C library has no `mallopt` or refused."""
    try:  # the C library the process already runs on; no search, no subprocess (the CLI starts with this)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = [(_M_MMAP_THRESHOLD, threshold), (_M_TRIM_THRESHOLD, 2 * threshold)]
    if "MALLOC_ARENA_MAX" not in os.environ:
        settings.append((_M_ARENA_MAX, arenas))
    return all(mallopt(parameter, value) for parameter, value in settings)
