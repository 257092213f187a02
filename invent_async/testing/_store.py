"""The fake's in-memory store: organisations and what they hold, and the operations on them.

Everything here is synchronous and HTTP-free: the route handlers (``_routes``) and the seeding
helpers of :class:`~invent_async.testing.FakeInvent` call these operations under
:attr:`Store.lock`. Operations raise :class:`ApiError` with the HTTP status they map to. The
records and their wire form live in ``_records``.
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import attrs

from .. import _models as m
from .._converter import format_datetime
from ._records import (
    BroadcastRecord,
    ChatRecord,
    ContactRecord,
    JSONDict,
    SegmentRecord,
    channel_json,
    field_json,
    note_json,
    value_json,
)

__all__ = ["DEFAULT_ORG", "ApiError", "ContactFilters", "OrgState", "Store"]

T = TypeVar("T")

DEFAULT_ORG: Final = "c"
_LIST_CACHE_SIZE: Final = 32


class ApiError(Exception):
    """An operation failed with an HTTP status (400, 404, ...) and a message for the body."""

    def __init__(self, status: int, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors)


@attrs.frozen(kw_only=True)
class ContactFilters:
    """The validated filters of ``GET /contacts`` (None means "not given")."""

    search: str | None = None
    unsubscribed: bool | None = None
    user_id: str | None = None
    name: str | None = None
    username: str | None = None
    email: str | None = None
    segment_id: str | None = None
    exclude_admins: bool = False
    exclude_board_id: str | None = None
    status: str | None = None
    is_admin: bool | None = None

    def is_empty(self) -> bool:
        """True when no filter narrows the list."""
        return self == _NO_FILTERS

    def matches(self, contact: ContactRecord) -> bool:
        """Whether ``contact`` passes every filter except ``segment_id``."""
        if self.search is not None and (
            contact.name is None or self.search.casefold() not in contact.name.casefold()
        ):
            return False
        if self.unsubscribed is not None and contact.unsubscribed != self.unsubscribed:
            return False
        if self.name is not None and contact.name != self.name:
            return False
        if self.exclude_admins and contact.is_admin:
            return False
        if self.is_admin is not None and contact.is_admin != self.is_admin:
            return False
        if self.status is not None and not _status_matches(self.status, contact):
            return False
        if self.user_id is not None and not any(
            ch["user_id"] == self.user_id for ch in contact.channels
        ):
            return False
        if self.username is not None and not any(
            ch["username"] == self.username for ch in contact.channels
        ):
            return False
        if self.email is not None:
            wanted = self.email.casefold()
            if not any(
                ch["email"] is not None and ch["email"].casefold() == wanted
                for ch in contact.channels
            ):
                return False
        return True


_NO_FILTERS: Final = ContactFilters()


def _status_matches(status: str, contact: ContactRecord) -> bool:
    if status == "SUBSCRIBED":
        return not contact.unsubscribed and not contact.blocked
    if status == "UNSUBSCRIBED":
        return contact.unsubscribed
    if status == "BLOCKED":
        return contact.blocked
    if status == "AI_REPLIES_DISABLED":
        return contact.ai_replies_disabled
    return True  # ALL


class OrgState:
    """One organisation's contacts, segments, fields and list caches."""

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.contacts: dict[str, ContactRecord] = {}
        self.segments: dict[str, SegmentRecord] = {}
        self.fields: dict[str, JSONDict] = {}
        self.chats: dict[str, ChatRecord] = {}
        self.broadcasts: dict[str, BroadcastRecord] = {}
        self._order: list[str] | None = []
        self._list_cache: dict[ContactFilters, list[str]] = {}

    def changed(self, *, removed: bool = False) -> None:
        """Invalidate the list caches after a mutation (``removed``: a contact went away)."""
        if self._list_cache:
            self._list_cache.clear()
        if removed:
            self._order = None

    def insert(self, contact: ContactRecord) -> None:
        """Store a new contact at the end of the creation order."""
        self.contacts[contact.id] = contact
        if self._order is not None:
            self._order.append(contact.id)
        if self._list_cache:
            self._list_cache.clear()

    def insert_many(self, contacts: Iterable[ContactRecord]) -> None:
        """Store many new contacts at the end of the creation order."""
        start = len(self.contacts)
        self.contacts.update((c.id, c) for c in contacts)
        if self._order is not None:
            self._order.extend(itertools.islice(self.contacts, start, None))
        if self._list_cache:
            self._list_cache.clear()

    def ordered_ids(self) -> list[str]:
        """Every contact id in creation order (cached until a contact is removed)."""
        if self._order is None:
            self._order = sorted(self.contacts, key=lambda cid: self.contacts[cid].seq)
        return self._order

    def find_contacts(self, filters: ContactFilters) -> list[str]:
        """Ids of the contacts that pass ``filters``, in creation order (cached)."""
        if filters.is_empty():
            return self.ordered_ids()
        cached = self._list_cache.get(filters)
        if cached is not None:
            return cached
        if filters.segment_id is not None:
            segment = self.segments.get(filters.segment_id)
            members = [] if segment is None else [self.contacts[cid] for cid in segment.members]
            candidates: Iterable[ContactRecord] = sorted(members, key=lambda c: c.seq)
        else:
            candidates = (self.contacts[cid] for cid in self.ordered_ids())
        found = [c.id for c in candidates if filters.matches(c)]
        if len(self._list_cache) >= _LIST_CACHE_SIZE:
            self._list_cache.clear()
        self._list_cache[filters] = found
        return found


