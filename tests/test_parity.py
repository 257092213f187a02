"""Parity of the sync client with the async one: the same surface, the same behaviour.

- Surface: every public method of every async resource group, and of the client itself, has a
  sync twin with the same name, parameters, defaults and docstring; result types map by a
  rule written here independently of the generator (``AsyncPager[T]`` -> ``Pager[T]``, ...).
- Behaviour: one representative test per result shape and failure path, each run through
  both clients by the ``api`` fixture (``_harness``), parametrised, never copied. The
  endpoint-by-endpoint, error, retry and paging suites (``test_client_*.py``,
  ``test_pagination.py``) run through both clients the same way.
"""

from __future__ import annotations

import inspect
import re
import socket
from collections.abc import Callable
from typing import Any, cast

import anyio.to_thread
import pytest
from _harness import Api, api_fixture  # noqa: F401

from invent_async import (
    APIConnectionError,
    AsyncInventClient,
    Contact,
    GovernorStats,
    InternalServerError,
    InventClient,
    ItemResult,
    MergeResult,
    NotFoundError,
    Outcome,
    Page,
)
from invent_async._codegen import discover_targets
from invent_async._codegen._members import sync_docstring
from invent_async._sync import _generated

RESULT_RULES: list[tuple[str, str]] = [
    (r"^AsyncPager\[(.+)\]$", r"Pager[\1]"),
    (r"^(?:AsyncIterator|AsyncGenerator)\[([^,]+)(?:, .+)?\]$", r"SyncIterator[\1]"),
    (
        r"^(?:AbstractAsyncContextManager|AsyncContextManager)\[(.+)\]$",
        r"AbstractContextManager[\1]",
    ),
    (r"^Awaitable\[(.+)\]$", r"\1"),
    (r"^BulkStream$", "SyncBulkStream"),
]
"""How a result annotation of an async method reads on its sync twin (else: unchanged)."""

CLIENT_RENAMES = {"aclose": "close"}
CALLBACK_RULE = (r"Callable\[\[Self\], Awaitable\[(\w+)\]\]", r"Callable[[Self], \1]")
"""A client method taking a function of the client (``with_raw_response``): the async one
awaits what it returns, the sync one gets the result itself."""


def sync_result(annotation: str) -> str:
    for pattern, replacement in RESULT_RULES:
        if re.match(pattern, annotation):
            return re.sub(pattern, replacement, annotation)
    return annotation


def resource_methods() -> list[tuple[str, type, type, str]]:
    found = []
    for target in discover_targets():
        sync_cls = getattr(_generated, target.sync_name)
        for name in dir(target.async_cls):
            if not name.startswith("_") and callable(getattr(target.async_cls, name)):
                found.append((target.attr, target.async_cls, sync_cls, name))
    return found


def params(fn: Callable[..., Any], drop: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    return [
        (p.name, p.kind, p.default, p.annotation)
        for p in inspect.signature(fn).parameters.values()
        if p.name not in drop
    ]


# ---------------------------------------------------------------------- surface


@pytest.mark.parametrize(
    ("attr", "async_cls", "sync_cls", "name"),
    resource_methods(),
    ids=[f"{attr}.{name}" for attr, _, _, name in resource_methods()],
)
def test_every_async_resource_method_has_a_sync_twin(
    attr: str, async_cls: type, sync_cls: type, name: str
) -> None:
    async_fn = getattr(async_cls, name)
    sync_fn = getattr(sync_cls, name, None)

    assert sync_fn is not None, f"client.{attr}.{name} has no sync twin"
    assert not inspect.iscoroutinefunction(sync_fn)
    assert params(sync_fn) == params(async_fn)
    async_result = inspect.signature(async_fn).return_annotation
    assert inspect.signature(sync_fn).return_annotation == sync_result(async_result)
    assert sync_fn.__doc__ == sync_docstring(async_fn.__doc__ or "")


def test_every_async_resource_group_has_a_sync_twin_on_the_client() -> None:
    for target in discover_targets():
        twin = getattr(_generated, target.sync_name)
        assert InventClient.__annotations__[target.attr] == twin.__name__  # generated
        assert InventClient is _generated.InventClient
        assert twin.__doc__ == sync_docstring(target.async_cls.__doc__ or "")


def test_the_client_has_the_async_clients_public_surface() -> None:
    async_names = {n for n in dir(AsyncInventClient) if not n.startswith("_")}
    sync_names = {n for n in dir(InventClient) if not n.startswith("_")}

    assert {CLIENT_RENAMES.get(n, n) for n in async_names} == sync_names
    assert callable(InventClient.__enter__)
    assert callable(InventClient.__exit__)


def test_the_client_takes_the_async_clients_arguments_except_session_and_transport() -> None:
    assert params(InventClient.__init__) == params(
        AsyncInventClient.__init__, drop=("session", "transport")
    )


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n in dir(AsyncInventClient)
        if not n.startswith("_") and n not in CLIENT_RENAMES and n not in ("contacts", "segments")
    ),
)
def test_shared_client_members_have_the_same_signature_and_docstring(name: str) -> None:
    async_member = inspect.getattr_static(AsyncInventClient, name)
    sync_member = inspect.getattr_static(InventClient, name)

    assert type(sync_member) is type(async_member)
    async_doc = (async_member.__doc__ or "").replace(":meth:`aclose`", ":meth:`close`")
    assert sync_member.__doc__ == async_doc
    if callable(async_member):
        expected = [
            (*p[:3], re.sub(*CALLBACK_RULE, p[3]) if isinstance(p[3], str) else p[3])
            for p in params(async_member)
        ]
        assert params(sync_member) == expected
        assert not inspect.iscoroutinefunction(sync_member)


