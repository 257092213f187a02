"""``contacts.import_contacts``: the bulk import as a job, against FakeInvent over loopback.

Every row ends in exactly one status; rows are checked before they cost a request; requests
hold at most 10,000 rows or 1 MB; the answer is matched back to each row; faults (503, a
dropped connection, a 429, a lost answer, a 413, a malformed answer) lose no row and create no
contact twice; the journal resumes, also after SIGKILL (in a real subprocess).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import API_KEY, FAST_RATE
from invent_async import (
    AsyncInventClient,
    ContactChannelOption,
    ImportAbortedError,
    ImportPlan,
    ImportProgress,
    ImportReport,
    ImportRowResult,
    ImportStatus,
    InventClient,
    RateLimit,
    partial_import_report,
)
from invent_async.testing import FakeInvent

IMPORT: Final = r"^POST /orgs/[^/]+/contacts/bulk$"
DRY: Final = r"^POST /orgs/[^/]+/contacts/bulk/dry$"
SUBPROCESS_TIMEOUT: Final = 60.0


def emails(n: int, start: int = 0) -> list[str]:
    return [f"user{i}@example.com" for i in range(start, start + n)]


def bulk_requests(fake: FakeInvent, dry: bool = False) -> list[Any]:
    path = "/contacts/bulk/dry" if dry else "/contacts/bulk"
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith(path)]


def contacts_by_email(fake: FakeInvent) -> dict[str, int]:
    """How many contacts hold each email (a contact created twice shows 2)."""
    counts: dict[str, int] = {}
    for contact_id in fake.contact_ids():
        for channel in fake.contact(contact_id).channels:
            if isinstance(channel.email, str):
                key = channel.email.casefold()
                counts[key] = counts.get(key, 0) + 1
    return counts


def check_total(report: ImportReport | ImportPlan) -> None:
    parts = report.created + report.updated + report.invalid + report.failed + report.skipped
    assert parts == report.total


# --------------------------------------------------------------------------- the happy path


async def test_rows_of_every_kind_are_imported_into_the_segment(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    segment = fake.add_segment("Imported")
    old = fake.add_contact(name="Old", email="old@example.com")
    rows: list[object] = [
        "ada@example.com",
        {"email": "  Bob@Example.com ", "name": "Bob"},
        ContactChannelOption(email="cy@example.com", name="Cy"),
        {"email": "OLD@example.com", "name": None, "user_id": ""},
        {"contact_id": old.id},
    ]
    results: list[ImportRowResult] = []
    report = await client.contacts.import_contacts(
        rows, segment_id=segment.id, on_row=results.append
    )

    assert isinstance(report, ImportReport)
    assert (report.total, report.created, report.updated, report.invalid) == (5, 3, 2, 0)
    assert report.ok
    assert report.requests == 1
    members = set(fake.segment_members(segment.id))
    assert old.id in members
    assert len(members) == 4
    everyone = ("old@example.com", "ada@example.com", "bob@example.com", "cy@example.com")
    assert contacts_by_email(fake) == dict.fromkeys(everyone, 1)
    # every row once, by position, with the contact the answer names
    assert sorted(r.position for r in results) == [1, 2, 3, 4, 5]
    by_position = {r.position: r for r in results}
    assert by_position[1].status is ImportStatus.CREATED
    assert by_position[1].contact_id in members
    assert by_position[2].row == {"type": "email", "email": "Bob@Example.com", "name": "Bob"}
    assert by_position[4].status is ImportStatus.UPDATED
    assert by_position[4].contact_id == old.id
    assert by_position[3].item == rows[2]  # as the input gave it
    sent = bulk_requests(fake)[0].json
    assert sent["segment_id"] == segment.id
    assert sent["channels"][3] == {"type": "email", "email": "OLD@example.com"}


async def test_an_async_generator_is_read_lazily_and_chunked(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    segment = fake.add_segment("S")
    read = 0

    async def rows() -> AsyncIterator[str]:
        nonlocal read
        for email in emails(2_500):
            read += 1
            yield email

    report = await client.contacts.import_contacts(rows(), segment_id=segment.id, chunk_size=1_000)
    assert (report.created, report.requests) == (2_500, 3)
    assert [len(r.json["channels"]) for r in bulk_requests(fake)] == [1_000, 1_000, 500]
    assert len(fake.segment_members(segment.id)) == 2_500
    assert read == 2_500


async def test_25001_rows_take_3_requests_of_at_most_10000(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    report = await client.contacts.import_contacts(emails(25_001))
    sizes = sorted(len(r.json["channels"]) for r in bulk_requests(fake))
    assert sizes == [5_001, 10_000, 10_000]
    assert report.created == 25_001
    assert report.requests == 3
    assert "segment_id" not in bulk_requests(fake)[0].json


async def test_a_request_closes_before_its_body_passes_max_chunk_bytes(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    rows = [{"email": e, "name": "N" * 200} for e in emails(300)]
    report = await client.contacts.import_contacts(rows, max_chunk_bytes=20_000)
    bodies = [len(r.body) for r in bulk_requests(fake)]
    assert max(bodies) <= 20_000
    assert sum(len(r.json["channels"]) for r in bulk_requests(fake)) == 300
    assert report.created == 300
    assert report.requests == len(bodies) > 1


async def test_the_default_body_limit_keeps_typical_rows_at_10000_a_request(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    rows = [
        {"email": f"firstname.lastname{i}@example.com", "name": f"Firstname Lastname{i}"}
        for i in range(10_000)
    ]
    await client.contacts.import_contacts(rows)
    (request,) = bulk_requests(fake)
    assert len(request.json["channels"]) == 10_000
    assert len(request.body) <= 1_000_000


# --------------------------------------------------------------------------- rows checked


BAD_ROWS: Final = [
    ("not-an-email", "email 'not-an-email' is not an email address"),
    ("two words@example.com", "is not an email address"),
    ({"email": "a@b.co", "name": "x" * 257}, "name is 257 characters, more than 256"),
    ({"emial": "a@b.co"}, "unknown field 'emial'"),
    ({"email": 42}, "email must be a string, got int"),
    ({"name": "Only a name"}, "no email, user_id or contact_id"),
    ("   ", "no email, user_id or contact_id"),
    (None, "not a row"),
    ({"email": "a\x00b@c.de"}, "control character"),
    ({"email": "\udc80@c.de"}, "UTF-8 cannot carry"),
    ("x" * 250 + "@example.com", "more than 256"),
]


async def test_invalid_rows_are_reported_with_their_reason_and_never_sent(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    rows: list[object] = ["good@example.com", *(row for row, _ in BAD_ROWS), "last@example.com"]
    report = await client.contacts.import_contacts(rows)
    assert (report.created, report.invalid) == (2, len(BAD_ROWS))
    assert not report.ok
    check_total(report)
    for problem, (row, reason) in zip(report.problems, BAD_ROWS, strict=True):
        assert problem.status is ImportStatus.INVALID
        assert problem.item is row or problem.item == row
        assert problem.row is None
        assert reason in (problem.reason or "")
    assert [p.position for p in report.problems] == list(range(2, 2 + len(BAD_ROWS)))
    (request,) = bulk_requests(fake)
    assert [r["email"] for r in request.json["channels"]] == [
        "good@example.com",
        "last@example.com",
    ]


async def test_rows_the_api_lists_invalid_are_reported_as_invalid(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    # a contact id the fake does not know: the client cannot tell, the API's answer does
    report = await client.contacts.import_contacts([{"contact_id": "ct_nope"}, "a@b.co"])
    assert (report.invalid, report.created) == (1, 1)
    (problem,) = report.problems
    assert problem.reason == "listed invalid by the API"
    assert problem.position == 1


async def test_a_type_error_for_input_that_is_not_rows(client: AsyncInventClient) -> None:
    with pytest.raises(TypeError, match="iterable"):
        await client.contacts.import_contacts("a@b.co")
    with pytest.raises(ValueError, match="chunk_size"):
        await client.contacts.import_contacts([], chunk_size=10_001)
    with pytest.raises(ValueError, match="max_chunk_bytes"):
        await client.contacts.import_contacts([], max_chunk_bytes=10)
    with pytest.raises(ValueError, match="concurrency"):
        await client.contacts.import_contacts([], concurrency=0)
    with pytest.raises(ValueError, match="segment_id"):
        await client.contacts.import_contacts([], segment_id=" ")


async def test_an_empty_input_sends_nothing(fake: FakeInvent, client: AsyncInventClient) -> None:
    report = await client.contacts.import_contacts([])
    assert report.total == 0
    assert report.requests == 0
    assert report.ok
    assert fake.requests == []


# --------------------------------------------------------------------------- duplicates


async def test_a_duplicate_in_a_request_is_skipped_and_one_in_a_later_request_updates(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    rows = ["a@b.co", "A@B.CO", "c@d.ee", "e@f.gg", "a@b.co"]
    results: list[ImportRowResult] = []
    report = await client.contacts.import_contacts(rows, chunk_size=3, on_row=results.append)
    by_position = {r.position: r for r in results}
    assert by_position[2].status is ImportStatus.SKIPPED
    assert by_position[2].reason == "duplicate of row 1"
    assert by_position[5].status is ImportStatus.UPDATED
    assert (report.created, report.updated, report.skipped) == (3, 1, 1)
    assert contacts_by_email(fake) == {"a@b.co": 1, "c@d.ee": 1, "e@f.gg": 1}


async def test_two_requests_for_one_new_contact_are_never_in_flight_together(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    # chunks of 2 with 4 in flight: every email comes back two chunks later; the fake answers
    # slowly, so a second request for the same new email would race and create it twice
    fake.latency = 0.05
    rows = [e for pair in zip(emails(40), emails(40, 2), strict=True) for e in pair]
    report = await client.contacts.import_contacts(rows, chunk_size=2, concurrency=4)
    counts = contacts_by_email(fake)
    assert set(counts.values()) == {1}, "a contact was created twice"
    assert report.created == len(counts)
    assert report.created + report.updated == len(rows)


# --------------------------------------------------------------------------- dry run


async def test_a_dry_run_sends_only_dry_runs_and_plans_the_import(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    segment = fake.add_segment("S")
    fake.add_contact(name="Old", email="old@example.com")
    rows = [*emails(12_000), "old@example.com", "bad"]
    plan = await client.contacts.import_contacts(rows, segment_id=segment.id, dry_run=True)
    assert isinstance(plan, ImportPlan)
    assert (plan.created, plan.updated, plan.invalid) == (12_000, 1, 1)
    assert plan.requests == plan.import_requests == 2
    assert bulk_requests(fake) == []
    assert len(bulk_requests(fake, dry=True)) == 2
    assert fake.segment_members(segment.id) == []
    assert len(fake.contact_ids()) == 1
    # the same rows imported take what the plan said
    report = await client.contacts.import_contacts(rows, segment_id=segment.id)
    assert (report.created, report.updated, report.requests) == (12_000, 1, 2)


async def test_a_plan_says_what_the_requests_cost_at_the_real_limit(fake: FakeInvent) -> None:
    async with AsyncInventClient(
        API_KEY, base_url=fake.url, rate_limit=RateLimit(per_minute=500)
    ) as client:
        plan = await client.contacts.import_contacts(emails(100_000), dry_run=True)
    assert plan.import_requests == 10
    assert plan.rate_per_minute is not None
    assert plan.rate_per_minute <= 500
    assert plan.budget_seconds == pytest.approx(10 * 60 / plan.rate_per_minute)
    assert "takes 10 requests" in str(plan)


# --------------------------------------------------------------------------- faults


async def test_a_503_fails_its_rows_once_and_a_rerun_of_them_imports_them(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.fail_next(1, 503, match=IMPORT)
    failed: list[ImportRowResult] = []
    report = await client.contacts.import_contacts(
        emails(30),
        chunk_size=10,
        on_row=lambda r: failed.append(r) if r.status == "failed" else None,
    )
    # an import is not idempotent: the 503 is not retried, its 10 rows failed
    assert (report.created, report.failed, report.requests) == (20, 10, 3)
    assert len(failed) == 10
    assert all(r.error is not None for r in failed)
    again = await client.contacts.import_contacts([r.row for r in failed])
    assert again.created == 10
    assert set(contacts_by_email(fake)) == set(emails(30))
    assert set(contacts_by_email(fake).values()) == {1}


async def test_a_dropped_connection_fails_its_rows_and_nothing_is_lost(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.drop_next(1, match=IMPORT)
    report = await client.contacts.import_contacts(emails(20), chunk_size=10)
    assert (report.created, report.failed) == (10, 10)
    again = await client.contacts.import_contacts(
        [p.row for p in report.problems if p.status is ImportStatus.FAILED]
    )
    assert again.created == 10
    assert len(contacts_by_email(fake)) == 20


async def test_a_429_mid_job_is_waited_out_and_retried(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.fail_next(1, 429, retry_after=0.2, match=IMPORT)
    report = await client.contacts.import_contacts(emails(30), chunk_size=10, concurrency=1)
    assert (report.created, report.failed, report.rate_limited) == (30, 0, 1)
    assert report.requests == 4
    assert report.retries == 1


async def test_a_lost_answer_fails_its_rows_and_a_rerun_updates_them_without_duplicates(
    fake: FakeInvent,
) -> None:
    # the API imports the rows but the answer comes too late: the client cannot know
    fake.delay_next(1, 1.0, match=IMPORT)
    async with AsyncInventClient(
        API_KEY, base_url=fake.url, rate_limit=FAST_RATE, timeout=0.3, max_retries=0
    ) as client:
        report = await client.contacts.import_contacts(emails(10))
        assert report.failed == 10
        await asyncio.sleep(1.0)  # the fake finishes the request the client gave up on
        again = await client.contacts.import_contacts(
            [p.row for p in report.problems], segment_id=None
        )
    assert again.updated == 10
    assert again.created == 0
    assert set(contacts_by_email(fake).values()) == {1}


async def test_a_413_splits_the_request_until_it_fits(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.fail_next(2, 413, match=IMPORT)
    report = await client.contacts.import_contacts(emails(8))
    sizes = [len(r.json["channels"]) for r in bulk_requests(fake)]
    assert sizes == [8, 4, 2, 2, 4]
    assert report.created == 8
    assert report.requests == 5


async def test_a_malformed_answer_fails_its_rows_with_a_validation_error(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.fail_next(1, 200, body={"created": "nope"}, match=IMPORT)
    report = await client.contacts.import_contacts(emails(3))
    assert report.failed == 3
    assert all("response is not a valid" in (p.reason or "") for p in report.problems)


async def test_rows_the_answer_leaves_out_are_failed_not_lost(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.fail_next(
        1,
        200,
        body={"created": [{"email": "user0@example.com"}], "updated": [], "invalid": []},
        match=IMPORT,
    )
    report = await client.contacts.import_contacts(emails(3))
    assert (report.created, report.failed) == (1, 2)
    assert all(p.reason and p.reason.startswith("not in the answer") for p in report.problems)


@pytest.mark.parametrize(
    ("status", "retry_after"), [(401, None), (403, None), (404, None), (429, 3600)]
)
async def test_an_error_every_request_would_get_stops_the_job(
    fake: FakeInvent, status: int, retry_after: float | None
) -> None:
    async with AsyncInventClient(
        API_KEY,
        base_url=fake.url,
        rate_limit=RateLimit(per_minute=1_000_000, burst=1_000, max_retry_after=60),
    ) as client:
        fake.fail_next(1, status, retry_after=retry_after, match=IMPORT)
        with pytest.raises(ImportAbortedError) as caught:
            await client.contacts.import_contacts(emails(50), chunk_size=10, concurrency=1)
    report = caught.value.report
    check_total(report)
    assert report.failed == 10
    assert report.created == 0
    assert report.cancelled
    assert len(bulk_requests(fake)) == 1
    if status == 429:
        assert caught.value.retry_after == 3600
    assert partial_import_report(caught.value) is report


async def test_an_unknown_segment_stops_the_job_at_its_first_request(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    with pytest.raises(ImportAbortedError, match="segment or the organisation does not exist"):
        await client.contacts.import_contacts(emails(30_000), segment_id="sg_nope")
    assert len(bulk_requests(fake)) <= 2  # the first, and at most the one sent beside it


async def test_an_input_that_fails_midway_still_sends_the_rows_read_before(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    def rows() -> Iterator[str]:
        yield from emails(5)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        await client.contacts.import_contacts(rows())
    assert len(contacts_by_email(fake)) == 5


async def test_on_row_raising_stops_the_job_with_that_error(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    def on_row(result: ImportRowResult) -> None:
        raise RuntimeError("callback broke")

    with pytest.raises(RuntimeError, match="callback broke"):
        await client.contacts.import_contacts(emails(30), chunk_size=10, on_row=on_row)


async def test_cancelling_an_import_attaches_the_partial_report(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.latency = 0.2
    task = asyncio.create_task(
        client.contacts.import_contacts(emails(100), chunk_size=10, concurrency=2)
    )
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    report = partial_import_report(caught.value)
    assert isinstance(report, ImportReport)
    assert report.cancelled
    check_total(report)
    assert report.skipped > 0  # the chunks in flight
    assert report.created <= len(contacts_by_email(fake)) <= report.created + report.skipped


async def test_progress_is_reported_and_ends_finished(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    seen: list[ImportProgress] = []
    await client.contacts.import_contacts(emails(50), chunk_size=10, on_progress=seen.append)
    assert seen[-1].finished
    assert seen[-1].done == 50
    assert seen[-1].created == 50
    assert seen[-1].total == 50
    assert "50/50 rows" in str(seen[-1])


# --------------------------------------------------------------------------- the journal


async def test_a_journal_skips_the_rows_done_and_a_dry_run_only_reads_it(
    fake: FakeInvent, client: AsyncInventClient, tmp_path: Path
) -> None:
    journal = tmp_path / "import.journal"
    first = await client.contacts.import_contacts(emails(15), chunk_size=10, journal=journal)
    assert first.created == 15
    lines = journal.read_text().splitlines()
    assert sorted(lines) == sorted(f"imported\te:{e}" for e in emails(15))
    fake.clear_requests()
    plan = await client.contacts.import_contacts(emails(20), journal=journal, dry_run=True)
    assert (plan.skipped, plan.created) == (15, 5)
    assert journal.read_text().splitlines() == lines
    second = await client.contacts.import_contacts(emails(20), journal=journal)
    assert (second.skipped, second.created) == (15, 5)
    assert len(contacts_by_email(fake)) == 20


CRASH_JOB: Final = """
import asyncio, os, sys
from invent_async import AsyncInventClient, RateLimit

