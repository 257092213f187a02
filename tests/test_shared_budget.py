"""One rate budget per process: clients on the same API host and budget share one governor.

Every test talks to a FakeInvent over loopback HTTP. Pacing is checked the way the bulk tests
check it, by counting: with ``burst=1`` a governor admits at most ``1 + span * per_minute / 60``
requests in ``span`` seconds, and ``span`` is measured around the whole run, so the bound holds
whatever the machine's speed; separate governors would each admit that many.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

import anyio
import pytest
from _harness import API_KEY, ThreadedFake

from conftest import FAST_RATE
from invent_async import (
    AsyncInventClient,
    AuthenticationError,
    GovernorStats,
    InventClient,
    RateLimit,
    RateLimitError,
)
from invent_async._governor_registry import leases
from invent_async.testing import FakeInvent

T = TypeVar("T")

OTHER_KEY: Final = "other-tenant-key-1a2b"
"""A second tenant's key. The fake accepts only ``API_KEY``: the other key's calls are answered
401, but the governor lets them through like any other (the limit is per IP, not per key)."""
PACED: Final = RateLimit(per_minute=600, burst=1)
"""One request every 0.1 s (0.102 s with the default headroom), no burst."""
THREAD_TIMEOUT: Final = 30.0
GATE: Final = 20.0
"""Seconds a governor test's gate (or deadline) lasts: what a wake-up that never comes costs."""
SUBPROCESS_TIMEOUT: Final = 30.0


def most_admitted(limit: RateLimit, span: float) -> float:
    """The most requests a governor of ``limit`` (burst 1) admits in ``span`` seconds."""
    assert limit.per_minute is not None
    assert limit.burst == 1
    return 1 + span * limit.per_minute / 60


def stats_of(client: AsyncInventClient | InventClient) -> GovernorStats:
    stats = client.rate_limit_stats()
    assert stats is not None
    return stats


@pytest.fixture(autouse=True)
def no_budget_outlives_a_test() -> Iterator[None]:
    """Every test starts and ends without a shared governor in use (else it would leak one)."""
    gc.collect()
    assert leases() == {}
    yield
    gc.collect()
    assert leases() == {}


def client_for(fake: FakeInvent, key: str = API_KEY, **options: object) -> AsyncInventClient:
    settings: dict[str, object] = {"timeout": 5, "deadline": 20, "rate_limit": PACED, **options}
    return AsyncInventClient(key, base_url=fake.url, **settings)  # type: ignore[arg-type]


def sync_client_for(fake: FakeInvent, key: str = API_KEY, **options: object) -> InventClient:
    settings: dict[str, object] = {"timeout": 5, "deadline": 20, "rate_limit": PACED, **options}
    return InventClient(key, base_url=fake.url, **settings)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- sharing in one loop


