"""The worker-wide pixel budget: images that do not fit wait, in arrival order; an oversized one runs alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from consumer.imaging.pixel_budget import PixelBudget

SETTLE_S = 0.2  # long enough for a thread that could go ahead to have done so


def start(budget: PixelBudget, pixels: int, entered: list[int], release: threading.Event) -> threading.Thread:
    def run() -> None:
        with budget.hold(pixels):
            entered.append(pixels)
            release.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def finish(threads: list[threading.Thread], *releases: threading.Event) -> None:
    for release in releases:
        release.set()
    for thread in threads:
        thread.join(5)


def eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_images_that_fit_together_run_together_and_the_next_waits_for_room() -> None:
    budget, release = PixelBudget(10), threading.Event()
    entered: list[int] = []
    threads = [start(budget, 4, entered, release), start(budget, 5, entered, release)]
    assert eventually(lambda: len(entered) == 2)  # in either order: they run side by side
    threads.append(start(budget, 2, entered, release))  # 4 + 5 + 2 > 10
    time.sleep(SETTLE_S)
    assert sorted(entered) == [4, 5]
    assert budget.held == 9
    finish(threads, release)
    assert entered[2:] == [2]
    assert budget.held == 0


def test_an_image_larger_than_the_budget_runs_alone() -> None:
    budget = PixelBudget(10)
    entered: list[int] = []
    small, big = threading.Event(), threading.Event()
    first = start(budget, 3, entered, small)
    assert eventually(lambda: entered == [3])
    second = start(budget, 25, entered, big)
    time.sleep(SETTLE_S)
    assert entered == [3]
    small.set()
    assert eventually(lambda: entered == [3, 25])
    assert budget.held == 25
    finish([first, second], big)


def test_a_waiting_large_image_is_not_overtaken_by_small_ones() -> None:
    budget = PixelBudget(10)
    entered: list[int] = []
    first_done, rest_done = threading.Event(), threading.Event()
    first = start(budget, 6, entered, first_done)
    assert eventually(lambda: entered == [6])
    large = start(budget, 8, entered, rest_done)
    assert eventually(lambda: budget.waiting == 1)
    small = start(budget, 1, entered, rest_done)  # would fit beside the first, but the large one came earlier
    time.sleep(SETTLE_S)
    assert entered == [6]
    first_done.set()
    assert eventually(lambda: len(entered) == 3)
    assert sorted(entered[1:]) == [1, 8]  # together once the first left (their appends may race)
    assert budget.held == 9
    finish([first, large, small], rest_done)
