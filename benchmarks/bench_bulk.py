"""Bulk tagging benchmarks (issue 4), each printing one comparable figure per ``RESULT`` line.

1. Throttled: 10,000 tags against FakeInvent limited to R = 30,000 requests/minute over a
   1-second sliding window (the real 500/minute/60 s limit, scaled 60x in time). The SDK's
   ``bulk_add_segment`` with its rate governor set to R, next to the approach users write:
   ``asyncio.gather`` over every id + ``Semaphore(64)`` + ``backoff.on_exception(expo)`` per
   call. Printed: elapsed time / ideal time N/R, share of 429 answers, ids lost (checked by
   reading the segment's member count back from the server).
2. Unthrottled: 10,000 tags with the governor off, as a ratio to a raw aiohttp worker pool
   making the same calls, interleaved over repetitions, against a fast loopback responder.
3. Memory: 1,000,000 ids streamed from a generator through ``bulk_add_segment`` against the
   fast responder; peak RSS over the baseline (run in its own process).

``python -m benchmarks.bench_bulk [throttled|unthrottled|memory]`` runs one part.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import backoff
import orjson

from benchmarks._server import API_KEY as FAST_KEY
from benchmarks._server import pin_to_cpus, running
from invent_async import AsyncInventClient, RateLimit

N = 10_000
RATE = 30_000.0  # per minute
WINDOW = 1.0  # seconds
FAKE_KEY = "bench-fake-key"
NAIVE_CONCURRENCY = 64
BULK_CONCURRENCY = 64
NAIVE_TIME_LIMIT = 120.0


# --------------------------------------------------------------------------- throttled


def _fake_args() -> tuple[str, ...]:
    return (
        "--api-key", FAKE_KEY,
        "--seed-contacts", str(N),
        "--seed-segments", "2",
        "--rpm", str(RATE),
        "--rpm-window", str(WINDOW),
        "--retry-after-precision", "3",
    )  # fmt: skip


async def _members(url: str, segment_id: str) -> int:
    async with AsyncInventClient(FAKE_KEY, base_url=url, rate_limit=None) as client:
        segment = await client.with_options(max_retries=10).segments.get(segment_id)
        return segment.contacts_count


async def sdk_throttled(url: str, segment_id: str) -> dict[str, float]:
    ids = [f"ct_{i}" for i in range(1, N + 1)]
    limit = RateLimit(per_minute=RATE)
    async with AsyncInventClient(FAKE_KEY, base_url=url, rate_limit=limit) as client:
        start = time.perf_counter()
        report = await client.contacts.bulk_add_segment(
            ids, segment_id, concurrency=BULK_CONCURRENCY
        )
        elapsed = time.perf_counter() - start
    return {
        "elapsed": elapsed,
        "requests": report.total + report.retries,
        "rate_limited": report.rate_limited,
        "failed": report.failed,
    }


async def naive_throttled(url: str, segment_id: str) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {FAKE_KEY}"}
    sem = asyncio.Semaphore(NAIVE_CONCURRENCY)
    counts = {"requests": 0, "rate_limited": 0, "failed": 0}

    async with aiohttp.ClientSession() as session:

        @backoff.on_exception(backoff.expo, aiohttp.ClientResponseError, max_tries=8, logger=None)
        async def tag(contact_id: str) -> None:
            async with sem:
                path = f"/orgs/c/contacts/{contact_id}/segments/{segment_id}"
                async with session.post(url + path, headers=headers) as resp:
                    counts["requests"] += 1
                    if resp.status == 429:
                        counts["rate_limited"] += 1
                    resp.raise_for_status()
                    await resp.read()

        async def safe(contact_id: str) -> None:
            try:
                await tag(contact_id)
            except aiohttp.ClientResponseError:
                counts["failed"] += 1

        start = time.perf_counter()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(safe(f"ct_{i}") for i in range(1, N + 1))), NAIVE_TIME_LIMIT
            )
        except TimeoutError:
            counts["timed_out"] = 1
        elapsed = time.perf_counter() - start
    return {"elapsed": elapsed, **counts}


def throttled() -> None:
    ideal = N / (RATE / 60)
    for name, job, segment in (("sdk", sdk_throttled, "sg_1"), ("naive", naive_throttled, "sg_2")):
        with running("invent_async.testing", *_fake_args()) as url:
            time.sleep(WINDOW)  # let seeding finish and the window start empty
            result = asyncio.run(job(url, segment))
            lost = N - asyncio.run(_members(url, segment))
        share = result["rate_limited"] / max(result["requests"], 1)
        note = " (stopped at the time limit)" if result.get("timed_out") else ""
        print(
            f"throttled {name:5}: {N} tags in {result['elapsed']:.2f}s = "
            f"{result['elapsed'] / ideal:.3f} x ideal ({ideal:.1f}s at {RATE:.0f}/min); "
            f"{int(result['requests'])} requests, {share:.2%} answered 429; "
            f"{lost} lost{note}",
            flush=True,
        )
        print(
            f"RESULT throttled_{name} time_vs_ideal={result['elapsed'] / ideal:.3f} "
            f"share_429={share:.4f} lost={lost}",
            flush=True,
        )


# --------------------------------------------------------------------------- unthrottled


async def sdk_unthrottled(url: str) -> float:
    async with AsyncInventClient(FAST_KEY, base_url=url, rate_limit=None) as client:
        await client.contacts.bulk_add_segment(
            (f"w{i}" for i in range(500)), "sg_1", concurrency=BULK_CONCURRENCY
        )
        start = time.perf_counter()
        report = await client.contacts.bulk_add_segment(
            (f"ct_{i}" for i in range(N)), "sg_1", concurrency=BULK_CONCURRENCY
        )
        elapsed = time.perf_counter() - start
        assert report.succeeded == N, report
    return N / elapsed


async def raw_unthrottled(url: str) -> float:
    headers = {"Authorization": f"Bearer {FAST_KEY}", "Accept": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def pool(ids: Iterator[str]) -> None:
            async def worker() -> None:
                for contact_id in ids:
                    path = f"/orgs/c/contacts/{contact_id}/segments/sg_1"
                    async with session.post(url + path, headers=headers) as resp:
                        orjson.loads(await resp.read())
                        assert resp.status == 200

            await asyncio.gather(*(worker() for _ in range(BULK_CONCURRENCY)))

        await pool(f"w{i}" for i in range(500))
        start = time.perf_counter()
        await pool(f"ct_{i}" for i in range(N))
        return N / (time.perf_counter() - start)


def unthrottled(reps: int = 7) -> None:
    sdk: list[float] = []
    raw: list[float] = []
    with running("benchmarks._server", cpus=pin_to_cpus()) as url:
        for rep in range(reps):
            for job, out in ((raw_unthrottled, raw), (sdk_unthrottled, sdk)):
                gc.collect()
                out.append(asyncio.run(job(url)))
            print(
                f"unthrottled rep {rep + 1}: raw pool {raw[-1]:7.0f}/s  "
                f"sdk bulk {sdk[-1]:7.0f}/s  ratio {sdk[-1] / raw[-1]:.3f}",
                flush=True,
            )
    ratio = statistics.median(sdk) / statistics.median(raw)
    print(
        f"RESULT unthrottled_sdk_vs_raw_pool ratio={ratio:.3f} "
        f"(sdk {statistics.median(sdk):.0f}/s, raw {statistics.median(raw):.0f}/s; target >= 0.85)"
    )


# --------------------------------------------------------------------------- memory


def _rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


async def _memory_job(url: str, n: int) -> dict[str, float]:
    async with AsyncInventClient(FAST_KEY, base_url=url, rate_limit=None) as client:
        await client.contacts.bulk_add_segment((f"w{i}" for i in range(2000)), "sg_1")
        gc.collect()
        baseline = _rss_kib("VmRSS")
        start = time.perf_counter()
        report = await client.contacts.bulk_add_segment(
            (f"ct_{i:07d}" for i in range(n)), "sg_1", concurrency=BULK_CONCURRENCY
        )
        elapsed = time.perf_counter() - start
    peak = _rss_kib("VmHWM")
    return {
        "baseline_mib": baseline / 1024,
        "peak_mib": peak / 1024,
        "over_mib": (peak - baseline) / 1024,
        "succeeded": report.succeeded,
        "elapsed": elapsed,
    }


def memory_child(n: int) -> None:
    with running("benchmarks._server") as url:
        print("MEM " + json.dumps(asyncio.run(_memory_job(url, n))), flush=True)


def memory(n: int = 1_000_000) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_bulk", "memory-child", str(n)],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("MEM "))
    result = json.loads(line[4:])
    print(
        f"memory: {n} ids from a generator in {result['elapsed']:.0f}s "
        f"({result['succeeded']} succeeded); RSS baseline {result['baseline_mib']:.1f} MiB, "
        f"peak {result['peak_mib']:.1f} MiB"
    )
    print(f"RESULT memory_peak_over_baseline_mib={result['over_mib']:.1f} (limit 50)")


def main(argv: list[str]) -> None:
    parts = argv or ["throttled", "unthrottled", "memory"]
    if parts[0] == "memory-child":
        memory_child(int(parts[1]))
        return
    for part in parts:
        {"throttled": throttled, "unthrottled": unthrottled, "memory": memory}[part]()


if __name__ == "__main__":
    main(sys.argv[1:])
