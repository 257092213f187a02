"""Data types of the Invent API: frozen, keyword-only attrs classes and enums.

Response models (``Contact``, ``Channel``, ``Segment``, ...) are immutable value objects whose
sequences are tuples, so they are safe to share between tasks and threads. Request models
(``ContactCreate``, ``SegmentUpdate``, ...) use :data:`~invent_async.UNSET` for "leave this
field out". A shape that is both sent and received is one class: a model with ``UNSET``
defaults that a response model holds is also read, a missing field read as ``UNSET``. This
module knows nothing about JSON or cattrs: every wire rule lives in ``_converter``, which
tells the kinds apart from the fields.

Loaded on first use, not by ``import invent_async`` (building these attrs classes is most of
what the package's import would cost): when a client is created (its resources import the
models they read and write), or when ``invent_async`` is asked for one of them. So this module
publishes its exported names itself, when it loads (``publish`` at the end).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._public import publish
from ._types import UNSET, Unset

__all__ = [
    "Board",
    "Broadcast",
    "BroadcastRecipient",
    "BroadcastSegment",
    "BroadcastStatus",
    "BroadcastTemplate",
    "Channel",
    "ChannelType",
    "Chat",
    "ChatContact",
    "ChatContactChannel",
    "ChatMember",
    "ChatMessage",
    "ChatMessageRole",
    "ChatMessageStatus",
    "ChatState",
    "Contact",
    "ContactChannelOption",
    "ContactField",
    "ContactFieldType",
    "ContactImportResult",
    "ContactMemory",
    "ContactMemoryType",
    "ContactNote",
    "ContactStatus",
    "ConversationState",
    "MergeResult",
    "MessageContent",
    "NoteAttachment",
    "NoteAuthor",
    "OtherPart",
    "Segment",
    "SegmentColor",
    "TextPart",
    "TransactionalSendResult",
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


class ConversationState(enum.StrEnum):
    """Known states of a chat's conversation (:attr:`ChatState.state`); unknown ones arrive
    as plain strings."""

    OPEN = "OPEN"
    SNOOZED = "SNOOZED"
    CLOSED = "CLOSED"


class ChatMessageRole(enum.StrEnum):
    """Known authors' roles of a :class:`ChatMessage`; unknown ones arrive as plain strings."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"
    EVENT = "event"
    NOTE = "note"


