"""The governor interface: what the request path calls, whichever governor enforces the limit.

A governor admits the requests of every client sharing a budget (see ``_governor_registry``).
The request path (``_pipeline``) calls the :class:`Governor` protocol below and nothing else;
the registry's factory picks the implementation: ``_ratelimit.RateGovernor`` (the budget is
this process's), ``_host.HostGovernor`` (shared by the processes of this host, in a sqlite
store) or ``_fleet.FleetGovernor`` (shared on a Redis server by every process). A new kind of
budget is a new module implementing :class:`Governor`, plus one line in that factory.

Also here, for the implementations: the :class:`Ticket` that ``acquire`` hands out, and the
waiting primitives that work across event loops and threads (:class:`Waiter`,
:func:`wake_futures`, :func:`expire`, :func:`nap`). The settings and the stats types are
``_limits``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, Protocol

from ._limits import INTERACTIVE, GovernorDeadlineExceeded

if TYPE_CHECKING:  # pragma: no cover - types only
    from ._limits import FleetStats, GovernorStats, Lane, RateLimit

__all__ = [
    "CANCELLED",
    "EXPIRED",
    "WAITING",
    "WOKEN",
    "Governor",
    "Place",
    "Refuse",
    "Ticket",
    "Waiter",
    "expire",
    "nap",
    "wake_futures",
]


class Ticket:
    """Permission to send one request. Release it once the answer (or an error) is in.

    Attributes:
        admitted_at: Governor clock time at which the request was let through.
        waited: Seconds this request spent in :meth:`Governor.acquire`.
        generation: The 429 signals the governor had counted when it let the request
            through: an answer to a request admitted before the latest one is stale.
    """

    __slots__ = ("_chained", "_on_release", "_released", "admitted_at", "generation", "waited")

    def __init__(
        self,
        on_release: Callable[[Ticket, bool], None],
        generation: int,
        at: float,
        waited: float,
    ) -> None:
        # the governor's: it frees the slot, ends a probe, gives a pacing slot back (unsent)
        self._on_release = on_release
        self._released = False
        self._chained: list[Callable[[bool], None]] | None = None
        self.generation = generation
        self.admitted_at = at
        self.waited = waited

    @property
    def released(self) -> bool:
        """True once :meth:`release` has run."""
        return self._released

    def chain(self, release: Callable[[bool], None]) -> None:
        """Also call ``release(sent)`` when this ticket is released: a governor composed of
        others (``_fleet``) hands out its first part's ticket and chains what the other parts
        booked for the same request (a slot on Redis, a fallback slot)."""
        if self._chained is None:
            self._chained = [release]
        else:
            self._chained.append(release)

    def release(self, *, sent: bool = True) -> None:
        """Free the ticket's concurrency slot. Safe to call more than once (only the first
        call counts).

        Args:
            sent: False when the request was not sent after all: its pacing slot goes back
                to the budget (see :class:`Governor`, "Slots given back").
        """
        if not self._released:
            self._released = True
            self._on_release(self, sent)
            if self._chained is not None:
                for release in self._chained:
                    release(sent)

    def __repr__(self) -> str:
        return (
            f"<Ticket admitted_at={self.admitted_at:.3f} waited={self.waited:.3f}"
            f"{' released' if self._released else ''}>"
        )


class Governor(Protocol):
    """Admits requests under a :class:`~invent_async._limits.RateLimit`: what the request
    path calls, per attempt (retries acquire again)::

        ticket = await governor.acquire(deadline_at - floor, lane)  # or GovernorDeadlineExceeded
        if deadline_at - now < floor:          # an unknown wait (a concurrency slot, a probe)
            ticket.release(sent=False)         # the slot goes back; the call fails unsent
            raise ...
        try:
            response = await send(...)         # the attempt's timeout computed after acquire
        finally:
            ticket.release()
        if response.status == 429:
            governor.rate_limited(retry_after, ticket)
        else:
            governor.succeeded(ticket)

    What every implementation guarantees (``tests/test_ratelimit.py``, ``test_lanes.py``,
    ``test_fleet.py`` and ``test_host_budget.py`` check them of the three there are;
    ``test_lane_conformance.py`` runs the same lane scenarios through each: add a new one to
    its ``lanes`` fixture):

    - **Thread-safe, bound to no event loop.** One governor serves the requests of several
      event loops in several threads (each sync client runs its own loop). State changes
      under a ``threading.Lock`` that is never held across an ``await``; a waiting request
      parks on a future of its own loop, and is woken from another loop or thread with
      :func:`wake_futures`. Anything bound to a loop (a connection) is kept per loop and
      closed by :meth:`aclose` on that loop.
    - **Deadlines.** ``deadline_at`` is on the governor's clock (``time.monotonic`` unless a
      test injects one). When the wait is known to end at or after it,
      :class:`~invent_async._limits.GovernorDeadlineExceeded` is raised at once with the
      wait in ``wait``; when the wait is not known in advance (queued for a concurrency
      slot, or for a probe's answer), it is raised at the deadline with ``wait=None``. In
      both cases nothing is consumed (no slot held, no pacing slot spent) and
      ``stats().deadline_exceeded`` counts it.
    - **Cancellation leaks nothing.** A cancelled ``acquire`` leaves no slot taken, no
      reservation booked and no waiter behind; a concurrency slot handed over just as its
      waiter gave up goes on to the next one.
    - **Tickets, then feedback.** The caller releases a ticket when the answer is in (or the
      request is not sent after all), then signals the answer with that ticket in the same
      synchronous section: :meth:`rate_limited` for a 429, :meth:`succeeded` otherwise. A
      probe (one request let through after a capped ``Retry-After``) relies on that order:
      from its release until the end of that section nobody else goes. An answer to a ticket
      admitted before the latest 429 signal is stale: it neither escalates the pause nor
      counts as recovery.
    - **Slots given back.** ``ticket.release(sent=False)`` says the request was not sent
      after all (the time left could not hold an answer, the client closed meanwhile): the
      pacing slot it booked goes back to the budget, so the next request to book takes it
      instead of a later one. In GCRA terms the budget's next free send time moves back one
      interval, never before now nor into a cool-down, and not at all when a 429 (or a
      reopen) laid the queue out again since the slot was booked. On a shared store (Redis,
      the host's), a slot still ahead with later ones booked behind it is a hole instead,
      which the next booking takes at that slot (moving the queue's end back for it would
      book a later request's slot a second time); and the slot of a request that went to
      the fallback and was sent there is given back only if it is still ahead. It is done once per
      ticket, also when a store is asked twice (a command retried on a new connection). A
      cancelled ``acquire`` gives back what it booked in the same way. So over the whole
      run no booked slot is lost; a window may hold one request more than the GCRA's
      ``burst + W * rate`` while a slot given back is re-used at the queue's end (the
      ``headroom`` covers it). ``test_lane_conformance.py`` checks it of every governor.
    - **A cheap hot path.** ``acquire`` with a free slot takes the lock once and does not
      await; ``succeeded`` with nothing to change takes no lock.
    """

    @property
    def config(self) -> RateLimit:
        """The limits this governor was built with (clients sharing it ask for equal ones)."""
        ...

    async def acquire(self, deadline_at: float | None = None, lane: Lane = INTERACTIVE) -> Ticket:
        """Wait until the request may be sent; the :class:`Ticket` to release afterwards.

        Raises:
            GovernorDeadlineExceeded: the wait would end at or after ``deadline_at``.
        """
        ...

    def rate_limited(self, retry_after: float | None = None, ticket: Ticket | None = None) -> float:
        """Signal a 429 (with the response's ``Retry-After`` in seconds, if any): close the
        cool-down gate. Returns the seconds until it opens."""
        ...

    def succeeded(self, ticket: Ticket | None = None) -> None:
        """Signal a response that was not a 429."""
        ...

    def reopen(self) -> float:
        """Open the cool-down gate now; the seconds it would still have stayed closed."""
        ...

    def expected_wait(self) -> float:
        """Seconds a request arriving now would wait (as far as known without I/O)."""
        ...

    def stats(self) -> GovernorStats:
        """A snapshot of this process's counters."""
        ...

    async def fleet_stats(self) -> FleetStats | None:
        """The counters of a budget shared beyond this process (None when there is none)."""
        ...

    async def aclose(self) -> None:
        """Close what the governor holds on the running event loop (its last client there
        closed); it stays usable, and makes them again if used again."""
        ...


class Place(Protocol):
    """Where a waiting request stands (a pacing reservation, an express slot, the gate
    alone): the one wait loop asks it, under the governor's lock, when the request may go,
    tells it when that time has come, and tells it when the request gives up."""

    def go_at(self) -> float:
        """The time the request may go at, as things stand now."""
        ...

    def arrive(self, now: float, deadline_at: float | None) -> Place | None:
        """Its time came (and no probe is out): None to go now; else the place to wait at
        from now on (itself, for a later slot it took)."""
        ...

    def abandon(self) -> None:
        """The request gives up (cancelled, or past its deadline): give back what it holds."""
        ...


Refuse = Callable[[float | None], GovernorDeadlineExceeded]
"""A governor's ``GovernorDeadlineExceeded`` factory, which its parts call under its lock with
the wait (None: unknown) when a request's deadline would be missed: it counts the miss."""

WAITING: Final = 0
WOKEN: Final = 1  # handed a concurrency slot, or told that the probe is back
EXPIRED: Final = 2  # its deadline ran out first
CANCELLED: Final = 3


class Waiter:
    """A request parked on a future of its own event loop (for a slot, or a probe's answer).

    ``state`` changes under the governor's lock only, so a slot handed over from another
    thread is never lost; the future is only the wake-up call (see :func:`wake_futures`).
    """

    __slots__ = ("fut", "state")

    def __init__(self) -> None:
        self.fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.state = WAITING


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def wake_futures(futures: list[asyncio.Future[None]]) -> None:
    """Resolve futures of any event loop: directly on the running one, thread-safely else."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for fut in futures:
        loop = fut.get_loop()
        if loop is running:
            _resolve(fut)
        elif not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nobody waits there
                loop.call_soon_threadsafe(_resolve, fut)


async def expire(
    waiter: Waiter,
    delay: float,
    sleep: Callable[[float], Awaitable[object]],
    lock: threading.Lock,
    refuse: Refuse,
) -> None:
    """After ``delay`` seconds, fail a waiter still waiting with ``refuse(None)`` (its
    deadline ran out); ``refuse`` runs under ``lock``, like every change of ``state``."""
    await sleep(delay)
    with lock:
        if waiter.state != WAITING:
            return
        waiter.state = EXPIRED
        error = refuse(None)
    if not waiter.fut.done():
        waiter.fut.set_exception(error)


async def nap(
    sleep: Callable[[float], Awaitable[object]],
    delay: float,
    wake: asyncio.Future[None] | None,
) -> None:
    """Sleep ``delay`` seconds, or until ``wake`` is resolved (the gate reopened)."""
    if wake is None:
        await sleep(delay)
        return
    sleeper = asyncio.ensure_future(sleep(delay))
    try:
        await asyncio.wait((sleeper, wake), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
