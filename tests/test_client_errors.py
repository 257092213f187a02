"""Every error a call can end in, end to end through both clients against FakeInvent.

Statuses are injected with ``fake.fail_next`` and retries are switched off with
``with_options(max_retries=0)``, so each test sees exactly the error of one response: its
class, status, method, path, body and request id, and a readable message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from _harness import Api, api_fixture  # noqa: F401

from invent_async import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    InventError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    UnprocessableEntityError,
)

STATUS_CLASSES: list[tuple[int, type[APIStatusError]]] = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, ConflictError),
    (422, UnprocessableEntityError),
    (429, RateLimitError),
    (500, InternalServerError),
    (502, InternalServerError),
    (503, InternalServerError),
    (504, InternalServerError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES, ids=[str(s) for s, _ in STATUS_CLASSES])
async def test_an_error_status_raises_its_class_with_the_response_details(
    api: Api, status: int, cls: type[APIStatusError]
) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.fail_next(1, status=status)

    with pytest.raises(cls) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get(segment.id))

    error = caught.value
    assert type(error) is cls
    assert isinstance(error, APIStatusError)
    assert isinstance(error, InventError)
    assert error.status == status
    assert error.method == "GET"
    assert error.path == f"/orgs/c/segments/{segment.id}"
    assert error.body == {"message": f"Injected failure ({status})"}
    [request] = api.requests
    assert error.request_id == request.request_id
    message = str(error)
    assert str(status) in message
    assert f"GET /orgs/c/segments/{segment.id}" in message
    assert f"Injected failure ({status})" in message
    assert request.request_id in message


async def test_an_unmapped_status_raises_the_base_status_error(api: Api) -> None:
    api.fake.fail_next(1, status=418)

    with pytest.raises(APIStatusError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert type(caught.value) is APIStatusError
    assert caught.value.status == 418


async def test_a_real_not_found_carries_the_servers_message(api: Api) -> None:
    with pytest.raises(NotFoundError) as caught:
        await api.call(lambda c: c.contacts.get("ct_missing"))

    assert caught.value.body == {"message": "Contact 'ct_missing' not found"}
    assert "Contact 'ct_missing' not found" in str(caught.value)
    assert caught.value.request_id == api.requests[-1].request_id
    assert len(api.requests) == 1


async def test_a_request_the_server_refuses_is_a_bad_request_with_its_reason(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane", email="jane@example.com", channel_type="email")
    channel_id = contact.channels[0].id

    with pytest.raises(BadRequestError) as caught:
        await api.call(lambda c: c.contacts.update_channel(contact.id, channel_id, name="X"))

    assert "Only custom channels can be updated" in caught.value.body["message"]
    assert "Only custom channels can be updated" in str(caught.value)
    assert api.fake.contact(contact.id).channels[0].name == "Jane"
    assert len(api.requests) == 1


async def test_rate_limit_error_carries_retry_after_in_seconds(api: Api) -> None:
    api.fake.fail_next(1, status=429, retry_after=7)

    with pytest.raises(RateLimitError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert caught.value.retry_after == 7.0


async def test_rate_limit_error_reads_a_fractional_retry_after(api: Api) -> None:
    api.fake.fail_next(1, status=429, retry_after=0.25)

    with pytest.raises(RateLimitError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert caught.value.retry_after == 0.25


async def test_rate_limit_error_reads_retry_after_as_an_http_date(api: Api) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    api.fake.fail_next(1, status=429, retry_after=format_datetime(when, usegmt=True))

    with pytest.raises(RateLimitError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert caught.value.retry_after is not None
    assert 100 <= caught.value.retry_after <= 121


async def test_rate_limit_error_without_a_readable_retry_after_has_none(api: Api) -> None:
    api.fake.fail_next(1, status=429, retry_after="soon-ish")

    with pytest.raises(RateLimitError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert caught.value.retry_after is None


PROXY_PAGE = """<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title><style>body { color: red; }</style></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.25.3</center></body></html>
"""


async def test_an_html_error_page_from_a_proxy_gives_a_readable_error(api: Api) -> None:
    api.fake.fail_next(1, status=502, body=PROXY_PAGE)

    with pytest.raises(InternalServerError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    error = caught.value
    message = str(error)
    assert "502 Bad Gateway" in message
    assert "nginx/1.25.3" in message
    assert "<" not in message
    assert "color: red" not in message
    assert isinstance(error.body, str)
    assert "<h1>502 Bad Gateway</h1>" in error.body


async def test_a_plain_text_error_body_is_kept_as_text(api: Api) -> None:
    api.fake.fail_next(1, status=500, body="upstream exploded\n  at line 3")

    with pytest.raises(InternalServerError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert caught.value.body == "upstream exploded\n  at line 3"
    assert "upstream exploded at line 3" in str(caught.value)


async def test_a_huge_text_error_body_is_truncated(api: Api) -> None:
    api.fake.fail_next(1, status=500, body="x" * 100_000)

    with pytest.raises(InternalServerError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert isinstance(caught.value.body, str)
    assert len(caught.value.body) < 10_000
    assert len(str(caught.value)) < 1_000


async def test_a_json_error_body_that_is_not_an_object_is_kept(api: Api) -> None:
    api.fake.fail_next(1, status=409, body='["already", "exists"]', content_type="application/json")

    with pytest.raises(ConflictError) as caught:
        await api.call(lambda c: c.with_options(max_retries=0).segments.get("sg_1"))

    assert caught.value.body == ["already", "exists"]


async def test_a_wrong_api_key_is_an_authentication_error(api: Api) -> None:
    api.fake.api_key = "rotated-key"

    with pytest.raises(AuthenticationError) as caught:
        await api.call(lambda c: c.segments.get("sg_1"))

    assert caught.value.body == {"message": "Invalid API key"}
    assert [r.status for r in api.requests] == [401]  # a 401 is never retried


# --------------------------------------------------------------------------- 2xx that do not fit


async def test_a_success_body_missing_fields_names_each_bad_field(api: Api) -> None:
    api.fake.fail_next(1, status=200, body={"id": "sg_1", "name": 5})

    with pytest.raises(ResponseValidationError) as caught:
        await api.call(lambda c: c.segments.get("sg_1"))

    error = caught.value
    assert isinstance(error, InventError)
    assert error.method == "GET"
    assert error.path == "/orgs/c/segments/sg_1"
    assert any("$.name" in line for line in error.errors)
    assert any("$.created_at" in line for line in error.errors)
    assert "$.name" in str(error)
    assert "Segment" in str(error)


async def test_a_bad_nested_field_is_named_by_its_path(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")
    body = {
        "id": contact.id,
        "name": "Jane",
        "blocked": False,
        "is_admin": False,
        "channels": [{"id": "ch_1", "type": "custom", "user_id": None}],
        "segments": [],
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
    }
    api.fake.fail_next(1, status=200, body=body)

    with pytest.raises(ResponseValidationError) as caught:
        await api.call(lambda c: c.contacts.get(contact.id))

    assert any("$.channels[0].user_id" in line for line in caught.value.errors)


async def test_a_bad_item_in_a_list_page_is_named_by_its_index(api: Api) -> None:
    api.fake.fail_next(
        1,
        status=200,
        body='[{"id": "sg_1", "name": "ok", "created_at": "2024-05-01T10:00:00Z",'
        ' "updated_at": "2024-05-01T10:00:00Z"}, {"id": "sg_2"}]',
        content_type="application/json",
    )

    with pytest.raises(ResponseValidationError) as caught:
        await api.collect(lambda c: c.segments.list())

    assert any("$[1].name" in line for line in caught.value.errors)
    assert "Segment" in str(caught.value)  # the model, not just "tuple"


async def test_a_success_body_that_is_not_json_is_a_validation_error(api: Api) -> None:
    api.fake.fail_next(1, status=200, body="<html>maintenance</html>")

    with pytest.raises(ResponseValidationError) as caught:
        await api.call(lambda c: c.segments.get("sg_1"))

    assert "not JSON" in str(caught.value)
    assert len(api.requests) == 1  # a malformed success is not retried
