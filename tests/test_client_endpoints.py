"""Every contacts and segments endpoint, end to end through both clients against FakeInvent.

Each test runs twice (``api`` is parametrised over the async and the sync client) and checks
what a user would notice: the returned models, the fake's state after the call, and the
request that went over the wire (query, body). Path escaping lives in
``test_client_security.py``, errors in ``test_client_errors.py``, retries in
``test_client_retries.py`` and paging in ``test_pagination.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import attrs
import pytest
from _harness import Api, api_fixture  # noqa: F401

from invent_async import (
    UNSET,
    APIStatusError,
    AsyncInventClient,
    BadRequestError,
    Board,
    BroadcastStatus,
    ChannelType,
    ChatMessageRole,
    ChatMessageStatus,
    Contact,
    ContactChannelOption,
    ContactFieldType,
    ContactImportResult,
    ContactMemoryType,
    ContactStatus,
    ConversationState,
    InternalServerError,
    NotFoundError,
    OtherPart,
    SegmentColor,
    TextPart,
)
from invent_async.testing import RecordedRequest


def last_request(api: Api) -> RecordedRequest:
    assert api.requests, "no request was recorded"
    return api.requests[-1]


def names(contacts: list[Contact]) -> list[str | None]:
    return [c.name for c in contacts]


# --------------------------------------------------------------------------- segments of a contact


async def test_add_segment_puts_the_contact_into_the_segment(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(name="Jane", email="jane@example.com")

    result = await api.call(lambda c: c.contacts.add_segment(contact.id, segment.id))

    assert [s.id for s in result.segments] == [segment.id]
    assert api.fake.segment_members(segment.id) == [contact.id]
    assert api.fake.segment(segment.id).contacts_count == 1
    assert result == api.fake.contact(contact.id)
    assert (last_request(api).method, last_request(api).operation) == (
        "POST",
        "addSegmentToContact",
    )


async def test_add_segment_twice_keeps_one_membership(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(name="Jane")

    await api.call(lambda c: c.contacts.add_segment(contact.id, segment.id))
    again = await api.call(lambda c: c.contacts.add_segment(contact.id, segment.id))

    assert [s.id for s in again.segments] == [segment.id]
    assert api.fake.segment(segment.id).contacts_count == 1


async def test_remove_segment_takes_the_contact_out_of_the_segment(api: Api) -> None:
    vip = api.fake.add_segment("VIP")
    other = api.fake.add_segment("Other")
    contact = api.fake.add_contact(name="Jane", segment_ids=[vip.id, other.id])

    result = await api.call(lambda c: c.contacts.remove_segment(contact.id, vip.id))

    assert [s.id for s in result.segments] == [other.id]
    assert api.fake.segment_members(vip.id) == []
    assert api.fake.segment(vip.id).contacts_count == 0
    assert api.fake.segment(other.id).contacts_count == 1
    assert last_request(api).operation == "removeSegmentFromContact"


async def test_list_segments_gives_the_segments_of_one_contact(api: Api) -> None:
    first = api.fake.add_segment("First")
    api.fake.add_segment("Unrelated")
    second = api.fake.add_segment("Second", SegmentColor.RED)
    contact = api.fake.add_contact(name="Jane", segment_ids=[first.id, second.id])

    segments = await api.collect(lambda c: c.contacts.list_segments(contact.id))

    assert [(s.id, s.name, s.color) for s in segments] == [
        (first.id, "First", SegmentColor.NEUTRAL),
        (second.id, "Second", SegmentColor.RED),
    ]
    assert all(s.contacts_count == 1 for s in segments)


# --------------------------------------------------------------------------- list contacts


@pytest.fixture
def population(api: Api) -> dict[str, str]:
    """Contacts that differ in exactly one filterable way each; returns name -> id."""
    fake = api.fake
    vip = fake.add_segment("VIP")
    people = {
        "Alice Smith": fake.add_contact(
            name="Alice Smith",
            email="alice@example.com",
            username="alice",
            user_id="u-alice",
            segment_ids=[vip.id],
        ),
        "Bob": fake.add_contact(name="Bob", email="bob@example.com", unsubscribed=True),
        "Carol": fake.add_contact(name="Carol", phone="+15550001", blocked=True),
        "Dave": fake.add_contact(name="Dave", is_admin=True),
        "Eve": fake.add_contact(name="Eve", ai_replies_disabled=True),
    }
    return {"segment": vip.id, **{name: c.id for name, c in people.items()}}


EVERYONE = ["Alice Smith", "Bob", "Carol", "Dave", "Eve"]

FILTER_CASES: list[tuple[dict[str, Any], dict[str, str], list[str]]] = [
    ({"search": "aLi"}, {"search": "aLi"}, ["Alice Smith"]),
    ({"unsubscribed": True}, {"unsubscribed": "true"}, ["Bob"]),
    ({"unsubscribed": False}, {"unsubscribed": "false"}, ["Alice Smith", "Carol", "Dave", "Eve"]),
    ({"user_id": "u-alice"}, {"user_id": "u-alice"}, ["Alice Smith"]),
    ({"user_id": "+15550001"}, {"user_id": "+15550001"}, ["Carol"]),
    ({"name": "Bob"}, {"name": "Bob"}, ["Bob"]),
    ({"username": "alice"}, {"username": "alice"}, ["Alice Smith"]),
    ({"email": "bob@example.com"}, {"email": "bob@example.com"}, ["Bob"]),
    ({"exclude_admins": True}, {"exclude_admins": "true"}, ["Alice Smith", "Bob", "Carol", "Eve"]),
    ({"exclude_admins": False}, {"exclude_admins": "false"}, EVERYONE),
    ({"exclude_board_id": "bd_1"}, {"exclude_board_id": "bd_1"}, EVERYONE),
    ({"status": "ALL"}, {"status": "ALL"}, EVERYONE),
    ({"status": "SUBSCRIBED"}, {"status": "SUBSCRIBED"}, ["Alice Smith", "Dave", "Eve"]),
    ({"status": "UNSUBSCRIBED"}, {"status": "UNSUBSCRIBED"}, ["Bob"]),
    ({"status": ContactStatus.BLOCKED}, {"status": "BLOCKED"}, ["Carol"]),
    (
        {"status": ContactStatus.AI_REPLIES_DISABLED},
        {"status": "AI_REPLIES_DISABLED"},
        ["Eve"],
    ),
    (
        {"search": "a", "status": "SUBSCRIBED"},
        {"search": "a", "status": "SUBSCRIBED"},
        ["Alice Smith", "Dave"],
    ),
    (
        {"search": "a", "exclude_admins": True},
        {"search": "a", "exclude_admins": "true"},
        ["Alice Smith", "Carol"],
    ),
]


@pytest.mark.parametrize(
    ("filters", "sent", "expected"),
    FILTER_CASES,
    ids=[" ".join(f"{k}={v}" for k, v in case[0].items()) for case in FILTER_CASES],
)
async def test_list_contacts_filter_narrows_the_result(
    api: Api,
    population: dict[str, str],
    filters: dict[str, Any],
    sent: dict[str, str],
    expected: list[str],
) -> None:
    contacts = await api.collect(lambda c: c.contacts.list(**filters))

    assert names(contacts) == expected
    assert last_request(api).params == {**sent, "page": "1", "take": "100"}


async def test_list_contacts_by_segment_gives_only_its_members(
    api: Api, population: dict[str, str]
) -> None:
    segment_id = population["segment"]

    contacts = await api.collect(lambda c: c.contacts.list(segment_id=segment_id))

    assert names(contacts) == ["Alice Smith"]
    assert last_request(api).params["segment_id"] == segment_id


async def test_list_contacts_search_matches_case_insensitive_substrings(
    api: Api, population: dict[str, str]
) -> None:
    contacts = await api.collect(lambda c: c.contacts.list(search="SMITH"))

    assert names(contacts) == ["Alice Smith"]


async def test_list_contacts_without_filters_sends_only_paging(
    api: Api, population: dict[str, str]
) -> None:
    contacts = await api.collect(lambda c: c.contacts.list())

    assert names(contacts) == EVERYONE
    assert last_request(api).params == {"page": "1", "take": "100"}


async def test_list_contacts_filters_left_at_none_are_not_sent(
    api: Api, population: dict[str, str]
) -> None:
    await api.collect(
        lambda c: c.contacts.list(
            search=None,
            unsubscribed=None,
            user_id=None,
            name="Bob",
            username=None,
            email=None,
            segment_id=None,
            exclude_admins=None,
            exclude_board_id=None,
            status=None,
        )
    )

    assert [name for name, _ in last_request(api).query] == ["name", "page", "take"]


# --------------------------------------------------------------------------- one contact


async def test_get_contact_returns_it_as_the_fake_has_it(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(
        name="Jane", email="jane@example.com", phone="+15550002", segment_ids=[segment.id]
    )

    got = await api.call(lambda c: c.contacts.get(contact.id))

    assert got == api.fake.contact(contact.id)
    assert got.channels[0].email == "jane@example.com"
    assert got.created_at.tzinfo is not None
    assert last_request(api).operation == "getContact"


@pytest.mark.parametrize(
    ("channel", "expected_type"),
    [
        ({"email": "new@example.com"}, ChannelType.EMAIL),
        ({"phone": "+15550003"}, ChannelType.TWILIO),
        ({"user_id": "ext-42"}, ChannelType.CUSTOM),
    ],
    ids=["email", "phone", "user_id"],
)
async def test_create_contact_with_one_identity_makes_that_channel(
    api: Api, channel: dict[str, str], expected_type: ChannelType
) -> None:
    created = await api.call(lambda c: c.contacts.create(**channel))

    assert created.channels[0].type == expected_type
    assert api.fake.contact(created.id) == created
    assert last_request(api).json == {"channel": channel}


async def test_create_contact_sends_every_channel_field_and_its_segments(api: Api) -> None:
    vip = api.fake.add_segment("VIP")
    new = api.fake.add_segment("New")

    created = await api.call(
        lambda c: c.contacts.create(
            name="Jane Doe",
            email="jane@example.com",
            phone="+15550004",
            user_id="ext-7",
            segment_ids=[vip.id, new.id],
        )
    )

    assert created.name == "Jane Doe"
    channel = created.channels[0]
    assert (channel.user_id, channel.email, channel.phone, channel.name) == (
        "ext-7",
        "jane@example.com",
        "+15550004",
        "Jane Doe",
    )
    assert [s.id for s in created.segments] == [vip.id, new.id]
    assert api.fake.segment_members(vip.id) == [created.id]
    assert api.fake.segment(new.id).contacts_count == 1
    request = last_request(api)
    assert request.status == 200
    assert request.json == {
        "channel": {
            "user_id": "ext-7",
            "name": "Jane Doe",
            "email": "jane@example.com",
            "phone": "+15550004",
        },
        "segment_ids": [vip.id, new.id],
    }


async def test_create_contact_rejects_a_single_string_as_segment_ids(api: Api) -> None:
    with pytest.raises(TypeError):
        await api.call(lambda c: c.contacts.create(email="a@example.com", segment_ids="sg_1"))

    assert api.requests == []


async def test_update_contact_renames_it(api: Api) -> None:
    contact = api.fake.add_contact(name="Old")

    updated = await api.call(lambda c: c.contacts.update(contact.id, name="New"))

    assert updated.name == "New"
    assert api.fake.contact(contact.id).name == "New"
    assert last_request(api).json == {"name": "New"}


async def test_update_contact_with_name_none_clears_the_name(api: Api) -> None:
    contact = api.fake.add_contact(name="Old")

    updated = await api.call(lambda c: c.contacts.update(contact.id, name=None))

    assert updated.name is None
    assert api.fake.contact(contact.id).name is None
    assert last_request(api).json == {"name": None}


async def test_update_contact_blocks_and_unblocks(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")

    blocked = await api.call(lambda c: c.contacts.update(contact.id, blocked=True))
    assert blocked.blocked is True
    assert blocked.blocked_at is not None
    assert last_request(api).json == {"blocked": True}

    unblocked = await api.call(lambda c: c.contacts.update(contact.id, blocked=False))
    assert unblocked.blocked is False
    assert unblocked.blocked_at is None
    assert api.fake.contact(contact.id).blocked is False


async def test_update_contact_unsubscribes(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")

    updated = await api.call(lambda c: c.contacts.update(contact.id, unsubscribed=True))

    assert updated.unsubscribed is True
    assert updated.unsubscribed_at is not None
    assert api.fake.contact(contact.id).unsubscribed is True
    assert last_request(api).json == {"unsubscribed": True}


async def test_update_contact_with_nothing_to_change_fails_before_any_request(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")

    with pytest.raises(ValueError, match="at least one"):
        await api.call(lambda c: c.contacts.update(contact.id))

    assert api.requests == []


async def test_delete_contact_removes_it_and_its_memberships(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(name="Jane", segment_ids=[segment.id])
    keep = api.fake.add_contact(name="Keep", segment_ids=[segment.id])

    await api.call(lambda c: c.contacts.delete(contact.id))

    assert api.fake.contact_ids() == [keep.id]
    assert api.fake.segment_members(segment.id) == [keep.id]
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.contacts.get(contact.id))


async def test_merge_with_explicit_sources_folds_them_into_the_primary(api: Api) -> None:
    vip = api.fake.add_segment("VIP")
    primary = api.fake.add_contact(name="Primary", email="p@example.com")
    first = api.fake.add_contact(name="First", phone="+15550005", segment_ids=[vip.id])
    second = api.fake.add_contact(name="Second", user_id="ext-9")
    api.fake.add_note(first.id, "from the first")

    result = await api.call(lambda c: c.contacts.merge(primary.id, [first.id, second.id]))

    assert result.merged.id == primary.id
    assert result.merged_contact_ids == (first.id, second.id)
    assert len(result.merged.channels) == 3
    assert [s.id for s in result.merged.segments] == [vip.id]
    assert api.fake.contact_ids() == [primary.id]
    assert api.fake.segment_members(vip.id) == [primary.id]
    assert [n.content for n in api.fake.notes(primary.id)] == ["from the first"]
    assert last_request(api).json == {"source_contact_ids": [first.id, second.id]}


async def test_merge_without_sources_lets_the_server_find_duplicates(api: Api) -> None:
    primary = api.fake.add_contact(name="Jane", email="jane@example.com")
    duplicate = api.fake.add_contact(name="Jane D", email="JANE@example.com")
    stranger = api.fake.add_contact(name="Other", email="other@example.com")

    result = await api.call(lambda c: c.contacts.merge(primary.id))

    assert result.merged_contact_ids == (duplicate.id,)
    assert api.fake.contact_ids() == [primary.id, stranger.id]
    assert "source_contact_ids" not in (last_request(api).json or {})


@pytest.mark.parametrize("count", [0, 51])
async def test_merge_with_too_few_or_too_many_sources_fails_before_any_request(
    api: Api, count: int
) -> None:
    primary = api.fake.add_contact(name="Jane")
    sources = [f"ct_x{i}" for i in range(count)]

    with pytest.raises(ValueError, match="1 to 50"):
        await api.call(lambda c: c.contacts.merge(primary.id, sources))

    assert api.requests == []


async def test_list_fields_gives_the_organisations_field_definitions(api: Api) -> None:
    api.fake.add_field("tier", type="enum", schema={"type": "enum", "values": ["a", "b"]})

    fields = await api.collect(lambda c: c.contacts.list_fields())

    assert [f.key for f in fields] == ["contract", "company", "tier"]
    tier = fields[-1]
    assert tier.type == "enum"
    assert tier.schema == {"type": "enum", "values": ["a", "b"]}
    assert last_request(api).operation == "listContactFields"


async def test_list_notes_gives_a_contacts_notes_oldest_first(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")
    other = api.fake.add_contact(name="Other")
    api.fake.add_note(contact.id, "first")
    api.fake.add_note(other.id, "not hers")
    api.fake.add_note(contact.id, "second")

    notes = await api.collect(lambda c: c.contacts.list_notes(contact.id))

    assert [n.content for n in notes] == ["first", "second"]
    assert {n.contact_id for n in notes} == {contact.id}


async def test_preview_import_sorts_the_rows_and_writes_nothing(api: Api) -> None:
    jane = api.fake.add_contact(name="Jane", email="jane@example.com")
    vip = api.fake.add_segment("VIP")
    rows = [
        ContactChannelOption(type="email", email="jane@example.com", name="Jane Doe"),
        ContactChannelOption(type="email", email="sam@example.com", name="Sam Roe"),
        ContactChannelOption(type="email", email="not-an-email"),
    ]
    api.fake.fail_next(1, status=503)

    result = await api.call(lambda c: c.contacts.preview_import(rows, segment_id=vip.id))

    assert result == ContactImportResult(
        created=(rows[1],),
        updated=(attrs.evolve(rows[0], contact_id=jane.id),),
        invalid=(rows[2],),
    )
    assert result.invalid[0].name is UNSET  # a field the row came back without
    assert [(r.status, r.fault) for r in api.requests] == [(503, "fail"), (200, None)]  # retried
    assert (last_request(api).operation, last_request(api).json) == (
        "dryRunImportContacts",
        {
            "channels": [
                {"type": "email", "email": "jane@example.com", "name": "Jane Doe"},
                {"type": "email", "email": "sam@example.com", "name": "Sam Roe"},
                {"type": "email", "email": "not-an-email"},
            ],
            "segment_id": vip.id,
        },
    )
    assert api.fake.contact_ids() == [jane.id]
    assert api.fake.segment_members(vip.id) == []
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.contacts.preview_import(rows, segment_id="sg_missing"))


@pytest.mark.parametrize(
    ("channels", "segment_id", "error"),
    [
        ([], None, ValueError),
        ([ContactChannelOption(email="a@example.com")] * 10_001, None, ValueError),
        ("a@example.com", None, TypeError),
        ([{"email": "a@example.com"}], None, TypeError),
        (ContactChannelOption(email="a@example.com"), None, TypeError),
        ([ContactChannelOption(email="a@example.com")], " ", ValueError),
        ([ContactChannelOption(email="a@example.com")], 5, TypeError),
    ],
    ids=[
        "no-rows",
        "too-many",
        "a-string",
        "a-dict-row",
        "one-row",
        "blank-segment",
        "int-segment",
    ],
)
async def test_preview_import_refuses_bad_rows_before_sending(
    api: Api, channels: Any, segment_id: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await api.call(lambda c: c.contacts.preview_import(channels, segment_id=segment_id))

    assert api.requests == []


async def test_list_memories_gives_what_is_remembered_about_a_contact(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")
    other = api.fake.add_contact(name="Sam")
    bakery = api.fake.add_memory(contact.id, "Runs a bakery", created_at=date(2023, 12, 25))
    email = api.fake.add_memory(
        contact.id, "Prefers email", type=ContactMemoryType.PREFERENCE, importance=0.8
    )
    api.fake.add_memory(other.id, "not hers")
    api.fake.fail_next(1, status=503)

    memories = await api.collect(lambda c: c.contacts.list_memories(contact.id, take=1))

    assert memories == [bakery, email]
    assert memories[0].created_at == datetime(2023, 12, 25, tzinfo=UTC)  # a legacy plain date
    assert (memories[1].type, memories[1].importance) == (ContactMemoryType.PREFERENCE, 0.8)
    assert [(r.params, r.status, r.fault) for r in api.requests] == [
        ({"page": "1", "take": "1"}, 503, "fail"),  # retried
        ({"page": "1", "take": "1"}, 200, None),
        ({"page": "2", "take": "1"}, 200, None),
    ]
    assert api.requests[-1].operation == "listContactMemories"
    with pytest.raises(NotFoundError):
        await api.collect(lambda c: c.contacts.list_memories("ct_missing"))


async def test_update_channel_changes_and_clears_fields_of_a_custom_channel(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane", user_id="ext-1", phone="+15550006")
    channel_id = contact.channels[0].id

    channel = await api.call(
        lambda c: c.contacts.update_channel(
            contact.id, channel_id, name="Jane Channel", email="jc@example.com", phone=None
        )
    )

    assert channel.id == channel_id
    assert (channel.name, channel.email, channel.phone) == ("Jane Channel", "jc@example.com", None)
    assert api.fake.contact(contact.id).channels[0] == channel
    assert last_request(api).json == {
        "name": "Jane Channel",
        "phone": None,
        "email": "jc@example.com",
    }


async def test_update_channel_with_nothing_to_change_fails_before_any_request(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")

    with pytest.raises(ValueError):
        await api.call(lambda c: c.contacts.update_channel(contact.id, contact.channels[0].id))

    assert api.requests == []


# --------------------------------------------------------------------------- segments


async def test_list_segments_gives_every_segment_with_its_boards(api: Api) -> None:
    board = Board(board_id="bd_1", board_name="Pipeline", column_id="col_1")
    plain = api.fake.add_segment("Plain")
    column = api.fake.add_segment("Column", SegmentColor.BLUE, boards=[board])

    segments = await api.collect(lambda c: c.segments.list())

    assert [s.id for s in segments] == [plain.id, column.id]
    assert segments[0].boards == ()
    assert segments[1].boards == (board,)
    assert segments[1].color == SegmentColor.BLUE
    assert last_request(api).params == {"page": "1", "take": "100"}


async def test_list_segments_search_matches_names(api: Api) -> None:
    api.fake.add_segment("Customers")
    vip = api.fake.add_segment("VIP customers")
    api.fake.add_segment("Leads")

    segments = await api.collect(lambda c: c.segments.list(search="vip"))

    assert [s.id for s in segments] == [vip.id]
    assert last_request(api).params["search"] == "vip"


async def test_list_segments_can_exclude_board_columns(api: Api) -> None:
    plain = api.fake.add_segment("Plain")
    api.fake.add_segment("Column", boards=[Board(board_id="bd_1", column_id="col_1")])

    segments = await api.collect(lambda c: c.segments.list(exclude_board_columns=True))

    assert [s.id for s in segments] == [plain.id]
    assert last_request(api).params["exclude_board_columns"] == "true"


async def test_get_segment_returns_it_with_count_and_boards(api: Api) -> None:
    board = Board(board_id="bd_1", board_name="Pipeline", column_id="col_1")
    segment = api.fake.add_segment("VIP", SegmentColor.AMBER, boards=[board])
    api.fake.add_contacts(3, segment_ids=[segment.id])

    got = await api.call(lambda c: c.segments.get(segment.id))

    assert got == api.fake.segment(segment.id)
    assert (got.name, got.color, got.contacts_count, got.boards) == (
        "VIP",
        SegmentColor.AMBER,
        3,
        (board,),
    )


@pytest.mark.parametrize("color", [SegmentColor.FUCHSIA, "teal"])
async def test_create_segment_with_a_colour(api: Api, color: SegmentColor | str) -> None:
    created = await api.call(lambda c: c.segments.create("VIP", color=color))

    assert (created.name, created.color, created.contacts_count) == ("VIP", SegmentColor(color), 0)
    assert api.fake.segment(created.id) == created
    assert last_request(api).json == {"name": "VIP", "color": str(color)}


async def test_create_segment_without_a_colour_lets_the_server_choose(api: Api) -> None:
    created = await api.call(lambda c: c.segments.create("Leads"))

    assert created.color == SegmentColor.NEUTRAL
    assert last_request(api).json == {"name": "Leads"}


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.segments.create("VIP", color="mauve"),
        lambda c: c.segments.update("sg_1", color="mauve"),
        lambda c: c.segments.create(""),
        lambda c: c.segments.create("x" * 129),
        lambda c: c.segments.update("sg_1"),
    ],
    ids=["create-bad-colour", "update-bad-colour", "empty-name", "long-name", "update-nothing"],
)
async def test_invalid_segment_arguments_fail_before_any_request(
    api: Api, call: Callable[[AsyncInventClient], Any]
) -> None:
    with pytest.raises(ValueError):
        await api.call(call)

    assert api.requests == []


async def test_update_segment_renames_and_recolours_it(api: Api) -> None:
    segment = api.fake.add_segment("Old")
    contact = api.fake.add_contact(name="Jane", segment_ids=[segment.id])

    updated = await api.call(
        lambda c: c.segments.update(segment.id, name="New", color=SegmentColor.RED)
    )

    assert (updated.name, updated.color) == ("New", SegmentColor.RED)
    assert api.fake.segment(segment.id).name == "New"
    assert api.fake.contact(contact.id).segments[0].name == "New"
    assert last_request(api).json == {"name": "New", "color": "red"}


@pytest.mark.parametrize("color", [SegmentColor.LIME, "lime"])  # an open enum: member or str
async def test_update_segment_colour_only_keeps_the_name(
    api: Api, color: SegmentColor | str
) -> None:
    segment = api.fake.add_segment("Keep")

    updated = await api.call(lambda c: c.segments.update(segment.id, color=color))

    assert (updated.name, updated.color) == ("Keep", SegmentColor.LIME)
    assert last_request(api).json == {"color": "lime"}


async def test_delete_segment_removes_it_from_the_org_and_its_contacts(api: Api) -> None:
    segment = api.fake.add_segment("Doomed")
    keep = api.fake.add_segment("Keep")
    contact = api.fake.add_contact(name="Jane", segment_ids=[segment.id, keep.id])

    await api.call(lambda c: c.segments.delete(segment.id))

    assert api.fake.segment_ids() == [keep.id]
    assert [s.id for s in api.fake.contact(contact.id).segments] == [keep.id]
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.segments.get(segment.id))


# --------------------------------------------------------------------------- organisations


async def test_for_org_acts_on_that_organisations_data(api: Api) -> None:
    api.fake.add_segment("Main org segment")
    api.fake.add_org("org_abc")
    theirs = api.fake.add_segment("Sub org segment", org="org_abc")
    contact = api.fake.add_contact(name="Sub", org="org_abc")

    segments = await api.collect(lambda c: c.for_org("org_abc").segments.list())
    tagged = await api.call(
        lambda c: c.for_org("org_abc").contacts.add_segment(contact.id, theirs.id)
    )

    assert [s.id for s in segments] == [theirs.id]
    assert [s.id for s in tagged.segments] == [theirs.id]
    assert api.fake.segment_members(theirs.id, org="org_abc") == [contact.id]
    assert [r.path for r in api.requests] == [
        "/orgs/org_abc/segments",
        f"/orgs/org_abc/contacts/{contact.id}/segments/{theirs.id}",
    ]


async def test_for_org_leaves_the_parent_on_its_own_org(api: Api) -> None:
    api.fake.add_org("org_abc")
    mine = api.fake.add_segment("Mine")

    await api.collect(lambda c: c.for_org("org_abc").segments.list())
    segments = await api.collect(lambda c: c.segments.list())

    assert [s.id for s in segments] == [mine.id]
    assert api.requests[-1].path == "/orgs/c/segments"


async def test_for_an_unknown_org_is_not_found(api: Api) -> None:
    with pytest.raises(NotFoundError) as caught:
        await api.collect(lambda c: c.for_org("org_nope").segments.list())

    assert caught.value.path == "/orgs/org_nope/segments"


# --------------------------------------------------------------------------- response leniency


async def test_an_unknown_channel_type_arrives_as_a_plain_string(api: Api) -> None:
    contact = api.fake.add_contact(name="Pidgey", user_id="coop-7", channel_type="carrier_pigeon")

    got = await api.call(lambda c: c.contacts.get(contact.id))

    channel_type = got.channels[0].type
    assert channel_type == "carrier_pigeon"
    assert not isinstance(channel_type, ChannelType)
    listed = await api.collect(lambda c: c.contacts.list(user_id="coop-7"))
    assert listed[0].channels[0].type == "carrier_pigeon"


async def test_an_unknown_segment_colour_arrives_as_a_plain_string(api: Api) -> None:
    segment = api.fake.add_segment("Odd", color="mauve")

    got = await api.call(lambda c: c.segments.get(segment.id))

    assert got.color == "mauve"
    assert not isinstance(got.color, SegmentColor)


async def test_an_unknown_field_type_arrives_as_a_plain_string(api: Api) -> None:
    api.fake.add_field("hologram_id", type="hologram")

    fields = await api.collect(lambda c: c.contacts.list_fields())

    assert fields[-1].type == "hologram"
    assert not isinstance(fields[-1].type, ContactFieldType)


def contact_wire(**extra: Any) -> dict[str, Any]:
    """A hand-written contact as the API could send it, with ``extra`` unknown fields."""
    stamp = "2024-05-01T10:00:00.000Z"
    return {
        "id": "ct_wire",
        "name": "Wire",
        "blocked": False,
        "is_admin": False,
        "channels": [
            {
                "id": "ch_wire",
                "type": "custom",
                "user_id": "u-wire",
                "created_at": stamp,
                "updated_at": stamp,
                "brand_new_channel_field": {"nested": [1, 2]},
            }
        ],
        "segments": [
            {
                "id": "sg_wire",
                "name": "VIP",
                "color": "red",
                "contacts_count": 1,
                "created_at": stamp,
                "updated_at": stamp,
                "brand_new_segment_field": True,
            }
        ],
        "created_at": stamp,
        "updated_at": stamp,
        **extra,
    }


async def test_unknown_response_fields_are_ignored(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")
    api.fake.fail_next(
        1, 200, body=contact_wire(brand_new_field="x", another={"deep": None}, score=4.5)
    )

    got = await api.call(lambda c: c.contacts.get(contact.id))

    assert got.id == "ct_wire"
    assert got.channels[0].user_id == "u-wire"
    assert got.segments[0].color == SegmentColor.RED
    assert got.created_at.tzinfo is not None


# --------------------------------------------------------------------------- JSON backends


async def test_add_segment_works_with_each_json_backend(api: Api, json_backend: str) -> None:
    segment = api.fake.add_segment("Ünïcode ✓")
    contact = api.fake.add_contact(name="Zoë", email="zoe@example.com")

    result = await api.call(lambda c: c.contacts.add_segment(contact.id, segment.id))

    assert result == api.fake.contact(contact.id)
    assert result.segments[0].name == "Ünïcode ✓"


async def test_create_and_update_bodies_work_with_each_json_backend(
    api: Api, json_backend: str
) -> None:
    created = await api.call(lambda c: c.contacts.create(name="Zoë ✓", email="zoe@example.com"))
    cleared = await api.call(lambda c: c.contacts.update(created.id, name=None, blocked=True))

    assert api.requests[0].json == {"channel": {"name": "Zoë ✓", "email": "zoe@example.com"}}
    assert api.requests[1].json == {"name": None, "blocked": True}
    assert (cleared.name, cleared.blocked) == (None, True)


async def test_listing_across_pages_works_with_each_json_backend(
    api: Api, json_backend: str
) -> None:
    ids = api.fake.add_contacts(7)

    contacts = await api.collect(lambda c: c.contacts.list(take=3))

    assert [c.id for c in contacts] == ids
    assert len(api.requests) == 3


async def test_error_bodies_are_decoded_with_each_json_backend(api: Api, json_backend: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        await api.call(lambda c: c.contacts.get("ct_missing"))

    assert caught.value.body == {"message": "Contact 'ct_missing' not found"}


# --------------------------------------------------------------------------- bulk import


async def test_import_batch_creates_and_updates_contacts_in_one_request(api: Api) -> None:
    jane = api.fake.add_contact(name="Jane", email="jane@example.com")
    vip = api.fake.add_segment("VIP")
    rows = [
        ContactChannelOption(type="email", email="jane@example.com", name="Jane Doe"),
        ContactChannelOption(type="email", email="sam@example.com", name="Sam Roe"),
        ContactChannelOption(type="email", email="not-an-email"),
    ]

    result = await api.call(lambda c: c.contacts.import_batch(rows, segment_id=vip.id))

    (sam_id,) = [cid for cid in api.fake.contact_ids() if cid != jane.id]
    assert result == ContactImportResult(
        created=(attrs.evolve(rows[1], contact_id=sam_id),),
        updated=(attrs.evolve(rows[0], contact_id=jane.id),),
        invalid=(rows[2],),
    )
    assert api.fake.contact(sam_id).channels[0].email == "sam@example.com"
    assert api.fake.segment_members(vip.id) == [sam_id, jane.id]
    assert (last_request(api).operation, last_request(api).path) == (
        "importContacts",
        "/orgs/c/contacts/bulk",
    )
    assert last_request(api).json["channels"][1] == {
        "type": "email",
        "email": "sam@example.com",
        "name": "Sam Roe",
    }


async def test_import_batch_is_not_retried_once_it_reached_the_server(api: Api) -> None:
    api.fake.fail_next(1, status=503)

    with pytest.raises(InternalServerError):
        await api.call(
            lambda c: c.contacts.import_batch([ContactChannelOption(email="a@example.com")])
        )

    assert [r.status for r in api.requests] == [503]
    assert api.fake.contact_ids() == []


@pytest.mark.parametrize("method", ["preview_import", "import_batch"])
@pytest.mark.parametrize(
    ("channels", "segment_id", "error"),
    [
        ([], None, ValueError),
        ([ContactChannelOption(email="a@example.com")] * 10_001, None, ValueError),
        ("a@example.com", None, TypeError),
        ([{"email": "a@example.com"}], None, TypeError),
        ([ContactChannelOption(email="a@example.com")], " ", ValueError),
    ],
    ids=["no-rows", "too-many", "a-string", "a-dict-row", "blank-segment"],
)
async def test_both_imports_refuse_bad_rows_before_sending(
    api: Api, method: str, channels: Any, segment_id: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await api.call(lambda c: getattr(c.contacts, method)(channels, segment_id=segment_id))

    assert api.requests == []


# --------------------------------------------------------------------------- chats


def custom_contact(api: Api) -> tuple[Contact, str]:
    contact = api.fake.add_contact(name="Jane", user_id="+15555550123")
    return contact, contact.channels[0].id


async def test_create_chat_opens_a_chat_whose_only_member_is_the_contact_channel(
    api: Api,
) -> None:
    contact, channel_id = custom_contact(api)

    chat = await api.call(
        lambda c: c.contacts.create_chat(
            contact.id, channel_id, assistant_id="ast_1", title="Order", message="Where is it?"
        )
    )

    assert chat == api.fake.chat(chat.id)
    assert (chat.title, chat.org_id) == ("Order", "c")
    [member] = chat.members
    assert member.contact_channel is not None
    assert (member.contact_channel.id, member.contact_channel.type) == (
        channel_id,
        ChannelType.CUSTOM,
    )
    assert chat.state is not None
    assert chat.state.state is ConversationState.OPEN
    [opening] = api.fake.chat_messages(chat.id)
    assert opening.parts == (TextPart(text="Where is it?"),)
    assert opening.role is ChatMessageRole.USER
    assert last_request(api).json == {
        "assistant_id": "ast_1",
        "title": "Order",
        "message": [{"type": "text", "text": "Where is it?"}],
    }
    assert last_request(api).operation == "createContactChannelChat"


async def test_create_chat_sends_only_what_is_given(api: Api) -> None:
    contact, channel_id = custom_contact(api)

    chat = await api.call(lambda c: c.contacts.create_chat(contact.id, channel_id))

    assert last_request(api).json == {}
    assert api.fake.chat_messages(chat.id) == []
    assert api.fake.chat_ids(contact.id) == [chat.id]


async def test_a_chat_needs_a_custom_channel_of_the_contact(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane", email="j@example.com", channel_type="gmail")
    other, other_channel = custom_contact(api)

    with pytest.raises(BadRequestError):
        await api.call(lambda c: c.contacts.create_chat(contact.id, contact.channels[0].id))
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.contacts.create_chat(contact.id, other_channel))
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.contacts.create_chat("ct_missing", other_channel))

    assert api.fake.chat_ids(contact.id) == api.fake.chat_ids(other.id) == []


async def test_send_message_adds_the_contacts_message_parts_unknown_ones_included(
    api: Api,
) -> None:
    contact, channel_id = custom_contact(api)
    chat = await api.call(lambda c: c.contacts.create_chat(contact.id, channel_id))
    audio = OtherPart(data={"type": "audio", "audio": {"url": "https://example.com/a.ogg"}})
    parts: list[TextPart | OtherPart] = [
        TextPart(text="Thanks", start_timestamp=0.5, end_timestamp=1),
        audio,
    ]

    sent = await api.call(
        lambda c: c.contacts.send_message(contact.id, chat.id, parts, channel_id=channel_id)
    )

    assert sent.parts == (TextPart(text="Thanks", start_timestamp=0.5, end_timestamp=1.0), audio)
    assert sent.parts[1].type == "audio"
    assert sent.status is ChatMessageStatus.COMPLETED
    assert api.fake.chat_messages(chat.id) == [sent]
    assert last_request(api).json == {
        "message": [
            {"type": "text", "text": "Thanks", "start_timestamp": 0.5, "end_timestamp": 1},
            {"type": "audio", "audio": {"url": "https://example.com/a.ogg"}},
        ],
        "channel_id": channel_id,
    }
    assert (last_request(api).operation, last_request(api).path) == (
        "sendMessageAsContact",
        f"/orgs/c/contacts/{contact.id}/chats/{chat.id}/messages",
    )


async def test_send_message_on_channel_names_the_channel_in_the_path(api: Api) -> None:
    contact, channel_id = custom_contact(api)
    chat = await api.call(lambda c: c.contacts.create_chat(contact.id, channel_id))

    sent = await api.call(
        lambda c: c.contacts.send_message_on_channel(contact.id, channel_id, chat.id, "Hi")
    )

    assert sent.parts == (TextPart(text="Hi"),)
    assert last_request(api).json == {"message": [{"type": "text", "text": "Hi"}]}
    assert last_request(api).path_params == {
        "org_id": "c",
        "contact_id": contact.id,
        "channel_id": channel_id,
        "chat_id": chat.id,
    }


async def test_a_message_goes_only_to_a_chat_of_the_contact(api: Api) -> None:
    contact, channel_id = custom_contact(api)
    other, _ = custom_contact(api)
    chat = await api.call(lambda c: c.contacts.create_chat(contact.id, channel_id))

    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.contacts.send_message(other.id, chat.id, "Hi"))
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.contacts.send_message(contact.id, "chat_missing", "Hi"))

    assert api.fake.chat_messages(chat.id) == []


async def test_sending_a_message_is_not_retried_once_it_reached_the_server(api: Api) -> None:
    contact, channel_id = custom_contact(api)
    chat = await api.call(lambda c: c.contacts.create_chat(contact.id, channel_id))
    api.fake.fail_next(1, status=502)

    with pytest.raises(APIStatusError):
        await api.call(lambda c: c.contacts.send_message(contact.id, chat.id, "Hi"))

    assert [r.status for r in api.requests[1:]] == [502]
    assert api.fake.chat_messages(chat.id) == []


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("", ValueError),
        ([], ValueError),
        ([{"type": "text", "text": "hi"}], TypeError),
        (b"hi", TypeError),
        ({"type": "text"}, TypeError),
        (5, TypeError),
        ([OtherPart(data="audio")], TypeError),  # type: ignore[arg-type]
    ],
    ids=["empty-string", "no-parts", "a-dict-part", "bytes", "a-dict", "a-number", "data-str"],
)
async def test_a_message_that_is_no_parts_fails_before_sending(
    api: Api, message: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await api.call(lambda c: c.contacts.send_message("ct_1", "chat_1", message))

    assert api.requests == []


# --------------------------------------------------------------------------- broadcasts


async def test_create_broadcast_targets_segments(api: Api) -> None:
    vip = api.fake.add_segment("VIP")
    news = api.fake.add_segment("News")
    api.fake.add_contact(name="Jane", segment_ids=[vip.id, news.id])
    api.fake.add_contact(name="Sam", segment_ids=[news.id])

    created = await api.call(
        lambda c: c.broadcasts.create("Spring sale", segment_ids=[vip.id, news.id])
    )

    assert created == api.fake.broadcast(created.id)
    assert (created.status, created.contacts_count, created.send_to_all) == (
        BroadcastStatus.DRAFT,
        2,
        False,
    )
    assert [s.id for s in created.segments] == [vip.id, news.id]
    assert last_request(api).json == {
        "name": "Spring sale",
        "segment_ids": [vip.id, news.id],
        "send_to_all": False,
    }


async def test_create_broadcast_to_everyone_at_a_time(api: Api) -> None:
    api.fake.add_contacts(3)
    when = datetime(2024, 3, 1, 9, tzinfo=UTC)

    created = await api.call(
        lambda c: c.broadcasts.create("Newsletter", send_to_all=True, scheduled_at=when)
    )

    assert (created.status, created.scheduled_at, created.contacts_count) == (
        BroadcastStatus.SCHEDULED,
        when,
        3,
    )
    assert last_request(api).json == {
        "name": "Newsletter",
        "scheduled_at": "2024-03-01T09:00:00Z",
        "send_to_all": True,
    }


async def test_a_null_schedule_sends_at_once_and_none_given_makes_a_draft(api: Api) -> None:
    # the docs: a null scheduled_at "means send now"; the fake must not pass it for a draft
    vip = api.fake.add_segment("VIP")

    now = await api.call(
        lambda c: c.broadcasts.create("Flash", segment_ids=[vip.id], scheduled_at=None)
    )
    sent_now = last_request(api).json
    draft = await api.call(lambda c: c.broadcasts.create("Later", segment_ids=[vip.id]))

    assert sent_now == {"name": "Flash", "scheduled_at": None, "segment_ids": [vip.id]} | {
        "send_to_all": False
    }
    assert "scheduled_at" not in last_request(api).json
    assert (now.status, draft.status) == (BroadcastStatus.SENDING, BroadcastStatus.DRAFT)
    assert now.started_at is not None


@pytest.mark.parametrize(
    ("name", "options", "error"),
    [
        ("", {}, ValueError),
        ("x" * 256, {}, ValueError),
        ("Sale", {"segment_ids": [f"sg_{i}" for i in range(11)]}, ValueError),
        ("Sale", {"segment_ids": []}, ValueError),
        ("Sale", {"segment_ids": "sg_1"}, TypeError),
        ("Sale", {"segment_ids": ["sg_1", 2]}, TypeError),
        ("Sale", {"segment_ids": ["sg_1"], "send_to_all": True}, ValueError),
        ("Sale", {"scheduled_at": "2024-03-01"}, TypeError),
    ],
    ids=[
        "no-name",
        "long-name",
        "11-segments",
        "no-segments",
        "a-string",
        "a-non-id",
        "both-targets",
        "a-string-time",
    ],
)
async def test_create_broadcast_refuses_bad_targets_before_sending(
    api: Api, name: str, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await api.call(lambda c: c.broadcasts.create(name, **options))

    assert api.requests == []


async def test_create_broadcast_for_an_unknown_segment_is_not_found(api: Api) -> None:
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.broadcasts.create("Sale", segment_ids=["sg_missing"]))

    assert api.fake.requests[-1].operation == "createBroadcast"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, ["Draft", "Sent", "Other draft"]),
        ("ALL", ["Draft", "Sent", "Other draft"]),
        (BroadcastStatus.DRAFT, ["Draft", "Other draft"]),
        ("SENT", ["Sent"]),
    ],
)
async def test_list_broadcasts_filters_by_status_across_pages(
    api: Api, status: Any, expected: list[str]
) -> None:
    api.fake.add_broadcast("Draft")
    api.fake.add_broadcast("Sent", status="SENT")
    api.fake.add_broadcast("Other draft")

    found = await api.collect(lambda c: c.broadcasts.list(status=status, take=1))

    assert [b.name for b in found] == expected
    assert len(api.requests) == len(expected)
    assert api.requests[0].params.get("status") == (None if status is None else str(status))


async def test_send_starts_a_marketing_broadcast_without_a_body(api: Api) -> None:
    vip = api.fake.add_segment("VIP")
    api.fake.add_contact(name="Jane", segment_ids=[vip.id])
    draft = api.fake.add_broadcast("Sale", segment_ids=[vip.id])

    sending = await api.call(lambda c: c.broadcasts.send(draft.id))

    assert (sending.status, sending.recipients_count) == (BroadcastStatus.SENDING, 1)
    assert sending == api.fake.broadcast(draft.id)
    assert (last_request(api).body, last_request(api).operation) == (b"", "sendBroadcast")
    with pytest.raises(BadRequestError):  # sending already
        await api.call(lambda c: c.broadcasts.send(draft.id))


async def test_send_transactional_records_one_row_per_template(api: Api) -> None:
    contact, _ = custom_contact(api)
    order = api.fake.add_broadcast(
        "Order shipped", transactional=True, templates=["whatsapp_bot", "gmail"]
    )

    result = await api.call(
        lambda c: c.broadcasts.send_transactional(
            order.id, contact_id=contact.id, variables={"order": "1042"}
        )
    )

    assert [r.template_id for r in result.recipients] == [t.id for t in order.templates]
    assert all(r.is_sent and r.external_message_id for r in result.recipients)
    assert {r.contact.id for r in result.recipients if r.contact} == {contact.id}
    assert api.fake.broadcast_recipients(order.id) == list(result.recipients)
    assert last_request(api).json == {"contact_id": contact.id, "variables": {"order": "1042"}}


async def test_send_transactional_to_a_new_phone_in_the_background_for_one_template(
    api: Api,
) -> None:
    order = api.fake.add_broadcast("Order", transactional=True, templates=["twilio", "gmail"])
    first = order.templates[0].id
    assert first is not None

    result = await api.call(
        lambda c: c.broadcasts.send_transactional(
            order.id, phone="+15555550100", template_ids=[first], background=True
        )
    )

    [row] = result.recipients
    assert (row.template_id, row.phone, row.is_sent, row.external_message_id) == (
        first,
        "+15555550100",
        False,
        None,
    )
    assert len(api.fake.contact_ids()) == 1  # found or created by phone
    assert last_request(api).json == {
        "phone": "+15555550100",
        "template_ids": [first],
        "background": True,
    }


async def test_an_unsubscribed_recipient_is_skipped(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane", email="jane@example.com", unsubscribed=True)
    order = api.fake.add_broadcast("Order", transactional=True)

    result = await api.call(
        lambda c: c.broadcasts.send_transactional(order.id, email="jane@example.com")
    )

    assert [(r.is_skipped, r.is_sent) for r in result.recipients] == [(True, False)]
    assert result.recipients[0].contact == api.fake.contact(contact.id)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({}, ValueError),
        ({"name": "Jane"}, ValueError),
        ({"contact_id": ""}, ValueError),
        ({"email": "x" * 257}, ValueError),
        ({"contact_id": "ct_1", "template_ids": "tpl_1"}, TypeError),
        ({"contact_id": "ct_1", "variables": [("a", 1)]}, TypeError),
        ({"contact_id": "ct_1", "background": "yes"}, TypeError),
    ],
    ids=["nobody", "a-name-alone", "blank-contact", "long-email", "a-string", "pairs", "str"],
)
async def test_send_transactional_refuses_a_send_to_nobody_before_sending(
    api: Api, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await api.call(lambda c: c.broadcasts.send_transactional("bc_1", **options))

    assert api.requests == []


async def test_each_meaning_of_send_is_refused_by_a_broadcast_of_the_other_kind(
    api: Api,
) -> None:
    contact, _ = custom_contact(api)
    marketing = api.fake.add_broadcast("Sale")
    transactional = api.fake.add_broadcast("Order", transactional=True)

    with pytest.raises(BadRequestError):
        await api.call(
            lambda c: c.broadcasts.send_transactional(marketing.id, contact_id=contact.id)
        )
    with pytest.raises(BadRequestError):
        await api.call(lambda c: c.broadcasts.send(transactional.id))
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.broadcasts.send("bc_missing"))

    assert api.fake.broadcast(marketing.id).status is BroadcastStatus.DRAFT
    assert api.fake.broadcast_recipients(transactional.id) == []
