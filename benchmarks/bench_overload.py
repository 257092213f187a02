"""Sustained demand above the limit, with a deadline (issue #21, item 1): one figure per line.

An app calls ``contacts.add_segment`` open-loop (a call every ``1 / (k * R)`` seconds,
whatever the calls before it are doing, as a web app serving its own clients would) at
``k`` = 1.5 and 5 times the limit R = 500/minute (the real API's), each call with
``deadline=10`` and the client's other defaults (retries included). FakeInvent answers in
``LATENCY`` seconds and limits itself to R over a 60 s sliding window (as the real API). The
budget is the process's own (in-process) or a valkey-server's (started here, on loopback).
Each run lasts ``DURATION`` seconds of arrivals, then drains; the figures are taken from
``WARMUP`` seconds in (when the deadline's queue has filled) to the end of the arrivals.

Printed per run:

- ``upstream/limit``: requests the fake applied (answered 2xx) per minute in the window,
  over R (target >= 0.95; the SDK paces at 0.98 R by its default ``headroom``);
- ``applied-but-failed``: calls the caller was told failed whose request the fake applied
  (target 0): compared by contact id, after the fake finished every request it got;
- ``sent<floor``: requests handed to the transport with less than the send floor (0.5 s
  here) of the deadline left (target 0);
- ``wasted``: booked pacing slots never used: tickets (in-process) or slots booked on Redis,
  minus the requests sent and the slots given back (target 0);
- refusal latency p50/p99: from the call to its ``APITimeoutError(deadline_exceeded)``.

Each run is a worker process (``python benchmarks/bench_overload.py worker SPEC``) that runs
the fake and the app on one event loop. With ``INVENT_BENCH_BASELINE=/path/to/a/checkout``
(for example ``git worktree add /tmp/main main``) each run is made with that tree's
``invent_async`` as well, interleaved, as a ``baseline`` row: what the code before this
change does under the same load. ``--quick``: 20 s runs at 6,000/minute (12x the real rate;
pitfall 16: the figures then say little of the real one). ``INVENT_BENCH_OVERLOAD_SECONDS``
sets the seconds of arrivals of each run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

API_KEY: Final = "sk_bench_overload"
LIMIT: Final = 500.0
"""Requests per minute: the real API's limit."""
DEADLINE: Final = 10.0
LATENCY: Final = 0.08
"""Seconds the fake takes to answer."""
DURATION: Final = 75.0
WARMUP: Final = 15.0
FLOOR: Final = 0.5
"""The send floor at these answer times (``_send_floor.MIN_FLOOR``)."""
LOADS: Final = (1.5, 5.0)


# ---------------------------------------------------------------------- the worker


