"""The rate governor in virtual time: pacing, burst, cool-down gate, deadline, cap, adaptive mode.

``FakeTime`` gives the governor a clock and a ``sleep`` that parks the caller until the test
advances virtual time; real asyncio tasks run against it, so every admission time is exact and
no test depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invent_async._governor import Ticket
from invent_async._limits import GovernorDeadlineExceeded, GovernorStats, RateLimit
from invent_async._ratelimit import RateGovernor

T = TypeVar("T")

T0 = 1000.0
SETTLE_ROUNDS = 12


async def settle() -> None:
    """Let every task that can run, run (there is no I/O: ready callbacks only)."""
    for _ in range(SETTLE_ROUNDS):
        await asyncio.sleep(0)


class FakeTime:
    """A virtual clock: ``sleep`` parks the caller until :meth:`run` moves time past it."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps = 0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, delay), next(self._order), fut))
        await fut

    async def sleep_until(self, at: float) -> None:
        if at > self.now:
            await self.sleep(at - self.now)

    async def run(self, until: float | None = None) -> None:
        """Wake sleepers in time order (ties: first come first woken) until none is left."""
        await settle()
        while self._timers:
            when, _, fut = self._timers[0]
            if until is not None and when > until:
                break
            heapq.heappop(self._timers)
            if fut.done():  # its sleeper was cancelled
                continue
            self.now = max(self.now, when)
            fut.set_result(None)
            await settle()
        if until is not None:
            self.now = max(self.now, until)


def make(ft: FakeTime, **config: Any) -> RateGovernor:
    """A governor in virtual time; no headroom, so that the arithmetic below stays exact."""
    config.setdefault("headroom", 0)
    return RateGovernor(RateLimit(**config), clock=ft.clock, sleep=ft.sleep)


Event = tuple[float, Callable[[], object]]


async def admissions(
    gov: RateGovernor,
    ft: FakeTime,
    arrivals: Sequence[float],
    *,
    hold: float = 0.0,
    events: Sequence[Event] = (),
) -> list[tuple[int, float]]:
    """Request ``i`` arrives at ``arrivals[i]`` (seconds after T0), holds its ticket for
    ``hold`` seconds and releases it; ``events`` run at their times. Returns
    ``(i, admitted - T0)`` in the order the governor let the requests through."""
    log: list[tuple[int, float]] = []

    async def request(i: int, at: float) -> None:
        await ft.sleep_until(T0 + at)
        async with gov.slot():
            log.append((i, ft.now - T0))
            if hold:
                await ft.sleep(hold)

    async def event(at: float, action: Callable[[], object]) -> None:
        await ft.sleep_until(T0 + at)
        action()

    async with asyncio.TaskGroup() as tg:
        for at, action in events:
            tg.create_task(event(at, action))
        for i, at in enumerate(arrivals):
            tg.create_task(request(i, at))
        await ft.run()
    return log


def signal_429(gov: RateGovernor, retry_after: float | None) -> Callable[[], object]:
    return lambda: gov.rate_limited(retry_after)


def times(log: list[tuple[int, float]]) -> list[float]:
    return [t for _, t in log]


def max_in_window(admitted: Sequence[float], window: float) -> int:
    """Most admissions in any closed window ``[t, t + window]``."""
    ordered = sorted(admitted)
    most, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] < t - window:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


