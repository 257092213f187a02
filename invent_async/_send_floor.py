"""The send floor: the least time a call's deadline must still leave for a request to be sent.

A request sent with a few milliseconds of timeout left is usually applied by the server and
then reported as a timeout: the caller is told it failed, and retrying a ``create`` makes a
duplicate. So, for a call with a deadline, a request is sent only when the time left can
plausibly hold an answer: at least the **send floor** ::

    floor = min(attempt timeout, deadline / 2, max(MIN_FLOOR, FACTOR * p99 of recent answers))

- ``MIN_FLOOR`` (0.5 s) and ``FACTOR`` (2) times the 99th percentile of the client's latest
  :data:`WINDOW` answer times (of its calls with a deadline; an attempt that timed out counts
  the time it waited): a slow server raises the floor, a fast one never lowers it below
  half a second;
- never more than the attempt's ``timeout`` (an answer cannot take longer than that anyway),
  nor more than half the call's ``deadline`` (a deadline shorter than the floor still lets a
  call go at once, and a call that has to wait fails at once).

The request path (``_pipeline``) asks the governor with the deadline minus the floor (and
minus :data:`SLACK`, so that a timer firing a little late does not leave the request just
below the floor), so a call whose slot would come too late is refused before it books
anything, and checks the time left once it has its ticket (an unknown wait, for a concurrency
slot or a probe's answer, may have used it up): with less than the floor left the slot goes
back and the call fails unsent. Pure: no clock, no I/O (the pipeline measures and records).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

__all__ = ["FACTOR", "MIN_FLOOR", "SLACK", "WINDOW", "AnswerTimes"]

MIN_FLOOR: Final = 0.5
"""Seconds: the floor is never below this (unless the timeout or half the deadline is)."""
FACTOR: Final = 2.0
"""The floor is at least this many times the 99th percentile of the recent answer times."""
SLACK: Final = 0.05
"""Seconds: the governor is asked for a slot this much before the deadline minus the floor."""
WINDOW: Final = 100
"""Answer times kept (the latest ones)."""
_EVERY: Final = 25
"""The percentile is computed again every this many answers (not on every call)."""


class AnswerTimes:
    """The latest answer times of one client's calls, and the send floor they give."""

    __slots__ = ("_count", "_high", "_times")

    def __init__(self) -> None:
        self._times: deque[float] = deque(maxlen=WINDOW)
        self._count = 0
        self._high = MIN_FLOOR  # max(MIN_FLOOR, FACTOR * p99), as of the latest computation

    def record(self, seconds: float) -> None:
        """Note how long an answer took (or a timed-out attempt waited)."""
        self._times.append(seconds)
        self._count += 1
        if self._count % _EVERY == 1:  # the first one, then every _EVERY-th
            ordered = sorted(self._times)
            p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
            self._high = max(MIN_FLOOR, FACTOR * p99)

    def floor(self, timeout: float | None, deadline: float) -> float:
        """The send floor of an attempt with this ``timeout`` (None: none) in a call with
        this ``deadline`` (both in seconds); see the module docstring."""
        floor = min(self._high, deadline / 2)
        return floor if timeout is None else min(floor, timeout)
