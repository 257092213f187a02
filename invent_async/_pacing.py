"""Pacing in the process: a GCRA schedule with an express lane for interactive calls.

Pacing is GCRA ("next free send time"): every request reserves
``t = max(now - (burst - 1) * interval, next_time)``, sets ``next_time = t + interval`` and
sleeps once, until ``t``. That is O(1) per request, FIFO, with no polling, and it allows at
most ``burst + W * rate / 60`` admissions in any window of ``W`` seconds. The time a request
would wait is known at once, so a wait that would run past the caller's deadline fails
immediately.

When the cool-down gate closes (a 429) the schedule is rebuilt: queued requests keep their
order and are re-laid from the gate's end at one interval apart, and ``next_time`` moves past
them. So nobody is sent inside the cool-down, and the bucket starts empty after it: requests
resume spread out, not as a burst. Sleepers learn about the change through an epoch counter
when their (older, earlier) reservation wakes them, and never go earlier than they were
booked. A request cancelled (or refused) while queued leaves a one-interval hole until the
queue drains; then its reservation is given back. A request let through that is not sent
after all gives its slot back at once (:meth:`Schedule.give_back`): the next free send time
moves back one interval, never before now nor into a cool-down, so the next request to book
takes it. Adaptive mode cuts the rate on a fresh 429
and wins it back slowly on successes (AIMD).

Lanes: while bulk requests are queued, an interactive one may overtake them, up to
``interactive_share`` of the rate; the rule is :meth:`Schedule.overtakes`, and the queue
moves back one interval for each such call, so the total, and the bound above, stay the
budget's.

A part of a governor (see ``_admission``): the governor calls :class:`Schedule` under its
lock, and waits at the places it hands out (:class:`~invent_async._governor.Place`). The
schedule is built from :class:`Pacing`, a narrow value (the rate, burst, share and adaptive
rule), not from the user's ``RateLimit``.
"""

from __future__ import annotations

from collections import deque

import attrs

from ._cooldown import NEVER, CooldownGate
from ._governor import Place, Refuse
from ._limits import BULK, INTERACTIVE, Lane
from ._probe import Probe

__all__ = ["Adaptive", "Pacing", "Schedule"]


@attrs.frozen(kw_only=True)
class Adaptive:
    """Adaptive mode: ``decrease`` the rate on each fresh 429, down to ``min_fraction`` of
    the configured one, and win back ``recovery`` of it per fresh success."""

    decrease: float
    min_fraction: float
    recovery: float


@attrs.frozen(kw_only=True)
class Pacing:
    """What a schedule is built from.

    Attributes:
        per_minute: The rate requests are paced at (any headroom already taken off).
        burst: Requests that may go at once after an idle time.
        interactive_share: Share of the rate interactive calls may take ahead of queued
            bulk work (0: one queue).
        adaptive: The adaptive rule, or None for a fixed rate.
    """

    per_minute: float
    burst: int
    interactive_share: float = 0.0
    adaptive: Adaptive | None = None


class _Queued:
    """A request waiting for its pacing slot ``t`` (kept in FIFO order in the schedule)."""

    __slots__ = ("bulk", "done", "epoch", "schedule", "seq", "t")

    def __init__(self, schedule: Schedule, t: float, *, bulk: bool) -> None:
        self.schedule = schedule
        self.seq = schedule._seq - 1
        self.t = t
        self.epoch = schedule.epoch
        self.done = False
        self.bulk = bulk

    def go_at(self) -> float:
        schedule = self.schedule
        if self.epoch != schedule.epoch:  # re-laid (a 429, reopen, a probe's answer)
            self.t = schedule._effective(self)
            self.epoch = schedule.epoch
        return self.t

    def arrive(self, now: float, deadline_at: float | None) -> Place | None:
        self.schedule._admitted(self.t)
        self.schedule._leave(self)
        return None

    def abandon(self) -> None:
        self.schedule._leave(self)


class _Express:
    """An interactive request overtaking the queued ones.

    It waits until ``lane_slot`` (its lane's slot; the gate), then takes the slot of the
    first queued request, which moves back one interval with the rest of the queue
    (:meth:`Schedule._claim`), and goes at that slot (``t``, once ``claimed``). When no
    bulk request waits any more by then, it queues as any other request.
    """

    __slots__ = ("claimed", "lane_prev", "lane_slot", "schedule", "t")

    def __init__(self, schedule: Schedule, lane_slot: float, lane_prev: float) -> None:
        self.schedule = schedule
        self.lane_slot = lane_slot
        self.lane_prev = lane_prev  # the lane's next slot before this one was booked
        self.t = lane_slot
        self.claimed = False

    def go_at(self) -> float:
        gate_end = self.schedule._gate.end
        if self.claimed and gate_end > self.t:  # a 429 closed over the slot it took
            self.claimed = False  # the queue was laid out again: take its new first
        return max(self.t, gate_end)

    def arrive(self, now: float, deadline_at: float | None) -> Place | None:
        if self.claimed:
            return None
        schedule = self.schedule
        claimed = schedule._claim(self, now, deadline_at)
        if claimed:
            return None
        if claimed is None:  # nothing to overtake any more: queue as any other
            schedule._give_back_lane(self)
            return schedule._queue(now, deadline_at, INTERACTIVE)
        return self  # wait for the slot it took

    def abandon(self) -> None:
        self.schedule._give_back_lane(self)


