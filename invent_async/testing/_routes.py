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
  contact ``fields`` (``/contacts/{contact_id}``); ``/contacts/bulk/dry`` the bulk dry run;
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

from ._records import channel_json
from ._store import ApiError, ContactFilters, OrgState, Store
from ._validation import (
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


def dry_run_import(call: Call) -> Reply:
    """Sort the rows into created, updated and invalid; write nothing.

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
    if "segment_id" in values:
        call.store.segment(org, values["segment_id"])
    owners: dict[str, str] = {}  # a channel's email (casefolded) or user id -> its contact
    for contact in org.contacts.values():
        for channel in contact.channels:
            owners.setdefault(channel["user_id"], contact.id)
            if channel["email"]:
                owners.setdefault(channel["email"].casefold(), contact.id)
    result: dict[str, list[dict[str, str]]] = {"created": [], "updated": [], "invalid": []}
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
    return result, _NO_HEADERS


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
    Route("GET", "/orgs/{org_id}/segments", "listSegments", list_segments, SEGMENT_FILTERS),
    Route("POST", "/orgs/{org_id}/segments", "createSegment", create_segment, body="required"),
    Route("GET", _SEGMENT, "getSegment", get_segment),
    Route("PATCH", _SEGMENT, "updateSegment", update_segment, body="required"),
    Route("DELETE", _SEGMENT, "deleteSegment", delete_segment),
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
