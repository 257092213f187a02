"""Tests of FakeInvent itself, over real loopback HTTP with a plain aiohttp.ClientSession.

The SDK client is deliberately not used here: these tests pin down what the fake promises
(strict validation, the contact/segment invariants, faults, the rate limiter) on their own.
"""

from __future__ import annotations

import asyncio
import json
import random
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import attrs
import pytest
import yarl
from multidict import CIMultiDictProxy

from invent_async import AsyncInventClient, _converter
from invent_async import _models as m
from invent_async.testing import FakeInvent, RecordedRequest
from invent_async.testing._routes import ROUTES, Route, Router
from invent_async.testing._store import ApiError

KEY = "fake-test-key"
ORG = "/orgs/c"


# --------------------------------------------------------------------------- helpers


@attrs.frozen
class FakeReply:
    """What a test sees of one response."""

    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


_NO_BODY: Any = object()


class FakeApi:
    """A thin caller: raw (already encoded) paths, the bearer token added unless told not to."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    def url(
        self, path: str, params: Sequence[tuple[str, str]] | Mapping[str, str] = ()
    ) -> yarl.URL:
        query = f"?{urlencode(params)}" if params else ""
        return yarl.URL(self.base_url + path + query, encoded=True)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | Mapping[str, str] = (),
        json: Any = _NO_BODY,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = KEY,
    ) -> FakeReply:
        all_headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        all_headers.update(headers or {})
        kwargs: dict[str, Any] = {"headers": all_headers}
        if json is not _NO_BODY:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.url(path, params), **kwargs) as resp:
            return FakeReply(resp.status, resp.headers, await resp.text())

    async def get(self, path: str, **kwargs: Any) -> FakeReply:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> FakeReply:
        return await self.call("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> FakeReply:
        return await self.call("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> FakeReply:
        return await self.call("DELETE", path, **kwargs)


class FakeClock:
    """A settable clock for the fake's timestamps."""

    def __init__(self) -> None:
        self.now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeInvent]:
    async with FakeInvent(api_key=KEY, clock=clock) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
    await asyncio.sleep(0)


@pytest.fixture
def api(fake: FakeInvent, session: aiohttp.ClientSession) -> FakeApi:
    return FakeApi(session, fake.url)


