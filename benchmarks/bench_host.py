"""The host budget (no Redis): processes of one machine sharing one budget in a sqlite store.

Parts (``python -m benchmarks.bench_host [part ...]``, ``nox -s bench -- host [part ...]``):

1. ``processes``: 4 worker processes with the async client (a bulk job each, 32 at once) and
   2 with the sync client (``InventClient``, 2 threads each calling ``add_segment`` one after
   the other, as 2 Flask workers would), no Redis, every process on the default budget,
   driving demand far above the limit for D seconds against FakeInvent limiting per minute
   (in a process of its own, ``benchmarks._fake``). Default: the scaled run, R = 6,000/min
   over a 5 s window (500 in any window, as the real API's 500 a minute, 12x faster) for
   D = 30 s; ``real`` is the same at the API's real 500/min over a 60 s window for D = 90 s.
   Printed: the fake's accepted requests over D as a share of the limit's R * D / 60
   (target >= 0.95), its 429 answers as a share of its responses (target <= 1%), the
   workers' fallbacks to a budget of their own (target 0), the longest time without an
   accepted request. Then the same processes with
   ``INVENT_BUDGET_DIR=off`` (a budget each, as before the host budget), for contrast.
2. ``cost``: microseconds per admission (acquire + release + succeeded, at a rate so high
   that nobody waits), client wall, interleaved rounds, median [min-max]: the in-process
   ``RateGovernor`` (before: the default without Redis), the ``HostGovernor`` alone, the
   ``HostGovernor`` with 4 processes admitting on the same budget at once (each process's
   own wall per admission), the ``FleetGovernor`` on a valkey-server; and the store's choice:
   one sqlite reservation (``HostBudget.reserve``) next to one on an ``fcntl``-locked
   ``mmap`` (the alternative measured, not used), alone and with 4 processes. The rows with
   4 processes keep the store's lock busy all the time (nothing like the API's rates): they
   also print ``busy``, how many times a contender waited past ``BUSY_TIMEOUT`` (a
   reservation given up, or a governor's fallback, said once per process).

Every process and server here binds 127.0.0.1 only and stops by itself (stdin closed, or a
time limit); the budgets live in a temporary ``INVENT_BUDGET_DIR`` removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import logging
import mmap
import os
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

from benchmarks._fake import API_KEY
from benchmarks._interleave import quick
from benchmarks.bench_fleet import Child, valkey_server
from invent_async import AsyncInventClient, InventClient, InventError, RateLimit
from invent_async._fleet import FleetGovernor
from invent_async._host import HostGovernor
from invent_async._host_budget import BUDGET_DIR_ENV, HostBudget, HostBudgetUnavailableError
from invent_async._ratelimit import RateGovernor

if sys.platform != "win32":
    import fcntl

ASYNC_WORKERS: Final = 4
SYNC_WORKERS: Final = 2
SYNC_THREADS: Final = 2
CONCURRENCY: Final = 32
TARGET_SHARE: Final = 0.95
TARGET_429: Final = 0.01
SCALED: Final = {"rpm": 6000.0, "window": 5.0, "seconds": 30.0}
REAL: Final = {"rpm": 500.0, "window": 60.0, "seconds": 90.0}
SEED: Final = 20_000
COST_ROUNDS: Final = 3 if quick() else 7
COST_OPS: Final = 1000 if quick() else 3000
CONTENDERS: Final = 4
_BUSY: Final = [0]  # a contender's transactions that waited past BUSY_TIMEOUT (or fallbacks)
WORKER_LIMIT: Final = 300.0


# --------------------------------------------------------------------------- processes


@contextlib.contextmanager
def budgets_dir() -> Iterator[Path]:
    """A temporary ``INVENT_BUDGET_DIR`` for this run (children inherit it)."""
    directory = Path(tempfile.mkdtemp(prefix="bench-host-"))
    saved = os.environ.get(BUDGET_DIR_ENV)
    os.environ[BUDGET_DIR_ENV] = str(directory)
    try:
        yield directory
    finally:
        if saved is None:
            os.environ.pop(BUDGET_DIR_ENV, None)
        else:
            os.environ[BUDGET_DIR_ENV] = saved
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def fake(rpm: float, window: float) -> Iterator[tuple[Child, str]]:
    child = Child(
        "-m", "benchmarks._fake",
        "--rpm", str(rpm),
        "--rpm-window", str(window),
        "--seed-contacts", str(SEED),
        "--seed-segments", "4",
        "--max-seconds", "900",
    )  # fmt: skip
    try:
        yield child, child.line("URL ", 30)
    finally:
        child.close()


def run_workers(specs: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    workers = [Child("-m", "benchmarks.bench_host", "worker", json.dumps(s)) for s in specs]
    try:
        for worker in workers:
            worker.line("READY", 60)
        start_at = time.monotonic() + 0.3
        for worker in workers:
            worker.send(f"GO {start_at!r}")
        return start_at, [json.loads(w.line("WORKER ", WORKER_LIMIT + 30)) for w in workers]
    finally:
        for worker in workers:
            worker.close()


async def _async_worker(spec: dict[str, Any], start_at: float) -> dict[str, Any]:
    stop_at = start_at + spec["seconds"]
    lo, hi = spec["range"]

    def until_stop() -> Iterator[str]:
        for i in range(lo, hi):
            if time.monotonic() >= stop_at:
                return
            yield f"ct_{i}"

    limit = RateLimit(per_minute=spec["rpm"])
    async with AsyncInventClient(API_KEY, base_url=spec["url"], rate_limit=limit) as client:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        report = await client.contacts.bulk_add_segment(
            until_stop(), spec["segment"], concurrency=CONCURRENCY
        )
        stats = client.rate_limit_stats()
    assert stats is not None
    return {
        "succeeded": report.succeeded,
        "failed": report.failed,
        "host": stats.host,
        "fallback": stats.fallback,
    }


def _sync_worker(spec: dict[str, Any], start_at: float) -> dict[str, Any]:
    stop_at = start_at + spec["seconds"]
    lo, hi = spec["range"]
    counter = iter(range(lo, hi))
    lock = threading.Lock()
    done = {"succeeded": 0, "failed": 0}
    limit = RateLimit(per_minute=spec["rpm"])
    with InventClient(API_KEY, base_url=spec["url"], rate_limit=limit) as client:

        def loop() -> None:
            while time.monotonic() < stop_at:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    client.contacts.add_segment(f"ct_{i}", spec["segment"])
                    outcome = "succeeded"
                except InventError:
                    outcome = "failed"
                with lock:
                    done[outcome] += 1

        time.sleep(max(0.0, start_at - time.monotonic()))
        threads = [threading.Thread(target=loop) for _ in range(SYNC_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WORKER_LIMIT)
        stats = client.rate_limit_stats()
    assert stats is not None
    return {**done, "host": stats.host, "fallback": stats.fallback}


def worker(spec_json: str) -> None:
    spec = json.loads(spec_json)
    print("READY", flush=True)
    start_at = float(sys.stdin.readline().split()[1])
    if spec["kind"] == "sync":
        result = _sync_worker(spec, start_at)
    else:
        result = asyncio.run(_async_worker(spec, start_at))
    print("WORKER " + json.dumps(result), flush=True)


def one_run(label: str, setting: dict[str, float], off: bool) -> None:
    rpm, window, seconds = setting["rpm"], setting["window"], setting["seconds"]
    saved = os.environ.get(BUDGET_DIR_ENV)
    if off:
        os.environ[BUDGET_DIR_ENV] = "off"
    try:
        with fake(rpm, window) as (child, url):
            each = SEED // (ASYNC_WORKERS + SYNC_WORKERS)
            specs = [
                {
                    "kind": "async" if k < ASYNC_WORKERS else "sync",
                    "url": url,
                    "segment": "sg_1",
                    "range": [1 + k * each, 1 + (k + 1) * each],
                    "seconds": seconds,
                    "rpm": rpm,
                }
                for k in range(ASYNC_WORKERS + SYNC_WORKERS)
            ]
            start_at, results = run_workers(specs)
            seen = json.loads(child.ask("DUMP sg_1", "DUMP "))
    finally:
        if saved is None:
            os.environ.pop(BUDGET_DIR_ENV, None)
        else:
            os.environ[BUDGET_DIR_ENV] = saved
    requests = seen["requests"]
    end_at = start_at + seconds
    accepted = sum(1 for t, status, _ in requests if 200 <= status < 300 and t <= end_at)
    share = accepted / (rpm * seconds / 60)
    answered_429 = sum(1 for _, status, _ in requests if status == 429)
    share_429 = answered_429 / max(1, len(requests))
    ok = sorted(t for t, status, _ in requests if 200 <= status < 300)
    silence = max((b - a for a, b in itertools.pairwise(ok)), default=0.0)
    failed = sum(r["failed"] for r in results)
    fallbacks = sum(bool(r["fallback"]) for r in results)
    hosts = sum(bool(r["host"]) for r in results)
    print(
        f"{label}: {len(requests)} requests in {seconds:g}s at {rpm:g}/min over {window:g}s "
        f"windows; {accepted} accepted by the end ({rpm * seconds / 60:.0f} allowed), "
        f"{answered_429} answered 429, busiest window {seen['stats']['max_in_window']}; "
        f"{failed} calls failed; {hosts} of {len(results)} processes on the host budget",
        flush=True,
    )
    targets = "" if off else f" (targets >= {TARGET_SHARE}, <= {TARGET_429}, 0)"
    print(
        f"RESULT {label} of_limit={share:.3f} share_429={share_429:.4f} "
        f"fallbacks={fallbacks} failed={failed} longest_silence_s={silence:.1f}{targets}",
        flush=True,
    )


def processes(real: bool = False) -> None:
    """Part 1 (``real``: at 500/min): 4 async + 2 sync processes on the host budget, then
    the same with a budget each."""
    setting = REAL if real else SCALED
    if quick():
        setting = {**setting, "seconds": setting["seconds"] / 3}
    tag = "real_500pm" if real else "scaled_6000pm"
    with budgets_dir():
        one_run(f"host_4async_2sync_{tag}", setting, off=False)
        one_run(f"host_off_4async_2sync_{tag}", setting, off=True)


# --------------------------------------------------------------------------- cost

FAST: Final = 60_000_000.0  # one slot a microsecond: nobody waits
_MMAP_RECORD: Final = struct.Struct("<3q")


def _mmap_reserve(fd: int, view: mmap.mmap, interval: int) -> int:
    """One GCRA reservation on an ``fcntl``-locked ``mmap`` (the alternative measured)."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        next_slot, gate, acquired = _MMAP_RECORD.unpack_from(view, 0)
        now = time.time_ns() // 1000
        slot = max(now, next_slot, gate)
        _MMAP_RECORD.pack_into(view, 0, slot + interval, gate, acquired + 1)
        return int(slot)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