# ---------------------------------------------------------------------- behaviour, both clients


async def test_a_call_returns_the_same_model(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(name="Jane")

    result = await api.call(lambda c: c.contacts.add_segment(contact.id, segment.id))

    assert isinstance(result, Contact)
    assert result == api.fake.contact(contact.id)


async def test_a_call_without_a_result_returns_none(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")

    result = await api.call(lambda c: c.contacts.delete(contact.id))  # type: ignore[func-returns-value]

    assert result is None
    assert contact.id not in api.fake.contact_ids()


async def test_a_call_with_a_result_model_returns_it(api: Api) -> None:
    primary = api.fake.add_contact(name="Jane")
    duplicate = api.fake.add_contact(name="Jane D.")

    result = await api.call(lambda c: c.contacts.merge(primary.id, [duplicate.id]))

    assert isinstance(result, MergeResult)
    assert api.fake.contact_ids() == [primary.id]


async def test_an_error_status_raises_the_same_class_with_its_details(api: Api) -> None:
    with pytest.raises(NotFoundError) as caught:
        await api.call(lambda c: c.contacts.get("ct_nope"))

    assert (caught.value.status, caught.value.method) == (404, "GET")
    assert caught.value.path.endswith("/contacts/ct_nope")


async def test_a_transient_failure_is_retried_into_a_success(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")
    api.fake.fail_next(1, status=503)

    result = await api.call(lambda c: c.contacts.get(contact.id))

    assert result.id == contact.id
    assert [r.status for r in api.requests] == [503, 200]


async def test_a_creating_call_is_not_retried_after_a_503(api: Api) -> None:
    api.fake.fail_next(1, status=503)

    with pytest.raises(InternalServerError):
        await api.call(lambda c: c.contacts.create(name="Jane", email="jane@example.com"))

    assert [r.status for r in api.requests] == [503]


async def test_a_refused_connection_is_a_connection_error_not_sent(api: Api) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    other, close = await api.open_client(url, max_retries=0)
    try:
        with pytest.raises(APIConnectionError) as caught:
            await other.call(lambda c: c.segments.list().first_page())
    finally:
        await close()

    assert caught.value.request_sent is False


async def test_invalid_arguments_fail_before_any_request(api: Api) -> None:
    with pytest.raises(ValueError, match="at least one"):
        await api.call(lambda c: c.contacts.update("ct_1"))

    assert api.requests == []


async def test_a_listing_walks_every_page_of_items(api: Api) -> None:
    ids = api.fake.add_contacts(250)

    contacts = await api.collect(lambda c: c.contacts.list(take=100))
    pages = await api.pages(lambda c: c.contacts.list(take=100))

    assert [c.id for c in contacts] == ids
    assert [(len(p.items), p.page, p.has_next, p.count) for p in pages] == [
        (100, 1, True, 250),
        (100, 2, True, 250),
        (50, 3, False, 250),
    ]


async def test_the_first_page_alone_is_one_request(api: Api) -> None:
    api.fake.add_contacts(30)

    page = await api.first_page(lambda c: c.contacts.list(take=10))

    assert isinstance(page, Page)
    assert (len(page.items), page.has_next) == (10, True)
    assert len(api.requests) == 1


async def test_collect_gathers_every_item_in_one_call(api: Api) -> None:
    ids = api.fake.add_contacts(120)

    contacts = await api.call(lambda c: c.contacts.list(take=50).collect())

    assert [c.id for c in contacts] == ids


async def test_a_view_for_an_unknown_org_is_not_found(api: Api) -> None:
    with pytest.raises(NotFoundError):
        await api.call(lambda c: c.for_org("nowhere").segments.list().first_page())


async def test_a_bulk_job_reports_every_item(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    ids = api.fake.add_contacts(20)
    fast, close = await api.open_client(rate_limit=None)
    try:
        report = await fast.call(
            lambda c: c.contacts.bulk_add_segment([*ids, "ct_nope"], segment.id, concurrency=4)
        )
    finally:
        await close()

    assert (report.total, report.succeeded, report.failed) == (21, 20, 1)
    assert report.failed_ids == ("ct_nope",)
    assert sorted(api.fake.segment_members(segment.id)) == sorted(ids)


async def test_a_bulk_stream_yields_each_items_result(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    ids = api.fake.add_contacts(3)

    results = await drain(api, lambda c: c.contacts.stream_add_segment(ids, segment.id))

    assert sorted(r.contact_id for r in results) == sorted(ids)
    assert {r.outcome for r in results} == {Outcome.SUCCEEDED}


async def test_the_rate_governors_stats_are_readable(api: Api) -> None:
    await api.call(lambda c: c.segments.list().first_page())

    stats = await api.call(cast(Any, lambda c: c.rate_limit_stats()))  # not a coroutine

    assert isinstance(stats, GovernorStats)
    assert stats.acquired == 1


async def drain(api: Api, open_stream: Callable[[Any], Any]) -> list[ItemResult]:
    """Every result of a bulk stream, read inside its ``(async) with`` block."""
    if api.kind == "async":
        async with open_stream(api.client) as stream:
            return [result async for result in stream]

    def read() -> list[ItemResult]:
        with open_stream(api.client) as stream:
            return list(stream)

    return await anyio.to_thread.run_sync(read)
