"""Segment sync against FakeInvent over loopback: what it sends, what it reports, what it ends with.

Each scene seeds a segment whose members are partly in the input (``inside``), partly not
(``outside``), and contacts that are not members (``new``). Requests are counted by the fake
per route (``stats.by_operation``), independently of the client's own count, and the
segment's membership is read from the fake's store after the job. Changes "by someone else"
are made from the input iterable, which the sync reads only after the membership (or, for an
input without ``len()``, right after the first page). The pure parts (the member table, the
rule, the plan's arithmetic) are tested at the end, without a loop.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import attrs
import pytest
from _harness import Api, api_fixture  # noqa: F401
from hypothesis import given
from hypothesis import strategies as st

from conftest import API_KEY, FAST_RATE
from invent_async import (
    AsyncInventClient,
    BadRequestError,
    Contact,
    MemberTable,
    NotFoundError,
    RateLimit,
    SegmentSyncAbortedError,
    SegmentSyncPlan,
    SegmentSyncProgress,
    SegmentSyncReport,
    partial_sync_report,
)
from invent_async._jobs import segment_sync_plan as pure
from invent_async._jobs.engine import SKIP_CODES, Precheck
from invent_async._jobs.idset import CompactIds, FingerprintSet
from invent_async._jobs.reader import IdReader
from invent_async._jobs.segment_sync_plan import (
    VERDICT_CODES,
    InputClassifier,
    choose_strategy,
    format_duration,
)
from invent_async.testing import FakeInvent

READS: Final = "listContacts"
ADDS: Final = "addSegmentToContact"
REMOVES: Final = "removeSegmentFromContact"
STOP_TIMEOUT: Final = 10.0


@attrs.frozen
class Scene:
    """A segment and its contacts: members in the input, members not in it, non-members."""

    segment_id: str
    inside: list[str]
    outside: list[str]
    new: list[str]

    @property
    def inputs(self) -> list[str]:
        """The ids the segment should hold: the members inside, then the new ones."""
        return [*self.inside, *self.new]


def scene(fake: FakeInvent, *, inside: int, outside: int, new: int) -> Scene:
    segment = fake.add_segment("VIP")
    members_in = fake.add_contacts(inside, segment_ids=[segment.id])
    members_out = fake.add_contacts(outside, segment_ids=[segment.id])
    others = fake.add_contacts(new)
    return Scene(segment.id, members_in, members_out, others)


def client_for(fake: FakeInvent, **options: object) -> AsyncInventClient:
    settings: dict[str, object] = {"rate_limit": FAST_RATE, "timeout": 5, "deadline": 20}
    settings.update(options)
    return AsyncInventClient(API_KEY, base_url=fake.url, **settings)  # type: ignore[arg-type]


def traffic(fake: FakeInvent) -> dict[str, int]:
    """Requests the fake received, by route."""
    return dict(fake.stats.by_operation)


class Hooked(Sequence[str]):
    """A list of ids that runs ``before`` when the sync starts reading it (after the
    membership read: the input has a ``len()``)."""

    def __init__(self, ids: list[str], before: Callable[[], object]) -> None:
        self._ids = ids
        self._before = before

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return self._ids[index]

    def __iter__(self) -> Iterator[str]:
        self._before()
        return iter(self._ids)


def unsized(ids: list[str], before: Callable[[], object] = lambda: None) -> Iterator[str]:
    """``ids`` from a generator (no ``len()``), running ``before`` when first pulled."""
    before()
    yield from ids


def member_set(fake: FakeInvent, segment_id: str) -> set[str]:
    return set(fake.segment_members(segment_id))


# --------------------------------------------------------------------------- the two modes


async def test_a_sync_adds_only_the_ids_that_are_not_members(fake: FakeInvent) -> None:
    s = scene(fake, inside=250, outside=30, new=40)

    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(s.segment_id, s.inputs)

    assert member_set(fake, s.segment_id) == {*s.inside, *s.outside, *s.new}
    assert (report.added, report.unchanged, report.removed, report.failed) == (40, 250, 0, 0)
    assert (report.strategy, report.members_before, report.total) == ("diff", 280, 290)
    assert traffic(fake) == {READS: 3, ADDS: 40}
    assert report.requests_sent == fake.stats.total == 43
    assert report.read_requests == 3


async def test_an_exact_sync_also_removes_the_members_not_in_the_input(fake: FakeInvent) -> None:
    s = scene(fake, inside=250, outside=30, new=40)

    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(s.segment_id, s.inputs, remove_others=True)

    assert member_set(fake, s.segment_id) == set(s.inputs)
    assert (report.added, report.unchanged, report.removed, report.removals) == (40, 250, 30, 30)
    assert sorted(report.removed_ids) == sorted(s.outside)
    assert traffic(fake) == {READS: 3, ADDS: 40, REMOVES: 30}
    assert report.requests_sent == fake.stats.total
    assert report.ok


async def test_every_input_id_ends_in_exactly_one_outcome(fake: FakeInvent) -> None:
    s = scene(fake, inside=30, outside=5, new=10)
    as_contact = fake.contact(s.new[0])
    inputs: list[str | Contact] = [
        *s.inside,
        s.inside[0],  # a repeated member
        as_contact,
        *s.new[1:],
        s.new[1],  # a repeated non-member
        "ct_nope",  # not a contact: its add fails with a 404
    ]

    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(s.segment_id, inputs, remove_others=True)

    assert report.total == len(inputs) == 43
    assert report.total == report.added + report.unchanged + report.failed + report.skipped
    assert (report.added, report.unchanged, report.failed) == (10, 30, 1)
    assert (report.skipped, report.duplicates) == (2, 2)
    assert report.failed_ids == ("ct_nope",)
    assert isinstance(report.failures[0].error, NotFoundError)
    assert report.removals == report.removed + report.gone + report.remove_failed == 5
    assert not report.ok
    assert member_set(fake, s.segment_id) == set(s.inputs)


# --------------------------------------------------------------------------- worth it or not


async def test_a_huge_segment_and_a_handful_of_ids_fall_back_to_plain_adds(
    fake: FakeInvent,
) -> None:
    s = scene(fake, inside=5, outside=1045, new=2)  # 1,050 members: 11 pages
    first_page = s.inside[:2]  # the lowest ids come first
    deep = fake.add_contacts(1, segment_ids=[s.segment_id])  # on the last page
    inputs = [*first_page, *deep, *s.new]  # 5 ids: reading 10 more pages cannot pay off

    async with client_for(fake) as client:
        plan = await client.contacts.sync_segment(s.segment_id, inputs, dry_run=True)
        fake.reset_stats()
        report = await client.contacts.sync_segment(s.segment_id, inputs)

    assert (plan.strategy, report.strategy) == ("add-only", "add-only")
    assert "more than half of the 5 adds" in report.reason
    assert (plan.to_add, plan.unchanged, plan.read_requests, plan.requests) == (3, 2, 1, 4)
    assert (report.added, report.unchanged) == (3, 2)  # the first page's members are known
    assert traffic(fake) == {READS: 1, ADDS: 3}
    assert member_set(fake, s.segment_id) >= set(inputs)


@pytest.mark.parametrize(("count", "strategy"), [(19, "add-only"), (20, "diff")])
async def test_an_input_without_len_is_counted_by_reading_ahead(
    fake: FakeInvent, count: int, strategy: str
) -> None:
    s = scene(fake, inside=count, outside=1050 - count, new=0)  # 11 pages: 10 more to read
    inputs = s.inside

    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(s.segment_id, unsized(inputs))

    assert report.strategy == strategy  # diff once 2 * 10 more reads <= the ids
    assert report.total == count
    assert report.added + report.unchanged == count
    reads = 11 if strategy == "diff" else 1
    assert traffic(fake) == {READS: reads, **({ADDS: report.added} if report.added else {})}


async def test_removing_others_always_reads_the_whole_membership(fake: FakeInvent) -> None:
    s = scene(fake, inside=1, outside=1049, new=0)

    async with client_for(fake) as client:
        plan = await client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, dry_run=True
        )

    assert (plan.strategy, plan.reason) == ("diff", "remove_others needs the whole membership")
    assert (plan.to_remove, plan.read_requests, plan.requests_sent) == (1049, 11, 11)


# --------------------------------------------------------------------------- changes meanwhile


async def test_changes_made_by_someone_else_meanwhile_do_not_fail_the_job(
    fake: FakeInvent,
) -> None:
    s = scene(fake, inside=50, outside=10, new=5)
    deleted, left = s.outside[0], s.outside[1]  # to be removed: deleted, or gone already
    taken_out = s.inside[0]  # in the input, a member when read, then taken out
    newcomer = fake.add_contacts(1)[0]  # not in the input, put in after the read

    def someone_else() -> None:
        fake.delete_contact(deleted)
        fake.remove_from_segment(s.segment_id, [left, taken_out])
        fake.add_to_segment(s.segment_id, [newcomer])

    inputs = Hooked(s.inputs, someone_else)
    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(
            s.segment_id, inputs, remove_others=True, verify=True
        )

    assert (report.failed, report.remove_failed) == (0, 0)
    assert (report.removed, report.gone) == (9, 1)  # the left one: removing it again is a no-op
    gone = [c for c in report.changed_meanwhile if c.kind == "gone"]
    assert [c.contact_id for c in gone] == [deleted]
    assert "404" in gone[0].detail
    assert report.verified
    assert list(report.missing) == [taken_out]
    assert list(report.unexpected) == [newcomer]
    assert not report.ok


async def test_a_membership_that_changes_while_it_is_read_is_reported(fake: FakeInvent) -> None:
    s = scene(fake, inside=250, outside=0, new=0)
    joiner = fake.add_contacts(1)[0]

    def someone_else() -> None:  # runs after the first page (the input is read ahead)
        fake.add_to_segment(s.segment_id, [joiner])

    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(
            s.segment_id, unsized(s.inputs, someone_else), verify=True
        )

    reads = [c for c in report.changed_meanwhile if c.kind == "read"]
    assert len(reads) == 1
    assert "went from 250 to 251" in reads[0].detail
    assert (report.unchanged, report.failed, report.missing) == (250, 0, ())


async def test_pages_the_first_count_did_not_announce_are_read_too(fake: FakeInvent) -> None:
    s = scene(fake, inside=200, outside=0, new=0)  # two pages, as the first one says
    joiners = fake.add_contacts(50)

    def someone_else() -> None:  # after the first page: 250 members, three pages
        fake.add_to_segment(s.segment_id, joiners)

    async with client_for(fake) as client:
        plan = await client.contacts.sync_segment(
            s.segment_id, unsized(s.inputs, someone_else), dry_run=True
        )

    assert plan.snapshot is not None
    assert len(plan.snapshot) == 250
    assert traffic(fake) == {READS: 3}
    assert plan.members == 200  # the count when the sync started


async def test_a_verify_of_a_clean_sync_finds_nothing(fake: FakeInvent) -> None:
    s = scene(fake, inside=120, outside=7, new=9)

    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, verify=True
        )

    assert report.verified
    assert (report.missing, report.unexpected, report.verify_error) == ((), (), None)
    assert traffic(fake) == {READS: 2 + 2, ADDS: 9, REMOVES: 7}  # 127 before, 129 after
    assert report.read_requests == 4


# --------------------------------------------------------------------------- faults


async def test_faults_and_429s_in_the_read_and_the_writes_lose_nothing(fake: FakeInvent) -> None:
    s = scene(fake, inside=300, outside=20, new=30)
    reads = r"^GET /orgs/c/contacts$"
    fake.fail_next(2, status=503, match=reads)
    fake.fail_next(2, status=429, retry_after=0.05, match=reads)
    fake.drop_next(1, match=reads)
    fake.fail_next(5, status=503, match=r"^POST ")
    fake.fail_next(3, status=429, retry_after=0.05, match=r"^POST ")
    fake.drop_next(2, match=r"^DELETE ")
    fake.fail_next(2, status=502, match=r"^DELETE ")

    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(s.segment_id, s.inputs, remove_others=True)

    assert member_set(fake, s.segment_id) == set(s.inputs)
    assert (report.added, report.unchanged, report.removed, report.failed) == (30, 300, 20, 0)
    assert fake.pending_faults == 0
    assert fake.stats.total == 4 + 30 + 20 + 17
    # aiohttp itself sends a request again, unseen, when a reused connection was dropped
    assert fake.stats.total - fake.stats.dropped <= report.requests_sent <= fake.stats.total
    assert 17 - fake.stats.dropped <= report.retries <= 17
    assert report.rate_limited == 5


async def test_a_401_during_the_writes_stops_the_sync_with_its_partial_report(
    fake: FakeInvent,
) -> None:
    s = scene(fake, inside=20, outside=0, new=40)

    def rotate_key() -> None:
        fake.api_key = "another-key"

    async with client_for(fake) as client:
        with pytest.raises(SegmentSyncAbortedError) as stopped:
            await client.contacts.sync_segment(s.segment_id, Hooked(s.inputs, rotate_key))

    partial = partial_sync_report(stopped.value)
    assert partial is stopped.value.sync_report
    assert partial is not None
    assert partial.cancelled
    assert (partial.unchanged, partial.added) == (20, 0)
    assert partial.failed >= 1
    assert stopped.value.report.failed == partial.failed  # the adds' own BulkReport


async def test_a_failing_read_raises_before_anything_is_written(fake: FakeInvent) -> None:
    s = scene(fake, inside=150, outside=0, new=3)

    fake.fail_next(1, status=400, match=r"^GET ")  # not retried

    async with client_for(fake) as client:
        with pytest.raises(BadRequestError):
            await client.contacts.sync_segment(s.segment_id, s.inputs)

    assert traffic(fake) == {READS: 1}


# --------------------------------------------------------------------------- resume


async def _interrupted(
    client: AsyncInventClient, fake: FakeInvent, s: Scene, journal: Path, *, route: str, after: int
) -> SegmentSyncReport:
    """Run an exact sync with ``journal`` and cancel it once ``after`` ``route`` requests
    were answered; return its partial report."""
    task = asyncio.create_task(
        client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, journal=journal, concurrency=2
        )
    )
    async with asyncio.timeout(STOP_TIMEOUT):
        while traffic(fake).get(route, 0) < after:  # noqa: ASYNC110 (the fake has no event)
            await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as cancelled:
        await task
    partial = partial_sync_report(cancelled.value)
    assert partial is not None
    assert partial.cancelled
    return partial


def _sent(fake: FakeInvent, operation: str) -> list[str]:
    return [r.path_params["contact_id"] for r in fake.requests if r.operation == operation]


@pytest.mark.parametrize("route", [ADDS, REMOVES], ids=["during-adds", "during-removals"])
async def test_an_interrupted_sync_resumes_without_redoing_adds_or_removals(
    fake: FakeInvent, tmp_path: Path, route: str
) -> None:
    s = scene(fake, inside=30, outside=40, new=60)
    journal = tmp_path / "sync.journal"
    fake.latency = 0.01

    async with client_for(fake) as client:
        first = await _interrupted(client, fake, s, journal, route=route, after=10)
        await asyncio.sleep(0.2)  # requests cut off by the cancel may still land: let them
        members = member_set(fake, s.segment_id)
        added, removed = members & set(s.new), set(s.outside) - members
        fake.clear_requests()
        second = await client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, journal=journal
        )

    assert member_set(fake, s.segment_id) == set(s.inputs)
    assert len(added) >= 10 if route == ADDS else len(removed) >= 10
    assert not set(_sent(fake, ADDS)) & added  # nothing the first run did is sent again
    assert not set(_sent(fake, REMOVES)) & removed
    # what the first run did (some answers were cut off by the cancel: the server has them)
    assert first.added <= len(added) <= first.added + len(first.cancelled_ids)
    assert first.removed <= len(removed) <= first.removed + len(first.cancelled_ids)
    assert (second.added, second.removed) == (60 - len(added), 40 - len(removed))
    assert second.unchanged == 30 + len(added)  # the earlier adds are members now
    assert second.ok


async def test_removals_in_the_journal_are_not_taken_for_adds(
    fake: FakeInvent, tmp_path: Path
) -> None:
    s = scene(fake, inside=10, outside=5, new=0)
    journal = tmp_path / "sync.journal"

    async with client_for(fake) as client:
        await client.contacts.sync_segment(
            s.segment_id, s.inside, remove_others=True, journal=journal
        )
        report = await client.contacts.sync_segment(  # now the removed ones are wanted back
            s.segment_id, [*s.inside, *s.outside], journal=journal
        )

    assert (report.added, report.journal) == (5, 0)
    assert member_set(fake, s.segment_id) == {*s.inside, *s.outside}
    assert sum(line.startswith("removed\t") for line in journal.read_text().splitlines()) == 5


async def test_an_add_only_sync_resumes_from_the_journal(fake: FakeInvent, tmp_path: Path) -> None:
    s = scene(fake, inside=0, outside=1050, new=8)
    journal = tmp_path / "sync.journal"

    async with client_for(fake) as client:
        first = await client.contacts.sync_segment(s.segment_id, s.new, journal=journal)
        fake.reset_stats()
        second = await client.contacts.sync_segment(s.segment_id, s.new, journal=journal)

    assert (first.strategy, second.strategy) == ("add-only", "add-only")
    assert (first.added, second.added, second.journal, second.skipped) == (8, 0, 8, 8)
    assert traffic(fake) == {READS: 1}


# --------------------------------------------------------------------------- dry run and plans


async def test_a_dry_run_sends_only_the_membership_reads(fake: FakeInvent) -> None:
    s = scene(fake, inside=250, outside=30, new=40)
    limit = RateLimit(per_minute=500)

    async with client_for(fake, rate_limit=limit) as client:
        plan = await client.contacts.sync_segment(
            s.segment_id, [*s.inputs, s.new[0]], remove_others=True, dry_run=True
        )

    assert traffic(fake) == {READS: 3}
    assert (plan.to_add, plan.to_remove, plan.unchanged, plan.duplicates) == (40, 30, 250, 1)
    assert (plan.members, plan.inputs, plan.read_requests, plan.write_requests) == (280, 291, 3, 70)
    assert (plan.requests, plan.requests_sent) == (73, 3)
    assert plan.rate_per_minute == pytest.approx(490)  # the pace: 500/min less 2% headroom
    assert plan.estimated_seconds == pytest.approx(73 / 490 * 60)
    assert str(plan) == "40 adds, 30 removes: 73 requests, 8.9 s at 490/min"
    assert member_set(fake, s.segment_id) == {*s.inside, *s.outside}


async def test_a_plan_without_a_rate_governor_has_no_time_estimate(fake: FakeInvent) -> None:
    s = scene(fake, inside=3, outside=0, new=2)

    async with client_for(fake, rate_limit=None) as client:
        plan = await client.contacts.sync_segment(s.segment_id, s.inputs, dry_run=True)

    assert (plan.rate_per_minute, plan.estimated_seconds) == (None, None)
    assert str(plan) == "2 adds, 0 removes: 3 requests, no time estimate (no rate limit)"


async def test_a_plan_passed_back_runs_on_its_snapshot_without_reading_again(
    fake: FakeInvent,
) -> None:
    s = scene(fake, inside=250, outside=30, new=40)
    other = fake.add_segment("Other")

    async with client_for(fake) as client:
        plan = await client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, dry_run=True
        )
        fake.reset_stats()
        report = await client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, plan=plan
        )
        with pytest.raises(ValueError, match="the plan is for segment"):
            await client.contacts.sync_segment(other.id, s.inputs, plan=plan)

    assert traffic(fake) == {ADDS: 40, REMOVES: 30}
    assert (report.added, report.removed, report.read_requests) == (40, 30, 0)
    assert "not read again" in report.reason
    assert isinstance(plan.snapshot, MemberTable)
    assert len(plan.snapshot) == 280


async def test_a_dry_run_counts_what_the_journal_has_done(fake: FakeInvent, tmp_path: Path) -> None:
    s = scene(fake, inside=5, outside=3, new=4)
    journal = tmp_path / "sync.journal"
    journal.write_text(f"{s.new[0]}\nremoved\t{s.outside[0]}\n", encoding="utf-8")

    async with client_for(fake) as client:
        plan = await client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, dry_run=True, journal=journal
        )

    assert (plan.to_add, plan.to_remove, plan.journal) == (3, 2, 2)


def record_verdicts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Record, per id, every verdict of the sync's classification and every skip reason of
    the bulk engine's precheck, in the order they are given: the run's engine asks for one
    id at a time (``reason``), the dry run for a batch (``reasons``)."""
    verdicts: dict[str, list[str]] = {}
    classify, reason, reasons = InputClassifier.verdicts, Precheck.reason, Precheck.reasons

    def recorded_classify(self: InputClassifier, contact_ids: Sequence[str]) -> bytearray:
        codes = classify(self, contact_ids)
        for contact_id, code in zip(contact_ids, codes, strict=True):
            verdicts.setdefault(contact_id, []).append(VERDICT_CODES[code].value)
        return codes

    def recorded_reason(self: Precheck, contact_id: str) -> str | None:
        why = reason(self, contact_id)
        verdicts.setdefault(contact_id, []).append(f"engine: {why or 'send'}")
        return why

    def recorded_reasons(self: Precheck, contact_ids: Sequence[str]) -> bytearray:
        codes = reasons(self, contact_ids)
        for contact_id, code in zip(contact_ids, codes, strict=True):
            verdicts.setdefault(contact_id, []).append(f"engine: {SKIP_CODES[code] or 'send'}")
        return codes

    monkeypatch.setattr(InputClassifier, "verdicts", recorded_classify)
    monkeypatch.setattr(Precheck, "reason", recorded_reason)
    monkeypatch.setattr(Precheck, "reasons", recorded_reasons)
    return verdicts


