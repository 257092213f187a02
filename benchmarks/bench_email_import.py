"""Importing emails into a segment (#22): requests, client CPU per row, memory, the dry run.

1. ``requests``: 100,000 email rows into a segment with ``contacts.import_contacts`` against a
   FakeInvent in a process of its own (target: at most 11 requests). Printed beside it, the
   way without the import: map each email to its contact by listing the contacts (100 a
   page) and add each one to the segment, one request a contact; and what both take at the
   API's real 500/minute, computed from the requests (the limit is what bounds a job).
2. ``cpu``: the client CPU per row beyond the requests themselves (target <= 5 us): the
   import of 200,000 rows (50,000 with ``--quick``) through an in-memory transport that
   hands back answers prepared before the round (so the transport costs nothing), interleaved
   with its baseline: the same number of requests, with bodies encoded beforehand, sent
   through the same bulk pipeline. Per round pair: (job CPU - baseline CPU) / rows.
3. ``memory``: peak RSS over a baseline for 10,000,000 rows (1,000,000 with ``--quick``)
   streamed from a generator (target <= 50 MB): a child process runs the import through an
   in-memory transport that answers each request from its body (every row created); the
   baseline child imports 10,000 rows the same way. Printed: the peak RSS of each (Linux's
   ``VmHWM``: ``ru_maxrss`` would keep the benchmark's own peak across fork and exec) and
   the difference.
4. ``dry``: the dry run of 1,000,000 rows (100,000 with ``--quick``) against a FakeInvent in
   a process of its own: wall time, requests, the client's CPU.

``python -m benchmarks.bench_email_import [requests|cpu|memory|dry]`` runs some parts.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Final

from benchmarks._fake import API_KEY as FAKE_KEY
from benchmarks._interleave import Spread, quick, rounds
from benchmarks.bench_inputs import _fake_process
from invent_async import AsyncInventClient, ImportPlan, RateLimit, RawResponse, TransportRequest
from invent_async._converter import dumps
from invent_async._pipeline import CallStats
from invent_async.resources._contact_import import IMPORT_BATCH

N_REQUESTS: Final = 100_000
N_CPU: Final = 50_000 if quick() else 200_000
N_MEMORY: Final = 1_000_000 if quick() else 10_000_000
N_DRY: Final = 100_000 if quick() else 1_000_000
REAL_RATE: Final = 500
REQUEST_TARGET: Final = 11
CPU_TARGET_US: Final = 5.0
MEMORY_TARGET_MB: Final = 50.0
KEY: Final = "bench-import-key"
_HEADERS: Final = {"content-type": "application/json"}


def emails(n: int) -> Iterator[str]:
    return (f"first.last{i}@example.com" for i in range(n))


def hours(requests: int) -> str:
    seconds = requests * 60 / REAL_RATE
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds:.1f} s"


# --------------------------------------------------------------------------- 1. requests


def requests_part() -> None:
    async def run() -> tuple[int, int, float]:
        async with (
            _fake_process() as url,
            AsyncInventClient(
                FAKE_KEY, base_url=url, rate_limit=RateLimit(per_minute=1_000_000, burst=1_000)
            ) as client,
        ):
            segment = await client.segments.create("Imported")
            start = time.perf_counter()
            report = await client.contacts.import_contacts(
                emails(N_REQUESTS), segment_id=segment.id
            )
            wall = time.perf_counter() - start
            assert report.ok, report
            assert report.created == N_REQUESTS, report
            members = 0
            async for _ in client.contacts.list(segment_id=segment.id):
                members += 1
            assert members == N_REQUESTS, members
            return report.requests, members, wall

    sent, members, wall = asyncio.run(run())
    per_contact = math.ceil(N_REQUESTS / 100) + N_REQUESTS  # list to map emails, then adds
    print(
        f"import of {N_REQUESTS:,} emails into a segment: {sent} requests ({members:,} members "
        f"after), {wall:.1f} s against the fake; at {REAL_RATE}/minute {hours(sent)} of budget"
    )
    print(
        f"  without the import (list the contacts to map emails to ids, then one add each): "
        f"{per_contact:,} requests, {hours(per_contact)} at {REAL_RATE}/minute "
        f"({per_contact / sent:,.0f}x the requests)"
    )
    print(f"RESULT import_requests_100k={sent} (target <= {REQUEST_TARGET})")


# --------------------------------------------------------------------------- 2. cpu


class _Prepared:
    """An in-memory transport answering the n-th request with the n-th prepared answer."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.sent = 0

    async def send(
        self, request: TransportRequest, *, attempt_timeout: float | None
    ) -> RawResponse:
        body = self.answers[self.sent % len(self.answers)]
        self.sent += 1
        return RawResponse(status=200, reason="OK", headers=_HEADERS, body=body)

    async def aclose(self) -> None:
        return None


def _answers(rows: list[str], size: int) -> list[bytes]:
    """The answers the import of ``rows`` gets: every row created, ``size`` a request."""
    out = []
    for start in range(0, len(rows), size):
        created = [
            {"type": "email", "email": e, "contact_id": f"ct_{start + i}"}
            for i, e in enumerate(rows[start : start + size])
        ]
        out.append(dumps({"created": created, "updated": [], "invalid": []}))
    return out


