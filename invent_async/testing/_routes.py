"""The fake's API: one route table whose rows carry their handlers.

Each :class:`Route` names a method, a path template of ``invent-openapi.yaml``, its
operationId, the query parameters and body it accepts, and the function that answers it. A
handler gets a :class:`Call` (the store, the organisation, the decoded path parameters, the
validated query and body) and returns the JSON payload with any extra headers. Adding an
endpoint to the fake is one handler and one row, anywhere in :data:`ROUTES`.

Routing (:class:`Router`) does not depend on the order of the table:

- the *raw* (percent-encoded) path is matched one segment per template segment, so ``a%2Fb``
  is always one id, against the templates of as many segments;
- among the templates the path fits, a literal segment beats a parameter at the same
  position, compared from the left: ``/contacts/fields`` is the contact fields, never the
  contact ``fields`` (``/contacts/{contact_id}``); ``/contacts/bulk`` the bulk import and
  ``/contacts/bulk/dry`` its dry run;
- the first of those, in that order, with the request's method answers; when none has it,
  405 with the methods of the templates that fit (``Allow``, in the order GET, POST, PUT,
  PATCH, DELETE); when no template fits, 404.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import unquote

import attrs

from ._records import (
    BroadcastRecord,
    ChatRecord,
    ContactRecord,
    JSONDict,
    channel_json,
    chat_json,
    message_json,
)
from ._store import ApiError, ContactFilters, OrgState, Store
from ._validation import (
    BROADCAST_FILTERS,
    COLORS,
    CONTACT_FILTERS,
    NEW_CHANNEL_KEYS,
    PAGINATION,
    SEGMENT_FILTERS,
    BodyChecker,
    QueryKind,
    Reply,
    json_kind,
    paginate,
)

__all__ = ["ROUTES", "BodyMode", "Call", "Route", "Router", "resolve"]

BodyMode: TypeAlias = Literal["none", "required", "optional"]

_NO_HEADERS: Final[Mapping[str, str]] = {}
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_METHOD_ORDER: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")


@attrs.define(slots=True)
class Call:
    """What a handler gets: the store, the org, decoded path params, query and body."""

    store: Store
    org: OrgState
    params: dict[str, str]
    query: dict[str, Any]
    body: Any


Handler: TypeAlias = Callable[[Call], Reply]


@attrs.frozen(eq=False)
class Route:
    """One operation of the API and the handler that answers it."""

    method: str
    template: str
    operation: str
    handler: Handler
    query: Mapping[str, QueryKind] = attrs.field(factory=dict)
    body: BodyMode = "none"
    parts: tuple[str, ...] = attrs.field(init=False)

    @parts.default
    def _split(self) -> tuple[str, ...]:
        return tuple(self.template[1:].split("/"))

    def match(self, decoded: Sequence[str]) -> dict[str, str] | None:
        """The path parameters if ``decoded`` (the path's segments) fits this route."""
        params: dict[str, str] = {}
        for pattern, value in zip(self.parts, decoded, strict=True):
            if pattern[0] == "{":
                if not value:
                    return None
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params


# --------------------------------------------------------------------------- contacts


def _contact(call: Call) -> Reply:
    return call.org.contacts[call.params["contact_id"]].to_json(call.org.segments), _NO_HEADERS


def list_contacts(call: Call) -> Reply:
    q = call.query
    filters = ContactFilters(
        search=q.get("search"),
        unsubscribed=q.get("unsubscribed"),
        user_id=q.get("user_id"),
        name=q.get("name"),
        username=q.get("username"),
        email=q.get("email"),
        segment_id=q.get("segment_id"),
        exclude_admins=q.get("exclude_admins", False),
        status=None if q.get("status") == "ALL" else q.get("status"),
        is_admin=q.get("is_admin"),
    )
    org = call.org
    contacts, segments = org.contacts, org.segments
    return paginate(org.find_contacts(filters), q, lambda cid: contacts[cid].to_json(segments))


def create_contact(call: Call) -> Reply:
    body: dict[str, Any] = call.body
    checker = BodyChecker(body, ("channel", "segment_ids"))
    checker.string_list("segment_ids")
    channel: dict[str, Any] = {}
    if "channel" not in body:
        checker.errors.append("$.channel: required")
    else:
        channel_checker = BodyChecker(body["channel"], NEW_CHANNEL_KEYS, "$.channel")
        channel_checker.string("name")
        for key in ("user_id", "email", "phone", "contact_id"):
            channel_checker.string(key, min_length=1)
        checker.errors.extend(channel_checker.errors)
        channel = channel_checker.values
    values = checker.check()
    user_id: str | None = channel.get("user_id")
    email: str | None = channel.get("email")
    phone: str | None = channel.get("phone")
    identity = user_id or phone or email
    if not identity:
        raise ApiError(
            400, "Invalid request body", ["$.channel: needs a user_id, an email or a phone"]
        )
    # The channel's integration follows from its identity: an explicit user id makes a
    # custom (API) channel, a phone an SMS (twilio) one, an email alone an email one.
    kind = "custom" if user_id else "twilio" if phone else "email"
    store, org = call.store, call.org
    stamp = store.now()
    segment_ids = list(dict.fromkeys(values.get("segment_ids", ())))
    existing = channel.get("contact_id")
    target = None if existing is None else store.contact(org, existing)
    for sid in segment_ids:
        store.segment(org, sid)
    record = channel_json(
        id=store.next_id("ch"),
        type=kind,
        user_id=identity,
        stamp=stamp,
        name=channel.get("name"),
        email=email,
        phone=phone,
    )
    if target is not None:
        contact = store.attach_channel(org, target, record, segment_ids)
    else:
        contact = store.create_contact(
            org, name=channel.get("name"), channel=record, segment_ids=segment_ids, stamp=stamp
        )
    return contact.to_json(org.segments), _NO_HEADERS


def get_contact(call: Call) -> Reply:
    call.store.contact(call.org, call.params["contact_id"])
    return _contact(call)


def update_contact(call: Call) -> Reply:
    checker = BodyChecker(call.body, ("name", "blocked", "unsubscribed"))
    checker.string("name", nullable=True, max_length=512)
    checker.boolean("blocked")
    checker.boolean("unsubscribed")
    changes = checker.check()
    contact = call.store.contact(call.org, call.params["contact_id"])
    call.store.update_contact(call.org, contact, changes)
    return _contact(call)


def delete_contact(call: Call) -> Reply:
    contact = call.store.contact(call.org, call.params["contact_id"])
    reply = _contact(call)
    call.store.delete_contact(call.org, contact)
    return reply


def list_contact_segments(call: Call) -> Reply:
    org = call.org
    contact = call.store.contact(org, call.params["contact_id"])
    segments = [org.segments[sid] for sid in contact.segment_ids]
    return paginate(segments, call.query, lambda s: s.to_json(boards=False))


def set_membership(call: Call, *, member: bool) -> Reply:
    org = call.org
    contact = call.store.contact(org, call.params["contact_id"])
    segment = call.store.segment(org, call.params["segment_id"])
    call.store.set_membership(org, contact, segment, member=member)
    return _contact(call)


def merge_contacts(call: Call) -> Reply:
    sources: list[str] | None = None
    if call.body is not None:
        checker = BodyChecker(call.body, ("source_contact_ids",))
        checker.string_list("source_contact_ids", min_items=1, max_items=50)
        sources = checker.check().get("source_contact_ids")
    org = call.org
    primary = call.store.contact(org, call.params["contact_id"])
    merged = call.store.merge(org, primary, sources)
    return {"merged": primary.to_json(org.segments), "merged_contact_ids": merged}, _NO_HEADERS


def list_contact_notes(call: Call) -> Reply:
    contact = call.store.contact(call.org, call.params["contact_id"])
    return paginate(contact.notes, call.query, dict)


_IMPORT_ROW: Final = ("type", "email", "user_id", "name", "contact_id")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+").fullmatch


def _sorted_import(call: Call) -> tuple[dict[str, list[JSONDict]], str | None]:
    """The rows of an import body checked and sorted (created, updated, invalid), and its
    segment (404 when unknown); nothing written.

    The spec: ``channels`` required, at most 10000 rows of ``{type, email, user_id, name,
    contact_id}`` (all strings, all optional), ``segment_id`` a string. It does not say how
    rows are sorted; the fake's rule: a row naming a contact that exists (``contact_id``), or
    whose email or user id is one of a contact's channels, updates it (the row comes back
    with its ``contact_id``); a row with none of email, user id and contact, with an email
    that is not one, or naming an unknown contact, is invalid; any other creates a contact.
    """
    checker = BodyChecker(call.body, ("channels", "segment_id"))
    checker.string("segment_id")
    rows = call.body.get("channels")
    if "channels" not in call.body:
        checker.errors.append("$.channels: required")
    elif not isinstance(rows, list):
        checker.errors.append(f"$.channels: expected an array, got {json_kind(rows)}")
    elif len(rows) > 10_000:
        checker.errors.append("$.channels: must have at most 10000 items")
    else:
        for index, row in enumerate(rows):
            row_checker = BodyChecker(row, _IMPORT_ROW, f"$.channels[{index}]")
            for key in _IMPORT_ROW:
                row_checker.string(key)
            checker.errors.extend(row_checker.errors)
    values = checker.check()
    org = call.org
    segment_id: str | None = values.get("segment_id")
    if segment_id is not None:
        call.store.segment(org, segment_id)
    owners: dict[str, str] = {}  # a channel's email (casefolded) or user id -> its contact
    for contact in org.contacts.values():
        for channel in contact.channels:
            owners.setdefault(channel["user_id"], contact.id)
            if channel["email"]:
                owners.setdefault(channel["email"].casefold(), contact.id)
    result: dict[str, list[JSONDict]] = {"created": [], "updated": [], "invalid": []}
    for row in rows:
        email, user_id, contact_id = row.get("email"), row.get("user_id"), row.get("contact_id")
        owner = contact_id if contact_id in org.contacts else None
        if owner is None and contact_id is None:
            owner = owners.get(user_id or "") or owners.get((email or "").casefold())
        if contact_id is not None and owner is None:
            result["invalid"].append(row)
        elif owner is not None:
            result["updated"].append({**row, "contact_id": owner})
        elif (email is None and user_id is None) or (email is not None and not _EMAIL(email)):
            result["invalid"].append(row)
        else:
            result["created"].append(row)
    return result, segment_id


def dry_run_import(call: Call) -> Reply:
    """Sort the rows into created, updated and invalid (:func:`_sorted_import`); write
    nothing."""
    return _sorted_import(call)[0], _NO_HEADERS


def import_contacts(call: Call) -> Reply:
    """The live import (an inferred route): the rows sorted as the dry run sorts them, then
    written: a created row makes a contact with one channel (of the row's ``type``, else
    ``email``; its user id the row's, else its email), an updated row changes nothing but
    the segment; both are put into ``segment_id``. The created rows come back with the new
    contact's id."""
    result, segment_id = _sorted_import(call)
    store, org = call.store, call.org
    segment_ids = [] if segment_id is None else [segment_id]
    created = []
    for row in result["created"]:
        stamp = store.now()
        channel = channel_json(
            id=store.next_id("ch"),
            type=row.get("type", "email"),
            user_id=row.get("user_id") or row["email"],
            stamp=stamp,
            name=row.get("name"),
            email=row.get("email"),
        )
        contact = store.create_contact(
            org, name=row.get("name"), channel=channel, segment_ids=segment_ids, stamp=stamp
        )
        created.append({**row, "contact_id": contact.id})
    if segment_id is not None:
        segment = store.segment(org, segment_id)
        for row in result["updated"]:
            store.set_membership(org, org.contacts[row["contact_id"]], segment, member=True)
    return {**result, "created": created}, _NO_HEADERS


def list_contact_memories(call: Call) -> Reply:
    contact = call.store.contact(call.org, call.params["contact_id"])
    return paginate(contact.memories, call.query, dict)


def update_contact_channel(call: Call) -> Reply:
    checker = BodyChecker(call.body, ("avatar", "name", "phone", "username", "email"))
    checker.string("avatar", nullable=True, max_length=2048)
    for key in ("name", "phone", "username", "email"):
        checker.string(key, nullable=True, max_length=256)
    changes = checker.check()
    org = call.org
    contact = call.store.contact(org, call.params["contact_id"])
    channel_id = call.params["channel_id"]
    channel = next((ch for ch in contact.channels if ch["id"] == channel_id), None)
    if channel is None:
        raise ApiError(404, f"Channel {channel_id!r} not found on contact {contact.id!r}")
    if channel["type"] != "custom":
        raise ApiError(
            400,
            f"Only custom channels can be updated; channel {channel_id!r} is {channel['type']!r}",
        )
    call.store.update_channel(org, contact, channel, changes)
    return channel, _NO_HEADERS


def list_contact_fields(call: Call) -> Reply:
    return paginate(list(call.org.fields.values()), call.query, dict)


# --------------------------------------------------------------------------- chats


_TEXT_PART: Final = ("type", "text", "start_timestamp", "end_timestamp")


def _message(checker: BodyChecker, body: Any) -> None:
    """Check ``message`` (the spec's ``MessageParts``: at least one part, each a text part
    or an open fallback object whose ``type`` is not ``text``) into ``checker``."""
    if not isinstance(body, dict) or "message" not in body:
        return
    parts = body["message"]
    if not isinstance(parts, list):
        checker.errors.append(f"$.message: expected an array, got {json_kind(parts)}")
        return
    if not parts:
        checker.errors.append("$.message: must have at least 1 item")
    for index, part in enumerate(parts):
        where = f"$.message[{index}]"
        if isinstance(part, dict) and part.get("type") == "text":
            part_checker = BodyChecker(part, _TEXT_PART, where)
            part_checker.string("text")
            part_checker.number("start_timestamp")
            part_checker.number("end_timestamp")
        else:  # MessagePartOther: any other object, open
            part_checker = BodyChecker(part, part.keys() if isinstance(part, dict) else (), where)
            part_checker.string("type")
            part_checker.obj("audio", nullable=True)
        checker.errors.extend(part_checker.errors)
    checker.values["message"] = parts


def _custom_channel(call: Call, contact: ContactRecord, channel_id: str) -> JSONDict:
    channel = next((ch for ch in contact.channels if ch["id"] == channel_id), None)
    if channel is None:
        raise ApiError(404, f"Channel {channel_id!r} not found on contact {contact.id!r}")
    if channel["type"] != "custom":
        raise ApiError(
            400, f"Only custom channels can chat; channel {channel_id!r} is {channel['type']!r}"
        )
    return channel


def create_contact_channel_chat(call: Call) -> Reply:
    """Open a chat whose only member is the contact channel; an opening message is stored as
    the contact's first message."""
    checker = BodyChecker(call.body, ("assistant_id", "title", "message"))
    checker.string("assistant_id")
    checker.string("title")
    _message(checker, call.body)
    values = checker.check()
    store, org = call.store, call.org
    contact = store.contact(org, call.params["contact_id"])
    channel = _custom_channel(call, contact, call.params["channel_id"])
    stamp = store.now()
    record = ChatRecord(
        id=store.next_id("chat"),
        contact_id=contact.id,
        channel_id=channel["id"],
        member_id=store.next_id("mbr"),
        chat={},
    )
    record.chat = chat_json(
        id=record.id,
        org_id=org.org_id,
        member_id=record.member_id,
        state_id=store.next_id("cs"),
        channel=channel,
        contact=contact,
        title=values.get("title"),
        assistant_id=values.get("assistant_id"),
        stamp=stamp,
    )
    if "message" in values:
        record.messages.append(
            message_json(
                id=store.next_id("msg"),
                parts=values["message"],
                member_id=record.member_id,
                stamp=stamp,
            )
        )
    org.chats[record.id] = record
    return record.chat, _NO_HEADERS


def send_message_as_contact(call: Call, *, channel_in_path: bool) -> Reply:
    """Add a message written by the contact to its chat: the chat must be the contact's, and
    a channel named (in the body or the path) must be the chat's."""
    allowed = ("message",) if channel_in_path else ("message", "channel_id")
    checker = BodyChecker(call.body, allowed)
    checker.string("channel_id")
    _message(checker, call.body)
    values = checker.check()
    store, org = call.store, call.org
    contact = store.contact(org, call.params["contact_id"])
    chat_id = call.params["chat_id"]
    chat = org.chats.get(chat_id)
    if chat is None or chat.contact_id != contact.id:
        raise ApiError(404, f"Chat {chat_id!r} not found for contact {contact.id!r}")
    channel_id = call.params["channel_id"] if channel_in_path else values.get("channel_id")
    if channel_id is not None:
        _custom_channel(call, contact, channel_id)
        if channel_id != chat.channel_id:
            raise ApiError(400, f"Chat {chat_id!r} is not on channel {channel_id!r}")
    message = message_json(
        id=store.next_id("msg"),
        parts=values.get("message", []),
        member_id=chat.member_id,
        stamp=store.now(),
    )
    chat.messages.append(message)
    chat.chat["updated_at"] = message["created_at"]
    return message, _NO_HEADERS


# --------------------------------------------------------------------------- broadcasts


def list_broadcasts(call: Call) -> Reply:
    status = call.query.get("status")
    org = call.org
    found = [b for b in org.broadcasts.values() if status in (None, "ALL") or b.status == status]
    return paginate(found, call.query, lambda b: b.to_json(org.segments))


def _datetime(checker: BodyChecker, body: Any, key: str) -> None:
    """A nullable RFC 3339 date-time string."""
    if not isinstance(body, dict) or key not in body or body[key] is None:
        checker.string(key, nullable=True)
        return
    value = body[key]
    if not isinstance(value, str) or not _DATE_TIME(value):
        checker.errors.append(f"$.{key}: expected an RFC 3339 date-time or null")
    else:
        checker.values[key] = value


_DATE_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)").fullmatch


