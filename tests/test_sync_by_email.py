"""``sync_segment(segment_id, emails=...)``: segment membership by email, against FakeInvent.

The rows are imported into the segment (2 requests per 10,000 rows without creating
contacts), then the sync runs on the ids the answers named, reading the membership to remove
the others. A failed import request never leads to a removal.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from conftest import API_KEY, FAST_RATE
from invent_async import (
    AsyncInventClient,
    ImportPlan,
    ImportReport,
    InventClient,
    SegmentSyncPlan,
    SegmentSyncProgress,
    SegmentSyncReport,
)
from invent_async.testing import FakeInvent, ThreadedFake

IMPORT: Final = r"^POST /orgs/[^/]+/contacts/bulk$"


def by_kind(fake: FakeInvent) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for request in fake.requests:
        if request.path.endswith("/contacts/bulk/dry"):
            kind = "dry run"
        elif request.path.endswith("/contacts/bulk"):
            kind = "import"
        elif request.method == "GET":
            kind = "read"
        elif request.method == "DELETE":
            kind = "remove"
        else:
            kind = f"{request.method} {request.path}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def seeded(fake: FakeInvent) -> dict[str, Any]:
    segment = fake.add_segment("Customers", id="sg_c")
    stays = fake.add_contact(name="Stays", email="stays@example.com", segment_ids=["sg_c"])
    leaves = fake.add_contact(name="Leaves", email="leaves@example.com", segment_ids=["sg_c"])
    joins = fake.add_contact(name="Joins", email="joins@example.com")
    return {"segment": segment, "stays": stays, "leaves": leaves, "joins": joins}


EMAILS: Final = ["Stays@example.com", "joins@example.com", "nobody@example.com", "bad"]


async def test_a_segment_is_made_to_hold_the_contacts_of_a_list_of_emails(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    c = seeded(fake)
    report = await client.contacts.sync_segment("sg_c", emails=EMAILS, remove_others=True)

    assert isinstance(report, SegmentSyncReport)
    assert sorted(fake.segment_members("sg_c")) == sorted([c["stays"].id, c["joins"].id])
    assert len(fake.contact_ids()) == 3  # nobody@example.com was not created
    imported = report.imported
    assert isinstance(imported, ImportReport)
    assert (imported.updated, imported.skipped, imported.invalid) == (2, 1, 1)
    assert (report.added, report.unchanged, report.removed) == (0, 2, 1)
    assert list(report.removed_ids) == [c["leaves"].id]
    assert report.strategy == "diff"
    assert "by email" in report.reason
    assert by_kind(fake) == {"dry run": 1, "import": 1, "read": 1, "remove": 1}
    assert report.requests_sent == 4
    assert not report.ok  # an invalid row: the import did not take every row
    assert imported.failed == 0


async def test_create_missing_creates_the_unknown_contacts_in_the_segment(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    c = seeded(fake)
    report = await client.contacts.sync_segment(
        "sg_c", emails=EMAILS[:3], create_missing=True, remove_others=True
    )
    members = set(fake.segment_members("sg_c"))
    assert len(members) == 3
    assert c["leaves"].id not in members
    assert report.imported is not None
    assert report.imported.created == 1
    assert report.ok
    assert by_kind(fake) == {"import": 1, "read": 1, "remove": 1}


async def test_without_remove_others_the_list_is_only_added(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    c = seeded(fake)
    report = await client.contacts.sync_segment("sg_c", emails=EMAILS)
    assert c["leaves"].id in fake.segment_members("sg_c")
    assert c["joins"].id in fake.segment_members("sg_c")
    assert (report.removed, report.unchanged) == (0, 2)


async def test_a_dry_run_plans_the_import_and_the_removals_and_writes_nothing(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    seeded(fake)
    plan = await client.contacts.sync_segment(
        "sg_c", emails=EMAILS, remove_others=True, dry_run=True
    )
    assert isinstance(plan, SegmentSyncPlan)
    assert isinstance(plan.imported, ImportPlan)
    assert (plan.imported.updated, plan.imported.skipped) == (2, 1)
    assert (plan.to_add, plan.unchanged, plan.to_remove) == (1, 1, 1)
    # the import's 2 requests (dry run and import) + 1 read + 1 removal
    assert (plan.write_requests, plan.requests) == (3, 4)
    assert by_kind(fake) == {"dry run": 1, "read": 1}
    assert len(fake.segment_members("sg_c")) == 2


async def test_a_failed_import_request_removes_no_member(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    c = seeded(fake)
    fake.fail_next(1, 503, match=IMPORT)
    report = await client.contacts.sync_segment("sg_c", emails=EMAILS[:2], remove_others=True)
    assert report.imported is not None
    assert report.imported.failed == 2
    assert "removals skipped: the contact is unknown for 2 of the rows" in report.reason
    assert c["leaves"].id in fake.segment_members("sg_c")  # not removed
    assert report.removed == 0
    assert not report.ok


async def test_an_answer_that_does_not_name_a_contact_removes_no_member(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    # the docs do not say the answer names each row's contact: without it, the members to
    # keep are unknown, and the sync must not remove one
    c = seeded(fake)
    answer = {"created": [], "updated": [{"email": "stays@example.com"}], "invalid": []}
    fake.fail_next(1, 200, body=answer, match=IMPORT)
    report = await client.contacts.sync_segment("sg_c", emails=EMAILS[:1], remove_others=True)
    assert report.imported is not None
    assert report.imported.updated == 1
    assert "removals skipped: the contact is unknown for 1 of the rows" in report.reason
    assert c["leaves"].id in fake.segment_members("sg_c")
    assert report.removed == 0
    assert not report.remove_others


async def test_progress_goes_from_the_import_to_the_membership(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    seeded(fake)
    phases: list[str] = []

    def seen(progress: SegmentSyncProgress) -> None:
        if not phases or phases[-1] != progress.phase:
            phases.append(progress.phase)

    await client.contacts.sync_segment("sg_c", emails=EMAILS, remove_others=True, on_progress=seen)
    assert phases[0] == "adding"
    assert "reading" in phases
    assert phases[-1] == "removing"


async def test_verify_reads_the_membership_again(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    seeded(fake)
    report = await client.contacts.sync_segment(
        "sg_c", emails=EMAILS[:2], remove_others=True, verify=True
    )
    assert report.verified
    assert report.ok
    assert list(report.missing) == []
    assert list(report.unexpected) == []


async def test_ids_or_emails_but_one_of_them(client: AsyncInventClient) -> None:
    with pytest.raises(TypeError, match="contact_ids or emails"):
        await client.contacts.sync_segment("sg_c")
    with pytest.raises(TypeError, match="contact_ids or emails"):
        await client.contacts.sync_segment("sg_c", ["ct_1"], emails=["a@b.co"])


async def test_a_plan_is_for_a_sync_by_id(fake: FakeInvent, client: AsyncInventClient) -> None:
    seeded(fake)
    plan = await client.contacts.sync_segment("sg_c", ["ct_x"], dry_run=True)
    with pytest.raises(TypeError, match="plan="):
        await client.contacts.sync_segment("sg_c", emails=["a@b.co"], plan=plan)


def test_the_sync_client_syncs_by_email() -> None:
    with (
        ThreadedFake(api_key=API_KEY) as fake,
        InventClient(API_KEY, base_url=fake.url, rate_limit=FAST_RATE) as client,
    ):
        c = seeded(fake)
        report = client.contacts.sync_segment("sg_c", emails=EMAILS[:2], remove_others=True)
        members = fake.segment_members("sg_c")
    assert sorted(members) == sorted([c["stays"].id, c["joins"].id])
    assert report.removed == 1


async def test_an_invalid_row_naming_a_member_removes_no_member(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.add_segment("Customers", id="sg_c")
    jane = fake.add_contact(name="Jane", email="jane@example.com", segment_ids=["sg_c"])
    fake.add_contact(name="Bob", email="bob@example.com", segment_ids=["sg_c"])
    rows = [{"email": "jane@example.com", "name": "Jane\tDoe"}, "bob@example.com", "not-an-email"]
    report = await client.contacts.sync_segment("sg_c", emails=rows, remove_others=True)
    assert jane.id in fake.segment_members("sg_c")
    assert report.removed == 0
    assert "the contact is unknown for 1 of the rows" in report.reason