def ids(items: Sequence[Mapping[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def contact_path(contact_id: str, *rest: str) -> str:
    return "/".join([f"{ORG}/contacts/{quote(contact_id, safe='')}", *rest])


# --------------------------------------------------------------------------- lifecycle


async def test_url_is_loopback_with_the_real_port(fake: FakeInvent) -> None:
    url = yarl.URL(fake.url)
    assert (url.scheme, url.host) == ("http", "127.0.0.1")
    assert url.port == fake.port
    assert fake.port > 0


async def test_stop_closes_the_listening_socket(session: aiohttp.ClientSession) -> None:
    fake = FakeInvent(api_key=KEY)
    await fake.start()
    url = fake.url
    await fake.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(url + "/orgs/c/contacts"):
            pass


async def test_starting_twice_is_an_error(fake: FakeInvent) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        await fake.start()


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeInvent().url


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
    ],
    ids=["missing", "wrong-key", "wrong-scheme", "no-scheme"],
)
async def test_requests_without_the_right_bearer_token_get_401(
    api: FakeApi, headers: dict[str, str]
) -> None:
    reply = await api.get(f"{ORG}/contacts", token=None, headers=headers)
    assert reply.status == 401
    assert reply.headers["Content-Type"] == "application/json"
    assert isinstance(reply.json["message"], str)


async def test_assigning_api_key_rotates_the_accepted_token(fake: FakeInvent, api: FakeApi) -> None:
    fake.api_key = "new-key"
    assert (await api.get(f"{ORG}/segments")).status == 401
    assert (await api.get(f"{ORG}/segments", token="new-key")).status == 200


# --------------------------------------------------------------------------- routing


async def test_unknown_route_is_a_json_404(api: FakeApi) -> None:
    reply = await api.get(f"{ORG}/assistants")
    assert reply.status == 404
    assert "message" in reply.json


async def test_wrong_method_is_a_json_405_with_allow(api: FakeApi) -> None:
    reply = await api.call("PUT", f"{ORG}/segments")
    assert reply.status == 405
    assert "message" in reply.json
    assert set(reply.headers["Allow"].split(", ")) == {"GET", "POST"}


async def test_unknown_org_is_404(api: FakeApi) -> None:
    reply = await api.get("/orgs/org_nope/contacts")
    assert reply.status == 404


async def test_each_org_has_its_own_store(fake: FakeInvent, api: FakeApi) -> None:
    fake.add_org("org_sub")
    fake.add_contact(email="parent@example.com")
    sub = fake.add_contact(email="child@example.com", org="org_sub")
    in_sub = await api.get("/orgs/org_sub/contacts")
    assert ids(in_sub.json) == [sub.id]
    assert (await api.get(f"/orgs/c/contacts/{sub.id}")).status == 404


@pytest.mark.parametrize(
    "contact_id", ["a/b", "../x", "x?y", "#", "é", "%", "ct_1/segments/sg_1", "fields/x", " "]
)
async def test_a_path_id_is_one_opaque_decoded_segment(
    fake: FakeInvent, api: FakeApi, contact_id: str
) -> None:
    fake.add_contact(email="jane@example.com")  # ct_1 exists, so a split id could hit it
    reply = await api.get(contact_path(contact_id))
    assert reply.status == 404
    assert reply.json["message"] == f"Contact {contact_id!r} not found"
    recorded = fake.requests[-1]
    assert recorded.operation == "getContact"
    assert recorded.path == contact_path(contact_id)
    assert recorded.path_params == {"org_id": "c", "contact_id": contact_id}


async def test_an_encoded_slash_in_a_segment_id_is_not_a_route_separator(
    fake: FakeInvent, api: FakeApi
) -> None:
    contact = fake.add_contact(email="jane@example.com")
    reply = await api.post(contact_path(contact.id, "segments", quote("sg_1/x", safe="")))
    assert reply.status == 404
    assert reply.json["message"] == "Segment 'sg_1/x' not found"


async def test_fields_is_matched_before_a_contact_id(api: FakeApi) -> None:
    reply = await api.get(f"{ORG}/contacts/fields")
    assert reply.status == 200
    assert isinstance(reply.json, list)


def _routing(router: Router, method: str, path: str) -> tuple[object, object]:
    try:
        route, params = router.resolve(method, path)
    except ApiError as exc:
        return exc.status, exc.errors
    return route.operation, params


def _paths_to_try() -> list[str]:
    """Every template, each parameter filled with an id or with a literal of the table."""
    words = sorted({p for r in ROUTES for p in r.parts if p[0] != "{"} | {"x1"})
    paths: set[str] = set()
    for route in ROUTES:
        fills: list[list[str]] = [[]]
        for part in route.parts:
            options = words if part[0] == "{" and part != "{org_id}" else [part]
            fills = [[*f, o if o[0] != "{" else "c"] for f in fills for o in options]
        paths.update("/" + "/".join(f) for f in fills)
    return sorted(paths)


@pytest.mark.parametrize("seed", range(8))
def test_routing_does_not_depend_on_the_order_of_the_table(seed: int) -> None:
    table = list(ROUTES)
    random.Random(seed).shuffle(table)
    if seed == 0:
        table.reverse()
    shuffled, written = Router(table), Router(ROUTES)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    for path in _paths_to_try():
        for method in methods:
            assert _routing(shuffled, method, path) == _routing(written, method, path)
    assert _routing(shuffled, "GET", f"{ORG}/contacts/fields")[0] == "listContactFields"
    assert _routing(shuffled, "GET", f"{ORG}/contacts/x1")[0] == "getContact"


async def test_malformed_percent_encoding_is_400(api: FakeApi) -> None:
    assert (await api.get(f"{ORG}/contacts/ab%zz")).status == 400


async def test_a_body_on_an_endpoint_without_one_is_400(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(email="jane@example.com")
    segment = fake.add_segment("VIP")
    reply = await api.post(contact_path(contact.id, "segments", segment.id), json={})
    assert reply.status == 400
    assert fake.segment_members(segment.id) == []


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.operation)
async def test_every_route_refuses_what_it_does_not_take(
    fake: FakeInvent, api: FakeApi, route: Route
) -> None:
    """Found from the table: an unknown query parameter, an unknown body field, a body where
    there is none: 400 on every route, before anything is looked up or changed."""
    contact = fake.add_contact(user_id="u1")
    ids = {"org_id": "c", "contact_id": contact.id, "segment_id": fake.add_segment("VIP").id}
    ids["channel_id"] = contact.channels[0].id
    ids["chat_id"] = "chat_1"
    ids["broadcast_id"] = fake.add_broadcast("Spring sale").id
    path = "/" + "/".join(ids[p[1:-1]] if p[0] == "{" else p for p in route.parts)
    before = fake.contact(contact.id)

    query = await api.call(route.method, path, params={"x_unknown": "1"})
    body = await api.call(route.method, path, json={"x_unknown": 1})

    assert (query.status, query.json["errors"]) == (400, ["x_unknown: unknown query parameter"])
    assert body.status == 400
    if route.body != "none":
        assert "$.x_unknown: unknown field" in body.json["errors"]
    assert fake.contact(contact.id) == before


async def test_every_response_has_a_request_id(fake: FakeInvent, api: FakeApi) -> None:
    reply = await api.get(f"{ORG}/contacts")
    assert reply.headers["x-request-id"] == fake.requests[-1].request_id


# --------------------------------------------------------------------------- list contacts


async def test_list_contacts_pages_with_pagination_headers(fake: FakeInvent, api: FakeApi) -> None:
    created = fake.add_contacts(5)
    reply = await api.get(f"{ORG}/contacts", params={"page": "2", "take": "2"})
    assert reply.status == 200
    assert ids(reply.json) == created[2:4]
    assert reply.headers["pagination-count"] == "5"
    assert reply.headers["pagination-page"] == "2"
    assert reply.headers["pagination-take"] == "2"


async def test_list_contacts_defaults_to_page_1_of_100(fake: FakeInvent, api: FakeApi) -> None:
    created = fake.add_contacts(150)
    reply = await api.get(f"{ORG}/contacts")
    assert ids(reply.json) == created[:100]
    assert (reply.headers["pagination-page"], reply.headers["pagination-take"]) == ("1", "100")
    assert reply.headers["pagination-count"] == "150"


async def test_a_page_past_the_end_is_empty(fake: FakeInvent, api: FakeApi) -> None:
    fake.add_contacts(3)
    reply = await api.get(f"{ORG}/contacts", params={"page": "9", "take": "2"})
    assert reply.json == []
    assert reply.headers["pagination-count"] == "3"


async def test_list_contacts_is_in_creation_order_after_deletes(
    fake: FakeInvent, api: FakeApi
) -> None:
    created = fake.add_contacts(4)
    assert (await api.delete(contact_path(created[1]))).status == 200
    extra = fake.add_contact(email="late@example.com")
    reply = await api.get(f"{ORG}/contacts")
    assert ids(reply.json) == [created[0], created[2], created[3], extra.id]


@pytest.mark.parametrize(
    "params",
    [
        {"take": "101"},
        {"take": "0"},
        {"take": "ten"},
        {"take": "1.5"},
        {"page": "0"},
        {"page": "-1"},
        {"page": ""},
        {"unsubscribed": "yes"},
        {"unsubscribed": "True"},
        {"exclude_admins": "1"},
        {"status": "ACTIVE"},
        {"status": "subscribed"},
        {"color": "red"},
        [("take", "10"), ("take", "20")],
    ],
    ids=str,
)
async def test_invalid_list_contacts_query_is_400(
    api: FakeApi, params: Mapping[str, str] | Sequence[tuple[str, str]]
) -> None:
    reply = await api.get(f"{ORG}/contacts", params=params)
    assert reply.status == 400
    assert reply.json["errors"]


async def test_unknown_query_parameters_are_400_on_every_endpoint(
    fake: FakeInvent, api: FakeApi
) -> None:
    contact = fake.add_contact(email="jane@example.com")
    reply = await api.get(contact_path(contact.id), params={"expand": "segments"})
    assert reply.status == 400


@pytest.fixture
def population(fake: FakeInvent) -> dict[str, str]:
    """A small cast of contacts covering every list filter; name -> id."""
    vip = fake.add_segment("VIP", "red")
    cast = {
        "jane": fake.add_contact(
            name="Jane Doe",
            email="jane@example.com",
            user_id="u_jane",
            username="janedoe",
            segment_ids=[vip.id],
        ),
        "john": fake.add_contact(name="John Smith", phone="+15550001", blocked=True),
        "admin": fake.add_contact(name="Admin", email="admin@example.com", is_admin=True),
        "janet": fake.add_contact(name="Janet", email="janet@example.com", unsubscribed=True),
        "quiet": fake.add_contact(email="quiet@example.com", ai_replies_disabled=True),
    }
    return {"segment": vip.id, **{key: contact.id for key, contact in cast.items()}}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"search": "JAN"}, ["jane", "janet"]),
        ({"name": "Jane Doe"}, ["jane"]),
        ({"name": "jane doe"}, []),
        ({"email": "JANE@example.com"}, ["jane"]),
        ({"user_id": "u_jane"}, ["jane"]),
        ({"user_id": "+15550001"}, ["john"]),
        ({"username": "janedoe"}, ["jane"]),
        ({"segment_id": "<segment>"}, ["jane"]),
        ({"segment_id": "sg_unknown"}, []),
        ({"exclude_admins": "true"}, ["jane", "john", "janet", "quiet"]),
        ({"exclude_admins": "false"}, ["jane", "john", "admin", "janet", "quiet"]),
        ({"is_admin": "true"}, ["admin"]),
        ({"unsubscribed": "true"}, ["janet"]),
        ({"unsubscribed": "false"}, ["jane", "john", "admin", "quiet"]),
        ({"status": "ALL"}, ["jane", "john", "admin", "janet", "quiet"]),
        ({"status": "SUBSCRIBED"}, ["jane", "admin", "quiet"]),
        ({"status": "UNSUBSCRIBED"}, ["janet"]),
        ({"status": "BLOCKED"}, ["john"]),
        ({"status": "AI_REPLIES_DISABLED"}, ["quiet"]),
        ({"exclude_board_id": "brd_1"}, ["jane", "john", "admin", "janet", "quiet"]),
        ({"next": "opaque-token"}, ["jane", "john", "admin", "janet", "quiet"]),
        ({"search": "jan", "status": "SUBSCRIBED"}, ["jane"]),
    ],
    ids=str,
)
async def test_list_contacts_filters(
    api: FakeApi, population: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    query = {k: population["segment"] if v == "<segment>" else v for k, v in params.items()}
    reply = await api.get(f"{ORG}/contacts", params=query)
    assert reply.status == 200
    assert ids(reply.json) == [population[name] for name in expected]
    assert reply.headers["pagination-count"] == str(len(expected))


# --------------------------------------------------------------------------- create contact


async def test_create_contact_with_a_user_id_makes_a_custom_channel_in_segments(
    fake: FakeInvent, api: FakeApi
) -> None:
    segment = fake.add_segment("VIP", "red")
    body = {
        "channel": {"user_id": "u1", "name": "Jane Doe", "email": "jane@example.com"},
        "segment_ids": [segment.id],
    }
    reply = await api.post(f"{ORG}/contacts", json=body)
    assert reply.status == 200
    contact = reply.json
    assert contact["name"] == "Jane Doe"
    assert [(ch["type"], ch["user_id"], ch["email"]) for ch in contact["channels"]] == [
        ("custom", "u1", "jane@example.com")
    ]
    assert [(s["id"], s["contacts_count"]) for s in contact["segments"]] == [(segment.id, 1)]
    assert fake.segment_members(segment.id) == [contact["id"]]


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ({"user_id": "u1", "phone": "+1555"}, ("custom", "u1")),
        ({"phone": "+1555", "email": "a@example.com"}, ("twilio", "+1555")),
        ({"email": "a@example.com"}, ("email", "a@example.com")),
    ],
)
async def test_create_contact_picks_the_channel_type_from_the_identity(
    api: FakeApi, channel: dict[str, str], expected: tuple[str, str]
) -> None:
    reply = await api.post(f"{ORG}/contacts", json={"channel": channel})
    (created,) = reply.json["channels"]
    assert (created["type"], created["user_id"]) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"channel": {"email": "a@example.com"}, "tags": []},
        {"channel": {"email": "a@example.com", "nickname": "x"}},
        {"channel": {"email": 5}},
        {"channel": {"email": None}},
        {"channel": {"email": "a@example.com"}, "segment_ids": "sg_1"},
        {"channel": {"email": "a@example.com"}, "segment_ids": [1]},
        {"channel": "a@example.com"},
        {"channel": None},
        {"channel": {"name": "No Identity"}},
        {"channel": {"email": ""}},
        {"segment_ids": []},
        {},
        [],
    ],
    ids=str,
)
async def test_invalid_create_contact_body_is_400(
    fake: FakeInvent, api: FakeApi, body: Any
) -> None:
    reply = await api.post(f"{ORG}/contacts", json=body)
    assert reply.status == 400
    assert fake.contact_ids() == []


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(b"", "application/json"), (b"{not json", "application/json"), (b"{}", "text/plain")],
    ids=["empty", "not-json", "wrong-content-type"],
)
async def test_create_contact_needs_a_json_body(
    api: FakeApi, data: bytes, content_type: str
) -> None:
    reply = await api.post(f"{ORG}/contacts", data=data, headers={"Content-Type": content_type})
    assert reply.status == 400


