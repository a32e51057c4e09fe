"""Large blocks get mappings of their own once `map_large_blocks` ran, even after a larger block was freed."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Run in a fresh interpreter: the setting is process-wide. Prints the bytes glibc holds in mappings
# while a 10 MiB array is alive, after a 20 MiB one was allocated and freed (which, by default, raises
# the mmap threshold to 20 MiB and serves the next 10 MiB from an arena instead).
PROBE = """
import ctypes, sys
import numpy as np
from consumer.heap import map_large_blocks

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
if sys.argv[1] == "on":
    assert map_large_blocks()
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