class ChatMessageStatus(enum.StrEnum):
    """Known statuses of a :class:`ChatMessage`; unknown ones arrive as plain strings."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class BroadcastStatus(enum.StrEnum):
    """Known statuses of a :class:`Broadcast`; unknown ones arrive as plain strings.

    The ``status`` filter of :meth:`AsyncBroadcasts.list` takes these and ``"ALL"``.
    """

    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    SENT = "SENT"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


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


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatContact:
    """The compact contact of a :class:`ChatContactChannel` (older pages lack
    ``is_admin``)."""

    id: str | None = None
    name: str | None = None
    blocked: bool | None = None
    is_admin: bool | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatContactChannel:
    """The contact channel a chat member is: a lighter :class:`Channel`, with a compact
    ``contact``. The docs show no required flags: every field may be missing."""

    id: str | None = None
    type: ChannelType | str | None = None
    user_id: str | None = None
    avatar: str | None = None
    name: str | None = None
    username: str | None = None
    email: str | None = None
    phone: str | None = None
    country: str | None = None
    agent: str | None = None
    ip: str | None = None
    language: str | None = None
    link: str | None = None
    contact: ChatContact | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatMember:
    """A member of a chat: a user, a session or a contact channel (presumably one of the
    three). ``user`` and ``session`` are kept as the JSON objects the docs half show."""

    id: str | None = None
    role: str | None = None
    """``"ADMIN"`` is the only value the docs show."""
    user: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    session: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    contact_channel: ChatContactChannel | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatState:
    """A chat's conversation state. The docs cut it off after ``assistant``; fields they did
    not show are ignored, as unknown fields always are."""

    id: str | None = None
    state: ConversationState | str | None = None
    integration_id: ChannelType | str | None = None
    assistant_id: str | None = None
    assistant_integration_id: str | None = None
    conversation_id: str | None = None
    ai_enabled: bool | None = None
    admin_unseen_count: int | None = None
    user_unseen_count: int | None = None
    assistant: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


@attrs.frozen(kw_only=True, weakref_slot=False)
class Chat:
    """A chat (conversation), as :meth:`AsyncContacts.create_chat` returns it.

    The docs' schema is cut off partway, so only ``id`` is required here; the rest default
    to what an absent field means (None, empty, False). ``tools`` items and ``features`` are
    kept as the JSON the server sends (their shapes are not documented).
    """

    id: str
    title: str | None = None
    model: str | None = None
    members: tuple[ChatMember, ...] = ()
    temporary: bool = False
    visibility: str | None = None
    """``"PRIVATE"`` is the only value the docs show."""
    pinned: bool = False
    status: str | None = None
    """``"RUNNING"`` is the only value the docs show."""
    shared_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    tools: tuple[Any, ...] = attrs.field(default=(), hash=False)
    features: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    org_id: str | None = None
    state: ChatState | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class MessageContent:
    """One content entry of a :class:`ChatMessage`: a role and its parts."""

    role: str | None = None
    parts: tuple[TextPart | OtherPart, ...] = ()


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatMessage:
    """A chat message, as the "send a message as a contact" calls return it.

    The docs show no required flags: every field may be missing. ``member``, ``usage``,
    ``features``, ``error`` and ``tools`` are kept as the JSON the server sends.
    """

    id: str | None = None
    role: ChatMessageRole | str | None = None
    model: str | None = None
    status: ChatMessageStatus | str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    messages: tuple[MessageContent, ...] = ()
    tools: tuple[Any, ...] = attrs.field(default=(), hash=False)
    features: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    member: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    error: Any = attrs.field(default=None, hash=False)
    broadcast_id: str | None = None
    is_broadcast_message: bool | None = None
    usage: Mapping[str, Any] | None = attrs.field(default=None, hash=False)

    @property
    def parts(self) -> tuple[TextPart | OtherPart, ...]:
        """Every part of every content entry, in order."""
        return tuple(part for content in self.messages for part in content.parts)


@attrs.frozen(kw_only=True, weakref_slot=False)
class BroadcastSegment:
    """A segment as a broadcast embeds it (without ``color``)."""

    id: str
    name: str | None = None
    contacts_count: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class BroadcastTemplate:
    """One template of a broadcast (one per channel integration it sends through)."""

    id: str | None = None
    broadcast_id: str | None = None
    connection_id: str | None = None
    integration_id: str | None = None
    recipients_count: int | None = None
    config: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    error: Any = attrs.field(default=None, hash=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class Broadcast:
    """A broadcast: a message to every contact (``send_to_all``) or to the contacts of some
    segments, with its templates and delivery counters.

    The docs record no required flags, so only ``id`` is required; a counter the server
    leaves out is None.
    """

    id: str
    name: str | None = None
    status: BroadcastStatus | str | None = None
    scheduled_at: datetime | None = None
    """When it is to be sent (None: "send now")."""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    contacts_count: int | None = None
    recipients_count: int | None = None
    skipped_count: int | None = None
    sent_count: int | None = None
    failed_count: int | None = None
    delivered_count: int | None = None
    opened_count: int | None = None
    played_count: int | None = None
    click_count: int | None = None
    complained_count: int | None = None
    unsubscribed_count: int | None = None
    error_message: str | None = None
    segments: tuple[BroadcastSegment, ...] = ()
    send_to_all: bool | None = None
    templates: tuple[BroadcastTemplate, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class BroadcastRecipient:
    """One recipient row of a transactional send: one per template, sent or skipped."""

    id: str | None = None
    broadcast_id: str | None = None
    broadcast_name: str | None = None
    template_id: str | None = None
    user_id: str | None = None
    name: str | None = None
    username: str | None = None
    phone: str | None = None
    email: str | None = None
    is_skipped: bool | None = None
    is_skipped_at: datetime | None = None
    is_failed: bool | None = None
    is_failed_at: datetime | None = None
    is_bounced: bool | None = None
    is_bounced_at: datetime | None = None
    is_sent: bool | None = None
    is_sent_at: datetime | None = None
    is_delivered: bool | None = None
    is_delivered_at: datetime | None = None
    is_complained: bool | None = None
    is_complained_at: datetime | None = None
    is_unsubscribed: bool | None = None
    is_unsubscribed_at: datetime | None = None
    is_opened: bool | None = None
    is_opened_at: datetime | None = None
    is_played: bool | None = None
    is_played_at: datetime | None = None
    error_message: str | None = None
    external_message_id: str | None = None
    """The id the channel gave the message (when the send was waited for)."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    contact: Contact | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class TransactionalSendResult:
    """What :meth:`AsyncBroadcasts.send_transactional` returns: one recipient row per
    template of the broadcast (or per template named), sent or skipped."""

    recipients: tuple[BroadcastRecipient, ...]


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


