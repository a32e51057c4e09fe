"""A worker-wide bound on the decoded pixels its processing threads hold at once.

A decoded image costs a few bytes per pixel at its peak (the decoder's working
copy beside the pixels, then the detector's downscaled copies and the encoded
output), and that is most of a worker's memory beyond its fixed part. Each
thread holds the budget for an image's pixels from decoding to encoding, so a
pod's memory limit can be sized from the budget (the formula and its measured
figures: README, "Sizing"; docs/benchmarks.md): two 24-megapixel photos arriving
together are masked one after the other, not side by side. An image larger than
the whole budget (up to `max_image_pixels`) runs alone. Threads are served in
arrival order, so a large image is not overtaken forever by small ones.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class PixelBudget:
    """Shared by a worker's processing threads; `hold` blocks until the image fits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @property
    def held(self) -> int:
        """Pixels held now."""
        with self._changed:
            return self._held

    @property
    def waiting(self) -> int:
        """Threads waiting for room."""
        with self._changed:
            return len(self._queue)

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Hold `pixels` of the budget for the body of the `with`: wait until every earlier waiter has been
        served and the image fits (or, larger than the budget, until nothing else is held)."""
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            while self._queue[0] is not ticket or (self._held and self._held + pixels > self.limit):
                self._changed.wait()
            self._queue.popleft()
            self._held += pixels
            self._changed.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._changed:
                self._held -= pixels
                self._changed.notify_all()
