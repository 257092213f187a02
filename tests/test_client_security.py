"""Security promises, end to end through both clients: ids never change the path, the API key
never leaks (repr, str, exceptions, formatted tracebacks, log records), only https leaves the
machine, and where the key comes from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import traceback
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote

import pytest
from _harness import (  # noqa: F401
    API_KEY,
    Api,
    ClientKind,
    ThreadedFake,
    api_fixture,
    open_client,
    serve,
    sync_client_class,
)
from aiohttp import web

from invent_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncInventClient,
    AuthenticationError,
    ContactChannelOption,
    InventError,
    NotFoundError,
    RateLimit,
)

# --------------------------------------------------------------------------- path escaping

HOSTILE_IDS = [
    "a/b",
    "../segments",
    "../../../orgs/other/segments",
    "x?y=1",
    "#frag",
    "%2F",
    "%",
    "ü",
    "ct 1",
    "a\\b",
    "..%2F..",
    "ct_1/segments/sg_1",
    ";",
    "&take=5",
]


@pytest.mark.parametrize("contact_id", HOSTILE_IDS)
async def test_a_hostile_contact_id_reaches_the_server_as_one_path_segment(
    api: Api, contact_id: str
) -> None:
    api.fake.add_contact(name="Jane")  # ct_1 exists: "ct_1/segments/sg_1" must not reach it

    with pytest.raises(NotFoundError) as caught:
        await api.call(lambda c: c.contacts.get(contact_id))

    [request] = api.requests
    prefix, _, encoded = request.path.rpartition("/")
    assert prefix == "/orgs/c/contacts"
    assert unquote(encoded) == contact_id
    assert request.query == ()
    assert request.operation == "getContact"
    assert request.path_params["contact_id"] == contact_id
    assert caught.value.path == request.path


@pytest.mark.parametrize("segment_id", ["../..", "sg_1?x", "sg/1", "ü ü"])
async def test_hostile_ids_in_a_two_id_path_stay_in_their_segments(
    api: Api, segment_id: str
) -> None:
    contact = api.fake.add_contact(name="Jane")

    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.contacts.add_segment(contact.id, segment_id))

    [request] = api.requests
    assert request.operation == "addSegmentToContact"
    assert request.path_params == {
        "org_id": "c",
        "contact_id": contact.id,
        "segment_id": segment_id,
    }
    assert api.fake.contact(contact.id).segments == ()


@pytest.mark.parametrize("hostile", ["../..", "chat_1/messages", "a?b", "ü ü", "%2F"])
@pytest.mark.parametrize(
    ("call", "operation", "param"),
    [
        (
            lambda c, i: c.contacts.send_message_on_channel("ct_1", i, "chat_1", "hi"),
            "sendMessageAsContactOnChannel",
            "channel_id",
        ),
        (
            lambda c, i: c.contacts.send_message_on_channel("ct_1", "ch_1", i, "hi"),
            "sendMessageAsContactOnChannel",
            "chat_id",
        ),
        (lambda c, i: c.contacts.send_message("ct_1", i, "hi"), "sendMessageAsContact", "chat_id"),
        (lambda c, i: c.contacts.create_chat("ct_1", i), "createContactChannelChat", "channel_id"),
        (lambda c, i: c.broadcasts.send(i), "sendBroadcast", "broadcast_id"),
    ],
    ids=["channel-of-message", "chat-of-message", "chat", "channel-of-chat", "broadcast"],
)
async def test_hostile_chat_channel_and_broadcast_ids_stay_in_their_segments(
    api: Api,
    call: Callable[[AsyncInventClient, str], Any],
    operation: str,
    param: str,
    hostile: str,
) -> None:
    api.fake.add_contact(name="Jane", user_id="u1")  # ct_1 with its custom channel ch_1

    with pytest.raises(NotFoundError):
        await api.call(lambda c: call(c, hostile))

    [request] = api.requests
    assert (request.operation, request.path_params[param]) == (operation, hostile)


async def test_a_hostile_org_id_stays_one_path_segment(api: Api) -> None:
    api.fake.add_org("a")

    with pytest.raises(NotFoundError):
        await api.collect(lambda c: c.for_org("a/../c").segments.list())

    [request] = api.requests
    assert request.path == "/orgs/a%2F..%2Fc/segments"


@pytest.mark.parametrize("value", ["a&take=5", "x#y", "1+1", "a b", "%41", "ü?="])
async def test_a_filter_value_cannot_add_or_change_query_parameters(api: Api, value: str) -> None:
    await api.collect(lambda c: c.contacts.list(search=value))

    assert api.requests[0].query == (("search", value), ("page", "1"), ("take", "100"))


BLANK_IDS = ["", " ", "\t\n", ".", ".."]

CALLS_WITH_AN_ID: list[tuple[str, Callable[[AsyncInventClient, str], Any]]] = [
    ("contacts.get", lambda c, i: c.contacts.get(i)),
    ("contacts.delete", lambda c, i: c.contacts.delete(i)),
    ("contacts.update", lambda c, i: c.contacts.update(i, name="x")),
    ("contacts.add_segment(contact)", lambda c, i: c.contacts.add_segment(i, "sg_1")),
    ("contacts.add_segment(segment)", lambda c, i: c.contacts.add_segment("ct_1", i)),
    ("contacts.remove_segment", lambda c, i: c.contacts.remove_segment("ct_1", i)),
    ("contacts.merge", lambda c, i: c.contacts.merge(i, ["ct_2"])),
    ("contacts.update_channel", lambda c, i: c.contacts.update_channel("ct_1", i, name="x")),
    ("segments.get", lambda c, i: c.segments.get(i)),
    ("segments.update", lambda c, i: c.segments.update(i, name="x")),
    ("segments.delete", lambda c, i: c.segments.delete(i)),
    ("contacts.create_chat", lambda c, i: c.contacts.create_chat("ct_1", i)),
    ("contacts.send_message", lambda c, i: c.contacts.send_message("ct_1", i, "hi")),
    (
        "contacts.send_message_on_channel",
        lambda c, i: c.contacts.send_message_on_channel("ct_1", "ch_1", i, "hi"),
    ),
    ("broadcasts.send", lambda c, i: c.broadcasts.send(i)),
    (
        "broadcasts.send_transactional",
        lambda c, i: c.broadcasts.send_transactional(i, contact_id="ct_1"),
    ),
    ("for_org", lambda c, i: c.for_org(i).segments.get("sg_1")),
]


@pytest.mark.parametrize("bad_id", BLANK_IDS, ids=repr)
@pytest.mark.parametrize(
    "call", [c for _, c in CALLS_WITH_AN_ID], ids=[n for n, _ in CALLS_WITH_AN_ID]
)
async def test_blank_and_dot_ids_fail_before_any_request(
    api: Api, call: Callable[[AsyncInventClient, str], Any], bad_id: str
) -> None:
    with pytest.raises(ValueError):
        await api.call(lambda c: call(c, bad_id))

    assert api.requests == []


@pytest.mark.parametrize(
    "make",
    [
        lambda c: c.contacts.list_segments(" "),
        lambda c: c.contacts.list_notes(".."),
    ],
    ids=["list_segments", "list_notes"],
)
async def test_blank_ids_in_list_methods_fail_before_any_request(
    api: Api, make: Callable[[AsyncInventClient], Any]
) -> None:
    with pytest.raises(ValueError):
        await api.collect(make)

    assert api.requests == []


@pytest.mark.parametrize("bad_id", [None, 123, b"ct_1"], ids=repr)
@pytest.mark.parametrize(
    "call",
    [lambda c, i: c.contacts.get(i), lambda c, i: c.for_org(i).segments.get("sg_1")],
    ids=["contacts.get", "for_org"],
)
async def test_a_non_string_id_is_a_type_error_before_any_request(
    api: Api, call: Callable[[AsyncInventClient, Any], Any], bad_id: Any
) -> None:
    with pytest.raises(TypeError):
        await api.call(lambda c: call(c, bad_id))

    assert api.requests == []


LONE_SURROGATE = "ct_\udc80x"  # what bytes decoded with errors="surrogateescape" leave


@pytest.mark.parametrize(
    "call", [c for _, c in CALLS_WITH_AN_ID], ids=[n for n, _ in CALLS_WITH_AN_ID]
)
async def test_an_id_utf8_cannot_carry_is_a_value_error_naming_the_argument(
    api: Api, call: Callable[[AsyncInventClient, str], Any]
) -> None:
    with pytest.raises(ValueError, match=r"_id holds a character that cannot be sent") as caught:
        await api.call(lambda c: call(c, LONE_SURROGATE))

    assert not isinstance(caught.value, UnicodeError)
    assert "position 3" in str(caught.value)
    assert api.requests == []


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.contacts.create(email="a@b.co", name=LONE_SURROGATE), "$.channel.name"),
        (lambda c: c.segments.create(LONE_SURROGATE), "$.name"),
        (lambda c: c.contacts.update("ct_1", name=LONE_SURROGATE), "$.name"),
        (lambda c: c.contacts.list(email=LONE_SURROGATE).first_page(), "email"),
        (lambda c: c.segments.list(search=LONE_SURROGATE).first_page(), "search"),
    ],
    ids=["contacts.create", "segments.create", "contacts.update", "filter", "search"],
)
async def test_text_utf8_cannot_carry_is_a_value_error_naming_the_field(
    api: Api, call: Callable[[AsyncInventClient], Any], named: str
) -> None:
    with pytest.raises(ValueError, match="holds a character that cannot be sent") as caught:
        await api.call(call)

    assert f"{named} holds" in str(caught.value)
    assert not isinstance(caught.value, UnicodeError)
    assert api.requests == []


# --------------------------------------------------------------------------- the key never leaks


def assert_no_key(text: str, key: str = API_KEY) -> None:
    """Fail, showing where, if ``key`` (or a recognisable prefix of it) is in ``text``."""
    for needle in (key, key[:8]):
        at = text.find(needle)
        assert at < 0, f"the API key leaks here: ...{text[max(0, at - 160) : at + 40]!r}..."


async def test_the_key_is_not_in_the_clients_repr_or_str(api: Api) -> None:
    views = [
        api.client,
        api.client.for_org("org_abc"),
        api.client.with_options(max_retries=0),
    ]
    for client in views:
        assert_no_key(repr(client))
        assert_no_key(str(client))
        assert_no_key(repr(client.contacts))
        assert_no_key(repr(client.segments))
    assert_no_key(repr(api.client.contacts.list()))


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def full_report(exc: BaseException) -> str:
    """Everything a user (or an error tracker) could print about an exception: its message,
    repr and formatted traceback, and the repr and attributes of every chained exception."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.extend([str(current), repr(current), repr(vars(current))])
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


