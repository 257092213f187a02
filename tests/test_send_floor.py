"""The send floor and the slots given back (issue #21, item 1).

A request is sent only when the time left before its call's deadline can hold an answer
(``_send_floor``); a call that cannot be served in time fails *before* sending, saying so,
and a pacing slot it booked goes back to the budget, in the process and on Redis. Against a
real FakeInvent over loopback, a real valkey-server (the fixtures of ``test_fleet``), and the
governor in virtual time (``FakeTime`` of ``test_ratelimit``) where a count in a window is
asserted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import pytest
from test_fleet import redis_url, valkey  # noqa: F401 - the fixtures: a valkey-server
from test_ratelimit import T0, FakeTime, make

from invent_async import APITimeoutError, AsyncInventClient, RateLimit
from invent_async._fleet import FleetGovernor
from invent_async._limits import GovernorDeadlineExceeded
from invent_async._pipeline import human
from invent_async._redis_budget import RedisBudget, Verdict
from invent_async._send_floor import FACTOR, MIN_FLOOR, AnswerTimes
from invent_async.testing import FakeInvent

API_KEY: Final = "sk_test_floor"

# ---------------------------------------------------------------------- the floor (pure)


def test_the_floor_is_half_a_second_until_answers_say_otherwise() -> None:
    times = AnswerTimes()
    assert times.floor(timeout=30, deadline=10) == MIN_FLOOR
    for _ in range(50):
        times.record(0.01)  # a fast server never lowers it
    assert times.floor(timeout=30, deadline=10) == MIN_FLOOR


def test_slow_answers_raise_the_floor_to_a_multiple_of_their_99th_percentile() -> None:
    times = AnswerTimes()
    for _ in range(100):
        times.record(1.5)
    assert times.floor(timeout=30, deadline=10) == FACTOR * 1.5


@pytest.mark.parametrize(
    ("timeout", "deadline", "floor"),
    [(0.2, 10.0, 0.2), (None, 0.6, 0.3), (None, 10.0, MIN_FLOOR)],
)
def test_the_floor_is_never_more_than_the_attempt_timeout_or_half_the_deadline(
    timeout: float | None, deadline: float, floor: float
) -> None:
    assert AnswerTimes().floor(timeout=timeout, deadline=deadline) == floor


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.0020489, "2 ms"),
        (0.5, "0.5 s"),
        (2.44, "2.4 s"),
        (10.0, "10 s"),
        (14.2, "14 s"),
        (210.0, "3.5 min"),
    ],
)
def test_times_in_messages_are_rounded_for_people(seconds: float, said: str) -> None:
    assert human(seconds) == said


# ---------------------------------------------------------------------- not sent


@pytest.fixture
async def fake() -> AsyncIterator[FakeInvent]:
    async with FakeInvent(api_key=API_KEY) as server:
        yield server


async def test_a_call_the_budget_would_hold_past_its_deadline_is_not_sent_and_says_why(
    fake: FakeInvent,
) -> None:
    segment = fake.add_segment("VIP")
    limit = RateLimit(per_minute=4, burst=1, headroom=0, shared=False)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        view = client.with_options(deadline=10)
        await view.segments.get(segment.id)  # takes the slot: the next one is 15 s away
        with pytest.raises(APITimeoutError) as caught:
            await view.segments.get(segment.id)

    error = caught.value
    assert len(fake.requests) == 1  # nothing on the wire
    assert (error.deadline_exceeded, error.request_sent) == (True, False)
    assert error.retry_after is not None
    assert 14 < error.retry_after <= 15
    assert str(error).startswith(
        f"GET /orgs/c/segments/{segment.id} not sent: the rate budget would hold it 1"
    )
    assert str(error).endswith(
        "s, past the call's deadline of 10 s (a request needs at least 0.5 s left to be answered)"
    )


async def test_a_call_whose_slot_leaves_less_than_the_floor_is_not_sent(
    fake: FakeInvent,
) -> None:
    """Unfixed: sent with 0.2 s left, applied by the server (1 s to answer), reported as a
    timeout."""
    contacts = fake.add_contacts(2)
    segment = fake.add_segment("VIP")
    fake.latency = 1.0
    limit = RateLimit(per_minute=30, burst=1, headroom=0, shared=False)  # a slot every 2 s
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        view = client.with_options(deadline=2.2, max_retries=0)
        first = asyncio.ensure_future(view.contacts.add_segment(contacts[0], segment.id))
        await asyncio.sleep(0.1)
        with pytest.raises(APITimeoutError) as caught:
            await view.contacts.add_segment(contacts[1], segment.id)  # its slot: 2 s away
        await first

    assert [r.path_params["contact_id"] for r in fake.requests] == [contacts[0]]
    assert caught.value.request_sent is False
    assert "too close to the call's deadline of 2.2 s" in str(caught.value)
    assert segment.id not in [s.id for s in fake.contact(contacts[1]).segments]


async def test_a_call_that_waited_for_a_concurrency_slot_too_long_is_not_sent(
    fake: FakeInvent,
) -> None:
    """An unknown wait (the cap): the governor gives up at the deadline minus the floor.
    Unfixed: sent once the slot was free, with 0.2 s left, applied, reported failed."""
    contacts = fake.add_contacts(2)
    segment = fake.add_segment("VIP")
    fake.latency = 1.0
    limit = RateLimit(per_minute=6000, max_in_flight=1, shared=False)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        view = client.with_options(deadline=1.2, max_retries=0)
        first = asyncio.ensure_future(
            client.with_options(deadline=None).contacts.add_segment(contacts[0], segment.id)
        )
        await asyncio.sleep(0.05)
        with pytest.raises(APITimeoutError) as caught:
            await view.contacts.add_segment(contacts[1], segment.id)
        await first
        stats = client.rate_limit_stats()

    assert [r.path_params["contact_id"] for r in fake.requests] == [contacts[0]]
    assert (caught.value.request_sent, caught.value.retry_after) == (False, None)
    assert "not sent: only" in str(caught.value)
    assert stats is not None
    assert stats.in_flight == 0  # nothing leaked


# ---------------------------------------------------------------------- given back, in the process


async def test_a_slot_given_back_goes_to_the_next_caller() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    unsent = await gov.acquire()
    unsent.release(sent=False)
    ticket = await gov.acquire()  # unfixed: a second away
    ticket.release()

    assert ticket.waited == 0
    assert gov.stats().given_back == 1
    assert gov.stats().acquired == 2


async def test_a_slot_given_back_is_taken_once_and_the_queue_keeps_its_slots() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    admitted: list[float] = []

    async def call() -> None:
        ticket = await gov.acquire()
        admitted.append(ft.now - T0)
        ticket.release()

    unsent = await gov.acquire()  # at 0
    async with asyncio.TaskGroup() as tg:
        for _ in range(3):
            tg.create_task(call())  # at 1, 2, 3
        await ft.run(until=T0 + 0.5)
        unsent.release(sent=False)
        tg.create_task(call())  # books the slot given back: 3, not 4
        tg.create_task(call())  # and the next one after it: 4
        await ft.run()

    assert sorted(admitted) == [1, 2, 3, 3, 4]
    assert sum(0 <= t < 5 for t in admitted) == 5  # the budget's 1 + 4 s * 1/s, not more


async def test_a_slot_given_back_after_a_429_laid_the_queue_out_again_moves_nothing() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    unsent = await gov.acquire()
    gov.rate_limited(5.0)
    unsent.release(sent=False)

    assert gov.stats().given_back == 0
    assert gov.expected_wait() == 5.0


async def test_a_slot_is_never_given_back_before_now() -> None:
    ft = FakeTime()
    gov = make(ft, per_minute=60, burst=1)
    unsent = await gov.acquire()
    ft.now += 3.0  # idle: the bucket is full again
    unsent.release(sent=False)  # nothing to give: the next free time stays "now"
    first = await gov.acquire()
    second = asyncio.ensure_future(gov.acquire())
    await ft.run()
    first.release()
    (await second).release()

    assert gov.stats().given_back == 0
    assert (await second).waited == 1.0  # one interval: no extra burst was made


# ---------------------------------------------------------------------- given back, on Redis


@pytest.fixture
def server(request: pytest.FixtureRequest) -> str:
    """The URL of the module's valkey-server, emptied for the test."""
    url: str = request.getfixturevalue("redis_url")
    return url