def create_broadcast(call: Call) -> Reply:
    """A new broadcast: ``SCHEDULED`` when ``scheduled_at`` is a time, else ``DRAFT``; no
    templates (the API's create takes none). ``contacts_count`` is the contacts it targets
    now."""
    checker = BodyChecker(call.body, ("name", "scheduled_at", "segment_ids", "send_to_all"))
    checker.string("name", required=True, min_length=1, max_length=255)
    _datetime(checker, call.body, "scheduled_at")
    checker.string_list("segment_ids", max_items=10)
    checker.boolean("send_to_all")
    values = checker.check()
    store, org = call.store, call.org
    segment_ids = list(dict.fromkeys(values.get("segment_ids", ())))
    for sid in segment_ids:
        store.segment(org, sid)
    stamp = store.now()
    scheduled_at = values.get("scheduled_at")
    # the docs: a null scheduled_at "means send now"; left out, the broadcast is a draft
    now = "scheduled_at" in call.body and call.body["scheduled_at"] is None
    record = BroadcastRecord(
        id=store.next_id("bc"),
        name=values["name"],
        status="SENDING" if now else "DRAFT" if scheduled_at is None else "SCHEDULED",
        created_at=stamp,
        updated_at=stamp,
        scheduled_at=scheduled_at,
        started_at=stamp if now else None,
        segment_ids=segment_ids,
        send_to_all=values.get("send_to_all", False),
    )
    record.counts["contacts_count"] = len(store.targeted(org, record))
    org.broadcasts[record.id] = record
    return record.to_json(org.segments), _NO_HEADERS


