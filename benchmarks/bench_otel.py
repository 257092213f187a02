"""What observability costs: P1 (``contacts.add_segment`` at concurrency 64) in three setups.

- ``none``: OpenTelemetry not importable (as without the ``otel`` extra);
- ``api``: the extra installed, no SDK configured (what most applications have);
- ``sdk``: the OpenTelemetry SDK with an in-memory span exporter (``SimpleSpanProcessor``)
  and an in-memory metric reader: every call makes its operation and attempt spans and
  records its metrics.

Each setup runs in a fresh process (the import decides ``none``), one per repetition, the
setups interleaved in a rotating order. Inside each process the SDK client and raw aiohttp +
orjson alternate against the same loopback responder (a separate process pinned to another
CPU), and the process reports SDK/raw of the medians: a ratio of the same moment, so that the
noise of a shared machine cancels out; it also reports SDK/raw of the CPU time this process
spent per request, which a busy neighbour disturbs less than wall-clock throughput. Printed:
both ratios per setup (median and range over the repetitions) and the setups' ratios to
``none`` (per repetition, the setups of one repetition being run back to back).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from benchmarks._interleave import rounds

MODES = ("none", "api", "sdk")
REPS = rounds(9, 2)  # --quick: 2
N = 3000
WARMUP = 400
ROUNDS = 3
CONCURRENCY = 64


async def _pool(n: int, call: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """(requests per second, CPU microseconds of this process per request)."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await call(i)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    return n / elapsed, used / n * 1e6


def child(mode: str, url: str) -> None:
    """One process of one setup: print ``RATIO <sdk/raw req/s> <sdk req/s> <sdk/raw CPU>``."""
    if mode == "none":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]  # as if not installed
    exporter = None
    if mode == "sdk":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

    import aiohttp
    import orjson

    from benchmarks._server import API_KEY
    from invent_async import AsyncInventClient, Contact

    async def sdk_run() -> tuple[float, float]:
        async with AsyncInventClient(API_KEY, base_url=url, rate_limit=None) as client:

            async def call(i: int) -> object:
                contact = await client.contacts.add_segment(f"ct_{i}", "sg_1")
                assert isinstance(contact, Contact)
                return contact

            await _pool(WARMUP, call)
            return await _pool(N, call)

    async def raw_run() -> tuple[float, float]:
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
            return await _pool(N, call)

    sdk: list[tuple[float, float]] = []
    raw: list[tuple[float, float]] = []
    for _ in range(ROUNDS):
        for fn, out in ((raw_run, raw), (sdk_run, sdk)):
            gc.collect()
            out.append(asyncio.run(fn()))
            if exporter is not None:
                exporter.clear()
    sdk_rate = statistics.median(r for r, _ in sdk)
    ratio = sdk_rate / statistics.median(r for r, _ in raw)
    cpu = statistics.median(c for _, c in sdk) / statistics.median(c for _, c in raw)
    print(f"RATIO {ratio:.4f} {sdk_rate:.0f} {cpu:.4f}", flush=True)


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    from benchmarks._server import pin_to_cpus, running

    with running("benchmarks._server", cpus=pin_to_cpus()) as url:
        ratios: dict[str, list[float]] = {mode: [] for mode in MODES}
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        cpus: dict[str, list[float]] = {mode: [] for mode in MODES}
        for rep in range(REPS):
            order = MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]  # rotate the order
            for mode in order:
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.bench_otel", "--child", mode, url],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=600,
                )
                line = next(x for x in done.stdout.splitlines() if x.startswith("RATIO "))
                _, ratio, rate, cpu = line.split()
                ratios[mode].append(float(ratio))
                rates[mode].append(float(rate))
                cpus[mode].append(float(cpu))
            print(
                f"rep {rep + 1}: "
                + "   ".join(
                    f"{m} sdk/raw {ratios[m][-1]:.3f} ({rates[m][-1]:.0f} req/s)" for m in MODES
                ),
                flush=True,
            )
        print(
            f"add_segment @ concurrency {CONCURRENCY}, N={N} x {ROUNDS} rounds per process, "
            f"{REPS} processes per setup"
        )
        for mode in MODES:
            print(f"  {mode:4}: throughput sdk/raw {_spread(ratios[mode])}")
            print(f"        CPU per request sdk/raw {_spread(cpus[mode])}")
        for mode in ("api", "sdk"):
            for what, values in (("throughput", ratios), ("CPU per request", cpus)):
                paired = [m / b for m, b in zip(values[mode], values["none"], strict=True)]
                print(f"  {mode} / none, {what}, per repetition: {_spread(paired)}")
            of_medians = statistics.median(ratios[mode]) / statistics.median(ratios["none"])
            print(f"RESULT otel_{mode}_vs_none_ratio {of_medians:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
