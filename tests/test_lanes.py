"""The governor's priority lanes in virtual time: interactive calls overtaking bulk work.

``RateLimit.interactive_share`` lets an interactive call overtake queued bulk requests, up to
that share of the rate; the queue moves back one interval for each such call, so the total
stays the budget's. Checked here with ``FakeTime`` (see ``test_ratelimit``): every admission
time is exact, so the GCRA bound is checked in every window, not on average.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Collection, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ratelimit import T0, FakeTime, make, settle, start

from invent_async._governor import Governor
from invent_async._limits import BULK, INTERACTIVE, GovernorDeadlineExceeded, Lane
from invent_async._ratelimit import RateGovernor

Arrival = tuple[float, Lane]
"""When a request arrives (seconds after T0) and its lane."""


class Admitted:
    """One request's arrival, lane and admission (seconds after T0)."""

    __slots__ = ("admitted", "arrival", "index", "lane")

    def __init__(self, index: int, lane: Lane, arrival: float, admitted: float) -> None:
        self.index, self.lane, self.arrival, self.admitted = index, lane, arrival, admitted

    @property
    def wait(self) -> float:
        return self.admitted - self.arrival


async def play(
    gov: Governor,
    now: Callable[[], float],
    sleep_until: Callable[[float], Awaitable[None]],
    arrivals: Sequence[Arrival],
    cooldowns: Sequence[tuple[float, float]],
    timers: Callable[[], Awaitable[None]],
    unsent: Collection[int] = (),
) -> list[Admitted]:
    """Request ``i`` arrives at ``arrivals[i]`` in its lane and releases its ticket at once
    (as not sent when ``i`` is in ``unsent``: its slot goes back);
    ``(at, retry_after)`` in ``cooldowns`` signals a 429 then; times are seconds after the
    start, on ``now``'s clock, and ``timers`` runs that clock. The admissions in the order
    the governor let them through."""
    log: list[Admitted] = []

    async def request(i: int, at: float, lane: Lane) -> None:
        await sleep_until(at)
        ticket = await gov.acquire(None, lane)
        log.append(Admitted(i, lane, at, now()))
        ticket.release(sent=i not in unsent)

    async def cool_down(at: float, retry_after: float) -> None:
        await sleep_until(at)
        gov.rate_limited(retry_after)

    async with asyncio.TaskGroup() as tg:
        for at, retry_after in cooldowns:
            tg.create_task(cool_down(at, retry_after))
        for i, (at, lane) in enumerate(arrivals):
            tg.create_task(request(i, at, lane))
        await timers()
    return log


async def run(
    gov: RateGovernor,
    ft: FakeTime,
    arrivals: Sequence[Arrival],
    cooldowns: Sequence[tuple[float, float]] = (),
    unsent: Collection[int] = (),
) -> list[Admitted]:
    """:func:`play` in ``ft``'s virtual time, from ``T0``."""
    return await play(
        gov,
        lambda: ft.now - T0,
        lambda at: ft.sleep_until(T0 + at),
        arrivals,
        cooldowns,
        ft.run,
        unsent,
    )


def worst_excess(admitted: Sequence[float], per_minute: float, burst: int) -> float:
    """How far the busiest window exceeds ``burst + W * rate / 60`` (<= 0: never).

    Every window from one admission to another is tried: those are the worst ones.
    """
    ordered = sorted(admitted)
    interval = 60 / per_minute
    worst = -float(burst)
    for i, j in itertools.combinations_with_replacement(range(len(ordered)), 2):
        count = j - i + 1
        worst = max(worst, count - (burst + (ordered[j] - ordered[i]) / interval))
    return worst


def saturating_bulk(count: int) -> list[Arrival]:
    return [(0.0, BULK)] * count


def interactive_every(period: float, count: int, first: float = 0.5) -> list[Arrival]:
    return [(first + k * period, INTERACTIVE) for k in range(count)]


# ---------------------------------------------------------------------- one lane alone


@pytest.mark.parametrize("lane", [BULK, INTERACTIVE])
@pytest.mark.parametrize("burst", [1, 3])
async def test_a_lone_lane_runs_at_the_full_rate(lane: Lane, burst: int) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=burst, interactive_share=0.25)
    log = await run(gov, ft, [(0.0, lane)] * 20)

    assert [a.admitted for a in log] == [0.0] * burst + [float(k) for k in range(1, 21 - burst)]


# ---------------------------------------------------------------------- both lanes