async def test_a_connection_error_and_its_causes_do_not_show_the_key(api: Api) -> None:
    other, close = await api.open_client(closed_port_url(), max_retries=0)
    try:
        with pytest.raises(APIConnectionError) as caught:
            await other.call(lambda c: c.contacts.get("ct_1"))
    finally:
        await close()

    assert caught.value.request_sent is False
    assert_no_key(full_report(caught.value))


@contextlib.asynccontextmanager
async def raw_http_server(reply: bytes) -> AsyncIterator[str]:
    """A loopback server that answers every request with ``reply`` bytes, then hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


MALFORMED_REPLIES = {
    "bad status line": b"HTTP/1.1 abc OK\r\n\r\n",
    "not http": b"garbage\r\n\r\n",
    "bad content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
    "bad chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "short body": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
}


@pytest.mark.parametrize("reply", list(MALFORMED_REPLIES.values()), ids=list(MALFORMED_REPLIES))
async def test_a_malformed_http_response_does_not_expose_the_key_through_the_error(
    api: Api, reply: bytes
) -> None:
    async with raw_http_server(reply) as url:
        other, close = await api.open_client(url, max_retries=0)
        try:
            with pytest.raises(APIConnectionError) as caught:
                await other.call(lambda c: c.segments.get("sg_1"))
        finally:
            await close()

    assert caught.value.path == "/orgs/c/segments/sg_1"
    assert_no_key(full_report(caught.value))


async def test_a_timeout_does_not_show_the_key(api: Api) -> None:
    api.fake.latency = 1.0

    with pytest.raises(APITimeoutError) as caught:
        await api.call(lambda c: c.with_options(timeout=0.2, max_retries=0).contacts.get("ct_1"))
    api.fake.latency = 0.0

    assert_no_key(full_report(caught.value))


async def test_a_rejected_key_is_not_shown_in_the_error(api: Api) -> None:
    # A mistyped key is still a secret: the 401 must not echo it back.
    wrong = "sk-live-0123456789abcdef"
    other, close = await api.open_client(api_key=wrong)
    try:
        with pytest.raises(AuthenticationError) as caught:
            await other.call(lambda c: c.segments.get("sg_1"))
    finally:
        await close()

    assert_no_key(full_report(caught.value), wrong)


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 404},
        {"status": 429, "retry_after": 1},
        {"status": 500, "body": "<html><body>oops</body></html>"},
        {"status": 200, "body": {"unexpected": True}},
    ],
    ids=["404", "429", "html-500", "bad-200"],
)
async def test_status_and_validation_errors_do_not_show_the_key(
    api: Api, fault: dict[str, Any]
) -> None:
    api.fake.fail_next(1, **fault)

    with pytest.raises(InventError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert_no_key(full_report(caught.value))


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.contacts.import_batch([ContactChannelOption(email="a@example.com")]),
        lambda c: c.contacts.create_chat("ct_1", "ch_1", message="hi"),
        lambda c: c.contacts.send_message("ct_1", "chat_1", "hi"),
        lambda c: c.broadcasts.create("Sale", send_to_all=True),
        lambda c: c.broadcasts.send_transactional("bc_1", email="a@example.com"),
    ],
    ids=["import_batch", "create_chat", "send_message", "broadcasts.create", "transactional"],
)
async def test_errors_of_the_creating_calls_do_not_show_the_key(
    api: Api, call: Callable[[AsyncInventClient], Any]
) -> None:
    api.fake.fail_next(1, status=500, body="<html>boom</html>")

    with pytest.raises(InventError) as caught:
        await api.call(call)

    assert_no_key(full_report(caught.value))
    assert [r.status for r in api.requests] == [500]  # not retried: it reached the server


async def test_debug_logs_never_contain_the_key(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(name="Jane")
    api.fake.fail_next(1, status=503)
    api.fake.drop_next(1)

    await api.call(lambda c: c.contacts.add_segment(contact.id, segment.id))
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.contacts.get("ct_missing"))
    await api.collect(lambda c: c.contacts.list())

    assert any(r.name == "invent_async" for r in caplog.records)  # retries were logged
    assert_no_key(caplog.text)
    for record in caplog.records:
        assert_no_key(repr(record.__dict__))


async def test_a_redirect_is_not_followed_so_the_key_stays_home(api: Api) -> None:
    seen_by_target: list[str | None] = []

    async def target(request: web.Request) -> web.Response:
        seen_by_target.append(request.headers.get("Authorization"))
        return web.json_response({})

    async with serve(target) as target_url:

        async def redirector(request: web.Request) -> web.Response:
            location = target_url + request.path
            return web.Response(status=307, headers={"Location": location})

        async with serve(redirector) as redirector_url:
            other, close = await api.open_client(redirector_url, max_retries=0)
            try:
                with pytest.raises(APIStatusError) as caught:
                    await other.call(lambda c: c.segments.get("sg_1"))
            finally:
                await close()

    assert caught.value.status == 307
    assert seen_by_target == []


async def test_a_key_with_surrounding_whitespace_still_works(api: Api) -> None:
    segment = api.fake.add_segment("VIP")

    other, close = await api.open_client(api_key=f"  {API_KEY}\n")
    try:
        got = await other.call(lambda c: c.segments.get(segment.id))
    finally:
        await close()

    assert got.id == segment.id


# --------------------------------------------------------------------------- construction


@pytest.fixture(params=["async", "sync"])
def client_kind(request: pytest.FixtureRequest) -> ClientKind:
    if request.param == "sync" and sync_client_class() is None:
        pytest.skip("invent_async.InventClient (the sync client) does not exist yet")
    kind: ClientKind = request.param
    return kind


def client_class(kind: ClientKind) -> type[Any]:
    cls = AsyncInventClient if kind == "async" else sync_client_class()
    assert isinstance(cls, type)
    return cls


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.useinvent.com",
        "http://10.0.0.5:8080",
        "http://192.168.1.1",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "ftp://127.0.0.1",
        "api.useinvent.com",
        "https://user:secret@api.useinvent.com",
        "https://api.useinvent.com?x=1",
    ],
)
def test_a_base_url_that_is_not_https_or_loopback_is_refused(
    client_kind: ClientKind, base_url: str
) -> None:
    with pytest.raises(ValueError) as caught:
        client_class(client_kind)(API_KEY, base_url=base_url)

    assert_no_key(str(caught.value))


@pytest.mark.parametrize(
    "base_url",
    [
        "https://exa mple.com",
        "https://\udc80.com",
        "https://bad..dots.com",
        "https://[::zz]",
        "https://x.com:99999",
    ],
    ids=["space", "surrogate", "empty label", "bad IPv6", "port out of range"],
)
def test_a_base_url_whose_host_cannot_be_a_host_is_refused(
    client_kind: ClientKind, base_url: str
) -> None:
    with pytest.raises(ValueError, match="base_url"):
        client_class(client_kind)(API_KEY, base_url=base_url)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("api_key", 12345), ("api_key", b"key"), ("base_url", 8080), ("base_url", b"https://x")],
    ids=repr,
)
def test_an_argument_of_the_wrong_type_is_a_type_error_naming_it(
    client_kind: ClientKind, argument: str, value: object
) -> None:
    arguments: dict[str, Any] = {"api_key": API_KEY, argument: value}

    with pytest.raises(TypeError, match=f"^{argument} must be a str, got {type(value).__name__}$"):
        client_class(client_kind)(**arguments)


PASSWORD = "hunter2-redis-pass"


def shown_with_locals(error: BaseException) -> str:
    """``error`` as a crash reporter capturing locals renders it (its chain included)."""
    return "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())


@pytest.mark.parametrize(
    "arguments",
    [
        {"base_url": "http://example.com"},
        {"base_url": "https://exa mple.com"},
        {"timeout": -1},
        {"org_id": " "},
        {"rate_limit": "500/min"},
        {"max_response_bytes": 0},
    ],
    ids=["http", "bad host", "timeout", "org_id", "rate_limit", "max_response_bytes"],
)
def test_a_refused_constructor_argument_leaves_no_frame_holding_the_key(
    client_kind: ClientKind, arguments: dict[str, Any]
) -> None:
    cls = client_class(client_kind)
    with pytest.raises((TypeError, ValueError)) as caught:
        cls(API_KEY, **arguments)

    shown = shown_with_locals(caught.value)
    assert str(caught.value) in shown  # rendered whole, with the reason
    assert_no_key(shown)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RateLimit(redis_url=f"redis://:{PASSWORD}@db.example.com:6379/0"),
        lambda: RateLimit(redis_url=f"redis://:{PASSWORD}@127.0.0.1:6379/0?foo=bar"),
        lambda: RateLimit(redis_url=f"redis://127.0.0.1:6379/0?password={PASSWORD}&db=x"),
        lambda: RateLimit(per_minute=5e-324, redis_url=f"redis://:{PASSWORD}@127.0.0.1:6379"),
        lambda: RateLimit(redis_url=f"redis://:{PASSWORD}@127.0.0.1:6379", shared=False),
        lambda: RateLimit(redis_url=f"redis://:{PASSWORD}@127.0.0.1:99999"),
    ],
    ids=["not TLS", "unknown option", "bad option", "rate", "not shared", "bad port"],
)
def test_a_refused_redis_url_leaves_no_frame_holding_its_password(
    make: Callable[[], RateLimit],
) -> None:
    with pytest.raises(ValueError, match=r"redis_url|per_minute") as caught:
        make()

    shown = shown_with_locals(caught.value)
    assert str(caught.value) in shown
    assert PASSWORD not in shown


def test_a_refused_redis_url_from_the_environment_leaves_no_frame_holding_it(
    client_kind: ClientKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVENT_REDIS_URL", f"redis://:{PASSWORD}@db.example.com:6379/0")
    with pytest.raises(ValueError, match="INVENT_REDIS_URL") as caught:
        client_class(client_kind)(API_KEY, base_url="http://127.0.0.1:9")

    shown = shown_with_locals(caught.value)
    assert PASSWORD not in shown
    assert_no_key(shown)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("?foo=bar", "'foo'"),
        ("?db=x", "db"),
        ("?socket_timeout=abc", "'socket_timeout' is set by the SDK"),
        ("?max_connections=500", "'max_connections' is set by the SDK"),
    ],
)
def test_a_redis_url_option_redis_py_would_refuse_is_refused_at_once(
    query: str, named: str
) -> None:
    with pytest.raises(ValueError, match=r"^redis_url: ") as caught:
        RateLimit(redis_url=f"redis://127.0.0.1:6379/0{query}")

    assert named in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://127.0.0.1:6379/0?password={PASSWORD}&db=2&client_name=app",
        "rediss://db.example.com:6380/0?ssl_cert_reqs=required&health_check_interval=10",
        "unix:///run/redis.sock?db=1",
    ],
)
def test_redis_url_options_redis_py_reads_are_accepted(url: str) -> None:
    assert RateLimit(redis_url=url).redis_url == url


@pytest.mark.parametrize(
    "limits",
    [
        {"per_minute": 5e-324},
        {"per_minute": 1e12},
        {"per_minute": 1, "burst": 10**12},
        {"interactive_share": 1e-300},
    ],
    ids=repr,
)
def test_limits_a_budget_on_redis_cannot_count_are_refused_at_once(
    limits: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="per_minute") as caught:
        RateLimit(redis_url="redis://127.0.0.1:6379/0", **limits)

    assert "Redis" in str(caught.value)


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:9", "http://127.1.2.3:9", "http://localhost:9", "http://[::1]:9"],
)
async def test_plain_http_is_accepted_for_loopback_hosts(
    client_kind: ClientKind, base_url: str
) -> None:
    _, close = await open_client(client_kind, base_url)
    await close()


async def test_the_key_comes_from_invent_api_key_when_not_given(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVENT_API_KEY", API_KEY)
    segment = api.fake.add_segment("VIP")

    other, close = await api.open_client(api_key=None)
    try:
        got = await other.call(lambda c: c.segments.get(segment.id))
    finally:
        await close()

    assert got.id == segment.id


async def test_an_explicit_key_wins_over_the_environment(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVENT_API_KEY", "some-other-key")
    segment = api.fake.add_segment("VIP")

    other, close = await api.open_client(api_key=API_KEY)
    try:
        got = await other.call(lambda c: c.segments.get(segment.id))
    finally:
        await close()

    assert got.id == segment.id


@pytest.mark.parametrize("key", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_no_api_key_at_all_is_refused(
    client_kind: ClientKind, key: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INVENT_API_KEY", raising=False)

    with pytest.raises(ValueError, match="INVENT_API_KEY"):
        client_class(client_kind)(key, base_url="http://127.0.0.1:9")