async def test_a_slot_given_back_on_redis_goes_to_the_next_booking_once(server: str) -> None:
    budget = RedisBudget(server, name="give-back", per_minute=6, burst=1)  # 10 s apart
    try:
        first = await budget.reserve()
        second = await budget.reserve()
        given = [await budget.give_back(second, ticket=7), await budget.give_back(second, ticket=7)]
        third = await budget.reserve()
        fourth = await budget.reserve()
        stats = await budget.stats()
    finally:
        await budget.aclose()

    assert first.verdict is Verdict.GO
    assert second.wait > 9
    assert given == [True, False]  # once per ticket, also when asked twice
    assert third.slot == second.slot  # the next booking took it
    assert fourth.slot == second.slot + 10
    assert stats.given_back == 1


async def test_a_slot_is_never_given_back_before_the_servers_now(server: str) -> None:
    budget = RedisBudget(server, name="give-back-now", per_minute=6, burst=1)
    try:
        first = await budget.reserve()
        given = await budget.give_back(first, ticket=1)  # the slot was now: nothing before
        again = await budget.reserve()
        after = await budget.reserve()
    finally:
        await budget.aclose()

    assert given is True
    assert again.verdict is Verdict.GO  # the next free slot is "now", not earlier...
    assert after.wait > 9  # ...so no extra burst was made


