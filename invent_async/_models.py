"""Data types of the Invent API: frozen, keyword-only attrs classes and enums.

Response models (``Contact``, ``Channel``, ``Segment``, ...) are immutable value objects whose
sequences are tuples, so they are safe to share between tasks and threads. Request models
(``ContactCreate``, ``SegmentUpdate``, ...) use :data:`~invent_async.UNSET` for "leave this
field out". A shape that is both sent and received is one class: a model with ``UNSET``
defaults that a response model holds is also read, a missing field read as ``UNSET``. This
module knows nothing about JSON or cattrs: every wire rule lives in ``_converter``, which
tells the kinds apart from the fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._types import UNSET, Unset

__all__ = [
    "Board",
    "Channel",
    "ChannelType",
    "Contact",
    "ContactChannelOption",
    "ContactField",
    "ContactFieldType",
    "ContactImportResult",
    "ContactMemory",
    "ContactMemoryType",
    "ContactNote",
    "ContactStatus",
    "MergeResult",
    "NoteAttachment",
    "NoteAuthor",
    "Segment",
    "SegmentColor",
]
"""The public models and enums, exported by ``invent_async`` as they are listed here. The
request models below (``ContactCreate``, ...) are internal: the resources build them."""


class SegmentColor(enum.StrEnum):
    """The UI colour of a segment (the 17 values the API documents)."""

    RED = "red"
    ORANGE = "orange"
    AMBER = "amber"
    YELLOW = "yellow"
    LIME = "lime"
    GREEN = "green"
    TEAL = "teal"
    CYAN = "cyan"
    SKY = "sky"
    BLUE = "blue"
    INDIGO = "indigo"
    VIOLET = "violet"
    PURPLE = "purple"
    FUCHSIA = "fuchsia"
    PINK = "pink"
    ROSE = "rose"
    NEUTRAL = "neutral"


class ChannelType(enum.StrEnum):
    """Known channel integrations.

    The API adds integrations over time, so :attr:`Channel.type` is ``ChannelType | str``: a
    value this SDK does not know yet arrives as a plain string instead of failing.
    """

    INTERNAL = "internal"
    CUSTOM = "custom"
    WHATSAPP_BOT = "whatsapp_bot"
    MESSENGER_BOT = "messenger_bot"
    INSTAGRAM_DM = "instagram_dm"
    TIKTOK_DM = "tiktok_dm"
    TWILIO = "twilio"
    TELNYX = "telnyx"
    SLACK_BOT = "slack_bot"
    TELEGRAM_BOT = "telegram_bot"
    GMAIL = "gmail"
    EMAIL = "email"
    GOOGLE_CALENDAR = "google_calendar"


class ContactStatus(enum.StrEnum):
    """Values of the ``status`` filter of :meth:`AsyncContacts.list` (not a contact field)."""

    ALL = "ALL"
    SUBSCRIBED = "SUBSCRIBED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    BLOCKED = "BLOCKED"
    AI_REPLIES_DISABLED = "AI_REPLIES_DISABLED"


class ContactFieldType(enum.StrEnum):
    """Known types of a contact field; unknown ones arrive as plain strings."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    FILE = "file"
    RECORD = "record"
    CONTACT = "contact"
    USER = "user"
    CHAT = "chat"
    SEGMENT = "segment"
    ASSISTANT = "assistant"


class ContactMemoryType(enum.StrEnum):
    """Known kinds of a :class:`ContactMemory`; unknown ones arrive as plain strings."""

    FACT = "FACT"
    PREFERENCE = "PREFERENCE"
    GOAL = "GOAL"
    EXPERIENCE = "EXPERIENCE"


# --------------------------------------------------------------------------- responses


@attrs.frozen(kw_only=True, weakref_slot=False)
class Board:
    """A board column that uses a segment."""

    board_id: str | None = None
    board_name: str | None = None
    column_id: str | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class Segment:
    """A named, coloured group of contacts.

    ``color`` is None for segments embedded in older responses that did not carry it, and a
    plain string for a colour this SDK does not know yet. ``boards`` is None where the API
    does not send it (segments embedded in a contact or listed per contact).
    """

    id: str
    name: str
    color: SegmentColor | str | None = None
    contacts_count: int = 0
    created_at: datetime
    updated_at: datetime
    boards: tuple[Board, ...] | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class Channel:
    """One identity of a contact on one integration (a phone number, an email address, ...)."""

    id: str
    type: ChannelType | str
    user_id: str
    avatar: str | None = None
    name: str | None = None
    username: str | None = None
    email: str | None = None
    phone: str | None = None
    country: str | None = None
    agent: str | None = None
    ip: str | None = None
    language: str | None = None
    platform_data: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    link: str | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactRef:
    """A listed contact's id alone: what a segment sync keeps of each member it reads.

    Internal (not exported). Reading only the id is about 3x faster than building the whole
    :class:`Contact`; the other fields are ignored, as unknown fields always are.
    """

    id: str