async def main() -> None:
    url, journal, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rows = [f"user{i}@example.com" for i in range(count)]
    rate = RateLimit(per_minute=1_000_000, burst=1_000)
    async with AsyncInventClient(os.environ["INVENT_API_KEY"], base_url=url, rate_limit=rate) as c:
        await c.contacts.import_contacts(rows, chunk_size=100, concurrency=2, journal=journal)

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
async def test_sigkill_mid_import_then_resume_loses_no_row_and_creates_none_twice(
    tmp_path: Path,
) -> None:
    count = 3_000
    journal = tmp_path / "import.journal"
    async with FakeInvent(api_key=API_KEY, latency=0.02) as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CRASH_JOB,
            fake.url,
            str(journal),
            str(count),
            env={**os.environ, "INVENT_API_KEY": API_KEY},
        )
        try:
            async with asyncio.timeout(SUBPROCESS_TIMEOUT):
                while len(bulk_requests(fake)) < 10 and proc.returncode is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        finally:
            # one signal only: on 3.12 a second kill() of a child that has died but is not yet
            # reported polls it (waitpid) before asyncio's watcher does, and the watcher then
            # reports 255 instead of -SIGKILL
            if proc.returncode is None:
                proc.kill()
            async with asyncio.timeout(SUBPROCESS_TIMEOUT):
                await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        # a request the child had sent is still handled by the fake: wait until it is quiet
        imported_first = -1
        async with asyncio.timeout(SUBPROCESS_TIMEOUT):
            while (now := len(contacts_by_email(fake))) != imported_first:
                imported_first = now
                await asyncio.sleep(0.3)
        journaled = journal.read_text().count("\n")  # complete lines: a torn one is not read
        assert 0 < journaled <= imported_first < count

        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as c:
            report = await c.contacts.import_contacts(
                emails(count), chunk_size=100, journal=journal
            )
        counts = contacts_by_email(fake)
    assert set(counts) == set(emails(count)), "a row was lost"
    assert set(counts.values()) == {1}, "a contact was created twice"
    assert report.skipped == journaled
    assert report.created == count - imported_first
    assert report.updated == imported_first - journaled  # in flight at the kill: sent again
    print(
        f"\nSIGKILL after {imported_first} rows imported, {journaled} journaled: resumed "
        f"with {report.created} created, {report.updated} updated again"
    )


