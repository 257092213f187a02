"""The fleet governor: one rate budget on a Redis server for every process of every host.

A :class:`FleetGovernor` is the :class:`~invent_async._governor.Governor` a client leases
when its ``RateLimit`` names a ``redis_url`` (or ``INVENT_REDIS_URL`` is set). It keeps in the
process what only the process can know: the concurrency cap, its own 429 cool-down gate and
the probe after a long ``Retry-After`` (an :class:`~invent_async._admission.Admission` without
pacing, built from those parts' settings alone). The pacing, the shared cool-down and the
fleet's stats live on the server (:class:`RedisBudget`). One attempt::

    ticket = local.acquire(deadline, lane)      cap, this process's gate, the probe
    slot = reserve(lane)                        one script, the server's clock
    while slot is ahead: sleep, then check      the server says go, wait more (a process clock
                                                running fast), or a new slot (a cool-down or
                                                a reset meanwhile, an express call took it)

A sleep lasts at most :data:`RECHECK` seconds, so a reset (``rate_limit_reset()``) or a
cool-down set by another process reaches every sleeper within that time. Slots are server
times: the process maps them to its monotonic clock by the difference to the server's
``now`` in the same answer, so a host whose clock is off (or runs fast) gets no more than
its share: the check before sending is done on the server's clock.

Every answer also says how many processes use the budget now (its live members, see
``_redis_budget``); a process that asks for other settings than the ones stored with the
budget gets :class:`~invent_async.BudgetSettingsError` (no fallback: it is no outage), and
one built with ``per_minute=None`` takes the stored ones from its first answer.

When the server does not answer within ``redis_timeout`` the process falls back to pacing
itself at its share of the rate: ``fallback_share`` when the limit sets one, else 1 / the
members of the latest answer (:data:`UNKNOWN_SHARE` before any). The fallback is the host
budget (a :class:`~invent_async._host.HostGovernor` built from an explicit
:class:`~invent_async._pacing.Pacing`: this host's share, the processes of the host pacing
together) unless ``INVENT_BUDGET_DIR=off``, then an admission of this process alone at its
share. It says so once on the ``invent_async`` logger, and asks the server again (one
request at a time) every :data:`RETRY_REDIS` seconds; the first answer brings it back, said
once too. A call never fails because Redis is down. Back on the server, the process keeps within its
fallback share as well for :data:`PROBATION` seconds (a request still waiting in the fallback
then goes on with the shared budget alone, not at the fallback's pace until its queue
drains): the budget on a server that restarted is empty, and the processes still on their
fallback until their next try do not show on it, so taking the whole rate at once would send
the fleet over the limit.

redis-py's asyncio client is bound to the event loop it connects on: the governor keeps one
:class:`RedisBudget` per loop (each ``InventClient`` runs its own), closed when that loop
shuts down or the last client using the governor closes there.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, Final, assert_never

import attrs

from ._admission import Admission
from ._cooldown import CooldownRule
from ._exceptions import BudgetServerConfigError
from ._governor import Ticket, wake_futures
from ._host import HostGovernor
from ._host_budget import budget_dir
from ._limits import (
    BULK,
    DEFAULT_PER_MINUTE,
    INTERACTIVE,
    FleetStats,
    GovernorDeadlineExceeded,
    GovernorStats,
    Lane,
    RateLimit,
)
from ._pacing import Pacing
from ._redis_budget import (
    RedisBudget,
    RedisUnavailableError,
    Reservation,
    Verdict,
    state_lost,
)
from ._secret import redact_url

__all__ = [
    "PROBATION",
    "RECHECK",
    "RETRY_REDIS",
    "UNKNOWN_SHARE",
    "FleetGovernor",
    "describe_settings",
    "parse_settings",
]

log = logging.getLogger("invent_async")

RECHECK: Final = 2.0
"""Longest sleep before a request asks the server again (resets reach sleepers this fast)."""
RETRY_REDIS: Final = 1.0
"""Seconds between tries of an unreachable server (meanwhile: the local fallback budget)."""
PROBATION: Final = 3.0
"""Seconds after the server answers again during which the process still paces itself at its
fallback share too: by then every other process on its fallback has tried the server again
(:data:`RETRY_REDIS`) and waited for its first shared slot."""
UNKNOWN_SHARE: Final = 0.25
"""The fallback share of a process that never heard from the server how many members the
budget has (and whose limit sets no ``fallback_share``)."""


def describe_settings(config: RateLimit) -> str:
    """The settings of ``config`` the budget stores and every process must share, as text:
    ``per_minute=600.0 burst=5 interactive_share=0.2 headroom=0.02``."""
    assert config.per_minute is not None  # a joiner stores nothing
    return (
        f"per_minute={float(config.per_minute)!r} burst={config.burst} "
        f"interactive_share={float(config.interactive_share)!r} "
        f"headroom={float(config.headroom)!r}"
    )


def parse_settings(text: str) -> tuple[Pacing, float] | None:
    """The pacing and headroom of :func:`describe_settings`'s ``text`` (None: not its form)."""
    pairs = dict(part.partition("=")[::2] for part in text.split())
    try:
        pacing = Pacing(
            per_minute=float(pairs["per_minute"]),
            burst=int(pairs["burst"]),
            interactive_share=float(pairs["interactive_share"]),
        )
        return pacing, float(pairs["headroom"])
    except (KeyError, ValueError):
        return None


