"""Bulk tagging benchmarks (P3, P4, P5), each figure on a ``RESULT`` line with its target.

1. Throttled (P3): 10,000 tags (3,000 with ``--quick``) against FakeInvent limited to
   R = 30,000 requests/minute over a 1-second sliding window (the real 500/minute/60 s limit,
   scaled 60x in time). The SDK's ``bulk_add_segment`` with its rate governor set to R, next
   to the approach users write: ``asyncio.gather`` over every id + ``Semaphore(64)`` +
   ``backoff.on_exception(expo)`` per call. Printed: elapsed time / ideal time N/R, share of
   429 answers, ids lost (checked by reading the segment's member count back from the server).
2. Unthrottled (P4): bulk jobs of 1,000 tags with the governor off next to a raw aiohttp worker
   pool making the same calls, both open in one event loop, one job each per round over many
   rounds (``benchmarks._interleave``), against a fast loopback responder.
3. Memory (P5): 1,000,000 ids (100,000 with ``--quick``) streamed from a generator through
   ``bulk_add_segment`` against the fast responder; peak RSS over the baseline (run in its own
   process).

``python -m benchmarks.bench_bulk [throttled|unthrottled|memory]`` runs one part.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import backoff
import orjson

from benchmarks._interleave import Call, Opener, Side, compare_calls, quick, rounds
from benchmarks._interleave import result as print_result
from benchmarks._server import API_KEY as FAST_KEY
from benchmarks._server import pin_to_cpus, running
from invent_async import AsyncInventClient, RateLimit

N = 3_000 if quick() else 10_000  # --quick: a shorter throttled run
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
            f"RESULT p3_throttled_{name} time_vs_ideal={result['elapsed'] / ideal:.3f} "
            f"share_429={share:.4f} lost={lost}"
            + (" (target <= 1.05, share_429 <= 0.01, lost 0)" if name == "sdk" else " (contrast)"),
            flush=True,
        )


# --------------------------------------------------------------------------- unthrottled


BULK_CHUNK = 1000  # ids per bulk job: one job per side per round


async def _timed(job: Call, start: int, n: int) -> tuple[float, float]:
    """One bulk job of a side (its ``BULK_CHUNK`` ids from ``start``): (wall s, CPU s)."""
    t0, c0 = time.perf_counter(), time.process_time()
    await job(start)
    return time.perf_counter() - t0, time.process_time() - c0


def sdk_bulk(url: str) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        async with AsyncInventClient(FAST_KEY, base_url=url, rate_limit=None) as client:

            async def job(start: int) -> object:
                report = await client.contacts.bulk_add_segment(
                    (f"ct_{i}" for i in range(start, start + BULK_CHUNK)),
                    "sg_1",
                    concurrency=BULK_CONCURRENCY,
                )
                assert report.succeeded == BULK_CHUNK, report
                return report

            yield job

    return opened


def raw_pool(url: str) -> Opener:
    headers = {"Authorization": f"Bearer {FAST_KEY}", "Accept": "application/json"}

    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector()) as session:

            async def job(start: int) -> object:
                ids = (f"ct_{i}" for i in range(start, start + BULK_CHUNK))

                async def worker() -> None:
                    for contact_id in ids:
                        path = f"/orgs/c/contacts/{contact_id}/segments/sg_1"
                        async with session.post(url + path, headers=headers) as resp:
                            orjson.loads(await resp.read())
                            assert resp.status == 200

                await asyncio.gather(*(worker() for _ in range(BULK_CONCURRENCY)))
                return None

            yield job

    return opened


def unthrottled() -> None:
    """P4: bulk jobs of BULK_CHUNK ids, the SDK's and a raw worker pool's, interleaved."""
    with running("benchmarks._server", cpus=pin_to_cpus()) as url:

        async def go() -> None:
            sides = [
                Side("raw aiohttp worker pool", raw_pool(url)),
                Side("sdk bulk", sdk_bulk(url)),
            ]

            _, sdk = await compare_calls(
                sides,
                concurrency=BULK_CONCURRENCY,
                chunk=BULK_CHUNK,
                n_rounds=rounds(16, 5),
                warmup=BULK_CHUNK,
                runner=_timed,
                label=f"unthrottled bulk, jobs of {BULK_CHUNK} ids, concurrency {BULK_CONCURRENCY}",
            )
            print_result(
                "p4_unthrottled_sdk_vs_raw_pool", sdk, "raw aiohttp worker pool", ">= 0.90"
            )

        asyncio.run(go())


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


def memory(n: int = 100_000 if quick() else 1_000_000) -> None:
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
    print(
        f"RESULT p5_memory_peak_over_baseline_mib={result['over_mib']:.1f} ({n} ids; target <= 50)"
    )


def main(argv: list[str]) -> None:
    parts = [a for a in argv if not a.startswith("-")] or ["throttled", "unthrottled", "memory"]
    if parts[0] == "memory-child":
        memory_child(int(parts[1]))
        return
    for part in parts:
        {"throttled": throttled, "unthrottled": unthrottled, "memory": memory}[part]()


if __name__ == "__main__":
    main(sys.argv[1:])