_SENDABLE: Final = frozenset({"DRAFT", "CANCELLED", "FAILED"})
_SEND_KEYS: Final = (
    *("contact_channel_id", "contact_id", "phone", "email", "name"),
    *("variables", "template_ids", "background"),
)


def send_broadcast(call: Call) -> Reply:
    """The two meanings of the path, told apart by the broadcast's kind (the fake's rule, as
    the spec presumes): a marketing broadcast takes no body and starts sending (from
    ``DRAFT``, ``CANCELLED`` or ``FAILED`` only); a transactional one takes a body naming one
    recipient and answers with one recipient row per template."""
    values: dict[str, Any] = {}
    if call.body is not None:  # checked first, whatever the broadcast
        checker = BodyChecker(call.body, _SEND_KEYS)
        checker.string("contact_channel_id")
        checker.string("contact_id")
        for key in ("phone", "email", "name"):
            checker.string(key, max_length=256)
        checker.obj("variables")
        checker.string_list("template_ids")
        checker.boolean("background")
        values = checker.check()
    store, org = call.store, call.org
    broadcast = store.broadcast(org, call.params["broadcast_id"])
    if not broadcast.transactional:
        if call.body is not None:
            raise ApiError(400, "A marketing broadcast is sent without a request body")
        if broadcast.status not in _SENDABLE:
            raise ApiError(
                400, f"Broadcast {broadcast.id!r} is {broadcast.status}; it cannot be sent"
            )
        stamp = store.now()
        targeted = store.targeted(org, broadcast)
        broadcast.status = "SENDING"
        broadcast.scheduled_at = None
        broadcast.started_at = stamp
        broadcast.updated_at = stamp
        broadcast.counts["contacts_count"] = len(targeted)
        broadcast.counts["recipients_count"] = len(targeted)
        for template in broadcast.templates:
            template["recipients_count"] = len(targeted)
            template["updated_at"] = stamp
        return broadcast.to_json(org.segments), _NO_HEADERS
    contact, channel = _recipient(store, org, values)
    templates = broadcast.templates
    if "template_ids" in values:
        known = {t["id"]: t for t in templates}
        unknown = [tid for tid in values["template_ids"] if tid not in known]
        if unknown:
            raise ApiError(400, f"Unknown templates of {broadcast.id!r}: {', '.join(unknown)}")
        templates = [known[tid] for tid in dict.fromkeys(values["template_ids"])]
    rows = [
        _recipient_row(store, org, broadcast, template, contact, channel, values)
        for template in templates
    ]
    broadcast.recipients.extend(rows)
    broadcast.counts["recipients_count"] += len(rows)
    broadcast.counts["sent_count"] += sum(row["is_sent"] for row in rows)
    broadcast.counts["skipped_count"] += sum(row["is_skipped"] for row in rows)
    return {"recipients": rows}, _NO_HEADERS


