"""Big inputs at memory speed (#23 item 7): the client CPU a million ids cost, beyond requests.

1. Plan (target <= 1.5 s of client CPU): ``invent segments sync sg_1 --ids FILE --dry-run``
   with a file of 1,000,000 ids (100,000 with ``--quick``), against a FakeInvent in a process
   of its own (its CPU is not the client's), in a process of its own each time: the CPU of
   that process (``RUSAGE_CHILDREN``), start-up included. Interleaved with two baselines of
   the same round: plain Python reading and counting the file's ids (what the plan cannot
   beat), and ``invent --version`` (the command's start-up, imports included). Printed: the
   plan's CPU, and its CPU beyond start-up per id.
2. Classification against a membership (no target: the plan above reads an empty segment):
   the run's and the dry run's per-id work (``InputClassifier.verdicts`` then
   ``Precheck.reasons``, in batches as a sync makes them) of 1,000,000 input ids against a
   table of 1,000,000 members holding 90% of them, in this process: CPU per id.
3. Bulk job per item (target <= 3 us beyond the request itself): ``bulk_add_segment`` over
   250,000 ids (50,000 with ``--quick``) with an in-memory transport that answers at once,
   interleaved with its baseline, the request itself: the same requests (the same bulk
   pipeline's ``send``, as the job's workers call it) from a plain pool of as many workers.
   Printed per round pair: the job's CPU per item minus the baseline's. Twice: ids from a
   list, and from the CLI's file reader (``BackgroundIds`` over a 64 KiB-block file reader).

``python -m benchmarks.bench_inputs [plan|classify|bulk]`` runs one part.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from benchmarks._fake import API_KEY as FAKE_KEY
from benchmarks._interleave import Spread, quick, rounds
from invent_async import AsyncInventClient, RawResponse, TransportRequest
from invent_async._jobs.engine import DEFAULT_MAX_RETRIES, Precheck
from invent_async._jobs.segment_sync_plan import InputClassifier, MemberTable
from invent_async._pipeline import CallStats
from invent_async.cli._ids import BackgroundIds, line_id_batches
from invent_async.resources.contacts import ADD_SEGMENT

N_PLAN = 100_000 if quick() else 1_000_000
N_BULK = 50_000 if quick() else 250_000
CONCURRENCY = 32
PLAN_TARGET_S = 1.5
BULK_TARGET_US = 3.0
KEY = "bench-inputs-key"
_CONTACT = (
    b'{"id":"ct_1","name":null,"blocked":false,"is_admin":false,"channels":[],'
    b'"segments":[],"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}'
)
_COUNT = """
import sys
with open(sys.argv[1], "rb") as f:
    print(sum(1 for line in f if line.strip()))
"""


def _child_cpu(argv: list[str], env: dict[str, str]) -> float:
    """The CPU seconds (user + system) of a child process run to its end (checked)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, env=env, capture_output=True, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@asynccontextmanager
