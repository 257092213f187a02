"""``FakeInvent``: the public face of the fake (server lifecycle, seeding, faults, inspection).

State lives in ``_store`` (records and their wire form in ``_records``), the API in
``_routes``, HTTP handling in ``_app``, fault and traffic bookkeeping in ``_faults``; this
module wires them to an aiohttp.web server bound to 127.0.0.1. The readers return the SDK's
models as a client would read them: the record's wire form through JSON and the converter.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, Generic, Self, TypeVar, cast, overload

from aiohttp import web

from .. import _converter
from .. import _models as m
from . import _store as st
from ._app import FakeHandler, RecordedRequest
from ._faults import FakeStats, RequestMatcher
from ._records import (
    BroadcastRecord,
    ContactRecord,
    JSONDict,
    SegmentRecord,
    channel_json,
    memory_json,
)
from ._validation import BROADCAST_STATUSES

__all__ = ["FakeInvent"]

T = TypeVar("T")
S = TypeVar("S")

HOST: Final = "127.0.0.1"
_SHUTDOWN_TIMEOUT: Final = 0.25  # seconds in-flight (delayed) handlers get at stop()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _read(data: JSONDict, cl: type[T]) -> T:
    """The SDK model of a wire dict, read as a client would: through JSON and the converter."""
    return _converter.structure(_converter.loads(_converter.dumps(data)), cl)


def _retry_after_value(value: float | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"retry_after must be a non-negative number or a string, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return str(int(value))


def _seeded(records: Mapping[str, T], key: str, what: str, org: st.OrgState) -> T:
    """``records[key]``, or a KeyError naming what is missing where (for the test's author)."""
    found = records.get(key)
    if found is None:
        raise KeyError(f"no {what} {key!r} in organisation {org.org_id!r}")
    return found


def _check_latency(value: float) -> float:
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"latency must be a finite number >= 0, got {value!r}")
    return value


class _HandlerSetting(Generic[S]):
    """A setting of :class:`FakeInvent` kept on its request handler, read and set through it."""

    def __init__(self, doc: str, *, check: Callable[[S], S] | None = None) -> None:
        self.__doc__ = doc
        self._check = check
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, fake: None, owner: type) -> Self: ...

    @overload
    def __get__(self, fake: FakeInvent, owner: type) -> S: ...

    def __get__(self, fake: FakeInvent | None, owner: type) -> Self | S:
        if fake is None:
            return self
        return cast("S", getattr(fake._handler, self._name))

    def __set__(self, fake: FakeInvent, value: S) -> None:
        setattr(fake._handler, self._name, value if self._check is None else self._check(value))


