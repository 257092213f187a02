"""Sequential ``contacts.add_segment`` calls: the sync client next to the async one and requests.

A minimal loopback responder runs in its own process, pinned to its own CPU (the same one the
other benchmarks use, ``benchmarks._server``), so that the clients' own costs are what is
compared. Three clients make the same sequential calls against it, interleaved over several
repetitions (the order rotates each time):

- ``sync``: :class:`~invent_async.InventClient`, each call a hop to its event-loop thread;
- ``async``: :class:`~invent_async.AsyncInventClient`, each call awaited in one event loop;
- ``requests``: a ``requests.Session`` posting the same request and decoding the JSON body
  (what blocking code does without the SDK; it builds no typed model).

Printed: calls/second of each, the sync/async throughput ratio (target >= 0.7), the
sync/requests ratio (target >= 2), the per-call overhead of the sync layer in microseconds
(sync time per call minus async time per call), and the pure bridge cost (a no-op coroutine
through the same hop, no I/O). The rate governor is off in both SDK clients: this measures
the client, not the API's 500 requests/minute limit.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from typing import Final

from benchmarks._server import API_KEY, pin_to_cpus, running
from invent_async import AsyncInventClient, Contact, InventClient

N: Final = 2000
WARMUP: Final = 200
REPS: Final = 5
NOOP_CALLS: Final = 5000
SERVER_SECONDS: Final = 120
CONTACT: Final = "ct_1"
SEGMENT: Final = "sg_1"


def _timed(n: int, call: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return n / (time.perf_counter() - start)


def sync_run(url: str) -> float:
    """Calls per second through InventClient."""
    with InventClient(API_KEY, base_url=url, rate_limit=None) as client:

        def call() -> None:
            contact = client.contacts.add_segment(CONTACT, SEGMENT)
            assert isinstance(contact, Contact)

        _timed(WARMUP, call)
        return _timed(N, call)


async def _async_run(url: str) -> float:
    async with AsyncInventClient(API_KEY, base_url=url, rate_limit=None) as client:

        async def calls(n: int) -> float:
            start = time.perf_counter()
            for _ in range(n):
                contact = await client.contacts.add_segment(CONTACT, SEGMENT)
                assert isinstance(contact, Contact)
            return n / (time.perf_counter() - start)

        await calls(WARMUP)
        return await calls(N)


def async_run(url: str) -> float:
    """Calls per second awaited on AsyncInventClient in one event loop."""
    return asyncio.run(_async_run(url))


def requests_run(url: str) -> float:
    """Calls per second through a requests.Session (JSON decoded, no model)."""
    requests = importlib.import_module("requests")  # the bench group installs it (no stubs)
    endpoint = f"{url}/orgs/c/contacts/{CONTACT}/segments/{SEGMENT}"
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
    with requests.Session() as session:

        def call() -> None:
            response = session.post(endpoint, headers=headers)
            response.raise_for_status()
            assert response.json()["id"] == CONTACT

        _timed(WARMUP, call)
        return _timed(N, call)


async def _noop() -> None:
    return None


def bridge_noop_us(url: str) -> float:
    """Microseconds per hop of a no-op coroutine through the sync client's bridge."""
    with InventClient(API_KEY, base_url=url, rate_limit=None) as client:
        call = client._bridge.call
        _timed(WARMUP, lambda: call(_noop))
        return 1e6 / _timed(NOOP_CALLS, lambda: call(_noop))


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.0f} [{min(values):.0f}-{max(values):.0f}]"


def main() -> None:
    """Run the interleaved repetitions and print the figures."""
    runners: list[tuple[str, Callable[[str], float]]] = [
        ("sync", sync_run),
        ("async", async_run),
        ("requests", requests_run),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in runners}
    with running("benchmarks._server", cpus=pin_to_cpus()) as url:
        print(f"sequential add_segment, N={N} per run, {REPS} interleaved reps, {url}")
        for rep in range(REPS):
            order = runners[rep % len(runners) :] + runners[: rep % len(runners)]
            for name, run in order:
                gc.collect()
                results[name].append(run(url))
            sync, aio, req = (results[name][-1] for name in ("sync", "async", "requests"))
            print(
                f"rep {rep + 1}: sync {sync:6.0f}/s  async {aio:6.0f}/s  requests {req:6.0f}/s  "
                f"sync/async {sync / aio:.3f}  sync/requests {sync / req:.2f}",
                flush=True,
            )
        noop = bridge_noop_us(url)
    sync_m, async_m, req_m = (statistics.median(results[n]) for n in ("sync", "async", "requests"))
    ratios = [s / a for s, a in zip(results["sync"], results["async"], strict=True)]
    overheads = [1e6 / s - 1e6 / a for s, a in zip(results["sync"], results["async"], strict=True)]
    print(f"calls/s median [min-max]: sync     {_spread(results['sync'])}")
    print(f"                          async    {_spread(results['async'])}")
    print(f"                          requests {_spread(results['requests'])}")
    print(
        f"sync layer overhead: {statistics.median(overheads):.1f} us per call "
        f"(sync {1e6 / sync_m:.1f} us vs async {1e6 / async_m:.1f} us); "
        f"no-op hop through the bridge: {noop:.1f} us"
    )
    print(
        f"RESULT sync_vs_async_ratio {sync_m / async_m:.3f} "
        f"(median of per-rep ratios {statistics.median(ratios):.3f}; target >= 0.7)"
    )
    print(f"RESULT sync_vs_requests_ratio {sync_m / req_m:.2f} (target >= 2)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
