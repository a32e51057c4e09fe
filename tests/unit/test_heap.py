"""Once `configure_heap` ran, large blocks get mappings of their own, even after a larger block was freed, and
threads share one arena."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Run in a fresh interpreter: the setting is process-wide. Prints the bytes glibc holds in mappings
# while a 10 MiB array is alive, after a 20 MiB one was allocated and freed (which, by default, raises
# the mmap threshold to 20 MiB and serves the next 10 MiB from an arena instead).
PROBE = """
import ctypes, sys
import numpy as np
from consumer.engine.heap import configure_heap

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
if sys.argv[1] == "on":
    assert configure_heap()
np.ones(20 << 20, np.uint8)  # allocated and freed at once
before = libc.mallinfo2().hblkhd
block = np.ones(10 << 20, np.uint8)
print(libc.mallinfo2().hblkhd - before)
"""


def mapped_bytes_for_a_10_mib_block(setting: str) -> int:
    result = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True, check=True)
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_large_block_is_mapped_only_with_the_setting() -> None:
    assert mapped_bytes_for_a_10_mib_block("off") == 0
    assert mapped_bytes_for_a_10_mib_block("on") >= 10 << 20


# Prints how many arenas glibc reports after four threads each allocated small blocks (served from arenas).
ARENAS_PROBE = """
import ctypes, os, sys, threading
from consumer.engine.heap import configure_heap

if sys.argv[1] == "on":
    assert configure_heap()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(4)

def allocate():
    blocks = [libc.malloc(4096) for _ in range(64)]
    barrier.wait()  # every thread holds its blocks at once
    for block in blocks:
        libc.free(block)

threads = [threading.Thread(target=allocate) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.stderr.flush()
libc.malloc_stats()  # one "Arena N:" paragraph per arena, on stderr
"""


def arenas_after_four_threads(setting: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    result = subprocess.run(
        [sys.executable, "-c", ARENAS_PROBE, setting], capture_output=True, text=True, check=True, env=env
    )
    return sum(line.startswith("Arena ") for line in result.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_threads_share_one_arena_only_with_the_setting() -> None:
    assert arenas_after_four_threads("off") > 1
    assert arenas_after_four_threads("on") == 1