class FakeInvent:
    """An in-memory Invent API (contacts, segments and broadcasts) served over loopback HTTP.

    Use it as an async context manager (or call :meth:`start` and :meth:`stop`):

    .. code-block:: python

        from invent_async import AsyncInventClient
        from invent_async.testing import FakeInvent

        async with FakeInvent(api_key="test-key") as fake:
            segment = fake.add_segment("VIP")
            contact = fake.add_contact(name="Jane", email="jane@example.com")
            async with AsyncInventClient("test-key", base_url=fake.url) as client:
                await client.contacts.add_segment(contact.id, segment.id)
            assert fake.segment_members(segment.id) == [contact.id]

    The fake follows ``invent-openapi.yaml`` strictly: it demands ``Authorization: Bearer
    <api_key>``, rejects unknown query parameters and body fields, and routes on the raw path
    so a percent-encoded id (``a%2Fb``) is always one id. Orgs: ``c`` is known from the start;
    add sub-organisations (each with its own store) with :meth:`add_org`.

    Seeding helpers (``add_*``) and state readers (``contact``, ``segment``, ...) are
    synchronous, work before and while serving, and may be called from another thread than
    the server's loop (they share a lock with request handling). Readers return the SDK's
    frozen ``_models`` objects, never live state.

    Args:
        api_key: the only bearer token accepted.
        rate_limit_per_minute: enable the rate limiter (None: unlimited). See
            :attr:`rate_limit_per_minute`.
        rate_limit_window: length in seconds of the limiter's sliding window (default 60);
            the limiter accepts ``rate_limit_per_minute * rate_limit_window / 60`` requests
            (rounded down, at least 1) in any window of that length. Shorten it in tests.
        retry_after_precision: decimals in the limiter's ``Retry-After`` (0: whole seconds,
            rounded up, at least 1; 2: for example ``0.37``).
        latency: seconds every response is delayed by.
        clock: returns the current time for ``created_at``/``updated_at`` (default: UTC now).
        record: keep every request in :attr:`requests` (turn off for benchmarks).
        port: the TCP port (0: a free one; read it back from :attr:`url`).
        seed_fields: give every organisation two default contact fields (``contract``, a file
            field, and ``company``, a string field).
    """

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        rate_limit_per_minute: float | None = None,
        rate_limit_window: float = 60.0,
        retry_after_precision: int = 0,
        latency: float = 0.0,
        clock: Callable[[], datetime] = _utc_now,
        record: bool = True,
        port: int = 0,
        seed_fields: bool = True,
    ) -> None:
        self._store = st.Store(clock, seed_fields=seed_fields)
        self._handler = FakeHandler(
            self._store,
            api_key=api_key,
            latency=latency,
            record=record,
            rate_limit_per_minute=rate_limit_per_minute,
            rate_limit_window=rate_limit_window,
            retry_after_precision=retry_after_precision,
        )
        self._rate_limit_per_minute = rate_limit_per_minute
        self._rate_limit_window = rate_limit_window
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start serving on 127.0.0.1 (raises RuntimeError if already started)."""
        if self._runner is not None:
            raise RuntimeError("FakeInvent is already running")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handler.handle)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving and close every connection (a no-op when not running)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            await asyncio.sleep(0)

    async def __aenter__(self) -> FakeInvent:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    @property
    def port(self) -> int:
        """The TCP port the fake listens on (RuntimeError before :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("FakeInvent is not started: use 'async with' or await start()")
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give a client, ``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    # ------------------------------------------------------------------ settings

    api_key = _HandlerSetting[str](
        "The accepted bearer token (assign to rotate it; old keys then get 401)."
    )
    latency = _HandlerSetting[float](
        "Seconds every response is delayed by (``asyncio.sleep`` before handling).",
        check=_check_latency,
    )
    record = _HandlerSetting[bool]("Whether requests are appended to :attr:`requests`.")

    @property
    def rate_limit_per_minute(self) -> float | None:
        """The limiter's rate per minute, or None for no limit; assigning resets its history.

        The limiter is a sliding-window log: at most ``rate * window / 60`` requests (rounded
        down, at least 1) are accepted in any :attr:`rate_limit_window` seconds, a burst of
        that size included. Others get 429 with ``Retry-After`` (the time until the oldest
        accepted request leaves the window, rounded up; see ``retry_after_precision``), change
        no state, and are not counted against the window.
        """
        return self._rate_limit_per_minute

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, value: float | None) -> None:
        self._handler.configure_limiter(value, self._rate_limit_window)
        self._rate_limit_per_minute = value

    @property
    def rate_limit_window(self) -> float:
        """The sliding window of the limiter and of ``stats.max_in_window``, in seconds."""
        return self._rate_limit_window

    @rate_limit_window.setter
    def rate_limit_window(self, value: float) -> None:
        self._handler.configure_limiter(self._rate_limit_per_minute, value)
        self._rate_limit_window = value

    retry_after_precision = _HandlerSetting[int](
        "Decimals in the limiter's ``Retry-After`` header (0: whole seconds, at least 1)."
    )

    # ------------------------------------------------------------------ inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (while :attr:`record` is on), oldest first."""
        return self._handler.requests

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._handler.requests.clear()

    @property
    def rate_limited_count(self) -> int:
        """How many requests the rate limiter answered with 429."""
        return self._handler.traffic.rate_limited

    @property
    def stats(self) -> FakeStats:
        """A snapshot of the traffic counters (totals, per-status counts, busiest window)."""
        return self._handler.traffic.snapshot()

    def reset_stats(self) -> None:
        """Zero the traffic counters (not the limiter, not the recorded requests)."""
        self._handler.traffic.reset()

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        retry_after: float | str | None = None,
        body: str | Mapping[str, Any] | None = None,
        content_type: str | None = None,
        match: RequestMatcher = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` instead of handling them.

        The request never reaches the API (no state changes, no rate-limit slot used).

        Args:
            n: how many requests to fail.
            status: the HTTP status to send.
            retry_after: send a ``Retry-After`` header: a number of seconds (``2``, ``0.5``)
                or a string sent verbatim (an HTTP-date, or garbage to test a client).
            body: None for a JSON ``{"message": ...}``; a mapping for that JSON body; a
                ``str`` for a text body (``text/html`` if it starts with ``<``, else
                ``text/plain``), e.g. a proxy's HTML error page.
            content_type: override the content type of a ``str`` body.
            match: which requests count (see :data:`RequestMatcher`; None: all).
        """
        self._handler.faults.add(
            "fail",
            n,
            match,
            status=status,
            retry_after=_retry_after_value(retry_after),
            body=body,
            content_type=content_type,
        )

    def drop_next(self, n: int = 1, *, match: RequestMatcher = None) -> None:
        """Close the connection of the next ``n`` matching requests without answering.

        An aiohttp client sees ``ServerDisconnectedError``; nothing is changed in the store.
        """
        self._handler.faults.add("drop", n, match)

    def delay_next(self, n: int, seconds: float, *, match: RequestMatcher = None) -> None:
        """Delay the next ``n`` matching requests by ``seconds`` more than :attr:`latency`."""
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        self._handler.faults.add("delay", n, match, seconds=seconds)

    def clear_faults(self) -> None:
        """Forget every queued ``fail_next``/``drop_next``/``delay_next``."""
        self._handler.faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many queued fault uses are left."""
        return len(self._handler.faults)

    # ------------------------------------------------------------------ seeding

    def add_org(self, org_id: str) -> None:
        """Make ``org_id`` a known (sub-)organisation with its own empty store."""
        with self._store.lock:
            self._store.add_org(org_id)

    def add_segment(
        self,
        name: str,
        color: m.SegmentColor | str = m.SegmentColor.NEUTRAL,
        *,
        boards: Sequence[m.Board] = (),
        id: str | None = None,
        org: str = st.DEFAULT_ORG,
    ) -> m.Segment:
        """Create a segment (``boards``: the board columns that use it, default none).

        ``id`` chooses its id (``add_segment("VIP", id="sg_vip")``), so an example or a test
        can name it in advance; by default it is the next ``sg_N``. ValueError if it is taken.
        """
        with self._store.lock:
            seg = self._store.create_segment(
                self._org(org), name, str(color), boards, segment_id=id
            )
            return _read(seg.to_json(boards=True), m.Segment)

    def add_contact(
        self,
        *,
        id: str | None = None,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        user_id: str | None = None,
        username: str | None = None,
        channel_type: m.ChannelType | str = m.ChannelType.CUSTOM,
        segment_ids: Sequence[str] = (),
        blocked: bool = False,
        unsubscribed: bool = False,
        is_admin: bool = False,
        ai_replies_disabled: bool = False,
        org: str = st.DEFAULT_ORG,
    ) -> m.Contact:
        """Create a contact with one channel of ``channel_type``.

        The channel's ``user_id`` is ``user_id``, else ``phone``, else ``email``, else a
        generated ``user_N``; its ``name`` is the contact's name. ``id`` chooses the
        contact's id (``add_contact(id="ct_123", name="Ada")``); by default it is the next
        ``ct_N``. Raises KeyError for an unknown org or segment, ValueError for a taken id.
        """
        with self._store.lock:
            org_state = self._org(org)
            for sid in segment_ids:
                self._segment_record(org_state, sid)
            stamp = self._store.now()
            identity = user_id or phone or email or self._store.next_id("user")
            channel = channel_json(
                id=self._store.next_id("ch"),
                type=str(channel_type),
                user_id=identity,
                stamp=stamp,
                name=name,
                email=email,
                phone=phone,
                username=username,
            )
            ct = self._store.create_contact(
                org_state,
                name=name,
                channel=channel,
                segment_ids=list(dict.fromkeys(segment_ids)),
                blocked=blocked,
                unsubscribed=unsubscribed,
                is_admin=is_admin,
                ai_replies_disabled=ai_replies_disabled,
                stamp=stamp,
                contact_id=id,
            )
            return _read(ct.to_json(org_state.segments), m.Contact)

    def add_contacts(
        self, n: int, *, segment_ids: Sequence[str] = (), org: str = st.DEFAULT_ORG
    ) -> list[str]:
        """Create ``n`` contacts fast and return their ids (creation order).

        Contact ``ct_K`` is named ``Contact K`` and has one custom channel with user id
        ``user_K`` and email ``contactK@example.com``. All are put into ``segment_ids``.
        """
        with self._store.lock:
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"n must be a non-negative integer, got {n!r}")
            org_state = self._org(org)
            for sid in segment_ids:
                self._segment_record(org_state, sid)
            return self._store.bulk_contacts(org_state, n, list(dict.fromkeys(segment_ids)))

    def add_field(
        self,
        key: str,
        *,
        type: m.ContactFieldType | str = m.ContactFieldType.STRING,
        schema: Mapping[str, Any] | None = None,
        readonly: bool = False,
        kind: str = "custom",
        org: str = st.DEFAULT_ORG,
    ) -> m.ContactField:
        """Define a contact field (``schema`` defaults to ``{"type": type, "name": key}``)."""
        with self._store.lock:
            fld = self._store.add_field(
                self._org(org), key, str(type), schema, readonly=readonly, kind=kind
            )
            return _read(fld, m.ContactField)

    def add_note(
        self,
        contact_id: str,
        content: str | None,
        *,
        attachments: Sequence[m.NoteAttachment] = (),
        user: m.NoteAuthor | None = None,
        org: str = st.DEFAULT_ORG,
    ) -> m.ContactNote:
        """Add a note to a contact (KeyError for an unknown contact)."""
        with self._store.lock:
            ct = self._contact_record(self._org(org), contact_id)
            note = self._store.add_note(ct, content, attachments=attachments, user=user)
            return _read(note, m.ContactNote)

    def add_memory(
        self,
        contact_id: str,
        content: str,
        *,
        type: m.ContactMemoryType | str = m.ContactMemoryType.FACT,
        importance: float = 0.5,
        created_at: date | None = None,
        org: str = st.DEFAULT_ORG,
    ) -> m.ContactMemory:
        """Remember something about a contact (KeyError for an unknown contact).

        Its timestamps are the clock's time, or ``created_at``: a :class:`~datetime.date` is
        sent as the legacy docs page shows it (``2023-12-25``), a datetime as every other.
        """
        with self._store.lock:
            ct = self._contact_record(self._org(org), contact_id)
            if created_at is None:
                stamp = self._store.now()
            elif isinstance(created_at, datetime):
                stamp = _converter.format_datetime(created_at)
            else:
                stamp = created_at.isoformat()
            memory = memory_json(
                id=self._store.next_id("mem"),
                contact_id=ct.id,
                content=content,
                type=str(type),
                importance=importance,
                stamp=stamp,
            )
            ct.memories.append(memory)
            return _read(memory, m.ContactMemory)

    def add_broadcast(
        self,
        name: str,
        *,
        status: m.BroadcastStatus | str = m.BroadcastStatus.DRAFT,
        segment_ids: Sequence[str] = (),
        send_to_all: bool = False,
        transactional: bool = False,
        templates: Sequence[str] = ("whatsapp_bot",),
        org: str = st.DEFAULT_ORG,
    ) -> m.Broadcast:
        """Create a broadcast, with one template per integration of ``templates``.

        ``transactional`` makes it a transactional broadcast: ``send`` then takes a body
        naming one recipient and answers with recipient rows (the fake tells the two
        meanings of ``POST .../send`` apart by this, as the spec presumes the API does);
        otherwise it is a marketing broadcast, sent without a body. KeyError for an unknown
        org or segment, ValueError for an unknown status.
        """
        if str(status) not in BROADCAST_STATUSES:
            raise ValueError(f"unknown broadcast status {status!r}")
        with self._store.lock:
            org_state = self._org(org)
            for sid in segment_ids:
                self._segment_record(org_state, sid)
            stamp = self._store.now()
            record = BroadcastRecord(
                id=self._store.next_id("bc"),
                name=name,
                status=str(status),
                created_at=stamp,
                updated_at=stamp,
                segment_ids=list(dict.fromkeys(segment_ids)),
                send_to_all=send_to_all,
                transactional=transactional,
            )
            for integration in templates:
                record.templates.append(
                    {
                        "id": self._store.next_id("tpl"),
                        "broadcast_id": record.id,
                        "connection_id": self._store.next_id("con"),
                        "integration_id": integration,
                        "recipients_count": 0,
                        "config": {},
                        "error": None,
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
            record.counts["contacts_count"] = len(self._store.targeted(org_state, record))
            org_state.broadcasts[record.id] = record
            return _read(record.to_json(org_state.segments), m.Broadcast)

    def add_to_segment(
        self, segment_id: str, contact_ids: Sequence[str], *, org: str = st.DEFAULT_ORG
    ) -> None:
        """Put existing contacts into a segment, as someone else's change would (no request).

        KeyError for an unknown org, segment or contact; members already are left as they are.
        """
        self._set_members(segment_id, contact_ids, org, member=True)

    def remove_from_segment(
        self, segment_id: str, contact_ids: Sequence[str], *, org: str = st.DEFAULT_ORG
    ) -> None:
        """Take contacts out of a segment, as someone else's change would (no request)."""
        self._set_members(segment_id, contact_ids, org, member=False)

    def delete_contact(self, contact_id: str, *, org: str = st.DEFAULT_ORG) -> None:
        """Delete a contact and its memberships, as someone else's change would (KeyError if
        it does not exist)."""
        with self._store.lock:
            org_state = self._org(org)
            self._store.delete_contact(org_state, self._contact_record(org_state, contact_id))

    def _set_members(
        self, segment_id: str, contact_ids: Sequence[str], org: str, *, member: bool
    ) -> None:
        if isinstance(contact_ids, str):
            raise TypeError("contact_ids must be a sequence of ids, not a single string")
        with self._store.lock:
            org_state = self._org(org)
            segment = self._segment_record(org_state, segment_id)
            contacts = [self._contact_record(org_state, cid) for cid in contact_ids]
            for contact in contacts:
                self._store.set_membership(org_state, contact, segment, member=member)

    # ------------------------------------------------------------------ reading state

    def contact(self, contact_id: str, org: str = st.DEFAULT_ORG) -> m.Contact:
        """The contact as it is now (KeyError if it does not exist)."""
        with self._store.lock:
            org_state = self._org(org)
            record = self._contact_record(org_state, contact_id)
            return _read(record.to_json(org_state.segments), m.Contact)

    def contact_ids(self, org: str = st.DEFAULT_ORG) -> list[str]:
        """Every contact id of ``org``, in creation order."""
        with self._store.lock:
            return list(self._org(org).ordered_ids())

    def segment(self, segment_id: str, org: str = st.DEFAULT_ORG) -> m.Segment:
        """The segment as it is now, with ``boards`` (KeyError if it does not exist)."""
        with self._store.lock:
            record = self._segment_record(self._org(org), segment_id)
            return _read(record.to_json(boards=True), m.Segment)

    def segment_ids(self, org: str = st.DEFAULT_ORG) -> list[str]:
        """Every segment id of ``org``, in creation order."""
        with self._store.lock:
            return list(self._org(org).segments)

    def segment_members(self, segment_id: str, org: str = st.DEFAULT_ORG) -> list[str]:
        """Ids of the segment's contacts, in the order they joined (KeyError if unknown)."""
        with self._store.lock:
            return list(self._segment_record(self._org(org), segment_id).members)

    def notes(self, contact_id: str, org: str = st.DEFAULT_ORG) -> list[m.ContactNote]:
        """The contact's notes, oldest first (KeyError if the contact does not exist)."""
        with self._store.lock:
            ct = self._contact_record(self._org(org), contact_id)
            return [_read(note, m.ContactNote) for note in ct.notes]

    def chat(self, chat_id: str, org: str = st.DEFAULT_ORG) -> m.Chat:
        """A chat as it was created (KeyError if it does not exist)."""
        with self._store.lock:
            return _read(
                _seeded(self._org(org).chats, chat_id, "chat", self._org(org)).chat, m.Chat
            )

    def chat_ids(self, contact_id: str, org: str = st.DEFAULT_ORG) -> list[str]:
        """The ids of a contact's chats, oldest first."""
        with self._store.lock:
            chats = self._org(org).chats.values()
            return [chat.id for chat in chats if chat.contact_id == contact_id]

    def chat_messages(self, chat_id: str, org: str = st.DEFAULT_ORG) -> list[m.ChatMessage]:
        """A chat's messages, oldest first (KeyError if the chat does not exist)."""
        with self._store.lock:
            org_state = self._org(org)
            chat = _seeded(org_state.chats, chat_id, "chat", org_state)
            return [_read(message, m.ChatMessage) for message in chat.messages]

    def broadcast(self, broadcast_id: str, org: str = st.DEFAULT_ORG) -> m.Broadcast:
        """The broadcast as it is now (KeyError if it does not exist)."""
        with self._store.lock:
            org_state = self._org(org)
            record = _seeded(org_state.broadcasts, broadcast_id, "broadcast", org_state)
            return _read(record.to_json(org_state.segments), m.Broadcast)

    def broadcast_recipients(
        self, broadcast_id: str, org: str = st.DEFAULT_ORG
    ) -> list[m.BroadcastRecipient]:
        """The recipient rows of a broadcast's transactional sends, oldest first."""
        with self._store.lock:
            org_state = self._org(org)
            record = _seeded(org_state.broadcasts, broadcast_id, "broadcast", org_state)
            return [_read(row, m.BroadcastRecipient) for row in record.recipients]

    # ------------------------------------------------------------------ private

    def _org(self, org: str) -> st.OrgState:
        state = self._store.orgs.get(org)
        if state is None:
            raise KeyError(f"unknown organisation {org!r}; add it with add_org()")
        return state

    @staticmethod
    def _contact_record(org: st.OrgState, contact_id: str) -> ContactRecord:
        return _seeded(org.contacts, contact_id, "contact", org)

    @staticmethod
    def _segment_record(org: st.OrgState, segment_id: str) -> SegmentRecord:
        return _seeded(org.segments, segment_id, "segment", org)

    def __repr__(self) -> str:
        running = getattr(self, "_port", None) is not None and self.running  # half-built too
        where = self.url if running else "not running"
        return f"<FakeInvent {where}>"
