"""The host governor: one rate budget for every process of this host, no server needed.

A :class:`HostGovernor` is the :class:`~invent_async._governor.Governor` a client leases by
default (a shared, paced, non-adaptive ``RateLimit`` without ``redis_url``): the gunicorn or
uvicorn workers, Celery children, a cron job and the CLI of one machine share the budget of
their API host and budget name in the host's store (``_host_budget``, sqlite). It has the
shape of the fleet governor (``_fleet``), with a local store in place of the Redis server: the
process keeps what only it can know (the concurrency cap, its 429 cool-down gate and the probe
after a long ``Retry-After``: an :class:`~invent_async._admission.Admission` without pacing);
the pacing, the shared cool-down and the lanes are the store's. One attempt::

    ticket = local.acquire(deadline, lane)      cap, this process's gate, the probe
    slot = store.reserve(lane)                  one transaction, the host's wall clock
    while slot is ahead: sleep, then check      go, or a new slot (a cool-down or a reopen
                                                meanwhile, an express call took it)

The store's verbs take tens of microseconds and run on the caller's event loop. A sleep lasts
at most :data:`RECHECK` seconds, so a cool-down or a reset set by another
process reaches every sleeper within that time.

When the store cannot be used (a read-only or full disk, no permission, its lock held past
``BUSY_TIMEOUT``) the process paces itself on its own at the governor's rate (an admission
built from its :class:`~invent_async._pacing.Pacing`), says so once on the ``invent_async``
logger, and tries the store again every :data:`RETRY_STORE` seconds; the first success brings
it back, said once too. A call never fails because the store does.

Built with an explicit ``pacing`` (a rate other than the ``RateLimit``'s), a host governor can
serve as another governor's fallback: the fleet's share of the rate, shared by the processes
of this host while Redis is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, assert_never

import attrs

from ._admission import Admission
from ._cooldown import CooldownRule
from ._governor import Ticket
from ._host_budget import HostBudget, HostBudgetBusyError, HostBudgetUnavailableError, budget_dir
from ._limits import (
    BULK,
    INTERACTIVE,
    FleetStats,
    GovernorDeadlineExceeded,
    GovernorStats,
    Lane,
    RateLimit,
)
from ._pacing import Pacing
from ._redis_budget import Reservation, Verdict

__all__ = ["RECHECK", "RETRY_STORE", "HostGovernor"]

log = logging.getLogger("invent_async")

_ROUNDING: Final = 0.001
"""Seconds: the store's times are whole microseconds, and a wait is compared after a round
trip through them."""
RECHECK: Final = 2.0
"""Longest sleep before a request asks the store again (a reopen reaches sleepers this fast)."""
RETRY_STORE: Final = 1.0
"""Seconds between tries of a store that could not be used (meanwhile: the local budget)."""
BUSY_TRIES: Final = 10
BUSY_PAUSE: Final = 0.05
"""A store whose lock stays busy past ``BUSY_TIMEOUT`` (processes admitting at once on a busy
machine) is back-pressure, not a store that cannot be used: the request sleeps ``BUSY_PAUSE``
seconds (the event loop free meanwhile) and tries again, ``BUSY_TRIES`` times in all, before
the process paces itself alone (at the whole rate, which would send the host over it)."""


class HostGovernor:
    """Paces the requests of every process of this host sharing a budget (see the module
    docstring). A :class:`~invent_async._governor.Governor`.

    Args:
        config: The limits (``per_minute`` set).
        name: The budget's name in the store (the API host and ``RateLimit.budget``).
        pacing: The rate to share (default: the ``RateLimit``'s, headroom taken off).
        directory: The store's directory (default: :func:`~invent_async._host_budget.budget_dir`).
        clock: Monotonic clock in seconds; ``deadline_at`` values use it.
        sleep: Coroutine function sleeping for a number of seconds of that clock.
    """

    def __init__(
        self,
        config: RateLimit,
        *,
        name: str,
        pacing: Pacing | None = None,
        directory: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if pacing is None:
            if config.per_minute is None or not config.per_minute:
                raise ValueError("a host governor needs RateLimit(per_minute=...) or a pacing")
            pacing = Pacing(
                per_minute=config.per_minute * (1 - config.headroom),
                burst=config.burst,
                interactive_share=config.interactive_share,
            )
        if directory is None:
            directory = budget_dir()
            if directory is None:
                raise ValueError("the host budget is off (INVENT_BUDGET_DIR=off)")
        self._config = config
        self._name = name
        self._pacing = pacing
        self._clock = clock
        self._sleep = sleep
        self._store = HostBudget(
            directory,
            name=name,
            per_minute=pacing.per_minute,
            burst=pacing.burst,
            interactive_share=pacing.interactive_share,
        )
        # in the process: the cap, this process's gate and probe; no pacing
        self._local = Admission(
            pacing=None,
            max_in_flight=config.max_in_flight,
            interactive_first=bool(config.interactive_share),
            cooldown=CooldownRule.of(config),
            clock=clock,
            sleep=sleep,
        )
        # while the store cannot be used: the same rate, paced by this process alone
        self._fallback = Admission(
            pacing=pacing,
            max_in_flight=None,
            interactive_first=False,
            cooldown=CooldownRule(),  # never closed: the 429s go to the gate above
            clock=clock,
            sleep=sleep,
        )
        self._lock = threading.Lock()
        self._down = False  # the store could not be used at the latest try
        self._retry_at = -math.inf
        self._gate_end = -math.inf  # the shared gate's end as last seen, on our clock
        self._watchers: set[asyncio.Future[Any]] = set()  # watches of the shared gate
        self._waited = 0.0
        self._waiting = 0
        self._deadline_misses = 0
        self._rebooked = 0
        self._given_back = 0  # slots given back to the store (not sent after all)

    @staticmethod
    def serves(config: RateLimit) -> bool:
        """True when ``config`` gets a host budget by default: shared, paced at a fixed rate,
        not on Redis, and ``INVENT_BUDGET_DIR`` is not ``off``."""
        return (
            config.shared
            and config.paced
            and not config.adaptive
            and config.redis_url is None
            and budget_dir() is not None
        )

    def __repr__(self) -> str:
        return f"<HostGovernor {self._name!r} in {str(self._store.path)!r}>"

    @property
    def config(self) -> RateLimit:
        """The limits this governor was built with."""
        return self._config

    @property
    def store(self) -> HostBudget:
        """The host's store of the budget."""
        return self._store

    @property
    def fallback(self) -> bool:
        """True while the store cannot be used and the process paces itself."""
        return self._down

    @property
    def rebooked(self) -> int:
        """Slots of this process the store booked again (a cool-down, a reopen, an express
        call took them)."""
        return self._rebooked

    # ------------------------------------------------------------------ acquiring

    async def acquire(self, deadline_at: float | None = None, lane: Lane = INTERACTIVE) -> Ticket:
        """Wait for the cap, this process's gate and a slot of the host's budget.

        The ticket is this process's; the slot it took (in the store, or of the fallback
        budget) is chained to it: ``ticket.release(sent=False)`` gives that slot back.

        Raises:
            GovernorDeadlineExceeded: the wait would end at or after ``deadline_at``.
        """
        ticket = await self._local.acquire(deadline_at, lane)
        start = self._clock()
        with self._lock:
            self._waiting += 1
        try:
            ticket.chain(await self._pace(deadline_at, lane))
        except BaseException:
            with self._lock:
                self._waiting -= 1
            ticket.release(sent=False)
            raise
        now = self._clock()
        waited = now - start
        with self._lock:
            self._waiting -= 1
            self._waited += waited
        ticket.admitted_at = now
        ticket.waited += waited
        return ticket

    async def _pace(self, deadline_at: float | None, lane: Lane) -> Callable[[bool], None]:
        """The slot of this request: in the store, or of the fallback budget; returned as what
        to call when the request's ticket is released (to give that slot back)."""
        if self._store_to_try():
            for attempt in range(1, BUSY_TRIES + 1):
                try:
                    return _Booked(self, await self._shared_slot(deadline_at, lane)).release
                except HostBudgetBusyError as exc:  # other processes hold the lock: wait
                    if attempt < BUSY_TRIES:
                        await self._sleep(BUSY_PAUSE)
                        continue
                    self._went_down(exc)
                except HostBudgetUnavailableError as exc:
                    self._went_down(exc)
                break
        fallback = await self._fallback.acquire(deadline_at, lane)

        def release(sent: bool) -> None:
            fallback.release(sent=sent)

        return release

    def _store_to_try(self) -> bool:
        """True unless the store could not be used and is not due for a try (one request
        tries it, the others keep to the fallback meanwhile)."""
        if not self._down:
            return True
        with self._lock:
            now = self._clock()
            if now < self._retry_at:
                return False
            self._retry_at = now + RETRY_STORE
            return True

    async def _shared_slot(self, deadline_at: float | None, lane: Lane) -> Reservation:
        """Book a slot of the host's budget and wait until the store says go (the verdicts
        are the Redis budget's, handled as ``_fleet`` does); the slot it goes at. A slot
        booked and then not waited for (past the deadline, or the request cancelled) is given
        back."""
        bulk = lane == BULK
        asked = self._clock()
        answer = self._store.reserve(self._max_wait(deadline_at), bulk=bulk)
        self._answered()
        try:
            while True:
                match answer.verdict:
                    case Verdict.REFUSED:  # the slot is past the deadline: nothing was booked
                        self._deadline_miss()
                        raise GovernorDeadlineExceeded(answer.wait)
                    case Verdict.GO:
                        self._seen(answer)
                        return answer
                    case Verdict.REBOOKED:
                        self._seen(answer)
                        with self._lock:
                            self._rebooked += 1
                        if answer.wait <= 0:
                            return answer
                    case Verdict.NOT_YET:
                        self._seen(answer)
                    case _:  # pragma: no cover - every verdict is above
                        assert_never(answer.verdict)
                wait = answer.slot - answer.now
                # past the deadline as of the question (as in ``_fleet``): give it back, refuse
                if deadline_at is not None and asked + wait > deadline_at + _ROUNDING:
                    self._deadline_miss()
                    raise GovernorDeadlineExceeded(wait)
                await self._sleep(min(wait, RECHECK))
                # a slot booked before the deadline goes when due, even if the sleep ran late
                asked = self._clock()
                left = None if deadline_at is None else max(0.0, deadline_at - asked)
                answer = self._store.check(answer, left, bulk=bulk)
        except HostBudgetUnavailableError:
            raise  # the store is not there to take it back
        except BaseException:
            if answer.verdict is not Verdict.REFUSED:
                self._give_back(answer)  # booked, and not going to be used
            raise

    def _give_back(self, booked: Reservation) -> None:
        """Give a slot booked in the store back (see :meth:`HostBudget.give_back`)."""
        try:
            given = self._store.give_back(booked)
        except HostBudgetUnavailableError as exc:
            self._went_down(exc)
            return
        if given:
            with self._lock:
                self._given_back += 1

    def _max_wait(self, deadline_at: float | None) -> float | None:
        if deadline_at is None:
            return None
        left = deadline_at - self._clock()
        if left <= 0:
            self._deadline_miss()
            raise GovernorDeadlineExceeded(None)
        return left

    def _deadline_miss(self) -> None:
        with self._lock:
            self._deadline_misses += 1

    def _seen(self, answer: Reservation) -> None:
        gate_end = self._clock() + (answer.gate_end - answer.now)
        with self._lock:
            self._gate_end = gate_end

    def _went_down(self, error: HostBudgetUnavailableError) -> None:
        with self._lock:
            first = not self._down
            self._down = True
            self._retry_at = self._clock() + RETRY_STORE
        if first:
            log.warning(
                "the host's rate budget %r cannot be used (%s): this process paces itself at "
                "%.0f/min until it can",
                self._name,
                error,
                self._pacing.per_minute,
            )

    def _answered(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            log.warning(
                "the host's rate budget %r can be used again: back on the budget shared by "
                "this host's processes",
                self._name,
            )

    # ------------------------------------------------------------------ feedback

    def rate_limited(self, retry_after: float | None = None, ticket: Ticket | None = None) -> float:
        """Signal a 429: close this process's gate, and the host's for every process.

        Returns:
            Seconds until the gate opens.
        """
        remaining = self._local.rate_limited(retry_after, ticket)
        if remaining > 0 and not self._down:
            try:
                self._store.cool_down(remaining)
            except HostBudgetUnavailableError as exc:
                self._went_down(exc)
            else:
                self._watch()
        with self._lock:
            self._gate_end = max(self._gate_end, self._clock() + remaining)
        return remaining

    def _watch(self) -> None:
        """Start the watch of the host's gate (:meth:`_watching`) on the running loop,
        unless one runs: requests waiting for this process's gate learn of a reopen by
        another process only that way."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        with self._lock:
            if any(task.get_loop() is loop for task in self._watchers):
                return
            task: asyncio.Future[Any] = loop.create_task(self._watching())
            self._watchers.add(task)
        task.add_done_callback(self._watch_done)

    async def _watching(self) -> None:
        while (left := self._local.expected_wait()) > 0 and not self._down:
            await self._sleep(min(left, RECHECK))
            try:
                reopened = self._local.expected_wait() > 0 and self._store.gate().remaining <= 0
            except HostBudgetUnavailableError as exc:
                self._went_down(exc)
                return
            if reopened:
                self._local.reopen()

    def _watch_done(self, task: asyncio.Future[Any]) -> None:
        with self._lock:
            self._watchers.discard(task)
        if not task.cancelled():
            task.exception()

    def succeeded(self, ticket: Ticket | None = None) -> None:
        """Signal a response that was not a 429."""
        self._local.succeeded(ticket)

    def reopen(self) -> float:
        """Open the gate now, here and in the store: requests of other processes sleeping for
        it learn of it within :data:`RECHECK` seconds.

        Returns:
            Seconds the gate would still have stayed closed (0 when it was open).
        """
        now = self._clock()
        with self._lock:
            remaining = max(0.0, self._gate_end - now)
            self._gate_end = min(self._gate_end, now)
        remaining = max(remaining, self._local.reopen())
        if not self._down:
            try:
                gate = self._store.reopen()
            except HostBudgetUnavailableError as exc:
                self._went_down(exc)
            else:
                remaining = max(remaining, gate.remaining)
        return remaining

    # ------------------------------------------------------------------ introspection

    def expected_wait(self) -> float:
        """Seconds a request arriving now would wait for this process's gate and the host's
        gate as last seen (the host's pacing is known only by asking the store)."""
        return max(self._local.expected_wait(), self._gate_end - self._clock(), 0.0)

    def stats(self) -> GovernorStats:
        """This process's counters; :meth:`fleet_stats` reads the host's from the store."""
        local = self._local.stats()
        with self._lock:
            return attrs.evolve(
                local,
                waited=local.waited + self._waited,
                waiting=local.waiting + self._waiting,
                deadline_exceeded=local.deadline_exceeded + self._deadline_misses,
                given_back=local.given_back + self._given_back,
                rate_per_minute=self._pacing.per_minute,
                cooldown_remaining=max(local.cooldown_remaining, self._gate_end - self._clock()),
                host=True,
                fallback=self._down,
            )

    async def fleet_stats(self) -> FleetStats | None:
        """The budget's counters in the host's store, the same from every process of the
        host (None while the store cannot be used)."""
        try:
            return self._store.stats()
        except HostBudgetUnavailableError as exc:
            self._went_down(exc)
            return None

    async def aclose(self) -> None:
        """Stop the watch running on this loop and close the store's connection (opened
        again if used again)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            watching = [task for task in self._watchers if task.get_loop() is loop]
        for task in watching:
            task.cancel()
        if watching:
            await asyncio.wait(watching)
        self._store.close()


class _Booked:
    """A slot a request booked in the store, chained to its ticket: given back when the
    ticket is released unsent."""

    __slots__ = ("booked", "governor")

    def __init__(self, governor: HostGovernor, booked: Reservation) -> None:
        self.governor = governor
        self.booked = booked

    def release(self, sent: bool) -> None:
        if not sent:
            self.governor._give_back(self.booked)
