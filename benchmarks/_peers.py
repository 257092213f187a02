"""What users would write without the SDK, for the benchmarks to compare with in the same run.

- ``raw_dicts``: aiohttp + ``orjson.loads`` (the least a correct client does);
- ``raw_pydantic``: aiohttp + pydantic v2 ``model_validate_json`` into :class:`PContact`, a
  frozen model equivalent to the SDK's ``Contact`` (open enums, aware datetimes, tuples);
- ``httpx_dicts``: httpx's ``AsyncClient`` + ``orjson.loads``;
- ``sdk``: ``AsyncInventClient.contacts.add_segment`` (rate governor off: pacing at
  500/minute would measure the API's limit instead of the client).

Each opener yields ``call(i)``: ``POST /orgs/c/contacts/ct_{i}/segments/sg_1``.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiohttp
import httpx
import orjson
from pydantic import BaseModel, ConfigDict

from benchmarks._interleave import Call
from benchmarks._server import API_KEY, CONTACT
from invent_async import AsyncInventClient, ChannelType, Contact, SegmentColor

HEADERS = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PSegment(_Frozen):
    id: str
    name: str
    color: SegmentColor | str | None = None
    contacts_count: int = 0
    created_at: datetime
    updated_at: datetime


class PChannel(_Frozen):
    id: str
    type: ChannelType | str
    user_id: str
    avatar: str | None = None
    name: str | None = None
    username: str | None = None
    email: str | None = None
    phone: str | None = None
    country: str | None = None
    agent: str | None = None
    ip: str | None = None
    language: str | None = None
    platform_data: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    link: str | None = None


class PContact(_Frozen):
    """The SDK's ``Contact`` as a frozen pydantic v2 model."""

    id: str
    name: str | None
    blocked: bool
    is_admin: bool
    channels: tuple[PChannel, ...]
    segments: tuple[PSegment, ...]
    created_at: datetime
    updated_at: datetime
    unsubscribed: bool | None = None
    blocked_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    unsubscribe_reason: str | None = None
    unsubscribe_feedback: str | None = None


def big_contact(n: int = 10) -> dict[str, Any]:
    """The benchmark contact with ``n`` channels and ``n`` segments."""
    contact: dict[str, Any] = copy.deepcopy(dict(CONTACT))
    channel, segment = contact["channels"][0], contact["segments"][0]
    contact["channels"] = [{**channel, "id": f"ch_{i}"} for i in range(n)]
    contact["segments"] = [{**segment, "id": f"sg_{i}"} for i in range(n)]
    return contact


SEED_BYTES = orjson.dumps(CONTACT)
BIG_BYTES = orjson.dumps(big_contact())
PAGE_BYTES = orjson.dumps([CONTACT] * 100)


def _path(i: int) -> str:
    return f"/orgs/c/contacts/ct_{i}/segments/sg_1"


def raw_dicts(url: str) -> Any:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        connector = aiohttp.TCPConnector()  # aiohttp's default limit (100), as the SDK
        async with aiohttp.ClientSession(connector=connector) as session:

            async def call(i: int) -> object:
                async with session.post(url + _path(i), headers=HEADERS) as r:
                    data = orjson.loads(await r.read())
                    assert r.status == 200
                    return data

            yield call

    return opened


def raw_pydantic(url: str) -> Any:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        connector = aiohttp.TCPConnector()  # aiohttp's default limit (100), as the SDK
        async with aiohttp.ClientSession(connector=connector) as session:

            async def call(i: int) -> object:
                async with session.post(url + _path(i), headers=HEADERS) as r:
                    contact = PContact.model_validate_json(await r.read())
                    assert r.status == 200
                    return contact

            yield call

    return opened


def httpx_dicts(url: str) -> Any:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(limits=limits) as client:

            async def call(i: int) -> object:
                r = await client.post(url + _path(i), headers=HEADERS)
                assert r.status_code == 200
                return orjson.loads(r.content)

            yield call

    return opened


def sdk(url: str) -> Any:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        async with AsyncInventClient(API_KEY, base_url=url, rate_limit=None) as client:
            add_segment = client.contacts.add_segment

            async def call(i: int) -> object:
                contact = await add_segment(f"ct_{i}", "sg_1")
                assert isinstance(contact, Contact)
                return contact

            yield call

    return opened
