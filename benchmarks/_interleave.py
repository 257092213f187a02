"""The benchmark method: both sides of a comparison in one process and one event loop.

Every side is opened once (its session, its connections) and stays open; then the sides take
turns, a *chunk* of calls each (about 400), the order rotating each round, for many rounds.
A slow phase of the shared machine then hits every side of a round alike, and the figure of
a round is a ratio of two measurements taken a second apart. For each side and round:

- throughput: calls / wall time of its chunk;
- client CPU per call: the ``time.process_time()`` delta of the chunk / calls (this process
  only: the loopback responder runs in its own process, pinned to its own CPU).

Printed per compared side: the median and [min-max] over rounds of ``side / baseline``
throughput, of the extra client CPU microseconds per call (``side - baseline``) and of the
CPU ratio (``baseline CPU / side CPU`` per call: what the throughput ratio of a client-bound
run is when a busy neighbour's share of the CPU is left out), and one ``RESULT`` line
stating its target.

``--quick`` (``nox -s bench -- --quick``) runs fewer, shorter rounds: a developer's inner
loop, not a figure to publish.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Final

import attrs

Call = Callable[[int], Awaitable[object]]
"""One call of a side: ``call(i)`` makes request number ``i``."""

Opener = Callable[[], AbstractAsyncContextManager[Call]]
"""Opens a side (its client, its session) and yields its call."""

QUICK_ENV: Final = "INVENT_BENCH_QUICK"


def quick() -> bool:
    """Whether ``--quick`` was given (to this process or to ``python -m benchmarks``)."""
    return "--quick" in sys.argv or os.environ.get(QUICK_ENV) == "1"


def rounds(full: int, fast: int) -> int:
    """``full`` rounds, or ``fast`` with ``--quick``."""
    return fast if quick() else full


@attrs.frozen
class Side:
    """One side of a comparison: a name and how to open it."""

    name: str
    open: Opener


@attrs.frozen
class Spread:
    """Median and range of one figure over the rounds."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, fmt: str = ".3f") -> str:
        return f"{self.median:{fmt}} [{min(self.values):{fmt}}-{max(self.values):{fmt}}]"


@attrs.frozen
class Figures:
    """What one side measured, against the baseline, over every round."""

    name: str
    rate: Spread  # calls per second
    cpu_us: Spread  # client CPU microseconds per call
    ratio: Spread  # rate / baseline rate, per round
    extra_cpu_us: Spread  # cpu_us - baseline cpu_us, per round
    cpu_ratio: Spread  # baseline cpu_us / cpu_us, per round: the throughput ratio of a
    # client-bound run as CPU time tells it (a neighbour that takes the CPU does not count)


async def pool(concurrency: int, start: int, n: int, call: Call) -> tuple[float, float]:
    """``n`` calls through ``concurrency`` long-lived workers: (wall s, CPU s)."""
    counter = iter(range(start, start + n))

    async def worker() -> None:
        for i in counter:
            await call(i)

    t0, c0 = time.perf_counter(), time.process_time()
    if concurrency == 1:
        await worker()
    else:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, time.process_time() - c0


Runner = Callable[[Call, int, int], Awaitable[tuple[float, float]]]
"""Runs ``n`` calls of a side from number ``start``: (wall s, CPU s)."""


async def compare_calls(
    sides: Sequence[Side],
    *,
    concurrency: int,
    chunk: int,
    n_rounds: int,
    warmup: int | None = None,
    runner: Runner | None = None,
    label: str = "",
) -> list[Figures]:
    """Interleave ``sides`` (the first is the baseline) in one loop; figures of each."""
    run: Runner = runner or (lambda call, start, n: pool(concurrency, start, n, call))
    async with AsyncExitStack() as stack:
        calls = [await stack.enter_async_context(side.open()) for side in sides]
        for call in calls:  # connections open, caches hot
            await run(call, 0, warmup if warmup is not None else max(200, 2 * concurrency))
        wall: list[list[float]] = [[] for _ in sides]
        cpu: list[list[float]] = [[] for _ in sides]
        counter = 1_000_000
        for r in range(n_rounds):
            order = list(range(len(sides)))
            order = order[r % len(order) :] + order[: r % len(order)]
            gc.collect()
            for k in order:
                w, c = await run(calls[k], counter, chunk)
                counter += chunk
                wall[k].append(w)
                cpu[k].append(c)
    figures = []
    for k, side in enumerate(sides):
        rate = [chunk / w for w in wall[k]]
        base = [chunk / w for w in wall[0]]
        us = [c / chunk * 1e6 for c in cpu[k]]
        base_us = [c / chunk * 1e6 for c in cpu[0]]
        figures.append(
            Figures(
                name=side.name,
                rate=Spread(tuple(rate)),
                cpu_us=Spread(tuple(us)),
                ratio=Spread(tuple(a / b for a, b in zip(rate, base, strict=True))),
                extra_cpu_us=Spread(tuple(a - b for a, b in zip(us, base_us, strict=True))),
                cpu_ratio=Spread(tuple(b / a for a, b in zip(us, base_us, strict=True))),
            )
        )
    if label:
        print(f"{label}: {n_rounds} rounds x {chunk} calls per side, interleaved", flush=True)
    for f in figures:
        print(
            f"  {f.name:28} {f.rate.show('.0f')} calls/s  "
            f"{f.cpu_us.show('.1f')} us CPU/call  "
            f"ratio {f.ratio.show()}  extra CPU {f.extra_cpu_us.show('+.1f')} us",
            flush=True,
        )
    return figures


def result(name: str, figures: Figures, baseline: str, target: str) -> None:
    """One ``RESULT`` line: ratio and extra CPU, both with their spread, and the target."""
    print(
        f"RESULT {name} ratio={figures.ratio.show()} "
        f"extra_cpu_us={figures.extra_cpu_us.show('+.1f')} "
        f"cpu_ratio={figures.cpu_ratio.show()} "
        f"(vs {baseline}; target {target})",
        flush=True,
    )
