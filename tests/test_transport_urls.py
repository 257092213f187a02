"""The aiohttp transport's URLs (the cached-origin shortcut is ``URL(url, encoded=True)``)."""

from __future__ import annotations

import pytest
from yarl import URL

from invent_async._protocol import RawResponse, raw_response
from invent_async._transport import AiohttpTransport


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (
            "http://127.0.0.1:8080/orgs/c/contacts/ct_1/segments/sg_1",
            "/orgs/c/contacts/ct_1/segments/sg_1",
        ),
        ("https://api.example.com/orgs/c/contacts/a%2F..%2Fb", "/orgs/c/contacts/a%2F..%2Fb"),
        ("https://api.example.com/orgs/c/contacts/%2E%2E", "/orgs/c/contacts/%2E%2E"),
        ("https://api.example.com/v1/orgs/c/contacts", "/orgs/c/contacts"),  # base with a path
        ("https://api.example.com/orgs/c/contacts?page=2&take=10", "/orgs/c/contacts"),
        ("http://[::1]:9/orgs/c/segments/%E2%9C%93", "/orgs/c/segments/%E2%9C%93"),
    ],
)
def test_transport_url_is_the_url_given_encoded_as_it_is(url: str, path: str) -> None:
    transport = AiohttpTransport()

    first, again = transport._url(url, path), transport._url(url, path)

    assert first == URL(url, encoded=True)
    assert str(first) == str(URL(url, encoded=True))
    assert again == first


def test_raw_response_equals_one_made_by_its_init() -> None:
    made = raw_response(404, "Not Found", {"a": "b"}, b"{}")

    assert made == RawResponse(status=404, reason="Not Found", headers={"a": "b"}, body=b"{}")
    assert repr(made) == repr(
        RawResponse(status=404, reason="Not Found", headers={"a": "b"}, body=b"{}")
    )
