"""Log manners: the format follows the terminal unless set, and a repeating line is held back with a count."""

from __future__ import annotations

import logging

import pytest

from consumer.observability.logs import LogFormat, RepeatFilter, log_format_from_env


def test_text_on_a_terminal_json_otherwise_and_an_explicit_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEGUARD_LOG_FORMAT", raising=False)
    assert log_format_from_env(terminal=True) is LogFormat.TEXT
    assert log_format_from_env(terminal=False) is LogFormat.JSON
    monkeypatch.setenv("FACEGUARD_LOG_FORMAT", "json")
    assert log_format_from_env(terminal=True) is LogFormat.JSON
    monkeypatch.setenv("FACEGUARD_LOG_FORMAT", "text")
    assert log_format_from_env(terminal=False) is LogFormat.TEXT


def record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)


def test_a_repeating_kafka_line_passes_once_per_window_with_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("consumer.observability.logs.time.monotonic", lambda: now[0])
    repeats = RepeatFilter(("kafka",), window_s=30.0)
    line = "127.0.0.1:{}/bootstrap: Connect to ipv4#127.0.0.1:{} failed: Connection refused (after {}ms)"
    passed = []
    for second in range(100):  # a down broker: the same failure several times a second
        now[0] = 1000.0 + second / 3
        for attempt in range(3):
            entry = record("kafka", line.format(9092, 9092, attempt))
            if repeats.filter(entry):
                passed.append(entry.getMessage())
    assert len(passed) == 2  # at 0 s and at 30 s of the 33
    assert "more like it in the last 30 s" in passed[1]
    assert repeats.filter(record("kafka", "another line altogether"))
    assert repeats.filter(record("faceguard", line))
    assert repeats.filter(record("faceguard", line))