def _recipient(
    store: Store, org: OrgState, values: Mapping[str, Any]
) -> tuple[ContactRecord, JSONDict]:
    """The contact and channel a transactional send goes to, by the most specific field
    given; a phone or email that no channel has makes a new contact."""
    if "contact_channel_id" in values:
        wanted = values["contact_channel_id"]
        for contact in org.contacts.values():
            for channel in contact.channels:
                if channel["id"] == wanted:
                    return contact, channel
        raise ApiError(404, f"Contact channel {wanted!r} not found")
    if "contact_id" in values:
        contact = store.contact(org, values["contact_id"])
        return contact, contact.channels[0]
    phone, email = values.get("phone"), values.get("email")
    if phone is None and email is None:
        raise ApiError(
            400,
            "A transactional send names a recipient: contact_channel_id, contact_id, "
            "phone or email",
        )
    for contact in org.contacts.values():
        for channel in contact.channels:
            if (phone is not None and channel["phone"] == phone) or (
                email is not None
                and channel["email"] is not None
                and channel["email"].casefold() == email.casefold()
            ):
                return contact, channel
    stamp = store.now()
    channel = channel_json(
        id=store.next_id("ch"),
        type="twilio" if phone is not None else "email",
        user_id=phone or email or "",
        stamp=stamp,
        email=email,
        phone=phone,
    )
    return store.create_contact(org, name=None, channel=channel, stamp=stamp), channel


