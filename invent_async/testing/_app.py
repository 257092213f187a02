"""The fake's HTTP layer: routing on the raw path, strict request validation, responses.

:class:`FakeHandler` is the one aiohttp.web handler. For each request it consumes queued
faults, applies the rate limiter, checks the bearer token, matches the route on the *raw*
(percent-encoded) path, one segment per path parameter, validates query and body strictly,
runs the operation on the :class:`~._state.Store` and records the exchange.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, TypeVar
from urllib.parse import unquote

import attrs
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .. import _converter
from . import _state as st
from ._faults import FaultQueue, FaultRule, SlidingWindowLimiter, TrafficCounter, format_retry_after

__all__ = ["FakeHandler", "RecordedRequest"]

_log = logging.getLogger("invent_async.testing")

T = TypeVar("T")
Reply: TypeAlias = tuple[Any, Mapping[str, str]]
QueryKind: TypeAlias = Literal["str", "bool", "page", "take", "status", "token"]
BodyMode: TypeAlias = Literal["none", "required", "optional"]

_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_NO_HEADERS: Final[Mapping[str, str]] = {}
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DIGITS: Final = re.compile(r"[0-9]+")
_MAX_TAKE: Final = 100
_STATUSES: Final = frozenset(
    {"ALL", "SUBSCRIBED", "UNSUBSCRIBED", "BLOCKED", "AI_REPLIES_DISABLED"}
)
# The 17 SegmentColor values of the spec, spelled out here rather than taken from _models.
_COLORS: Final = frozenset(
    {
        *("red", "orange", "amber", "yellow", "lime", "green", "teal", "cyan", "sky"),
        *("blue", "indigo", "violet", "purple", "fuchsia", "pink", "rose", "neutral"),
    }
)


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request the fake received, as it arrived, and the status it was answered with.

    Attributes:
        method: HTTP method, upper case.
        path: the raw, still percent-encoded path, without the query string.
        query: the decoded query parameters as ``(name, value)`` pairs, in order.
        json: the decoded JSON body, or None when there was no body or it was not JSON.
        body: the raw body bytes.
        headers: the request headers without ``Authorization`` (case-insensitive lookup).
        path_params: decoded path parameters (``org_id``, ``contact_id``, ...) of the matched
            route; empty when no route matched or the request never reached routing.
        operation: the operationId of the matched route (``"addSegmentToContact"``), or None.
        status: the status sent back; None when the connection was dropped.
        fault: ``"fail"`` (``fail_next``), ``"drop"`` (``drop_next``), ``"rate_limit"``
            (the limiter's 429) or None for a normal answer.
        time: ``time.monotonic()`` when the request arrived.
        request_id: the ``x-request-id`` header sent back (``req_N``).
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    json: Any = attrs.field(hash=False)
    body: bytes
    headers: CIMultiDictProxy[str] = attrs.field(hash=False)
    path_params: Mapping[str, str] = attrs.field(hash=False)
    operation: str | None
    status: int | None
    fault: str | None
    time: float
    request_id: str

    @property
    def params(self) -> dict[str, str]:
        """The query parameters as a dict (the last value wins for repeated names)."""
        return dict(self.query)


@attrs.frozen(eq=False)
class _Route:
    method: str
    parts: tuple[str, ...]
    operation: str
    query: Mapping[str, QueryKind]
    body: BodyMode

    def match(self, decoded: Sequence[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for pattern, value in zip(self.parts, decoded, strict=True):
            if pattern[0] == "{":
                if not value:
                    return None
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params


_PAGINATION: Final[Mapping[str, QueryKind]] = {"page": "page", "take": "take", "next": "token"}
_CONTACT_FILTERS: Final[Mapping[str, QueryKind]] = {
    "search": "str",
    "unsubscribed": "bool",
    "user_id": "str",
    "name": "str",
    "username": "str",
    "email": "str",
    "segment_id": "str",
    "exclude_admins": "bool",
    "exclude_board_id": "str",
    "status": "status",
    "is_admin": "bool",
    **_PAGINATION,
}
_SEGMENT_FILTERS: Final[Mapping[str, QueryKind]] = {
    "search": "str",
    "exclude_board_columns": "bool",
    **_PAGINATION,
}

_NEW_CHANNEL_KEYS: Final = ("user_id", "name", "email", "phone", "contact_id")
_CONTACT: Final = "/orgs/{org_id}/contacts/{contact_id}"
_ROUTE_TABLE: Final[Sequence[tuple[str, str, str, Mapping[str, QueryKind], BodyMode]]] = (
    # Literal ``fields`` comes before ``{contact_id}``.
    ("GET", "/orgs/{org_id}/contacts/fields", "listContactFields", _PAGINATION, "none"),
    ("GET", "/orgs/{org_id}/contacts", "listContacts", _CONTACT_FILTERS, "none"),
    ("POST", "/orgs/{org_id}/contacts", "createContact", {}, "required"),
    ("GET", _CONTACT, "getContact", {}, "none"),
    ("PATCH", _CONTACT, "updateContact", {}, "required"),
    ("DELETE", _CONTACT, "deleteContact", {}, "none"),
    ("GET", _CONTACT + "/segments", "listContactSegments", _PAGINATION, "none"),
    ("POST", _CONTACT + "/segments/{segment_id}", "addSegmentToContact", {}, "none"),
    ("DELETE", _CONTACT + "/segments/{segment_id}", "removeSegmentFromContact", {}, "none"),
    ("POST", _CONTACT + "/merge", "mergeContacts", {}, "optional"),
    ("GET", _CONTACT + "/notes", "listContactNotes", _PAGINATION, "none"),
    ("PATCH", _CONTACT + "/channels/{channel_id}", "updateContactChannel", {}, "required"),
    ("GET", "/orgs/{org_id}/segments", "listSegments", _SEGMENT_FILTERS, "none"),
    ("POST", "/orgs/{org_id}/segments", "createSegment", {}, "required"),
    ("GET", "/orgs/{org_id}/segments/{segment_id}", "getSegment", {}, "none"),
    ("PATCH", "/orgs/{org_id}/segments/{segment_id}", "updateSegment", {}, "required"),
    ("DELETE", "/orgs/{org_id}/segments/{segment_id}", "deleteSegment", {}, "none"),
)


def _build_routes() -> dict[int, list[_Route]]:
    by_length: dict[int, list[_Route]] = {}
    for method, template, operation, query, body in _ROUTE_TABLE:
        parts = tuple(template[1:].split("/"))
        by_length.setdefault(len(parts), []).append(_Route(method, parts, operation, query, body))
    return by_length


_ROUTES: Final = _build_routes()


@attrs.define(slots=True, kw_only=True)
class _Exchange:
    """One request on its way through the handler, and what became of it."""

    request: web.Request
    raw_path: str
    body: bytes
    parsed: tuple[bool, Any]
    arrived: float
    request_id: str
    status: int | None = None
    fault: str | None = None
    operation: str | None = None
    path_params: dict[str, str] = attrs.Factory(dict)

    def recorded(self) -> RecordedRequest:
        """The exchange as a :class:`RecordedRequest` (Authorization left out)."""
        request = self.request
        headers = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() != "authorization"
        )
        return RecordedRequest(
            method=request.method,
            path=self.raw_path,
            query=tuple(request.query.items()),
            json=self.parsed[1],
            body=self.body,
            headers=CIMultiDictProxy(headers),
            path_params=self.path_params,
            operation=self.operation,
            status=self.status,
            fault=self.fault,
            time=self.arrived,
            request_id=self.request_id,
        )


@attrs.define(slots=True)
class _Call:
    """What an operation handler gets: the org, decoded path params, query and body."""

    org: st.OrgState
    params: dict[str, str]
    query: dict[str, Any]
    body: Any


# --------------------------------------------------------------------------- validation


class _BodyChecker:
    """Collects every problem of a JSON object body, each with its ``$.path``."""

    def __init__(self, body: Any, allowed: Iterable[str], where: str = "$") -> None:
        self.errors: list[str] = []
        self.values: dict[str, Any] = {}
        self._body: dict[str, Any] = body if isinstance(body, dict) else {}
        self._where = where
        if not isinstance(body, dict):
            self.errors.append(f"{where}: expected a JSON object, got {_kind(body)}")
            return
        allowed = set(allowed)
        for key in body:
            if key not in allowed:
                self.errors.append(f"{where}.{key}: unknown field")

    def string(
        self,
        key: str,
        *,
        nullable: bool = False,
        required: bool = False,
        min_length: int = 0,
        max_length: int | None = None,
        choices: frozenset[str] | None = None,
    ) -> None:
        where = f"{self._where}.{key}"
        if key not in self._body:
            if required:
                self.errors.append(f"{where}: required")
            return
        value = self._body[key]
        if value is None and nullable:
            self.values[key] = None
            return
        if not isinstance(value, str):
            expected = "a string or null" if nullable else "a string"
            self.errors.append(f"{where}: expected {expected}, got {_kind(value)}")
        elif len(value) < min_length:
            self.errors.append(f"{where}: must be at least {min_length} characters long")
        elif max_length is not None and len(value) > max_length:
            self.errors.append(f"{where}: must be at most {max_length} characters long")
        elif choices is not None and value not in choices:
            self.errors.append(f"{where}: must be one of {', '.join(sorted(choices))}")
        else:
            self.values[key] = value

    def boolean(self, key: str) -> None:
        where = f"{self._where}.{key}"
        if key not in self._body:
            return
        value = self._body[key]
        if isinstance(value, bool):
            self.values[key] = value
        else:
            self.errors.append(f"{where}: expected a boolean, got {_kind(value)}")

    def string_list(self, key: str, *, min_items: int = 0, max_items: int | None = None) -> None:
        where = f"{self._where}.{key}"
        if key not in self._body:
            return
        value = self._body[key]
        if not isinstance(value, list):
            self.errors.append(f"{where}: expected an array of strings, got {_kind(value)}")
            return
        bad = [i for i, item in enumerate(value) if not isinstance(item, str)]
        for i in bad:
            self.errors.append(f"{where}[{i}]: expected a string, got {_kind(value[i])}")
        if len(value) < min_items:
            self.errors.append(f"{where}: must have at least {min_items} items")
        elif max_items is not None and len(value) > max_items:
            self.errors.append(f"{where}: must have at most {max_items} items")
        if not bad:
            self.values[key] = value

    def check(self) -> dict[str, Any]:
        """The validated values, or ApiError 400 listing every problem."""
        if self.errors:
            raise st.ApiError(400, "Invalid request body", self.errors)
        return self.values


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover - JSON has no other types


def _parse_query(pairs: Iterable[tuple[str, str]], spec: Mapping[str, QueryKind]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: list[str] = []
    for name, raw in pairs:
        kind = spec.get(name)
        if kind is None:
            errors.append(f"{name}: unknown query parameter")
            continue
        if name in values:
            errors.append(f"{name}: given more than once")
            continue
        if kind == "str" or kind == "token":
            values[name] = raw
        elif kind == "bool":
            if raw not in ("true", "false"):
                errors.append(f"{name}: expected true or false, got {raw!r}")
            values[name] = raw == "true"
        elif kind == "status":
            if raw not in _STATUSES:
                errors.append(f"{name}: must be one of {', '.join(sorted(_STATUSES))}")
            values[name] = raw
        else:  # page, take
            number = int(raw) if _DIGITS.fullmatch(raw) else None
            if number is None:
                errors.append(f"{name}: expected an integer, got {raw!r}")
            elif kind == "page" and number < 1:
                errors.append(f"{name}: must be >= 1")
            elif kind == "take" and not 1 <= number <= _MAX_TAKE:
                errors.append(f"{name}: must be between 1 and {_MAX_TAKE}")
            values[name] = number
    if errors:
        raise st.ApiError(400, "Invalid query parameters", errors)
    return values


def _paginate(items: Sequence[T], query: Mapping[str, Any], to_json: Callable[[T], Any]) -> Reply:
    page: int = query.get("page", 1)
    take: int = query.get("take", _MAX_TAKE)
    start = (page - 1) * take
    body = [to_json(item) for item in items[start : start + take]]
    headers = {
        "pagination-count": str(len(items)),
        "pagination-page": str(page),
        "pagination-take": str(take),
    }
    return body, headers


# --------------------------------------------------------------------------- handler


class FakeHandler:
    """The request handler and everything it consults (store, faults, limiter, recording)."""

    def __init__(
        self,
        store: st.Store,
        *,
        api_key: str,
        latency: float,
        record: bool,
        rate_limit_per_minute: float | None,
        rate_limit_window: float,
        retry_after_precision: int,
    ) -> None:
        self.store = store
        self.api_key = api_key
        self.latency = latency
        self.record = record
        self.retry_after_precision = retry_after_precision
        self.requests: list[RecordedRequest] = []
        self.faults = FaultQueue()
        self.traffic = TrafficCounter(rate_limit_window)
        self.limiter: SlidingWindowLimiter | None = None
        self.configure_limiter(rate_limit_per_minute, rate_limit_window)
        self._request_number = 0
        self._operations: dict[str, Callable[[_Call], Reply]] = {
            "listContactFields": self._list_fields,
            "listContacts": self._list_contacts,
            "createContact": self._create_contact,
            "getContact": self._get_contact,
            "updateContact": self._update_contact,
            "deleteContact": self._delete_contact,
            "listContactSegments": self._list_contact_segments,
            "addSegmentToContact": self._add_segment,
            "removeSegmentFromContact": self._remove_segment,
            "mergeContacts": self._merge,
            "listContactNotes": self._list_notes,
            "updateContactChannel": self._update_channel,
            "listSegments": self._list_segments,
            "createSegment": self._create_segment,
            "getSegment": self._get_segment,
            "updateSegment": self._update_segment,
            "deleteSegment": self._delete_segment,
        }

    def configure_limiter(self, rate_per_minute: float | None, window: float) -> None:
        """Replace the rate limiter (None: no limit); its history starts empty."""
        if window <= 0:
            raise ValueError(f"rate_limit_window must be positive, got {window!r}")
        self.limiter = (
            None if rate_per_minute is None else SlidingWindowLimiter(rate_per_minute, window)
        )
        self.traffic.window = window

    # ------------------------------------------------------------------ the aiohttp handler

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request (the catch-all route of the aiohttp application)."""
        arrived = time.monotonic()
        self.traffic.arrival(arrived)
        self._request_number += 1
        body = await request.read() if request.body_exists else b""
        exchange = _Exchange(
            request=request,
            raw_path=request.rel_url.raw_path,
            body=body,
            parsed=_decode_json(body),
            arrived=arrived,
            request_id=f"req_{self._request_number}",
        )
        response = await self._respond(exchange)
        self.traffic.response(exchange.status)
        if self.record:
            self.requests.append(exchange.recorded())
        if response is None:  # drop: close the connection without answering
            transport = request.transport
            if transport is not None:
                transport.close()
            return web.Response(status=503)  # never sent: the transport is closed
        response.headers["x-request-id"] = exchange.request_id
        return response

    async def _respond(self, exchange: _Exchange) -> web.Response | None:
        """Faults first, then the limiter, then the API; None means drop the connection."""
        method, raw_path = exchange.request.method, exchange.raw_path
        delay, fault = self.faults.take(method, raw_path)
        delay += self.latency
        if delay > 0:
            await asyncio.sleep(delay)
        wait: float | None = None
        if fault is None and self.limiter is not None:
            wait = self.limiter.acquire(time.monotonic())
        if fault is not None:
            exchange.fault = fault.kind
            if fault.kind == "drop":
                return None
            self.traffic.injected += 1
            response = self._fault_response(fault)
        elif wait is not None:
            exchange.fault = "rate_limit"
            self.traffic.rate_limited += 1
            retry_after = format_retry_after(wait, self.retry_after_precision)
            response = _json_response(
                429, {"message": "Too many requests"}, {"Retry-After": retry_after}
            )
        else:
            response = self._answer(exchange)
        exchange.status = response.status
        return response

    def _fault_response(self, fault: FaultRule) -> web.Response:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        body = fault.body
        if body is None:
            return _json_response(
                fault.status, {"message": f"Injected failure ({fault.status})"}, headers
            )
        if isinstance(body, str):
            content_type = fault.content_type or (
                "text/html" if body.lstrip().startswith("<") else "text/plain"
            )
            headers["Content-Type"] = f"{content_type}; charset=utf-8"
            return web.Response(status=fault.status, body=body.encode(), headers=headers)
        return _json_response(fault.status, dict(body), headers)

    def _answer(self, exchange: _Exchange) -> web.Response:
        request, method, raw_path = exchange.request, exchange.request.method, exchange.raw_path
        try:
            self._authenticate(request)
            route, exchange.path_params = _resolve(method, raw_path)
            exchange.operation = route.operation
            query = _parse_query(request.query.items(), route.query)
            body = _body(route.body, request, exchange.body, exchange.parsed)
            with self.store.lock:
                org = self.store.org(exchange.path_params["org_id"])
                call = _Call(org=org, params=exchange.path_params, query=query, body=body)
                payload, headers = self._operations[route.operation](call)
        except st.ApiError as exc:
            error: dict[str, Any] = {"message": exc.message}
            extra = _NO_HEADERS
            if exc.status == 401:
                extra = {"WWW-Authenticate": "Bearer"}
            elif exc.status == 405:
                extra = {"Allow": ", ".join(exc.errors)}
            elif exc.errors:
                error["errors"] = exc.errors
            return _json_response(exc.status, error, extra)
        except Exception as exc:  # a bug in the fake: answer 500 so the test sees it
            _log.exception("FakeInvent failed on %s %s", method, raw_path)
            return _json_response(500, {"message": f"FakeInvent internal error: {exc!r}"})
        return _json_response(200, payload, headers)

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        if header is None:
            raise st.ApiError(401, "Missing API key: send 'Authorization: Bearer <API_KEY>'")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token != self.api_key:
            raise st.ApiError(401, "Invalid API key")

    # ------------------------------------------------------------------ contacts

    def _list_contacts(self, call: _Call) -> Reply:
        q = call.query
        filters = st.ContactFilters(
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
        contacts = org.contacts
        return _paginate(
            org.find_contacts(filters), q, lambda cid: st.contact_json(org, contacts[cid])
        )

    def _create_contact(self, call: _Call) -> Reply:
        body: dict[str, Any] = call.body
        checker = _BodyChecker(body, ("channel", "segment_ids"))
        checker.string_list("segment_ids")
        channel: dict[str, Any] = {}
        if "channel" not in body:
            checker.errors.append("$.channel: required")
        else:
            channel_checker = _BodyChecker(body["channel"], _NEW_CHANNEL_KEYS, "$.channel")
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
            raise st.ApiError(
                400, "Invalid request body", ["$.channel: needs a user_id, an email or a phone"]
            )
        # The channel's integration follows from its identity: an explicit user id makes a
        # custom (API) channel, a phone an SMS (twilio) one, an email alone an email one.
        kind = "custom" if user_id else "twilio" if phone else "email"
        stamp = self.store.now()
        segment_ids = list(dict.fromkeys(values.get("segment_ids", ())))
        org = call.org
        existing = channel.get("contact_id")
        target = None if existing is None else self.store.contact(org, existing)
        for sid in segment_ids:
            self.store.segment(org, sid)
        record = self.store.new_channel(
            type=kind,
            user_id=identity,
            stamp=stamp,
            name=channel.get("name"),
            email=email,
            phone=phone,
        )
        if target is not None:
            contact = self.store.attach_channel(org, target, record, segment_ids)
        else:
            contact = self.store.create_contact(
                org, name=channel.get("name"), channel=record, segment_ids=segment_ids, stamp=stamp
            )
        return st.contact_json(org, contact), _NO_HEADERS

    def _get_contact(self, call: _Call) -> Reply:
        contact = self.store.contact(call.org, call.params["contact_id"])
        return st.contact_json(call.org, contact), _NO_HEADERS

    def _update_contact(self, call: _Call) -> Reply:
        checker = _BodyChecker(call.body, ("name", "blocked", "unsubscribed"))
        checker.string("name", nullable=True, max_length=512)
        checker.boolean("blocked")
        checker.boolean("unsubscribed")
        changes = checker.check()
        contact = self.store.contact(call.org, call.params["contact_id"])
        self.store.update_contact(call.org, contact, changes)
        return st.contact_json(call.org, contact), _NO_HEADERS

    def _delete_contact(self, call: _Call) -> Reply:
        contact = self.store.contact(call.org, call.params["contact_id"])
        payload = st.contact_json(call.org, contact)
        self.store.delete_contact(call.org, contact)
        return payload, _NO_HEADERS

    def _list_contact_segments(self, call: _Call) -> Reply:
        org = call.org
        contact = self.store.contact(org, call.params["contact_id"])
        segments = [org.segments[sid] for sid in contact.segment_ids]
        return _paginate(segments, call.query, lambda s: st.segment_json(s, boards=False))

    def _add_segment(self, call: _Call) -> Reply:
        org = call.org
        contact = self.store.contact(org, call.params["contact_id"])
        segment = self.store.segment(org, call.params["segment_id"])
        self.store.add_membership(org, contact, segment)
        return st.contact_json(org, contact), _NO_HEADERS

    def _remove_segment(self, call: _Call) -> Reply:
        org = call.org
        contact = self.store.contact(org, call.params["contact_id"])
        segment = self.store.segment(org, call.params["segment_id"])
        self.store.remove_membership(org, contact, segment)
        return st.contact_json(org, contact), _NO_HEADERS

    def _merge(self, call: _Call) -> Reply:
        sources: list[str] | None = None
        if call.body is not None:
            checker = _BodyChecker(call.body, ("source_contact_ids",))
            checker.string_list("source_contact_ids", min_items=1, max_items=50)
            sources = checker.check().get("source_contact_ids")
        org = call.org
        primary = self.store.contact(org, call.params["contact_id"])
        merged = self.store.merge(org, primary, sources)
        return {"merged": st.contact_json(org, primary), "merged_contact_ids": merged}, _NO_HEADERS

    def _list_notes(self, call: _Call) -> Reply:
        contact = self.store.contact(call.org, call.params["contact_id"])
        return _paginate(contact.notes, call.query, st.note_json)

    def _update_channel(self, call: _Call) -> Reply:
        checker = _BodyChecker(call.body, ("avatar", "name", "phone", "username", "email"))
        checker.string("avatar", nullable=True, max_length=2048)
        for key in ("name", "phone", "username", "email"):
            checker.string(key, nullable=True, max_length=256)
        changes = checker.check()
        org = call.org
        contact = self.store.contact(org, call.params["contact_id"])
        channel_id = call.params["channel_id"]
        channel = next((ch for ch in contact.channels if ch.id == channel_id), None)
        if channel is None:
            raise st.ApiError(404, f"Channel {channel_id!r} not found on contact {contact.id!r}")
        if channel.type != "custom":
            raise st.ApiError(
                400,
                f"Only custom channels can be updated; channel {channel_id!r} is {channel.type!r}",
            )
        self.store.update_channel(org, contact, channel, changes)
        return st.channel_json(channel), _NO_HEADERS

    def _list_fields(self, call: _Call) -> Reply:
        return _paginate(list(call.org.fields.values()), call.query, st.field_json)

    # ------------------------------------------------------------------ segments

    def _list_segments(self, call: _Call) -> Reply:
        search = call.query.get("search")
        needle = None if search is None else search.casefold()
        exclude_used = call.query.get("exclude_board_columns", False)
        found = [
            seg
            for seg in call.org.segments.values()
            if (needle is None or needle in seg.name.casefold())
            and not (exclude_used and seg.boards)
        ]
        return _paginate(found, call.query, lambda s: st.segment_json(s, boards=True))

    def _create_segment(self, call: _Call) -> Reply:
        checker = _BodyChecker(call.body, ("name", "color"))
        checker.string("name", required=True, min_length=1, max_length=128)
        checker.string("color", choices=_COLORS)
        values = checker.check()
        segment = self.store.create_segment(
            call.org, values["name"], values.get("color", "neutral")
        )
        return st.segment_json(segment, boards=True), _NO_HEADERS

    def _get_segment(self, call: _Call) -> Reply:
        segment = self.store.segment(call.org, call.params["segment_id"])
        return st.segment_json(segment, boards=True), _NO_HEADERS

    def _update_segment(self, call: _Call) -> Reply:
        checker = _BodyChecker(call.body, ("name", "color"))
        checker.string("name", min_length=1, max_length=128)
        checker.string("color", choices=_COLORS)
        changes = checker.check()
        segment = self.store.segment(call.org, call.params["segment_id"])
        self.store.update_segment(call.org, segment, changes)
        return st.segment_json(segment, boards=True), _NO_HEADERS

    def _delete_segment(self, call: _Call) -> Reply:
        segment = self.store.segment(call.org, call.params["segment_id"])
        payload = st.segment_json(segment, boards=True)
        self.store.delete_segment(call.org, segment)
        return payload, _NO_HEADERS


# --------------------------------------------------------------------------- helpers


def _json_response(
    status: int, payload: Any, headers: Mapping[str, str] = _NO_HEADERS
) -> web.Response:
    all_headers = {**_JSON_HEADERS, **headers} if headers else dict(_JSON_HEADERS)
    return web.Response(status=status, body=_converter.dumps(payload), headers=all_headers)


def _decode_json(body: bytes) -> tuple[bool, Any]:
    """(True, value) when ``body`` is JSON, (False, None) when it is empty or not JSON."""
    if not body:
        return False, None
    try:
        return True, _converter.loads(body)
    except ValueError:
        return False, None


def _resolve(method: str, raw_path: str) -> tuple[_Route, dict[str, str]]:
    """The route and decoded path params for a raw path; ApiError 400/404/405 otherwise."""
    candidates = _ROUTES.get(raw_path.count("/")) if raw_path.startswith("/") else None
    if not candidates:
        raise st.ApiError(404, f"No route for {method} {raw_path}")
    raw_parts = raw_path[1:].split("/")
    decoded: list[str] = []
    for part in raw_parts:
        if "%" not in part:
            decoded.append(part)
            continue
        if _BAD_PERCENT.search(part):
            raise st.ApiError(400, f"Malformed percent-encoding in path segment {part!r}")
        try:
            decoded.append(unquote(part, errors="strict"))
        except UnicodeDecodeError:
            raise st.ApiError(400, f"Path segment {part!r} is not UTF-8") from None
    allowed: list[str] = []
    for route in candidates:
        params = route.match(decoded)
        if params is None:
            continue
        if route.method == method:
            return route, params
        allowed.append(route.method)
    if allowed:
        raise st.ApiError(405, f"Method {method} not allowed on {raw_path}", allowed)
    raise st.ApiError(404, f"No route for {method} {raw_path}")


def _body(mode: BodyMode, request: web.Request, raw: bytes, parsed: tuple[bool, Any]) -> Any:
    """The decoded JSON body the route allows (None when absent); ApiError 400 otherwise."""
    if not raw:
        if mode == "required":
            raise st.ApiError(400, "A JSON request body is required")
        return None
    if mode == "none":
        raise st.ApiError(400, "This endpoint takes no request body")
    if request.content_type != "application/json":
        raise st.ApiError(
            400, f"Content-Type must be application/json, got {request.content_type!r}"
        )
    ok, value = parsed
    if not ok:
        raise st.ApiError(400, "The request body is not valid JSON")
    if not isinstance(value, dict):
        raise st.ApiError(
            400, "Invalid request body", [f"$: expected a JSON object, got {_kind(value)}"]
        )
    return value
