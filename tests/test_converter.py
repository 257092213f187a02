"""The converter's wire rules, tested with plain function calls (no event loop, no server).

Examples are copied from ``invent-openapi.yaml`` (``components/examples``).
"""

from __future__ import annotations

import copy
import enum
import pickle
import re
from datetime import UTC, datetime, timedelta, timezone
from types import GenericAlias
from typing import Any

import attrs
import pytest
import strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invent_async import (
    UNSET,
    Channel,
    ChannelType,
    Contact,
    ContactChannelOption,
    ContactField,
    ContactFieldType,
    ContactImportResult,
    ContactMemory,
    ContactMemoryType,
    ContactNote,
    MergeResult,
    Segment,
    SegmentColor,
    Unset,
)
from invent_async import _converter as conv
from invent_async import _models as m
from invent_async._converter import InvalidData
from invent_async._models import (
    ChannelUpdate,
    ContactCreate,
    ContactImport,
    ContactMerge,
    ContactUpdate,
    NewChannel,
    SegmentCreate,
    SegmentUpdate,
)
from invent_async._protocol import json_body

# --------------------------------------------------------------------------- spec examples

CHANNEL_EXAMPLE: dict[str, Any] = {
    "id": "ch_1",
    "type": "custom",
    "user_id": "+15555550123",
    "avatar": None,
    "name": "Jane Doe",
    "username": "janedoe",
    "email": "jane@example.com",
    "phone": "+15555550123",
    "country": "US",
    "agent": None,
    "ip": None,
    "language": "en",
    "platform_data": {},
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2023-11-07T05:31:56Z",
    "link": None,
}

SEGMENT_EXAMPLE: dict[str, Any] = {
    "id": "sg_1",
    "name": "VIP customers",
    "color": "red",
    "contacts_count": 42,
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2023-11-07T05:31:56Z",
}

CONTACT_EXAMPLE: dict[str, Any] = {
    "id": "ct_1",
    "name": "Jane Doe",
    "blocked": False,
    "unsubscribed": False,
    "is_admin": False,
    "channels": [CHANNEL_EXAMPLE],
    "segments": [SEGMENT_EXAMPLE],
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2023-11-07T05:31:56Z",
    "blocked_at": None,
    "unsubscribed_at": None,
    "unsubscribe_reason": None,
    "unsubscribe_feedback": None,
}

CONTACT_WITHOUT_SEGMENTS_EXAMPLE: dict[str, Any] = {**CONTACT_EXAMPLE, "segments": []}

CONTACT_LIST_EXAMPLE: list[dict[str, Any]] = [
    CONTACT_EXAMPLE,
    {
        "id": "ct_2",
        "name": None,
        "blocked": True,
        "unsubscribed": True,
        "is_admin": False,
        "channels": [
            {
                "id": "ch_2",
                "type": "whatsapp_bot",
                "user_id": "+15555550188",
                "avatar": None,
                "name": None,
                "phone": "+15555550188",
                "created_at": "2023-11-07T05:31:56Z",
                "updated_at": "2023-11-07T05:31:56Z",
            }
        ],
        "segments": [],
        "created_at": "2023-11-07T05:31:56Z",
        "updated_at": "2023-11-07T05:31:56Z",
        "blocked_at": "2023-11-07T05:31:56Z",
        "unsubscribed_at": "2023-11-07T05:31:56Z",
        "unsubscribe_reason": "Not interested",
        "unsubscribe_feedback": "Please stop messaging me.",
    },
]

CONTACT_MERGE_RESULT_EXAMPLE: dict[str, Any] = {
    "merged": CONTACT_EXAMPLE,
    "merged_contact_ids": ["ct_2", "ct_3"],
}

SEGMENT_LIST_EXAMPLE: list[dict[str, Any]] = [
    SEGMENT_EXAMPLE,
    {
        "id": "sg_2",
        "name": "Newsletter",
        "color": "sky",
        "contacts_count": 1280,
        "created_at": "2023-11-07T05:31:56Z",
        "updated_at": "2023-11-07T05:31:56Z",
    },
]

SEGMENT_WITH_BOARDS_EXAMPLE: dict[str, Any] = {
    **SEGMENT_EXAMPLE,
    "boards": [{"board_id": "brd_1", "board_name": "Sales pipeline", "column_id": "col_1"}],
}

SEGMENT_WITH_BOARDS_LIST_EXAMPLE: list[dict[str, Any]] = [
    SEGMENT_WITH_BOARDS_EXAMPLE,
    {**SEGMENT_LIST_EXAMPLE[1], "boards": []},
]

SEGMENT_CREATED_EXAMPLE: dict[str, Any] = {**SEGMENT_EXAMPLE, "contacts_count": 0, "boards": []}

CONTACT_FIELD_LIST_EXAMPLE: list[dict[str, Any]] = [
    {
        "id": "fld_1",
        "table_id": "tbl_1",
        "key": "contract",
        "type": "file",
        "schema": {
            "type": "file",
            "name": "Contract",
            "description": "Signed contract",
            "optional": True,
            "array": False,
            "hidden": False,
            "allowed_types": ["application/pdf"],
            "visibility": "PRIVATE",
        },
        "readonly": False,
        "kind": "system",
    }
]

CONTACT_NOTE_LIST_EXAMPLE: list[dict[str, Any]] = [
    {
        "id": "nt_1",
        "contact_id": "ct_1",
        "content": "Asked for a callback next week about the annual plan.",
        "attachments": [
            {
                "id": "att_1",
                "file_path": "notes/nt_1/document.pdf",
                "file_filename": "document.pdf",
                "file_size": 1024,
                "file_mimetype": "application/pdf",
                "file_url": "https://files.example.com/notes/nt_1/document.pdf",
                "created_at": "2023-11-07T05:31:56Z",
            }
        ],
        "created_at": "2023-11-07T05:31:56Z",
        "updated_at": "2023-11-07T05:31:56Z",
        "user": {"id": "usr_1", "name": "Alex Agent", "avatar": None},
    }
]

CONTACT_MEMORY_LIST_EXAMPLE: list[dict[str, Any]] = [
    {
        "id": "mem_1",
        "content": "Prefers to be contacted by email in the morning.",
        "type": "PREFERENCE",
        "importance": 0.8,
        "created_at": "2023-11-07T05:31:56Z",
        "updated_at": "2023-11-07T05:31:56Z",
        "contact_id": "ct_1",
    },
    {
        "id": "mem_2",
        "content": "Runs a bakery with two shops.",
        "type": "FACT",
        "importance": 0.5,
        "created_at": "2023-12-25",
        "updated_at": None,
        "contact_id": "ct_1",
    },
]

CONTACT_BULK_IMPORT_RESULT_EXAMPLE: dict[str, Any] = {
    "created": [{"type": "email", "email": "sam@example.com", "name": "Sam Roe"}],
    "updated": [
        {"type": "email", "email": "jane@example.com", "name": "Jane Doe", "contact_id": "ct_1"}
    ],
    "invalid": [{"type": "email", "email": "not-an-email"}],
}