def _recipient_row(
    store: Store,
    org: OrgState,
    broadcast: BroadcastRecord,
    template: JSONDict,
    contact: ContactRecord,
    channel: JSONDict,
    values: Mapping[str, Any],
) -> JSONDict:
    """One recipient row: skipped for a blocked or unsubscribed contact, else sent (queued,
    not yet sent, with ``background``)."""
    stamp = store.now()
    skipped = contact.blocked or contact.unsubscribed
    sent = not skipped and not values.get("background", False)
    row: JSONDict = {
        "id": store.next_id("rcp"),
        "broadcast_id": broadcast.id,
        "broadcast_name": broadcast.name,
        "template_id": template["id"],
        "user_id": channel["user_id"],
        "name": values.get("name", contact.name),
        "username": channel["username"],
        "phone": values.get("phone", channel["phone"]),
        "email": values.get("email", channel["email"]),
    }
    for flag in ("skipped", "failed", "bounced", "sent", "delivered", "complained"):
        row[f"is_{flag}"] = False
        row[f"is_{flag}_at"] = None
    for flag in ("unsubscribed", "opened", "played"):
        row[f"is_{flag}"] = False
        row[f"is_{flag}_at"] = None
    row["is_skipped"], row["is_skipped_at"] = skipped, stamp if skipped else None
    row["is_sent"], row["is_sent_at"] = sent, stamp if sent else None
    row["error_message"] = None
    row["external_message_id"] = store.next_id("ext") if sent else None
    row["created_at"] = stamp
    row["updated_at"] = stamp
    row["contact"] = contact.to_json(org.segments)
    return row


