"""A FakeInvent in a process of its own, driven over stdin, for the fleet benchmarks.

``python -m benchmarks._fake --rpm R --rpm-window W --seed-contacts N --seed-segments S``
binds 127.0.0.1 only, prints ``URL <url>`` once listening, then answers one line per command
read from stdin:

- ``RESET``: forget the requests and counters seen so far and start the limiter's window
  empty (``OK``);
- ``DUMP sg_1 sg_2 ...``: ``DUMP <json>`` with the traffic counters, the members of each
  segment named (in the order they joined) and every request as ``[arrival, status, path]``
  (arrival on ``time.monotonic()``, which is the same clock in every process of the machine).

It exits when stdin closes (the benchmark ended, or died) or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
from typing import Any

import attrs

from invent_async.testing import FakeInvent

API_KEY = "bench-fleet-key"


def _dump(fake: FakeInvent, segments: list[str]) -> dict[str, Any]:
    stats = attrs.asdict(fake.stats)
    stats["by_status"] = {str(k): v for k, v in fake.stats.by_status.items()}
    return {
        "stats": stats,
        "members": {sid: fake.segment_members(sid) for sid in segments},
        "requests": [[r.time, r.status, r.path] for r in fake.requests],
    }


def _command(fake: FakeInvent, rpm: float | None, line: str) -> str:
    words = line.split()
    if not words:
        return "ERR empty"
    if words[0] == "RESET":
        fake.reset_stats()
        fake.clear_requests()
        fake.rate_limit_per_minute = rpm  # a new limiter: its window starts empty
        return "OK"
    if words[0] == "DUMP":
        return "DUMP " + json.dumps(_dump(fake, words[1:]))
    return f"ERR unknown command {words[0]!r}"


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeInvent(
        api_key=API_KEY,
        rate_limit_per_minute=args.rpm,
        rate_limit_window=args.rpm_window,
        retry_after_precision=3,
        record=True,
        port=0,
    )
    for i in range(args.seed_segments):
        fake.add_segment(f"Segment {i + 1}")
    fake.add_contacts(args.seed_contacts)
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def read_commands() -> None:  # a thread: stdin is read blocking
        for line in sys.stdin:
            reply = asyncio.run_coroutine_threadsafe(_answer(line), loop).result()
            print(reply, flush=True)
        loop.call_soon_threadsafe(stdin_closed.set)

    async def _answer(line: str) -> str:
        return _command(fake, args.rpm, line)

    async with fake:
        print(f"URL {fake.url}", flush=True)
        threading.Thread(target=read_commands, daemon=True).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stdin_closed.wait(), args.max_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rpm", type=float, default=None)
    parser.add_argument("--rpm-window", type=float, default=60.0)
    parser.add_argument("--seed-contacts", type=int, default=0)
    parser.add_argument("--seed-segments", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=900)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
