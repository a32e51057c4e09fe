"""Log lines: one JSON object per line (the default), or plain text for a terminal.

Structured fields come from `extra=` at the call site (`request_id`, `topic`,
`partition`, `offset`, `outcome`, `error_class`, ...); only the names in
`FIELDS` are written, so nothing a call site attaches by accident (an image, a
request value) reaches the log. References are logged redacted (no userinfo,
query or fragment: presigned URLs lose their signatures). librdkafka's own log
lines are routed through the `kafka` logger and come out the same way.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
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


def log_format_from_env() -> LogFormat:
    """FACEGUARD_LOG_FORMAT, read before the settings so that their own errors are logged in it."""
    value = os.environ.get("FACEGUARD_LOG_FORMAT", LogFormat.JSON.value).strip().lower()
    return LogFormat(value) if value in LogFormat.__members__.values() else LogFormat.JSON


URL_LOGGERS = ("httpx", "httpcore", "botocore", "boto3", "urllib3")


def configure_logging(log_format: LogFormat, verbose: bool) -> None:
    handler = logging.StreamHandler(_python_stderr())
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # These libraries log whole request URLs (a presigned URL's signature with them), even with -v.
    for chatty in URL_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)


@functools.cache  # one copy per process
def _python_stderr() -> TextIO:
    """A line-buffered stream on a copy of file descriptor 2, made `sys.stderr`: log lines and tracebacks
    go there, and descriptor 2 itself is left to native libraries. The detector sends descriptor 2 to
    /dev/null while a model runs (`consumer/detection/network.py`): LiteRT prints plain-text warnings from inside
    an inference call, now and then, and the log must stay one JSON object per line."""
    sys.stderr.flush()
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    return sys.stderr
