"""``python -m invent_async.testing``: run a standalone FakeInvent until told to stop.

Prints ``URL http://127.0.0.1:<port>`` on one line once listening, then serves until SIGTERM,
SIGINT or ``--max-seconds`` have passed (exit status 0). Seeded contacts are ``ct_1 .. ct_N``,
seeded segments ``sg_1 .. sg_N``; ``--print-stats`` adds a ``STATS <json>`` line at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

import attrs

from . import FakeInvent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m invent_async.testing",
        description="Run an in-memory fake of the Invent API on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument("--api-key", default="test-key", help="accepted bearer token")
    parser.add_argument(
        "--seed-contacts", type=int, default=0, metavar="N", help="create ct_1 .. ct_N in org c"
    )
    parser.add_argument(
        "--seed-segments", type=int, default=0, metavar="N", help="create sg_1 .. sg_N in org c"
    )
    parser.add_argument(
        "--rpm", type=float, default=None, metavar="R", help="rate limit (requests per minute)"
    )
    parser.add_argument(
        "--rpm-window",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="sliding window of the rate limit (default 60; 1 scales the limit 60x in time)",
    )
    parser.add_argument(
        "--retry-after-precision",
        type=int,
        default=0,
        metavar="DIGITS",
        help="decimals in Retry-After answers of the rate limiter (default 0: whole seconds)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to responses")
    parser.add_argument(
        "--record", action="store_true", help="record requests (off by default: saves memory)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="exit after this long (default 600)"
    )
    parser.add_argument(
        "--print-stats",
        action="store_true",
        help="on exit, print one line 'STATS <json>' with the traffic counters",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    fake = FakeInvent(
        api_key=args.api_key,
        rate_limit_per_minute=args.rpm,
        rate_limit_window=args.rpm_window,
        retry_after_precision=args.retry_after_precision,
        latency=args.latency,
        record=args.record,
        port=args.port,
    )
    for i in range(args.seed_segments):
        fake.add_segment(f"Segment {i + 1}")
    if args.seed_contacts:
        fake.add_contacts(args.seed_contacts)
    async with fake:
        print(f"URL {fake.url}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.max_seconds)
    if args.print_stats:
        stats = fake.stats
        fields = attrs.asdict(stats)
        fields["by_status"] = {str(k): v for k, v in stats.by_status.items()}
        print(f"STATS {json.dumps(fields, sort_keys=True)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve; returns the exit status."""
    args = _parser().parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
