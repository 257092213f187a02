"""The express-lane rule, the same in the process, on Redis and on the host.

The rule (an interactive call overtakes queued bulk work, up to ``interactive_share`` of the
rate) is decided by ``Schedule.overtakes`` in the process, by the Lua scripts of
``_redis_budget`` on a Redis server, and by their Python twins in the host's sqlite store
(``_host_budget``). Each scenario below runs through the three: the in-process governor
(``RateGovernor``) in virtual time (``FakeTime``, see ``test_ratelimit``), the fleet governor
(``FleetGovernor``) on a real valkey-server (the fixtures of ``test_fleet``) and the host
governor (``HostGovernor``) on a real sqlite file, in real time, at 300 requests per minute
(one slot every 0.2 s) with the interactive lane at a quarter of that (one call every 0.8 s).

The slots given back (``Ticket.release(sent=False)``: the request was not sent after all)
are checked here too: every governor must give such a slot to the next request to book.

All must show the same observable outcome: who went first, how many went ahead of the
queue, how many went in a window, nobody inside a cool-down. Exact slots need not match, and
are not compared: the stores lay slots differently. In the process an express call takes
the slot of the first queued request and the whole queue moves back one interval; on Redis
(and in the host's store, which runs the same rule) it takes a booked slot on the queue's
grid, and the bulk request booked there books again at the queue's end when it is due (so
the bulk requests do not keep their order, and a call queued behind the bulk work may go
before the ones that gave up their slots). Times are
compared in whole intervals, or against thresholds half an interval away from where either
store puts a request, so the real clock's jitter does not decide.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Final, Protocol

import pytest
from test_fleet import redis_url, valkey  # noqa: F401 - the fixtures: a valkey-server
from test_lanes import Admitted, Arrival, play, run
from test_ratelimit import FakeTime, make

from invent_async._fleet import FleetGovernor
from invent_async._host import HostGovernor
from invent_async._limits import BULK, INTERACTIVE, Lane, RateLimit

INTERVAL: Final = 0.2
"""Seconds between two slots of the budget."""
SHARE: Final = 0.25
"""The interactive lane's share: one call every four intervals."""
LEAD: Final = 0.1
"""Real time: seconds between starting the requests' tasks and the scenario's start."""


class Lanes(Protocol):
    """Runs a scenario through one governor."""

    async def run(
        self,
        arrivals: Sequence[Arrival],
        cooldowns: Sequence[tuple[float, float]] = (),
        unsent: Collection[int] = (),
    ) -> list[Admitted]: ...


class InProcess:
    """The in-process governor, in virtual time: every time is exact."""

    async def run(
        self,
        arrivals: Sequence[Arrival],
        cooldowns: Sequence[tuple[float, float]] = (),
        unsent: Collection[int] = (),
    ) -> list[Admitted]:
        ft = FakeTime()
        gov = make(ft, per_minute=60 / INTERVAL, burst=1, interactive_share=SHARE)
        return await run(gov, ft, arrivals, cooldowns, unsent)


class OnRedis:
    """The fleet governor on a valkey-server, in real time."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name

    async def run(
        self,
        arrivals: Sequence[Arrival],
        cooldowns: Sequence[tuple[float, float]] = (),
        unsent: Collection[int] = (),
    ) -> list[Admitted]:
        limit = RateLimit(
            per_minute=60 / INTERVAL,
            burst=1,
            headroom=0,
            interactive_share=SHARE,
            redis_url=self._url,
        )
        gov = FleetGovernor(limit, name=self._name)
        try:
            await gov.fleet_stats()  # connected before the start (no slot booked)
            start = time.monotonic() + LEAD

            async def sleep_until(at: float) -> None:
                await asyncio.sleep(max(0.0, start + at - time.monotonic()))

            async def no_timers() -> None:
                pass

            log = await play(
                gov,
                lambda: time.monotonic() - start,
                sleep_until,
                arrivals,
                cooldowns,
                no_timers,
                unsent,
            )
            return sorted(log, key=lambda a: a.admitted)  # in the order of their times
        finally:
            await gov.aclose()


class OnHost:
    """The host governor, its budget in a sqlite store of its own, in real time."""

    def __init__(self, directory: Path, name: str) -> None:
        self._directory = directory
        self._name = name

    async def run(
        self,
        arrivals: Sequence[Arrival],
        cooldowns: Sequence[tuple[float, float]] = (),
        unsent: Collection[int] = (),
    ) -> list[Admitted]:
        limit = RateLimit(per_minute=60 / INTERVAL, burst=1, headroom=0, interactive_share=SHARE)
        gov = HostGovernor(limit, name=self._name, directory=self._directory)
        try:
            await gov.fleet_stats()  # the store opened before the start (no slot booked)
            start = time.monotonic() + LEAD

            async def sleep_until(at: float) -> None:
                await asyncio.sleep(max(0.0, start + at - time.monotonic()))

            async def no_timers() -> None:
                pass

            log = await play(
                gov,
                lambda: time.monotonic() - start,
                sleep_until,
                arrivals,
                cooldowns,
                no_timers,
                unsent,
            )
            return sorted(log, key=lambda a: a.admitted)  # in the order of their times
        finally:
            await gov.aclose()


@pytest.fixture(
    params=[
        "in-process",
        pytest.param("on-redis", marks=pytest.mark.heavy),
        pytest.param("on-host", marks=pytest.mark.heavy),
    ]
)
def lanes(request: pytest.FixtureRequest, tmp_path: Path) -> Lanes:
    """The governor a scenario runs through: in the process, on a valkey-server, or in the
    host's store."""
    if request.param == "in-process":
        return InProcess()
    if request.param == "on-host":
        return OnHost(tmp_path, name=f"conformance-{request.node.name}")
    url = request.getfixturevalue("redis_url")
    return OnRedis(url, name=f"conformance-{request.node.name}")