@pytest.mark.parametrize("strategy", ["add-only", "diff"])
async def test_a_plan_and_its_run_classify_every_id_alike(
    fake: FakeInvent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    exact = strategy == "diff"
    s = scene(fake, inside=4, outside=1046 if not exact else 6, new=5)  # 1,050: 11 pages
    deep = fake.add_contacts(2, segment_ids=[s.segment_id])  # past the first page
    first_page = s.inside[:2]
    inputs = [
        *first_page,
        first_page[0],  # a repeated member of the first page
        *deep,
        deep[0],  # a repeated member that add-only does not know of
        *s.new,
        s.new[1],  # a repeated non-member
        s.new[1],
    ]
    journal = tmp_path / "sync.journal"
    journal.write_text(f"{s.new[0]}\nremoved\t{s.outside[0]}\n", encoding="utf-8")
    verdicts = record_verdicts(monkeypatch)

    async with client_for(fake) as client:
        plan = await client.contacts.sync_segment(
            s.segment_id,
            inputs,
            remove_others=exact,
            verify=exact,
            journal=journal,
            dry_run=True,
        )
        planned = dict(verdicts)
        verdicts.clear()
        fake.clear_requests()
        report = await client.contacts.sync_segment(
            s.segment_id, inputs, remove_others=exact, verify=exact, journal=journal, plan=plan
        )

    assert plan.strategy == report.strategy == strategy
    assert verdicts == planned  # (one batch: its verdicts first, then the engine's reasons)
    assert planned[first_page[0]] == ["member", "duplicate"]
    assert planned[s.new[0]] == ["to-add", "engine: journal"]
    if exact:
        assert planned[deep[0]] == ["member", "duplicate"]
        assert planned[s.new[1]] == ["to-add", "duplicate", "duplicate", "engine: send"]
    else:  # only the first page is known: a deeper member is added again
        assert planned[deep[0]] == ["to-add", "to-add", "engine: send", "engine: duplicate"]
    sent = {i for i, said in planned.items() if "engine: send" in said}
    writes = [(r.method, r.path_params["contact_id"]) for r in fake.requests if r.method != "GET"]
    assert sorted(writes) == sorted(("POST" if i in inputs else "DELETE", i) for i in sent)
    assert (plan.to_add, plan.unchanged, plan.duplicates, plan.to_remove) == (
        report.added,
        report.unchanged,
        report.duplicates,
        report.removed,
    )
    assert plan.journal == report.journal + report.remove_skipped


async def test_progress_goes_through_every_phase_and_ends_finished(fake: FakeInvent) -> None:
    s = scene(fake, inside=120, outside=4, new=3)
    seen: list[SegmentSyncProgress] = []

    async with client_for(fake) as client:
        await client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, verify=True, on_progress=seen.append
        )

    phases = list(dict.fromkeys(p.phase for p in seen))
    assert phases == ["reading", "adding", "removing", "verifying"]
    last = seen[-1]
    assert last.finished
    assert (last.added, last.unchanged, last.removed) == (3, 120, 4)
    assert last.requests == fake.stats.total
    assert all(not p.finished for p in seen[:-1])


