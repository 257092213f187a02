"""``contacts.add_segment`` throughput at concurrency 64: the SDK next to raw aiohttp + orjson.

Both clients run in the same process against the same loopback responder (a separate
process, so the server does not compete for this process's CPU), interleaved over several
repetitions. Both use the same bounded pool of 64 worker tasks. The raw baseline does the
least a correct client must do: send the request, read the body, ``orjson.loads`` it. The SDK
additionally builds a typed ``Contact``, checks the status, and runs through its retry layer
(with the rate governor off: pacing at 500/minute would measure the API's limit instead).
Printed: requests/second of each, and the SDK/raw ratio (per repetition and of the medians).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from benchmarks._server import API_KEY, pin_to_cpus, running
from invent_async import AsyncInventClient, Contact

CONCURRENCY = 64
N = 4000
WARMUP = 500
REPS = 9


async def _pool(n: int, call: Callable[[int], Awaitable[object]]) -> float:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - start)


async def sdk_run(url: str, n: int) -> float:
    # Pacing off: this measures the SDK's per-request cost, not the API's rate limit.
    async with AsyncInventClient(API_KEY, base_url=url, rate_limit=None) as client:

        async def call(i: int) -> object:
            contact = await client.contacts.add_segment(f"ct_{i}", "sg_1")
            assert isinstance(contact, Contact)
            return contact

        await _pool(WARMUP, call)
        return await _pool(n, call)


async def raw_run(url: str, n: int) -> float:
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call(i: int) -> object:
            async with session.post(
                f"{url}/orgs/c/contacts/ct_{i}/segments/sg_1", headers=headers
            ) as r:
                data = orjson.loads(await r.read())
                assert r.status == 200
                return data

        await _pool(WARMUP, call)
        return await _pool(n, call)


def main() -> None:
    with running("benchmarks._server", cpus=pin_to_cpus()) as url:
        sdk: list[float] = []
        raw: list[float] = []
        for rep in range(REPS):
            for fn, out in ((raw_run, raw), (sdk_run, sdk)):
                gc.collect()
                out.append(asyncio.run(fn(url, N)))
            print(
                f"rep {rep + 1}: raw aiohttp+orjson {raw[-1]:8.0f} req/s   "
                f"sdk {sdk[-1]:8.0f} req/s   ratio {sdk[-1] / raw[-1]:.3f}",
                flush=True,
            )
        ratio = statistics.median(sdk) / statistics.median(raw)
        print(
            f"add_segment @ concurrency {CONCURRENCY}, N={N}, {REPS} reps: "
            f"raw median {statistics.median(raw):.0f} req/s, "
            f"sdk median {statistics.median(sdk):.0f} req/s"
        )
        print(f"RESULT core_sdk_vs_raw_ratio {ratio:.3f} (target >= 0.85)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