def _default_fields() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (
            "contract",
            "file",
            {
                "type": "file",
                "name": "Contract",
                "description": "Signed contract",
                "optional": True,
                "array": False,
                "hidden": False,
                "allowed_types": ["application/pdf"],
                "visibility": "PRIVATE",
            },
        ),
        (
            "company",
            "string",
            {"type": "string", "name": "Company", "optional": True, "array": False},
        ),
    ]


def _found(items: Mapping[str, T], key: str, what: str) -> T:
    found = items.get(key)
    if found is None:
        raise ApiError(404, f"{what} {key!r} not found")
    return found


class Store:
    """Every organisation's state, the id counters and the clock.

    Ids are deterministic and global across organisations: ``ct_1, ct_2, ...`` for contacts,
    ``ch_N`` channels, ``sg_N`` segments, ``nt_N`` notes, ``fld_N`` fields, ``chat_N`` chats,
    ``msg_N`` messages, ``bc_N`` broadcasts, ``tpl_N`` their templates, ``rcp_N`` recipient
    rows.
    """

    def __init__(self, clock: Callable[[], datetime], *, seed_fields: bool = True) -> None:
        # Held by every HTTP operation and every FakeInvent helper, so that seeding or reading
        # state from another thread (a fake served from a background loop) is safe.
        self.lock = threading.RLock()
        self._clock = clock
        self._seed_fields = seed_fields
        self._counters: dict[str, itertools.count[int]] = {}
        self.orgs: dict[str, OrgState] = {}
        self.add_org(DEFAULT_ORG)

    # ------------------------------------------------------------------ basics

    def now(self) -> str:
        """The clock's current time as a wire timestamp."""
        return format_datetime(self._clock())

    def next_id(self, prefix: str) -> str:
        """The next deterministic id with ``prefix`` (``ct``, ``sg``, ...)."""
        return f"{prefix}_{self._next_number(prefix)}"

    def _next_number(self, prefix: str) -> int:
        counter = self._counters.get(prefix)
        if counter is None:
            counter = self._counters[prefix] = itertools.count(1)
        return next(counter)

    def add_org(self, org_id: str) -> OrgState:
        """Create an organisation (a no-op returning the existing one if it is known)."""
        if not isinstance(org_id, str) or not org_id:
            raise ValueError(f"org_id must be a non-empty string, got {org_id!r}")
        org = self.orgs.get(org_id)
        if org is None:
            org = self.orgs[org_id] = OrgState(org_id)
            if self._seed_fields:
                for key, ftype, schema in _default_fields():
                    self.add_field(org, key, ftype, schema, readonly=False, kind="system")
        return org

    def org(self, org_id: str) -> OrgState:
        """A known organisation, or ApiError 404."""
        return _found(self.orgs, org_id, "Organization")

    @staticmethod
    def contact(org: OrgState, contact_id: str) -> ContactRecord:
        """A contact of ``org``, or ApiError 404."""
        return _found(org.contacts, contact_id, "Contact")

    @staticmethod
    def segment(org: OrgState, segment_id: str) -> SegmentRecord:
        """A segment of ``org``, or ApiError 404."""
        return _found(org.segments, segment_id, "Segment")

    @staticmethod
    def broadcast(org: OrgState, broadcast_id: str) -> BroadcastRecord:
        """A broadcast of ``org``, or ApiError 404."""
        return _found(org.broadcasts, broadcast_id, "Broadcast")

    @staticmethod
    def targeted(org: OrgState, broadcast: BroadcastRecord) -> list[str]:
        """The ids of the contacts a broadcast goes to (every one, or its segments')."""
        if broadcast.send_to_all:
            return list(org.ordered_ids())
        found: dict[str, None] = {}
        for sid in broadcast.segment_ids:
            segment = org.segments.get(sid)
            if segment is not None:
                found.update(segment.members)
        return list(found)

    # ------------------------------------------------------------------ contacts

    def create_contact(
        self,
        org: OrgState,
        *,
        name: str | None,
        channel: JSONDict,
        segment_ids: Sequence[str] = (),
        blocked: bool = False,
        unsubscribed: bool = False,
        is_admin: bool = False,
        ai_replies_disabled: bool = False,
        stamp: str | None = None,
        contact_id: str | None = None,
    ) -> ContactRecord:
        """Create a contact with one channel and put it into ``segment_ids`` (404 if unknown).

        ``contact_id`` chooses the id (a seeding helper's; ValueError if it is taken),
        otherwise the next free ``ct_N`` is used.
        """
        segments = [self.segment(org, sid) for sid in segment_ids]
        stamp = stamp or self.now()
        number = self._next_number("ct")
        if contact_id is None:
            while f"ct_{number}" in org.contacts:
                number = self._next_number("ct")
            contact_id = f"ct_{number}"
        elif not isinstance(contact_id, str) or not contact_id:
            raise ValueError(f"a contact id must be a non-empty string, got {contact_id!r}")
        elif contact_id in org.contacts:
            raise ValueError(f"contact {contact_id!r} already exists in {org.org_id!r}")
        ct = ContactRecord(
            id=contact_id,
            seq=number,
            name=name,
            channels=[channel],
            created_at=stamp,
            updated_at=stamp,
            blocked=blocked,
            unsubscribed=unsubscribed,
            is_admin=is_admin,
            ai_replies_disabled=ai_replies_disabled,
            blocked_at=stamp if blocked else None,
            unsubscribed_at=stamp if unsubscribed else None,
        )
        org.insert(ct)
        for seg in segments:
            ct.segment_ids[seg.id] = None
            seg.members[ct.id] = None
        return ct

    def bulk_contacts(self, org: OrgState, n: int, segment_ids: Sequence[str]) -> list[str]:
        """Create ``n`` simple contacts fast (one custom channel each, one shared timestamp)."""
        segments = [self.segment(org, sid) for sid in segment_ids]
        gc_was_enabled = gc.isenabled()
        gc.disable()  # the many small records would trigger useless collections (2x slower)
        try:
            records = self._make_contacts(n, [seg.id for seg in segments], org.contacts)
        finally:
            if gc_was_enabled:
                gc.enable()
        org.insert_many(records)
        ids = [c.id for c in records]
        for seg in segments:
            seg.members.update(dict.fromkeys(ids))
        return ids

    def _make_contacts(
        self, n: int, segment_ids: list[str], org_contacts: Mapping[str, ContactRecord]
    ) -> list[ContactRecord]:
        stamp = self.now()
        records: list[ContactRecord] = []
        seg_keys = dict.fromkeys(segment_ids)
        while len(records) < n:
            number = self._next_number("ct")
            if f"ct_{number}" in org_contacts:
                continue  # a seeded contact chose this id
            channel = channel_json(
                id=self.next_id("ch"),
                type="custom",
                user_id=f"user_{number}",
                stamp=stamp,
                name=f"Contact {number}",
                email=f"contact{number}@example.com",
            )
            records.append(
                ContactRecord(
                    id=f"ct_{number}",
                    seq=number,
                    name=f"Contact {number}",
                    channels=[channel],
                    created_at=stamp,
                    updated_at=stamp,
                    segment_ids=dict(seg_keys),
                )
            )
        return records

    def attach_channel(
        self, org: OrgState, ct: ContactRecord, channel: JSONDict, segment_ids: Sequence[str]
    ) -> ContactRecord:
        """Add a channel (and segments) to an existing contact (create with ``contact_id``)."""
        segments = [self.segment(org, sid) for sid in segment_ids]
        ct.channels.append(channel)
        for seg in segments:
            ct.segment_ids[seg.id] = None
            seg.members[ct.id] = None
        ct.updated_at = channel["created_at"]
        org.changed()
        return ct

    def update_contact(self, org: OrgState, ct: ContactRecord, changes: Mapping[str, Any]) -> None:
        """Apply a validated ContactUpdate body; keeps blocked_at/unsubscribed_at in step."""
        stamp = self.now()
        if "name" in changes:
            ct.name = changes["name"]
        if "blocked" in changes and changes["blocked"] != ct.blocked:
            ct.blocked = changes["blocked"]
            ct.blocked_at = stamp if ct.blocked else None
        if "unsubscribed" in changes and changes["unsubscribed"] != ct.unsubscribed:
            ct.unsubscribed = changes["unsubscribed"]
            ct.unsubscribed_at = stamp if ct.unsubscribed else None
            if not ct.unsubscribed:
                ct.unsubscribe_reason = None
                ct.unsubscribe_feedback = None
        ct.updated_at = stamp
        org.changed()

    @staticmethod
    def delete_contact(org: OrgState, ct: ContactRecord) -> None:
        """Remove a contact and its memberships."""
        for sid in ct.segment_ids:
            org.segments[sid].members.pop(ct.id, None)
        del org.contacts[ct.id]
        org.changed(removed=True)

    def set_membership(
        self, org: OrgState, ct: ContactRecord, seg: SegmentRecord, *, member: bool
    ) -> None:
        """Put a contact into a segment or take it out (a no-op when it already is so)."""
        if (seg.id in ct.segment_ids) == member:
            return
        if member:
            ct.segment_ids[seg.id] = None
            seg.members[ct.id] = None
        else:
            del ct.segment_ids[seg.id]
            seg.members.pop(ct.id, None)
        ct.updated_at = self.now()
        org.changed()

    def merge(
        self, org: OrgState, primary: ContactRecord, source_ids: Sequence[str] | None
    ) -> list[str]:
        """Fold sources (or every contact sharing an email/phone) into ``primary``."""
        if source_ids is None:
            emails = {ch["email"].casefold() for ch in primary.channels if ch["email"]}
            phones = {ch["phone"] for ch in primary.channels if ch["phone"]}
            sources = [
                org.contacts[cid]
                for cid in org.ordered_ids()
                if cid != primary.id
                and any(
                    (ch["email"] and ch["email"].casefold() in emails)
                    or (ch["phone"] and ch["phone"] in phones)
                    for ch in org.contacts[cid].channels
                )
            ]
        else:
            unique = list(dict.fromkeys(source_ids))
            if primary.id in unique:
                raise ApiError(400, "A contact cannot be merged into itself")
            sources = [self.contact(org, cid) for cid in unique]
        if not sources:
            return []
        for src in sources:
            primary.channels.extend(src.channels)
            if primary.name is None:
                primary.name = src.name
            for note in src.notes:
                note["contact_id"] = primary.id
            primary.notes.extend(src.notes)
            for sid in src.segment_ids:
                seg = org.segments[sid]
                seg.members.pop(src.id, None)
                seg.members[primary.id] = None
                primary.segment_ids[sid] = None
            del org.contacts[src.id]
        primary.updated_at = self.now()
        org.changed(removed=True)
        return [src.id for src in sources]

    def update_channel(
        self, org: OrgState, ct: ContactRecord, ch: JSONDict, changes: Mapping[str, Any]
    ) -> None:
        """Apply a validated ChannelUpdate body to a custom channel."""
        ch.update(changes)
        stamp = self.now()
        ch["updated_at"] = stamp
        ct.updated_at = stamp
        org.changed()

    # ------------------------------------------------------------------ segments

    def create_segment(
        self,
        org: OrgState,
        name: str,
        color: str,
        boards: Sequence[m.Board] = (),
        segment_id: str | None = None,
    ) -> SegmentRecord:
        """Create an empty segment (``segment_id``: a chosen id, ValueError if it is taken)."""
        stamp = self.now()
        if segment_id is None:
            segment_id = self.next_id("sg")
            while segment_id in org.segments:
                segment_id = self.next_id("sg")
        elif not isinstance(segment_id, str) or not segment_id:
            raise ValueError(f"a segment id must be a non-empty string, got {segment_id!r}")
        elif segment_id in org.segments:
            raise ValueError(f"segment {segment_id!r} already exists in {org.org_id!r}")
        seg = SegmentRecord(
            id=segment_id,
            name=name,
            color=color,
            created_at=stamp,
            updated_at=stamp,
            boards=[value_json(board) for board in boards],
        )
        org.segments[seg.id] = seg
        org.changed()
        return seg

    def update_segment(self, org: OrgState, seg: SegmentRecord, changes: Mapping[str, Any]) -> None:
        """Apply a validated SegmentUpdate body."""
        if "name" in changes:
            seg.name = changes["name"]
        if "color" in changes:
            seg.color = changes["color"]
        seg.updated_at = self.now()
        org.changed()

    @staticmethod
    def delete_segment(org: OrgState, seg: SegmentRecord) -> None:
        """Remove a segment from the org and from every member contact."""
        for cid in seg.members:
            org.contacts[cid].segment_ids.pop(seg.id, None)
        seg.members.clear()
        del org.segments[seg.id]
        org.changed()

    # ------------------------------------------------------------------ fields and notes

    def add_field(
        self,
        org: OrgState,
        key: str,
        type: str,
        schema: Mapping[str, Any] | None,
        *,
        readonly: bool,
        kind: str,
    ) -> JSONDict:
        """Define a contact field."""
        body = {"type": type, "name": key} if schema is None else schema
        fld = field_json(
            id=self.next_id("fld"), key=key, type=type, schema=body, readonly=readonly, kind=kind
        )
        org.fields[fld["id"]] = fld
        return fld

    def add_note(
        self,
        ct: ContactRecord,
        content: str | None,
        *,
        attachments: Sequence[m.NoteAttachment] = (),
        user: m.NoteAuthor | None = None,
    ) -> JSONDict:
        """Add a note to a contact."""
        note = note_json(
            id=self.next_id("nt"),
            contact_id=ct.id,
            content=content,
            stamp=self.now(),
            attachments=[value_json(a) for a in attachments],
            user=None if user is None else value_json(user),
        )
        ct.notes.append(note)
        return note