# --------------------------------------------------------------------------- the sync twin


async def test_the_sync_client_plans_and_syncs_like_the_async_one(api: Api) -> None:
    s = scene(api.fake, inside=150, outside=10, new=20)

    plan = await api.call(
        lambda c: c.contacts.sync_segment(s.segment_id, s.inputs, remove_others=True, dry_run=True)
    )
    report = await api.call(
        lambda c: c.contacts.sync_segment(s.segment_id, s.inputs, remove_others=True, plan=plan)
    )

    assert isinstance(plan, SegmentSyncPlan)
    assert (plan.to_add, plan.to_remove, plan.requests) == (20, 10, 32)
    assert isinstance(report, SegmentSyncReport)
    assert (report.added, report.removed, report.unchanged) == (20, 10, 150)
    assert set(api.fake.segment_members(s.segment_id)) == set(s.inputs)


async def test_the_sync_client_reads_an_async_pager_as_its_input(api: Api) -> None:
    s = scene(api.fake, inside=5, outside=0, new=0)
    source = api.fake.add_segment("Source")
    api.fake.add_to_segment(source.id, [*s.inside, *api.fake.add_contacts(3)])

    report = await api.call(
        lambda c: c.contacts.sync_segment(s.segment_id, c.contacts.list(segment_id=source.id))
    )

    assert (report.added, report.unchanged) == (3, 5)