# --------------------------------------------------------------------------- segments


def list_segments(call: Call) -> Reply:
    search = call.query.get("search")
    needle = None if search is None else search.casefold()
    exclude_used = call.query.get("exclude_board_columns", False)
    found = [
        seg
        for seg in call.org.segments.values()
        if (needle is None or needle in seg.name.casefold()) and not (exclude_used and seg.boards)
    ]
    return paginate(found, call.query, lambda s: s.to_json(boards=True))


def create_segment(call: Call) -> Reply:
    checker = BodyChecker(call.body, ("name", "color"))
    checker.string("name", required=True, min_length=1, max_length=128)
    checker.string("color", choices=COLORS)
    values = checker.check()
    segment = call.store.create_segment(call.org, values["name"], values.get("color", "neutral"))
    return segment.to_json(boards=True), _NO_HEADERS


def get_segment(call: Call) -> Reply:
    return call.store.segment(call.org, call.params["segment_id"]).to_json(boards=True), _NO_HEADERS


def update_segment(call: Call) -> Reply:
    checker = BodyChecker(call.body, ("name", "color"))
    checker.string("name", min_length=1, max_length=128)
    checker.string("color", choices=COLORS)
    changes = checker.check()
    segment = call.store.segment(call.org, call.params["segment_id"])
    call.store.update_segment(call.org, segment, changes)
    return segment.to_json(boards=True), _NO_HEADERS