async def _admissions(kind: str, url: str, directory: Path, ops: int) -> AsyncIterator[None]:
    """Yield once before and once after ``ops`` admissions of ``kind``."""
    name = f"cost@{kind}:1"
    if kind in ("sqlite_reserve", "mmap_reserve"):
        if kind == "sqlite_reserve":
            budget = HostBudget(directory, name=name, per_minute=FAST)
            budget.reserve()
            yield
            for _ in range(ops):
                try:
                    budget.reserve()
                except HostBudgetUnavailableError:  # waited past BUSY_TIMEOUT
                    _BUSY[0] += 1
            yield
            budget.close()
            return
        fd = os.open(directory / "mmap.bin", os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, mmap.PAGESIZE)
        view = mmap.mmap(fd, mmap.PAGESIZE)
        yield
        for _ in range(ops):
            _mmap_reserve(fd, view, 1)
        yield
        view.close()
        os.close(fd)
        return
    governor: Any
    if kind == "fleet_governor":
        governor = FleetGovernor(RateLimit(per_minute=FAST, redis_url=url), name=name)
    elif kind.startswith("host_governor"):
        governor = HostGovernor(RateLimit(per_minute=FAST), name=name, directory=directory)
    else:
        governor = RateGovernor(RateLimit(per_minute=FAST))
    try:
        (await governor.acquire()).release()
        yield
        for _ in range(ops):
            ticket = await governor.acquire()
            ticket.release()
            governor.succeeded(ticket)
        yield
    finally:
        await governor.aclose()