async def test_an_input_item_that_is_no_id_stops_the_sync_after_the_ids_before_it(
    fake: FakeInvent,
) -> None:
    s = scene(fake, inside=3, outside=0, new=6)
    inputs: list[object] = [*s.new[:4], 42, *s.new[4:]]

    async with client_for(fake) as client:
        with pytest.raises(TypeError, match="expected a contact id string, got int"):
            await client.contacts.sync_segment(s.segment_id, inputs)  # type: ignore[arg-type]

    assert set(s.new[:4]) <= set(fake.segment_members(s.segment_id))  # not lost with it
    assert not set(s.new[4:]) & set(fake.segment_members(s.segment_id))


# --------------------------------------------------------------------------- the pure parts


def test_the_member_table_is_exact_even_when_every_fingerprint_collides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pure, "_fingerprint", lambda contact_id: 7)
    table = MemberTable()
    ids = [f"ct_{n}" for n in range(300)]

    numbers = [table.add(i) for i in ids]

    assert numbers == list(range(300))
    assert table.add("ct_5") == -1
    assert [table.find(i) for i in ids] == numbers
    assert table.find("ct_300") == -1
    assert table.find("ct_5 ") == -1  # same prefix, other length
    assert list(table) == ids


@pytest.mark.parametrize("collide", [False, True])
def test_a_batch_of_lookups_finds_what_one_by_one_lookups_find(
    monkeypatch: pytest.MonkeyPatch, collide: bool
) -> None:
    if collide:  # every id on one fingerprint: each lookup confirms the stored bytes
        monkeypatch.setattr(pure, "_fingerprint", lambda contact_id: 7)
    table = MemberTable()
    for n in range(0, 600, 2):
        table.add(f"ct_{n}")
    asked = [f"ct_{n}" for n in range(600)] + ["ct_4", "", "ct_4 ", "ct_é"]

    assert table.find_each(asked) == [table.find(i) for i in asked]
    assert MemberTable().find_each(asked) == [-1] * len(asked)