def delete_segment(call: Call) -> Reply:
    segment = call.store.segment(call.org, call.params["segment_id"])
    payload = segment.to_json(boards=True)
    call.store.delete_segment(call.org, segment)
    return payload, _NO_HEADERS


# --------------------------------------------------------------------------- the table

_CONTACT: Final = "/orgs/{org_id}/contacts/{contact_id}"
_SEGMENT: Final = "/orgs/{org_id}/segments/{segment_id}"
_CHANNEL: Final = f"{_CONTACT}/channels/{{channel_id}}"

ROUTES: Final[Sequence[Route]] = (
    Route(
        "GET",
        "/orgs/{org_id}/contacts/fields",
        "listContactFields",
        list_contact_fields,
        PAGINATION,
    ),
    Route("GET", "/orgs/{org_id}/contacts", "listContacts", list_contacts, CONTACT_FILTERS),
    Route("POST", "/orgs/{org_id}/contacts", "createContact", create_contact, body="required"),
    Route(
        "POST",
        "/orgs/{org_id}/contacts/bulk/dry",
        "dryRunImportContacts",
        dry_run_import,
        body="required",
    ),
    Route(
        "POST", "/orgs/{org_id}/contacts/bulk", "importContacts", import_contacts, body="required"
    ),
    Route("GET", _CONTACT, "getContact", get_contact),
    Route("PATCH", _CONTACT, "updateContact", update_contact, body="required"),
    Route("DELETE", _CONTACT, "deleteContact", delete_contact),
    Route("GET", f"{_CONTACT}/segments", "listContactSegments", list_contact_segments, PAGINATION),
    Route(
        "POST",
        f"{_CONTACT}/segments/{{segment_id}}",
        "addSegmentToContact",
        functools.partial(set_membership, member=True),
    ),
    Route(
        "DELETE",
        f"{_CONTACT}/segments/{{segment_id}}",
        "removeSegmentFromContact",
        functools.partial(set_membership, member=False),
    ),
    Route("POST", f"{_CONTACT}/merge", "mergeContacts", merge_contacts, body="optional"),
    Route("GET", f"{_CONTACT}/notes", "listContactNotes", list_contact_notes, PAGINATION),
    Route("GET", f"{_CONTACT}/memories", "listContactMemories", list_contact_memories, PAGINATION),
    Route(
        "PATCH",
        f"{_CONTACT}/channels/{{channel_id}}",
        "updateContactChannel",
        update_contact_channel,
        body="required",
    ),
    Route(
        "POST",
        f"{_CHANNEL}/chats",
        "createContactChannelChat",
        create_contact_channel_chat,
        body="required",
    ),
    Route(
        "POST",
        f"{_CONTACT}/chats/{{chat_id}}/messages",
        "sendMessageAsContact",
        functools.partial(send_message_as_contact, channel_in_path=False),
        body="required",
    ),
    Route(
        "POST",
        f"{_CHANNEL}/chats/{{chat_id}}/messages",
        "sendMessageAsContactOnChannel",
        functools.partial(send_message_as_contact, channel_in_path=True),
        body="required",
    ),
    Route("GET", "/orgs/{org_id}/segments", "listSegments", list_segments, SEGMENT_FILTERS),
    Route("POST", "/orgs/{org_id}/segments", "createSegment", create_segment, body="required"),
    Route("GET", _SEGMENT, "getSegment", get_segment),
    Route("PATCH", _SEGMENT, "updateSegment", update_segment, body="required"),
    Route("DELETE", _SEGMENT, "deleteSegment", delete_segment),
    Route("GET", "/orgs/{org_id}/broadcasts", "listBroadcasts", list_broadcasts, BROADCAST_FILTERS),
    Route(
        "POST", "/orgs/{org_id}/broadcasts", "createBroadcast", create_broadcast, body="required"
    ),
    Route(
        "POST",
        "/orgs/{org_id}/broadcasts/{broadcast_id}/send",
        "sendBroadcast",
        send_broadcast,
        body="optional",
    ),
)


