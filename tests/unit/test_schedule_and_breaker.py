"""Retry records wait for their due time per partition; the breaker opens on a window of failures."""

from __future__ import annotations

from consumer.engine.breaker import BreakerState, CircuitBreaker
from consumer.engine.schedule import DelayedRecords


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> BreakerState:
    """The state as of now (a call, so that type checkers do not assume it is unchanged)."""
    return breaker.state


R1 = ("requests.retry-1", 0)
R2 = ("requests.retry-1", 1)


def test_a_record_that_is_due_runs_at_once() -> None:
    delayed: DelayedRecords[str] = DelayedRecords(Clock())
    assert delayed.admit(R1, 999.0, "due")
    assert len(delayed) == 0


def test_records_wait_behind_an_undue_head_and_other_partitions_flow() -> None:
    clock = Clock()
    delayed: DelayedRecords[str] = DelayedRecords(clock)
    assert not delayed.admit(R1, 1010.0, "a")
    assert not delayed.admit(R1, 1005.0, "b")  # due earlier, but order within a partition is kept
    assert delayed.admit(R2, 1000.0, "other partition")
    assert delayed.waiting_partitions() == {R1}
    assert delayed.next_due_in() == 10.0
    clock.now = 1009.0
    assert delayed.release_due() == []
    clock.now = 1010.0
    assert delayed.release_due() == ["a", "b"]
    assert delayed.waiting_partitions() == set()
    assert delayed.next_due_in() is None


def test_revoked_partitions_drop_their_waiting_records() -> None:
    delayed: DelayedRecords[str] = DelayedRecords(Clock())
    delayed.admit(R1, 2000.0, "a")
    delayed.admit(R2, 2000.0, "b")
    assert delayed.drop([R1]) == 1
    assert delayed.waiting_partitions() == {R2}


def test_breaker_opens_when_the_whole_window_fails_and_a_probe_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker(window=3, failure_ratio=1.0, cooldown_s=30.0, clock=clock)
    for failed in (True, True, False, True, True):
        breaker.record(failed)
    assert state(breaker) is BreakerState.CLOSED  # never three failures in a row
    breaker.record(True)
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.may_dispatch()
    clock.now += 30.0
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.may_dispatch()
    assert not breaker.may_dispatch()  # one probe only
    breaker.record(True)
    assert state(breaker) is BreakerState.OPEN
    clock.now += 30.0
    assert breaker.may_dispatch()
    breaker.record(False)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.may_dispatch()


def test_outcomes_of_records_already_running_when_it_opened_do_not_close_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(window=2, failure_ratio=1.0, cooldown_s=5.0, clock=clock)
    breaker.record(True)
    breaker.record(True)
    breaker.record(False)
    assert state(breaker) is BreakerState.OPEN


def test_a_zero_window_disables_the_breaker() -> None:
    breaker = CircuitBreaker(window=0, failure_ratio=1.0, cooldown_s=5.0)
    for _ in range(100):
        breaker.record(True)
    assert breaker.may_dispatch()