async def test_clients_with_different_keys_share_one_pacing_budget(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    a, b = client_for(fake), client_for(fake, OTHER_KEY)
    calls = 10

    async def call(client: AsyncInventClient) -> None:
        try:
            await client.segments.get(segment.id)
        except AuthenticationError:
            assert client is b  # the other tenant's key: answered 401, paced all the same

    async with a, b:
        start = time.monotonic()
        async with asyncio.TaskGroup() as tg:
            for i in range(calls):
                tg.create_task(call(a if i % 2 else b))
        span = time.monotonic() - start
        stats_a, stats_b = stats_of(a), stats_of(b)

    assert [r.status for r in fake.requests].count(200) == calls // 2
    assert len(fake.requests) == calls
    assert calls <= most_admitted(PACED, span)  # two governors would let twice as many go
    assert stats_a.acquired == stats_b.acquired == calls  # one governor counts both clients


async def test_a_429_to_one_client_holds_back_the_other_clients_calls(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    retry_after = 0.5
    a, b = client_for(fake, rate_limit=FAST_RATE), client_for(fake, rate_limit=FAST_RATE)
    async with a, b:
        fake.fail_next(1, status=429, retry_after=retry_after)
        with pytest.raises(RateLimitError):
            await a.with_options(max_retries=0).segments.get(segment.id)
        gate_seen_by_b = stats_of(b).gate_closed
        await b.segments.get(segment.id)

    assert gate_seen_by_b
    rejected, admitted = fake.requests
    assert rejected.status == 429
    assert admitted.status == 200
    assert admitted.time - rejected.time >= retry_after  # b waited out a's Retry-After


async def test_resetting_one_client_reopens_the_gate_for_every_client(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    a, b = client_for(fake, rate_limit=FAST_RATE), client_for(fake, rate_limit=FAST_RATE)
    async with a, b:
        fake.fail_next(1, status=429, retry_after=60)
        with pytest.raises(RateLimitError):
            await a.with_options(max_retries=0).segments.get(segment.id)
        held = b.with_options(deadline=None)  # else the call fails at once: 60 s > deadline
        waiting = asyncio.create_task(held.segments.get(segment.id))
        with anyio.fail_after(10):
            while stats_of(b).waiting == 0:  # noqa: ASYNC110 (a governor has no event for it)
                await asyncio.sleep(0.01)
            assert a.rate_limit_reset() > 0
            found = await waiting

    assert found.id == segment.id
    assert not stats_of(a).gate_closed


# ---------------------------------------------------------------------- threads and loops


def test_sync_clients_and_an_async_client_share_one_budget_across_threads() -> None:
    with ThreadedFake(api_key=API_KEY) as fake:
        segment = fake.add_segment("VIP")
        limit = RateLimit(per_minute=1200, burst=1)
        per_caller = 6
        ones, twos = (
            sync_client_for(fake, rate_limit=limit),
            sync_client_for(fake, rate_limit=limit),
        )
        async_stats: list[GovernorStats] = []

        def sync_calls(client: InventClient) -> None:
            for _ in range(per_caller):
                client.segments.get(segment.id)

        async def async_calls() -> None:
            async with client_for(fake, rate_limit=limit) as client:
                for _ in range(per_caller):
                    await client.segments.get(segment.id)
                async_stats.append(stats_of(client))

        callers: list[Callable[[], None]] = [
            lambda: sync_calls(ones),
            lambda: sync_calls(ones),  # one sync client, two threads
            lambda: sync_calls(twos),
            lambda: asyncio.run(async_calls()),
        ]
        with ones, twos, ThreadPoolExecutor(len(callers)) as pool:
            start = time.monotonic()
            futures = [pool.submit(caller) for caller in callers]
            for future in futures:
                future.result(timeout=THREAD_TIMEOUT)  # no caller failed
            span = time.monotonic() - start
            stats_one, stats_two = stats_of(ones), stats_of(twos)
        statuses = [r.status for r in fake.requests]

    calls = per_caller * len(callers)
    assert statuses == [200] * calls
    assert calls <= most_admitted(limit, span)  # four governors would admit four times as many
    assert stats_one.acquired == stats_two.acquired == calls
    assert async_stats[0].acquired >= 3 * per_caller  # the async client's view, mid-run
    assert stats_one.in_flight == 0


# ---------------------------------------------------------------------- settings


async def test_other_settings_on_the_same_budget_fail_when_the_client_is_created(
    fake: FakeInvent,
) -> None:
    async with client_for(fake):
        with pytest.raises(ValueError, match="budget 'default'") as caught:
            client_for(fake, rate_limit=RateLimit(per_minute=100, burst=1))
        with pytest.raises(ValueError, match="budget 'default'"):
            await anyio.to_thread.run_sync(lambda: sync_client_for(fake, rate_limit=FAST_RATE))

    message = str(caught.value)
    assert "per_minute 600" in message
    assert "100" in message
    assert "budget='...'" in message
    assert "shared=False" in message
    assert API_KEY not in message


async def test_equal_settings_on_the_same_budget_share_it_and_sync_clients_do_too(
    fake: FakeInvent,
) -> None:
    async with client_for(fake) as a:
        sync = await anyio.to_thread.run_sync(lambda: sync_client_for(fake))
        try:
            await a.segments.get(fake.add_segment("VIP").id)
            sync_stats = await anyio.to_thread.run_sync(lambda: stats_of(sync))
            async_stats = stats_of(a)
        finally:
            await anyio.to_thread.run_sync(sync.close)

    assert sync_stats.acquired == 1  # the async client's request, seen from the sync one
    assert sync_stats == async_stats


@pytest.mark.parametrize(
    "isolated",
    [
        RateLimit(per_minute=600, burst=1, shared=False),
        RateLimit(per_minute=100, burst=1, budget="nightly-job"),
    ],
    ids=["shared=False", "another budget"],
)
async def test_a_client_can_have_a_budget_of_its_own(fake: FakeInvent, isolated: RateLimit) -> None:
    segment = fake.add_segment("VIP")
    async with client_for(fake) as shared, client_for(fake, rate_limit=isolated) as own:
        await shared.segments.get(segment.id)
        await own.segments.get(segment.id)
        await own.segments.get(segment.id)
        stats_shared, stats_own = stats_of(shared), stats_of(own)

    assert (stats_shared.acquired, stats_own.acquired) == (1, 2)


async def test_clients_of_different_api_hosts_do_not_share() -> None:
    async with FakeInvent(api_key=API_KEY) as one, FakeInvent(api_key=API_KEY) as two:
        segment = one.add_segment("VIP")
        async with client_for(one) as a, client_for(two, rate_limit=FAST_RATE) as b:
            await a.segments.get(segment.id)
            stats_b = stats_of(b)

    assert stats_b.acquired == 0


@pytest.mark.parametrize("name", ["", " ", "two words", "tab\tname", "line\n", 7])
def test_a_budget_name_is_a_non_empty_word(name: object) -> None:
    with pytest.raises(ValueError, match="budget must be a non-empty name without whitespace"):
        RateLimit(budget=name)  # type: ignore[arg-type]


def test_a_budget_name_with_shared_false_is_refused() -> None:
    with pytest.raises(ValueError, match="shared=False"):
        RateLimit(budget="nightly", shared=False)


def test_shared_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="shared"):
        RateLimit(shared="no")  # type: ignore[arg-type]


async def test_no_governor_takes_no_budget(fake: FakeInvent) -> None:
    async with client_for(fake), client_for(fake, rate_limit=None) as ungoverned:
        assert ungoverned.rate_limit_stats() is None
        assert len(leases()) == 1


# ---------------------------------------------------------------------- lifetime


async def test_the_budget_is_dropped_when_its_last_client_closes(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    key = (fake.url.removeprefix("http://"), "default")
    a, b = client_for(fake), client_for(fake)
    view = a.for_org("c").with_options(max_retries=0)  # views share their client's lease
    assert leases() == {key: 2}
    async with a:
        await view.segments.get(segment.id)
    assert leases() == {key: 1}
    with pytest.raises(ValueError, match="budget"):  # b still holds it
        client_for(fake, rate_limit=FAST_RATE)
    await b.aclose()
    assert leases() == {}

    async with client_for(fake, rate_limit=FAST_RATE) as fresh:  # other settings: fine now
        stats = stats_of(fresh)
    assert stats.acquired == 0  # a new governor, not the old one's counters


async def test_an_async_client_collected_unclosed_gives_its_budget_back(fake: FakeInvent) -> None:
    client = client_for(fake)
    assert len(leases()) == 1
    del client
    gc.collect()
    assert leases() == {}


def test_a_sync_client_collected_unclosed_gives_its_budget_back() -> None:
    with ThreadedFake(api_key=API_KEY) as fake:
        client = sync_client_for(fake)
        assert len(leases()) == 1
        del client
        gc.collect()
        assert leases() == {}


def test_a_closed_sync_client_gives_its_budget_back() -> None:
    with ThreadedFake(api_key=API_KEY) as fake:
        segment = fake.add_segment("VIP")
        client = sync_client_for(fake)
        view = client.with_options(max_retries=0)
        view.segments.get(segment.id)
        assert len(leases()) == 1
        view.close()  # closes the client it came from
        assert leases() == {}
        client.close()
        assert leases() == {}


FORK_SCRIPT: Final = textwrap.dedent(
    """
    import os, sys
    from invent_async import AsyncInventClient, InventClient, RateLimit
    from invent_async._governor_registry import leases

    url = "http://127.0.0.1:9"  # never called
    a = AsyncInventClient("k", base_url=url, rate_limit=RateLimit(per_minute=100))
    s = InventClient("k", base_url=url, rate_limit=RateLimit(per_minute=100))
    assert list(leases().values()) == [2], leases()
    pid = os.fork()
    if pid == 0:
        ok = leases() == {}
        other = AsyncInventClient("k", base_url=url, rate_limit=RateLimit(per_minute=7))
        ok = ok and list(leases().values()) == [1]
        ok = ok and other.rate_limit_stats().acquired == 0
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert list(leases().values()) == [2], leases()  # the parent's budget is untouched
    s.close()
    print("child", os.waitstatus_to_exitcode(status))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_without_the_parents_budgets(tmp_path: Path) -> None:
    script = tmp_path / "fork_budget.py"
    script.write_text(FORK_SCRIPT)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "child 0"


# ---------------------------------------------------------------------- the governor itself


def run_in_threads(*jobs: Callable[[], T]) -> list[T]:
    """Run each job in a thread of its own; wait (bounded) for all of them."""
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [future.result(timeout=THREAD_TIMEOUT) for future in futures]


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + THREAD_TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the other threads"
        time.sleep(0.005)


def test_a_reopen_wakes_requests_sleeping_for_the_gate_on_every_loop() -> None:
    from invent_async._ratelimit import RateGovernor

    gov = RateGovernor(RateLimit(per_minute=None))
    gate_end = time.monotonic() + gov.rate_limited(retry_after=GATE)
    loops = 3

    async def request() -> float:
        ticket = await gov.acquire()
        ticket.release()
        return ticket.admitted_at

    def reopen_when_all_wait() -> float:
        wait_until(lambda: gov.stats().waiting == loops)
        gov.reopen()
        return -math.inf

    admitted = run_in_threads(*[lambda: asyncio.run(request())] * loops, reopen_when_all_wait)

    assert max(admitted) < gate_end  # woken by the reopen, on every loop, not by the gate's end
    assert gov.stats().acquired == loops


def test_a_slot_released_on_one_loop_goes_to_a_request_waiting_on_another() -> None:
    from invent_async._ratelimit import RateGovernor

    gov = RateGovernor(RateLimit(per_minute=None, max_in_flight=1))
    held = threading.Event()
    go = threading.Event()

    async def holder() -> None:
        ticket = await gov.acquire()
        held.set()
        await asyncio.to_thread(go.wait, THREAD_TIMEOUT)
        ticket.release()

    seen: list[tuple[float, float, int]] = []

    async def waiter() -> None:
        await asyncio.to_thread(held.wait, THREAD_TIMEOUT)
        deadline_at = time.monotonic() + GATE
        ticket = await gov.acquire(deadline_at)
        seen.append((ticket.admitted_at, deadline_at, gov.stats().in_flight))
        ticket.release()

    def release_when_waiting() -> None:
        wait_until(lambda: gov.stats().waiting == 1)
        go.set()

    run_in_threads(
        lambda: asyncio.run(holder()), lambda: asyncio.run(waiter()), release_when_waiting
    )
    [(admitted_at, deadline_at, in_flight)] = seen

    assert admitted_at < deadline_at  # handed the slot, not woken by its deadline's timer
    assert in_flight == 1
    stats = gov.stats()
    assert (stats.acquired, stats.in_flight, stats.max_in_flight) == (2, 0, 1)


def test_loops_in_threads_hammering_one_governor_keep_its_counts_exact() -> None:
    from invent_async._ratelimit import RateGovernor

    cap, threads, per_thread = 3, 4, 300
    gov = RateGovernor(RateLimit(per_minute=None, max_in_flight=cap))

    async def requests() -> None:
        async def one() -> None:
            ticket = await gov.acquire(time.monotonic() + GATE)  # bounded if a wake is lost
            await asyncio.sleep(0)
            ticket.release()

        async with asyncio.TaskGroup() as tg:
            for _ in range(per_thread):
                tg.create_task(one())

    run_in_threads(*[lambda: asyncio.run(requests())] * threads)

    stats = gov.stats()
    assert stats.acquired == threads * per_thread
    assert (stats.in_flight, stats.waiting) == (0, 0)
    assert stats.max_in_flight == cap


def test_a_probe_answered_429_on_one_loop_holds_back_the_requests_of_another() -> None:
    from invent_async._ratelimit import RateGovernor

    gov = RateGovernor(RateLimit(per_minute=None, max_retry_after=0.2))
    gov.rate_limited(retry_after=86400)  # capped: after 0.2 s one request probes
    probing = threading.Event()
    gate_ends: list[float] = []

    async def probe() -> None:
        ticket = await gov.acquire()
        probing.set()
        await asyncio.to_thread(wait_until, lambda: gov.stats().waiting == 1)
        ticket.release()
        # The answer is signalled in the same synchronous section, however long it takes:
        time.sleep(0.1)  # noqa: ASYNC251 (the other loop runs meanwhile, this one must not)
        gate_ends.append(time.monotonic() + gov.rate_limited(86400, ticket))

    async def request() -> float:
        await asyncio.to_thread(probing.wait, THREAD_TIMEOUT)
        ticket = await gov.acquire()
        ticket.release()
        return ticket.admitted_at

    admitted: list[float] = []
    run_in_threads(lambda: asyncio.run(probe()), lambda: admitted.append(asyncio.run(request())))

    assert admitted[0] >= gate_ends[0] - 0.001  # it waited for the answer, then for the gate
    assert gov.stats().rate_limited == 2
