"""The resume journal: complete lines only, written through as ids complete, clear errors.

The crash test kills a real subprocess with SIGKILL in the middle of a job and resumes it
against a second FakeInvent, so that what each run sent is known exactly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from conftest import API_KEY, FAST_RATE
from invent_async import AsyncInventClient, InventError, JournalError, Outcome
from invent_async._jobs.idset import FingerprintSet
from invent_async._jobs.journal import Journal, read_journal
from invent_async.testing import FakeInvent

SUBPROCESS_TIMEOUT: Final = 30.0


def _tagged(fake: FakeInvent) -> list[str]:
    """Contact ids of the add-segment requests ``fake`` received, in arrival order."""
    return [
        r.path_params["contact_id"] for r in fake.requests if r.operation == "addSegmentToContact"
    ]


def _holds(done: FingerprintSet, ids: list[str]) -> bool:
    """Whether ``done`` holds exactly ``ids``."""
    return len(done) == len(ids) and all(i in done for i in ids)


def _journal_lines(path: Path) -> list[str]:
    """The journal's lines; every one of them must be complete (newline-terminated)."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"torn journal: {data[-20:]!r}"
    return data.decode("utf-8").splitlines()


@pytest.mark.parametrize(
    "tail",
    [b"ct_5", b"ct_\xc3"],
    ids=["cut-inside-an-id", "cut-inside-a-utf8-character"],
)
async def test_a_torn_last_line_is_ignored_and_cut_off_before_appending(
    fake: FakeInvent, tmp_path: Path, tail: bytes
) -> None:
    segment = fake.add_segment("VIP")
    fake.add_contacts(60)
    journal = tmp_path / "done.txt"
    journal.write_bytes(b"ct_1\nct_2\n" + tail)  # the process died while writing ct_52 (or ct_é)
    ids = ["ct_1", "ct_2", "ct_5", "ct_52", "ct_6"]

    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        report = await client.contacts.bulk_add_segment(
            ids, segment.id, concurrency=1, journal=journal
        )

    assert (report.succeeded, report.skipped) == (3, 2)
    assert sorted(_tagged(fake)) == ["ct_5", "ct_52", "ct_6"]
    assert sorted(fake.segment_members(segment.id)) == ["ct_5", "ct_52", "ct_6"]
    assert _journal_lines(journal) == ["ct_1", "ct_2", "ct_5", "ct_52", "ct_6"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"ct_1\nct_\xff\xfe\n", "line 2 is not valid UTF-8 text"),
        (None, "cannot read it"),  # a directory where the file should be
    ],
    ids=["not-utf8", "unreadable"],
)
async def test_a_bad_journal_raises_journal_error_before_any_request(
    fake: FakeInvent, tmp_path: Path, content: bytes | None, problem: str
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(3)
    journal = tmp_path / "done.txt"
    if content is None:
        journal.mkdir()
    else:
        journal.write_bytes(content)

    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        with pytest.raises(JournalError) as caught:
            await client.contacts.bulk_add_segment(ids, segment.id, journal=journal)

    assert isinstance(caught.value, InventError)
    assert str(caught.value).startswith(f"journal {journal}: {problem}")
    assert caught.value.path == str(journal)
    assert _tagged(fake) == []
    if content is not None:
        assert journal.read_bytes() == content  # left as it was


async def test_each_completed_id_is_in_the_file_before_its_worker_takes_the_next(
    fake: FakeInvent, tmp_path: Path
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(20)
    journal = tmp_path / "done.txt"
    seen_on_disk: list[list[str]] = []

    def source() -> Iterator[str]:
        for contact_id in ids:
            # read by another file object, as a process resuming after a crash would
            seen_on_disk.append(_journal_lines(journal) if journal.exists() else [])
            yield contact_id

    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        results = [
            r
            async for r in client.contacts.stream_add_segment(
                source(), segment.id, concurrency=1, journal=journal
            )
        ]

    assert all(r.outcome is Outcome.SUCCEEDED for r in results)
    assert seen_on_disk == [ids[:n] for n in range(len(ids))]
    assert _journal_lines(journal) == ids


CRASH_JOB: Final = """
import asyncio, os, sys
from invent_async import AsyncInventClient, RateLimit

async def main() -> None:
    url, journal, concurrency, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ids = [f"ct_{n}" for n in range(1, count + 1)]
    rate = RateLimit(per_minute=1_000_000, burst=1_000)
    async with AsyncInventClient(os.environ["INVENT_API_KEY"], base_url=url, rate_limit=rate) as c:
        await c.contacts.bulk_add_segment(ids, "sg_1", concurrency=concurrency, journal=journal)

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
async def test_after_sigkill_a_resumed_job_resends_at_most_the_ids_in_flight(
    tmp_path: Path,
) -> None:
    count, concurrency = 2000, 16
    journal = tmp_path / "done.txt"
    ids = [f"ct_{n}" for n in range(1, count + 1)]

    # Run 1, in a subprocess: killed once 40% of the ids have reached the server.
    async with FakeInvent(api_key=API_KEY, latency=0.002) as first:
        first.add_segment("VIP")
        first.add_contacts(count)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CRASH_JOB,
            first.url,
            str(journal),
            str(concurrency),
            str(count),
            env={**os.environ, "INVENT_API_KEY": API_KEY},
        )
        try:
            async with asyncio.timeout(SUBPROCESS_TIMEOUT):
                # the fake has no event for "n requests seen": poll its record
                while len(_tagged(first)) < count * 4 // 10 and proc.returncode is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            proc.kill()
        finally:
            if proc.returncode is None:
                proc.kill()
            async with asyncio.timeout(SUBPROCESS_TIMEOUT):
                await proc.wait()
        assert proc.returncode == -signal.SIGKILL
    # the fake has stopped: nothing more of run 1 can arrive
    sent_first = set(_tagged(first))
    succeeded_first = set(first.segment_members("sg_1"))
    journaled = _journal_lines(journal)

    # Run 2, in this process, against a fresh fake: the resume.
    async with FakeInvent(api_key=API_KEY) as second:
        second.add_segment("VIP")
        second.add_contacts(count)
        async with AsyncInventClient(API_KEY, base_url=second.url, rate_limit=FAST_RATE) as c:
            report = await c.contacts.bulk_add_segment(ids, "sg_1", journal=journal)
        sent_second = set(_tagged(second))

    in_flight = sent_first - set(journaled)
    resent = sent_first & sent_second
    print(
        f"\nSIGKILL after {len(sent_first)} of {count} ids sent (concurrency {concurrency}): "
        f"{len(journaled)} journaled, {len(in_flight)} in flight, {len(resent)} re-sent on resume"
    )
    assert len(set(journaled)) == len(journaled)  # no id recorded twice
    assert set(journaled) <= succeeded_first  # only ids that really succeeded
    assert sent_second == set(ids) - set(journaled)  # the resume sends every other id
    assert resent == in_flight
    assert len(resent) <= concurrency
    assert (report.succeeded, report.skipped, report.failed) == (
        count - len(journaled),
        len(journaled),
        0,
    )
    assert sorted(_journal_lines(journal)) == sorted(ids)


async def test_removal_lines_are_neither_taken_for_added_ids_nor_loaded_as_plain_ones(
    fake: FakeInvent, tmp_path: Path
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(4)
    journal = tmp_path / "done.txt"
    journal.write_text(f"{ids[0]}\nremoved\t{ids[1]}\n", encoding="utf-8")

    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        report = await client.contacts.bulk_add_segment(ids, segment.id, journal=journal)

    assert (report.succeeded, report.skipped) == (3, 1)  # ids[1] was removed, not added
    assert sorted(_tagged(fake)) == sorted(ids[1:])
    assert _holds(read_journal(journal), ids)
    assert _holds(read_journal(journal, "removed"), [ids[1]])


def test_a_plain_id_that_would_read_back_as_another_kind_is_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "done.txt"
    plain, removals = Journal(path), Journal(path, "removed")
    plain.load_into(FingerprintSet())
    plain.record("ct_1")
    plain.record("removed\tct_2")  # would read back as a removal of ct_2
    plain.close()
    removals.load_into(FingerprintSet())
    removals.record("ct_3")
    removals.close()

    assert _journal_lines(path) == ["ct_1", "removed\tct_3"]
    assert _holds(read_journal(path), ["ct_1"])
    assert _holds(read_journal(path, "removed"), ["ct_3"])
    with pytest.raises(ValueError, match="unknown journal kind"):
        Journal(path, "deleted")