_ROUNDING: Final = 0.001
"""Seconds: the server's times are whole microseconds, and a wait is compared after a
round trip through them."""


class _LoopBudget:
    """The governor's :class:`RedisBudget` on one event loop, closed with the loop."""

    __slots__ = ("budget", "watcher")

    def __init__(self, budget: RedisBudget, watcher: AsyncGenerator[None]) -> None:
        self.budget = budget
        self.watcher = watcher


async def _close_at_loop_shutdown(budget: RedisBudget) -> AsyncGenerator[None]:
    """Closes ``budget``'s connections when closed: by the governor, or the loop's shutdown."""
    try:
        yield
    finally:
        await budget.aclose()


class FleetGovernor:
    """Paces the requests of every process sharing a budget on a Redis server (see the
    module docstring). A :class:`~invent_async._governor.Governor`.

    Args:
        config: The limits; ``config.redis_url`` is the server.
        name: The budget's name on the server (the API host and ``RateLimit.budget``).
        clock: Monotonic clock in seconds; ``deadline_at`` values use it.
        sleep: Coroutine function sleeping for a number of seconds of that clock.
    """

    def __init__(
        self,
        config: RateLimit,
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if config.redis_url is None:
            raise ValueError("a fleet governor needs RateLimit(redis_url=...)")
        if importlib.util.find_spec("redis") is None:
            raise ImportError(
                "a rate budget on Redis (RateLimit(redis_url=...) or INVENT_REDIS_URL) needs "
                "redis-py: pip install 'redis>=5.0.2' (the package's redis extra)"
            )
        # Loaded now, with the client, not by the first request on the event loop: loading
        # takes ~0.1 s of CPU, which held up a starting process's first requests past
        # redis_timeout on a busy machine (and sent it to its fallback at once).
        import redis.asyncio  # noqa: F401

        self._config = config
        self._url = config.redis_url
        self._name = name
        self._clock = clock
        self._sleep = sleep
        # what the budget stores and checks (None: join the stored settings, learnt from
        # the first answer; until then, the API's limit stands in for the fallback's rate)
        self._asked = describe_settings(config) if config.per_minute is not None else None
        self._pacing = Pacing(
            per_minute=config.per_minute or DEFAULT_PER_MINUTE,
            burst=config.burst,
            interactive_share=config.interactive_share,
        )
        self._headroom = config.headroom
        self._rate = self._pacing.per_minute * (1 - config.headroom)
        self._members = 0  # the budget's live members at the latest answer (0: none yet)
        self._host_members = 0  # of those, on this host
        # in the process: the cap, this process's gate and probe; no pacing
        self._local = Admission(
            pacing=None,
            max_in_flight=config.max_in_flight,
            interactive_first=bool(config.interactive_share),
            cooldown=CooldownRule.of(config),
            clock=clock,
            sleep=sleep,
        )
        # while the server does not answer: this process's share of the rate, nothing else
        self._share = self._fallback_share()
        self._fallback = self._fallback_admission(self._share)
        self._fallback_for = (self._share, self._pacing, 0)  # what the fallback was built for
        self._lock = threading.Lock()
        self._budgets: dict[asyncio.AbstractEventLoop, _LoopBudget] = {}
        self._down = False  # the server did not answer the latest try
        self._retry_at = -math.inf  # when the next try of a server that is down may go
        self._trying = False  # a request is trying the server that is down
        self._probation_end = -math.inf  # back on the server: the fallback paces too until then
        self._gate_end = -math.inf  # the shared gate's end as last seen, on our clock
        self._tasks: set[asyncio.Future[Any]] = set()
        # resolved when the server answers again: requests waiting in the fallback go shared
        self._recovered: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}
        self._watching = False  # a task watches the server's gate while ours is closed
        self._watchers: set[asyncio.Future[Any]] = set()  # that task (cancelled by aclose)
        # statistics of the shared pacing (the local governor counts the rest)
        self._waited = 0.0
        self._waiting = 0  # calls waiting for the shared slot (the local governor counts its own)
        self._deadline_misses = 0
        self._fallbacks = 0
        self._rebooked = 0  # slots the server booked again (Verdict.REBOOKED)
        self._epoch: int | None = None  # the budget's epoch at the latest answer
        # slots booked by requests that went to the fallback when the server stopped
        # answering: nobody sends at them, so they are given back when it answers again
        self._owed: list[tuple[RedisBudget, Reservation]] = []
        self._given_back = 0  # slots given back to the server (not sent after all)
        self._joined: str | None = None  # the stored settings this process joined

    def __repr__(self) -> str:
        return f"<FleetGovernor {self._name!r} on {redact_url(self._url)}>"

    @property
    def config(self) -> RateLimit:
        """The limits this governor was built with."""
        return self._config

    @property
    def rate_per_minute(self) -> float:
        """The pacing rate now: the shared one, or this process's share while Redis is down."""
        if self._down:
            return self._pacing.per_minute * self._share * (1 - self._headroom)
        return self._rate

    @property
    def members(self) -> int:
        """The budget's live members (processes) at the server's latest answer (0: none yet)."""
        return self._members

    @property
    def members_on_host(self) -> int:
        """Of :attr:`members`, the ones on this host (members are named ``host/pid``): for a
        share of "this host's processes / the fleet's" when a host budget is the fallback."""
        return self._host_members

    @property
    def fallback_share(self) -> float:
        """The share of the rate this process takes while Redis is down: ``fallback_share``
        when the limit sets one, else 1 / the members seen at the latest answer
        (:data:`UNKNOWN_SHARE` before any)."""
        return self._fallback_share()

    def _fallback_share(self) -> float:
        if self._config.fallback_share is not None:
            return self._config.fallback_share
        if self._members <= 0:
            return UNKNOWN_SHARE
        return 1 / self._members

    def _fallback_admission(self, share: float) -> Admission | HostGovernor:
        """The budget this process paces itself with while Redis is down: this host's share
        of the rate (``share`` per process, times this host's members at the latest answer)
        on the host budget (``_host``), which the host's processes share; this process's
        share alone in the process when the host budget is off (``INVENT_BUDGET_DIR=off``).
        Its bucket holds one request: entered at once by every process of the fleet, a
        bucket of ``burst`` each would send ``processes x burst`` requests in the outage's
        first second, over the limit."""
        pacing = attrs.evolve(self._pacing, burst=1)
        per_process = pacing.per_minute * share * (1 - self._headroom)
        if budget_dir() is not None:
            here = max(1, self._host_members)
            return HostGovernor(
                attrs.evolve(self._config, redis_url=None, max_in_flight=None),
                name=f"fallback:{self._name}",
                pacing=attrs.evolve(pacing, per_minute=per_process * here),
                clock=self._clock,
                sleep=self._sleep,
            )
        return Admission(
            pacing=attrs.evolve(pacing, per_minute=per_process),
            max_in_flight=None,
            interactive_first=False,
            cooldown=CooldownRule(),  # never closed: the 429s go to the gate above
            clock=self._clock,
            sleep=self._sleep,
        )

    @property
    def rebooked(self) -> int:
        """Slots of this process the server booked again (a cool-down or a reopen since they
        were booked, or an express call took them); also logged at DEBUG."""
        return self._rebooked

    @property
    def fallback(self) -> bool:
        """True while the server does not answer and the process paces itself."""
        return self._down

    # ------------------------------------------------------------------ acquiring

    async def acquire(self, deadline_at: float | None = None, lane: Lane = INTERACTIVE) -> Ticket:
        """Wait for the cap, this process's gate and a slot of the shared budget.

        The ticket is this process's; the slot it took (on the server, or of the fallback
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
        """The slot of this request: on the server, or of the fallback budget; returned as
        what to call when the request's ticket is released (to give that slot back)."""
        claimed = False  # this request waited in the fallback and is the one to try next
        while True:
            budget, trier = (self._loop_budget(), True) if claimed else self._budget_to_try()
            if budget is not None:
                try:
                    await self._on_probation(deadline_at, lane)
                    booked = await self._shared_slot(budget, deadline_at, lane)
                    return _Booked(self, budget, booked).release
                except RedisUnavailableError as exc:
                    self._went_down(exc)
                finally:
                    if trier:
                        with self._lock:
                            self._trying = False
            fallback, claimed = await self._fallback_slot(deadline_at, lane)
            if fallback is not None:
                return _release_of(fallback)
            # the server answered again while this request waited in the fallback (go
            # shared), or it is time to try the server and this request is the one to

    async def _on_probation(self, deadline_at: float | None, lane: Lane) -> None:
        """Just back on the server: wait for a slot of the fallback budget as well, until
        :data:`PROBATION` is over (a request still waiting there then goes on the shared
        budget alone: the fallback's queue does not keep its pace once the others are back)."""
        left = self._probation_end - self._clock()
        if left <= 0:
            return
        acquiring = asyncio.ensure_future(self._fallback.acquire(deadline_at, lane))
        try:
            await asyncio.wait((acquiring,), timeout=left)
        finally:
            if not acquiring.done():
                acquiring.cancel()  # the governor's acquire leaks nothing when cancelled
                await asyncio.wait((acquiring,))
        if not acquiring.cancelled():
            acquiring.result().release()  # GovernorDeadlineExceeded propagates from here

    def _budget_to_try(self) -> tuple[RedisBudget | None, bool]:
        """This loop's budget, or None while the server is down and not due for a try; and
        whether this request is the one trying a server that is down."""
        with self._lock:
            trier = self._down
            if trier:
                if self._trying or self._clock() < self._retry_at:
                    return None, False
                self._trying = True
        return self._loop_budget(), trier

    async def _fallback_slot(
        self, deadline_at: float | None, lane: Lane
    ) -> tuple[Ticket | None, bool]:
        """Wait for a slot of this process's fallback budget: ``(its ticket, False)`` when it
        came (to be released with the request's); ``(None, False)`` when the server answered
        again first (the request then goes through the shared one); ``(None, True)`` when
        the server is due for a try and this request claimed it (every :data:`RETRY_REDIS`
        seconds one waiting request leaves the fallback's queue to try: when every request
        waits there, no new one would, and the fleet would stay on its fallback for good)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._down:
                return None, False
            self._fallbacks += 1
            back = self._recovered.get(loop)
            if back is None or back.done():
                back = self._recovered[loop] = loop.create_future()
        acquiring = asyncio.ensure_future(self._fallback.acquire(deadline_at, lane))
        claimed = False
        try:
            try:
                while not claimed:
                    with self._lock:
                        left = self._retry_at - self._clock()
                        claimed = self._down and left <= 0 and not self._trying
                        if claimed:
                            self._trying = True
                            break
                    done, _ = await asyncio.wait(
                        (acquiring, back),
                        timeout=left if left > 0 else RETRY_REDIS,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if done:
                        break
            finally:
                if not acquiring.done():
                    acquiring.cancel()  # the governor's acquire leaks nothing when cancelled
                    await asyncio.wait((acquiring,))
        except BaseException:
            if claimed:  # cancelled right after claiming the try: another request makes it
                with self._lock:
                    self._trying = False
            raise
        if acquiring.cancelled():
            return None, claimed
        if claimed:  # the slot came as the try was claimed: go with it, let another try
            with self._lock:
                self._trying = False
        return acquiring.result(), False  # GovernorDeadlineExceeded propagates from here

    async def _shared_slot(
        self, budget: RedisBudget, deadline_at: float | None, lane: Lane
    ) -> Reservation:
        """Book a slot of the shared budget and wait until the server says go: every verdict
        of its scripts (:class:`Verdict`) is handled here. Returns the slot it goes at. A slot
        booked and then not waited for (past the deadline on this process's clock, or the
        request cancelled) is given back."""
        bulk = lane == BULK
        asked = self._clock()
        answer = await budget.reserve(self._max_wait(deadline_at), bulk=bulk)
        self._answered(budget)
        try:
            while True:
                match answer.verdict:
                    case Verdict.REFUSED:  # the slot is past the deadline: nothing was booked
                        self._deadline_miss()
                        raise GovernorDeadlineExceeded(answer.wait)
                    case Verdict.GO:
                        self._seen(answer)
                        return answer
                    case Verdict.REBOOKED:  # a cool-down, a reopen, an express call took it
                        self._seen(answer)
                        self._count_rebooked(answer)
                        if answer.wait <= 0:  # the new slot is due already
                            return answer
                    case Verdict.NOT_YET:
                        self._seen(answer)
                    case _:  # pragma: no cover - every verdict is above
                        assert_never(answer.verdict)
                wait = answer.slot - answer.now  # ahead: sleep, then check it
                # Past the deadline as of the question (the server kept within the wait asked
                # for, so only a server clock running slow gets here): give it back, refuse.
                # The time the answer took is not held against it (the send floor's SLACK
                # covers it): at overload every slot is booked right at the deadline.
                if deadline_at is not None and asked + wait > deadline_at + _ROUNDING:
                    self._deadline_miss()
                    raise GovernorDeadlineExceeded(wait)
                await self._sleep(min(wait, RECHECK))
                # a slot booked before the deadline goes when due, even if the sleep ran late
                asked = self._clock()
                left = None if deadline_at is None else max(0.0, deadline_at - asked)
                answer = await budget.check(answer, left, bulk=bulk)
                self._learn(budget)
        except RedisUnavailableError:
            if answer.verdict is not Verdict.REFUSED:  # owed: given back once it answers
                with self._lock:
                    self._owed.append((budget, answer))
            raise
        except BaseException:
            if answer.verdict is not Verdict.REFUSED:
                self._give_back(budget, answer)  # booked, and not going to be used
            raise

    def _give_back(self, budget: RedisBudget, booked: Reservation, *, owed: bool = False) -> None:
        """Give a slot booked on the server back, in the background (see
        :meth:`RedisBudget.give_back`; ``owed``: its request went to the fallback)."""
        ticket = secrets.randbits(62)  # the same for a command retried on a new connection

        async def give(_: RedisBudget) -> None:
            if await budget.give_back(booked, ticket, owed=owed):  # counted once it went back
                with self._lock:
                    self._given_back += 1

        self._on_server(give)

    def _max_wait(self, deadline_at: float | None) -> float | None:
        if deadline_at is None:
            return None
        left = deadline_at - self._clock()
        if left <= 0:
            self._deadline_miss()
            raise GovernorDeadlineExceeded(None)
        return left

    def _count_rebooked(self, answer: Reservation) -> None:
        with self._lock:
            self._rebooked += 1
        log.debug(
            "a slot of the shared rate budget %r was booked again, %.3fs ahead",
            self._name,
            answer.wait,
        )

    def _deadline_miss(self) -> None:
        with self._lock:
            self._deadline_misses += 1

    def _seen(self, answer: Reservation) -> None:
        gate_end = self._clock() + (answer.gate_end - answer.now)
        with self._lock:
            self._gate_end = gate_end
            before, self._epoch = self._epoch, answer.epoch
        if before is not None and state_lost(before, answer.epoch):
            log.warning(
                "the shared rate budget %r on Redis (%s) lost its state (FLUSHALL, a restart "
                "without persistence, or a failover to a server without it): the slots booked "
                "before are booked again at the end of a fresh queue, and the first process to "
                "ask stores its settings again",
                self._name,
                redact_url(self._url),
            )

    def _went_down(self, error: RedisUnavailableError) -> None:
        with self._lock:
            first = not self._down
            self._down = True
            now = self._clock()
            self._retry_at = now + RETRY_REDIS
            share = self._fallback_share()
            wanted = (share, self._pacing, self._host_members)
            if first and wanted != self._fallback_for and now >= self._probation_end:
                # nobody waits in the fallback: pace it at the share of the members seen (and
                # the settings joined)
                self._share, self._fallback = share, self._fallback_admission(share)
                self._fallback_for = wanted
        if first:
            log.warning(
                "the shared rate budget's Redis server (%s, timeout %gs) is unavailable (%s): "
                "this process paces itself at %.0f/min (fallback share %.3g: %s)%s until it "
                "answers again",
                redact_url(self._url),
                self._config.redis_timeout,
                error,
                self.rate_per_minute,
                self._share,
                self._share_source(),
                self._on_host(),
            )

    def _on_host(self) -> str:
        if not isinstance(self._fallback, HostGovernor):
            return ""
        here = max(1, self._host_members)
        return f", on this host's budget with its {here} member(s) at {here}x that"

    def _share_source(self) -> str:
        if self._config.fallback_share is not None:
            return "fallback_share"
        if self._members <= 0:
            return "no member count seen yet"
        return f"1 of {self._members} live members"

    def _learn(self, budget: RedisBudget) -> None:
        """What the server's answer says of the budget: its members, and (joining) the
        settings stored with it."""
        self._members, self._host_members = budget.members, budget.members_on_host
        if self._asked is None and budget.settings and budget.settings != self._joined:
            pacing = parse_settings(budget.settings)
            if pacing is not None:
                with self._lock:
                    self._joined = budget.settings
                    self._pacing, self._headroom = pacing
                    self._rate = self._pacing.per_minute * (1 - self._headroom)

    def _answered(self, budget: RedisBudget) -> None:
        self._learn(budget)
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
            recovered = list(self._recovered.values())
            self._recovered.clear()
            if was_down:
                self._probation_end = self._clock() + PROBATION
            owed, self._owed = self._owed, []
        for owner, booked in owed:  # first: before the waiting requests book behind them
            if owner is budget:
                self._give_back(budget, booked, owed=True)
        wake_futures(recovered)
        if was_down:
            log.warning(
                "the shared rate budget's Redis server (%s) answers again: back on the shared "
                "budget of %.0f/min",
                redact_url(self._url),
                self._rate,
            )

    def _loop_budget(self, loop: asyncio.AbstractEventLoop | None = None) -> RedisBudget:
        """The budget of ``loop`` (the running one by default), made on first use."""
        loop = loop or asyncio.get_running_loop()
        with self._lock:
            entry = self._budgets.get(loop)
            if entry is not None:
                return entry.budget
            for gone in [other for other in self._budgets if other.is_closed()]:
                del self._budgets[gone]
        cfg = self._config
        budget = RedisBudget(
            self._url,
            name=self._name,
            per_minute=None if self._asked is None else self._rate,
            burst=cfg.burst,
            interactive_share=cfg.interactive_share,
            timeout=cfg.redis_timeout,
            settings=self._asked,
        )
        watcher = _close_at_loop_shutdown(budget)
        with self._lock:
            entry = self._budgets.get(loop)
            if entry is None:
                self._budgets[loop] = entry = _LoopBudget(budget, watcher)
                fresh = True
            else:
                fresh = False
        if fresh:
            # registers with the loop's async-generator hooks: closed at the loop's shutdown
            loop.create_task(_start(watcher)).add_done_callback(_retrieve)
        return entry.budget

    async def aclose(self) -> None:
        """Close the connections of the running loop's budget (made again if used again),
        once the cool-downs and resets sent from this loop are through (or timed out); the
        watch of the server's gate running on this loop (see :meth:`_watch`) stops."""
        loop = asyncio.get_running_loop()
        with self._lock:
            sending = [task for task in self._tasks if task.get_loop() is loop]
        if sending:
            await asyncio.wait(sending, timeout=2 * self._config.redis_timeout)
        with self._lock:
            entry = self._budgets.pop(loop, None)
            watching = [task for task in self._watchers if task.get_loop() is loop]
        for task in watching:  # it would ask the closed budget, on a connection never closed
            task.cancel()
        if watching:
            await asyncio.wait(watching)
        if entry is not None:
            await entry.watcher.aclose()
            await entry.budget.aclose()  # if the watcher had not started yet
        if isinstance(self._fallback, HostGovernor):
            await self._fallback.aclose()

    # ------------------------------------------------------------------ feedback

    def rate_limited(self, retry_after: float | None = None, ticket: Ticket | None = None) -> float:
        """Signal a 429: close this process's gate, and the shared one for every process.

        Returns:
            Seconds until the gate opens.
        """
        remaining = self._local.rate_limited(retry_after, ticket)
        if remaining > 0:
            self._on_server(lambda budget: self._cool_down(budget, remaining))
        with self._lock:
            self._gate_end = max(self._gate_end, self._clock() + remaining)
        return remaining

    async def _cool_down(self, budget: RedisBudget, seconds: float) -> None:
        """Close the shared gate; then start the watch of the server's gate (:meth:`_watch`)
        unless one runs already. The watch is a task of its own: :meth:`aclose` waits for
        this send, not for the watch (it cancels that)."""
        await budget.cool_down(seconds)
        with self._lock:
            closed = all(entry.budget is not budget for entry in self._budgets.values())
            if self._watching or closed:  # closed: aclose ran meanwhile
                return
            self._watching = True
        watcher = asyncio.ensure_future(self._quietly(self._watch(budget)))
        with self._lock:
            self._watchers.add(watcher)
        watcher.add_done_callback(self._watch_done)

    async def _watch(self, budget: RedisBudget) -> None:
        """While this process's gate stays closed, ask the server every :data:`RECHECK`
        seconds whether another process reopened it (``rate_limit_reset()``; or lost it,
        restarted empty), and if so open this one too: the requests waiting here for it
        would not learn of that otherwise."""
        while (left := self._local.expected_wait()) > 0 and not self._down:
            await self._sleep(min(left, RECHECK))
            if self._local.expected_wait() > 0 and (await budget.gate()).remaining <= 0:
                self._local.reopen()

    def _watch_done(self, task: asyncio.Future[Any]) -> None:
        with self._lock:
            self._watching = False
            self._watchers.discard(task)
        _retrieve(task)

    def succeeded(self, ticket: Ticket | None = None) -> None:
        """Signal a response that was not a 429."""
        self._local.succeeded(ticket)

    def reopen(self) -> float:
        """Open the gate now, here and on the server: requests of other processes sleeping
        for it learn of it within :data:`RECHECK` seconds.

        Returns:
            Seconds the gate would still have stayed closed (0 when it was open).
        """
        now = self._clock()
        with self._lock:
            remaining = max(0.0, self._gate_end - now)
            self._gate_end = min(self._gate_end, now)
        remaining = max(remaining, self._local.reopen())
        self._on_server(lambda budget: budget.reopen())
        return remaining

    def _on_server(self, action: Callable[[RedisBudget], Coroutine[Any, Any, object]]) -> None:
        """Run ``action`` on a budget's loop, in the background; failures mean "down"."""
        if self._down:
            return  # this process's own gate holds it; the server learns nothing more
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            task: asyncio.Future[Any] = loop.create_task(self._quietly(action(self._loop_budget())))
        else:  # a sync client's thread: run it on the loop of a budget in use
            with self._lock:
                entries = [(other, e) for other, e in self._budgets.items() if other.is_running()]
            if not entries:
                return
            other, entry = entries[0]
            future = asyncio.run_coroutine_threadsafe(self._quietly(action(entry.budget)), other)
            future.add_done_callback(_retrieve_concurrent)
            return
        with self._lock:
            self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quietly(self, operation: Awaitable[object]) -> None:
        try:
            await operation
        except RedisUnavailableError as exc:
            self._went_down(exc)
        except BudgetServerConfigError:
            pass  # no outage: every call that asks the server raises it

    # ------------------------------------------------------------------ introspection

    def expected_wait(self) -> float:
        """Seconds a request arriving now would wait for this process's gate (the shared
        pacing is known only by asking the server)."""
        return max(self._local.expected_wait(), self._gate_end - self._clock(), 0.0)

    def stats(self) -> GovernorStats:
        """This process's counters; :meth:`fleet_stats` reads the fleet's from the server."""
        local = self._local.stats()
        with self._lock:
            return attrs.evolve(
                local,
                waited=local.waited + self._waited,
                waiting=local.waiting + self._waiting,
                deadline_exceeded=local.deadline_exceeded + self._deadline_misses,
                rate_per_minute=self.rate_per_minute,
                cooldown_remaining=max(local.cooldown_remaining, self._gate_end - self._clock()),
                fleet=True,
                fallback=self._down,
                given_back=local.given_back + self._given_back,
            )

    async def fleet_stats(self) -> FleetStats:
        """The budget's counters on the server, the same from every process.

        Raises:
            RedisUnavailableError: the server did not answer.
        """
        return await self._loop_budget().stats()


class _Booked:
    """A slot a request booked on the server, chained to its ticket: given back when the
    ticket is released unsent."""

    __slots__ = ("booked", "budget", "governor")

    def __init__(self, governor: FleetGovernor, budget: RedisBudget, booked: Reservation) -> None:
        self.governor = governor
        self.budget = budget
        self.booked = booked

    def release(self, sent: bool) -> None:
        if not sent:
            self.governor._give_back(self.budget, self.booked)


def _release_of(ticket: Ticket) -> Callable[[bool], None]:
    """A fallback ticket's release, chained to the request's ticket."""

    def release(sent: bool) -> None:
        ticket.release(sent=sent)

    return release


async def _start(watcher: AsyncGenerator[None]) -> None:
    await anext(watcher)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # a watcher that could not start: nothing to close


def _retrieve_concurrent(future: Any) -> None:
    if not future.cancelled():
        future.exception()
