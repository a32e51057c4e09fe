"""The circuit breaker: stop consuming when every recent record fails.

After a bad deploy (an unreachable source or store, a bug in every record's
path) every record fails, and a worker that kept going would drain the whole
topic into the dead-letter and retry topics. The breaker watches the outcome of
the last `window` records, counting only failures of ours or of a dependency
(`Outcome.breaker_failure`: invalid input is the record's fault and goes to the
DLQ at full speed); when at least `failure_ratio` of them failed it opens: the
worker pauses its partitions, dispatches nothing and reports itself unready.
After `cooldown_s` it lets one probe record through (half-open); a probe that
succeeds closes the breaker, one that fails opens it for another cooldown.

    CLOSED --(window full of failures)--> OPEN --(cooldown)--> HALF_OPEN
       ^                                   ^                      |
       +--------(probe succeeds)-----------+----(probe fails)-----+
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Decides whether the worker may dispatch records. `window=0` disables it. One owner thread."""

    def __init__(
        self, window: int, failure_ratio: float, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._failure_ratio = failure_ratio
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._outcomes: deque[bool] = deque(maxlen=max(window, 1))
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_out = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._cooldown_s:
            self._state = BreakerState.HALF_OPEN
            self._probe_out = False
            log.info("circuit breaker half-open: letting one probe record through")
        return self._state

    def may_dispatch(self) -> bool:
        """Whether one more record may start now; in half-open, only the single probe may."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def record(self, failed: bool) -> None:
        """Count the outcome of a finished record."""
        if self._window == 0:
            return
        if self._state is BreakerState.HALF_OPEN:
            if failed:
                self._open("the probe record failed too")
            else:
                self._state = BreakerState.CLOSED
                self._outcomes.clear()
                log.info("circuit breaker closed: the probe record succeeded")
            return
        if self._state is BreakerState.OPEN:
            return  # records dispatched before the breaker opened; the probe decides
        self._outcomes.append(failed)
        failures = sum(self._outcomes)
        if len(self._outcomes) == self._window and failures >= self._failure_ratio * self._window:
            self._open(f"{failures} of the last {self._window} records failed")

    def _open(self, why: str) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._outcomes.clear()
        log.error("circuit breaker open: %s; pausing consumption for %.0f s", why, self._cooldown_s)