CHAT_EXAMPLE: dict[str, Any] = {
    "id": "chat_1",
    "title": "Order question",
    "model": None,
    "members": [
        {
            "id": "mbr_1",
            "user": None,
            "session": None,
            "contact_channel": {
                "id": "ch_1",
                "type": "custom",
                "user_id": "+15555550123",
                "avatar": None,
                "name": "Jane Doe",
                "username": "janedoe",
                "email": "jane@example.com",
                "phone": "+15555550123",
                "country": "US",
                "agent": None,
                "ip": None,
                "language": "en",
                "link": None,
                "contact": {"id": "ct_1", "name": "Jane Doe", "blocked": False, "is_admin": False},
            },
        }
    ],
    "temporary": False,
    "visibility": "PRIVATE",
    "pinned": False,
    "status": "RUNNING",
    "shared_url": None,
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2023-11-07T05:31:56Z",
    "tools": [],
    "features": {},
    "org_id": "org_1",
    "state": {
        "id": "cs_1",
        "state": "OPEN",
        "integration_id": "custom",
        "assistant_id": "ast_1",
        "assistant_integration_id": None,
        "conversation_id": None,
        "ai_enabled": True,
        "admin_unseen_count": 0,
        "user_unseen_count": 0,
    },
}

CHAT_MESSAGE_EXAMPLE: dict[str, Any] = {
    "id": "msg_1",
    "role": "user",
    "model": None,
    "status": "COMPLETED",
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2023-11-07T05:31:56Z",
    "messages": [{"role": "user", "parts": [{"type": "text", "text": "Thanks, got it!"}]}],
    "tools": [],
    "features": {},
    "member": {"id": "mbr_1"},
    "error": None,
    "broadcast_id": None,
    "is_broadcast_message": False,
    "usage": None,
}

BROADCAST_EXAMPLE: dict[str, Any] = {
    "id": "bc_1",
    "name": "Spring sale",
    "status": "SCHEDULED",
    "scheduled_at": "2024-03-01T09:00:00Z",
    "started_at": None,
    "completed_at": None,
    "contacts_count": 42,
    "recipients_count": 0,
    "skipped_count": 0,
    "sent_count": 0,
    "failed_count": 0,
    "delivered_count": 0,
    "opened_count": 0,
    "played_count": 0,
    "click_count": 0,
    "complained_count": 0,
    "unsubscribed_count": 0,
    "error_message": None,
    "segments": [
        {
            "id": "sg_1",
            "name": "VIP customers",
            "contacts_count": 42,
            "created_at": "2023-11-07T05:31:56Z",
            "updated_at": "2023-11-07T05:31:56Z",
        }
    ],
    "send_to_all": False,
    "templates": [
        {
            "id": "tpl_1",
            "broadcast_id": "bc_1",
            "connection_id": "con_1",
            "integration_id": "whatsapp_bot",
            "recipients_count": 0,
            "config": {},
            "error": None,
            "created_at": "2023-11-07T05:31:56Z",
            "updated_at": "2023-11-07T05:31:56Z",
        }
    ],
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2023-11-07T05:31:56Z",
}

BROADCAST_SENDING_EXAMPLE: dict[str, Any] = {
    "id": "bc_1",
    "name": "Spring sale",
    "status": "SENDING",
    "scheduled_at": None,
    "started_at": "2024-03-01T09:00:02Z",
    "completed_at": None,
    "contacts_count": 42,
    "recipients_count": 42,
    "skipped_count": 1,
    "sent_count": 10,
    "failed_count": 0,
    "delivered_count": 8,
    "opened_count": 3,
    "played_count": 0,
    "click_count": 1,
    "complained_count": 0,
    "unsubscribed_count": 0,
    "error_message": None,
    "segments": [
        {
            "id": "sg_1",
            "name": "VIP customers",
            "contacts_count": 42,
            "created_at": "2023-11-07T05:31:56Z",
            "updated_at": "2023-11-07T05:31:56Z",
        }
    ],
    "send_to_all": False,
    "templates": [
        {
            "id": "tpl_1",
            "broadcast_id": "bc_1",
            "connection_id": "con_1",
            "integration_id": "whatsapp_bot",
            "recipients_count": 42,
            "config": {},
            "error": None,
            "created_at": "2023-11-07T05:31:56Z",
            "updated_at": "2024-03-01T09:00:02Z",
        }
    ],
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2024-03-01T09:00:02Z",
}

BROADCAST_LIST_EXAMPLE: list[dict[str, Any]] = [
    {
        "id": "bc_2",
        "name": "Monthly newsletter",
        "status": "SENT",
        "scheduled_at": None,
        "started_at": "2023-11-07T06:00:00Z",
        "completed_at": "2023-11-07T06:05:00Z",
        "contacts_count": 1280,
        "recipients_count": 1280,
        "skipped_count": 12,
        "sent_count": 1268,
        "failed_count": 3,
        "delivered_count": 1250,
        "opened_count": 610,
        "played_count": 0,
        "click_count": 95,
        "complained_count": 1,
        "unsubscribed_count": 4,
        "error_message": None,
        "segments": [],
        "send_to_all": True,
        "templates": [
            {
                "id": "tpl_2",
                "broadcast_id": "bc_2",
                "connection_id": "con_2",
                "integration_id": "gmail",
                "recipients_count": 1280,
                "config": {},
                "error": None,
                "created_at": "2023-11-07T05:31:56Z",
                "updated_at": "2023-11-07T06:05:00Z",
            }
        ],
        "created_at": "2023-11-07T05:31:56Z",
        "updated_at": "2023-11-07T06:05:00Z",
    },
    {
        "id": "bc_3",
        "name": "Spring sale",
        "status": "DRAFT",
        "scheduled_at": None,
        "started_at": None,
        "completed_at": None,
        "contacts_count": 0,
        "recipients_count": 0,
        "skipped_count": 0,
        "sent_count": 0,
        "failed_count": 0,
        "delivered_count": 0,
        "opened_count": 0,
        "played_count": 0,
        "click_count": 0,
        "complained_count": 0,
        "unsubscribed_count": 0,
        "error_message": None,
        "segments": [],
        "send_to_all": False,
        "templates": [],
        "created_at": "2023-11-07T05:31:56Z",
        "updated_at": "2023-11-07T05:31:56Z",
    },
]