@attrs.frozen(kw_only=True, weakref_slot=False)
class Contact:
    """A contact of an organisation.

    A contact has no status field: ``blocked`` and ``unsubscribed`` are the flags the ``status``
    list filter is derived from.
    """

    id: str
    name: str | None
    blocked: bool
    is_admin: bool
    channels: tuple[Channel, ...]
    segments: tuple[Segment, ...]
    created_at: datetime
    updated_at: datetime
    unsubscribed: bool | None = None
    blocked_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    unsubscribe_reason: str | None = None
    unsubscribe_feedback: str | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactField:
    """The definition of a custom contact field."""

    id: str
    table_id: str
    key: str
    type: ContactFieldType | str | None = None
    schema: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    readonly: bool
    kind: str


@attrs.frozen(kw_only=True, weakref_slot=False)
class NoteAttachment:
    """A file attached to a contact note."""

    id: str | None = None
    file_path: str | None = None
    file_filename: str | None = None
    file_size: int | None = None
    file_mimetype: str | None = None
    file_url: str | None = None
    created_at: datetime | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class NoteAuthor:
    """The user who wrote a contact note."""

    id: str
    name: str | None = None
    avatar: str | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactNote:
    """A note on a contact."""

    id: str
    contact_id: str
    content: str | None
    attachments: tuple[NoteAttachment, ...] = ()
    created_at: datetime | None
    updated_at: datetime | None
    user: NoteAuthor | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactMemory:
    """One thing remembered about a contact (a fact, a preference, a goal, an experience).

    Documented on a legacy page only, which typed the timestamps as plain dates
    (``2023-12-25``): those are read as midnight UTC, date-times as everywhere else.
    ``importance`` is a score from 0 to 1.
    """

    id: str
    content: str
    type: ContactMemoryType | str
    importance: float
    created_at: datetime | None
    updated_at: datetime | None
    user_id: str | None = None
    contact_id: str | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class MergeResult:
    """The outcome of :meth:`AsyncContacts.merge`: the surviving contact and the folded ids."""

    merged: Contact
    merged_contact_ids: tuple[str, ...] = ()


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactImportResult:
    """What a bulk import would do (:meth:`AsyncContacts.preview_import`): the rows sent,
    sorted into those that would create a contact, update one, or be rejected."""

    created: tuple[ContactChannelOption, ...]
    updated: tuple[ContactChannelOption, ...]
    invalid: tuple[ContactChannelOption, ...]


# --------------------------------------------------------------------------- sent and received


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactChannelOption:
    """One row of a bulk contact import, as it is sent and as the result lists it.

    Every field is optional (the docs show an example row, no required flags): a field left
    at :data:`~invent_async.UNSET` is not sent, and a field missing from a row of the result
    is UNSET.
    """

    type: str | Unset = UNSET
    """The row's channel type; ``"email"`` is the only one the docs show."""
    email: str | Unset = UNSET
    user_id: str | Unset = UNSET
    """The channel's user id (a phone number, a platform user id, ...)."""
    name: str | Unset = UNSET
    contact_id: str | Unset = UNSET
    """The contact the row is for (the result names it on the updated rows)."""


# --------------------------------------------------------------------------- requests


@attrs.frozen(kw_only=True, weakref_slot=False)
class NewChannel:
    """The first channel of a contact being created (``channel`` in the create body)."""

    user_id: str | Unset = UNSET
    name: str | Unset = UNSET
    email: str | Unset = UNSET
    phone: str | Unset = UNSET
    contact_id: str | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactCreate:
    """Body of ``POST /orgs/{org_id}/contacts``."""

    channel: NewChannel
    segment_ids: tuple[str, ...] | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactUpdate:
    """Body of ``PATCH /orgs/{org_id}/contacts/{contact_id}`` (fields left UNSET are omitted)."""

    name: str | Unset | None = UNSET
    blocked: bool | Unset = UNSET
    unsubscribed: bool | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactMerge:
    """Body of ``POST /orgs/{org_id}/contacts/{contact_id}/merge``."""

    source_contact_ids: tuple[str, ...] | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChannelUpdate:
    """Body of ``PATCH /orgs/{org_id}/contacts/{contact_id}/channels/{channel_id}``."""

    avatar: str | Unset | None = UNSET
    name: str | Unset | None = UNSET
    phone: str | Unset | None = UNSET
    username: str | Unset | None = UNSET
    email: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class ContactImport:
    """Body of ``POST /orgs/{org_id}/contacts/bulk/dry``."""

    channels: tuple[ContactChannelOption, ...]
    segment_id: str | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class SegmentCreate:
    """Body of ``POST /orgs/{org_id}/segments``."""

    name: str
    color: SegmentColor | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class SegmentUpdate:
    """Body of ``PATCH /orgs/{org_id}/segments/{segment_id}``."""

    name: str | Unset = UNSET
    color: SegmentColor | Unset = UNSET