def _decoded(raw_path: str) -> list[str]:
    """The raw path's segments, each percent-decoded; ApiError 400 for a bad encoding."""
    decoded: list[str] = []
    for part in raw_path[1:].split("/"):
        if "%" not in part:
            decoded.append(part)
            continue
        if _BAD_PERCENT.search(part):
            raise ApiError(400, f"Malformed percent-encoding in path segment {part!r}")
        try:
            decoded.append(unquote(part, errors="strict"))
        except UnicodeDecodeError:
            raise ApiError(400, f"Path segment {part!r} is not UTF-8") from None
    return decoded


class Router:
    """Finds the route of a request by the rules of the module docstring, whatever the order
    of ``routes``: each length's routes are sorted once, literal segments before parameters
    from the left."""

    def __init__(self, routes: Sequence[Route]) -> None:
        by_length: dict[int, list[Route]] = {}
        for route in routes:
            by_length.setdefault(len(route.parts), []).append(route)
        self._by_length = {
            length: sorted(found, key=lambda r: tuple(part[0] == "{" for part in r.parts))
            for length, found in by_length.items()
        }

    def resolve(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        """The route and decoded path params for a raw path; ApiError 400/404/405 otherwise."""
        candidates = self._by_length.get(raw_path.count("/")) if raw_path.startswith("/") else None
        if not candidates:
            raise ApiError(404, f"No route for {method} {raw_path}")
        decoded = _decoded(raw_path)
        allowed: set[str] = set()
        for route in candidates:
            params = route.match(decoded)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.add(route.method)
        if allowed:
            methods = [m for m in _METHOD_ORDER if m in allowed]
            raise ApiError(405, f"Method {method} not allowed on {raw_path}", methods)
        raise ApiError(404, f"No route for {method} {raw_path}")


resolve: Final = Router(ROUTES).resolve
"""The route of a request in :data:`ROUTES` (see :meth:`Router.resolve`)."""
