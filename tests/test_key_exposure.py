"""The API key, hunted the way an attacker or a careless crash reporter would find it.

For every kind of error either client raises, the key must not appear in: the traceback
rendered with every frame's locals (``traceback.TracebackException(capture_locals=True)``,
what ``pytest -l`` and crash reporters that capture locals see), rich's traceback with
locals, or the pickled bytes of the error and of every exception chained to it. Also: the
SDK's objects hold the key only inside its redacting wrappers, a server or proxy that echoes
the request headers does not get the key into the error, and a malformed key is refused at
construction without being shown.
"""

from __future__ import annotations

import asyncio
import io
import json
import pickle
import socket
import tempfile
import threading
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from _harness import API_KEY, Api, api_fixture, serve  # noqa: F401
from aiohttp import web
from rich.console import Console
from rich.traceback import Traceback

import invent_async
from invent_async import AsyncInventClient, InventError, RateLimit
from invent_async._protocol import Headers
from invent_async._secret import Secret

Scenario = Callable[[Api], Awaitable[Any]]


def count_key(exc: BaseException, key: str = API_KEY) -> dict[str, int]:
    """How often ``key`` shows in each rendering of ``exc`` and of its chain."""
    rendered = "".join(
        traceback.TracebackException.from_exception(exc, capture_locals=True).format()
    )
    console = Console(file=io.StringIO(), width=240, color_system=None)
    console.print(Traceback.from_exception(type(exc), exc, exc.__traceback__, show_locals=True))
    pickled = b""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        pickled += pickle.dumps(current)
        current = current.__cause__ or current.__context__
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return {
        "capture_locals": rendered.count(key),
        "rich": text.count(key),
        "pickle": pickled.count(key.encode()),
    }


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def echo_headers(request: web.Request) -> web.StreamResponse:
    """A proxy gone wrong: it answers with the request's headers, in the body and headers."""
    echoed = dict(request.headers)
    # The options ride in the segment id ("sg_1?status=400&text=1"), which arrives
    # percent-encoded as one path segment: they are read back from the decoded path.
    query = {k: v[0] for k, v in parse_qs(request.path.rpartition("?")[2]).items()}
    status = int(query.get("status", "500"))
    headers = {"X-Echo-Authorization": request.headers.get("Authorization", "")}
    if "pad" in query:  # the key straddles where a 1 KiB limit cuts the body
        text = (
            f"Bearer {API_KEY} " * int(query.get("many", "0"))
            + "y" * int(query["pad"])
            + "Authorization: "
            + headers["X-Echo-Authorization"]
        )
        return web.Response(status=status, text=text)
    if query.get("escape"):  # JSON that spells every character as \uXXXX
        spelled = "".join(f"\\u{ord(char):04x}" for char in request.headers["Authorization"])
        body = f'{{"message": "echo", "authorization": "{spelled}"}}'
        return web.Response(status=status, text=body, content_type="application/json")
    if query.get("text"):
        return web.Response(status=status, text=repr(echoed), headers=headers)
    return web.json_response({"message": "echo", "request": echoed}, status=status, headers=headers)


async def on(api: Api, url: str, call: Scenario, **options: Any) -> Any:
    other, close = await api.open_client(url, **options)
    try:
        return await call(other)
    finally:
        await close()


def get_segment(api: Api) -> Awaitable[Any]:
    return api.call(lambda c: c.segments.get("sg_1"))


async def refused(api: Api) -> Any:
    return await on(api, closed_port(), get_segment, max_retries=0)


async def reset(api: Api) -> Any:
    api.fake.drop_next(1)
    return await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))


async def timed_out(api: Api) -> Any:
    api.fake.delay_next(1, 2.0)
    return await api.call(lambda c: c.with_options(timeout=0.1, max_retries=0).segments.get("x"))


async def deadline(api: Api) -> Any:
    api.fake.delay_next(3, 2.0)
    return await api.call(lambda c: c.with_options(timeout=None, deadline=0.2).segments.get("x"))


async def governor_deadline(api: Api) -> Any:
    slow = RateLimit(per_minute=1, burst=1, shared=False)  # beside the fixture's client
    return await on(
        api,
        api.fake.url,
        lambda o: o.call(lambda c: asyncio.gather(*(c.segments.get("x") for _ in range(2)))),
        rate_limit=slow,
        deadline=1,
    )


def status(code: int, **fault: Any) -> Scenario:
    async def scenario(api: Api) -> Any:
        api.fake.fail_next(1, code, **fault)
        return await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    return scenario


async def invalid_body(api: Api) -> Any:
    api.fake.fail_next(1, 200, body={"unexpected": True})
    return await get_segment(api)


async def too_large(api: Api) -> Any:
    api.fake.add_segment("VIP " * 100)
    return await on(
        api, api.fake.url, lambda o: o.collect(lambda c: c.segments.list()), max_response_bytes=64
    )


def echoed(query: str, **options: Any) -> Scenario:
    async def scenario(api: Api) -> Any:
        async with serve(echo_headers) as url:
            return await on(
                api,
                url,
                lambda o: o.call(lambda c: c.segments.get(f"sg_1?{query}")),
                max_retries=0,
                **options,
            )

    return scenario


async def closed(api: Api) -> Any:
    other, close = await api.open_client()
    await close()
    return await get_segment(other)


async def wrong_place(api: Api) -> Any:
    """The async client from another event loop; the sync client from its own loop thread."""
    if api.kind == "async":
        await get_segment(api)  # binds the client to this loop
        failure: list[BaseException] = []

        def elsewhere() -> None:
            try:
                asyncio.run(api.client.segments.get("sg_1"))
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(10)
        raise failure[0]
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(name="Jane")

    def progress(_: object) -> None:
        api.client.segments.get(segment.id)

    report = await api.call(
        lambda c: c.contacts.bulk_add_segment([contact.id], segment.id, on_progress=progress)
    )
    raise report.failures[0].error if report.failures else AssertionError(report)


