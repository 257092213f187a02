"""The concurrency cap: at most ``RateLimit.max_in_flight`` requests sent and not answered.

A part of a governor (see ``_admission``): a small state machine whose methods the governor
calls under its lock, which the cap shares for its own waits. A request takes a free slot at
once, or waits in a FIFO queue; with lanes, interactive requests wait in a queue of their own
that is served first. A released slot goes straight to the first live waiter (the count of
slots taken does not change, so nobody arriving meanwhile takes it), and a waiter that gives
up just as a slot was handed to it passes the slot on. Nothing here knows about pacing or
the cool-down gate.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable

from ._governor import CANCELLED, WAITING, WOKEN, Refuse, Waiter, expire, wake_futures
from ._limits import INTERACTIVE, Lane

__all__ = ["ConcurrencyCap"]


class ConcurrencyCap:
    """At most ``limit`` slots taken; FIFO queues for the others.

    Args:
        limit: The most requests in flight.
        interactive_first: A freed slot goes to a waiting interactive request before the
            bulk ones (the limit has lanes).
        lock: The governor's lock: every method but :meth:`wait` runs under it.
        sleep: The governor's sleep (for the deadline of a waiter).
        refuse: The governor's ``GovernorDeadlineExceeded`` factory (it counts the miss).

    Attributes:
        limit: The most slots taken at once.
        taken: Slots taken now (a slot handed to a waiter stays taken).
    """

    __slots__ = (
        "_first",
        "_interactive_first",
        "_lock",
        "_refuse",
        "_rest",
        "_sleep",
        "limit",
        "taken",
    )

    def __init__(
        self,
        limit: int,
        *,
        interactive_first: bool,
        lock: threading.Lock,
        sleep: Callable[[float], Awaitable[object]],
        refuse: Refuse,
    ) -> None:
        self.limit = limit
        self.taken = 0
        self._interactive_first = interactive_first
        self._first: deque[Waiter] = deque()  # interactive requests waiting: served first
        self._rest: deque[Waiter] = deque()  # the others
        self._lock = lock
        self._sleep = sleep
        self._refuse = refuse

    def take(self) -> bool:
        """Take a free slot; False when none is free (nobody waits while one is)."""
        if self.taken < self.limit:
            self.taken += 1
            return True
        return False

    def waiter(self, now: float, deadline_at: float | None, lane: Lane) -> Waiter:
        """Queue a request for the next freed slot; refused at once when its deadline is
        already past."""
        if deadline_at is not None and deadline_at <= now:
            raise self._refuse(None)
        waiter = Waiter()
        if lane == INTERACTIVE and self._interactive_first:
            self._first.append(waiter)
        else:
            self._rest.append(waiter)
        return waiter

    async def wait(self, waiter: Waiter, now: float, deadline_at: float | None) -> None:
        """Wait (without the lock) until ``waiter`` is handed a slot; at its deadline raise
        ``GovernorDeadlineExceeded``. A waiter that gives up holds no slot afterwards."""
        timer = None
        if deadline_at is not None:
            timer = asyncio.ensure_future(
                expire(waiter, deadline_at - now, self._sleep, self._lock, self._refuse)
            )
        try:
            await waiter.fut
        except BaseException:
            wake = None
            with self._lock:
                if waiter.state == WOKEN:
                    wake = self.free()  # a slot was handed over just as we gave up
                elif waiter.state == WAITING:
                    waiter.state = CANCELLED
            if wake is not None:
                wake_futures([wake])
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def free(self) -> asyncio.Future[None] | None:
        """Hand a released slot to the first live waiter, interactive ones first (return its
        future to wake, once the lock is released), or give it back."""
        for waiters in (self._first, self._rest):
            while waiters:
                waiter = waiters.popleft()
                if waiter.state == WAITING and not waiter.fut.done():
                    waiter.state = WOKEN
                    return waiter.fut
        self.taken -= 1
        return None
