"""What the process decides on its own before a request goes: the parts of a governor under
one lock, the tickets, and the one wait loop.

An :class:`Admission` composes the parts: the concurrency cap (``_cap``), the 429 cool-down
gate (``_cooldown``), the probe after a capped ``Retry-After`` (``_probe``) and, when the
process paces its requests itself, the GCRA schedule with its express lane (``_pacing``).
:meth:`Admission.acquire` waits, in this order:

1. for a concurrency slot, when there is a cap;
2. at its place: a pacing reservation, an express slot, or (without pacing) the gate alone.
   One loop serves them all (:meth:`Admission._wait_at`): each round it asks the place when
   it may go (a 429 or a reopen may have moved that time: the place's epoch tells), fails
   the request if that is at or after its deadline, sleeps until then (or until the gate is
   reopened), waits for a probe's answer if one is out, and else tells the place its time
   has come.

The in-process governor (``_ratelimit.RateGovernor``) is an :class:`Admission` built from a
``RateLimit``; the fleet governor (``_fleet``) composes one without pacing (the cap, its own
gate and probe) and another with only its fallback pacing. Each is built from explicit parts
(:class:`~invent_async._pacing.Pacing`, :class:`~invent_async._cooldown.CooldownRule`, the
cap's limit), never from a ``RateLimit`` evolved into another.

Nothing is bound to an event loop, and an admission is thread-safe: requests of several event
loops in several threads (each sync client runs its own) may share it. Every synchronous
section of a request changes the state under one ``threading.Lock``, never held across an
await; a waiter parks on a future of its own loop, and one loop wakes another's futures with
``call_soon_threadsafe`` (its own directly). Without pacing, the cap and the gate still hold,
at the cost of a clock read per call; after a cool-down, waiters are then all released at
the gate's end, since there is no rate to spread them by.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from ._cap import ConcurrencyCap
from ._cooldown import CooldownGate, CooldownRule
from ._governor import Place, Ticket, nap, wake_futures
from ._limits import INTERACTIVE, GovernorDeadlineExceeded, GovernorStats, Lane
from ._pacing import Pacing, Schedule
from ._probe import Probe

__all__ = ["Admission"]


class _Slot:
    """What :meth:`Admission.slot` returns: acquire on enter, release on exit."""

    __slots__ = ("_admission", "_deadline_at", "_ticket")

    def __init__(self, admission: Admission, deadline_at: float | None) -> None:
        self._admission = admission
        self._deadline_at = deadline_at
        self._ticket: Ticket | None = None

    async def __aenter__(self) -> Ticket:
        self._ticket = await self._admission.acquire(self._deadline_at)
        return self._ticket

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ticket is not None:
            self._ticket.release()


class Admission:
    """The parts of a governor under one lock (see the module docstring).

    Args:
        pacing: The process paces its requests itself at this rate (None: it does not).
        max_in_flight: The concurrency cap (None: none).
        interactive_first: A freed concurrency slot goes to an interactive request first.
        cooldown: How long a 429 closes the gate.
        clock: Monotonic clock in seconds; ``deadline_at`` values use it.
        sleep: Coroutine function sleeping for a number of seconds of that clock.
    """

    def __init__(
        self,
        *,
        pacing: Pacing | None,
        max_in_flight: int | None,
        interactive_first: bool,
        cooldown: CooldownRule,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        # Every change of the state below happens under this lock, which is never held
        # across an await (each synchronous section of a request takes it once).
        self._lock = lock = threading.Lock()
        refuse = self._deadline_error
        self._gate = CooldownGate(cooldown)
        self._probe = Probe(lock, sleep, refuse)
        self._cap = (
            None
            if max_in_flight is None
            else ConcurrencyCap(
                max_in_flight,
                interactive_first=interactive_first,
                lock=lock,
                sleep=sleep,
                refuse=refuse,
            )
        )
        self._schedule = (
            None
            if pacing is None
            else Schedule(pacing, gate=self._gate, probe=self._probe, refuse=refuse)
        )
        self._adaptive = self._schedule is not None and self._schedule.adaptive
        # where a request arriving now stands: the schedule's, or the gate alone
        self._enter = self._schedule.enter if self._schedule is not None else self._at_gate
        self._release_ticket = self._release  # what each ticket calls (bound once)
        # statistics
        self._acquired = 0
        self._waited = 0.0
        self._n429 = 0
        self._deadline_misses = 0
        self._given_back = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._waiting = 0

    @property
    def rate_per_minute(self) -> float | None:
        """The current pacing rate (None when the process does not pace its requests)."""
        return self._schedule.rate if self._schedule is not None else None

    # ------------------------------------------------------------------ acquiring

    def slot(self, deadline_at: float | None = None) -> _Slot:
        """``async with governor.slot(deadline_at) as ticket:``, releasing on exit."""
        return _Slot(self, deadline_at)

    async def acquire(self, deadline_at: float | None = None, lane: Lane = INTERACTIVE) -> Ticket:
        """Wait for a concurrency slot, the cool-down gate and a pacing slot, in that order.

        Args:
            deadline_at: The caller's deadline on this governor's clock (None: none). When the
                wait is known to end at or after it, :class:`GovernorDeadlineExceeded` is
                raised at once; while queued for a concurrency slot or a probe's answer it is
                raised at the deadline. Nothing is consumed in either case.
            lane: ``"interactive"`` requests may overtake queued ``"bulk"`` ones, up to
                ``interactive_share`` of the rate (see :class:`RateLimit`).

        Returns:
            A :class:`Ticket`; call :meth:`Ticket.release` once the request is answered
            (``release(sent=False)`` when it is not sent after all: its pacing slot goes
            back). Cancelling ``acquire`` leaks nothing.
        """
        start = self._clock()
        cap = self._cap
        waiter = None
        lock = self._lock
        lock.acquire()  # not "with": this is the hot path, and that costs twice as much
        try:
            if cap is None or cap.take():
                try:
                    place = self._enter(start, deadline_at, lane)
                except BaseException:
                    if cap is not None:
                        cap.free()  # nobody waits for it: a slot was free
                    raise
                if place is None:  # let through at once
                    return self._issue(start, start)
            else:
                waiter = cap.waiter(start, deadline_at, lane)
            self._waiting += 1
        finally:
            lock.release()
        holding = cap is not None and waiter is None  # a concurrency slot
        try:
            if waiter is not None:
                assert cap is not None
                await cap.wait(waiter, start, deadline_at)
                holding = True
                now = self._clock()
                with lock:
                    place = self._enter(now, deadline_at, lane)
                    if place is None:
                        self._waiting -= 1
                        return self._issue(start, now)
            else:
                now = start
            assert place is not None  # it was let through at once otherwise
            return await self._wait_at(place, start, now, deadline_at)
        except BaseException:
            wake = None
            with lock:
                self._waiting -= 1
                if holding:
                    assert cap is not None
                    wake = cap.free()
            if wake is not None:
                wake_futures([wake])
            raise

    def _at_gate(self, now: float, deadline_at: float | None, lane: Lane) -> Place | None:
        """Without pacing: None when the gate is open and no probe is out, else the gate."""
        if self._gate.end <= now and self._probe.ticket is None:
            return None
        return self._gate

    async def _wait_at(
        self, place: Place, start: float, now: float, deadline_at: float | None
    ) -> Ticket:
        """The one wait loop, for every kind of place (see the module docstring): the ticket
        once the place's time has come and no probe is out."""
        lock = self._lock
        try:
            while True:
                wake = waiter = None
                with lock:
                    t = place.go_at()
                    if t > now:
                        if deadline_at is not None and t >= deadline_at:
                            raise self._deadline_error(t - now)
                        wake = self._gate.wake(now)
                    elif self._probe.ticket is not None:  # keep this place until it is in
                        waiter = self._probe.waiter(now, deadline_at)
                    else:
                        went = place.arrive(now, deadline_at)
                        if went is None:
                            self._waiting -= 1
                            return self._issue(start, now)
                        if went is not place:  # nothing left to overtake: queued instead
                            place = went
                            now = self._clock()
                        continue
                if waiter is not None:
                    await self._probe.wait(waiter, now, deadline_at)
                else:
                    await nap(self._sleep, t - now, wake)
                now = self._clock()
        except BaseException:
            with lock:
                place.abandon()
            raise

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

    def _release(self, ticket: Ticket, sent: bool) -> None:
        woken: list[asyncio.Future[None]] | None = None
        lock = self._lock
        lock.acquire()
        try:
            self._in_flight -= 1
            if not sent:
                self._give_back(ticket)
            if self._cap is not None:
                fut = self._cap.free()
                if fut is not None:
                    woken = [fut]
            if ticket is self._probe.ticket:
                probe_woken = self._probe_released(ticket)
                woken = probe_woken if woken is None else woken + probe_woken
        finally:
            lock.release()
        if woken:
            wake_futures(woken)

    def _give_back(self, ticket: Ticket) -> None:
        """``ticket``'s request is not sent after all: its pacing slot goes back to the
        schedule, unless a 429 laid the queue out again since it was let through, or it is
        the probe (whose release lays the queue out from now anyway) (under the lock)."""
        schedule = self._schedule
        if schedule is None or ticket is self._probe.ticket:
            return
        if ticket.generation != self._gate.generation:
            return
        if schedule.give_back(self._clock()):
            self._given_back += 1

    def _probe_released(self, ticket: Ticket) -> list[asyncio.Future[None]]:
        """The probe's answer is in, and the caller signals a 429 or a success right after,
        in this synchronous section of its loop. Until that section ends the probe stays in
        place, so that no request of any loop goes (or probes) before the answer is known;
        then its waiters go on, or meet the gate a 429 closed (under the lock)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            return self._end_probe(ticket)
        self._probe_back(ticket)
        loop.call_soon(self._finish_probe, ticket)
        return []

    def _end_probe(self, ticket: Ticket | None) -> list[asyncio.Future[None]]:
        """The probe is back (or given up): see :meth:`_probe_back`; return the futures to
        wake (under the lock)."""
        self._probe_back(ticket)
        return self._probe.end()

    def _probe_back(self, ticket: Ticket | None) -> None:
        """Lay the queue out again from now, in its order; see :meth:`Probe.back` (under
        the lock)."""
        self._probe.back(ticket)
        if self._schedule is not None:
            self._schedule.relay(self._clock())

    def _finish_probe(self, ticket: Ticket) -> None:
        """After its answer was signalled: the probe is gone, its waiters go on (or meet the
        gate a new 429 closed)."""
        with self._lock:
            if self._probe.ticket is not ticket:  # reopen() ended it meanwhile
                return
            woken = self._probe.end()
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
            schedule = self._schedule
            changed = False
            if schedule is not None:
                old_interval = schedule.interval
                if fresh and self._adaptive:
                    changed = schedule.cut()
            if gate.extend(now + pause):
                changed = True
            if changed and schedule is not None:
                schedule.reschedule(max(gate.end, now), old_interval)
            return max(0.0, gate.end - now)

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
            if self._adaptive:
                assert self._schedule is not None
                self._schedule.recover()

    # ------------------------------------------------------------------ introspection

    def expected_wait(self) -> float:
        """Seconds a request arriving now would wait for the gate and pacing (not the cap)."""
        with self._lock:
            now = self._clock()
            schedule = self._schedule
            t = schedule.next_slot(now) if schedule is not None else self._gate.end
            return max(0.0, t - now)

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
                given_back=self._given_back,
            )
