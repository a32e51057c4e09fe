"""Native libraries' plain-text stderr kept out of the log.

LiteRT prints INFO and WARNING lines while a model loads and now and then on an
inference; libpng warns about a PNG's odd chunks while OpenCV decodes it. Each
would be a plain-text line in the worker's one-JSON-object-per-line log. Python's
own log lines and tracebacks are not lost meanwhile: they go to a copy of
descriptor 2 (`consumer/observability/logs.py`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _StderrSilencer:
    """Process-wide: the first thread to enter redirects fd 2, the last to leave restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = -1

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                sys.stderr.flush()
                self._saved = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            self._depth += 1

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                os.dup2(self._saved, 2)
                os.close(self._saved)


_SILENCER = _StderrSilencer()


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while a native library runs. Safe when processing threads run at
    the same time: the first to enter redirects it, the last to leave restores it."""
    _SILENCER.enter()
    try:
        yield
    finally:
        _SILENCER.leave()