def intervals(seconds: float) -> int:
    return round(seconds / INTERVAL)


def most_in_window(admitted: Sequence[Admitted], window: float) -> int:
    """Most admissions in any window ``[t, t + window)`` (``window`` a whole number of
    intervals, half an interval shorter for the real clock's jitter)."""
    times = sorted(a.admitted for a in admitted)
    return max(sum(t <= u < t + window - INTERVAL / 2 for u in times) for t in times)


# ---------------------------------------------------------------------- the scenarios


async def test_with_no_bulk_work_queued_an_interactive_call_goes_at_once(lanes: Lanes) -> None:
    log = await lanes.run([(0.0, BULK)] * 3 + [(5 * INTERVAL, INTERACTIVE)])

    call = next(a for a in log if a.lane == INTERACTIVE)
    assert call.wait < INTERVAL / 2  # the bulk job was done: nothing to overtake, no wait


async def test_with_bulk_work_queued_and_the_lane_free_an_interactive_call_overtakes(
    lanes: Lanes,
) -> None:
    log = await lanes.run([(0.0, BULK)] * 10 + [(INTERVAL / 2, INTERACTIVE)])

    assert [a.lane for a in log[:2]] == [BULK, INTERACTIVE]  # second, behind the one sent
    call = log[1]
    assert intervals(call.admitted) == 1  # at the next slot, not behind ten bulk requests
    assert intervals(log[-1].admitted) == 10  # the total is the budget's: 11 slots
    assert most_in_window(log, 5 * INTERVAL) == 5


async def test_interactive_calls_beyond_the_lanes_share_queue_behind_the_bulk_work(
    lanes: Lanes,
) -> None:
    log = await lanes.run([(0.0, BULK)] * 10 + [(INTERVAL / 2, INTERACTIVE)] * 4)

    calls = [a.admitted for a in log if a.lane == INTERACTIVE]
    queue_end = 10 * INTERVAL - INTERVAL / 2  # the ten bulk requests' last slot, and then some
    ahead = [t for t in calls if t < queue_end]
    assert len(ahead) == 3  # one lane slot every four intervals before the queue's end...
    assert [intervals(t) for t in ahead] == [1, 5, 9]  # ...on the queue's grid
    assert all(t >= queue_end for t in calls[3:])  # the fourth waits for the queue
    assert intervals(log[-1].admitted) == 13  # 14 requests: the total is the budget's


@pytest.mark.parametrize("lane", [BULK, INTERACTIVE])
async def test_a_lone_lane_runs_at_the_full_rate(lanes: Lanes, lane: Lane) -> None:
    log = await lanes.run([(0.0, lane)] * 12)

    assert intervals(log[-1].admitted - log[0].admitted) == 11
    assert most_in_window(log, 4 * INTERVAL) == 4


async def test_a_gate_closed_by_a_429_holds_both_lanes(lanes: Lanes) -> None:
    closed, retry_after = 1.5 * INTERVAL, 5 * INTERVAL
    log = await lanes.run(
        [(0.0, BULK)] * 6 + [(2.5 * INTERVAL, INTERACTIVE)], cooldowns=[(closed, retry_after)]
    )

    opens = closed + retry_after
    before = [a for a in log if a.admitted < closed]
    during = [a for a in log if closed + INTERVAL / 4 < a.admitted < opens - INTERVAL / 4]
    after = [a for a in log if a.admitted > opens - INTERVAL / 4]
    assert [a.lane for a in before] == [BULK, BULK]
    assert during == []  # neither lane inside the cool-down
    assert INTERACTIVE in [a.lane for a in after[:2]]  # right after it, ahead of the queue
    assert intervals(after[0].admitted - opens) == 0  # resumed at the gate's end...
    assert most_in_window(after, 3 * INTERVAL) == 3  # ...one interval apart, not a burst


@pytest.mark.parametrize("lane", [BULK, INTERACTIVE])
async def test_a_slot_given_back_goes_to_the_next_request_to_book(lanes: Lanes, lane: Lane) -> None:
    """Requests 0-5 queue at once; request 5 is let through at its slot but not sent, and
    the one arriving just after takes that slot given back: it goes at once, not one
    interval later."""
    log = await lanes.run([(0.0, lane)] * 6 + [(5.2 * INTERVAL, lane)], unsent={5})

    late = next(a for a in log if a.index == 6)
    assert late.wait < INTERVAL / 2  # unfixed: it waited for the slot at 6 intervals
    sent = [a for a in log if a.index != 5]
    assert most_in_window(sent, 6 * INTERVAL) <= 6