async def test_a_slot_given_back_inside_the_queue_on_redis_is_a_hole_not_a_second_booking(
    server: str,
) -> None:
    # The fleet's requests stuck in a short server pause gave back slots booked ahead, in the
    # middle of the queue: each moved the queue's end back one interval, so new bookings took
    # slots that later requests still held, and the fleet ran over its rate for seconds.
    budget = RedisBudget(server, name="give-back-hole", per_minute=6, burst=1)  # 10 s apart
    try:
        booked = [await budget.reserve() for _ in range(5)]  # 0, 10, 20, 30, 40 s
        given = [await budget.give_back(booked[1], ticket=1)]
        given.append(await budget.give_back(booked[3], ticket=2))
        gate = await budget.cool_down(15)  # shuts until 15 s: the hole at 10 s is inside it
        later = [await budget.reserve() for _ in range(2)]
        stats = await budget.stats()
    finally:
        await budget.aclose()

    held = [booked[0], booked[2], booked[4]]
    slots = [r.slot for r in (*held, *later)]
    assert given == [True, True]
    assert gate.end - gate.now == pytest.approx(15, abs=1)
    assert later[0].slot == booked[3].slot  # the hole after the gate, then the queue's end
    assert later[1].slot == pytest.approx(booked[4].slot + 10, abs=1e-6)
    assert len(set(slots)) == len(slots)  # unfixed: 30 and 40 s booked twice
    assert stats.given_back == 2


async def test_a_slot_owed_by_a_request_sent_on_the_fallback_goes_back_only_if_ahead(
    server: str,
) -> None:
    # Back from a server pause, a process gives back the slots of its requests that went to
    # the fallback and were sent there. One whose time passed in the pause was used (by the
    # fallback's send): giving it back booked a later request's slot a second time.
    budget = RedisBudget(server, name="give-back-owed", per_minute=60, burst=1)  # 1 s apart
    try:
        booked = [await budget.reserve() for _ in range(4)]  # 0, 1, 2 and 3 s
        given = [await budget.give_back(booked[0], ticket=1, owed=True)]  # past: sent
        given.append(await budget.give_back(booked[2], ticket=2, owed=True))  # ahead
        later = [await budget.reserve() for _ in range(2)]
    finally:
        await budget.aclose()

    assert given == [False, True]
    assert later[0].slot == booked[2].slot
    assert later[1].slot == pytest.approx(booked[3].slot + 1, abs=1e-6)  # unfixed: 3 s twice