@pytest.mark.parametrize("burst", [1, 2])
async def test_interactive_calls_within_the_share_overtake_saturating_bulk_work(
    burst: int,
) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=burst, interactive_share=0.25)  # lane: one per 4 s
    arrivals = saturating_bulk(40) + interactive_every(5.0, 6)  # 40 s of queue ahead
    log = await run(gov, ft, arrivals)

    interactive = [a for a in log if a.lane == INTERACTIVE]
    bulk = [a.admitted for a in log if a.lane == BULK]
    assert len(log) == len(arrivals)
    assert all(a.wait <= 1.0 for a in interactive)  # at once, as far as the rate allows
    assert worst_excess([a.admitted for a in log], 60, burst) <= 1e-9  # in any window
    assert bulk == sorted(bulk)  # bulk work keeps its order
    # the total rate is the budget's: 46 requests take 46 - burst intervals, not less
    assert max(a.admitted for a in log) == pytest.approx(46 - burst)


async def test_interactive_calls_beyond_the_share_queue_behind_the_bulk_work() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, interactive_share=0.25)
    arrivals = saturating_bulk(30) + interactive_every(1.0, 8)  # 4x the lane's share
    log = await run(gov, ft, arrivals)

    interactive = [a for a in log if a.lane == INTERACTIVE]
    fast = [a for a in interactive if a.wait <= 1.0]
    assert 1 <= len(fast) <= 1 + 8 / 4  # the lane's share, no more, goes ahead
    assert max(a.wait for a in interactive) > 10  # the others wait in the queue
    assert worst_excess([a.admitted for a in log], 60, 1) <= 1e-9


async def test_bulk_work_uses_what_the_interactive_lane_leaves_idle() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, interactive_share=0.5)
    arrivals = [*saturating_bulk(20), (3.5, INTERACTIVE)]  # half the rate kept, one call
    log = await run(gov, ft, arrivals)

    admitted = sorted(a.admitted for a in log)
    assert admitted == [float(k) for k in range(21)]  # no slot left unused


async def test_a_share_of_zero_keeps_one_queue_in_arrival_order() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, interactive_share=0)
    arrivals = saturating_bulk(10) + interactive_every(5.0, 2)
    log = await run(gov, ft, arrivals)

    order = sorted(range(len(arrivals)), key=lambda i: (arrivals[i][0], i))
    assert [a.index for a in log] == order
    assert [a.admitted for a in log] == [float(k) for k in range(12)]  # behind all bulk work


async def test_an_express_slot_takes_the_next_bulk_slot_not_one_in_between() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, interactive_share=0.25)
    log = await run(gov, ft, [*saturating_bulk(10), (0.5, INTERACTIVE), (2.25, INTERACTIVE)])

    by_index = {a.index: a.admitted for a in log}
    assert by_index[10] == 1.0  # the slot of the second bulk request, which moves back
    assert by_index[11] == 5.0  # the lane's next slot (4 s later), on the queue's grid
    assert sorted(by_index.values()) == [float(k) for k in range(12)]


# ---------------------------------------------------------------------- deadlines, cancellation


async def test_an_express_slot_past_the_deadline_fails_at_once_and_takes_nothing() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, interactive_share=0.25)  # lane: one per 4 s
    bulk = [await start(gov.acquire(None, BULK)) for _ in range(10)]  # 0 s, then 1 s ... 9 s
    await ft.run(T0 + 0.5)
    with pytest.raises(GovernorDeadlineExceeded):
        await gov.acquire(T0 + 0.75, INTERACTIVE)  # its slot would be the next bulk one, 1 s
    first = await start(gov.acquire(None, INTERACTIVE))  # takes that slot; the lane's next: 4.5 s
    with pytest.raises(GovernorDeadlineExceeded):
        await gov.acquire(T0 + 2.0, INTERACTIVE)  # the lane's next slot is past it
    fits = await start(gov.acquire(T0 + 30.0, INTERACTIVE))
    await ft.run(T0 + 6.0)

    assert first.result().admitted_at == T0 + 1.0
    assert fits.result().admitted_at == T0 + 5.0  # the lane's slot neither refused call took
    assert gov.stats().deadline_exceeded == 2
    await ft.run()
    for task in [*bulk, first, fits]:
        task.result().release()