BROADCAST_TRANSACTIONAL_RESULT_EXAMPLE: dict[str, Any] = {
    "recipients": [
        {
            "id": "rcp_1",
            "broadcast_id": "bc_4",
            "broadcast_name": "Order shipped",
            "template_id": "tpl_4",
            "user_id": "+15555550123",
            "name": "Jane Doe",
            "username": "janedoe",
            "phone": "+15555550123",
            "email": "jane@example.com",
            "is_skipped": False,
            "is_skipped_at": None,
            "is_failed": False,
            "is_failed_at": None,
            "is_bounced": False,
            "is_bounced_at": None,
            "is_sent": True,
            "is_sent_at": "2023-11-07T05:31:57Z",
            "is_delivered": False,
            "is_delivered_at": None,
            "is_complained": False,
            "is_complained_at": None,
            "is_unsubscribed": False,
            "is_unsubscribed_at": None,
            "is_opened": False,
            "is_opened_at": None,
            "is_played": False,
            "is_played_at": None,
            "error_message": None,
            "external_message_id": "ext_1",
            "created_at": "2023-11-07T05:31:56Z",
            "updated_at": "2023-11-07T05:31:57Z",
            "contact": {
                "id": "ct_1",
                "name": "Jane Doe",
                "blocked": False,
                "unsubscribed": False,
                "is_admin": False,
                "channels": [
                    {
                        "id": "ch_1",
                        "type": "custom",
                        "user_id": "+15555550123",
                        "avatar": None,
                        "name": "Jane Doe",
                        "username": "janedoe",
                        "email": "jane@example.com",
                        "phone": "+15555550123",
                        "country": "US",
                        "agent": None,
                        "ip": None,
                        "language": "en",
                        "platform_data": {},
                        "created_at": "2023-11-07T05:31:56Z",
                        "updated_at": "2023-11-07T05:31:56Z",
                        "link": None,
                    }
                ],
                "segments": [
                    {
                        "id": "sg_1",
                        "name": "VIP customers",
                        "color": "red",
                        "contacts_count": 42,
                        "created_at": "2023-11-07T05:31:56Z",
                        "updated_at": "2023-11-07T05:31:56Z",
                    }
                ],
                "created_at": "2023-11-07T05:31:56Z",
                "updated_at": "2023-11-07T05:31:56Z",
                "blocked_at": None,
                "unsubscribed_at": None,
                "unsubscribe_reason": None,
                "unsubscribe_feedback": None,
            },
        }
    ]
}


RESPONSE_EXAMPLES: list[Any] = [
    pytest.param(CHANNEL_EXAMPLE, Channel, id="Channel"),
    pytest.param(CONTACT_EXAMPLE, Contact, id="Contact"),
    pytest.param(CONTACT_WITHOUT_SEGMENTS_EXAMPLE, Contact, id="ContactWithoutSegments"),
    pytest.param(CONTACT_LIST_EXAMPLE, tuple[Contact, ...], id="ContactList"),
    pytest.param(CONTACT_MERGE_RESULT_EXAMPLE, MergeResult, id="ContactMergeResult"),
    pytest.param(SEGMENT_EXAMPLE, Segment, id="Segment"),
    pytest.param(SEGMENT_LIST_EXAMPLE, tuple[Segment, ...], id="SegmentList"),
    pytest.param(SEGMENT_WITH_BOARDS_EXAMPLE, Segment, id="SegmentWithBoards"),
    pytest.param(SEGMENT_WITH_BOARDS_LIST_EXAMPLE, tuple[Segment, ...], id="SegmentWithBoardsList"),
    pytest.param(SEGMENT_CREATED_EXAMPLE, Segment, id="SegmentCreated"),
    pytest.param(CONTACT_FIELD_LIST_EXAMPLE, tuple[ContactField, ...], id="ContactFieldList"),
    pytest.param(CONTACT_NOTE_LIST_EXAMPLE, tuple[ContactNote, ...], id="ContactNoteList"),
    pytest.param(
        CONTACT_BULK_IMPORT_RESULT_EXAMPLE, ContactImportResult, id="ContactBulkImportResult"
    ),
    pytest.param(CHAT_EXAMPLE, m.Chat, id="Chat"),
    pytest.param(CHAT_MESSAGE_EXAMPLE, m.ChatMessage, id="ChatMessage"),
    pytest.param(BROADCAST_EXAMPLE, m.Broadcast, id="Broadcast"),
    pytest.param(BROADCAST_SENDING_EXAMPLE, m.Broadcast, id="BroadcastSending"),
    pytest.param(BROADCAST_LIST_EXAMPLE, tuple[m.Broadcast, ...], id="BroadcastList"),
    pytest.param(
        BROADCAST_TRANSACTIONAL_RESULT_EXAMPLE,
        m.TransactionalSendResult,
        id="BroadcastTransactionalResult",
    ),
]

EXAMPLE_TIME = datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)

FREE_FORM_KEYS = frozenset(
    {
        *("platform_data", "schema", "features", "config", "member", "usage", "user"),
        *("session", "assistant", "parts"),
    }
)
"""Keys whose value is a free-form mapping kept as-is (an extra key there is data, not noise)."""