async def test_create_contact_with_an_unknown_segment_is_404_and_creates_nothing(
    fake: FakeInvent, api: FakeApi
) -> None:
    body = {"channel": {"email": "a@example.com"}, "segment_ids": ["sg_missing"]}
    reply = await api.post(f"{ORG}/contacts", json=body)
    assert reply.status == 404
    assert fake.contact_ids() == []


async def test_create_contact_with_contact_id_adds_the_channel_to_that_contact(
    fake: FakeInvent, api: FakeApi
) -> None:
    existing = fake.add_contact(name="Jane", email="jane@example.com")
    body = {"channel": {"phone": "+1555", "contact_id": existing.id}}
    reply = await api.post(f"{ORG}/contacts", json=body)
    assert reply.json["id"] == existing.id
    assert [ch["user_id"] for ch in reply.json["channels"]] == ["jane@example.com", "+1555"]
    assert fake.contact_ids() == [existing.id]


# --------------------------------------------------------------------------- one contact


async def test_get_contact_returns_it(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(name="Jane", email="jane@example.com")
    reply = await api.get(contact_path(contact.id))
    assert reply.status == 200
    assert reply.json["id"] == contact.id


async def test_contact_json_matches_the_sdk_converter(fake: FakeInvent, api: FakeApi) -> None:
    segment = fake.add_segment("VIP", "red")
    contact = fake.add_contact(name="Jane", email="jane@example.com", segment_ids=[segment.id])
    fake.add_contact(phone="+1555", channel_type="whatsapp_bot", blocked=True, unsubscribed=True)
    reply = await api.get(f"{ORG}/contacts")
    assert reply.json == [_converter.unstructure(fake.contact(cid)) for cid in fake.contact_ids()]
    assert _converter.structure(reply.json[0], m.Contact) == fake.contact(contact.id)


async def test_embedded_segments_have_no_boards_key(fake: FakeInvent, api: FakeApi) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com", segment_ids=[segment.id])
    reply = await api.get(contact_path(contact.id))
    assert [sorted(s) for s in reply.json["segments"]] == [
        ["color", "contacts_count", "created_at", "id", "name", "updated_at"]
    ]


async def test_timestamps_come_from_the_clock_as_utc_z(
    fake: FakeInvent, api: FakeApi, clock: FakeClock
) -> None:
    contact = fake.add_contact(email="jane@example.com")
    reply = await api.get(contact_path(contact.id))
    assert reply.json["created_at"] == "2024-01-02T03:04:05Z"
    assert reply.json["channels"][0]["updated_at"] == "2024-01-02T03:04:05Z"


async def test_ids_are_deterministic(fake: FakeInvent, api: FakeApi) -> None:
    first = await api.post(f"{ORG}/contacts", json={"channel": {"email": "a@example.com"}})
    second = await api.post(f"{ORG}/segments", json={"name": "VIP"})
    fake.add_note(first.json["id"], "hello")
    assert first.json["id"] == "ct_1"
    assert first.json["channels"][0]["id"] == "ch_1"
    assert second.json["id"] == "sg_1"
    assert fake.notes("ct_1")[0].id == "nt_1"


async def test_update_contact_blocks_and_stamps_blocked_at(
    fake: FakeInvent, api: FakeApi, clock: FakeClock
) -> None:
    contact = fake.add_contact(email="jane@example.com")
    clock.advance(60)
    reply = await api.patch(contact_path(contact.id), json={"blocked": True})
    assert reply.status == 200
    assert reply.json["blocked"] is True
    assert reply.json["blocked_at"] == "2024-01-02T03:05:05Z"
    assert reply.json["updated_at"] == "2024-01-02T03:05:05Z"
    assert reply.json["created_at"] == "2024-01-02T03:04:05Z"


async def test_update_contact_unblock_clears_blocked_at(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(email="jane@example.com", blocked=True)
    reply = await api.patch(contact_path(contact.id), json={"blocked": False})
    assert (reply.json["blocked"], reply.json["blocked_at"]) == (False, None)


async def test_update_contact_unsubscribes_and_resubscribes(
    fake: FakeInvent, api: FakeApi, clock: FakeClock
) -> None:
    contact = fake.add_contact(email="jane@example.com")
    off = await api.patch(contact_path(contact.id), json={"unsubscribed": True})
    assert (off.json["unsubscribed"], off.json["unsubscribed_at"]) == (True, "2024-01-02T03:04:05Z")
    on = await api.patch(contact_path(contact.id), json={"unsubscribed": False})
    assert (on.json["unsubscribed"], on.json["unsubscribed_at"]) == (False, None)


async def test_update_contact_name_null_clears_the_name(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(name="Jane", email="jane@example.com")
    reply = await api.patch(contact_path(contact.id), json={"name": None})
    assert reply.json["name"] is None
    assert fake.contact(contact.id).name is None


@pytest.mark.parametrize(
    "body",
    [
        {"status": "BLOCKED"},
        {"blocked": "true"},
        {"blocked": None},
        {"unsubscribed": 1},
        {"name": 5},
        {"name": "x" * 513},
        ["name"],
    ],
    ids=str,
)
async def test_invalid_update_contact_body_is_400_and_changes_nothing(
    fake: FakeInvent, api: FakeApi, body: Any
) -> None:
    contact = fake.add_contact(name="Jane", email="jane@example.com")
    reply = await api.patch(contact_path(contact.id), json=body)
    assert reply.status == 400
    assert fake.contact(contact.id) == contact


async def test_update_contact_accepts_a_512_character_name(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(email="jane@example.com")
    reply = await api.patch(contact_path(contact.id), json={"name": "x" * 512})
    assert reply.status == 200


async def test_delete_contact_returns_it_and_updates_segment_counts(
    fake: FakeInvent, api: FakeApi
) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com", segment_ids=[segment.id])
    reply = await api.delete(contact_path(contact.id))
    assert reply.status == 200
    assert reply.json["id"] == contact.id
    assert (await api.get(contact_path(contact.id))).status == 404
    assert fake.segment(segment.id).contacts_count == 0


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_contact_is_404(api: FakeApi, method: str) -> None:
    kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
    reply = await api.call(method, contact_path("ct_404"), **kwargs)
    assert reply.status == 404


# --------------------------------------------------------------------------- memberships


async def test_adding_a_segment_returns_the_contact_in_it(fake: FakeInvent, api: FakeApi) -> None:
    segment = fake.add_segment("VIP", "red")
    contact = fake.add_contact(email="jane@example.com")
    reply = await api.post(contact_path(contact.id, "segments", segment.id))
    assert reply.status == 200
    assert [
        (s["id"], s["name"], s["color"], s["contacts_count"]) for s in reply.json["segments"]
    ] == [(segment.id, "VIP", "red", 1)]


async def test_adding_a_segment_twice_keeps_one_membership(fake: FakeInvent, api: FakeApi) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com")
    await api.post(contact_path(contact.id, "segments", segment.id))
    reply = await api.post(contact_path(contact.id, "segments", segment.id))
    assert reply.status == 200
    assert [s["contacts_count"] for s in reply.json["segments"]] == [1]
    assert fake.segment_members(segment.id) == [contact.id]


async def test_removing_a_segment_takes_the_contact_out(fake: FakeInvent, api: FakeApi) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com", segment_ids=[segment.id])
    reply = await api.delete(contact_path(contact.id, "segments", segment.id))
    assert reply.status == 200
    assert reply.json["segments"] == []
    assert fake.segment(segment.id).contacts_count == 0


async def test_removing_a_segment_the_contact_is_not_in_is_a_no_op(
    fake: FakeInvent, api: FakeApi
) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com")
    reply = await api.delete(contact_path(contact.id, "segments", segment.id))
    assert reply.status == 200
    assert reply.json["segments"] == []
    assert fake.contact(contact.id) == contact


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("missing", ["contact", "segment"])
async def test_membership_with_an_unknown_contact_or_segment_is_404(
    fake: FakeInvent, api: FakeApi, method: str, missing: str
) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com")
    contact_id = "ct_404" if missing == "contact" else contact.id
    segment_id = "sg_404" if missing == "segment" else segment.id
    reply = await api.call(method, contact_path(contact_id, "segments", segment_id))
    assert reply.status == 404
    assert fake.segment_members(segment.id) == []


async def test_list_contact_segments_pages_without_boards(fake: FakeInvent, api: FakeApi) -> None:
    segments = [fake.add_segment(f"S{i}") for i in range(3)]
    contact = fake.add_contact(email="jane@example.com", segment_ids=[s.id for s in segments])
    reply = await api.get(contact_path(contact.id, "segments"), params={"take": "2", "page": "2"})
    assert ids(reply.json) == [segments[2].id]
    assert "boards" not in reply.json[0]
    assert reply.headers["pagination-count"] == "3"


async def test_counts_and_memberships_stay_consistent(fake: FakeInvent, api: FakeApi) -> None:
    a, b = fake.add_segment("A"), fake.add_segment("B")
    people = fake.add_contacts(4, segment_ids=[a.id])
    for cid in people[:3]:
        await api.post(contact_path(cid, "segments", b.id))
    await api.delete(contact_path(people[0], "segments", a.id))
    await api.delete(contact_path(people[1]))
    await api.post(contact_path(people[2], "merge"), json={"source_contact_ids": [people[3]]})

    segments = (await api.get(f"{ORG}/segments")).json
    contacts = (await api.get(f"{ORG}/contacts")).json
    for segment in segments:
        members = [c["id"] for c in contacts if segment["id"] in ids(c["segments"])]
        assert segment["contacts_count"] == len(members) == len(fake.segment_members(segment["id"]))
        assert sorted(members) == sorted(fake.segment_members(segment["id"]))
    for contact in contacts:
        for embedded in contact["segments"]:
            listed = next(s for s in segments if s["id"] == embedded["id"])
            assert embedded["contacts_count"] == listed["contacts_count"]


async def test_renaming_a_segment_shows_in_its_contacts(fake: FakeInvent, api: FakeApi) -> None:
    segment = fake.add_segment("VIP", "red")
    contact = fake.add_contact(email="jane@example.com", segment_ids=[segment.id])
    await api.patch(f"{ORG}/segments/{segment.id}", json={"name": "Gold", "color": "amber"})
    reply = await api.get(contact_path(contact.id))
    assert [(s["name"], s["color"]) for s in reply.json["segments"]] == [("Gold", "amber")]


async def test_deleting_a_segment_removes_it_from_its_contacts(
    fake: FakeInvent, api: FakeApi
) -> None:
    keep, gone = fake.add_segment("Keep"), fake.add_segment("Gone")
    contact = fake.add_contact(email="jane@example.com", segment_ids=[keep.id, gone.id])
    reply = await api.delete(f"{ORG}/segments/{gone.id}")
    assert reply.status == 200
    assert reply.json["id"] == gone.id
    assert [s.id for s in fake.contact(contact.id).segments] == [keep.id]
    filtered = await api.get(f"{ORG}/contacts", params={"segment_id": gone.id})
    assert filtered.json == []


# --------------------------------------------------------------------------- merge


async def test_merge_folds_sources_into_the_primary(fake: FakeInvent, api: FakeApi) -> None:
    vip, news = fake.add_segment("VIP"), fake.add_segment("News")
    primary = fake.add_contact(name="Jane", email="jane@example.com", segment_ids=[vip.id])
    source = fake.add_contact(phone="+1555", segment_ids=[vip.id, news.id])
    reply = await api.post(
        contact_path(primary.id, "merge"), json={"source_contact_ids": [source.id]}
    )
    assert reply.status == 200
    assert reply.json["merged_contact_ids"] == [source.id]
    merged = reply.json["merged"]
    assert [ch["user_id"] for ch in merged["channels"]] == ["jane@example.com", "+1555"]
    assert [(s["id"], s["contacts_count"]) for s in merged["segments"]] == [
        (vip.id, 1),
        (news.id, 1),
    ]
    assert fake.contact_ids() == [primary.id]


@pytest.mark.parametrize("body", [{}, None], ids=["empty-object", "no-body"])
async def test_merge_without_sources_merges_contacts_sharing_an_email_or_phone(
    fake: FakeInvent, api: FakeApi, body: dict[str, Any] | None
) -> None:
    primary = fake.add_contact(email="jane@example.com")
    fake.add_contact(phone="+1555", channel_type="twilio")
    same_email = fake.add_contact(user_id="u9", email="JANE@example.com")
    other = fake.add_contact(email="someone@example.com")
    fake.add_contact(phone="+1555", email="x@example.com")
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    reply = await api.post(contact_path(primary.id, "merge"), **kwargs)
    assert reply.status == 200
    assert reply.json["merged_contact_ids"] == [same_email.id]
    assert other.id in fake.contact_ids()


@pytest.mark.parametrize(
    "body",
    [
        {"source_contact_ids": []},
        {"source_contact_ids": [f"ct_{i}" for i in range(51)]},
        {"source_contact_ids": "ct_2"},
        {"source_contact_ids": [2]},
        {"sources": ["ct_2"]},
    ],
    ids=["empty", "51-ids", "not-a-list", "not-strings", "unknown-key"],
)
async def test_invalid_merge_body_is_400(fake: FakeInvent, api: FakeApi, body: Any) -> None:
    primary = fake.add_contact(email="jane@example.com")
    fake.add_contact(email="jane@example.com")
    reply = await api.post(contact_path(primary.id, "merge"), json=body)
    assert reply.status == 400
    assert len(fake.contact_ids()) == 2


async def test_merging_a_contact_into_itself_is_400(fake: FakeInvent, api: FakeApi) -> None:
    primary = fake.add_contact(email="jane@example.com")
    reply = await api.post(
        contact_path(primary.id, "merge"), json={"source_contact_ids": [primary.id]}
    )
    assert reply.status == 400


async def test_merge_with_an_unknown_source_is_404_and_changes_nothing(
    fake: FakeInvent, api: FakeApi
) -> None:
    primary = fake.add_contact(email="jane@example.com")
    source = fake.add_contact(email="jane@example.com")
    body = {"source_contact_ids": [source.id, "ct_404"]}
    reply = await api.post(contact_path(primary.id, "merge"), json=body)
    assert reply.status == 404
    assert fake.contact_ids() == [primary.id, source.id]
    assert fake.contact(primary.id) == primary


# --------------------------------------------------------------------------- notes, fields


DRY_RUN = f"{ORG}/contacts/bulk/dry"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "$.channels: required"),
        ({"channels": "a@example.com"}, "$.channels: expected an array, got a string"),
        ({"channels": ["a@example.com"]}, "$.channels[0]: expected a JSON object, got a string"),
        ({"channels": [{"email": 5}]}, "$.channels[0].email: expected a string, got a number"),
        ({"channels": [{"phone": "+1555"}]}, "$.channels[0].phone: unknown field"),
        ({"channels": [{}] * 10_001}, "$.channels: must have at most 10000 items"),
        ({"channels": [], "segment_id": 5}, "$.segment_id: expected a string, got a number"),
    ],
    ids=["no-channels", "not-an-array", "a-string-row", "a-number", "unknown", "10001", "segment"],
)
async def test_invalid_import_dry_run_body_is_400(api: FakeApi, body: Any, error: str) -> None:
    reply = await api.post(DRY_RUN, json=body)
    assert reply.status == 400
    assert error in reply.json["errors"]


async def test_import_dry_run_sorts_the_rows_and_writes_nothing(
    fake: FakeInvent, api: FakeApi
) -> None:
    jane = fake.add_contact(email="Jane@Example.com")
    sam = fake.add_contact(user_id="u-sam")
    rows = [
        {"type": "email", "email": "jane@example.com"},  # a channel's email, any case
        {"user_id": "u-sam", "name": "Sam"},  # a channel's user id
        {"contact_id": jane.id, "name": "J"},  # a contact that exists
        {"contact_id": "ct_gone"},  # one that does not
        {"type": "email", "email": "new@example.com", "name": "New"},
        {"user_id": "u-new"},
        {"type": "email", "email": "not-an-email"},
        {"name": "Nobody"},  # nothing to identify a channel by
    ]

    reply = await api.post(DRY_RUN, json={"channels": rows})

    assert reply.status == 200
    assert reply.json == {
        "created": [rows[4], rows[5]],
        "updated": [{**rows[0], "contact_id": jane.id}, {**rows[1], "contact_id": sam.id}, rows[2]],
        "invalid": [rows[3], rows[6], rows[7]],
    }
    assert fake.contact_ids() == [jane.id, sam.id]
    assert fake.requests[-1].operation == "dryRunImportContacts"


async def test_import_dry_run_into_an_unknown_segment_is_404(api: FakeApi) -> None:
    reply = await api.post(DRY_RUN, json={"channels": [], "segment_id": "sg_nope"})
    assert reply.status == 404


async def test_bulk_is_a_literal_next_to_a_contact_id(fake: FakeInvent, api: FakeApi) -> None:
    assert (await api.post(DRY_RUN, json={"channels": []})).status == 200
    reply = await api.get(f"{ORG}/contacts/bulk")
    assert (reply.status, fake.requests[-1].operation) == (404, "getContact")


async def test_list_memories_pages_a_contacts_memories(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(name="Jane")
    fake.add_memory(contact.id, "Runs a bakery", created_at=date(2023, 12, 25))
    fake.add_memory(contact.id, "Prefers email", type="PREFERENCE", importance=0.8)

    reply = await api.get(contact_path(contact.id, "memories"), params={"take": "1"})

    assert reply.json == [
        {
            "id": "mem_1",
            "content": "Runs a bakery",
            "type": "FACT",
            "importance": 0.5,
            "created_at": "2023-12-25",
            "updated_at": "2023-12-25",
            "contact_id": contact.id,
        }
    ]
    assert reply.headers["pagination-count"] == "2"


async def test_list_notes_pages_the_contacts_notes(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(email="jane@example.com")
    notes = [fake.add_note(contact.id, f"note {i}") for i in range(3)]
    reply = await api.get(contact_path(contact.id, "notes"), params={"take": "2"})
    assert ids(reply.json) == [notes[0].id, notes[1].id]
    assert reply.headers["pagination-count"] == "3"
    assert _converter.structure(reply.json[0], m.ContactNote) == notes[0]


async def test_list_fields_has_the_seeded_file_field(api: FakeApi) -> None:
    reply = await api.get(f"{ORG}/contacts/fields")
    contract = next(f for f in reply.json if f["key"] == "contract")
    assert contract["schema"]["type"] == "file"
    assert _converter.structure(contract, m.ContactField).type == m.ContactFieldType.FILE


async def test_add_field_is_listed(fake: FakeInvent, api: FakeApi) -> None:
    field = fake.add_field("tier", type="enum", readonly=True)
    reply = await api.get(f"{ORG}/contacts/fields", params={"page": "1", "take": "100"})
    listed = [f for f in reply.json if f["id"] == field.id]
    assert [_converter.structure(f, m.ContactField) for f in listed] == [field]


# --------------------------------------------------------------------------- channels


async def test_update_channel_changes_a_custom_channel(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(name="Jane", user_id="u1")
    channel_id = contact.channels[0].id
    body = {
        "username": "janedoe",
        "email": "jane@example.com",
        "name": None,
        "avatar": "https://x/a.png",
    }
    reply = await api.patch(contact_path(contact.id, "channels", channel_id), json=body)
    assert reply.status == 200
    channel = reply.json
    assert (channel["id"], channel["username"], channel["email"], channel["name"]) == (
        channel_id,
        "janedoe",
        "jane@example.com",
        None,
    )
    assert fake.contact(contact.id).channels[0].avatar == "https://x/a.png"


async def test_update_channel_refuses_non_custom_channels(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(phone="+1555", channel_type="whatsapp_bot")
    path = contact_path(contact.id, "channels", contact.channels[0].id)
    reply = await api.patch(path, json={"name": "Jane"})
    assert reply.status == 400
    assert fake.contact(contact.id) == contact


async def test_update_channel_of_another_contact_is_404(fake: FakeInvent, api: FakeApi) -> None:
    jane = fake.add_contact(user_id="u1")
    john = fake.add_contact(user_id="u2")
    reply = await api.patch(contact_path(jane.id, "channels", john.channels[0].id), json={})
    assert reply.status == 404


@pytest.mark.parametrize(
    "body",
    [{"avatar": "x" * 2049}, {"phone": "1" * 257}, {"user_id": "u3"}, {"email": 1}],
    ids=["avatar-too-long", "phone-too-long", "unknown-key", "wrong-type"],
)
async def test_invalid_update_channel_body_is_400(
    fake: FakeInvent, api: FakeApi, body: dict[str, Any]
) -> None:
    contact = fake.add_contact(user_id="u1")
    reply = await api.patch(contact_path(contact.id, "channels", contact.channels[0].id), json=body)
    assert reply.status == 400


# --------------------------------------------------------------------------- segments


async def test_create_segment_defaults_to_neutral_without_boards(api: FakeApi) -> None:
    reply = await api.post(f"{ORG}/segments", json={"name": "VIP"})
    assert reply.status == 200
    assert {k: reply.json[k] for k in ("name", "color", "contacts_count", "boards")} == {
        "name": "VIP",
        "color": "neutral",
        "contacts_count": 0,
        "boards": [],
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 129},
        {"name": None},
        {"name": "VIP", "color": "crimson"},
        {"name": "VIP", "colour": "red"},
    ],
    ids=str,
)
async def test_invalid_create_segment_body_is_400(
    fake: FakeInvent, api: FakeApi, body: dict[str, Any]
) -> None:
    reply = await api.post(f"{ORG}/segments", json=body)
    assert reply.status == 400
    assert fake.segment_ids() == []


async def test_list_segments_searches_by_name(fake: FakeInvent, api: FakeApi) -> None:
    vip = fake.add_segment("VIP customers")
    fake.add_segment("Newsletter")
    reply = await api.get(f"{ORG}/segments", params={"search": "vip"})
    assert ids(reply.json) == [vip.id]
    assert reply.json[0]["boards"] == []


async def test_list_segments_can_exclude_board_columns(fake: FakeInvent, api: FakeApi) -> None:
    board = m.Board(board_id="brd_1", board_name="Sales", column_id="col_1")
    fake.add_segment("On a board", boards=[board])
    free = fake.add_segment("Free")
    reply = await api.get(f"{ORG}/segments", params={"exclude_board_columns": "true"})
    assert ids(reply.json) == [free.id]


async def test_get_segment_includes_boards(fake: FakeInvent, api: FakeApi) -> None:
    board = m.Board(board_id="brd_1", board_name="Sales", column_id="col_1")
    segment = fake.add_segment("VIP", "red", boards=[board])
    reply = await api.get(f"{ORG}/segments/{segment.id}")
    assert _converter.structure(reply.json, m.Segment) == segment


async def test_update_segment_changes_name_and_color(
    fake: FakeInvent, api: FakeApi, clock: FakeClock
) -> None:
    segment = fake.add_segment("VIP", "red")
    clock.advance(1)
    reply = await api.patch(f"{ORG}/segments/{segment.id}", json={"color": "sky"})
    assert (reply.json["name"], reply.json["color"]) == ("VIP", "sky")
    assert reply.json["updated_at"] == "2024-01-02T03:04:06Z"


@pytest.mark.parametrize("body", [{"name": ""}, {"color": "RED"}, {"boards": []}], ids=str)
async def test_invalid_update_segment_body_is_400(
    fake: FakeInvent, api: FakeApi, body: dict[str, Any]
) -> None:
    segment = fake.add_segment("VIP", "red")
    reply = await api.patch(f"{ORG}/segments/{segment.id}", json=body)
    assert reply.status == 400
    assert fake.segment(segment.id) == segment


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_segment_is_404(api: FakeApi, method: str) -> None:
    kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
    reply = await api.call(method, f"{ORG}/segments/sg_404", **kwargs)
    assert reply.status == 404


# --------------------------------------------------------------------------- recording


async def test_requests_are_recorded_without_the_authorization_header(
    fake: FakeInvent, api: FakeApi
) -> None:
    await api.get(
        f"{ORG}/contacts", params=[("search", "a b"), ("take", "5")], headers={"X-Trace": "abc"}
    )
    (recorded,) = fake.requests
    assert isinstance(recorded, RecordedRequest)
    assert (recorded.method, recorded.path, recorded.query) == (
        "GET",
        f"{ORG}/contacts",
        (("search", "a b"), ("take", "5")),
    )
    assert (recorded.status, recorded.fault, recorded.operation) == (200, None, "listContacts")
    assert recorded.headers["x-trace"] == "abc"
    assert "Authorization" not in recorded.headers


async def test_recorded_requests_keep_the_json_body_and_decoded_ids(
    fake: FakeInvent, api: FakeApi
) -> None:
    segment = fake.add_segment("VIP")
    await api.patch(f"{ORG}/segments/{segment.id}", json={"name": "Gold"})
    recorded = fake.requests[-1]
    assert recorded.json == {"name": "Gold"}
    assert recorded.body == b'{"name": "Gold"}'
    assert recorded.path_params == {"org_id": "c", "segment_id": segment.id}


async def test_recording_can_be_turned_off(session: aiohttp.ClientSession) -> None:
    async with FakeInvent(api_key=KEY, record=False) as fake:
        await FakeApi(session, fake.url).get(f"{ORG}/contacts")
        assert fake.requests == []
        assert fake.stats.total == 1


async def test_clear_requests_forgets_them(fake: FakeInvent, api: FakeApi) -> None:
    await api.get(f"{ORG}/contacts")
    fake.clear_requests()
    assert fake.requests == []


async def test_stats_count_responses_by_status(fake: FakeInvent, api: FakeApi) -> None:
    await api.get(f"{ORG}/contacts")
    await api.get(f"{ORG}/contacts", token="bad")
    await api.get(f"{ORG}/contacts/ct_404")
    stats = fake.stats
    assert stats.total == 3
    assert dict(stats.by_status) == {200: 1, 401: 1, 404: 1}


async def test_stats_count_requests_by_route_faults_and_429s_included(
    fake: FakeInvent, api: FakeApi
) -> None:
    fake.add_contacts(1)
    fake.fail_next(1, 503)
    await api.get(f"{ORG}/contacts")
    await api.get(f"{ORG}/contacts", params={"segment_id": "sg_1"})
    await api.get(f"{ORG}/contacts/ct_1")
    await api.get(f"{ORG}/nowhere")

    assert dict(fake.stats.by_operation) == {"listContacts": 2, "getContact": 1, "unknown": 1}


# --------------------------------------------------------------------------- faults


async def test_fail_next_answers_with_the_status_then_recovers(
    fake: FakeInvent, api: FakeApi
) -> None:
    fake.fail_next(2, 503)
    replies = [await api.get(f"{ORG}/contacts") for _ in range(3)]
    assert [r.status for r in replies] == [503, 503, 200]
    assert "message" in replies[0].json
    assert [r.fault for r in fake.requests] == ["fail", "fail", None]
    assert fake.stats.injected == 2


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [(2, "2"), (0.25, "0.25"), ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT")],
)
async def test_fail_next_sends_retry_after(
    fake: FakeInvent, api: FakeApi, retry_after: float | str, header: str
) -> None:
    fake.fail_next(1, 429, retry_after=retry_after)
    reply = await api.get(f"{ORG}/contacts")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == header


async def test_fail_next_can_send_an_html_error_page(fake: FakeInvent, api: FakeApi) -> None:
    page = "<html><body>502 Bad Gateway</body></html>"
    fake.fail_next(1, 502, body=page)
    reply = await api.get(f"{ORG}/contacts")
    assert reply.status == 502
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text == page


async def test_fail_next_with_match_only_hits_matching_requests(
    fake: FakeInvent, api: FakeApi
) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com")
    fake.fail_next(1, 500, match=r"^POST .*/segments/")
    assert (await api.get(f"{ORG}/contacts")).status == 200
    assert (await api.post(contact_path(contact.id, "segments", segment.id))).status == 500
    assert (await api.post(contact_path(contact.id, "segments", segment.id))).status == 200


async def test_fail_next_accepts_a_predicate(fake: FakeInvent, api: FakeApi) -> None:
    fake.fail_next(1, 500, match=lambda method, path: method == "DELETE")
    assert (await api.get(f"{ORG}/contacts")).status == 200
    assert (await api.delete(contact_path("ct_1"))).status == 500


async def test_a_failed_request_changes_no_state(fake: FakeInvent, api: FakeApi) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com")
    fake.fail_next(1, 503)
    await api.post(contact_path(contact.id, "segments", segment.id))
    assert fake.segment_members(segment.id) == []


async def test_drop_next_closes_the_connection_without_a_response(
    fake: FakeInvent, api: FakeApi
) -> None:
    segment = fake.add_segment("VIP")
    contact = fake.add_contact(email="jane@example.com")
    fake.drop_next()
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await api.post(contact_path(contact.id, "segments", segment.id))
    assert fake.segment_members(segment.id) == []
    assert (fake.requests[-1].status, fake.requests[-1].fault) == (None, "drop")
    assert (await api.get(f"{ORG}/contacts")).status == 200
    assert fake.stats.dropped == 1


async def test_latency_delays_every_response(fake: FakeInvent, api: FakeApi) -> None:
    fake.latency = 0.15
    started = time.monotonic()
    await api.get(f"{ORG}/contacts")
    await api.get(f"{ORG}/contacts")
    assert time.monotonic() - started >= 0.3


async def test_delay_next_delays_only_the_next_requests(fake: FakeInvent, api: FakeApi) -> None:
    fake.delay_next(1, 0.3)
    started = time.monotonic()
    await api.get(f"{ORG}/contacts")
    first = time.monotonic() - started
    started = time.monotonic()
    await api.get(f"{ORG}/contacts")
    second = time.monotonic() - started
    assert first >= 0.3
    assert second < 0.3


async def test_a_client_timeout_fires_against_a_delayed_response(
    fake: FakeInvent, api: FakeApi
) -> None:
    fake.delay_next(1, 1.0)
    with pytest.raises(TimeoutError):
        async with api.session.get(
            api.url(f"{ORG}/contacts"),
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=aiohttp.ClientTimeout(total=0.1),
        ):
            pass


async def test_clear_faults_forgets_queued_faults(fake: FakeInvent, api: FakeApi) -> None:
    fake.fail_next(3)
    fake.drop_next(1)
    assert fake.pending_faults == 4
    fake.clear_faults()
    assert (await api.get(f"{ORG}/contacts")).status == 200


# --------------------------------------------------------------------------- rate limiter


@pytest.fixture
async def limited(clock: FakeClock) -> AsyncIterator[FakeInvent]:
    """A fake that accepts 5 requests per 1 s (300/min) and answers Retry-After in ms."""
    async with FakeInvent(
        api_key=KEY,
        clock=clock,
        rate_limit_per_minute=300,
        rate_limit_window=1.0,
        retry_after_precision=3,
    ) as server:
        yield server


async def test_rate_limiter_answers_429_beyond_the_limit(
    limited: FakeInvent, session: aiohttp.ClientSession
) -> None:
    api = FakeApi(session, limited.url)
    statuses = [(await api.get(f"{ORG}/contacts")).status for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    assert limited.rate_limited_count == 2
    assert [r.fault for r in limited.requests[-2:]] == ["rate_limit", "rate_limit"]


async def test_rate_limited_reply_has_a_fractional_retry_after(
    limited: FakeInvent, session: aiohttp.ClientSession
) -> None:
    api = FakeApi(session, limited.url)
    for _ in range(5):
        await api.get(f"{ORG}/contacts")
    reply = await api.get(f"{ORG}/contacts")
    assert reply.status == 429
    assert reply.json == {"message": "Too many requests"}
    assert 0 < float(reply.headers["Retry-After"]) <= 1.0


async def test_waiting_retry_after_gets_through_the_limiter(
    limited: FakeInvent, session: aiohttp.ClientSession
) -> None:
    api = FakeApi(session, limited.url)
    for _ in range(5):
        await api.get(f"{ORG}/contacts")
    rejected = await api.get(f"{ORG}/contacts")
    await asyncio.sleep(float(rejected.headers["Retry-After"]))
    assert (await api.get(f"{ORG}/contacts")).status == 200


async def test_retry_after_is_whole_seconds_by_default(session: aiohttp.ClientSession) -> None:
    async with FakeInvent(api_key=KEY, rate_limit_per_minute=1) as fake:
        api = FakeApi(session, fake.url)
        await api.get(f"{ORG}/contacts")
        reply = await api.get(f"{ORG}/contacts")
        assert reply.status == 429
        assert reply.headers["Retry-After"] in {"59", "60"}


async def test_rate_limited_requests_change_no_state(
    limited: FakeInvent, session: aiohttp.ClientSession
) -> None:
    api = FakeApi(session, limited.url)
    for _ in range(5):
        await api.get(f"{ORG}/contacts")
    reply = await api.post(f"{ORG}/segments", json={"name": "VIP"})
    assert reply.status == 429
    assert limited.segment_ids() == []


async def test_stats_report_the_busiest_window(
    limited: FakeInvent, session: aiohttp.ClientSession
) -> None:
    api = FakeApi(session, limited.url)
    for _ in range(8):
        await api.get(f"{ORG}/contacts")
    stats = limited.stats
    assert (stats.window_seconds, stats.max_in_window) == (1.0, 8)
    assert dict(stats.by_status) == {200: 5, 429: 3}
    assert stats.rate_limited == 3


async def test_rate_limit_can_be_switched_on_and_off_while_serving(
    fake: FakeInvent, api: FakeApi
) -> None:
    fake.rate_limit_per_minute = 1
    assert [(await api.get(f"{ORG}/contacts")).status for _ in range(2)] == [200, 429]
    fake.rate_limit_per_minute = None
    assert (await api.get(f"{ORG}/contacts")).status == 200


# --------------------------------------------------------------------------- seeding


def test_add_contacts_seeds_100k_quickly() -> None:
    fake = FakeInvent()
    segment = fake.add_segment("All")
    started = time.perf_counter()
    created = fake.add_contacts(100_000, segment_ids=[segment.id])
    elapsed = time.perf_counter() - started
    assert len(created) == 100_000
    assert fake.segment(segment.id).contacts_count == 100_000
    assert elapsed < 5.0  # about 0.4 s on a 2-core box; the bound leaves room for tracing


def test_state_helpers_raise_key_error_for_unknown_ids() -> None:
    fake = FakeInvent()
    with pytest.raises(KeyError):
        fake.contact("ct_404")
    with pytest.raises(KeyError):
        fake.segment("sg_404")
    with pytest.raises(KeyError):
        fake.add_contact(email="a@example.com", segment_ids=["sg_404"])
    with pytest.raises(KeyError):
        fake.add_contact(email="a@example.com", org="org_unknown")


async def test_membership_helpers_change_the_segment_as_someone_else_would(
    fake: FakeInvent, api: FakeApi
) -> None:
    segment = fake.add_segment("VIP")
    a, b, c = fake.add_contacts(3, segment_ids=[segment.id])
    d = fake.add_contacts(1)[0]

    fake.remove_from_segment(segment.id, [a])
    fake.add_to_segment(segment.id, [d, d])
    fake.delete_contact(b)
    reply = await api.get(f"{ORG}/contacts", params={"segment_id": segment.id})

    assert fake.segment_members(segment.id) == [c, d]
    assert ids(reply.json) == [c, d]
    assert reply.headers["pagination-count"] == "2"
    assert fake.stats.total == 1  # no request was made for the changes
    with pytest.raises(KeyError):
        fake.delete_contact(b)
    with pytest.raises(KeyError):
        fake.add_to_segment(segment.id, ["ct_404"])
    with pytest.raises(TypeError):
        fake.add_to_segment(segment.id, c)


def test_add_contact_returns_the_sdk_model() -> None:
    fake = FakeInvent()
    segment = fake.add_segment("VIP", m.SegmentColor.RED)
    contact = fake.add_contact(name="Jane", email="jane@example.com", segment_ids=[segment.id])
    assert contact == fake.contact(contact.id)
    assert contact.channels[0].type == m.ChannelType.CUSTOM
    assert [(s.id, s.color, s.contacts_count, s.boards) for s in contact.segments] == [
        (segment.id, m.SegmentColor.RED, 1, None)
    ]


# --------------------------------------------------------------------------- python -m


@pytest.fixture
async def run_module() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Collects started processes; any still running at the end is killed and reaped."""
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def _start_module(
    procs: list[asyncio.subprocess.Process], *args: str
) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "invent_async.testing",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    procs.append(proc)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    assert line.startswith("URL http://127.0.0.1:"), line
    return proc, line.split()[1]


async def test_module_serves_until_sigterm(
    run_module: list[asyncio.subprocess.Process], session: aiohttp.ClientSession
) -> None:
    proc, url = await _start_module(
        run_module, "--max-seconds", "5", "--api-key", KEY, "--seed-contacts", "3"
    )
    try:
        reply = await FakeApi(session, url).get(f"{ORG}/contacts")
        assert reply.status == 200
        assert ids(reply.json) == ["ct_1", "ct_2", "ct_3"]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0


async def test_module_exits_by_itself_after_max_seconds_and_says_so(
    run_module: list[asyncio.subprocess.Process],
) -> None:
    proc, _ = await _start_module(run_module, "--max-seconds", "0.2")
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 10)

    assert proc.returncode == 0
    assert "by itself after 0.2 s (--max-seconds)" in stdout.decode()
    assert "stopped: --max-seconds (0.2 s) passed" in stderr.decode()


async def test_module_says_it_stopped_when_told_to(
    run_module: list[asyncio.subprocess.Process],
) -> None:
    proc, _ = await _start_module(run_module, "--max-seconds", "30")
    proc.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proc.communicate(), 10)

    assert proc.returncode == 0
    assert "FakeInvent stopped: it was told to (Ctrl-C or SIGTERM)." in stderr.decode()


@pytest.mark.parametrize("key", [None, "my-key's$value"], ids=["default key", "own key"])
async def test_module_prints_lines_to_paste_that_point_a_client_at_it(
    run_module: list[asyncio.subprocess.Process], key: str | None
) -> None:
    args = ["--max-seconds", "10", "--seed-contacts", "2"]
    proc, url = await _start_module(run_module, *args, *(["--api-key", key] if key else []))
    assert proc.stdout is not None
    lines = [(await asyncio.wait_for(proc.stdout.readline(), 10)).decode() for _ in range(4)]
    exported = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in lines
        if line.startswith("export ")
    )
    try:
        async with AsyncInventClient(
            exported["INVENT_API_KEY"], base_url=exported["INVENT_BASE_URL"]
        ) as client:
            page = await client.contacts.list().first_page()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 10)

    assert exported == {"INVENT_BASE_URL": url, "INVENT_API_KEY": key or "test-key"}
    assert [contact.id for contact in page.items] == ["ct_1", "ct_2"]


def test_module_help_names_the_key_it_accepts() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "invent_async.testing", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout

    assert "default: test-key" in " ".join(shown.split())


async def test_module_prints_stats_on_exit_when_asked(
    run_module: list[asyncio.subprocess.Process],
) -> None:
    proc, _ = await _start_module(run_module, "--max-seconds", "0.2", "--print-stats")
    stdout, _ = await asyncio.wait_for(proc.communicate(), 10)
    line = stdout.decode().splitlines()[-1]  # after the lines to paste
    assert line.startswith("STATS ")
    assert json.loads(line.removeprefix("STATS "))["total"] == 0


async def test_module_seeds_members_into_every_seeded_segment(
    run_module: list[asyncio.subprocess.Process], session: aiohttp.ClientSession
) -> None:
    args = ["--max-seconds", "5", "--api-key", KEY, "--seed-contacts", "6", "--seed-segments"]
    proc, url = await _start_module(run_module, *args, "2", "--seed-members", "2:4")
    try:
        api = FakeApi(session, url)
        everyone = await api.get(f"{ORG}/contacts")
        members = [
            await api.get(f"{ORG}/contacts", params={"segment_id": sid}) for sid in ("sg_1", "sg_2")
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 10)

    assert ids(everyone.json) == [f"ct_{n}" for n in range(1, 7)]
    assert [ids(reply.json) for reply in members] == [["ct_2", "ct_3", "ct_4"]] * 2


def test_a_threaded_fake_answers_blocking_code_on_any_thread() -> None:
    from invent_async import InventClient
    from invent_async.testing import ThreadedFake

    with ThreadedFake(api_key=KEY) as fake:
        fake.add_contact(id="ct_1", name="Ada")
        with InventClient(KEY, base_url=fake.url, rate_limit=None) as client:
            name = client.contacts.get("ct_1").name
        url = fake.url

    assert name == "Ada"
    with pytest.raises(aiohttp.ClientConnectionError):  # stopped: nothing listens any more
        asyncio.run(_get(url))


async def test_a_threaded_fake_serves_a_loop_that_blocks_on_it() -> None:
    """The case it exists for: blocking code on the thread of a running loop (a notebook
    cell), which a fake served by that same loop could never answer."""
    from invent_async import InventClient
    from invent_async.testing import ThreadedFake

    served = ThreadedFake(api_key=KEY)
    fake = served.start()
    try:
        fake.add_segment("VIP", id="sg_vip")
        with InventClient(KEY, base_url=fake.url, rate_limit=None) as client:
            found = client.segments.get("sg_vip")  # blocks this loop's thread
    finally:
        served.stop()
        served.stop()  # twice: nothing more to do

    assert found.name == "VIP"


async def _get(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(url + "/orgs/c/contacts"):
        pass


# --------------------------------------------------------------------------- chats


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"message": []}, "$.message: must have at least 1 item"),
        ({"message": "hi"}, "$.message: expected an array, got a string"),
        ({"message": ["hi"]}, "$.message[0]: expected a JSON object, got a string"),
        (
            {"message": [{"type": "text", "text": 5}]},
            "$.message[0].text: expected a string, got a number",
        ),
        ({"message": [{"type": "text", "x": 1}]}, "$.message[0].x: unknown field"),
        (
            {"message": [{"type": "text", "end_timestamp": "2s"}]},
            "$.message[0].end_timestamp: expected a number, got a string",
        ),
        ({"message": [{"type": 7}]}, "$.message[0].type: expected a string, got a number"),
        (
            {"message": [{"type": "audio", "audio": 1}]},
            "$.message[0].audio: expected an object or null, got a number",
        ),
        ({"title": 5}, "$.title: expected a string, got a number"),
        ({"channel_id": "ch_1"}, "$.channel_id: unknown field"),
    ],
    ids=[
        "no-parts",
        "a-string",
        "a-string-part",
        "text-a-number",
        "unknown-text-field",
        "timestamp",
        "type-a-number",
        "audio-a-number",
        "title",
        "channel-in-the-body",
    ],
)
async def test_invalid_chat_body_is_400_before_anything_is_looked_up(
    api: FakeApi, body: Any, error: str
) -> None:
    reply = await api.post(contact_path("ct_missing", "channels", "ch_1", "chats"), json=body)
    assert reply.status == 400
    assert error in reply.json["errors"]


async def test_a_part_of_an_unknown_type_is_stored_as_sent(fake: FakeInvent, api: FakeApi) -> None:
    contact = fake.add_contact(user_id="u1")
    channel_id = contact.channels[0].id
    part = {"type": "sticker", "sticker": {"id": 9}, "x_future": [1]}

    chat = await api.post(contact_path(contact.id, "channels", channel_id, "chats"), json={})
    reply = await api.post(
        contact_path(contact.id, "chats", chat.json["id"], "messages"), json={"message": [part]}
    )

    assert reply.status == 200
    assert reply.json["messages"] == [{"role": "user", "parts": [part]}]
    stored = fake.chat_messages(chat.json["id"])
    assert [message.parts for message in stored] == [(m.OtherPart(data=part),)]


async def test_a_message_on_another_channel_than_the_chats_is_400(
    fake: FakeInvent, api: FakeApi
) -> None:
    contact = fake.add_contact(user_id="u1")
    channel_id = contact.channels[0].id
    chat = await api.post(contact_path(contact.id, "channels", channel_id, "chats"), json={})
    other = await api.post(
        f"{ORG}/contacts", json={"channel": {"user_id": "u2", "contact_id": contact.id}}
    )
    second = other.json["channels"][1]["id"]

    reply = await api.post(
        contact_path(contact.id, "chats", chat.json["id"], "messages"),
        json={"message": [{"type": "text", "text": "hi"}], "channel_id": second},
    )

    assert reply.status == 400
    assert fake.chat_messages(chat.json["id"]) == []


# --------------------------------------------------------------------------- broadcasts


BROADCASTS = f"{ORG}/broadcasts"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "$.name: required"),
        ({"name": ""}, "$.name: must be at least 1 characters long"),
        ({"name": "x" * 256}, "$.name: must be at most 255 characters long"),
        ({"name": "S", "segment_ids": ["s"] * 11}, "$.segment_ids: must have at most 10 items"),
        (
            {"name": "S", "scheduled_at": "tomorrow"},
            "$.scheduled_at: expected an RFC 3339 date-time or null",
        ),
        ({"name": "S", "send_to_all": "yes"}, "$.send_to_all: expected a boolean, got a string"),
        ({"name": "S", "status": "SENT"}, "$.status: unknown field"),
    ],
    ids=["no-name", "empty", "long", "11-segments", "time", "send-to-all", "status"],
)
async def test_invalid_broadcast_body_is_400(api: FakeApi, body: Any, error: str) -> None:
    reply = await api.post(BROADCASTS, json=body)
    assert reply.status == 400
    assert error in reply.json["errors"]


async def test_an_unknown_broadcast_status_filter_is_400(api: FakeApi) -> None:
    reply = await api.get(BROADCASTS, params={"status": "ARCHIVED"})
    assert reply.status == 400
    assert reply.json["errors"] == [
        "status: must be one of ALL, CANCELLED, DRAFT, FAILED, SCHEDULED, SENDING, SENT"
    ]


async def test_a_marketing_broadcast_sent_with_a_body_is_400_and_stays_a_draft(
    fake: FakeInvent, api: FakeApi
) -> None:
    contact = fake.add_contact(user_id="u1")
    draft = fake.add_broadcast("Sale", send_to_all=True)

    reply = await api.post(f"{BROADCASTS}/{draft.id}/send", json={"contact_id": contact.id})

    assert reply.status == 400
    assert fake.broadcast(draft.id) == draft


@pytest.mark.parametrize("status", ["SCHEDULED", "SENDING", "SENT"])
async def test_only_a_draft_cancelled_or_failed_broadcast_is_sent(
    fake: FakeInvent, api: FakeApi, status: str
) -> None:
    broadcast = fake.add_broadcast("Sale", status=status)

    reply = await api.post(f"{BROADCASTS}/{broadcast.id}/send")

    assert reply.status == 400
    assert fake.broadcast(broadcast.id).status == status


async def test_a_transactional_send_to_nobody_or_an_unknown_template_is_400(
    fake: FakeInvent, api: FakeApi
) -> None:
    contact = fake.add_contact(user_id="u1")
    order = fake.add_broadcast("Order", transactional=True)
    send = f"{BROADCASTS}/{order.id}/send"

    nobody = await api.post(send, json={"name": "Jane"})
    unknown = await api.post(send, json={"contact_id": contact.id, "template_ids": ["tpl_x"]})

    assert (nobody.status, unknown.status) == (400, 400)
    assert fake.broadcast_recipients(order.id) == []
