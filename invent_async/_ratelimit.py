"""The shared rate governor: pacing, a 429 cool-down gate and a concurrency cap.

One :class:`RateGovernor` serves every request of a client and its views, and by default of
every client of the process that shares its budget (see ``_budgets``). A request calls
:meth:`RateGovernor.acquire` right before it is sent and releases the returned :class:`Ticket`
when its answer (or error) is in. ``acquire`` waits, in this order:

1. for a concurrency slot, when ``max_in_flight`` is set (FIFO queues of futures; with lanes,
   interactive requests are handed a freed slot before bulk ones);
2. for its pacing slot, which also covers the cool-down gate.

Pacing is GCRA ("next free send time"): every request reserves
``t = max(now - (burst - 1) * interval, next_time)``, sets ``next_time = t + interval`` and
sleeps once, until ``t``. That is O(1) per request, FIFO, with no polling, and it allows at most
``burst + W * rate / 60`` admissions in any window of ``W`` seconds. The time a request would
wait is known at once, so a wait that would run past the caller's deadline fails immediately.

A 429 (:meth:`RateGovernor.rate_limited`) closes a gate until ``now + Retry-After`` (without
the header: ``cooldown * 2**(strikes - 1)``, capped at ``max_cooldown``; a ``Retry-After``
above ``max_retry_after`` closes it for ``max_retry_after`` only, after which one request probes
the server: the others wait for its answer, and go on as usual if it is not another 429). The
schedule is then
rebuilt: queued requests keep their order and are re-laid from the gate's end at one interval
apart, and ``next_time`` moves past them. So nobody is sent inside the cool-down, and the
bucket starts empty after it: requests resume spread out, not as a burst. Sleepers learn about
the change through an epoch counter when their (older, earlier) reservation wakes them, and
never go earlier than they were booked. A request cancelled (or refused) while queued leaves a
one-interval hole until the queue drains; then its reservation is given back.
Adaptive mode also cuts the rate on a 429 and wins it back slowly on successes (AIMD).
Lanes: while bulk requests are queued, an interactive one whose lane (a GCRA of its own at
``interactive_share`` of the rate) has a slot takes the place of the first queued request,
and the queue moves back one interval: the total, and the bound above, stay the budget's.
:meth:`RateGovernor.reopen` opens the gate at once (an operator fixed the cause): the requests
sleeping for it are woken and re-laid from now, one interval apart.

A response is evidence about the moment its request was sent. Responses to requests admitted
before the latest 429 signal (*stale* tickets) neither cut the rate again, nor escalate the
pause, nor count as recovery; a stale 429 still extends the gate to its ``Retry-After``.

Everything here runs on asyncio with an injectable ``clock`` and ``sleep``, so the tests drive
it in virtual time. Nothing is bound to an event loop, and a governor is thread-safe: requests
of several event loops in several threads (each sync client runs its own) may share it. Every
synchronous section of a request changes the state under one ``threading.Lock``, never held
across an await; a waiter parks on a future of its own loop, and one loop wakes another's
futures with ``call_soon_threadsafe`` (its own directly). Pacing disabled (``per_minute=None``)
still enforces the cap and the gate, at the cost of a clock read per call; after a cool-down,
waiters are then all released at the gate's end, since there is no rate to spread them by.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from ._cap import ConcurrencyCap
from ._cooldown import CooldownGate, CooldownRule
from ._governor import Ticket, nap, wake_futures
from ._limits import (
    BULK,
    INTERACTIVE,
    FleetStats,
    GovernorDeadlineExceeded,
    GovernorStats,
    Lane,
    RateLimit,
)
from ._probe import Probe

__all__ = ["RateGovernor"]


_NEVER: Final = -math.inf


class _Reservation:
    """A request sleeping until its pacing slot (kept in FIFO order in ``_pending``)."""

    __slots__ = ("bulk", "done", "epoch", "seq", "t")

    def __init__(self, seq: int, t: float, epoch: int, *, bulk: bool = False) -> None:
        self.seq = seq
        self.t = t
        self.epoch = epoch
        self.done = False
        self.bulk = bulk


_GATED: Final = _Reservation(-1, _NEVER, -1)
"""What :meth:`RateGovernor._enter` returns when an unpaced request must wait for the gate."""


class _Express:
    """An interactive request overtaking the queued ones.

    It waits until ``lane_slot`` (its lane's slot; the gate), then takes the slot of the
    first queued request, which moves back one interval with the rest of the queue
    (:meth:`RateGovernor._claim`), and goes at that slot (``t``, once ``claimed``).
    """

    __slots__ = ("claimed", "lane_prev", "lane_slot", "t")

    def __init__(self, lane_slot: float, lane_prev: float) -> None:
        self.lane_slot = lane_slot
        self.lane_prev = lane_prev  # the lane's next slot before this one was booked
        self.t = lane_slot
        self.claimed = False


class _Slot:
    """What :meth:`RateGovernor.slot` returns: acquire on enter, release on exit."""

    __slots__ = ("_deadline_at", "_governor", "_ticket")

    def __init__(self, governor: RateGovernor, deadline_at: float | None) -> None:
        self._governor = governor
        self._deadline_at = deadline_at
        self._ticket: Ticket | None = None

    async def __aenter__(self) -> Ticket:
        self._ticket = await self._governor.acquire(self._deadline_at)
        return self._ticket

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ticket is not None:
            self._ticket.release()


class RateGovernor:
    """Paces, gates and caps the requests of one client, or of every client sharing a budget
    (see the module docstring).

    Thread-safe and bound to no event loop: requests of several loops in several threads may
    share one governor.

    Args:
        config: The limits; defaults to ``RateLimit()`` (500/minute, burst 5, no cap).
        clock: Monotonic clock in seconds. ``deadline_at`` values use this clock.
        sleep: Coroutine function sleeping for a number of seconds of that clock.

    Wiring, per attempt (retries acquire again)::

        ticket = await governor.acquire(deadline_at)  # may raise GovernorDeadlineExceeded
        try:
            response = await send(...)                # attempt timeout computed after acquire
        finally:
            ticket.release()
        if response.status == 429:
            governor.rate_limited(retry_after, ticket)
        else:
            governor.succeeded(ticket)
    """

    def __init__(
        self,
        config: RateLimit | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        cfg = RateLimit() if config is None else config
        if not isinstance(cfg, RateLimit):
            raise TypeError(f"config must be a RateLimit, got {type(cfg).__name__}")
        self._config = cfg
        self._clock = clock
        self._sleep = sleep
        # Every change of the state below happens under this lock, which is never held
        # across an await (each synchronous section of a request takes it once).
        self._lock = threading.Lock()
        self._paced = cfg.paced
        self._adaptive = cfg.adaptive
        self._max_rate = cfg.per_minute * (1 - cfg.headroom) if cfg.per_minute else math.inf
        self._floor = self._max_rate * cfg.min_fraction
        self._step = self._max_rate * cfg.recovery
        self._burst_extra = cfg.burst - 1
        # pacing (GCRA) state; see _reserve and _reschedule
        self._rate = self._max_rate
        self._interval = 0.0
        self._tau = 0.0
        # the interactive lane: its own GCRA at interactive_share of the rate (see _enter)
        self._share = cfg.interactive_share if cfg.paced else 0.0
        self._express_interval = 0.0
        self._express_next = _NEVER
        self._queued_bulk = 0  # bulk reservations in _pending, not done: what may be overtaken
        if self._paced:
            self._set_rate(self._max_rate)
        self._next = _NEVER  # the next free send time
        self._last_t = _NEVER  # reserved time of the latest admitted request
        self._seq = 0  # reservations handed out
        self._epoch = 0  # bumped when queued reservations must be re-laid
        self._base_seq = 0  # after a re-lay, request seq goes at base_time + (seq - base_seq)*i
        self._base_time = _NEVER
        self._base_interval = self._interval
        self._pending: deque[_Reservation] = deque()
        # the parts: the 429 cool-down gate, the probe after it, the concurrency cap
        self._gate = CooldownGate(CooldownRule.of(cfg))
        self._probe = Probe(self._lock, sleep, self._deadline_error)
        self._cap = (
            None
            if cfg.max_in_flight is None
            else ConcurrencyCap(
                cfg.max_in_flight,
                interactive_first=bool(cfg.interactive_share),
                lock=self._lock,
                sleep=sleep,
                refuse=self._deadline_error,
            )
        )
        # statistics
        self._acquired = 0
        self._waited = 0.0
        self._n429 = 0
        self._deadline_misses = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._waiting = 0
        self._release_ticket = self._release  # what each ticket calls (bound once)

    def __repr__(self) -> str:
        return f"<RateGovernor {self._config!r}>"

    @property
    def config(self) -> RateLimit:
        """The limits this governor was built with."""
        return self._config

    @property
    def rate_per_minute(self) -> float | None:
        """The current pacing rate (None when pacing is disabled)."""
        return self._rate if self._paced else None

    # ------------------------------------------------------------------ acquiring

    def slot(self, deadline_at: float | None = None) -> _Slot:
        """``async with governor.slot(deadline_at) as ticket:``, releasing on exit."""
        return _Slot(self, deadline_at)

    async def acquire(self, deadline_at: float | None = None, lane: Lane = INTERACTIVE) -> Ticket:
        """Wait for a concurrency slot, the cool-down gate and a pacing slot, in that order.

        Args:
            deadline_at: The caller's deadline on this governor's clock (None: none). When the
                wait is known to end at or after it, :class:`GovernorDeadlineExceeded` is
                raised at once; while queued for a concurrency slot it is raised at the
                deadline. Nothing is consumed in either case.
            lane: ``"interactive"`` requests may overtake queued ``"bulk"`` ones, up to
                ``interactive_share`` of the rate (see :class:`RateLimit`).

        Returns:
            A :class:`Ticket`; call :meth:`Ticket.release` once the request is answered (also
            when it is not sent after all). Cancelling ``acquire`` leaks nothing.
        """
        start = self._clock()
        cap = self._cap
        waiter = None
        rec: _Reservation | _Express | None = None
        lock = self._lock
        lock.acquire()  # not "with": this is the hot path, and that costs twice as much
        try:
            if cap is None or cap.take():
                try:
                    rec = self._enter(start, deadline_at, lane)
                except BaseException:
                    if cap is not None:
                        cap.free()  # nobody waits for it: a slot was free
                    raise
                if rec is None:  # let through at once
                    return self._issue(start, start)
            else:
                waiter = cap.waiter(start, deadline_at, lane)
            self._waiting += 1
        finally:
            lock.release()
        holding = cap is not None and waiter is None  # a concurrency slot
        now = start
        try:
            if waiter is not None:
                assert cap is not None
                await cap.wait(waiter, start, deadline_at)
                holding = True
                now = self._clock()
                with self._lock:
                    rec = self._enter(now, deadline_at, lane)
            if rec is _GATED:
                now = await self._gated(now, deadline_at)
            elif isinstance(rec, _Express):
                went = await self._express(rec, now, deadline_at)
                if isinstance(went, _Reservation):
                    went = await self._queued(went, self._clock(), deadline_at)
                now = went
            elif rec is not None:
                now = await self._queued(rec, now, deadline_at)
        except BaseException:
            wake = None
            with self._lock:
                self._waiting -= 1
                if holding:
                    assert cap is not None
                    wake = cap.free()
            if wake is not None:
                wake_futures([wake])
            raise
        with self._lock:
            self._waiting -= 1
            return self._issue(start, now)

    def _issue(self, start: float, now: float) -> Ticket:
        """The ticket of a request let through at ``now`` (under the lock)."""
        self._acquired += 1
        self._in_flight += 1
        if self._in_flight > self._max_in_flight:
            self._max_in_flight = self._in_flight
        waited = now - start
        self._waited += waited
        ticket = Ticket(self._release_ticket, self._gate.generation, now, waited)
        probe = self._probe
        if probe.due:
            probe.designate(ticket, now, self._gate.end)  # the others keep their places
        return ticket

    def _enter(
        self, now: float, deadline_at: float | None, lane: Lane
    ) -> _Reservation | _Express | None:
        """None when a request arriving ``now`` may go at once; else its place in the queue:
        its pacing reservation, ``_GATED`` without pacing, or an express slot of the
        interactive lane (under the lock).

        An interactive request overtakes the queue when bulk requests wait in it and its
        lane's own GCRA (at ``interactive_share`` of the rate, no burst) has a slot before the
        queue's next one: at that slot it takes the place of the first queued request, which
        moves back one interval with the rest of the queue (:meth:`_claim`), so the total rate
        stays the budget's and no window holds more than the GCRA allows. A lone lane is never
        held back by the other (work-conserving).
        """
        if not self._paced:
            if self._gate.end <= now and self._probe.ticket is None:
                return None
            return _GATED
        if self._queued_bulk and lane == INTERACTIVE and self._share and self._probe.ticket is None:
            queue_slot = max(self._next, now - self._tau)
            if queue_slot > now:
                t = max(self._express_next, self._gate.end, now)
                if t < queue_slot:
                    if t > now and deadline_at is not None and t >= deadline_at:
                        raise self._deadline_error(t - now)
                    express = _Express(t, self._express_next)
                    if t <= now and self._claim(express, now, deadline_at):
                        self._express_next = t + self._express_interval
                        return None
                    self._express_next = t + self._express_interval
                    return express
        t = self._reserve(now, deadline_at)
        if t <= now and self._probe.ticket is None:
            self._admitted(t)
            return None
        rec = _Reservation(self._seq - 1, t, self._epoch, bulk=lane == BULK)
        if rec.bulk:
            self._queued_bulk += 1
        self._pending.append(rec)
        return rec

    async def _gated(self, now: float, deadline_at: float | None) -> float:
        """Without pacing: wait for the gate and a probe's answer; return the clock then."""
        while True:
            wake = waiter = None
            with self._lock:
                if self._gate.end > now:
                    if deadline_at is not None and self._gate.end >= deadline_at:
                        raise self._deadline_error(self._gate.end - now)
                    delay = self._gate.end - now
                    wake = self._gate.wake(now)
                elif self._probe.ticket is None:
                    return now
                else:
                    waiter = self._probe.waiter(now, deadline_at)
            if waiter is not None:
                await self._probe.wait(waiter, now, deadline_at)
            else:
                await nap(self._sleep, delay, wake)
            now = self._clock()

    async def _express(
        self, rec: _Express, now: float, deadline_at: float | None
    ) -> float | _Reservation:
        """Wait for the lane's slot (and a gate closed meanwhile, and a probe's answer), take
        the queue's first slot, wait for it; return the clock then. When no bulk request is
        queued any more by then, the call queues as any other: return its reservation."""
        try:
            while True:
                wake = waiter = None
                with self._lock:
                    if rec.claimed and self._gate.end > rec.t:  # a 429 closed over the slot
                        rec.claimed = False  # the queue was laid out again: take its new first
                    t = max(rec.t, self._gate.end)
                    if t > now:
                        if deadline_at is not None and t >= deadline_at:
                            raise self._deadline_error(t - now)
                        delay = t - now
                        wake = self._gate.wake(now)
                    elif self._probe.ticket is not None:
                        waiter = self._probe.waiter(now, deadline_at)
                    elif rec.claimed:
                        return now
                    else:
                        claimed = self._claim(rec, now, deadline_at)
                        if claimed:
                            return now
                        if claimed is None:  # nothing to overtake any more
                            self._give_back_lane(rec)
                            return self._ordinary(now, deadline_at)
                        continue  # sleep until the slot it took
                if waiter is not None:
                    await self._probe.wait(waiter, now, deadline_at)
                else:
                    await nap(self._sleep, delay, wake)
                now = self._clock()
        except BaseException:
            with self._lock:
                self._give_back_lane(rec)
            raise

    def _claim(self, rec: _Express, now: float, deadline_at: float | None) -> bool | None:
        """Give ``rec`` the slot of the first queued request; the queue moves back one interval
        (under the lock). True when it may go now; False when it must wait until ``rec.t``;
        None when no bulk request is queued (nothing claimed)."""
        pending = self._pending
        while pending and pending[0].done:
            pending.popleft()
        if not self._queued_bulk or not pending:
            return None
        slot = max(self._effective(pending[0]), now)
        if slot > now and deadline_at is not None and slot >= deadline_at:
            raise self._deadline_error(slot - now)
        self._reschedule(slot + self._interval, self._interval)
        rec.t, rec.claimed = slot, True
        self._admitted(slot)  # taken: no reservation given back goes before it
        return slot <= now

    def _give_back_lane(self, rec: _Express) -> None:
        """An express request that is not going after all gives its lane's slot back, unless
        a later one was booked meanwhile (under the lock)."""
        if self._express_next == rec.lane_slot + self._express_interval:
            self._express_next = rec.lane_prev
        rec.lane_slot = _NEVER  # once

    def _ordinary(self, now: float, deadline_at: float | None) -> float | _Reservation:
        """A pacing slot as any request gets (under the lock): the clock when it may go now,
        else its reservation in the queue."""
        t = self._reserve(now, deadline_at)
        if t <= now:
            self._admitted(t)
            return now
        rec = _Reservation(self._seq - 1, t, self._epoch)
        self._pending.append(rec)
        return rec

    async def _queued(self, rec: _Reservation, now: float, deadline_at: float | None) -> float:
        """Wait for the reservation's slot (the gate included) and a probe's answer."""
        try:
            while True:
                wake = waiter = None
                with self._lock:
                    if rec.epoch != self._epoch:  # re-laid (a 429, reopen, a probe's answer)
                        rec.t = self._effective(rec)
                        rec.epoch = self._epoch
                        if rec.t > now and deadline_at is not None and rec.t >= deadline_at:
                            raise self._deadline_error(rec.t - now)
                    if rec.t > now:
                        delay = rec.t - now
                        wake = self._gate.wake(now)
                    elif (
                        self._probe.ticket is not None
                    ):  # keep this place in the queue until it is in
                        waiter = self._probe.waiter(now, deadline_at)
                    else:
                        self._admitted(rec.t)
                        self._leave(rec)
                        return now
                if waiter is not None:
                    await self._probe.wait(waiter, now, deadline_at)
                else:
                    await nap(self._sleep, delay, wake)
                now = self._clock()
        except BaseException:
            with self._lock:
                self._leave(rec)
            raise

    def _leave(self, rec: _Reservation) -> None:
        """``rec`` leaves the queue (under the lock)."""
        if rec.bulk and not rec.done:
            self._queued_bulk -= 1
        rec.done = True
        pending = self._pending
        while pending and pending[0].done:
            pending.popleft()
        if not pending:
            # Nobody queued any more: give back the abandoned reservations.
            self._next = min(self._next, max(self._last_t + self._interval, self._gate.end))

    def _end_probe(self, ticket: Ticket | None) -> list[asyncio.Future[None]]:
        """The probe is back (or given up): see :meth:`_probe_back`; return the futures to
        wake (under the lock)."""
        self._probe_back(ticket)
        return self._probe.end()

    def _probe_back(self, ticket: Ticket | None) -> None:
        """Lay the queue out again from now, in its order (under the lock); see
        :meth:`Probe.back`."""
        self._probe.back(ticket)
        if self._paced:
            self._relay(self._clock())

    def _finish_probe(self, ticket: Ticket) -> None:
        """After its answer was signalled: the probe is gone, its waiters go on (or meet the
        gate a new 429 closed)."""
        with self._lock:
            if self._probe.ticket is not ticket:  # reopen() ended it meanwhile
                return
            woken = self._probe.end()
        wake_futures(woken)

    def _relay(self, now: float) -> None:
        """Give the queued reservations the slots from ``now`` on, one interval apart."""
        interval = self._interval
        t = max(now, self._last_t + interval)
        self._epoch += 1
        first: _Reservation | None = None
        for rec in self._pending:
            if not rec.done:
                first = first or rec
                rec.t, rec.epoch = t, self._epoch
                t += interval
        if first is not None:
            self._base_seq, self._base_time, self._base_interval = first.seq, first.t, interval
        self._next = t

    def _reserve(self, now: float, deadline_at: float | None) -> float:
        """Reserve the next pacing slot (GCRA) and return its time; raise if past deadline."""
        t = self._next
        earliest = now - self._tau
        if t < earliest:
            t = earliest
        if t > now and deadline_at is not None and t >= deadline_at:
            raise self._deadline_error(t - now)
        self._next = t + self._interval
        self._seq += 1
        return t

    def _admitted(self, t: float) -> None:
        if t > self._last_t:
            self._last_t = t

    def _effective(self, rec: _Reservation) -> float:
        """The time ``rec`` may go under the current schedule (never earlier than before)."""
        if rec.epoch == self._epoch:
            return rec.t
        return max(rec.t, self._base_time + (rec.seq - self._base_seq) * self._base_interval)

    def _reschedule(self, start: float, old_interval: float) -> None:
        """Re-lay queued reservations from ``start`` at the current interval, in FIFO order."""
        pending = self._pending
        while pending and pending[0].done:
            pending.popleft()
        interval = self._interval
        shifted = self._next + max(0.0, interval - old_interval)
        if pending:
            first = pending[0]
            base = max(start, self._effective(first))
            self._base_seq = first.seq
            self._base_time = base
            self._base_interval = interval
            self._next = max(shifted, base + (self._seq - first.seq) * interval)
        else:
            self._next = max(shifted, start)
        self._epoch += 1

    def _release(self, ticket: Ticket) -> None:
        woken: list[asyncio.Future[None]] = []
        lock = self._lock
        lock.acquire()
        try:
            self._in_flight -= 1
            if self._cap is not None:
                fut = self._cap.free()
                if fut is not None:
                    woken.append(fut)
            if ticket is self._probe.ticket:
                # Its answer is in, and the caller signals a 429 or a success right after, in
                # this synchronous section of its loop. Until that section ends the probe
                # stays in place, so that no request of any loop goes (or probes) before the
                # answer is known; then its waiters go on, or meet the gate a 429 closed.
                try:
                    loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is None:
                    woken += self._end_probe(ticket)
                else:
                    self._probe_back(ticket)
                    loop.call_soon(self._finish_probe, ticket)
        finally:
            lock.release()
        if woken:
            wake_futures(woken)

    def _deadline_error(self, wait: float | None) -> GovernorDeadlineExceeded:
        self._deadline_misses += 1  # under the lock, like every caller
        return GovernorDeadlineExceeded(wait)

    # ------------------------------------------------------------------ feedback

    def rate_limited(self, retry_after: float | None = None, ticket: Ticket | None = None) -> float:
        """Signal a 429: close the cool-down gate (and cut the rate in adaptive mode).

        Every queued and new request waits until the gate opens, then they go one interval
        apart (no burst right after the gate).

        Args:
            retry_after: The response's ``Retry-After`` in seconds, or None. Without it the
                pause is ``cooldown * 2**(strikes - 1)`` capped at ``max_cooldown``, where
                strikes counts fresh 429s since the last fresh success. With it the pause is
                capped at ``max_retry_after``.
            ticket: The ticket the request was sent with. A 429 for a request admitted
                before the latest 429 signal still extends the gate but does not cut the
                rate or escalate the pause again. Without a ticket, a 429 is fresh unless
                the gate is closed.

        Returns:
            Seconds until the gate opens.
        """
        with self._lock:
            now = self._clock()
            self._n429 += 1
            gate = self._gate
            fresh, pause, beyond = gate.close(now, retry_after, ticket)
            if beyond:
                self._probe.due = True  # after the capped pause, one request tries first
            old_interval = self._interval
            changed = False
            if fresh and self._adaptive:
                rate = max(self._floor, self._rate * self._config.decrease)
                if rate < self._rate:
                    self._set_rate(rate)
                    changed = True
            if gate.extend(now + pause):
                changed = True
            if changed and self._paced:
                self._reschedule(max(self._gate.end, now), old_interval)
            return max(0.0, self._gate.end - now)

    def reopen(self) -> float:
        """Open the 429 cool-down gate now, for example after an operator fixed the cause.

        Requests waiting for the gate (or for a probe's answer) are woken and go from now on,
        one pacing interval apart in their order (all at once without pacing); the pause
        escalation starts over and no request has to probe first. The adaptive rate is left
        as it is. Nothing happens when the gate is open and nobody probes.

        Returns:
            Seconds the gate would still have stayed closed (0 when it was open).
        """
        with self._lock:
            now = self._clock()
            remaining = max(0.0, self._gate.end - now)
            probing = self._probe.ticket is not None or self._probe.due
            if remaining <= 0 and not probing:
                return 0.0
            gate_wakes = self._gate.reopen(now)
            woken = self._end_probe(None)
            woken += gate_wakes
        wake_futures(woken)
        return remaining

    def succeeded(self, ticket: Ticket | None = None) -> None:
        """Signal a response that was not a 429 (adaptive recovery, reset of the pause).

        Ignored for a stale ticket (admitted before the latest 429 signal).
        """
        if not self._adaptive and self._gate.strikes == 0 and ticket is not self._probe.last:
            return  # nothing to change (read without the lock: a race is a reordering)
        with self._lock:
            self._probe.answered(ticket)  # the server answers again: no more probing
            if ticket is not None and ticket.generation != self._gate.generation:
                return
            self._gate.strikes = 0
            if self._adaptive and self._rate < self._max_rate:
                self._set_rate(min(self._max_rate, self._rate + self._step))

    def _set_rate(self, per_minute: float) -> None:
        self._rate = per_minute
        self._interval = 60.0 / per_minute
        self._tau = self._burst_extra * self._interval
        if self._share:
            self._express_interval = self._interval / self._share

    # ------------------------------------------------------------------ introspection

    def expected_wait(self) -> float:
        """Seconds a request arriving now would wait for the gate and pacing (not the cap)."""
        with self._lock:
            now = self._clock()
            t = max(self._next, now - self._tau) if self._paced else self._gate.end
            return max(0.0, t - now)

    async def fleet_stats(self) -> FleetStats | None:
        """None: the budget is this process's alone."""
        return None

    async def aclose(self) -> None:
        """Nothing to close: the governor holds nothing bound to an event loop."""

    def stats(self) -> GovernorStats:
        """A snapshot of the counters."""
        with self._lock:
            return GovernorStats(
                acquired=self._acquired,
                waited=self._waited,
                rate_limited=self._n429,
                deadline_exceeded=self._deadline_misses,
                rate_per_minute=self.rate_per_minute,
                in_flight=self._in_flight,
                max_in_flight=self._max_in_flight,
                waiting=self._waiting,
                cooldown_remaining=max(0.0, self._gate.end - self._clock()),
            )
