"""The probe after a long ``Retry-After``: one request tries the server, the others wait.

A 429 asking for more than ``RateLimit.max_retry_after`` closes the gate for
``max_retry_after`` only (see ``_cooldown``). The first request let through after it is the
probe: every other request keeps its place until the probe's answer is in. The governor
releases the probe's ticket and the caller signals the answer in the same synchronous
section of its loop, so the waiters go on (or meet the gate a new 429 closed) only once the
answer is known. A probe that got no answer (its ticket released without a success) proved
nothing: the next request let through probes again, until a success is signalled.

A part of a governor (see ``_admission``): a small state machine whose methods the governor
calls under its lock, which the probe shares for its waiters' deadlines. What happens to the
queue when the probe is back (laid out again from now) is the governor's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from ._governor import WAITING, WOKEN, Refuse, Ticket, Waiter, expire

__all__ = ["Probe"]


class Probe:
    """Who probes, and who waits for its answer.

    Args:
        lock: The governor's lock: every method but :meth:`wait` runs under it.
        sleep: The governor's sleep (for the deadline of a waiter).
        refuse: The governor's ``GovernorDeadlineExceeded`` factory (it counts the miss).

    Attributes:
        due: The next request let through the gate is the probe.
        ticket: The probe out now (None when there is none): nobody else goes meanwhile.
        last: The latest probe back whose success is not signalled yet.
    """

    __slots__ = ("_lock", "_refuse", "_sleep", "_waiters", "due", "last", "ticket")

    def __init__(
        self,
        lock: threading.Lock,
        sleep: Callable[[float], Awaitable[object]],
        refuse: Refuse,
    ) -> None:
        self.due = False
        self.ticket: Ticket | None = None
        self.last: Ticket | None = None
        self._waiters: list[Waiter] = []
        self._lock = lock
        self._sleep = sleep
        self._refuse = refuse

    def designate(self, ticket: Ticket, now: float, gate_end: float) -> None:
        """``ticket`` was just let through at ``now``: the probe, if one is due, none is out
        and the gate is open."""
        if self.due and self.ticket is None and gate_end <= now:
            self.due = False
            self.ticket = ticket

    def back(self, ticket: Ticket | None) -> None:
        """The probe's ticket was released (its answer is in, or it was given up: None).
        Until a success is signalled for ``ticket``, the next request let through probes
        again."""
        self.due = ticket is not None
        self.last = ticket

    def end(self) -> list[asyncio.Future[None]]:
        """The probe is over: the futures of its waiters, to wake once the lock is released."""
        self.ticket = None
        waiters, self._waiters = self._waiters, []
        woken = []
        for waiter in waiters:
            if waiter.state == WAITING:
                waiter.state = WOKEN
                woken.append(waiter.fut)
        return woken

    def answered(self, ticket: Ticket | None) -> None:
        """A success was signalled for ``ticket``: after the latest probe, no more probing."""
        if ticket is not None and ticket is self.last:
            self.due = False
            self.last = None

    def waiter(self, now: float, deadline_at: float | None) -> Waiter:
        """Queue a request for the probe's answer; refused at once past its deadline."""
        if deadline_at is not None and deadline_at <= now:
            raise self._refuse(None)
        waiter = Waiter()
        self._waiters.append(waiter)
        return waiter

    async def wait(self, waiter: Waiter, now: float, deadline_at: float | None) -> None:
        """Wait (without the lock) for the probe's answer; at the deadline raise
        ``GovernorDeadlineExceeded``."""
        fut = waiter.fut
        timer = None
        if deadline_at is not None:
            timer = asyncio.ensure_future(
                expire(waiter, deadline_at - now, self._sleep, self._lock, self._refuse)
            )
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()
            if not fut.done():
                fut.cancel()