# --------------------------------------------------------------------------- sync client


def test_the_sync_client_imports_too(tmp_path: Path) -> None:
    from invent_async.testing import ThreadedFake

    with (
        ThreadedFake(api_key=API_KEY) as fake,
        InventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client,
    ):
        segment = fake.add_segment("S")
        lines = tmp_path / "emails.txt"
        lines.write_text("\n".join(emails(25)))
        with lines.open() as fh:
            report = client.contacts.import_contacts(
                (line.strip() for line in fh), segment_id=segment.id, chunk_size=10
            )
        plan = client.contacts.import_contacts(emails(30), dry_run=True)
        members = fake.segment_members(segment.id)
    assert report.created == 25
    assert len(members) == 25
    assert (plan.updated, plan.created) == (25, 5)
    assert json.loads(json.dumps(report.total)) == 25


# --------------------------------------------------------------------------- existing only


async def test_create_missing_false_adds_only_contacts_that_exist(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    segment = fake.add_segment("Customers")
    known = [fake.add_contact(name=f"K{i}", email=f"user{i}@example.com") for i in range(0, 30, 3)]
    results: list[ImportRowResult] = []
    report = await client.contacts.import_contacts(
        [*emails(30), "bad"],
        segment_id=segment.id,
        create_missing=False,
        chunk_size=10,
        on_row=results.append,
    )
    assert (report.updated, report.created, report.skipped, report.invalid) == (10, 0, 20, 1)
    assert set(fake.segment_members(segment.id)) == {c.id for c in known}
    assert len(fake.contact_ids()) == 10  # nothing created
    # each chunk: its dry run, then the import of the rows that exist
    assert (len(bulk_requests(fake, dry=True)), len(bulk_requests(fake))) == (3, 3)
    assert report.requests == 6
    imported = [row["email"] for r in bulk_requests(fake) for row in r.json["channels"]]
    assert imported == [f"user{i}@example.com" for i in range(0, 30, 3)]
    skipped = [r for r in results if r.status is ImportStatus.SKIPPED]
    assert len(skipped) == 20
    assert all((r.reason or "").startswith("no contact") for r in skipped)
    assert {r.contact_id for r in results if r.status is ImportStatus.UPDATED} == {
        c.id for c in known
    }


async def test_create_missing_false_in_a_dry_run_plans_both_requests(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    for i in range(5):
        fake.add_contact(email=f"user{i}@example.com")
    plan = await client.contacts.import_contacts(emails(20), create_missing=False, dry_run=True)
    assert (plan.updated, plan.skipped, plan.created) == (5, 15, 0)
    assert plan.requests == 1
    assert plan.import_requests == 2
    assert bulk_requests(fake) == []


async def test_create_missing_false_sends_no_import_when_no_row_exists(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    report = await client.contacts.import_contacts(emails(5), create_missing=False)
    assert (report.skipped, report.requests) == (5, 1)
    assert bulk_requests(fake) == []
    assert fake.contact_ids() == []


async def test_create_missing_false_keeps_rows_of_a_failed_dry_run_failed(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.add_contact(email="user0@example.com")
    fake.fail_next(2, 500, match=DRY)  # a dry run is retried (it writes nothing): twice here
    report = await client.contacts.import_contacts(emails(3), create_missing=False, max_retries=1)
    assert report.failed == 3
    assert report.requests == 2
    assert bulk_requests(fake) == []


# --------------------------------------------------------------------------- stopping cleanly
# (each of these lost rows, a report or a contact before the review's fixes)


async def test_closing_the_client_mid_job_accounts_for_every_row(fake: FakeInvent) -> None:
    client = AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE)
    seen: list[int] = []

    async def close_soon() -> None:
        await asyncio.sleep(0)  # the job has started
        await client.aclose()

    closer = asyncio.create_task(close_soon())
    with pytest.raises(ImportAbortedError) as caught:
        await client.contacts.import_contacts(
            emails(30), chunk_size=5, concurrency=2, on_row=lambda r: seen.append(r.position)
        )
    await closer
    report = caught.value.report
    check_total(report)
    assert sorted(seen) == list(range(1, report.total + 1))  # each row once


class _SlowToStop:
    """A transport that answers after 0.2 s and takes 0.05 s to close a request cancelled
    in flight (as a connection being torn down does)."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, request: Any, *, attempt_timeout: float | None) -> Any:
        from invent_async import RawResponse

        self.sent += 1
        rows = json.loads(request.body)["channels"]
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
            raise
        body = {"created": [dict(r, contact_id="ct") for r in rows], "updated": [], "invalid": []}
        return RawResponse(status=200, reason="OK", headers={}, body=json.dumps(body).encode())

    async def aclose(self) -> None:
        return None


async def test_a_second_cancel_while_stopping_keeps_every_row_and_the_report() -> None:
    seen: list[int] = []
    async with AsyncInventClient("k", transport=_SlowToStop(), rate_limit=None) as client:
        task = asyncio.create_task(
            client.contacts.import_contacts(
                emails(30), chunk_size=5, on_row=lambda r: seen.append(r.position)
            )
        )
        await asyncio.sleep(0.1)
        task.cancel()  # Ctrl-C ...
        await asyncio.sleep(0.01)
        task.cancel()  # ... and again, while the job stops
        with pytest.raises(asyncio.CancelledError) as caught:
            await task
    report = partial_import_report(caught.value)
    assert isinstance(report, ImportReport)
    check_total(report)
    assert sorted(seen) == list(range(1, report.total + 1))


async def test_on_row_raising_in_a_chunk_still_counts_and_journals_the_rest(
    fake: FakeInvent, client: AsyncInventClient, tmp_path: Path
) -> None:
    journal = tmp_path / "j"

    def on_row(result: ImportRowResult) -> None:
        if result.position == 3:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full") as caught:
        await client.contacts.import_contacts(emails(10), on_row=on_row, journal=journal)
    report = partial_import_report(caught.value)
    assert report is not None
    assert (report.total, report.created) == (10, 10)
    assert len(journal.read_text().splitlines()) == 10  # a re-run does not send them again


async def test_on_row_raising_on_an_invalid_row_reports_what_was_sent(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    def on_row(result: ImportRowResult) -> None:
        if result.status is ImportStatus.INVALID:
            raise RuntimeError("on_row broke")

    with pytest.raises(RuntimeError, match="on_row broke") as caught:
        await client.contacts.import_contacts(["bad", *emails(10)], on_row=on_row)
    report = partial_import_report(caught.value)
    assert report is not None
    check_total(report)


async def test_a_413_split_sends_no_half_once_the_job_is_cancelled(fake: FakeInvent) -> None:
    fake.fail_next(1, 413, match=IMPORT)
    fake.delay_next(2, 0.3, match=IMPORT)  # the 413 and the first half: slow
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        task = asyncio.create_task(client.contacts.import_contacts(emails(10)))
        await asyncio.sleep(0.45)  # the first half is in flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.5)
    assert [len(r.json["channels"]) for r in bulk_requests(fake)] == [10, 5]


async def test_two_rows_for_one_user_id_never_create_two_contacts(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    rows = [
        {"user_id": "U1", "email": "old@example.com"},
        {"user_id": "U1", "email": "new@example.com"},
    ]
    report = await client.contacts.import_contacts(rows)
    assert (report.created, report.skipped) == (1, 1)
    assert report.problems == ()
    assert len(fake.contact_ids()) == 1
    # in two requests in flight at once: the second waits for the first, then updates
    fake.latency = 0.1
    more = [
        {"user_id": "U2", "email": "a@example.com"},
        {"user_id": "U2", "email": "b@example.com"},
    ]
    again = await client.contacts.import_contacts(more, chunk_size=1, concurrency=2)
    assert (again.created, again.updated) == (1, 1)
    assert len(fake.contact_ids()) == 2


# --------------------------------------------------------------------------- random faults


class _Faulty:
    """A transport that answers each import (or dry run) after a few loop turns with a
    fault drawn by ``draw(low, high)`` (``Random.randint``): 413, 500, 401, a 429 asking for
    an hour, or the answer (rows created unless the server has them), checking that no two
    requests in flight share an email."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.server: set[str] = set()
        self.in_flight: set[str] = set()
        self.overlaps = 0

    async def send(self, request: Any, *, attempt_timeout: float | None) -> Any:
        from invent_async import RawResponse

        rows = json.loads(request.body)["channels"]
        keys = {r["email"].casefold() for r in rows}
        self.overlaps += len(keys & self.in_flight)
        self.in_flight |= keys
        try:
            for _ in range(self.draw(0, 3)):
                await asyncio.sleep(0)
            fault = self.draw(0, 9)
            status = {0: 413, 1: 500, 2: 401, 3: 429}.get(fault, 200) if len(rows) > 1 else 200
            if status != 200:
                headers = {"retry-after": "3600"} if status == 429 else {}
                return RawResponse(status=status, reason="", headers=headers, body=b"{}")
            dry = request.url.endswith("/dry")
            out: dict[str, list[Any]] = {"created": [], "updated": [], "invalid": []}
            for row in rows:
                known = row["email"].casefold() in self.server
                out["updated" if known else "created"].append(row)
                if not dry:
                    self.server.add(row["email"].casefold())
            body = json.dumps(out).encode()
            return RawResponse(status=200, reason="OK", headers={}, body=body)
        finally:
            self.in_flight -= keys

    async def aclose(self) -> None:
        return None


async def _one_faulty_import(
    rows: list[str],
    chunk_size: int,
    concurrency: int,
    create_missing: bool,
    cancel_after: int | None,
    faults: random.Random,
) -> tuple[ImportReport | ImportPlan, list[int], _Faulty]:
    transport = _Faulty(faults.randint)
    seen: list[int] = []
    limit = RateLimit(per_minute=1_000_000, burst=1_000, max_retry_after=60, shared=False)
    async with AsyncInventClient("k", transport=transport, rate_limit=limit) as client:
        job = asyncio.create_task(
            client.contacts.import_contacts(
                rows,
                chunk_size=chunk_size,
                concurrency=concurrency,
                create_missing=create_missing,
                max_retries=0,
                on_row=lambda r: seen.append(r.position),
            )
        )
        if cancel_after is not None:
            for _ in range(cancel_after):
                await asyncio.sleep(0)
            job.cancel()
        try:
            report: ImportReport | ImportPlan = await job
        except (asyncio.CancelledError, ImportAbortedError) as exc:
            found = partial_import_report(exc)
            assert found is not None, "no report"
            report = found
    return report, seen, transport


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.sampled_from(["bad", *emails(12)]), min_size=1, max_size=40),
    chunk_size=st.integers(1, 6),
    concurrency=st.integers(1, 4),
    create_missing=st.booleans(),
    cancel_after=st.none() | st.integers(1, 30),
    faults=st.randoms(use_true_random=False),
)
def test_random_faults_and_cancels_account_for_every_row_once(
    rows: list[str],
    chunk_size: int,
    concurrency: int,
    create_missing: bool,
    cancel_after: int | None,
    faults: random.Random,
) -> None:
    report, seen, transport = asyncio.run(
        _one_faulty_import(rows, chunk_size, concurrency, create_missing, cancel_after, faults)
    )
    check_total(report)
    assert sorted(seen) == list(range(1, report.total + 1)), "a row lost or reported twice"
    assert transport.overlaps == 0, "two requests in flight shared an email"