class Schedule:
    """The GCRA schedule of one governor, with the interactive lane (see the module
    docstring). Every method runs under the governor's lock.

    Args:
        pacing: The rate, burst, lane share and adaptive rule.
        gate: The governor's cool-down gate (the schedule lays its queue out behind it).
        probe: The governor's probe (nobody goes, or overtakes, while one is out).
        refuse: The governor's ``GovernorDeadlineExceeded`` factory (it counts the miss).

    Attributes:
        adaptive: The rate adapts (see :meth:`cut` and :meth:`recover`).
        rate: The pacing rate now (per minute; below the configured one after adaptive cuts).
        interval: Seconds between two requests at that rate.
        epoch: Bumped whenever the queued reservations are laid out again.
    """

    def __init__(self, pacing: Pacing, *, gate: CooldownGate, probe: Probe, refuse: Refuse) -> None:
        self._gate = gate
        self._probe = probe
        self._refuse = refuse
        self.max_rate = pacing.per_minute
        rule = pacing.adaptive
        self.adaptive = rule is not None
        self._floor = self.max_rate * rule.min_fraction if rule else self.max_rate
        self._step = self.max_rate * rule.recovery if rule else 0.0
        self._decrease = rule.decrease if rule else 1.0
        self._burst_extra = pacing.burst - 1
        self.rate = self.max_rate
        self.interval = 0.0
        self._tau = 0.0
        # the interactive lane: its own GCRA at interactive_share of the rate (see overtakes)
        self._share = pacing.interactive_share
        self._express_interval = 0.0
        self._express_next = NEVER
        self._queued_bulk = 0  # bulk reservations in _pending, not done: what may be overtaken
        self._set_rate(self.max_rate)
        self._next = NEVER  # the next free send time
        self._last_t = NEVER  # reserved time of the latest admitted request
        self._seq = 0  # reservations handed out
        self.epoch = 0
        self._base_seq = 0  # after a re-lay, request seq goes at base_time + (seq - base_seq)*i
        self._base_time = NEVER
        self._base_interval = self.interval
        self._pending: deque[_Queued] = deque()

    def enter(self, now: float, deadline_at: float | None, lane: Lane) -> Place | None:
        """None when a request arriving ``now`` may go at once; else its place: a pacing
        reservation, or an express slot of the interactive lane (see :meth:`overtakes`).

        Raises:
            GovernorDeadlineExceeded: its slot is at or after ``deadline_at`` (nothing is
                booked then).
        """
        if self._queued_bulk:  # else nothing to overtake: the usual case, checked first
            lane_slot = max(self._express_next, self._gate.end, now)
            if self.overtakes(lane, now, lane_slot):
                if lane_slot > now and deadline_at is not None and lane_slot >= deadline_at:
                    raise self._refuse(lane_slot - now)
                express = _Express(self, lane_slot, self._express_next)
                if lane_slot <= now and self._claim(express, now, deadline_at):
                    self._express_next = lane_slot + self._express_interval
                    return None
                self._express_next = lane_slot + self._express_interval
                return express
        return self._queue(now, deadline_at, lane)

    def overtakes(self, lane: Lane, now: float, lane_slot: float | None) -> bool:
        """The express-lane rule: whether an interactive request goes ahead of the queue.
        The one place it is decided in the process (the Lua scripts of ``_redis_budget``
        apply it to a budget on Redis).

        While bulk requests wait in the queue and no probe is out, an interactive request
        whose lane has a slot (``lane_slot``: the lane is a GCRA of its own at
        ``interactive_share`` of the rate, without burst) before the queue's next free slot
        books that lane slot. When that slot comes (``lane_slot`` None), it takes the place
        of the first queued request, which moves back one interval with the rest of the
        queue, provided bulk work still waits; else it queues like any other request. So the
        total rate, and the bound of every window, stay the budget's, and a lone lane is
        never held back by the other (a lone bulk job runs at the full rate).
        """
        if lane != INTERACTIVE or not self._share or not self._queued_bulk:
            return False
        if self._probe.ticket is not None:
            return False
        return lane_slot is None or lane_slot < max(self._next, now - self._tau)

    def _queue(self, now: float, deadline_at: float | None, lane: Lane) -> _Queued | None:
        """Book the next pacing slot (GCRA): None when the request may go now, else its
        place in the queue. Raises when the slot is at or after ``deadline_at``."""
        t = self._next
        earliest = now - self._tau
        if t < earliest:
            t = earliest
        if t > now and deadline_at is not None and t >= deadline_at:
            raise self._refuse(t - now)
        self._next = t + self.interval
        self._seq += 1
        if t <= now and self._probe.ticket is None:
            if t > self._last_t:  # _admitted(t), inline: this is the hot path
                self._last_t = t
            return None
        bulk = lane == BULK
        rec = _Queued(self, t, bulk=bulk)
        if bulk:
            self._queued_bulk += 1
        self._pending.append(rec)
        return rec

    def _claim(self, rec: _Express, now: float, deadline_at: float | None) -> bool | None:
        """Give ``rec`` the slot of the first queued request; the queue moves back one
        interval. True when it may go now; False when it must wait until ``rec.t``; None
        when it does not overtake any more (see :meth:`overtakes`; nothing claimed)."""
        pending = self._pending
        while pending and pending[0].done:
            pending.popleft()
        if not pending or not self.overtakes(INTERACTIVE, now, None):
            return None
        slot = max(self._effective(pending[0]), now)
        if slot > now and deadline_at is not None and slot >= deadline_at:
            raise self._refuse(slot - now)
        self.reschedule(slot + self.interval, self.interval)
        rec.t, rec.claimed = slot, True
        self._admitted(slot)  # taken: no reservation given back goes before it
        return slot <= now

    def _give_back_lane(self, rec: _Express) -> None:
        """An express request that is not going after all gives its lane's slot back, unless
        a later one was booked meanwhile."""
        if self._express_next == rec.lane_slot + self._express_interval:
            self._express_next = rec.lane_prev
        rec.lane_slot = NEVER  # once

    def _admitted(self, t: float) -> None:
        if t > self._last_t:
            self._last_t = t

    def _leave(self, rec: _Queued) -> None:
        """``rec`` leaves the queue."""
        if rec.bulk and not rec.done:
            self._queued_bulk -= 1
        rec.done = True
        pending = self._pending
        while pending and pending[0].done:
            pending.popleft()
        if not pending:
            # Nobody queued any more: give back the abandoned reservations.
            self._next = min(self._next, max(self._last_t + self.interval, self._gate.end))

    def _effective(self, rec: _Queued) -> float:
        """The time ``rec`` may go under the current schedule (never earlier than before)."""
        if rec.epoch == self.epoch:
            return rec.t
        return max(rec.t, self._base_time + (rec.seq - self._base_seq) * self._base_interval)

    def reschedule(self, start: float, old_interval: float) -> None:
        """Re-lay queued reservations from ``start`` at the current interval, in FIFO order."""
        pending = self._pending
        while pending and pending[0].done:
            pending.popleft()
        interval = self.interval
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
        self.epoch += 1

    def relay(self, now: float) -> None:
        """Give the queued reservations the slots from ``now`` on, one interval apart."""
        interval = self.interval
        t = max(now, self._last_t + interval)
        self.epoch += 1
        first: _Queued | None = None
        for rec in self._pending:
            if not rec.done:
                first = first or rec
                rec.t, rec.epoch = t, self.epoch
                t += interval
        if first is not None:
            self._base_seq, self._base_time, self._base_interval = first.seq, first.t, interval
        self._next = t

    def cut(self) -> bool:
        """Adaptive mode, a fresh 429: cut the rate (not below its floor); True if it fell."""
        rate = max(self._floor, self.rate * self._decrease)
        if rate < self.rate:
            self._set_rate(rate)
            return True
        return False

    def recover(self) -> None:
        """Adaptive mode, a fresh success: win back a little of the rate."""
        if self.rate < self.max_rate:
            self._set_rate(min(self.max_rate, self.rate + self._step))

    def _set_rate(self, per_minute: float) -> None:
        self.rate = per_minute
        self.interval = 60.0 / per_minute
        self._tau = self._burst_extra * self.interval
        if self._share:
            self._express_interval = self.interval / self._share

    def give_back(self, now: float) -> bool:
        """A request let through will not be sent: the next free send time moves back one
        interval, never before ``now`` nor before the gate's end, so the next request to book
        takes the slot instead of a later one. True when it moved.

        Burst allowance is not given back (the next free time never goes before ``now``).
        """
        back = max(self._next - self.interval, now, self._gate.end)
        if back >= self._next:
            return False
        self._next = back
        return True

    def next_slot(self, now: float) -> float:
        """When a request arriving ``now`` would go (the gate included: the queue is laid
        out behind it)."""
        return max(self._next, now - self._tau)
