"""The bulk engine against FakeInvent: every id accounted for, at the limit, under faults."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from conftest import API_KEY, FAST_RATE
from invent_async import (
    AsyncInventClient,
    BulkAbortedError,
    BulkProgress,
    BulkReport,
    ClientClosedError,
    Contact,
    GovernorStats,
    ItemResult,
    NotFoundError,
    Outcome,
    RateLimit,
    partial_report,
)
from invent_async._jobs.reader import BatchedIds
from invent_async.testing import FakeInvent

T = TypeVar("T")


def _tag_requests(fake: FakeInvent, segment_id: str) -> list[tuple[str, int | None]]:
    """(contact id, status) of every add-segment request the fake saw, in arrival order."""
    out = []
    for req in fake.requests:
        if req.operation == "addSegmentToContact" and req.path.endswith(f"/{segment_id}"):
            out.append((req.path_params["contact_id"], req.status))
    return out


async def aenumerate(items: AsyncIterator[T], start: int = 1) -> AsyncIterator[tuple[int, T]]:
    """``enumerate`` for an async iterator."""
    count = start
    async for item in items:
        yield count, item
        count += 1


async def _collect(stream: AsyncIterator[ItemResult]) -> list[ItemResult]:
    return [result async for result in stream]


def _in_batches(ids: list[str], size: int) -> BatchedIds:
    """``ids`` from a source that hands them out in lists (as the CLI's file reader does)."""
    left = [ids[i : i + size] for i in range(0, len(ids), size)]

    async def next_batch() -> list[str]:
        await asyncio.sleep(0)
        return left.pop(0) if left else []

    return BatchedIds(next_batch)


async def _one_by_one(ids: list[str]) -> AsyncIterator[str]:
    for contact_id in ids:
        yield contact_id


@pytest.mark.parametrize("given_as", ["list", "async generator", "batches"])
async def test_every_input_id_ends_in_exactly_one_outcome_under_faults(
    fake: FakeInvent, given_as: str
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(300)
    unknown = ["nope-1", "nope-2"]
    fake.fail_next(15, status=503, retry_after=0.01)
    fake.fail_next(10, status=429, retry_after=0.05)
    fake.drop_next(5)
    fake.fail_next(5, status=502)
    inputs = [*ids[:150], *unknown, *ids[150:], ids[0], ids[1]]  # two duplicates
    source: list[str] | AsyncIterator[str] | BatchedIds = inputs
    if given_as == "async generator":
        source = _one_by_one(inputs)
    elif given_as == "batches":
        source = _in_batches(inputs, 7)
    client = AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE)
    async with client, client.contacts.stream_add_segment(source, segment.id) as stream:
        results = await _collect(stream)
        report = stream.report

    outcome_of = Counter(r.contact_id for r in results)
    assert set(outcome_of) == set(inputs)
    assert sorted(outcome_of.values()).count(2) == 2  # only the duplicated ids appear twice
    by_outcome = Counter(r.outcome for r in results)
    assert by_outcome == {Outcome.SUCCEEDED: 300, Outcome.FAILED: 2, Outcome.SKIPPED: 2}
    assert {r.contact_id for r in results if r.outcome is Outcome.FAILED} == set(unknown)
    assert all(isinstance(r.error, NotFoundError) for r in results if r.error is not None)
    assert sorted(fake.segment_members(segment.id)) == sorted(ids)
    assert (report.total, report.succeeded, report.failed, report.skipped) == (304, 300, 2, 2)
    assert report.retries >= 35  # every injected fault was retried, none was lost


async def test_no_id_is_sent_again_after_it_succeeded(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(200)
    fake.fail_next(20, status=503)
    fake.drop_next(3)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        report = await client.contacts.bulk_add_segment(ids, segment.id, concurrency=16)

    assert report.succeeded == 200
    succeeded: set[str] = set()
    for contact_id, status in _tag_requests(fake, segment.id):
        assert contact_id not in succeeded, f"{contact_id} was sent after it succeeded"
        if status == 200:
            succeeded.add(contact_id)
    assert succeeded == set(ids)


async def test_requests_in_flight_never_exceed_the_governor_cap(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(60)
    latency = 0.05
    fake.latency = latency
    limit = RateLimit(per_minute=None, max_in_flight=4)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        report = await client.contacts.bulk_add_segment(ids, segment.id, concurrency=32)
        stats = client.rate_limit_stats()

    assert report.succeeded == 60
    assert isinstance(stats, GovernorStats)
    assert stats.max_in_flight <= 4
    # Server side: each request is held for `latency`, so more than 4 arrivals inside any
    # window shorter than that would mean more than 4 were in flight at once.
    arrivals = sorted(r.time for r in fake.requests)
    for i, start in enumerate(arrivals):
        inside = [t for t in arrivals[i:] if t - start < latency * 0.8]
        assert len(inside) <= 4


async def test_observed_request_rate_stays_within_the_limit() -> None:
    rate, window = 6000.0, 1.0  # 100 requests in any second, sliding
    async with FakeInvent(
        api_key=API_KEY,
        rate_limit_per_minute=rate,
        rate_limit_window=window,
        retry_after_precision=3,
    ) as fake:
        segment = fake.add_segment("VIP")
        ids = fake.add_contacts(250)
        fake.reset_stats()
        # 5% headroom absorbs up to 50 ms of scheduling jitter on a busy test machine.
        limit = RateLimit(per_minute=rate, burst=1, headroom=0.05)
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
            report = await client.contacts.bulk_add_segment(ids, segment.id, concurrency=32)
        stats = fake.stats

    assert report.succeeded == 250
    allowed = int(rate * window / 60)
    # The fake counts every arrival in its busiest window, including ones it rejected.
    assert stats.max_in_window <= allowed + stats.rate_limited
    assert stats.rate_limited <= 2  # at most a stray 429 from jitter (<1%), never a storm


async def test_a_429_pauses_every_worker_together(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(80)
    fake.fail_next(1, status=429, retry_after=0.3)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        report = await client.contacts.bulk_add_segment(ids, segment.id, concurrency=16)

    assert report.succeeded == 80
    assert report.rate_limited == 1
    times = [r.time for r in fake.requests]
    first_429 = next(r.time for r in fake.requests if r.status == 429)
    # Requests already on the wire when the 429 was answered still arrive; after that,
    # nothing may be sent during the cool-down, by any worker.
    grace = 0.05
    assert not [t for t in times if first_429 + grace < t < first_429 + 0.3]
    assert len([t for t in times if first_429 < t <= first_429 + grace]) < 16


async def test_cancelling_a_job_stops_it_promptly_with_a_partial_report(
    fake: FakeInvent,
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(500)
    fake.latency = 0.05
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        task = asyncio.create_task(client.contacts.bulk_add_segment(ids, segment.id, concurrency=8))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task

    report = partial_report(info.value)
    assert isinstance(report, BulkReport)
    assert report.cancelled
    assert 0 < report.succeeded < 500
    assert report.total == report.succeeded + report.failed + report.skipped
    assert len(report.cancelled_ids) <= 8
    members = set(fake.segment_members(segment.id))
    assert members >= set(ids[: report.succeeded]) - set(report.cancelled_ids) or members


async def test_a_timeout_around_a_job_still_exposes_the_partial_report(
    fake: FakeInvent,
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(500)
    fake.latency = 0.05
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        with pytest.raises(TimeoutError) as info:
            async with asyncio.timeout(0.3):
                await client.contacts.bulk_add_segment(ids, segment.id, concurrency=8)

    report = partial_report(info.value)
    assert isinstance(report, BulkReport)
    assert report.cancelled
    assert report.total == report.succeeded + report.failed + report.skipped


async def test_a_rerun_with_the_journal_skips_completed_ids(
    fake: FakeInvent, tmp_path: Path
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(120)
    journal = tmp_path / "done.txt"
    fake.latency = 0.02
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.25):
                await client.contacts.bulk_add_segment(
                    ids, segment.id, concurrency=4, journal=journal
                )
        done_first = set(journal.read_text().split())
        assert 0 < len(done_first) < 120
        fake.clear_requests()
        fake.latency = 0
        report = await client.contacts.bulk_add_segment(ids, segment.id, journal=journal)

    assert report.skipped == len(done_first)
    assert report.succeeded == 120 - len(done_first)
    resent = {cid for cid, _ in _tag_requests(fake, segment.id)}
    assert not resent & done_first
    assert sorted(fake.segment_members(segment.id)) == sorted(ids)
    assert set(journal.read_text().split()) == set(ids)


async def test_an_infinite_input_is_consumed_lazily(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    fake.add_contacts(50)
    pulled = 0

    def ids() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count(1):
            pulled += 1
            yield f"ct_{i}"

    client = AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE)
    async with client, client.contacts.stream_add_segment(ids(), segment.id, concurrency=4) as s:
        got = 0
        async for _ in s:
            got += 1
            if got == 20:
                break

    assert pulled < 20 + 4 * 6  # results taken + workers + the bounded result queue


async def test_ids_can_come_from_an_async_generator_or_a_pager(fake: FakeInvent) -> None:
    source = fake.add_segment("Source")
    target = fake.add_segment("Target")
    ids = fake.add_contacts(130, segment_ids=[source.id])

    async def agen() -> AsyncIterator[str]:
        for contact_id in ids[:30]:
            await asyncio.sleep(0)
            yield contact_id

    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        first = await client.contacts.bulk_add_segment(agen(), target.id)
        pager = client.contacts.list(segment_id=source.id, take=50)
        second = await client.contacts.bulk_add_segment(pager, target.id)

    assert (first.succeeded, second.succeeded, second.skipped) == (30, 130, 0)
    assert sorted(fake.segment_members(target.id)) == sorted(ids)


async def slowly(ids: list[str]) -> AsyncIterator[str]:
    """``ids`` from an async generator that takes a moment per id (as a paged export does),
    so that workers are waiting inside it when the job stops."""
    for contact_id in ids:
        await asyncio.sleep(0.002)
        yield contact_id


@pytest.mark.parametrize("source", ["list", "async generator"])
async def test_a_huge_retry_after_stops_the_job_and_its_journal_resumes_it(
    fake: FakeInvent, tmp_path: Path, source: str
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(200)
    refused = ids[100]
    fake.fail_next(1, status=429, retry_after=86400, match=f"/contacts/{re.escape(refused)}/")
    journal = tmp_path / "done.txt"
    client = AsyncInventClient(API_KEY, base_url=fake.url, deadline=None, rate_limit=FAST_RATE)
    feed = iter(ids) if source == "list" else slowly(ids)
    async with client:
        with anyio.fail_after(20), pytest.raises(BulkAbortedError) as caught:  # else: 300 s
            await client.contacts.bulk_add_segment(feed, segment.id, journal=journal, concurrency=8)
        sent = {contact_id for contact_id, _ in _tag_requests(fake, segment.id)}
        left = list(feed) if isinstance(feed, Iterator) else [i async for i in feed]
        client.rate_limit_reset()  # the operator fixed it
        resumed = await client.contacts.bulk_add_segment(ids, segment.id, journal=journal)

    stopped = caught.value.report
    assert caught.value.retry_after == 86400
    assert stopped.failed_ids == (refused,)  # only the id that got the answer
    assert stopped.skipped == len(stopped.cancelled_ids)  # the others in flight: cancelled
    assert stopped.succeeded + stopped.failed + stopped.skipped == stopped.total < len(ids)
    # every id the job took is in its report, and the input gives the others: none is lost
    taken = {*sent, refused, *stopped.cancelled_ids}
    assert len(taken) == stopped.total
    assert sorted([*taken, *left]) == sorted(ids)
    assert (resumed.succeeded, resumed.skipped) == (len(ids) - stopped.succeeded, stopped.succeeded)
    assert sorted(fake.segment_members(segment.id)) == sorted(ids)


async def test_a_list_of_contacts_feeds_a_result_stream_and_a_bulk_job(
    fake: FakeInvent,
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(5)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        contacts: list[Contact] = [c async for c in client.contacts.list()]  # typed for mypy
        async with client.contacts.stream_add_segment(contacts, segment.id) as stream:
            added = sorted(r.contact_id for r in await _collect(stream))
        report = await client.contacts.bulk_remove_segment(contacts, segment.id)

    assert added == sorted(ids)
    assert (report.total, report.succeeded) == (5, 5)
    assert fake.segment_members(segment.id) == []


async def test_progress_reports_every_item_and_a_final_snapshot(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(100)
    seen: list[BulkProgress] = []
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        await client.contacts.bulk_add_segment([*ids, "nope"], segment.id, on_progress=seen.append)

    last = seen[-1]
    assert last.finished
    assert (last.done, last.total, last.succeeded, last.failed) == (101, 101, 100, 1)
    assert "101/101 done" in str(last)


async def test_an_authentication_error_aborts_the_job_with_its_report(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(200)
    async with AsyncInventClient("wrong-key", base_url=fake.url, rate_limit=FAST_RATE) as client:
        with pytest.raises(BulkAbortedError) as info:
            await client.contacts.bulk_add_segment(ids, segment.id, concurrency=4)

    report = info.value.report
    assert report.failed >= 1
    assert report.total < 200  # it stopped instead of failing 200 times
    assert report.total == report.succeeded + report.failed + report.skipped
    assert "wrong-key" not in str(info.value)
    assert info.value.retry_after is None


async def test_closing_the_client_mid_job_stops_it_at_once_with_its_report(
    fake: FakeInvent, tmp_path: Path
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(300)
    journal = tmp_path / "done.txt"
    client = AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE)

    async def close_after_25() -> None:
        stream = client.contacts.stream_add_segment(ids, segment.id, concurrency=8, journal=journal)
        async with stream:
            async for seen, _ in aenumerate(stream):
                if seen == 25:
                    await client.aclose()  # e.g. the app shutting down under a job

    with pytest.raises(BulkAbortedError) as caught:
        await close_after_25()
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as again:
        resumed = await again.contacts.bulk_add_segment(ids, segment.id, journal=journal)

    report = caught.value.report
    assert isinstance(caught.value.__cause__, ClientClosedError)
    assert "closed" in str(caught.value)
    assert report.failed == 0  # nothing failed: what was not sent is not done
    assert report.succeeded >= 25
    assert report.total == report.succeeded + report.skipped < len(ids)
    assert resumed.succeeded == len(ids) - report.succeeded
    assert sorted(fake.segment_members(segment.id)) == sorted(ids)


async def test_bulk_remove_segment_takes_contacts_out(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(40, segment_ids=[segment.id])
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        report = await client.contacts.bulk_remove_segment(ids[:25], segment.id)

    assert report.succeeded == 25
    assert sorted(fake.segment_members(segment.id)) == sorted(ids[25:])
    assert fake.segment(segment.id).contacts_count == 15


async def test_a_batched_input_loses_no_id_not_even_an_empty_one(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(50)
    inputs = ["", *ids[:25], "", *ids[25:]]  # an empty id is a failed item, never skipped
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        report = await client.contacts.bulk_add_segment(_in_batches(inputs, 8), segment.id)

    assert (report.total, report.succeeded, report.failed, report.skipped) == (52, 50, 1, 1)
    assert [f.contact_id for f in report.failures] == [""]
    assert sorted(fake.segment_members(segment.id)) == sorted(ids)


async def test_bad_arguments_fail_before_any_request(fake: FakeInvent) -> None:
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client:
        with pytest.raises(TypeError):
            await client.contacts.bulk_add_segment("ct_1", "sg_1")
        with pytest.raises(ValueError):
            await client.contacts.bulk_add_segment(["ct_1"], "  ")
        with pytest.raises(ValueError):
            await client.contacts.bulk_add_segment(["ct_1"], "sg_1", concurrency=0)
    assert fake.requests == []
