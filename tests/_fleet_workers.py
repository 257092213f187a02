"""Worker processes of the fleet tests: each one an ``AsyncInventClient`` running a bulk job
(:func:`bulk_worker`), or a member of a budget on Redis that books one slot and stays until
told to leave or killed (:func:`member_worker`).

The workers are started with ``multiprocessing.get_context("spawn")`` (a fresh interpreter,
no fork of a threaded test process) and get plain values only. Nothing of ``invent_async`` is
imported before :func:`bulk_worker` runs, so that a worker can first make its clocks wrong
(``skew``, ``wall_offset``): the governors' default clock is bound when their module is
imported. Each worker puts one result dict on its queue, an ``"error"`` when it failed.
"""

from __future__ import annotations

import traceback
from typing import Any, TypedDict


class Job(TypedDict, total=False):
    """What one worker does: tag ``ids`` into ``segment`` through ``fake_url``."""

    fake_url: str
    api_key: str
    redis_url: str | None
    per_minute: float
    burst: int
    budget: str
    interactive_share: float
    segment: str
    ids: list[str]
    concurrency: int
    deadline: float | None
    skew: float  # time.monotonic runs this many times as fast (1: as it should)
    wall_offset: float  # seconds added to time.time()


def skew_clocks(skew: float, wall_offset: float) -> None:
    """Make this process's time run ``skew`` times as fast, and ``time.time`` ``wall_offset``
    seconds off: ``time.monotonic`` (and so asyncio's ``loop.time()``), and ``asyncio.sleep``,
    whose timers would otherwise still last real seconds (the selector waits real time)."""
    import asyncio
    import time

    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        return await real_sleep(delay / skew, result)

    asyncio.sleep = sleep

    real_monotonic, real_time = time.monotonic, time.time
    base = real_monotonic()

    def monotonic() -> float:
        return base + (real_monotonic() - base) * skew

    def wall() -> float:
        return real_time() + wall_offset

    time.monotonic = monotonic
    time.time = wall


def bulk_worker(job: Job, start: tuple[Any, Any], out: Any) -> None:
    """Run ``job`` once every worker is ready (``start``: two Barriers, "ready" and "go");
    put the result on ``out``."""
    try:
        if job.get("skew", 1.0) != 1.0 or job.get("wall_offset", 0.0):
            skew_clocks(job.get("skew", 1.0), job.get("wall_offset", 0.0))
        import asyncio
        import warnings

        warnings.simplefilter("error")
        result = asyncio.run(_bulk(job, start))
    except BaseException as exc:
        result = {"error": f"{exc!r}\n{traceback.format_exc()}", "error_type": _kind(exc)}
    out.put(result)


def _kind(exc: BaseException) -> str:
    """The error's type name, or its cause's when a bulk job stopped because of it."""
    cause = exc.__cause__
    return type(cause if cause is not None else exc).__name__


def member_worker(
    redis_url: str, name: str, settings: dict[str, Any], out: Any, leave: Any
) -> None:
    """Book one slot of the budget ``name`` (``settings``: the ``RateLimit`` fields that go
    on the server, and ``member_ttl``), put ``"joined"`` on ``out``, then stay a member until
    ``leave`` is set (then leave the budget and put ``"left"``) or the process is killed.
    Bounded: it leaves by itself after two minutes."""
    import asyncio

    from invent_async import RateLimit
    from invent_async._fleet import describe_settings
    from invent_async._redis_budget import RedisBudget

    async def run() -> None:
        ttl = settings.pop("member_ttl", 60.0)
        limit = RateLimit(redis_url=redis_url, **settings)
        assert limit.per_minute is not None
        budget = RedisBudget(
            redis_url,
            name=name,
            per_minute=limit.per_minute * (1 - limit.headroom),
            burst=limit.burst,
            interactive_share=limit.interactive_share,
            settings=describe_settings(limit),
            member_ttl=ttl,
        )
        try:
            await budget.reserve()
            out.put("joined")
            await asyncio.to_thread(leave.wait, 120)
        finally:
            await budget.aclose()
        out.put("left")

    try:
        asyncio.run(run())
    except BaseException as exc:
        out.put(f"error {exc!r}")


async def _bulk(job: Job, start: tuple[Any, Any]) -> dict[str, Any]:
    import asyncio

    from invent_async import AsyncInventClient, RateLimit

    limit = RateLimit(
        per_minute=job["per_minute"],
        burst=job.get("burst", 1),
        redis_url=job.get("redis_url"),
        budget=job.get("budget", "default"),
        interactive_share=job.get("interactive_share", 0.2),
    )
    async with AsyncInventClient(
        job["api_key"],
        base_url=job["fake_url"],
        timeout=10,
        deadline=job.get("deadline", 120.0),
        rate_limit=limit,
    ) as client:
        if limit.redis_url is not None:
            await client.rate_limit_fleet_stats()  # connected before the start
        for barrier in start:
            await asyncio.to_thread(barrier.wait, 60)
        report = await client.contacts.bulk_add_segment(
            job["ids"], job["segment"], concurrency=job.get("concurrency", 4)
        )
        stats = client.rate_limit_stats()
        assert stats is not None
    return {
        "succeeded": report.succeeded,
        "failed": report.failed,
        "rate_limited": report.rate_limited,
        "fleet": stats.fleet,
        "host": stats.host,
        "fallback": stats.fallback,
        "acquired": stats.acquired,
    }