async def start(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start ``coro`` as a task and let it run until it blocks."""
    task = asyncio.ensure_future(coro)
    await settle()
    return task


# ---------------------------------------------------------------------- pacing


@pytest.mark.parametrize("burst", [1, 2, 5])
async def test_burst_admits_exactly_burst_requests_at_once(burst: int) -> None:
    ft = FakeTime()
    log = await admissions(make(ft, per_minute=60, burst=burst), ft, [0.0] * 8)
    assert times(log).count(0.0) == burst
    assert times(log)[burst] == pytest.approx(1.0)


async def test_requests_beyond_the_burst_are_spaced_by_the_interval() -> None:
    ft = FakeTime()
    log = await admissions(make(ft, per_minute=500, burst=5), ft, [0.0] * 40)
    gaps = [b - a for a, b in itertools.pairwise(times(log)[4:])]
    assert gaps == pytest.approx([60 / 500] * 35)


async def test_no_60s_window_admits_more_than_the_rate_plus_the_burst() -> None:
    ft = FakeTime()
    arrivals = [0.0] * 600 + [75.0 + i for i in range(40)] + [200.0] * 300 + [330.0] * 200
    log = await admissions(make(ft, per_minute=500, burst=5), ft, arrivals)
    assert len(log) == len(arrivals)
    assert max_in_window(times(log), 60.0) <= 500 + 5


async def test_idle_time_refills_the_burst() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=3)
    log = await admissions(gov, ft, [0.0] * 3 + [10.0] * 4)
    assert times(log) == pytest.approx([0, 0, 0, 10, 10, 10, 11])


async def test_requests_are_admitted_first_come_first_served() -> None:
    ft = FakeTime()
    arrivals = [0.0] * 10 + [0.5, 0.25, 3.0, 0.25, 2.0]
    log = await admissions(make(ft, per_minute=120, burst=2), ft, arrivals)
    order = sorted(range(len(arrivals)), key=lambda i: (arrivals[i], i))
    assert [i for i, _ in log] == order
    assert times(log) == sorted(times(log))


async def test_each_request_waits_once_without_polling() -> None:
    ft = FakeTime()
    await admissions(make(ft, per_minute=60, burst=1), ft, [0.0] * 20)
    assert ft.sleeps == 19


# ---------------------------------------------------------------------- 429 cool-down gate


async def test_nobody_is_admitted_during_the_cooldown_and_then_one_per_interval() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=5)
    assert gov.rate_limited(2.0) == 2.0
    log = await admissions(gov, ft, [0.5] * 6)
    assert times(log) == pytest.approx([2, 3, 4, 5, 6, 7])


async def test_queued_requests_resume_spread_out_and_in_order_after_a_cooldown() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=2)
    log = await admissions(gov, ft, [0.0] * 8, events=[(1.5, lambda: gov.rate_limited(5.0))])
    assert [i for i, _ in log] == list(range(8))
    assert times(log) == pytest.approx([0, 0, 1, 6.5, 7.5, 8.5, 9.5, 10.5])


async def test_a_sleeper_on_an_older_reservation_does_not_fire_inside_a_new_cooldown() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    log = await admissions(gov, ft, [0.0, 0.0], events=[(0.5, lambda: gov.rate_limited(3.0))])
    assert times(log) == pytest.approx([0.0, 3.5])


async def test_a_longer_retry_after_extends_the_gate_a_shorter_one_does_not_shorten_it() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    events: list[Event] = [
        (0.0, lambda: gov.rate_limited(4.0)),
        (1.0, lambda: gov.rate_limited(1.0)),
        (2.0, lambda: gov.rate_limited(6.0)),
    ]
    log = await admissions(gov, ft, [0.5, 0.5], events=events)
    assert times(log) == pytest.approx([8.0, 9.0])


async def test_pause_without_retry_after_doubles_per_429_in_a_row_up_to_the_cap() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, cooldown=1.0, max_cooldown=5.0)
    pauses = []
    for _ in range(5):
        pauses.append(gov.rate_limited(None))
        ft.now += pauses[-1]
    assert pauses == [1.0, 2.0, 4.0, 5.0, 5.0]
    gov.succeeded()
    assert gov.rate_limited(None) == 1.0


async def test_a_429_for_a_request_sent_before_the_last_429_does_not_escalate_the_pause() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None)
    early = [await gov.acquire() for _ in range(3)]
    pauses = [gov.rate_limited(None, ticket) for ticket in early]
    assert pauses == [1.0, 1.0, 1.0]
    gov.succeeded(early[0])  # stale: does not reset the strike count either
    ft.now += 1.0
    late = await gov.acquire()
    assert gov.rate_limited(None, late) == 2.0


@pytest.mark.parametrize(("retry_after", "pause"), [(30.0, 30.0), (0.0, 0.0), (-3.0, 0.0)])
async def test_retry_after_is_honoured_as_given(retry_after: float, pause: float) -> None:
    ft = FakeTime()
    gov = make(ft, max_cooldown=5.0)
    assert gov.rate_limited(retry_after) == pause
    assert gov.stats().cooldown_remaining == pause


# ---------------------------------------------------------------------- deadline


async def test_a_wait_past_the_deadline_raises_at_once_and_consumes_nothing() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, max_in_flight=2)
    first = await gov.acquire()
    with pytest.raises(GovernorDeadlineExceeded) as info:
        await gov.acquire(deadline_at=T0 + 0.5)
    assert info.value.wait == pytest.approx(1.0)
    assert ft.now == T0
    stats = gov.stats()
    assert (stats.in_flight, stats.waiting, stats.deadline_exceeded) == (1, 0, 1)
    task = await start(gov.acquire())
    await ft.run()
    assert task.result().admitted_at == T0 + 1.0  # the refused request took no token
    first.release()


@pytest.mark.parametrize("per_minute", [60, None])
async def test_a_cooldown_ending_past_the_deadline_raises_at_once(per_minute: float | None) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=per_minute)
    gov.rate_limited(10.0)
    with pytest.raises(GovernorDeadlineExceeded) as info:
        await gov.acquire(deadline_at=T0 + 9.0)
    assert info.value.wait == pytest.approx(10.0)
    assert ft.now == T0


async def test_a_wait_ending_before_the_deadline_is_served() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    await gov.acquire()
    task = await start(gov.acquire(deadline_at=T0 + 1.5))
    await ft.run()
    assert task.result().waited == 1.0


async def test_a_requeued_sleeper_gives_up_when_its_new_slot_is_past_its_deadline() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    await gov.acquire()
    task = await start(gov.acquire(deadline_at=T0 + 3.0))
    await ft.run(until=T0 + 0.5)
    gov.rate_limited(10.0)
    await ft.run()
    with pytest.raises(GovernorDeadlineExceeded):
        task.result()
    assert ft.now == T0 + 1.0  # it found out when its old slot came up, before its deadline


async def test_a_request_whose_slot_a_probes_return_moves_past_its_deadline_gives_up() -> None:
    """A probe's return lays the queue out again from then: a request booked before its
    deadline whose new slot is at or past it gives up, it is not sent late."""
    ft = FakeTime()
    gov = make(ft, per_minute=120, burst=1, interactive_share=0, max_retry_after=3.0)
    gov.rate_limited(3600.0)  # the gate closes for 3 s, then a probe goes first

    async def answered_at_once() -> float:
        ticket = await gov.acquire(lane="bulk")
        ticket.release()
        gov.succeeded(ticket)
        return ticket.admitted_at

    probe = await start(gov.acquire(lane="bulk"))  # the probe, at the gate's end (3.0)
    ft.now = T0 + 0.1
    next_one = await start(answered_at_once())  # booked 3.5
    ft.now = T0 + 0.2
    late = await start(gov.acquire(deadline_at=T0 + 4.3, lane="bulk"))  # booked 4.0
    await ft.run(until=T0 + 3.8)
    probe.result().release()  # back at 3.8 with no answer: the next request probes again
    await ft.run()

    assert next_one.result() == T0 + 3.8
    with pytest.raises(GovernorDeadlineExceeded):  # laid out again at 4.3, its deadline
        late.result()
    assert gov.stats().deadline_exceeded == 1


async def test_the_deadline_also_bounds_the_wait_for_a_concurrency_slot() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, max_in_flight=1)
    holder = await gov.acquire()
    task = await start(gov.acquire(deadline_at=T0 + 5.0))
    await ft.run()
    with pytest.raises(GovernorDeadlineExceeded) as info:
        task.result()
    assert info.value.wait is None
    assert ft.now == T0 + 5.0
    holder.release()
    assert (await gov.acquire()).waited == 0.0  # the slot came back, not to the dead waiter


# ---------------------------------------------------------------------- concurrency cap


@pytest.mark.parametrize("per_minute", [6000, None])
async def test_in_flight_never_exceeds_max_in_flight(per_minute: float | None) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=per_minute, max_in_flight=4)
    current = peak = 0

    async def request(i: int) -> None:
        nonlocal current, peak
        async with gov.slot():
            current += 1
            peak = max(peak, current)
            await ft.sleep(0.05 + (i % 7) * 0.03)
            current -= 1

    async with asyncio.TaskGroup() as tg:
        for i in range(60):
            tg.create_task(request(i))
        await ft.run()
    assert peak == 4
    assert gov.stats().max_in_flight == 4
    assert (gov.stats().in_flight, gov.stats().acquired) == (0, 60)


async def test_the_slot_is_freed_when_the_request_raises() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, max_in_flight=1)
    with pytest.raises(KeyError):
        async with gov.slot():
            raise KeyError("boom")
    assert gov.stats().in_flight == 0
    assert (await gov.acquire()).waited == 0.0


async def test_releasing_a_ticket_twice_frees_one_slot() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, max_in_flight=1)
    ticket = await gov.acquire()
    ticket.release()
    ticket.release()
    assert ticket.released
    await gov.acquire()
    task = await start(gov.acquire())
    assert not task.done()  # still exactly one slot
    task.cancel()
    await settle()


async def test_slots_are_handed_over_in_arrival_order() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, max_in_flight=1)
    holder = await gov.acquire()
    order: list[int] = []

    async def request(i: int) -> None:
        async with gov.slot():
            order.append(i)

    tasks = [await start(request(i)) for i in range(5)]
    holder.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("waiting_for", ["slot", "pacing", "cooldown"])
async def test_cancelling_a_waiting_request_leaks_nothing(waiting_for: str) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None if waiting_for == "slot" else 60, burst=1, max_in_flight=1)
    holder = await gov.acquire()
    if waiting_for != "slot":
        holder.release()
    if waiting_for == "cooldown":
        gov.rate_limited(5.0)
    task = await start(gov.acquire())
    task.cancel()
    await settle()
    assert task.cancelled()
    if waiting_for == "slot":
        holder.release()
    stats = gov.stats()
    assert (stats.in_flight, stats.waiting, stats.acquired) == (0, 0, 1)
    expected = {"slot": T0, "pacing": T0 + 1.0, "cooldown": T0 + 5.0}[waiting_for]
    late = await start(gov.acquire())
    await ft.run()
    assert late.result().admitted_at == expected


async def test_a_slot_handed_to_a_request_cancelled_at_that_moment_goes_to_the_next() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, max_in_flight=1)
    holder = await gov.acquire()
    unlucky = await start(gov.acquire())
    next_in_line = await start(gov.acquire())
    holder.release()  # hands the slot to `unlucky`...
    unlucky.cancel()  # ...which is cancelled before it could run
    await settle()
    assert unlucky.cancelled()
    assert next_in_line.done()
    assert gov.stats().in_flight == 1


async def test_a_cancelled_queue_gives_its_reservations_back() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    await gov.acquire()
    queued = [await start(gov.acquire()) for _ in range(10)]
    for task in reversed(queued[3:7]):
        task.cancel()
    for task in queued[:3] + queued[7:]:
        task.cancel()
    await settle()
    late = await start(gov.acquire())
    await ft.run()
    assert late.result().admitted_at == T0 + 1.0


# ---------------------------------------------------------------------- adaptive mode


async def test_adaptive_mode_halves_the_rate_on_429_but_not_below_the_floor() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=600, adaptive=True, min_fraction=0.1)
    rates = []
    for _ in range(5):
        ticket = await _acquire_now(gov, ft)
        ticket.release()
        gov.rate_limited(1.0, ticket)
        rates.append(gov.rate_per_minute)
    assert rates == [300, 150, 75, 60, 60]


async def _acquire_now(gov: RateGovernor, ft: FakeTime) -> Ticket:
    task = await start(gov.acquire())
    await ft.run()
    return task.result()


async def test_adaptive_rate_recovers_slowly_and_never_above_the_configured_rate() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=600, adaptive=True, recovery=0.01)
    gov.rate_limited(1.0)
    assert gov.rate_per_minute == 300
    rates = []
    for _ in range(60):
        gov.succeeded()
        rates.append(gov.rate_per_minute)
    assert rates[0] == pytest.approx(306)
    assert rates[48] == pytest.approx(594)
    assert rates[49:] == [600] * 11


async def test_after_an_adaptive_cut_requests_are_spaced_by_the_new_interval() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, adaptive=True)
    log = await admissions(gov, ft, [0.0] * 5, events=[(1.5, lambda: gov.rate_limited(1.0))])
    assert times(log) == pytest.approx([0, 1, 2.5, 4.5, 6.5])


async def test_stale_responses_neither_cut_the_rate_again_nor_recover_it() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=600, burst=5, adaptive=True)
    early = [await gov.acquire() for _ in range(3)]
    gov.rate_limited(1.0, early[0])
    gov.rate_limited(1.0, early[1])
    gov.succeeded(early[2])
    assert gov.rate_per_minute == 300
    assert gov.stats().rate_limited == 2


# ---------------------------------------------------------------------- pacing disabled


@pytest.mark.parametrize("per_minute", [None, 0])
async def test_disabled_pacing_admits_at_once(per_minute: float | None) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=per_minute)
    tickets = [await gov.acquire() for _ in range(200)]
    assert ft.sleeps == 0
    assert {t.admitted_at for t in tickets} == {T0}
    assert gov.rate_per_minute is None


async def test_disabled_pacing_still_honours_the_cooldown() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None)
    log = await admissions(gov, ft, [0.0, 1.0, 3.0], events=[(0.0, lambda: gov.rate_limited(2))])
    assert times(log) == [2.0, 2.0, 3.0]


# ---------------------------------------------------------------------- stats, config, real time


async def test_stats_report_what_happened() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=2, max_in_flight=3)
    await admissions(gov, ft, [0.0] * 4, hold=10.0)
    assert gov.stats() == GovernorStats(
        acquired=4,
        waited=1.0 + 10.0,  # the third waited for pacing, the fourth for a slot
        rate_limited=0,
        deadline_exceeded=0,
        rate_per_minute=60,
        in_flight=0,
        max_in_flight=3,
        waiting=0,
        cooldown_remaining=0.0,
    )
    gov.rate_limited(4.0)
    assert gov.stats().gate_closed
    assert gov.expected_wait() == 4.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"per_minute": -1}, "per_minute must be a positive finite number"),
        ({"per_minute": float("inf")}, "per_minute"),
        ({"per_minute": "500"}, "per_minute"),
        ({"burst": 0}, "burst must be an integer >= 1"),
        ({"burst": 2.5}, "burst"),
        ({"burst": True}, "burst"),
        ({"max_in_flight": 0}, "max_in_flight must be an integer >= 1 or None"),
        ({"adaptive": 1}, "adaptive"),
        ({"adaptive": True, "per_minute": None}, "adaptive=True needs a per_minute"),
        ({"decrease": 1.0}, r"decrease must be a number in \(0, 1\)"),
        ({"min_fraction": 0}, r"min_fraction must be a number in \(0, 1\]"),
        ({"recovery": 1.5}, "recovery"),
        ({"cooldown": 0}, "cooldown must be a positive number of seconds"),
        ({"cooldown": 10, "max_cooldown": 5}, "max_cooldown"),
        ({"max_retry_after": 0}, "max_retry_after must be a positive number of seconds"),
        ({"max_retry_after": float("inf")}, "max_retry_after"),
        ({"max_retry_after": "300"}, "max_retry_after"),
    ],
)
def test_invalid_config_is_refused_with_a_clear_message(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        RateLimit(**config)


class FakeLoopClock:
    """A virtual clock that outlives event loops: ``sleep`` moves it on by the delay and then
    really suspends the caller on the running loop (a future resolved by that loop)."""

    def __init__(self) -> None:
        self.now = T0

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(0.0, delay)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, None)
        await fut


def test_the_governor_keeps_its_schedule_across_event_loops() -> None:
    ft = FakeLoopClock()
    limit = RateLimit(per_minute=6000, burst=1, headroom=0, max_in_flight=1)
    gov = RateGovernor(limit, clock=ft.clock, sleep=ft.sleep)  # built outside any loop

    async def two() -> list[float]:
        first = await gov.acquire()
        first.release()
        second = await gov.acquire()
        second.release()
        return [first.admitted_at - T0, second.admitted_at - T0]

    runs = [asyncio.run(two()) for _ in range(2)]  # two loops, one after the other

    assert runs == [pytest.approx([0.0, 0.01]), pytest.approx([0.02, 0.03])]
    assert gov.stats().in_flight == 0


@pytest.mark.parametrize("retry_after", [86400.0, 1e9])
async def test_a_retry_after_above_max_retry_after_closes_the_gate_for_max_retry_after_only(
    retry_after: float,
) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, max_retry_after=30)
    pauses: list[float] = []
    events: list[Event] = [(0.0, lambda: pauses.append(gov.rate_limited(retry_after)))]

    log = await admissions(gov, ft, [1.0, 1.0, 1.0], events=events)

    assert pauses == [30.0]
    assert times(log) == [30.0, 31.0, 32.0]  # one probes at the gate's end, the rest follow


@pytest.mark.parametrize(("per_minute", "expected"), [(60, [10.0, 11.0, 12.0]), (None, [10.0] * 3)])
async def test_reopen_releases_the_requests_waiting_for_the_gate_at_once(
    per_minute: int | None, expected: list[float]
) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=per_minute, burst=1)
    left: list[float] = []
    events: list[Event] = [(0.0, signal_429(gov, 100.0)), (10.0, lambda: left.append(gov.reopen()))]

    log = await admissions(gov, ft, [1.0, 1.0, 1.0], events=events)

    assert left == [90.0]
    assert times(log) == expected  # spread out by the pacing, when there is one
    assert not gov.stats().gate_closed


async def test_reopen_leaves_an_open_gate_and_the_pacing_alone() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    left: list[float] = []

    log = await admissions(
        gov, ft, [0.0, 0.0, 0.0], events=[(0.5, lambda: left.append(gov.reopen()))]
    )

    assert left == [0.0]
    assert times(log) == [0.0, 1.0, 2.0]


async def test_a_429_after_reopen_closes_the_gate_again() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    events: list[Event] = [
        (0.0, signal_429(gov, 100.0)),
        (10.0, gov.reopen),
        (10.5, signal_429(gov, 5.0)),
    ]

    log = await admissions(gov, ft, [1.0, 1.0, 1.0], events=events)

    assert times(log) == [10.0, 15.5, 16.5]


# ---------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    per_minute=st.sampled_from([30, 120, 500, 1000]),
    burst=st.integers(1, 6),
    arrivals=st.lists(st.floats(0, 120).map(lambda x: round(x, 2)), min_size=1, max_size=60),
    cooldowns=st.lists(
        st.tuples(st.floats(0, 120).map(lambda x: round(x, 2)), st.floats(0, 10)), max_size=4
    ),
)
async def test_pacing_invariants_hold_for_any_arrivals_and_429s(
    per_minute: int,
    burst: int,
    arrivals: list[float],
    cooldowns: list[tuple[float, float]],
) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=per_minute, burst=burst)
    events: list[Event] = [(at, signal_429(gov, ra)) for at, ra in cooldowns]
    log = await admissions(gov, ft, arrivals, events=events)
    admitted = dict(log)
    assert sorted(admitted) == list(range(len(arrivals)))  # everyone got through
    assert all(admitted[i] >= at - 1e-9 for i, at in enumerate(arrivals))  # nobody early
    order = sorted(range(len(arrivals)), key=lambda i: (arrivals[i], i))
    assert [i for i, _ in log] == order  # first come, first served
    for window in (1.0, 10.0, 60.0):
        assert max_in_window(times(log), window) <= burst + window * per_minute / 60 + 1e-9
    for at, ra in cooldowns:
        assert not [t for t in times(log) if at < t < at + ra - 1e-9]  # nobody in a cool-down


async def test_headroom_paces_a_little_under_the_configured_rate() -> None:
    ft = FakeTime()
    log = await admissions(make(ft, per_minute=600, burst=1, headroom=0.1), ft, [0.0] * 4)
    assert times(log) == pytest.approx([0.0, 60 / 540, 120 / 540, 180 / 540])


def test_headroom_must_leave_most_of_the_rate() -> None:
    with pytest.raises(ValueError, match="headroom"):
        RateLimit(headroom=0.5)


async def answered(
    gov: RateGovernor, ft: FakeTime, arrivals: Sequence[float], *, hold: float, ok: bool = True
) -> list[tuple[int, float]]:
    """Like :func:`admissions`, but each request signals its answer when it releases its
    ticket: a success (``ok``), or nothing at all (no answer came)."""
    log: list[tuple[int, float]] = []

    async def request(i: int, at: float) -> None:
        await ft.sleep_until(T0 + at)
        ticket = await gov.acquire()
        log.append((i, ft.now - T0))
        await ft.sleep(hold)
        ticket.release()
        if ok:
            gov.succeeded(ticket)

    async with asyncio.TaskGroup() as tg:
        for i, at in enumerate(arrivals):
            tg.create_task(request(i, at))
        await ft.run()
    return log


@pytest.mark.parametrize(
    ("per_minute", "expected"), [(60, [30.0, 35.0, 36.0, 37.0]), (None, [30.0, 35.0, 35.0, 35.0])]
)
async def test_after_a_capped_gate_one_request_probes_and_the_others_wait_for_its_answer(
    per_minute: int | None, expected: list[float]
) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=per_minute, burst=1, max_retry_after=30)
    gov.rate_limited(86400.0)

    log = await answered(gov, ft, [1.0, 1.0, 1.0, 1.0], hold=5.0)

    # the probe goes at the gate's end and is answered 5 s later; then the others, in their
    # order, paced when there is a rate
    assert log == list(enumerate(expected))


async def test_a_probe_that_got_no_answer_is_followed_by_another_probe() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, max_retry_after=30)
    gov.rate_limited(1e9)

    log = await answered(gov, ft, [1.0, 1.0, 1.0], hold=5.0, ok=False)

    assert log == [(0, 30.0), (1, 35.0), (2, 40.0)]  # one at a time, until one is answered


async def test_requests_keep_their_order_behind_a_probe() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, max_retry_after=30)
    gov.rate_limited(86400.0)

    log = await answered(gov, ft, [1.0] * 10, hold=5.0)

    assert [i for i, _ in log] == list(range(10))
    assert [at for _, at in log] == [30.0, *(35.0 + k for k in range(9))]


async def test_reopen_frees_the_requests_waiting_for_a_probe() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, max_retry_after=30)
    gov.rate_limited(86400.0)
    log: list[float] = []

    async def request(at: float, hold: float) -> None:
        await ft.sleep_until(T0 + at)
        async with gov.slot():
            log.append(ft.now - T0)
            await ft.sleep(hold)

    async def operator() -> None:
        await ft.sleep_until(T0 + 40.0)
        gov.reopen()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(request(1.0, 1000.0))  # the probe hangs
        tg.create_task(request(2.0, 0.0))
        tg.create_task(operator())
        await ft.run()

    assert log == [30.0, 40.0]


async def test_a_probe_answered_by_another_huge_retry_after_keeps_the_others_out() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, max_retry_after=30)
    log: list[float] = []

    async def probe_refused() -> None:
        await ft.sleep_until(T0 + 1.0)
        async with gov.slot() as ticket:
            log.append(ft.now - T0)
            await ft.sleep(2.0)
        gov.rate_limited(86400.0, ticket)  # the server still refuses: closed again

    async def request(at: float) -> None:
        await ft.sleep_until(T0 + at)
        async with gov.slot():
            log.append(ft.now - T0)

    gov.rate_limited(86400.0)  # at T0: closed until 30
    async with asyncio.TaskGroup() as tg:
        tg.create_task(probe_refused())
        tg.create_task(request(2.0))
        await ft.run()

    assert log == [30.0, 62.0]  # the probe at 30, refused at 32: the next one waits until 62


async def test_a_deadline_ends_the_wait_for_a_probe() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=None, max_retry_after=30)
    gov.rate_limited(86400.0)
    outcome: list[object] = []

    async def probe() -> None:
        async with gov.slot(T0 + 1000):
            await ft.sleep(100.0)

    async def impatient() -> None:
        await ft.sleep_until(T0 + 31.0)
        try:
            async with gov.slot(deadline_at=T0 + 40.0):
                outcome.append("admitted")
        except GovernorDeadlineExceeded as exc:
            outcome.append(ft.now - T0)
            outcome.append(exc.wait)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(probe())
        tg.create_task(impatient())
        await ft.run()

    assert outcome == [40.0, None]