@given(st.lists(st.sampled_from([f"ct_{n}" for n in range(40)]), max_size=120), st.data())
def test_batched_verdicts_and_skip_reasons_are_those_of_one_id_at_a_time(
    inputs: list[str], data: st.DataObject
) -> None:
    members = data.draw(st.sets(st.sampled_from([f"ct_{n}" for n in range(40)])))
    done = data.draw(st.sets(st.sampled_from([f"ct_{n}" for n in range(40)])))
    cut = data.draw(st.integers(0, len(inputs)))
    keep_others = data.draw(st.booleans())
    table = MemberTable()
    for contact_id in sorted(members):
        table.add(contact_id)
    journal = FingerprintSet()
    for contact_id in done:
        journal.add(contact_id)
    batched, single = (
        InputClassifier(table, keep_others=keep_others),
        InputClassifier(table, keep_others=keep_others),
    )
    batched_skips, single_skips = Precheck(done=journal), Precheck(done=journal)

    codes = batched.verdicts(inputs[:cut]) + batched.verdicts(inputs[cut:])  # two batches
    one_by_one = [single.verdicts([i])[0] for i in inputs]
    reasons = batched_skips.reasons(inputs[:cut]) + batched_skips.reasons(inputs[cut:])

    assert codes == bytearray(one_by_one)
    assert [SKIP_CODES[c] for c in reasons] == [single_skips.reason(i) for i in inputs]
    assert list(batched.unmatched()) == list(single.unmatched())