async def test_an_interactive_call_whose_deadline_the_queue_would_miss_goes_express() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, interactive_share=0.25)
    bulk = [await start(gov.acquire(None, BULK)) for _ in range(10)]
    call = await start(gov.acquire(T0 + 3.0, INTERACTIVE))  # the queue ends 10 s from now
    await ft.run()

    assert call.result().admitted_at == T0 + 1.0
    for task in [*bulk, call]:
        task.result().release()


@pytest.mark.parametrize("waiting", ["express", "bulk"])
async def test_cancelling_a_waiting_request_of_either_lane_leaks_nothing(waiting: str) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, interactive_share=0.25)
    bulk = [await start(gov.acquire(None, BULK)) for _ in range(8)]  # 0 s, then 1 s ... 7 s
    await ft.run(T0 + 0.5)
    first = await start(gov.acquire(None, INTERACTIVE))  # takes 1 s; the lane's next: 4.5 s
    # express: waits for the lane's next slot; bulk: waits at the queue's end
    victim = await start(gov.acquire(None, INTERACTIVE if waiting == "express" else BULK))
    victim.cancel()
    await settle()
    assert victim.cancelled()
    stats = gov.stats()
    assert (stats.waiting, stats.in_flight) == (8, 1)  # 7 bulk and the first express wait

    after = await start(gov.acquire(None, INTERACTIVE))
    await ft.run(T0 + 6.0)
    assert after.result().admitted_at == T0 + 5.0  # the lane's slot at 4.5 s was given back
    await ft.run()
    tickets = [task.result() for task in [*bulk, first, after]]
    for ticket in tickets:
        ticket.release()
    stats = gov.stats()
    assert (stats.waiting, stats.in_flight, stats.acquired) == (0, 0, 10)
    late = await start(gov.acquire(None, BULK))
    await ft.run()
    assert late.result().admitted_at == max(t.admitted_at for t in tickets) + 1.0  # no hole


async def test_a_cooldown_holds_back_express_slots_too() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1, interactive_share=0.25)
    bulk = [await start(gov.acquire(None, BULK)) for _ in range(8)]
    gov.rate_limited(5.0)
    express = await start(gov.acquire(None, INTERACTIVE))
    await ft.run()

    admitted = sorted([t.result().admitted_at for t in bulk] + [express.result().admitted_at])
    assert min(admitted[1:]) >= T0 + 5.0  # the first one went before the 429
    assert express.result().admitted_at <= T0 + 6.0  # right after the gate, ahead of bulk
    assert worst_excess([t - T0 for t in admitted], 60, 1) <= 1e-9


# ---------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    per_minute=st.sampled_from([60, 120, 600]),
    burst=st.integers(1, 4),
    share=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]),
    arrivals=st.lists(
        st.tuples(
            st.floats(0, 20).map(lambda x: round(x, 2)), st.sampled_from([BULK, INTERACTIVE])
        ),
        min_size=1,
        max_size=50,
    ),
    cooldowns=st.lists(
        st.tuples(st.floats(0, 20).map(lambda x: round(x, 2)), st.floats(0, 5)), max_size=3
    ),
)
async def test_the_lanes_never_break_the_budget(
    per_minute: int,
    burst: int,
    share: float,
    arrivals: list[Arrival],
    cooldowns: list[tuple[float, float]],
) -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=per_minute, burst=burst, interactive_share=share)
    log = await run(gov, ft, arrivals, cooldowns)

    assert sorted(a.index for a in log) == list(range(len(arrivals)))  # everyone got through
    assert all(a.wait >= -1e-9 for a in log)  # nobody early
    assert worst_excess([a.admitted for a in log], per_minute, burst) <= 1e-9
    bulk = [a for a in log if a.lane == BULK]
    assert [a.index for a in bulk] == sorted(
        (a.index for a in bulk), key=lambda i: (arrivals[i][0], i)
    )  # bulk work in arrival order
    for at, retry_after in cooldowns:  # nobody inside a cool-down
        assert not [a for a in log if at < a.admitted < at + retry_after - 1e-9]


async def test_a_freed_max_in_flight_slot_goes_to_an_interactive_call_first() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=600_000, burst=100, max_in_flight=1, interactive_share=0.2)
    held = await gov.acquire(None, BULK)
    bulk = [await start(gov.acquire(None, BULK)) for _ in range(3)]
    interactive = await start(gov.acquire(None, INTERACTIVE))
    held.release()
    await settle()

    assert interactive.done()  # though it came after the bulk ones
    assert not any(task.done() for task in bulk)
    interactive.result().release()
    for task in bulk:
        await settle()
        task.result().release()
    await settle()