def assert_contains(actual: Any, expected: Any, where: str = "$") -> None:
    """Every key and value of ``expected`` is present, unchanged, in ``actual``."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            assert_contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list | tuple), where
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_contains(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, where


def with_unknown_keys(data: Any) -> Any:
    """A copy of ``data`` with an unknown key added to every object (free-form ones excepted)."""
    if isinstance(data, dict):
        out = {
            key: value if key in FREE_FORM_KEYS else with_unknown_keys(value)
            for key, value in data.items()
        }
        out["x_added_by_a_future_api"] = {"nested": [1, "two", None]}
        return out
    if isinstance(data, list):
        return [with_unknown_keys(item) for item in data]
    return data


def contact_with_channel(**channel: Any) -> dict[str, Any]:
    return {**CONTACT_EXAMPLE, "channels": [{**CHANNEL_EXAMPLE, **channel}]}


def segment_with(**fields: Any) -> dict[str, Any]:
    return {**SEGMENT_EXAMPLE, **fields}


def field_with(**fields: Any) -> dict[str, Any]:
    return {**CONTACT_FIELD_LIST_EXAMPLE[0], **fields}


# --------------------------------------------------------------------------- spec examples


@pytest.mark.parametrize(("example", "cl"), RESPONSE_EXAMPLES)
def test_spec_examples_parse_and_nothing_in_them_is_lost(example: Any, cl: Any) -> None:
    parsed = conv.structure(copy.deepcopy(example), cl)

    assert_contains(conv.unstructure(parsed), example)


def test_contact_example_gives_typed_values() -> None:
    contact = conv.structure(CONTACT_EXAMPLE, Contact)

    assert contact.channels[0].type is ChannelType.CUSTOM
    assert contact.segments[0].color is SegmentColor.RED
    assert contact.segments[0].contacts_count == 42
    assert contact.created_at == EXAMPLE_TIME
    assert contact.blocked_at is None
    assert contact.channels[0].platform_data == {}


def test_segment_with_boards_example_gives_its_board_columns() -> None:
    segment = conv.structure(SEGMENT_WITH_BOARDS_EXAMPLE, Segment)

    assert segment.boards is not None
    assert [(b.board_id, b.board_name, b.column_id) for b in segment.boards] == [
        ("brd_1", "Sales pipeline", "col_1")
    ]


def test_segments_without_boards_key_have_boards_none_and_empty_boards_stay_empty() -> None:
    assert conv.structure(SEGMENT_EXAMPLE, Segment).boards is None
    assert conv.structure(SEGMENT_CREATED_EXAMPLE, Segment).boards == ()


def test_merge_result_example_names_the_folded_contacts() -> None:
    result = conv.structure(CONTACT_MERGE_RESULT_EXAMPLE, MergeResult)

    assert result.merged.id == "ct_1"
    assert result.merged_contact_ids == ("ct_2", "ct_3")


def test_note_example_keeps_attachment_and_author() -> None:
    (note,) = conv.structure(CONTACT_NOTE_LIST_EXAMPLE, tuple[ContactNote, ...])

    assert note.attachments[0].file_size == 1024
    assert note.attachments[0].created_at == EXAMPLE_TIME
    assert note.user is not None
    assert note.user.name == "Alex Agent"


def test_list_responses_parse_to_tuples() -> None:
    contacts = conv.structure(CONTACT_LIST_EXAMPLE, tuple[Contact, ...])

    assert isinstance(contacts, tuple)
    assert [c.id for c in contacts] == ["ct_1", "ct_2"]
    assert isinstance(contacts[0].channels, tuple)
    assert isinstance(contacts[0].segments, tuple)


# --------------------------------------------------------------------------- leniency


@pytest.mark.parametrize(("example", "cl"), RESPONSE_EXAMPLES)
def test_unknown_extra_fields_are_ignored_at_every_level(example: Any, cl: Any) -> None:
    assert conv.structure(with_unknown_keys(example), cl) == conv.structure(example, cl)


@pytest.mark.parametrize("channel_type", list(ChannelType))
def test_known_channel_types_parse_as_enum_members(channel_type: ChannelType) -> None:
    channel = conv.structure({**CHANNEL_EXAMPLE, "type": channel_type.value}, Channel)

    assert channel.type is channel_type


def test_unknown_channel_type_parses_as_plain_string() -> None:
    contact = conv.structure(contact_with_channel(type="carrier_pigeon"), Contact)

    assert contact.channels[0].type == "carrier_pigeon"
    assert type(contact.channels[0].type) is str


@pytest.mark.parametrize("color", list(SegmentColor))
def test_known_segment_colours_parse_as_enum_members(color: SegmentColor) -> None:
    assert conv.structure(segment_with(color=color.value), Segment).color is color


SPEC_SEGMENT_COLORS = [
    "red",
    "orange",
    "amber",
    "yellow",
    "lime",
    "green",
    "teal",
    "cyan",
    "sky",
    "blue",
    "indigo",
    "violet",
    "purple",
    "fuchsia",
    "pink",
    "rose",
    "neutral",
]
SPEC_CHANNEL_TYPES = [
    "internal",
    "custom",
    "whatsapp_bot",
    "messenger_bot",
    "instagram_dm",
    "tiktok_dm",
    "twilio",
    "telnyx",
    "slack_bot",
    "telegram_bot",
    "gmail",
    "email",
    "google_calendar",
]
SPEC_FIELD_TYPES = [
    "string",
    "number",
    "boolean",
    "date",
    "datetime",
    "enum",
    "file",
    "record",
    "contact",
    "user",
    "chat",
    "segment",
    "assistant",
]


@pytest.mark.parametrize(
    ("enum_type", "spec_values"),
    [
        pytest.param(SegmentColor, SPEC_SEGMENT_COLORS, id="SegmentColor"),
        pytest.param(ChannelType, SPEC_CHANNEL_TYPES, id="ChannelType"),
        pytest.param(ContactFieldType, SPEC_FIELD_TYPES, id="ContactFieldType"),
        pytest.param(
            m.BroadcastStatus,
            ["DRAFT", "SCHEDULED", "SENDING", "SENT", "CANCELLED", "FAILED"],
            id="BroadcastStatus",
        ),
        pytest.param(m.ConversationState, ["OPEN", "SNOOZED", "CLOSED"], id="ConversationState"),
        pytest.param(
            m.ChatMessageRole,
            ["user", "assistant", "system", "tool", "event", "note"],
            id="ChatMessageRole",
        ),
        pytest.param(
            m.ChatMessageStatus,
            ["RUNNING", "COMPLETED", "FAILED", "CANCELED"],
            id="ChatMessageStatus",
        ),
    ],
)
def test_enums_know_every_value_the_spec_lists(enum_type: Any, spec_values: list[str]) -> None:
    assert sorted(member.value for member in enum_type) == sorted(spec_values)


def test_unknown_segment_colour_parses_as_plain_string() -> None:
    segment = conv.structure(segment_with(color="chartreuse"), Segment)

    assert segment.color == "chartreuse"
    assert type(segment.color) is str


@pytest.mark.parametrize("field_type", list(ContactFieldType))
def test_known_field_types_parse_as_enum_members(field_type: ContactFieldType) -> None:
    field = conv.structure(field_with(type=field_type.value), ContactField)

    assert field.type is field_type


def test_unknown_field_type_parses_as_plain_string() -> None:
    field = conv.structure(field_with(type="geolocation"), ContactField)

    assert field.type == "geolocation"
    assert type(field.type) is str


def test_embedded_segments_without_color_parse_with_color_none() -> None:
    v2_segment = {k: v for k, v in SEGMENT_EXAMPLE.items() if k != "color"}
    contact = conv.structure({**CONTACT_EXAMPLE, "segments": [v2_segment]}, Contact)

    assert contact.segments[0].color is None
    assert contact.segments[0].name == "VIP customers"


def test_field_type_is_read_from_schema_when_missing_at_top_level() -> None:
    data = {k: v for k, v in CONTACT_FIELD_LIST_EXAMPLE[0].items() if k != "type"}

    assert conv.structure(data, ContactField).type is ContactFieldType.FILE


def test_top_level_field_type_wins_over_schema_type() -> None:
    field = conv.structure(field_with(type="string"), ContactField)

    assert field.type is ContactFieldType.STRING
    assert field.schema["type"] == "file"


def test_field_without_any_type_parses_with_type_none() -> None:
    data = {k: v for k, v in CONTACT_FIELD_LIST_EXAMPLE[0].items() if k != "type"}
    data["schema"] = {"name": "Contract"}

    assert conv.structure(data, ContactField).type is None


# --------------------------------------------------------------------------- datetimes


@pytest.mark.parametrize(
    ("wire", "expected", "offset"),
    [
        pytest.param("2023-11-07T05:31:56Z", EXAMPLE_TIME, timedelta(0), id="Z"),
        pytest.param(
            "2023-11-07T05:31:56.123Z",
            EXAMPLE_TIME.replace(microsecond=123000),
            timedelta(0),
            id="milliseconds-Z",
        ),
        pytest.param("2023-11-07T07:31:56+02:00", EXAMPLE_TIME, timedelta(hours=2), id="+02:00"),
        pytest.param("2023-11-07T05:31:56", EXAMPLE_TIME, timedelta(0), id="naive-as-UTC"),
        pytest.param(
            "2023-12-25", datetime(2023, 12, 25, tzinfo=UTC), timedelta(0), id="date-only-as-UTC"
        ),
    ],
)
def test_datetimes_are_timezone_aware(wire: str, expected: datetime, offset: timedelta) -> None:
    segment = conv.structure(segment_with(created_at=wire), Segment)

    assert segment.created_at.tzinfo is not None
    assert segment.created_at.utcoffset() == offset
    assert segment.created_at == expected


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        pytest.param(
            datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC), "2023-11-07T05:31:56Z", id="UTC"
        ),
        pytest.param(
            datetime(2023, 11, 7, 5, 31, 56, 250000, tzinfo=timezone(timedelta(0))),
            "2023-11-07T05:31:56.250000Z",
            id="zero-offset",
        ),
        pytest.param(
            datetime(2023, 11, 7, 7, 31, 56, tzinfo=timezone(timedelta(hours=2))),
            "2023-11-07T05:31:56Z",
            id="+02:00-converted-to-utc",
        ),
    ],
)
def test_format_datetime_writes_rfc3339_in_utc_with_z(value: datetime, wire: str) -> None:
    assert conv.format_datetime(value) == wire


RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(timedelta(hours=-3, minutes=-30), id="-03:30"),
        pytest.param(timedelta(seconds=30), id="+00:00:30"),
        pytest.param(timedelta(hours=5, minutes=30, seconds=15), id="+05:30:15"),
    ],
)
def test_format_datetime_always_writes_rfc3339_that_parses_back(offset: timedelta) -> None:
    value = datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone(offset))

    wire = conv.format_datetime(value)

    assert RFC3339.fullmatch(wire), wire
    assert conv.parse_datetime(wire) == value


def test_datetimes_are_written_back_with_z() -> None:
    segment = conv.structure(SEGMENT_EXAMPLE, Segment)

    assert conv.unstructure(segment)["created_at"] == "2023-11-07T05:31:56Z"


# --------------------------------------------------------------------------- validation errors


@pytest.mark.parametrize(
    ("data", "cl", "path"),
    [
        pytest.param(contact_with_channel(id=7), Contact, "@ $.channels[0].id", id="nested-list"),
        pytest.param({**CONTACT_EXAMPLE, "blocked": "false"}, Contact, "@ $.blocked", id="bool"),
        pytest.param(
            [CONTACT_EXAMPLE, {**CONTACT_EXAMPLE, "id": None}],
            tuple[Contact, ...],
            "@ $[1].id",
            id="list-item",
        ),
        pytest.param(
            {k: v for k, v in CONTACT_EXAMPLE.items() if k != "id"}, Contact, "@ $.id", id="missing"
        ),
        pytest.param(
            {**CONTACT_MERGE_RESULT_EXAMPLE, "merged": contact_with_channel(user_id=None)},
            MergeResult,
            "@ $.merged.channels[0].user_id",
            id="deep",
        ),
        pytest.param(
            {**CONTACT_EXAMPLE, "created_at": "last tuesday"}, Contact, "@ $.created_at", id="date"
        ),
    ],
)
def test_mismatching_response_names_the_bad_field_path(data: Any, cl: Any, path: str) -> None:
    with pytest.raises(InvalidData) as info:
        conv.structure(data, cl)

    assert any(error.endswith(path) for error in info.value.errors), info.value.errors
    assert path in str(info.value)


@pytest.mark.parametrize(
    ("data", "cl", "path"),
    [
        pytest.param(segment_with(name=None), Segment, "@ $.name", id="null-for-required-str"),
        pytest.param(segment_with(id=123), Segment, "@ $.id", id="number-for-str"),
        pytest.param(
            {**CONTACT_EXAMPLE, "is_admin": 0}, Contact, "@ $.is_admin", id="int-for-bool"
        ),
        pytest.param(
            {**CONTACT_EXAMPLE, "blocked": "true"}, Contact, "@ $.blocked", id="string-for-bool"
        ),
        pytest.param(
            segment_with(contacts_count=True), Segment, "@ $.contacts_count", id="bool-for-int"
        ),
        pytest.param(
            segment_with(contacts_count="42"), Segment, "@ $.contacts_count", id="string-for-int"
        ),
        pytest.param(
            contact_with_channel(type=None), Contact, "@ $.channels[0].type", id="null-channel-type"
        ),
        pytest.param(segment_with(color=3), Segment, "@ $.color", id="number-for-colour"),
        pytest.param(
            contact_with_channel(platform_data=[]),
            Contact,
            "@ $.channels[0].platform_data",
            id="list-for-object",
        ),
    ],
)
def test_types_are_strict(data: Any, cl: Any, path: str) -> None:
    with pytest.raises(InvalidData) as info:
        conv.structure(data, cl)

    assert any(error.endswith(path) for error in info.value.errors), info.value.errors


@pytest.mark.parametrize(
    ("data", "cl", "path"),
    [
        pytest.param({**CONTACT_EXAMPLE, "segments": ""}, Contact, "@ $.segments", id="empty-str"),
        pytest.param({**CONTACT_EXAMPLE, "channels": {}}, Contact, "@ $.channels", id="object"),
        pytest.param(
            {**CONTACT_EXAMPLE, "segments": "sg_1"}, Contact, "@ $.segments", id="id-as-str"
        ),
        pytest.param(
            {**CONTACT_MERGE_RESULT_EXAMPLE, "merged_contact_ids": "ct_2"},
            MergeResult,
            "@ $.merged_contact_ids",
            id="str-for-id-list",
        ),
        pytest.param({"items": []}, tuple[Contact, ...], "@ $", id="object-for-list-response"),
    ],
)
def test_a_non_array_where_an_array_is_expected_is_an_error_naming_the_array(
    data: Any, cl: Any, path: str
) -> None:
    with pytest.raises(InvalidData) as info:
        conv.structure(data, cl)

    assert any(error.endswith(path) for error in info.value.errors), info.value.errors


def test_invalid_data_is_a_value_error_not_a_cattrs_exception() -> None:
    with pytest.raises(InvalidData) as info:
        conv.structure({"id": 1}, Segment)

    assert isinstance(info.value, ValueError)
    assert info.value.errors


# --------------------------------------------------------------------------- request bodies


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param(
            ContactCreate(
                channel=NewChannel(name="Jane Doe", email="jane@example.com", phone="+15555550123"),
                segment_ids=("sg_1",),
            ),
            {
                "channel": {
                    "name": "Jane Doe",
                    "email": "jane@example.com",
                    "phone": "+15555550123",
                },
                "segment_ids": ["sg_1"],
            },
            id="ContactCreateRequest",
        ),
        pytest.param(
            ContactUpdate(name="Jane Doe", blocked=False, unsubscribed=True),
            {"name": "Jane Doe", "blocked": False, "unsubscribed": True},
            id="ContactUpdateRequest",
        ),
        pytest.param(
            ContactMerge(source_contact_ids=("ct_2", "ct_3")),
            {"source_contact_ids": ["ct_2", "ct_3"]},
            id="ContactMergeRequest",
        ),
        pytest.param(ContactMerge(), {}, id="ContactMergeAutomaticRequest"),
        pytest.param(
            ChannelUpdate(
                name="Jane Doe",
                username="janedoe",
                email="jane@example.com",
                phone="+15555550123",
                avatar="https://example.com/avatars/jane.png",
            ),
            {
                "name": "Jane Doe",
                "username": "janedoe",
                "email": "jane@example.com",
                "phone": "+15555550123",
                "avatar": "https://example.com/avatars/jane.png",
            },
            id="ChannelUpdateRequest",
        ),
        pytest.param(
            SegmentCreate(name="VIP customers", color=SegmentColor.RED),
            {"name": "VIP customers", "color": "red"},
            id="SegmentCreateRequest",
        ),
        pytest.param(
            SegmentUpdate(name="VIP customers", color=SegmentColor.RED),
            {"name": "VIP customers", "color": "red"},
            id="SegmentUpdateRequest",
        ),
        pytest.param(
            ContactImport(
                channels=(
                    ContactChannelOption(type="email", email="jane@example.com", name="Jane Doe"),
                    ContactChannelOption(type="email", email="sam@example.com", name="Sam Roe"),
                    ContactChannelOption(type="email", email="not-an-email"),
                ),
                segment_id="sg_1",
            ),
            {
                "channels": [
                    {"type": "email", "email": "jane@example.com", "name": "Jane Doe"},
                    {"type": "email", "email": "sam@example.com", "name": "Sam Roe"},
                    {"type": "email", "email": "not-an-email"},
                ],
                "segment_id": "sg_1",
            },
            id="ContactBulkImportRequest",
        ),
        pytest.param(
            m.ChatCreate(
                assistant_id="ast_1",
                title="Order question",
                message=(m.TextPart(text="Hi, where is my order?"),),
            ),
            {
                "assistant_id": "ast_1",
                "title": "Order question",
                "message": [{"type": "text", "text": "Hi, where is my order?"}],
            },
            id="ContactChannelChatCreateRequest",
        ),
        pytest.param(
            m.MessageSend(message=(m.TextPart(text="Thanks, got it!"),), channel_id="ch_1"),
            {"message": [{"type": "text", "text": "Thanks, got it!"}], "channel_id": "ch_1"},
            id="ContactMessageSendRequest",
        ),
        pytest.param(
            m.MessageSend(message=(m.TextPart(text="Thanks, got it!"),)),
            {"message": [{"type": "text", "text": "Thanks, got it!"}]},
            id="ContactChannelMessageSendRequest",
        ),
        pytest.param(
            m.BroadcastCreate(
                name="Spring sale",
                scheduled_at=datetime(2024, 3, 1, 9, tzinfo=UTC),
                segment_ids=("sg_1",),
                send_to_all=False,
            ),
            {
                "name": "Spring sale",
                "scheduled_at": "2024-03-01T09:00:00Z",
                "segment_ids": ["sg_1"],
                "send_to_all": False,
            },
            id="BroadcastCreateRequest",
        ),
        pytest.param(
            m.BroadcastSend(
                contact_id="ct_1", variables={"order_number": "1042"}, background=False
            ),
            {"contact_id": "ct_1", "variables": {"order_number": "1042"}, "background": False},
            id="BroadcastSendRequest",
        ),
    ],
)
def test_request_models_encode_to_the_spec_request_examples(
    json_backend: str, model: Any, expected: dict[str, Any]
) -> None:
    assert conv.loads(conv.dumps(conv.unstructure(model))) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param(ContactUpdate(), {}, id="nothing-given"),
        pytest.param(ContactUpdate(blocked=True), {"blocked": True}, id="one-field"),
        pytest.param(ContactUpdate(name=None), {"name": None}, id="explicit-None-clears-name"),
        pytest.param(
            ChannelUpdate(avatar=None, email="a@example.com"),
            {"avatar": None, "email": "a@example.com"},
            id="channel-None-and-value",
        ),
        pytest.param(SegmentUpdate(color=SegmentColor.SKY), {"color": "sky"}, id="colour-only"),
        pytest.param(
            ContactCreate(channel=NewChannel(phone="+15555550123")),
            {"channel": {"phone": "+15555550123"}},
            id="nested-unset",
        ),
    ],
)
def test_request_models_omit_unset_fields_but_keep_explicit_none(
    json_backend: str, model: Any, expected: dict[str, Any]
) -> None:
    assert conv.loads(conv.dumps(conv.unstructure(model))) == expected


# ------------------------------------------------------------------ rules found, not listed


def _is_read(cl: type) -> bool:
    return conv.is_response_model(cl) or conv.is_two_way_model(cl)


READ_MODELS = [cl for cl in strategies.model_classes() if _is_read(cl)]
"""The models the client reads (response and two-way models), found in ``_models``."""


@pytest.mark.parametrize("cl", strategies.model_classes(), ids=lambda cl: cl.__name__)
def test_every_model_is_exactly_one_kind(cl: type) -> None:
    kinds = [conv.is_request_model(cl), conv.is_response_model(cl), conv.is_two_way_model(cl)]

    assert kinds.count(True) == 1


@pytest.mark.parametrize("cl", strategies.model_classes(), ids=lambda cl: cl.__name__)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_model_is_written_and_read_as_its_kind_says(cl: type, data: st.DataObject) -> None:
    """A request model is written, never read; a response model is read and written back as
    read; a two-way model is both, its UNSET fields left out and read back as UNSET."""
    model = data.draw(strategies.models(cl))
    wire = conv.unstructure(model)

    if conv.is_request_model(cl):
        with pytest.raises(InvalidData, match="never read"):
            conv.structure(wire, cl)
    else:
        assert conv.structure(wire, cl) == model
    if conv.is_response_model(cl):
        assert UNSET not in [getattr(model, a.name) for a in attrs.fields(cl)]
    else:
        unset = {a.name for a in attrs.fields(cl) if getattr(model, a.name) is UNSET}
        assert unset.isdisjoint(wire)


def _any(annotation: object) -> Any:
    """An annotation as a plain value (mypy types ``X | Y`` expressions as UnionType)."""
    return annotation


def _new_model(name: str, fields: dict[str, Any]) -> type:
    """A model class made now, as if just added to ``_models`` (named in no list)."""
    cl = attrs.make_class(name, fields, frozen=True, kw_only=True)
    cl.__module__ = m.__name__
    return cl


def test_a_new_request_model_omits_unset_fields_without_being_listed() -> None:
    pinned = _new_model(
        "ContactPin",
        {
            "pinned": attrs.field(type=_any(bool | Unset), default=UNSET),
            "note": attrs.field(type=_any(str | Unset), default=UNSET),
        },
    )

    assert conv.unstructure(pinned(note="top")) == {"note": "top"}
    assert conv.unstructure(pinned(pinned=False)) == {"pinned": False}


def test_an_import_row_is_one_class_sent_and_received() -> None:
    result = conv.structure(
        {
            "created": [{"email": "a@example.com", "x_new": 1}],
            "updated": [{"type": "email", "contact_id": "ct_1"}],
            "invalid": [{}],
        },
        ContactImportResult,
    )

    assert conv.is_two_way_model(ContactChannelOption)
    assert result.created == (ContactChannelOption(email="a@example.com"),)
    assert result.invalid == (ContactChannelOption(),)  # every field missing: UNSET
    assert conv.unstructure(result.updated[0]) == {"type": "email", "contact_id": "ct_1"}
    with pytest.raises(InvalidData, match=r"expected str @ \$\.created\[0\]\.email"):
        conv.structure(
            {**CONTACT_BULK_IMPORT_RESULT_EXAMPLE, "created": [{"email": None}]},
            ContactImportResult,
        )


def test_memories_accept_dates_and_date_times() -> None:
    memories = conv.structure(CONTACT_MEMORY_LIST_EXAMPLE, tuple[ContactMemory, ...])

    assert [(x.type, x.created_at, x.updated_at) for x in memories] == [
        (ContactMemoryType.PREFERENCE, EXAMPLE_TIME, EXAMPLE_TIME),
        (ContactMemoryType.FACT, datetime(2023, 12, 25, tzinfo=UTC), None),
    ]


def test_a_new_two_way_model_is_found_without_being_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model with UNSET defaults becomes readable as soon as a response model holds it."""
    row = _new_model(
        "PinRow",
        {
            "pinned": attrs.field(type=_any(bool | Unset), default=UNSET),
            "note": attrs.field(type=_any(str | Unset | None), default=UNSET),
        },
    )
    pins = _new_model("Pins", {"rows": attrs.field(type=_any(GenericAlias(tuple, (row, ...))))})
    monkeypatch.setattr(m, "PinRow", row, raising=False)
    monkeypatch.setattr(m, "Pins", pins, raising=False)

    data = {"rows": [{"note": None, "x": 1}, {"pinned": True}]}

    assert conv.is_two_way_model(row)
    assert conv.structure(data, pins) == pins(rows=(row(note=None), row(pinned=True)))
    assert conv.structure_detailed(data, pins) == conv.structure(data, pins)
    assert conv.unstructure(row(note="n")) == {"note": "n"}
    with pytest.raises(InvalidData, match=r"expected bool @ \$\.rows\[0\]\.pinned"):
        conv.structure({"rows": [{"pinned": "yes"}]}, pins)