def test_the_member_table_keeps_any_unicode_id() -> None:
    table = MemberTable()
    odd = ["ct_é", "联系人", "a/b", "\ud800lone", ""]

    for contact_id in odd:
        table.add(contact_id)

    assert [table.id_at(n) for n in range(len(odd))] == odd
    assert all(contact_id in table for contact_id in odd)
    assert CompactIds(odd) == odd
    assert CompactIds(odd)[-1] == ""
    assert CompactIds(odd)[1:3] == odd[1:3]


@pytest.mark.parametrize(
    ("members", "inputs", "remove_others", "strategy"),
    [
        (0, 0, False, "diff"),  # empty: the first page is all of it
        (100, 1, False, "diff"),  # one page: known already
        (101, 1, False, "add-only"),  # one more read for at most one saved add
        (101, 2, False, "diff"),  # 2 * 1 <= 2
        (1_050, 19, False, "add-only"),  # 2 * 10 > 19
        (1_050, 20, False, "diff"),
        (1_000_000, 19_997, False, "add-only"),  # 2 * 9,999 more reads > 19,997
        (1_000_000, 19_998, False, "diff"),
        (1_000_000, 19_997, True, "diff"),  # removals need the whole membership
        (1_000_000, None, False, "diff"),  # a long input without len()
        (None, 5, False, "diff"),  # no pagination-count: size unknown
    ],
)
def test_the_worth_it_rule(
    members: int | None, inputs: int | None, remove_others: bool, strategy: str
) -> None:
    choice = choose_strategy(members, inputs, remove_others=remove_others)

    assert choice.strategy == strategy
    assert choice.reason


