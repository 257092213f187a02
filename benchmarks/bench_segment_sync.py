"""Segment sync benchmarks, each printing comparable figures on ``RESULT`` lines.

1. Throttled: 100,000 input ids against a segment that holds 90,000 of them and 5,000 others
   (95,000 members), on FakeInvent limited to R = 60,000 requests/minute over a 1-second
   sliding window (the real 500/minute/60 s limit, scaled 120x in time), the client's
   governor set to R. Three jobs on the same data, each on a fresh fake: ``bulk_add_segment``
   of every id (the baseline), ``sync_segment`` (add the missing) and ``sync_segment(...,
   remove_others=True)`` (exact). Printed: requests sent and wall time of each, their ratio to
   the baseline's, and wall time against the ideal (requests / R), plus the final member
   count read back from the fake.
2. Memory: a segment of 1,000,000 members and 1,000,000 input ids (900,000 of them members)
   through ``sync_segment(..., remove_others=True)`` end to end (10,000 membership pages,
   100,000 adds, 100,000 removals) over an in-memory transport; peak RSS over the baseline,
   in its own process, and the bytes the member table itself holds.

``python -m benchmarks.bench_segment_sync [throttled|memory]`` runs one part (``nox -s bench
-- segment_sync`` both).
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import orjson

from benchmarks._interleave import quick
from benchmarks._server import running
from invent_async import (
    AsyncInventClient,
    RateLimit,
    RawResponse,
    SegmentSyncProgress,
    SegmentSyncReport,
    TransportRequest,
)

_SCALE = 10 if quick() else 1  # --quick: a tenth of the ids and members
N = 100_000 // _SCALE  # input ids: ct_1 .. ct_100000
MEMBERS_FROM = 10_000 // _SCALE + 1  # the segment holds ct_10001 .. ct_105000
MEMBERS_TO = 105_000 // _SCALE
RATE = 60_000.0  # per minute
WINDOW = 1.0  # seconds
KEY = "bench-sync-key"
CONCURRENCY = 64


# --------------------------------------------------------------------------- throttled


def _fake_args() -> tuple[str, ...]:
    return (
        "--api-key", KEY,
        "--seed-contacts", str(MEMBERS_TO),
        "--seed-segments", "1",
        "--seed-members", f"{MEMBERS_FROM}:{MEMBERS_TO}",
        "--rpm", str(RATE),
        "--rpm-window", str(WINDOW),
        "--retry-after-precision", "3",
    )  # fmt: skip


async def _member_count(url: str) -> int:
    async with AsyncInventClient(KEY, base_url=url, rate_limit=None) as client:
        segment = await client.with_options(max_retries=10).segments.get("sg_1")
        return segment.contacts_count


def _ids() -> list[str]:
    return [f"ct_{n}" for n in range(1, N + 1)]


async def bulk_job(url: str) -> dict[str, float]:
    async with AsyncInventClient(KEY, base_url=url, rate_limit=RateLimit(per_minute=RATE)) as c:
        start = time.perf_counter()
        report = await c.contacts.bulk_add_segment(_ids(), "sg_1", concurrency=CONCURRENCY)
        elapsed = time.perf_counter() - start
    return {"requests": report.total + report.retries, "elapsed": elapsed, "read": 0.0}


async def sync_job(url: str, *, exact: bool) -> dict[str, float]:
    phases: dict[str, float] = {}

    def progress(p: SegmentSyncProgress) -> None:
        phases.setdefault(p.phase, time.perf_counter())

    async with AsyncInventClient(KEY, base_url=url, rate_limit=RateLimit(per_minute=RATE)) as c:
        start = time.perf_counter()
        report: SegmentSyncReport = await c.contacts.sync_segment(
            "sg_1", _ids(), remove_others=exact, concurrency=CONCURRENCY, on_progress=progress
        )
        elapsed = time.perf_counter() - start
    assert report.ok, report
    return {
        "requests": report.requests_sent,
        "elapsed": elapsed,
        "read": phases.get("adding", start) - start,  # the membership read
        "reads": report.read_requests,
        "added": report.added,
        "removed": report.removed,
        "unchanged": report.unchanged,
    }


def throttled() -> None:
    jobs = {
        "bulk_add_segment": (bulk_job, MEMBERS_TO),
        "sync_segment": (lambda url: sync_job(url, exact=False), MEMBERS_TO),
        "sync_segment_exact": (lambda url: sync_job(url, exact=True), N),
    }
    results: dict[str, dict[str, float]] = {}
    for name, (job, expected) in jobs.items():
        with running("invent_async.testing", *_fake_args()) as url:
            time.sleep(WINDOW)  # the window starts empty
            result = asyncio.run(job(url))
            result["members"] = asyncio.run(_member_count(url))
        result["expected"] = expected
        results[name] = result
    base = results["bulk_add_segment"]
    for name, r in results.items():
        ideal = r["requests"] / (RATE / 60)
        detail = ""
        if "reads" in r:
            detail = (
                f" ({int(r['reads'])} membership reads in {r['read']:.2f}s, "
                f"{int(r['added'])} added, {int(r['removed'])} removed, "
                f"{int(r['unchanged'])} unchanged)"
            )
        check = "OK" if r["members"] == r["expected"] else "MISMATCH"
        print(
            f"{name:18}: {int(r['requests']):6} requests, {r['elapsed']:6.2f}s "
            f"= {r['elapsed'] / ideal:.3f} x ideal ({ideal:.2f}s at {RATE:,.0f}/min){detail}; "
            f"{int(r['members'])} members after, {int(r['expected'])} expected: {check}",
            flush=True,
        )
        print(
            f"RESULT segment_sync {name} requests={int(r['requests'])} "
            f"wall_s={r['elapsed']:.2f} requests_vs_bulk={r['requests'] / base['requests']:.4f} "
            f"wall_vs_bulk={r['elapsed'] / base['elapsed']:.4f} "
            f"wall_vs_ideal={r['elapsed'] / ideal:.3f} members_check={check}",
            flush=True,
        )
    real = 500 / 60
    print(
        "at the real 500/min: bulk_add_segment "
        f"{base['requests'] / real / 3600:.1f} h, sync_segment "
        f"{results['sync_segment']['requests'] / real / 3600:.2f} h, exact "
        f"{results['sync_segment_exact']['requests'] / real / 3600:.2f} h",
        flush=True,
    )


# --------------------------------------------------------------------------- memory


class _SegmentTransport:
    """An in-memory API: the membership of a million, every write answered at once.

    Nothing is recorded (a MockTransport keeps every request), so the process holds only
    what the sync itself keeps.
    """

    def __init__(self, members: int) -> None:
        self.members = members
        self._ok = RawResponse(
            status=200, reason="", headers={"content-type": "application/json"}, body=b"{}"
        )

    async def send(
        self, request: TransportRequest, *, attempt_timeout: float | None
    ) -> RawResponse:
        if request.method != "GET":
            return self._ok
        query = parse_qs(urlsplit(request.url).query)
        page, take = int(query["page"][0]), int(query["take"][0])
        first = (page - 1) * take
        stamp = "2026-01-01T00:00:00Z"
        items: list[dict[str, object]] = [
            {
                "id": f"ct_{n:07d}",
                "name": None,
                "blocked": False,
                "is_admin": False,
                "channels": [],
                "segments": [],
                "created_at": stamp,
                "updated_at": stamp,
            }
            for n in range(first, min(first + take, self.members))
        ]
        headers = {
            "content-type": "application/json",
            "pagination-count": str(self.members),
            "pagination-page": str(page),
            "pagination-take": str(take),
        }
        return RawResponse(status=200, reason="", headers=headers, body=orjson.dumps(items))

    async def aclose(self) -> None:
        return None


def _rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _input(members: int) -> Iterator[str]:
    """A million input ids: the members but the last 100,000, then 100,000 new ones."""
    keep = members - members // 10
    for n in range(keep):
        yield f"ct_{n:07d}"
    for n in range(members, members + members // 10):
        yield f"ct_{n:07d}"


async def _memory_job(members: int) -> dict[str, float]:
    transport = _SegmentTransport(2000)  # the warm-up: a small segment (peak RSS only grows)
    async with AsyncInventClient(KEY, transport=transport, rate_limit=None) as client:
        await client.contacts.sync_segment("sg_1", _input(2000), remove_others=True)
        transport.members = members
        gc.collect()
        baseline = _rss_kib("VmRSS")
        start = time.perf_counter()
        report = await client.contacts.sync_segment(
            "sg_1", _input(members), remove_others=True, concurrency=CONCURRENCY
        )
        elapsed = time.perf_counter() - start
        peak = _rss_kib("VmHWM")
        plan = await client.contacts.sync_segment("sg_1", (), remove_others=True, dry_run=True)
    table = plan.snapshot
    assert table is not None
    return {
        "baseline_mib": baseline / 1024,
        "peak_mib": peak / 1024,
        "over_mib": (peak - baseline) / 1024,
        "table_mib": table.nbytes() / 2**20,
        "elapsed": elapsed,
        "added": report.added,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "requests": report.requests_sent,
    }


def memory_child(members: int) -> None:
    print("MEM " + json.dumps(asyncio.run(_memory_job(members))), flush=True)


def memory(members: int = 1_000_000 // _SCALE) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_segment_sync", "memory-child", str(members)],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("MEM "))
    r = json.loads(line[4:])
    print(
        f"memory: {members:,} members + {members:,} input ids, exact sync in "
        f"{r['elapsed']:.0f}s ({r['added']:,} added, {r['removed']:,} removed, "
        f"{r['unchanged']:,} unchanged, {r['requests']:,} requests); RSS baseline "
        f"{r['baseline_mib']:.1f} MiB, peak {r['peak_mib']:.1f} MiB; the member table "
        f"(blob, offsets, index) holds {r['table_mib']:.1f} MiB of it"
    )
    print(
        f"RESULT segment_sync_memory_peak_over_baseline_mib={r['over_mib']:.1f} "
        f"member_table_mib={r['table_mib']:.1f} (limit 64)"
    )


def main(argv: list[str]) -> None:
    parts = argv or ["throttled", "memory"]
    if parts[0] == "memory-child":
        memory_child(int(parts[1]))
        return
    for part in parts:
        {"throttled": throttled, "memory": memory}[part]()


if __name__ == "__main__":
    main(sys.argv[1:])