def test_a_new_response_model_is_read_strictly_without_being_listed() -> None:
    tag = _new_model(
        "Tag",
        {"id": attrs.field(type=str), "color": attrs.field(type=_any(SegmentColor | str | None))},
    )

    assert conv.structure({"id": "t1", "color": "red", "x": 1}, tag) == tag(
        id="t1", color=SegmentColor.RED
    )
    assert conv.structure({"id": "t2", "color": "mauve"}, tag).color == "mauve"
    with pytest.raises(InvalidData, match=r"\$\.id"):
        conv.structure({"id": 5, "color": None}, tag)


def test_numbers_are_read_strictly_into_float_fields() -> None:
    scored = _new_model(
        "Scored",
        {"score": attrs.field(type=float), "best": attrs.field(type=_any(float | None))},
    )

    assert conv.structure({"score": 1, "best": 0.5}, scored) == scored(score=1.0, best=0.5)
    assert conv.structure({"score": 0.25, "best": None}, scored).best is None
    for bad in ("0.5", True, None):
        with pytest.raises(InvalidData, match=r"\$\.score"):
            conv.structure({"score": bad, "best": None}, scored)


class _Mood(enum.Enum):
    CALM = "calm"


def test_an_open_enum_is_found_by_its_annotation() -> None:
    assert conv.open_enum(ChannelType | str) is ChannelType
    assert conv.open_enum(_Mood | str | None) is _Mood
    assert conv.open_enum(SegmentColor | Unset) is None  # a request field: closed
    assert conv.open_enum(str | None) is None
    assert conv.structure("calm", _any(_Mood | str)) is _Mood.CALM
    assert conv.structure("giddy", _any(_Mood | str)) == "giddy"
    assert conv.structure(None, _any(_Mood | str | None)) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(SegmentCreate(name=_any(UNSET)), id="a-required-field"),
        pytest.param(
            ContactCreate(channel=NewChannel(email="a@example.com"), segment_ids=_any((UNSET,))),
            id="inside-a-list",
        ),
        pytest.param(UNSET, id="on-its-own"),
        pytest.param({"pinned": UNSET}, id="in-a-dict"),
        pytest.param(
            attrs.evolve(conv.structure(SEGMENT_EXAMPLE, Segment), name=_any(UNSET)),
            id="in-a-response-model",
        ),
    ],
)
def test_unset_never_reaches_the_wire(value: Any) -> None:
    with pytest.raises(TypeError, match="UNSET reached the wire"):
        conv.unstructure(value)
    with pytest.raises(TypeError, match="UNSET reached the wire"):
        json_body(value)