@attrs.frozen(kw_only=True, weakref_slot=False)
class TextPart:
    """A text part of a message (``{"type": "text", ...}`` on the wire), sent and received.

    A message is a sequence of parts: ``TextPart`` or :class:`OtherPart`. Fields left at
    :data:`~invent_async.UNSET` are not sent (and a field missing from a received part is
    UNSET). The docs do not say what the timestamps measure.
    """

    text: str | Unset = UNSET
    start_timestamp: float | Unset = UNSET
    end_timestamp: float | Unset = UNSET

    @property
    def type(self) -> str:
        """Always ``"text"``: the part's tag on the wire."""
        return "text"


@attrs.frozen(kw_only=True, weakref_slot=False)
class OtherPart:
    """A message part of a type this SDK does not model (the docs list six part types and
    show only text): the JSON object as received, sent back unchanged.

    ``OtherPart(data={"type": "audio", "audio": {...}})`` may also be sent, for a part type the
    API takes and this SDK does not know yet.
    """

    data: Mapping[str, Any] = attrs.field(hash=False)

    @property
    def type(self) -> str | None:
        """The part's ``type`` (None when it has none)."""
        value = self.data.get("type")
        return value if isinstance(value, str) else None


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


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatCreate:
    """Body of ``POST /orgs/{org_id}/contacts/{contact_id}/channels/{channel_id}/chats``."""

    assistant_id: str | Unset = UNSET
    title: str | Unset = UNSET
    message: tuple[TextPart | OtherPart, ...] | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class MessageSend:
    """Body of the two "send a message as a contact" calls (``channel_id`` only in the one
    whose path does not name the channel)."""

    message: tuple[TextPart | OtherPart, ...] | Unset = UNSET
    channel_id: str | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class BroadcastCreate:
    """Body of ``POST /orgs/{org_id}/broadcasts``."""

    name: str
    scheduled_at: datetime | Unset | None = UNSET
    segment_ids: tuple[str, ...] | Unset = UNSET
    send_to_all: bool | Unset = UNSET


@attrs.frozen(kw_only=True, weakref_slot=False)
class BroadcastSend:
    """Body of a transactional ``POST /orgs/{org_id}/broadcasts/{broadcast_id}/send``."""

    contact_channel_id: str | Unset = UNSET
    contact_id: str | Unset = UNSET
    phone: str | Unset = UNSET
    email: str | Unset = UNSET
    name: str | Unset = UNSET
    variables: Mapping[str, Any] | Unset = attrs.field(default=UNSET, hash=False)
    template_ids: tuple[str, ...] | Unset = UNSET
    background: bool | Unset = UNSET


publish("invent_async", globals(), __all__)  # whoever loads this module first
