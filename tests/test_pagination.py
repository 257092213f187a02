"""Paging through the clients: every list method walks all pages, one request per page.

Runs through both clients (``api``); the pager's own logic is also covered without I/O in
``test_protocol.py`` (``has_next_page``, header parsing).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from _harness import Api, api_fixture  # noqa: F401

from invent_async import AsyncInventClient, AsyncPager, BadRequestError


def page_queries(api: Api) -> list[tuple[str, str]]:
    """``(page, take)`` of every recorded request."""
    return [(r.params.get("page", ""), r.params.get("take", "")) for r in api.requests]


async def test_listing_walks_every_page_once_in_order(api: Api) -> None:
    ids = api.fake.add_contacts(250)

    contacts = await api.collect(lambda c: c.contacts.list(take=100))

    assert [c.id for c in contacts] == ids
    assert page_queries(api) == [("1", "100"), ("2", "100"), ("3", "100")]


async def test_the_default_page_size_is_the_apis_maximum(api: Api) -> None:
    ids = api.fake.add_contacts(150)

    contacts = await api.collect(lambda c: c.contacts.list())

    assert [c.id for c in contacts] == ids
    assert page_queries(api) == [("1", "100"), ("2", "100")]


async def test_a_full_last_page_does_not_cost_an_empty_request(api: Api) -> None:
    ids = api.fake.add_contacts(20)

    contacts = await api.collect(lambda c: c.contacts.list(take=10))

    assert [c.id for c in contacts] == ids
    assert page_queries(api) == [("1", "10"), ("2", "10")]


async def test_pages_give_items_and_the_pagination_headers(api: Api) -> None:
    ids = api.fake.add_contacts(25)

    pages = await api.pages(lambda c: c.contacts.list(take=10))

    assert [[c.id for c in p.items] for p in pages] == [ids[:10], ids[10:20], ids[20:]]
    assert [(p.page, p.take) for p in pages] == [(1, 10), (2, 10), (3, 10)]
    assert [(p.count, p.server_page, p.server_take) for p in pages] == [
        (25, 1, 10),
        (25, 2, 10),
        (25, 3, 10),
    ]
    assert [p.has_next for p in pages] == [True, True, False]


async def test_first_page_fetches_only_one_page(api: Api) -> None:
    ids = api.fake.add_contacts(30)

    page = await api.first_page(lambda c: c.contacts.list(take=10))

    assert [c.id for c in page.items] == ids[:10]
    assert (page.count, page.has_next) == (30, True)
    assert len(api.requests) == 1


async def test_listing_can_start_at_a_later_page(api: Api) -> None:
    ids = api.fake.add_contacts(25)

    contacts = await api.collect(lambda c: c.contacts.list(take=10, page=2))

    assert [c.id for c in contacts] == ids[10:]
    assert page_queries(api) == [("2", "10"), ("3", "10")]


async def test_an_empty_result_is_one_request_and_no_items(api: Api) -> None:
    api.fake.add_contacts(3)

    contacts = await api.collect(lambda c: c.contacts.list(search="nobody"))
    pages = await api.pages(lambda c: c.contacts.list(search="nobody"))

    assert contacts == []
    assert [(p.items, p.count, p.has_next) for p in pages] == [((), 0, False)]
    assert len(api.requests) == 2


async def test_iterating_a_pager_twice_starts_again_at_the_first_page(api: Api) -> None:
    ids = api.fake.add_contacts(15)
    pager = await api.pager(lambda c: c.contacts.list(take=10))

    first = await api.items(pager)
    second = await api.items(pager)

    assert [c.id for c in first] == [c.id for c in second] == ids
    assert page_queries(api) == [("1", "10"), ("2", "10")] * 2


async def test_a_pager_reflects_changes_made_between_walks(api: Api) -> None:
    api.fake.add_contacts(3)
    pager = await api.pager(lambda c: c.contacts.list())

    before = await api.items(pager)
    api.fake.add_contacts(2)
    after = await api.items(pager)

    assert (len(before), len(after)) == (3, 5)


async def test_creating_a_pager_sends_nothing(api: Api) -> None:
    api.fake.add_contacts(3)

    await api.pager(lambda c: c.contacts.list())
    await api.pager(lambda c: c.segments.list())

    assert api.requests == []


BAD_PAGING: list[tuple[str, Callable[[AsyncInventClient], AsyncPager[Any]]]] = [
    ("contacts.list take=0", lambda c: c.contacts.list(take=0)),
    ("contacts.list take=101", lambda c: c.contacts.list(take=101)),
    ("contacts.list take=-1", lambda c: c.contacts.list(take=-1)),
    ("contacts.list page=0", lambda c: c.contacts.list(page=0)),
    ("contacts.list take=True", lambda c: c.contacts.list(take=True)),
    ("segments.list take=101", lambda c: c.segments.list(take=101)),
    ("list_segments take=0", lambda c: c.contacts.list_segments("ct_1", take=0)),
    ("list_notes take=101", lambda c: c.contacts.list_notes("ct_1", take=101)),
    ("list_fields page=0", lambda c: c.contacts.list_fields(page=0)),
]


@pytest.mark.parametrize("make", [m for _, m in BAD_PAGING], ids=[n for n, _ in BAD_PAGING])
async def test_bad_page_or_take_fails_before_any_request(
    api: Api, make: Callable[[AsyncInventClient], AsyncPager[Any]]
) -> None:
    with pytest.raises(ValueError):
        await api.collect(make)

    assert api.requests == []


async def test_the_apis_maximum_page_size_is_accepted(api: Api) -> None:
    ids = api.fake.add_contacts(101)

    contacts = await api.collect(lambda c: c.contacts.list(take=100))

    assert len(contacts) == len(ids)


async def test_filters_are_sent_on_every_page(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    ids = api.fake.add_contacts(12, segment_ids=[segment.id])
    api.fake.add_contacts(5)

    contacts = await api.collect(lambda c: c.contacts.list(segment_id=segment.id, take=5))

    assert [c.id for c in contacts] == ids
    assert [r.params.get("segment_id") for r in api.requests] == [segment.id] * 3


async def test_segments_list_pages(api: Api) -> None:
    ids = [api.fake.add_segment(f"Segment {i}").id for i in range(7)]

    segments = await api.collect(lambda c: c.segments.list(take=3))

    assert [s.id for s in segments] == ids
    assert page_queries(api) == [("1", "3"), ("2", "3"), ("3", "3")]


async def test_list_segments_of_a_contact_pages(api: Api) -> None:
    ids = [api.fake.add_segment(f"Segment {i}").id for i in range(5)]
    contact = api.fake.add_contact(name="Jane", segment_ids=ids)

    segments = await api.collect(lambda c: c.contacts.list_segments(contact.id, take=2))

    assert [s.id for s in segments] == ids
    assert page_queries(api) == [("1", "2"), ("2", "2"), ("3", "2")]


async def test_list_notes_pages(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")
    for i in range(5):
        api.fake.add_note(contact.id, f"note {i}")

    notes = await api.collect(lambda c: c.contacts.list_notes(contact.id, take=2))

    assert [n.content for n in notes] == [f"note {i}" for i in range(5)]
    assert page_queries(api) == [("1", "2"), ("2", "2"), ("3", "2")]


async def test_list_fields_pages(api: Api) -> None:
    for key in ("tier", "region", "source"):
        api.fake.add_field(key)

    fields = await api.collect(lambda c: c.contacts.list_fields(take=2))

    assert [f.key for f in fields] == ["contract", "company", "tier", "region", "source"]
    assert page_queries(api) == [("1", "2"), ("2", "2"), ("3", "2")]


async def test_an_error_on_a_later_page_surfaces_from_the_iteration(api: Api) -> None:
    api.fake.add_contacts(15)
    arrivals = itertools.count()
    api.fake.fail_next(1, status=400, match=lambda method, path: next(arrivals) == 1)

    with pytest.raises(BadRequestError):
        await api.collect(lambda c: c.contacts.list(take=10))

    assert page_queries(api) == [("1", "10"), ("2", "10")]