async def bulk_aborted(api: Api) -> Any:
    segment = api.fake.add_segment("VIP")
    api.fake.fail_next(1, 401)
    return await api.call(lambda c: c.contacts.bulk_add_segment(["ct_1", "ct_2"], segment.id))


async def malformed(api: Api) -> Any:
    """A server that answers garbage instead of HTTP (aiohttp quotes what it got)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 abc OK\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return await on(api, url, get_segment, max_retries=0)
    finally:
        server.close()
        await server.wait_closed()


async def bad_journal(api: Api) -> Any:
    segment = api.fake.add_segment("VIP")
    with tempfile.TemporaryDirectory() as folder:
        journal = Path(folder) / "done.txt"
        journal.write_bytes(b"ct_1\n\xff\xfe\n")
        return await api.call(
            lambda c: c.contacts.bulk_add_segment(["ct_1"], segment.id, journal=journal)
        )


async def bad_argument(api: Api) -> Any:
    return await api.call(lambda c: c.contacts.get(""))


SCENARIOS: dict[str, Scenario] = {
    "connection refused": refused,
    "connection reset": reset,
    "attempt timeout": timed_out,
    "call deadline": deadline,
    "governor deadline": governor_deadline,
    **{str(code): status(code) for code in (400, 401, 403, 404, 409, 422, 500, 503, 418)},
    "429": status(429, retry_after=1),
    "html 502": status(502, body="<html><body>Bad gateway</body></html>"),
    "invalid 200": invalid_body,
    "too large": too_large,
    "echoed json 500": echoed("status=500"),
    "echoed text 400": echoed("status=400&text=1"),
    "echoed 200": echoed("status=200&text=1"),
    "echoed escaped 500": echoed("status=500&escape=1"),
    "echoed cut 500": echoed("status=500&pad=535&many=20", max_response_bytes=1024),
    "closed client": closed,
    "wrong loop or thread": wrong_place,
    "bulk aborted": bulk_aborted,
    "malformed http": malformed,
    "bad journal": bad_journal,
    "bad argument": bad_argument,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
async def test_no_error_shows_the_key_with_locals_captured_or_pickled(
    api: Api, scenario: Scenario
) -> None:
    with pytest.raises((InventError, ValueError)) as caught:
        await scenario(api)

    assert count_key(caught.value) == {"capture_locals": 0, "rich": 0, "pickle": 0}


async def test_an_echoed_key_is_redacted_from_the_errors_body_and_headers(api: Api) -> None:
    with pytest.raises(invent_async.InternalServerError) as caught:
        await echoed("status=500")(api)

    error = caught.value
    assert error.body["request"]["Authorization"] == "Bearer <redacted>"
    assert error.headers["X-Echo-Authorization"] == "Bearer <redacted>"
    assert API_KEY not in str(error) + json.dumps(error.body) + repr(dict(error.headers))


async def test_a_key_spelled_in_json_escapes_is_redacted_too(api: Api) -> None:
    with pytest.raises(invent_async.InternalServerError) as caught:
        await echoed("status=500&escape=1")(api)

    assert caught.value.body == {"message": "echo", "authorization": "Bearer <redacted>"}


@pytest.mark.parametrize("query", ["pad=995", "pad=535&many=20"], ids=["one key", "21 keys"])
async def test_a_key_cut_by_the_body_limit_leaves_no_beginning_behind(api: Api, query: str) -> None:
    with pytest.raises(invent_async.InternalServerError) as caught:
        await echoed(f"status=500&{query}", max_response_bytes=1024)(api)

    body = caught.value.body
    assert isinstance(body, str)
    assert body.endswith("Authorization: Bearer ")  # the cut key is gone, every character
    assert API_KEY not in body


def walk_for_key(root: object, key: str = API_KEY) -> list[str]:
    """Paths from ``root`` to a plain string holding ``key``, through the SDK's objects and
    plain containers, stopping at its redacting wrappers (:class:`Secret`, :class:`Headers`)
    and at objects that are not the SDK's (aiohttp's session, the event loop)."""
    found: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [("client", root)]
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen or isinstance(obj, Secret | Headers):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            if key in obj:
                found.append(path)
        elif isinstance(obj, dict):
            stack.extend((f"{path}[{k!r}]", v) for k, v in obj.items())
            stack.extend((f"{path}.keys()", k) for k in obj)
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(obj))
        elif type(obj).__module__.startswith("invent_async"):
            names = list(getattr(obj, "__dict__", {}))
            for cls in type(obj).__mro__:
                names.extend(getattr(cls, "__slots__", ()))
            for name in names:
                if hasattr(obj, name):
                    stack.append((f"{path}.{name}", getattr(obj, name)))
    return found


async def test_the_clients_objects_hold_the_key_only_in_redacting_wrappers(api: Api) -> None:
    api.fake.add_segment("VIP")
    await api.collect(lambda c: c.segments.list())  # a used client: session, governor, ...

    assert walk_for_key(api.client) == []
    assert walk_for_key(api.client.for_org("org_b").with_options(max_retries=0)) == []


@pytest.mark.parametrize(
    "bad", ["sk\r\nX-Injected: 1", "sk\x00live", "sk live", "sk\tlive", "sk-é", "sk\x7f"]
)
def test_a_malformed_key_is_refused_at_construction_without_showing_it(bad: str) -> None:
    for client_class in (AsyncInventClient, invent_async.InventClient):
        with pytest.raises(ValueError, match="the API key has") as caught:
            client_class(bad)
        assert bad not in str(caught.value)
        assert "sk" not in str(caught.value).replace("check", "")