async def _fake_process() -> AsyncIterator[str]:
    """A FakeInvent in a process of its own (``benchmarks._fake``): its URL."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks._fake",
        "--seed-segments",
        "1",
        "--max-seconds",
        "900",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode()
        assert line.startswith("URL "), line
        yield line.split()[1]
    finally:
        assert child.stdin is not None
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)


def plan() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-inputs-") as scratch:
        ids = Path(scratch) / "ids.txt"
        ids.write_text("".join(f"ct_{n:07d}\n" for n in range(N_PLAN)), encoding="ascii")

        async def measure() -> dict[str, list[float]]:
            async with _fake_process() as url:
                env = {**os.environ, "INVENT_API_KEY": FAKE_KEY, "INVENT_BASE_URL": url}
                invent = [sys.executable, "-m", "invent_async.cli"]
                sides = {
                    "count": [sys.executable, "-c", _COUNT, str(ids)],
                    "start-up": [*invent, "--version"],
                    "plan": [*invent, "segments", "sync", "sg_1", "--ids", str(ids), "--dry-run"],
                }
                cpu: dict[str, list[float]] = {name: [] for name in sides}
                order = list(sides)
                for n in range(rounds(7, 3)):
                    for name in order[n % 3 :] + order[: n % 3]:
                        cpu[name].append(await asyncio.to_thread(_child_cpu, sides[name], env))
                return cpu

        cpu = asyncio.run(measure())
    plan_s, count_s, start_s = Spread(tuple(cpu["plan"])), cpu["count"], cpu["start-up"]
    beyond = Spread(
        tuple((p - s) / N_PLAN * 1e6 for p, s in zip(cpu["plan"], start_s, strict=True))
    )
    ratio = Spread(tuple(p / c for p, c in zip(cpu["plan"], count_s, strict=True)))
    print(
        f"plan of {N_PLAN:,} ids (empty segment, FakeInvent in its own process): client CPU "
        f"{plan_s.show('.2f')} s; reading and counting the file in plain Python "
        f"{statistics.median(count_s):.2f} s, the command's start-up "
        f"{statistics.median(start_s):.2f} s; plan / plain count {ratio.show('.1f')}x; "
        f"beyond start-up {beyond.show('.2f')} us an id"
    )
    scale = 1_000_000 / N_PLAN
    print(
        f"RESULT plan_1m_ids_client_cpu_s={plan_s.median:.2f} "
        f"(target <= {PLAN_TARGET_S}{'; --quick: ' + str(N_PLAN) + ' ids' if scale != 1 else ''})"
    )


def classify() -> None:
    members = N_PLAN
    table = MemberTable(members + members // 64 + 1, members * 11)
    for n in range(members):
        table.add(f"ct_{n:07d}")
    keep = members - members // 10
    inputs = [f"ct_{n:07d}" for n in range(keep)] + [
        f"ct_{n:07d}" for n in range(members, members + members // 10)
    ]
    batches = [inputs[i : i + 4096] for i in range(0, len(inputs), 4096)]
    per_id: list[float] = []
    for _ in range(rounds(5, 2)):
        classifier, precheck = InputClassifier(table, keep_others=False), Precheck(len(inputs))
        start = time.process_time()
        to_add = 0
        for batch in batches:
            codes = classifier.verdicts(batch)
            added = [i for i, code in zip(batch, codes, strict=True) if not code]
            to_add += len(added) - sum(precheck.reasons(added))
        per_id.append((time.process_time() - start) / len(inputs) * 1e6)
        assert to_add == members // 10, to_add
    print(
        f"classification of {len(inputs):,} ids against {members:,} members (90% of them "
        f"members): {Spread(tuple(per_id)).show('.2f')} us of CPU an id"
    )
    print(f"RESULT classify_cpu_us_per_id={statistics.median(per_id):.2f} (no target)")


class _Answer:
    """An in-memory transport: every request answered 200 at once, nothing recorded."""

    def __init__(self) -> None:
        self._ok = RawResponse(
            status=200, reason="", headers={"content-type": "application/json"}, body=_CONTACT
        )

    async def send(
        self, request: TransportRequest, *, attempt_timeout: float | None
    ) -> RawResponse:
        return self._ok

    async def aclose(self) -> None:
        return None


async def _requests_alone(client: AsyncInventClient, ids: list[str]) -> float:
    """The baseline: each id's request, as the job's workers send it, from a plain pool."""
    pipeline = client.contacts._pipeline
    bulk = pipeline.with_options(pipeline.options.for_bulk(DEFAULT_MAX_RETRIES))
    prefix = bulk.prefix
    remaining = iter(ids)

    async def worker() -> None:
        for contact_id in remaining:
            await bulk.send(ADD_SEGMENT.request(prefix, contact_id, "sg_1"), CallStats())

    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.process_time() - start


async def _job(client: AsyncInventClient, source: Callable[[], Awaitable[object]]) -> float:
    start = time.process_time()
    await source()
    return time.process_time() - start


def bulk() -> None:
    ids = [f"ct_{n:07d}" for n in range(N_BULK)]
    with tempfile.TemporaryDirectory(prefix="bench-inputs-") as scratch:
        path = Path(scratch) / "ids.txt"
        path.write_text("".join(f"{i}\n" for i in ids), encoding="ascii")

        async def measure() -> dict[str, list[float]]:
            extra: dict[str, list[float]] = {"list": [], "file": []}
            async with AsyncInventClient(KEY, transport=_Answer(), rate_limit=None) as client:

                async def from_list() -> object:
                    return await client.contacts.bulk_add_segment(
                        ids, "sg_1", concurrency=CONCURRENCY
                    )

                async def from_file() -> object:
                    with path.open("rb") as stream:
                        reader = BackgroundIds(line_id_batches(stream, name="ids"))
                        try:
                            return await client.contacts.bulk_add_segment(
                                reader, "sg_1", concurrency=CONCURRENCY, total=N_BULK
                            )
                        finally:
                            reader.close()

                await _requests_alone(client, ids[:5000])  # warm-up
                await from_list()
                jobs: dict[str, Callable[[], Awaitable[object]]] = {
                    "list": from_list,
                    "file": from_file,
                }
                for n in range(rounds(3, 1)):
                    for name, job in jobs.items():
                        if n % 2:
                            base = await _requests_alone(client, ids)
                            cpu = await _job(client, job)
                        else:
                            cpu = await _job(client, job)
                            base = await _requests_alone(client, ids)
                        extra[name].append((cpu - base) / N_BULK * 1e6)
            return extra

        extra = asyncio.run(measure())
    for name, what in (("list", "ids from a list"), ("file", "ids from the CLI's file reader")):
        spread = Spread(tuple(extra[name]))
        print(
            f"bulk job of {N_BULK:,} ids ({what}), in-memory transport: client CPU beyond the "
            f"requests themselves {spread.show('.2f')} us an item"
        )
        print(
            f"RESULT bulk_{name}_extra_cpu_us_per_item={spread.median:.2f} "
            f"(target <= {BULK_TARGET_US})"
        )


def main(argv: Iterable[str]) -> None:
    parts = [a for a in argv if not a.startswith("-")] or ["plan", "classify", "bulk"]
    for part in parts:
        {"plan": plan, "classify": classify, "bulk": bulk}[part]()


if __name__ == "__main__":
    main(sys.argv[1:])
