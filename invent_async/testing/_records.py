"""The fake's records and their wire form, in one place.

Contacts, segments and broadcasts are mutable records (:class:`ContactRecord`,
:class:`SegmentRecord`, :class:`BroadcastRecord`) because they point at each other
(memberships, targeted segments) and the wire form of one depends on the other;
each has a ``to_json`` that builds its response body as it is now. Everything else the fake
stores (channels, notes, contact fields, board columns, chats and their messages, broadcast
templates and recipient rows) is kept *in* its wire form, a plain
JSON dict built once by the functions here, so there is no second description of it to keep
in step. The dicts are written by hand from ``invent-openapi.yaml``, not by the SDK's
converter, so that a bug in one cannot hide behind the other; the tests check the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .._converter import format_datetime

__all__ = [
    "JSONDict",
    "BroadcastRecord",
    "ChatRecord",
    "ContactRecord",
    "SegmentRecord",
    "channel_json",
    "chat_json",
    "message_json",
    "field_json",
    "memory_json",
    "note_json",
    "value_json",
]

JSONDict = dict[str, Any]


def value_json(model: Any) -> JSONDict:
    """A small attrs value (a ``Board``, a ``NoteAttachment``) as its JSON object."""

    def wire(_: object, __: object, value: object) -> object:
        return format_datetime(value) if isinstance(value, datetime) else value

    return attrs.asdict(model, value_serializer=wire)


def channel_json(
    *,
    id: str,
    type: str,
    user_id: str,
    stamp: str,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    username: str | None = None,
) -> JSONDict:
    """A new channel (the ``Channel`` schema)."""
    return {
        "id": id,
        "type": type,
        "user_id": user_id,
        "avatar": None,
        "name": name,
        "username": username,
        "email": email,
        "phone": phone,
        "country": None,
        "agent": None,
        "ip": None,
        "language": None,
        "platform_data": {},
        "created_at": stamp,
        "updated_at": stamp,
        "link": None,
    }


def field_json(
    *, id: str, key: str, type: str, schema: Mapping[str, Any], readonly: bool, kind: str
) -> JSONDict:
    """A contact field definition (``type`` both at the top level and in ``schema``)."""
    return {
        "id": id,
        "table_id": "tbl_contacts",
        "key": key,
        "type": type,
        "schema": dict(schema),
        "readonly": readonly,
        "kind": kind,
    }


def note_json(
    *,
    id: str,
    contact_id: str,
    content: str | None,
    stamp: str,
    attachments: list[JSONDict],
    user: JSONDict | None,
) -> JSONDict:
    """A note on a contact (the ``ContactNote`` schema: ``user``, an object when present, is
    left out for a note without an author, never null)."""
    note: JSONDict = {
        "id": id,
        "contact_id": contact_id,
        "content": content,
        "attachments": attachments,
        "created_at": stamp,
        "updated_at": stamp,
    }
    if user is not None:
        note["user"] = user
    return note


def memory_json(
    *,
    id: str,
    contact_id: str,
    content: str,
    type: str,
    importance: float,
    stamp: str,
) -> JSONDict:
    """A memory about a contact (the ``ContactMemory`` schema; ``stamp`` may be a plain date,
    as the legacy docs page shows it)."""
    return {
        "id": id,
        "content": content,
        "type": type,
        "importance": importance,
        "created_at": stamp,
        "updated_at": stamp,
        "contact_id": contact_id,
    }


@attrs.define(slots=True, eq=False)
class SegmentRecord:
    """A segment. ``members`` is an ordered set of contact ids in joining order."""

    id: str
    name: str
    color: str
    created_at: str
    updated_at: str
    boards: list[JSONDict] = attrs.Factory(list)
    members: dict[str, None] = attrs.Factory(dict)

    def to_json(self, *, boards: bool) -> JSONDict:
        """The wire form: ``SegmentWithBoards`` if ``boards``, else ``Segment`` (no key)."""
        out: JSONDict = {
            "id": self.id,
            "name": self.name,
            "color": self.color,
            "contacts_count": len(self.members),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if boards:
            out["boards"] = [dict(board) for board in self.boards]
        return out


@attrs.define(slots=True, eq=False)
class ContactRecord:
    """A contact. ``segment_ids`` is an ordered set (dict keys) in joining order."""

    id: str
    seq: int
    name: str | None
    channels: list[JSONDict]
    created_at: str
    updated_at: str
    blocked: bool = False
    unsubscribed: bool = False
    is_admin: bool = False
    ai_replies_disabled: bool = False
    segment_ids: dict[str, None] = attrs.Factory(dict)
    notes: list[JSONDict] = attrs.Factory(list)
    memories: list[JSONDict] = attrs.Factory(list)
    blocked_at: str | None = None
    unsubscribed_at: str | None = None
    unsubscribe_reason: str | None = None
    unsubscribe_feedback: str | None = None

    def to_json(self, segments: Mapping[str, SegmentRecord]) -> JSONDict:
        """The wire form, with its segments (looked up in ``segments``) as they are now."""
        return {
            "id": self.id,
            "name": self.name,
            "blocked": self.blocked,
            "is_admin": self.is_admin,
            "channels": self.channels,
            "segments": [segments[sid].to_json(boards=False) for sid in self.segment_ids],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "unsubscribed": self.unsubscribed,
            "blocked_at": self.blocked_at,
            "unsubscribed_at": self.unsubscribed_at,
            "unsubscribe_reason": self.unsubscribe_reason,
            "unsubscribe_feedback": self.unsubscribe_feedback,
        }


def chat_json(
    *,
    id: str,
    org_id: str,
    member_id: str,
    state_id: str,
    channel: JSONDict,
    contact: ContactRecord,
    title: str | None,
    assistant_id: str | None,
    stamp: str,
) -> JSONDict:
    """A new chat whose only member is a contact channel (the ``Chat`` schema)."""
    contact_channel = {
        key: channel[key]
        for key in (
            *("id", "type", "user_id", "avatar", "name", "username", "email", "phone"),
            *("country", "agent", "ip", "language", "link"),
        )
    }
    contact_channel["contact"] = {
        "id": contact.id,
        "name": contact.name,
        "blocked": contact.blocked,
        "is_admin": contact.is_admin,
    }
    return {
        "id": id,
        "title": title,
        "model": None,
        "members": [
            {"id": member_id, "user": None, "session": None, "contact_channel": contact_channel}
        ],
        "temporary": False,
        "visibility": "PRIVATE",
        "pinned": False,
        "status": "RUNNING",
        "shared_url": None,
        "created_at": stamp,
        "updated_at": stamp,
        "tools": [],
        "features": {},
        "org_id": org_id,
        "state": {
            "id": state_id,
            "state": "OPEN",
            "integration_id": channel["type"],
            "assistant_id": assistant_id,
            "assistant_integration_id": None,
            "conversation_id": None,
            "ai_enabled": True,
            "admin_unseen_count": 1 if assistant_id is None else 0,
            "user_unseen_count": 0,
        },
    }


def message_json(*, id: str, parts: list[Any], member_id: str, stamp: str) -> JSONDict:
    """A message written by a contact (the ``ChatMessage`` schema)."""
    return {
        "id": id,
        "role": "user",
        "model": None,
        "status": "COMPLETED",
        "created_at": stamp,
        "updated_at": stamp,
        "messages": [{"role": "user", "parts": parts}],
        "tools": [],
        "features": {},
        "member": {"id": member_id},
        "error": None,
        "broadcast_id": None,
        "is_broadcast_message": False,
        "usage": None,
    }


@attrs.define(slots=True, eq=False)
class ChatRecord:
    """A chat on a contact channel: its wire form and its messages, oldest first."""

    id: str
    contact_id: str
    channel_id: str
    member_id: str
    chat: JSONDict
    messages: list[JSONDict] = attrs.Factory(list)


_COUNTERS = (
    *("contacts_count", "recipients_count", "skipped_count", "sent_count", "failed_count"),
    *("delivered_count", "opened_count", "played_count", "click_count", "complained_count"),
    "unsubscribed_count",
)


@attrs.define(slots=True, eq=False)
class BroadcastRecord:
    """A broadcast. ``transactional`` is the fake's own notion (the kind a seeded broadcast
    is of; the API's wire form does not show it): it decides which meaning of ``send`` the
    broadcast answers. ``recipients`` are the rows of its transactional sends."""

    id: str
    name: str
    status: str
    created_at: str
    updated_at: str
    scheduled_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    segment_ids: list[str] = attrs.Factory(list)
    send_to_all: bool = False
    transactional: bool = False
    templates: list[JSONDict] = attrs.Factory(list)
    counts: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(_COUNTERS, 0))
    recipients: list[JSONDict] = attrs.Factory(list)

    def to_json(self, segments: Mapping[str, SegmentRecord]) -> JSONDict:
        """The wire form, with its segments (without ``color``) as they are now."""
        embedded = []
        for sid in self.segment_ids:
            segment = segments.get(sid)
            if segment is not None:
                out = segment.to_json(boards=False)
                del out["color"]
                embedded.append(out)
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "scheduled_at": self.scheduled_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            **self.counts,
            "error_message": None,
            "segments": embedded,
            "send_to_all": self.send_to_all,
            "templates": [dict(template) for template in self.templates],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