def test_the_real_limit_arithmetic_reads_as_the_readme_says() -> None:
    plan = SegmentSyncPlan(
        segment_id="sg_vip",
        org_id="c",
        strategy="diff",
        reason="",
        remove_others=True,
        members=90_000,
        inputs=785_000,
        to_add=700_000,
        to_remove=5_000,
        unchanged=85_000,
        duplicates=0,
        journal=0,
        read_requests=900,
        write_requests=705_000,
        verify_requests=0,
        requests=705_900,
        requests_sent=900,
        rate_per_minute=500.0,
        estimated_seconds=pure.estimate_seconds(705_900, 500.0),
    )

    assert str(plan) == "700,000 adds, 5,000 removes: 705,900 requests, 23.5 h at 500/min"
    assert [format_duration(x) for x in (4.2, 45, 600, 7200)] == [
        "4.2 s",
        "45 s",
        "10.0 min",
        "2.0 h",
    ]


MEMORY_SCRIPT: Final = textwrap.dedent(
    """
    from invent_async._jobs.idset import FingerprintSet
    from invent_async._jobs.segment_sync_plan import MemberTable


    def rss_kib(field):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field))


    N = 1_000_000
    baseline = rss_kib("VmRSS:")
    table = MemberTable()
    for n in range(N):  # the members, as read
        table.add(f"ct_{n:07d}")
    flags = bytearray(len(table))
    to_add = FingerprintSet()  # what the add stream keeps: one fingerprint per id it sends
    for n in range(N // 2, N + N // 2):  # 1,000,000 input ids, half of them members
        contact_id = f"ct_{n:07d}"
        index = table.find(contact_id)
        if index >= 0:
            flags[index] = 1
        else:
            to_add.add(contact_id)
    removals = flags.count(0)
    held = table.nbytes() + len(flags) + 8 * len(to_add._slots)
    print(rss_kib("VmHWM:") - baseline, held, removals, len(to_add))
    """
)