class _Recording:
    """The client's transport, noting when each request was handed over and with how much
    timeout (the time its deadline left)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.sent: list[tuple[float, float | None]] = []

    async def send(self, request: Any, *, attempt_timeout: float | None) -> Any:
        self.sent.append((time.monotonic(), attempt_timeout))
        return await self._inner.send(request, attempt_timeout=attempt_timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    # whichever invent_async is first on the path: this tree's, or the baseline's
    from invent_async import APITimeoutError, AsyncInventClient, RateLimit
    from invent_async._transport import AiohttpTransport
    from invent_async.testing import FakeInvent

    outages = _Outages()
    logging.getLogger("invent_async").addHandler(outages)
    limit, load, duration = spec["limit"], spec["load"], spec["duration"]
    n = int(duration * load * limit / 60) + 1
    async with FakeInvent(api_key=API_KEY, rate_limit_per_minute=limit, latency=LATENCY) as fake:
        contacts = fake.add_contacts(n)
        segment = fake.add_segment("overload").id
        transport = _Recording(AiohttpTransport())
        rate = RateLimit(per_minute=limit, redis_url=spec["redis"], budget=spec["name"])
        outcomes: dict[str, tuple[str, float, float]] = {}
        async with AsyncInventClient(
            API_KEY, base_url=fake.url, rate_limit=rate, transport=transport
        ) as client:
            view = client.with_options(deadline=DEADLINE)
            await client.segments.get(segment)  # connections and imports, before the start
            fake.requests.clear()
            transport.sent.clear()
            base = client.rate_limit_stats()
            fleet_base = await client.rate_limit_fleet_stats()

            async def call(contact: str) -> None:
                began = time.monotonic()
                try:
                    await view.contacts.add_segment(contact, segment)
                except APITimeoutError as exc:
                    kind = (
                        "refused" if exc.deadline_exceeded and not exc.request_sent else "timeout"
                    )
                    outcomes[contact] = (kind, began, time.monotonic() - began)
                except Exception as exc:  # counted, by kind
                    outcomes[contact] = (type(exc).__name__, began, time.monotonic() - began)
                else:
                    outcomes[contact] = ("ok", began, time.monotonic() - began)

            start = time.monotonic()
            period = 60 / (load * limit)
            tasks = []
            for i, contact in enumerate(contacts):
                await asyncio.sleep(max(0.0, start + i * period - time.monotonic()))
                tasks.append(asyncio.ensure_future(call(contact)))
            end = time.monotonic()
            await asyncio.gather(*tasks)
            stats = client.rate_limit_stats()
            fleet = await client.rate_limit_fleet_stats()
        await asyncio.sleep(LATENCY + 1.0)  # the fake finishes what it was sent
        applied = [r for r in fake.requests if r.status is not None and 200 <= r.status < 300]
        in_window = [r for r in applied if start + spec["warmup"] <= r.time < end]
        minutes = (end - start - spec["warmup"]) / 60
        applied_ids = {r.path_params.get("contact_id") for r in applied}
        failed = {c for c, (kind, _, _) in outcomes.items() if kind != "ok"}
        refusals = [took for kind, _, took in outcomes.values() if kind == "refused"]
        sent = len(transport.sent)
        assert stats is not None
        assert base is not None
        if fleet is not None and fleet_base is not None:
            booked = fleet.acquired - fleet_base.acquired
            given = getattr(fleet, "given_back", 0) - getattr(fleet_base, "given_back", 0)
        else:
            booked = stats.acquired - base.acquired
            given = getattr(stats, "given_back", 0) - getattr(base, "given_back", 0)
        kinds: dict[str, int] = {}
        for kind, _, _ in outcomes.values():
            kinds[kind] = kinds.get(kind, 0) + 1
        return {
            "upstream": len(in_window) / minutes / limit,
            "applied_but_failed": len(applied_ids & failed),
            "below_floor": sum(1 for _, t in transport.sent if t is not None and t < FLOOR),
            "booked": booked,
            "sent": sent,
            "given_back": given,
            "wasted": booked - sent - given,
            "refusal_p50": _percentile(refusals, 0.5),
            "refusal_p99": _percentile(refusals, 0.99),
            "rate_limited": sum(1 for r in fake.requests if r.status == 429),
            "calls": len(outcomes),
            "kinds": kinds,
            "outages": outages.count,
        }


class _Outages(logging.Handler):
    """Counts the "Redis is unavailable" warnings (a slow server on a busy machine)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "unavailable" in record.getMessage():
            self.count += 1


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def worker(spec_json: str) -> None:
    """Run one load and print its figures as JSON (the last line)."""
    result = asyncio.run(_run(json.loads(spec_json)))
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------- the driver


def _quick() -> bool:
    return bool(os.environ.get("INVENT_BENCH_QUICK"))


def _spawn(spec: dict[str, Any], tree: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([tree, *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "worker", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=spec["duration"] + 120,
        check=False,
        cwd="/" if tree is not None else None,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _line(label: str, r: dict[str, Any]) -> str:
    return (
        f"RESULT overload {label:<34} upstream/limit {r['upstream']:.3f} (target >= 0.95)  "
        f"applied-but-failed {r['applied_but_failed']} (target 0)  "
        f"sent<floor {r['below_floor']} (target 0)  "
        f"wasted {r['wasted']} of {r['booked']} booked (given back {r['given_back']})  "
        f"refusal p50/p99 {r['refusal_p50'] * 1000:.1f}/{r['refusal_p99'] * 1000:.1f} ms  "
        f"429 {r['rate_limited']}  Redis outages {r['outages']}  calls {r['kinds']}"
    )


def main(argv: list[str]) -> None:
    if argv[:1] == ["worker"]:
        worker(argv[1])
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._valkey import start

    quick = _quick()
    limit = 6000.0 if quick else LIMIT
    duration = float(os.environ.get("INVENT_BENCH_OVERLOAD_SECONDS", 20.0 if quick else DURATION))
    warmup = 8.0 if quick else WARMUP
    baseline = os.environ.get("INVENT_BENCH_BASELINE")
    print(
        f"# open-loop add_segment at k x {limit:g}/min, deadline={DEADLINE:g} s, fake latency "
        f"{LATENCY * 1000:g} ms; {duration:g} s of arrivals, figures from {warmup:g} s in"
        + ("" if baseline is None else f"; baseline: {baseline}"),
        flush=True,
    )
    server = start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        for where in ("in-process", "redis"):
            for load in LOADS:
                trees: list[tuple[str, str | None]] = [("this", None)]
                if baseline is not None:
                    trees.append(("baseline", baseline))
                for tag, tree in trees:
                    spec = {
                        "limit": limit,
                        "load": load,
                        "duration": duration,
                        "warmup": warmup,
                        "redis": url if where == "redis" else None,
                        "name": f"overload-{where}-{load:g}-{tag}-{time.time_ns()}",
                    }
                    r = _spawn(spec, tree)
                    print(_line(f"{where} {load:g}x {tag}", r), flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main(sys.argv[1:])