@pytest.mark.parametrize(
    ("data", "cl"),
    [
        pytest.param({"name": "VIP"}, SegmentCreate, id="a-request-model"),
        pytest.param("UNSET", str | Unset, id="an-unset-type"),
        pytest.param({"channel": {"email": "a@example.com"}}, ContactCreate, id="nested-request"),
    ],
)
def test_unset_is_never_read_from_the_wire(data: Any, cl: Any) -> None:
    with pytest.raises(InvalidData, match="never read"):
        conv.structure(data, cl)


# --------------------------------------------------------------------------- JSON backends


def test_non_ascii_text_round_trips(json_backend: str) -> None:
    data = {"name": "Zoë Ångström 日本語 🎉", "list": ["ü", "\u00a0", "\\", '"']}

    encoded = conv.dumps(data)

    assert isinstance(encoded, bytes)
    assert conv.loads(encoded) == data
    assert conv.loads(encoded.decode()) == data


def test_non_ascii_is_written_as_utf8_not_escapes(json_backend: str) -> None:
    assert conv.dumps({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()


def test_invalid_json_raises_value_error(json_backend: str) -> None:
    with pytest.raises(ValueError):
        conv.loads(b"<html>not json</html>")


def test_selected_backend_is_reported(json_backend: str) -> None:
    assert conv.json_backend() == json_backend


def test_unknown_json_backend_is_rejected() -> None:
    before = conv.json_backend()

    with pytest.raises(ValueError, match="nope"):
        conv.set_json_backend("nope")

    assert conv.json_backend() == before


def test_parsed_model_survives_encode_and_decode(json_backend: str) -> None:
    contact = conv.structure(CONTACT_EXAMPLE, Contact)

    again = conv.structure(conv.loads(conv.dumps(conv.unstructure(contact))), Contact)

    assert again == contact


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("cl", READ_MODELS, ids=lambda t: t.__name__)
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_models_round_trip_through_json(json_backend: str, cl: type, data: st.DataObject) -> None:
    model = data.draw(strategies.models(cl))

    wire = conv.dumps(conv.unstructure(model))
    again = conv.structure(conv.loads(wire), type(model))

    assert again == model


# --------------------------------------------------------------------------- fast path

_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_every_model_has_a_strategy_for_the_property_tests() -> None:
    """Each field's annotation has a strategy (``strategies.models`` raises TypeError where
    one is missing), so every model is in the round-trip and fast-path tests."""
    assert all(strategies.models(cl) is not None for cl in strategies.model_classes())
    assert {m.Contact, m.ContactRef, m.Board} <= set(READ_MODELS)


def test_every_response_model_is_built_directly_by_the_fast_path() -> None:
    slow = [t.__name__ for t in READ_MODELS if not conv.builds_directly(t)]
    # ... through a builder of the same layout (a __weakref__ slot would make it differ)
    no_builder = [t.__name__ for t in READ_MODELS if conv._builder(t) is None]

    assert slow == []
    assert no_builder == []


@pytest.mark.parametrize("cl", READ_MODELS, ids=lambda t: t.__name__)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_instances_are_the_frozen_models_themselves(
    cl: type, data: st.DataObject
) -> None:
    """A fast-path instance was a builder before its ``__class__`` was set: it must be an
    instance of exactly the model, as frozen, hashable, picklable and evolvable as one made
    by ``__init__``."""
    made = data.draw(strategies.models(cl))
    parsed: Any = conv.structure(conv.unstructure(made), cl)
    name = attrs.fields(cl)[0].name
    evolved = attrs.evolve(parsed)

    assert type(parsed) is cl
    assert not hasattr(parsed, "__dict__")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(parsed, name, getattr(parsed, name))
    assert pickle.loads(pickle.dumps(parsed)) == parsed  # noqa: S301 - our own bytes
    assert copy.deepcopy(parsed) == parsed
    assert evolved == parsed
    assert hash(parsed) == hash(evolved)


def _datetime_forms(value: str) -> list[str]:
    """The same instant written as the API might: Z, +00:00, another offset, naive, date."""
    parsed = datetime.fromisoformat(value)
    utc = parsed.astimezone(UTC)
    plain = utc.replace(tzinfo=None).isoformat()
    return [
        value,
        plain + "Z",
        plain + "+00:00",
        plain,  # naive: read as UTC
        parsed.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat(),
        utc.date().isoformat(),  # a bare date: midnight UTC
    ]


_WRONG_VALUES: list[Any] = [None, 1, 1.5, True, "x", [], {}, [1], {"a": 1}]


def _vary(data: st.DataObject, value: Any) -> Any:
    """``value`` (wire data) with unknown keys, keys left out or nulled, other datetime
    forms, and now and then a value of the wrong type (never in place of an object: for a
    model whose fields all have defaults, cattrs' own function accepts any container)."""
    if not isinstance(value, dict) and data.draw(st.integers(0, 40)) == 0:
        return data.draw(st.sampled_from(_WRONG_VALUES))
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = data.draw(st.integers(0, 12))
            if action == 0:
                continue  # absent
            out[key] = None if action == 1 else _vary(data, item)
        if data.draw(st.booleans()):
            out[data.draw(st.text(max_size=8))] = data.draw(strategies.json_values)
        return out
    if isinstance(value, list):
        return [_vary(data, item) for item in value]
    if isinstance(value, str) and _ISO.match(value):
        return data.draw(st.sampled_from(_datetime_forms(value)))
    return value


def _shape(value: Any) -> Any:
    """What equality ignores: the exact type (an enum member or a plain str) and the
    timezone of a datetime."""
    if attrs.has(type(value)):
        return (
            type(value),
            tuple(_shape(getattr(value, a.name)) for a in attrs.fields(type(value))),
        )
    if isinstance(value, tuple | list):
        return (type(value), tuple(_shape(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, datetime):
        return (datetime, value.isoformat())
    return (type(value), value)


def _outcome(structure: Any, data: Any, cl: type) -> Any:
    try:
        return _shape(structure(data, cl))
    except Exception:
        return "rejected"


@pytest.mark.parametrize("cl", READ_MODELS, ids=lambda t: t.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_builds_what_the_stock_cattrs_converter_builds(
    cl: type, data: st.DataObject
) -> None:
    wire = conv.unstructure(data.draw(strategies.models(cl)))
    varied = _vary(data, wire)

    fast = _outcome(conv.structure, varied, cl)
    stock = _outcome(conv.structure_detailed, varied, cl)

    assert fast == stock


# --------------------------------------------------------------------------- message parts


def parts_of(*parts: Any) -> dict[str, Any]:
    return {"id": "msg_1", "messages": [{"role": "user", "parts": list(parts)}]}


def test_a_text_part_is_read_by_its_type_and_written_with_it() -> None:
    message = conv.structure(
        parts_of({"type": "text", "text": "hi", "end_timestamp": 2}), m.ChatMessage
    )

    assert message.parts == (m.TextPart(text="hi", end_timestamp=2.0),)
    assert message.parts[0].type == "text"
    assert conv.unstructure(message.parts[0]) == {
        "type": "text",
        "text": "hi",
        "end_timestamp": 2.0,
    }


@pytest.mark.parametrize(
    "part",
    [
        {"type": "audio", "audio": {"url": "https://example.com/a.ogg", "x_new": [1]}},
        {"type": "image_v9", "anything": None},
        {"no_type": True},
        {},
    ],
    ids=["audio", "future", "no-type", "empty"],
)
def test_a_part_of_any_other_type_is_kept_whole_and_written_back_unchanged(part: Any) -> None:
    message = conv.structure(parts_of(copy.deepcopy(part)), m.ChatMessage)

    assert message.parts == (m.OtherPart(data=part),)
    assert message.parts[0].type == part.get("type")
    assert conv.unstructure(message)["messages"][0]["parts"] == [part]


@pytest.mark.parametrize(
    ("part", "path"),
    [
        ({"type": "text", "text": 5}, "$.messages[0].parts[0].text"),
        ({"type": "text", "start_timestamp": "1s"}, "$.messages[0].parts[0].start_timestamp"),
        ("hello", "$.messages[0].parts[0]"),
    ],
    ids=["text-not-a-string", "timestamp-not-a-number", "not-an-object"],
)
def test_a_part_that_is_neither_is_an_error_naming_it(part: Any, path: str) -> None:
    with pytest.raises(InvalidData) as caught:
        conv.structure(parts_of(part), m.ChatMessage)

    assert any(path in error for error in caught.value.errors)


def test_unknown_enum_values_of_chats_and_broadcasts_arrive_as_strings() -> None:
    message = conv.structure({"role": "critic", "status": "PAUSED"}, m.ChatMessage)
    broadcast = conv.structure({"id": "bc_1", "status": "ARCHIVED"}, m.Broadcast)
    state = conv.structure({"state": "WAITING", "integration_id": "fax"}, m.ChatState)

    assert (message.role, message.status, broadcast.status) == ("critic", "PAUSED", "ARCHIVED")
    assert (state.state, state.integration_id) == ("WAITING", "fax")


def test_the_two_answers_of_a_send_are_told_apart_by_their_models() -> None:
    with pytest.raises(InvalidData):
        conv.structure(BROADCAST_TRANSACTIONAL_RESULT_EXAMPLE, m.Broadcast)
    with pytest.raises(InvalidData):
        conv.structure(BROADCAST_SENDING_EXAMPLE, m.TransactionalSendResult)