async def _measure(kind: str, url: str, directory: Path, ops: int) -> float:
    """Microseconds of wall time per admission."""
    steps = _admissions(kind, url, directory, ops)
    await anext(steps)
    gc.collect()
    start = time.perf_counter()
    await anext(steps)
    elapsed = time.perf_counter() - start
    with contextlib.suppress(StopAsyncIteration):
        await anext(steps)
    return elapsed * 1e6 / ops


def cost_worker(spec_json: str) -> None:
    """One contender: READY, then on GO the admissions; prints ``COST <us>``."""
    spec = json.loads(spec_json)

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            _BUSY[0] += "cannot be used" in record.getMessage()

    logging.getLogger("invent_async").addHandler(Count())
    print("READY", flush=True)
    sys.stdin.readline()
    us = asyncio.run(_measure(spec["kind"], "", Path(spec["directory"]), spec["ops"]))
    print(f"COST {us} {_BUSY[0]}", flush=True)


def _contended(kind: str, directory: Path, ops: int) -> tuple[float, int]:
    """Median of the contenders' wall per admission, all admitting at once; and how many
    times one of them waited past ``BUSY_TIMEOUT`` (a transaction given up, or a fallback)."""
    spec = json.dumps({"kind": kind, "directory": str(directory), "ops": ops})
    children = [Child("-m", "benchmarks.bench_host", "cost-worker", spec) for _ in range(4)]
    try:
        for child in children:
            child.line("READY", 60)
        for child in children:
            child.send("GO")
        answers = [child.line("COST ", 300).split() for child in children]
        return statistics.median(float(a[0]) for a in answers), sum(int(a[1]) for a in answers)
    finally:
        for child in children:
            child.close()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def cost() -> None:
    """Part 2: microseconds per admission, in the process, on the host, on Redis."""
    alone = ("local_governor", "host_governor", "fleet_governor", "sqlite_reserve", "mmap_reserve")
    together = ("host_governor_4proc", "sqlite_reserve_4proc", "mmap_reserve_4proc")
    figures: dict[str, list[float]] = {kind: [] for kind in (*alone, *together)}
    busy = dict.fromkeys(together, 0)
    with valkey_server() as vk, budgets_dir() as directory:
        for rnd in range(COST_ROUNDS):
            for kind in alone if rnd % 2 == 0 else alone[::-1]:
                ops = COST_OPS * (10 if kind in ("local_governor", "mmap_reserve") else 1)
                figures[kind].append(asyncio.run(_measure(kind, vk.url, directory, ops)))
            for kind in together:
                base = kind.removesuffix("_4proc")
                ops = COST_OPS * (10 if base == "mmap_reserve" else 1)
                us, waited_out = _contended(base, directory, ops)
                figures[kind].append(us)
                busy[kind] += waited_out
            print(
                f"cost round {rnd + 1}: "
                + "  ".join(f"{k} {figures[k][-1]:.1f} us" for k in figures),
                flush=True,
            )
    for kind, values in figures.items():
        extra = f" busy={busy[kind]}" if kind in busy else ""
        print(f"RESULT host_cost_{kind} wall_us={_spread(values)}{extra} ({COST_ROUNDS} rounds)")
    local = statistics.median(figures["local_governor"])
    host = statistics.median(figures["host_governor"])
    print(
        f"RESULT host_cost_host_vs_local_wall ratio={host / local:.1f} extra_us={host - local:.1f}",
        flush=True,
    )


def main(argv: list[str]) -> None:
    if argv[:1] == ["worker"]:
        worker(argv[1])
        return
    if argv[:1] == ["cost-worker"]:
        cost_worker(argv[1])
        return
    parts = [a for a in argv if not a.startswith("-")] or ["processes", "cost"]
    for part in parts:
        if part == "processes":
            processes()
        elif part == "real":
            processes(real=True)
        elif part == "cost":
            cost()
        else:
            raise SystemExit(f"no part {part!r}: processes, real, cost")


if __name__ == "__main__":
    main(sys.argv[1:])