@pytest.mark.heavy  # a million ids: seconds of CPU, the same on every interpreter
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status")
def test_a_million_members_and_a_million_input_ids_fit_in_64_mb() -> None:
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        timeout=50,
    )
    rss_kib, held, removals, to_add = (int(x) for x in done.stdout.split())

    assert (removals, to_add) == (500_000, 500_000)
    assert held < 64 * 2**20, f"the structures hold {held / 2**20:.1f} MiB"
    assert rss_kib < 96 * 2**10, f"peak RSS {rss_kib / 2**10:.1f} MiB over the baseline"


async def test_journal_records_that_the_segment_contradicts_are_reported_not_redone(
    fake: FakeInvent, tmp_path: Path
) -> None:
    s = scene(fake, inside=3, outside=2, new=2)
    journal = tmp_path / "sync.journal"
    left, back = s.new[0], s.outside[0]  # added earlier but no member; removed but member
    journal.write_text(f"{left}\nremoved\t{back}\n", encoding="utf-8")

    async with client_for(fake) as client:
        report = await client.contacts.sync_segment(
            s.segment_id, s.inputs, remove_others=True, journal=journal
        )

    changes = {(c.kind, c.contact_id) for c in report.changed_meanwhile}
    assert changes == {("left", left), ("back", back)}
    assert (report.added, report.journal, report.removed, report.remove_skipped) == (1, 1, 1, 1)
    assert member_set(fake, s.segment_id) == {*s.inside, s.new[1], back}


# --------------------------------------------------------------------------- the input in batches


async def test_an_input_in_batches_hands_out_the_ids_before_the_error_of_its_source() -> None:
    def ids() -> Iterator[str]:
        yield from (f"ct_{n}" for n in range(10))
        raise OSError("the disk went away")

    reader = IdReader(ids())

    assert await reader.count_up_to(3) is None  # three read ahead: they come first
    assert await reader.next_batch(2) == ["ct_0", "ct_1"]
    assert await reader.next_batch(100) == ["ct_2"]
    assert await reader.next_batch(100) == [f"ct_{n}" for n in range(3, 10)]
    with pytest.raises(OSError, match="the disk went away"):
        await reader.next_batch(100)


async def test_an_async_input_with_batches_of_its_own_hands_them_over_whole() -> None:
    class Batches:
        def __init__(self) -> None:
            self.left = [["ct_1", "ct_2", "ct_3"], ["ct_4"]]

        def __aiter__(self) -> Batches:
            return self

        async def __anext__(self) -> str:
            raise AssertionError("read one by one")

        async def next_batch(self) -> list[str]:
            return self.left.pop(0) if self.left else []

    async def plain() -> AsyncIterator[str]:
        for n in range(3):
            yield f"ct_{n}"

    batched, one_by_one = IdReader(Batches()), IdReader(plain())

    assert [await batched.next_batch() for _ in range(3)] == [
        ["ct_1", "ct_2", "ct_3"],
        ["ct_4"],
        [],
    ]
    assert [await one_by_one.next_batch() for _ in range(4)] == [["ct_0"], ["ct_1"], ["ct_2"], []]