def cpu_part() -> None:
    rows = list(emails(N_CPU))
    size = 10_000
    answers = _answers(rows, size)
    bodies = [
        dumps({"channels": [{"type": "email", "email": e} for e in rows[s : s + size]]})
        for s in range(0, len(rows), size)
    ]

    async def measure() -> list[float]:
        transport = _Prepared(answers)
        async with AsyncInventClient(KEY, transport=transport, rate_limit=None) as client:
            pipeline = client.contacts._pipeline
            bulk = pipeline.with_options(pipeline.options.for_bulk(8))
            prefix = bulk.prefix

            async def requests_alone() -> float:
                transport.sent = 0
                start = time.process_time()
                for body in bodies:
                    await bulk.send(IMPORT_BATCH.request(prefix, body=body), CallStats())
                return time.process_time() - start

            async def job() -> float:
                transport.sent = 0
                start = time.process_time()
                report = await client.contacts.import_contacts(rows, concurrency=1)
                spent = time.process_time() - start
                assert report.created == N_CPU, report
                return spent

            await job()  # warm-up
            extra = []
            for n in range(rounds(7, 2)):
                if n % 2:
                    base, cpu = await requests_alone(), await job()
                else:
                    cpu, base = await job(), await requests_alone()
                extra.append((cpu - base) / N_CPU * 1e6)
            return extra

    spread = Spread(tuple(asyncio.run(measure())))
    print(
        f"import of {N_CPU:,} email rows, in-memory transport with prepared answers: client "
        f"CPU beyond the requests themselves {spread.show('.2f')} us a row"
    )
    print(f"RESULT import_cpu_us_per_row={spread.median:.2f} (target <= {CPU_TARGET_US})")


# --------------------------------------------------------------------------- 3. memory

_MEMORY_CHILD: Final = """
import asyncio, resource, sys
from invent_async import AsyncInventClient, RawResponse
from invent_async._converter import dumps, loads

class Echo:
    async def send(self, request, *, attempt_timeout):
        rows = loads(request.body)["channels"]
        body = dumps({"created": rows, "updated": [], "invalid": []})
        return RawResponse(status=200, reason="OK", headers={}, body=body)
    async def aclose(self):
        pass

async def main(n):
    rows = (f"first.last{i}@example.com" for i in range(n))
    async with AsyncInventClient("k", transport=Echo(), rate_limit=None) as client:
        report = await client.contacts.import_contacts(rows, segment_id="sg_1")
    assert report.created == n, report

asyncio.run(main(int(sys.argv[1])))
try:  # this process's own peak: ru_maxrss keeps the parent's across fork and exec
    with open("/proc/self/status") as status:
        print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_kb(n: int) -> tuple[int, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(n)],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return int(done.stdout.split()[-1]), time.perf_counter() - start


def memory_part() -> None:
    peaks: list[float] = []
    base_kb = rows_kb = 0
    wall = 0.0
    for _ in range(rounds(2, 1)):
        base_kb, _ = _peak_rss_kb(10_000)
        rows_kb, wall = _peak_rss_kb(N_MEMORY)
        peaks.append((rows_kb - base_kb) / 1024)
    spread = Spread(tuple(peaks))
    print(
        f"import of {N_MEMORY:,} rows streamed from a generator (in-memory echo transport, "
        f"{wall:.0f} s): peak RSS {rows_kb / 1024:.0f} MB against {base_kb / 1024:.0f} MB for "
        f"10,000 rows: {spread.show('.1f')} MB over the baseline"
    )
    print(f"RESULT import_peak_rss_over_baseline_mb={spread.median:.1f} (target <= 50)")


# --------------------------------------------------------------------------- 4. dry run


def dry_part() -> None:
    async def run() -> tuple[ImportPlan, float, float]:
        async with (
            _fake_process() as url,
            AsyncInventClient(
                FAKE_KEY, base_url=url, rate_limit=RateLimit(per_minute=1_000_000, burst=1_000)
            ) as client,
        ):
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            plan = await client.contacts.import_contacts(emails(N_DRY), dry_run=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            return plan, wall, cpu

    plan, wall, cpu = asyncio.run(run())
    assert plan.created == N_DRY, plan
    print(
        f"dry run of {N_DRY:,} rows against the fake: {plan.requests} requests, {wall:.1f} s "
        f"wall ({cpu:.1f} s of client CPU, {cpu / N_DRY * 1e6:.2f} us a row; the rest is the "
        f"fake's work); at {REAL_RATE}/minute the requests take {hours(plan.requests)}"
    )
    print(f"RESULT import_dry_run_requests={plan.requests} wall_s={wall:.1f}")
    print(json.dumps({"plan": str(plan)}))


def main(argv: Iterable[str]) -> None:
    parts = {"requests": requests_part, "cpu": cpu_part, "memory": memory_part, "dry": dry_part}
    chosen = [a for a in argv if a in parts] or list(parts)
    for part in chosen:
        parts[part]()


if __name__ == "__main__":
    main(sys.argv[1:])
