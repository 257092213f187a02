"""``retry_after_header``: a web app's 503 ``Retry-After`` for a call the budget could not serve.

End to end against FakeInvent: the errors a client raises when the rate budget cannot serve a
call in time (the governor refuses it for its deadline; the API answered 429) give a header
value in whole seconds, rounded up, at least 1; every other error gives None. The web recipes
that use it run as real servers in ``test_web_recipes.py``.
"""

from __future__ import annotations

import math

import pytest

from invent_async import (
    APITimeoutError,
    AsyncInventClient,
    NotFoundError,
    RateLimit,
    RateLimitError,
    retry_after_header,
)
from invent_async.testing import FakeInvent

API_KEY = "web-key"


async def test_a_call_the_governor_refuses_for_its_deadline_says_how_long_to_wait() -> None:
    limit = RateLimit(per_minute=6, burst=1, shared=False)  # one request every ~10.2 s
    async with (
        FakeInvent(api_key=API_KEY) as fake,
        AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit, deadline=1) as client,
    ):
        await client.contacts.get(fake.add_contacts(1)[0])
        with pytest.raises(APITimeoutError) as refused:
            await client.contacts.get("ct_any")

    assert refused.value.deadline_exceeded
    assert refused.value.retry_after is not None
    header = retry_after_header(refused.value)
    assert header == str(math.ceil(refused.value.retry_after))
    assert int(header) >= 10
    assert len(fake.requests) == 1  # the refused call was not sent


@pytest.mark.parametrize(("sent", "header"), [(30, "30"), (0.2, "1"), (None, "1")])
async def test_a_429_the_call_could_not_wait_out_gives_the_apis_retry_after(
    sent: float | None, header: str
) -> None:
    async with (
        FakeInvent(api_key=API_KEY) as fake,
        AsyncInventClient(API_KEY, base_url=fake.url, max_retries=0, rate_limit=None) as client,
    ):
        fake.fail_next(1, status=429, retry_after=sent)
        with pytest.raises(RateLimitError) as limited:
            await client.contacts.get("ct_any")

    assert retry_after_header(limited.value) == header


async def test_errors_that_are_not_about_the_budget_give_none() -> None:
    async with FakeInvent(api_key=API_KEY, latency=1.0) as fake:
        client = AsyncInventClient(
            API_KEY, base_url=fake.url, max_retries=0, timeout=0.05, rate_limit=None
        )
        async with client:
            with pytest.raises(APITimeoutError) as slow:  # one attempt's timeout: the API
                await client.contacts.get("ct_any")
            fake.latency = 0.0
            with pytest.raises(NotFoundError) as missing:
                await client.contacts.get("ct_nobody")

    assert not slow.value.deadline_exceeded
    assert retry_after_header(slow.value) is None
    assert retry_after_header(missing.value) is None
    assert retry_after_header(ValueError("anything else")) is None
