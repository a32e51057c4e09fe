"""Log lines: one JSON object per line (the default), or plain text for a terminal.

Structured fields come from `extra=` at the call site (`request_id`, `topic`,
`partition`, `offset`, `outcome`, `error_class`, ...); only the names in
`FIELDS` are written, so nothing a call site attaches by accident (an image, a
request value) reaches the log. References are logged redacted (no userinfo,
query or fragment: presigned URLs lose their signatures). librdkafka's own log
lines are routed through the `kafka` logger and come out the same way; a line
that repeats (a broker that is down) is written once per 30 s with a count of
the ones held back (`RepeatFilter`). Unless FACEGUARD_LOG_FORMAT says, the
format is text on a terminal and JSON otherwise.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

FIELDS = (
    "request_id",
    "topic",
    "partition",
    "offset",
    "outcome",
    "error_class",
    "attempt",
    "faces",
    "ms",
    "stored",
    "trace_id",
    "worker_id",
)


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if (value := record.__dict__.get(name)) is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def log_format_from_env(terminal: bool = False) -> LogFormat:
    """FACEGUARD_LOG_FORMAT, read before the settings so that their own errors are logged in it; unset, text
    for a person at a terminal and JSON for a collector."""
    default = LogFormat.TEXT if terminal else LogFormat.JSON
    value = os.environ.get("FACEGUARD_LOG_FORMAT", default.value).strip().lower()
    return LogFormat(value) if value in LogFormat.__members__.values() else default


URL_LOGGERS = ("httpx", "httpcore", "botocore", "boto3", "urllib3")
# librdkafka's lines and its client errors repeat several times a second while a broker is down.
REPEATING_LOGGERS = ("kafka", "consumer.kafka.messages")
REPEAT_WINDOW_S = 30.0
DIGITS = re.compile(r"\d+")


def configure_logging(log_format: LogFormat, verbose: bool) -> None:
    handler = logging.StreamHandler(_python_stderr())
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RepeatFilter(REPEATING_LOGGERS, REPEAT_WINDOW_S))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # These libraries log whole request URLs (a presigned URL's signature with them), even with -v.
    for chatty in URL_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)


class RepeatFilter(logging.Filter):
    """Lets a repeated log line (the same logger, level and text, digits aside) through once per `window_s`;
    the next one let through says how many were held back. A broker that is down makes librdkafka report the
    same failed connection several times a second: a few clear lines say it as well as hundreds."""

    def __init__(self, loggers: tuple[str, ...], window_s: float) -> None:
        super().__init__()
        self._loggers = loggers
        self._window_s = window_s
        self._last: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._loggers):
            return True
        key = (record.name, record.levelno, DIGITS.sub("#", record.getMessage()))
        now = time.monotonic()
        with self._lock:
            last, held = self._last.get(key, (-math.inf, 0))
            if now - last < self._window_s:
                self._last[key] = (last, held + 1)
                return False
            self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} ({held} more like it in the last {self._window_s:g} s)"
            record.args = None
        return True


@functools.cache  # one copy per process
def _python_stderr() -> TextIO:
    """A line-buffered stream on a copy of file descriptor 2, made `sys.stderr`: log lines and tracebacks
    go there, and descriptor 2 itself is left to native libraries. The detector sends descriptor 2 to
    /dev/null while a model runs (`consumer/detection/network.py`): LiteRT prints plain-text warnings from inside
    an inference call, now and then, and the log must stay one JSON object per line."""
    sys.stderr.flush()
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    return sys.stderr
