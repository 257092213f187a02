"""Sequential ``contacts.add_segment`` calls: the sync client next to the async one and requests.

A minimal loopback responder runs in its own process, pinned to its own CPU (the same one the
other benchmarks use, ``benchmarks._server``), so that the clients' own costs are what is
compared. Three clients, open at once in this process, make the same sequential calls
against it, a chunk of 400 calls each per round, the order rotating, over many rounds (the
method of ``benchmarks._interleave``):

- ``sync``: :class:`~invent_async.InventClient`, each call a hop to its event-loop thread;
- ``async``: :class:`~invent_async.AsyncInventClient`, each call awaited in one event loop;
- ``requests``: a ``requests.Session`` posting the same request and decoding the JSON body
  (what blocking code does without the SDK; it builds no typed model).

Printed: calls/second of each, the sync/async throughput ratio (target >= 0.85), the
sync/requests ratio (target >= 2.2), each per round, median [min-max], the per-call
overhead of the sync layer in microseconds (sync time per call minus async time per
call), and the pure bridge cost (a no-op coroutine through the same hop, no I/O). The rate
governor is off in both SDK clients: this measures the client, not the API's limit.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
import time
from collections.abc import Callable
from typing import Final

from benchmarks._interleave import Spread, rounds
from benchmarks._server import API_KEY, pin_to_cpus, running
from invent_async import AsyncInventClient, Contact, InventClient

CHUNK: Final = 400
WARMUP: Final = 200
NOOP_CALLS: Final = 5000
CONTACT: Final = "ct_1"
SEGMENT: Final = "sg_1"


def _timed(n: int, call: Callable[[], object]) -> tuple[float, float]:
    """``n`` sequential calls: (wall s, CPU s of this process, every thread included)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        call()
    return time.perf_counter() - start, time.process_time() - cpu


async def _noop() -> None:
    return None


def main() -> None:
    """Open the three clients at once, interleave chunks of calls over rounds, print."""
    requests = importlib.import_module("requests")  # the bench group installs it (no stubs)
    n_rounds = rounds(20, 6)
    with running("benchmarks._server", cpus=pin_to_cpus()) as url:
        endpoint = f"{url}/orgs/c/contacts/{CONTACT}/segments/{SEGMENT}"
        headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
        loop = asyncio.new_event_loop()
        aclient = AsyncInventClient(API_KEY, base_url=url, rate_limit=None)
        with (
            InventClient(API_KEY, base_url=url, rate_limit=None) as client,
            requests.Session() as session,
        ):

            def sync_call() -> None:
                assert isinstance(client.contacts.add_segment(CONTACT, SEGMENT), Contact)

            async def async_chunk(n: int) -> None:
                for _ in range(n):
                    contact = await aclient.contacts.add_segment(CONTACT, SEGMENT)
                    assert isinstance(contact, Contact)

            def async_run(n: int) -> tuple[float, float]:
                start, cpu = time.perf_counter(), time.process_time()
                loop.run_until_complete(async_chunk(n))
                return time.perf_counter() - start, time.process_time() - cpu

            def requests_call() -> None:
                response = session.post(endpoint, headers=headers)
                response.raise_for_status()
                assert response.json()["id"] == CONTACT

            runners: dict[str, Callable[[int], tuple[float, float]]] = {
                "async": async_run,
                "sync": lambda n: _timed(n, sync_call),
                "requests": lambda n: _timed(n, requests_call),
            }
            for run in runners.values():
                run(WARMUP)
            wall: dict[str, list[float]] = {k: [] for k in runners}
            cpu: dict[str, list[float]] = {k: [] for k in runners}
            for r in range(n_rounds):
                names = list(runners)
                order = names[r % 3 :] + names[: r % 3]
                gc.collect()
                for name in order:
                    w, c = runners[name](CHUNK)
                    wall[name].append(w)
                    cpu[name].append(c)
            call = client._bridge.call
            _timed(WARMUP, lambda: call(_noop))
            noop_us = _timed(NOOP_CALLS, lambda: call(_noop))[0] / NOOP_CALLS * 1e6
            loop.run_until_complete(aclient.aclose())
        loop.close()

    def per_round(a: str, b: str) -> Spread:
        return Spread(tuple(wb / wa for wa, wb in zip(wall[a], wall[b], strict=True)))

    def cpu_ratio(a: str, b: str) -> Spread:
        return Spread(tuple(cb / ca for ca, cb in zip(cpu[a], cpu[b], strict=True)))

    def extra_us(a: str, b: str) -> Spread:
        return Spread(tuple((ca - cb) / CHUNK * 1e6 for ca, cb in zip(cpu[a], cpu[b], strict=True)))

    print(f"sequential add_segment: {n_rounds} rounds x {CHUNK} calls per client, interleaved")
    for name in wall:
        rate = Spread(tuple(CHUNK / w for w in wall[name]))
        us = Spread(tuple(c / CHUNK * 1e6 for c in cpu[name]))
        print(f"  {name:9} {rate.show('.0f')} calls/s  {us.show('.1f')} us CPU/call")
    over = Spread(
        tuple((ws - wa) / CHUNK * 1e6 for ws, wa in zip(wall["sync"], wall["async"], strict=True))
    )
    print(
        f"sync layer: {over.show('+.1f')} us per call over async; no-op bridge hop {noop_us:.1f} us"
    )
    print(
        f"RESULT p2_sync_vs_async ratio={per_round('sync', 'async').show()} "
        f"extra_cpu_us={extra_us('sync', 'async').show('+.1f')} "
        f"cpu_ratio={cpu_ratio('sync', 'async').show()} (target >= 0.85)"
    )
    print(
        f"RESULT p2_sync_vs_requests ratio={per_round('sync', 'requests').show()} "
        f"extra_cpu_us={extra_us('sync', 'requests').show('+.1f')} "
        f"cpu_ratio={cpu_ratio('sync', 'requests').show()} (target >= 2.2)"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
