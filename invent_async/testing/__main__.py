"""``python -m invent_async.testing``: run a standalone FakeInvent until told to stop.

Prints ``URL http://127.0.0.1:<port>`` as its first line once listening (scripts read it),
then the ``export INVENT_BASE_URL=...`` and ``export INVENT_API_KEY=...`` lines that point the
SDK and the ``invent`` CLI at it, ready to paste into another shell, and when it will stop.
It serves until SIGTERM, SIGINT (Ctrl-C) or ``--max-seconds`` have passed, says which on
standard error, and exits with status 0. Seeded contacts are ``ct_1 .. ct_N``, seeded
segments ``sg_1 .. sg_N`` (``--seed-members A:B`` puts ``ct_A .. ct_B`` into each);
``--print-stats`` adds a ``STATS <json>`` line at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys
from typing import Final

import attrs

from . import FakeInvent

DEFAULT_KEY: Final = "test-key"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m invent_async.testing",
        description=(
            "Run an in-memory fake of the Invent API on 127.0.0.1. It accepts one API key "
            "(--api-key, default test-key) and prints the lines that point the SDK and the "
            "invent CLI at it."
        ),
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--api-key",
        default=DEFAULT_KEY,
        help=f"the API key the fake accepts; any other is answered 401 (default: {DEFAULT_KEY})",
    )
    parser.add_argument(
        "--seed-contacts", type=int, default=0, metavar="N", help="create ct_1 .. ct_N in org c"
    )
    parser.add_argument(
        "--seed-segments", type=int, default=0, metavar="N", help="create sg_1 .. sg_N in org c"
    )
    parser.add_argument(
        "--seed-members",
        default=None,
        metavar="FIRST:LAST",
        help="put contacts ct_FIRST .. ct_LAST into every seeded segment",
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
        "--max-seconds",
        type=float,
        default=600.0,
        help="stop by itself after this many seconds (default 600), so it is never left running",
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
    segments = [fake.add_segment(f"Segment {i + 1}").id for i in range(args.seed_segments)]
    first, last = _member_range(args.seed_members, args.seed_contacts)
    if first > 1:
        fake.add_contacts(min(first - 1, args.seed_contacts))
    if last >= first:
        fake.add_contacts(last - first + 1, segment_ids=segments)
    if args.seed_contacts > max(last, first - 1):
        fake.add_contacts(args.seed_contacts - max(last, first - 1))
    async with fake:
        print(f"URL {fake.url}", flush=True)
        print(
            f"# FakeInvent is listening. To use it from another shell, paste:\n"
            f"export INVENT_BASE_URL={fake.url}\n"
            f"export INVENT_API_KEY={shlex.quote(args.api_key)}\n"
            f"# It stops on Ctrl-C or SIGTERM, or by itself after {args.max_seconds:g} s "
            f"(--max-seconds).",
            flush=True,
        )
        try:
            await asyncio.wait_for(stop.wait(), args.max_seconds)
        except TimeoutError:
            why = f"--max-seconds ({args.max_seconds:g} s) passed; pass more to serve longer"
        else:
            why = "it was told to (Ctrl-C or SIGTERM)"
    print(f"FakeInvent stopped: {why}.", file=sys.stderr, flush=True)
    if args.print_stats:
        stats = fake.stats
        fields = attrs.asdict(stats)
        fields["by_status"] = {str(k): v for k, v in stats.by_status.items()}
        print(f"STATS {json.dumps(fields, sort_keys=True)}", flush=True)


def _member_range(spec: str | None, contacts: int) -> tuple[int, int]:
    """``--seed-members FIRST:LAST`` as (first, last), checked against ``--seed-contacts``;
    (1, 0) (no members) when it is not given."""
    if spec is None:
        return 1, 0
    head, sep, tail = spec.partition(":")
    if not (sep and head.isdigit() and tail.isdigit()):
        raise SystemExit(f"--seed-members: expected FIRST:LAST, got {spec!r}")
    first, last = int(head), int(tail)
    if not 1 <= first <= last <= contacts:
        raise SystemExit(f"--seed-members: {spec} is not within ct_1 .. ct_{contacts}")
    return first, last


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve; returns the exit status."""
    args = _parser().parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