async def test_an_interactive_call_takes_a_hole_before_it_overtakes_bulk_work(
    server: str,
) -> None:
    budget = RedisBudget(
        server, name="give-back-lanes", per_minute=6, burst=1, interactive_share=0.25
    )
    try:
        booked = [await budget.reserve(bulk=True) for _ in range(6)]  # bulk: 0 to 50 s
        await budget.give_back(booked[1], ticket=1)  # 10 s is free: as early as overtaking
        call = await budget.reserve()  # interactive
        stats = await budget.stats()
    finally:
        await budget.aclose()

    assert call.slot == booked[1].slot  # the free slot: no bulk request has to give one up
    assert stats.express == 0


async def test_a_reopen_forgets_the_holes_on_redis(server: str) -> None:
    budget = RedisBudget(server, name="give-back-reopen", per_minute=6, burst=1)
    try:
        booked = [await budget.reserve() for _ in range(4)]
        await budget.give_back(booked[1], ticket=1)
        await budget.cool_down(60)
        await budget.reopen()  # the queue starts from now; slots booked before are rebooked
        first, second = await budget.reserve(), await budget.reserve()
    finally:
        await budget.aclose()

    assert first.verdict is Verdict.GO  # unfixed: the old hole, 10 s ahead
    assert second.slot == pytest.approx(first.slot + 10)


async def test_a_cancelled_fleet_acquire_gives_its_booked_slot_back(server: str) -> None:
    limit = RateLimit(per_minute=6, burst=1, headroom=0, redis_url=server)
    gov = FleetGovernor(limit, name="cancelled")
    try:
        (await gov.acquire()).release()
        waiting = asyncio.ensure_future(gov.acquire())  # booked 10 s ahead, sleeping
        await _until(lambda: _booked_ahead(gov))
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await _until(lambda: _given_back(gov))
        with pytest.raises(GovernorDeadlineExceeded) as caught:  # the slot 10 s ahead is free
            await gov.acquire(time.monotonic() + 5)
        fleet = await gov.fleet_stats()
    finally:
        await gov.aclose()

    assert caught.value.wait is not None
    assert 9 < caught.value.wait <= 10
    assert fleet.given_back == 1
    assert (gov.stats().in_flight, gov.stats().waiting) == (0, 0)


async def _booked_ahead(gov: FleetGovernor) -> bool:
    return (await gov.fleet_stats()).backlog > 15  # the second slot, 10 s after the first


async def _given_back(gov: FleetGovernor) -> bool:
    return (await gov.fleet_stats()).given_back == 1


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


# ---------------------------------------------------------------------- overload


@pytest.fixture(params=["in-process", pytest.param("on-redis", marks=pytest.mark.heavy)])
def budget(request: pytest.FixtureRequest) -> str | None:
    """Where the budget lives: None in the process, else the valkey-server's URL."""
    if request.param == "in-process":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


async def test_at_overload_every_call_either_succeeds_or_fails_unsent(
    fake: FakeInvent, budget: str | None
) -> None:
    """12 calls at once for a slot every 0.5 s, a 2.8 s deadline, 0.45 s to answer.
    Unfixed: the call at 2.5 s was sent with 0.3 s left; the server applied it and the
    caller was told it timed out."""
    contacts = fake.add_contacts(12)
    segment = fake.add_segment("VIP")
    fake.latency = 0.45
    limit = RateLimit(per_minute=120, burst=1, headroom=0, redis_url=budget)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        view = client.with_options(deadline=2.8, max_retries=0)
        told = await asyncio.gather(
            *(view.contacts.add_segment(c, segment.id) for c in contacts), return_exceptions=True
        )
    await asyncio.sleep(1.0)  # the server finishes what it was sent

    applied = {r.path_params["contact_id"] for r in fake.requests if r.status == 200}
    failed = {
        c for c, outcome in zip(contacts, told, strict=True) if isinstance(outcome, BaseException)
    }
    assert applied & failed == set()  # no call applied but reported failed
    assert applied | failed == set(contacts)
    assert all(
        isinstance(e, APITimeoutError) and e.request_sent is False and e.deadline_exceeded
        for e in told
        if isinstance(e, BaseException)
    )
    assert len(applied) >= 3  # the slots at 0, 0.5, 1.0 (2.0 s before the deadline)
