"""The sans-I/O protocol layer: paths, URLs, errors from responses, Retry-After, pagination and
retry classification, tested with plain function calls (no event loop, no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from invent_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    Contact,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    Segment,
    UnprocessableEntityError,
)
from invent_async import _protocol as proto
from invent_async._protocol import PageInfo, RawResponse, Request

SECRET = "sk-live-4f1c2b9e8d7a6f5e"

GET_CONTACT = Request(method="GET", path="/orgs/c/contacts/ct_1")
CREATE_CONTACT = Request(method="POST", path="/orgs/c/contacts", body=b"{}", idempotent=False)

SEGMENT_JSON = (
    b'{"id":"sg_1","name":"VIP customers","color":"red","contacts_count":42,'
    b'"created_at":"2023-11-07T05:31:56Z","updated_at":"2023-11-07T05:31:56Z"}'
)

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)

STATUS_CLASSES = [
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
    (418, APIStatusError),
]

HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>"
    "<style>body { color: red; }</style>"
    "<script type='text/javascript'>var tracking = '<b>id</b>';</script></head>\n"
    "<body><center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n"
    "</body></html>\n"
)


def json_response(status: int, body: Any, **headers: str) -> RawResponse:
    return RawResponse(
        status=status,
        headers={"Content-Type": "application/json", **headers},
        body=json.dumps(body).encode(),
    )


def status_error(status: int, **headers: str) -> APIStatusError:
    return proto.error_from_response(GET_CONTACT, RawResponse(status=status, headers=headers))


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("ct_1", "ct_1"),
        ("a/b", "a%2Fb"),
        ("a?b=1", "a%3Fb%3D1"),
        ("a#frag", "a%23frag"),
        ("100%", "100%25"),
        ("%2F", "%252F"),
        ("jane doe", "jane%20doe"),
        ("zoë", "zo%C3%AB"),
        ("日本", "%E6%97%A5%E6%9C%AC"),
        ("../x", "..%2Fx"),
        ("../../admin", "..%2F..%2Fadmin"),
        ("...", "..."),
        ("a\nb", "a%0Ab"),
    ],
)
def test_path_segment_percent_encodes_everything_that_could_change_the_path(
    value: str, encoded: str
) -> None:
    assert proto.path_segment(value, "contact_id") == encoded


@pytest.mark.parametrize("value", ["", " ", "\t\n", ".", ".."])
def test_empty_blank_and_dot_ids_are_value_errors(value: str) -> None:
    with pytest.raises(ValueError, match="contact_id"):
        proto.path_segment(value, "contact_id")


@pytest.mark.parametrize("value", [None, 123, b"ct_1", ["ct_1"]])
def test_non_string_ids_are_type_errors(value: object) -> None:
    with pytest.raises(TypeError, match="contact_id"):
        proto.path_segment(value, "contact_id")


def test_build_path_encodes_parameters_and_keeps_literal_segments() -> None:
    path = proto.build_path(
        "orgs", ("org_id", "c"), "contacts", ("contact_id", "../x"), "segments", ("id", "a/b?#")
    )

    assert path == "/orgs/c/contacts/..%2Fx/segments/a%2Fb%3F%23"


@pytest.mark.parametrize("bad_id", ["", "  ", "..", "."])
def test_build_path_rejects_a_bad_id_anywhere(bad_id: str) -> None:
    with pytest.raises(ValueError, match="segment_id"):
        proto.build_path("orgs", ("org_id", "c"), "segments", ("segment_id", bad_id))


def test_build_path_rejects_a_non_string_id() -> None:
    with pytest.raises(TypeError, match="org_id"):
        proto.build_path("orgs", ("org_id", 42), "contacts")


# --------------------------------------------------------------------------- query and URL


def test_query_params_write_booleans_as_true_false_and_drop_none() -> None:
    params = proto.query_params(
        {"exclude_admins": True, "unsubscribed": False, "search": None, "take": 20, "name": "x"}
    )

    assert params == (
        ("exclude_admins", "true"),
        ("unsubscribed", "false"),
        ("take", "20"),
        ("name", "x"),
    )


def test_build_url_joins_base_path_and_encoded_query() -> None:
    request = Request(
        method="GET",
        path="/orgs/c/contacts",
        query=proto.query_params({"search": "jane doe & co", "user_id": "+1555", "page": 2}),
    )

    url = proto.build_url("https://api.useinvent.com", request)

    assert url == (
        "https://api.useinvent.com/orgs/c/contacts?search=jane+doe+%26+co&user_id=%2B1555&page=2"
    )


def test_build_url_without_query_has_no_question_mark() -> None:
    assert proto.build_url("http://127.0.0.1:8080", GET_CONTACT) == (
        "http://127.0.0.1:8080/orgs/c/contacts/ct_1"
    )


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.useinvent.com", "https://api.useinvent.com"),
        ("https://api.useinvent.com/", "https://api.useinvent.com"),
        ("https://proxy.example.com/invent/", "https://proxy.example.com/invent"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.8.9.10:1234/", "http://127.8.9.10:1234"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("http://LOCALHOST", "http://LOCALHOST"),
    ],
)
def test_base_url_accepts_https_and_plain_http_to_loopback(base_url: str, expected: str) -> None:
    assert proto.validate_base_url(base_url) == expected


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("http://api.useinvent.com", id="http-remote"),
        pytest.param("http://10.0.0.1:8080", id="http-private-ip"),
        pytest.param("http://0.0.0.0:8080", id="http-any-address"),
        pytest.param("http://localhost.evil.example", id="http-localhost-lookalike"),
        pytest.param("http://127.0.0.1.nip.io", id="http-loopback-lookalike"),
        pytest.param("https://user:pass@api.useinvent.com", id="credentials"),
        pytest.param("https://token@api.useinvent.com", id="username-only"),
        pytest.param("https://api.useinvent.com?org=c", id="query"),
        pytest.param("https://api.useinvent.com/#top", id="fragment"),
        pytest.param("ftp://api.useinvent.com", id="ftp"),
        pytest.param("ws://localhost:8080", id="ws"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("api.useinvent.com", id="no-scheme"),
        pytest.param("https://", id="no-host"),
        pytest.param("", id="empty"),
    ],
)
def test_base_url_rejects_unsafe_or_malformed_urls(base_url: str) -> None:
    with pytest.raises(ValueError):
        proto.validate_base_url(base_url)


@pytest.mark.parametrize("base_url", ["https://api.useinvent.com?", "https://api.useinvent.com/#"])
def test_base_url_with_an_empty_query_or_fragment_is_rejected(base_url: str) -> None:
    # Accepted, it would turn every request path into a query string or a fragment.
    with pytest.raises(ValueError):
        proto.validate_base_url(base_url)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://jane:s3cr3t-pw@api.useinvent.com",
        "http://jane:s3cr3t-pw@example.com",
        "ftp://jane:s3cr3t-pw@api.useinvent.com",
    ],
)
def test_rejected_base_url_message_never_repeats_its_password(base_url: str) -> None:
    with pytest.raises(ValueError) as info:
        proto.validate_base_url(base_url)

    assert "s3cr3t-pw" not in str(info.value)


@pytest.mark.parametrize("take", [1, 20, 100])
def test_valid_take_is_returned(take: int) -> None:
    assert proto.validate_take(take) == take


@pytest.mark.parametrize("take", [0, -1, 101, 1000, True, 20.0, "20", None])
def test_take_outside_1_to_100_or_not_an_int_is_rejected(take: Any) -> None:
    with pytest.raises(ValueError, match="take"):
        proto.validate_take(take)


@pytest.mark.parametrize("page", [1, 2, 10_000])
def test_valid_page_is_returned(page: int) -> None:
    assert proto.validate_page(page) == page


@pytest.mark.parametrize("page", [0, -1, True, 1.0, "1", None])
def test_page_below_1_or_not_an_int_is_rejected(page: Any) -> None:
    with pytest.raises(ValueError, match="page"):
        proto.validate_page(page)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
def test_each_status_maps_to_its_error_class(status: int, cls: type[APIStatusError]) -> None:
    exc = proto.error_from_response(GET_CONTACT, json_response(status, {"message": "nope"}))

    assert type(exc) is cls
    assert exc.status == status


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
def test_status_error_carries_method_path_parsed_body_and_request_id(
    status: int, cls: type[APIStatusError]
) -> None:
    raw = json_response(status, {"message": "Something went wrong"}, **{"X-Request-Id": "req-42"})

    exc = proto.error_from_response(CREATE_CONTACT, raw)

    assert (exc.status, exc.method, exc.path) == (status, "POST", "/orgs/c/contacts")
    assert exc.body == {"message": "Something went wrong"}
    assert exc.request_id == "req-42"


def test_status_error_message_names_method_path_and_the_api_message() -> None:
    raw = json_response(404, {"message": "Contact not found"})

    message = str(proto.error_from_response(GET_CONTACT, raw))

    assert "404" in message
    assert "GET /orgs/c/contacts/ct_1" in message
    assert "Contact not found" in message


def test_status_error_message_joins_a_list_of_validation_messages() -> None:
    raw = json_response(400, {"message": ["name must be a string", "color is invalid"]})

    message = str(proto.error_from_response(GET_CONTACT, raw))

    assert "name must be a string" in message
    assert "color is invalid" in message


@pytest.mark.parametrize("name", ["x-request-id", "X-Request-ID", "request-id", "cf-ray"])
def test_request_id_is_read_from_common_headers_in_any_case(name: str) -> None:
    exc = status_error(500, **{name: "abc123"})

    assert exc.request_id == "abc123"
    assert "abc123" in str(exc)


def test_status_error_without_request_id_header_has_none() -> None:
    assert status_error(500).request_id is None


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", ""])
def test_html_error_page_gives_a_readable_message_without_tags(content_type: str) -> None:
    raw = RawResponse(
        status=502,
        reason="Bad Gateway",
        headers={"Content-Type": content_type},
        body=HTML_PAGE.encode(),
    )

    exc = proto.error_from_response(GET_CONTACT, raw)

    message = str(exc)
    assert type(exc) is InternalServerError
    assert "502 Bad Gateway" in message
    assert "nginx" in message
    assert "<" not in message
    assert "tracking" not in message
    assert "color: red" not in message
    assert exc.body == HTML_PAGE


def test_long_text_error_body_is_truncated_to_2000_characters() -> None:
    page = "<html><body>" + "<p>Service temporarily unavailable</p>" * 500 + "</body></html>"
    raw = RawResponse(status=503, headers={"Content-Type": "text/html"}, body=page.encode())

    exc = proto.error_from_response(GET_CONTACT, raw)

    assert exc.body == page[:2000]
    assert len(str(exc)) < 1000


def test_plain_text_error_body_is_kept_as_text() -> None:
    raw = RawResponse(
        status=500, headers={"Content-Type": "text/plain"}, body=b"upstream connect error"
    )

    exc = proto.error_from_response(GET_CONTACT, raw)

    assert exc.body == "upstream connect error"
    assert "upstream connect error" in str(exc)


def test_empty_error_body_gives_body_none_and_a_message_ending_with_the_path() -> None:
    exc = proto.error_from_response(
        GET_CONTACT, RawResponse(status=503, reason="Service Unavailable")
    )

    assert exc.body is None
    assert str(exc).endswith("GET /orgs/c/contacts/ct_1")


def test_invalid_utf8_error_body_does_not_crash(json_backend: str) -> None:
    raw = RawResponse(
        status=500, headers={"Content-Type": "text/plain"}, body=b"\xff\xfe broken \xc3 body"
    )

    exc = proto.error_from_response(GET_CONTACT, raw)

    assert type(exc) is InternalServerError
    assert isinstance(exc.body, str)
    assert "broken" in exc.body
    assert "broken" in str(exc)


def test_error_body_that_is_json_without_a_content_type_is_still_parsed(json_backend: str) -> None:
    raw = RawResponse(status=409, body=b'{"message":"Already in segment","code":"E_DUP"}')

    exc = proto.error_from_response(GET_CONTACT, raw)

    assert exc.body == {"message": "Already in segment", "code": "E_DUP"}


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
def test_a_secret_in_response_headers_never_reaches_the_error_message(
    status: int, cls: type[APIStatusError]
) -> None:
    raw = RawResponse(
        status=status,
        reason="Error",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {SECRET}",
            "X-Echo-Api-Key": SECRET,
            "Retry-After": "1",
        },
        body=b'{"message":"failed"}',
    )

    exc = proto.error_from_response(GET_CONTACT, raw)

    assert SECRET not in str(exc)
    assert SECRET not in repr(exc)


def test_a_secret_in_response_headers_never_reaches_a_validation_error_message() -> None:
    raw = RawResponse(
        status=200,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"},
        body=b'{"id":1}',
    )

    with pytest.raises(ResponseValidationError) as info:
        proto.parse_response(GET_CONTACT, raw, Segment)

    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


# --------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("5", 5.0, id="seconds"),
        pytest.param(" 12 ", 12.0, id="padded"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("1.5", 1.5, id="fractional"),
        pytest.param("Wed, 21 Oct 2015 07:28:30 GMT", 30.0, id="http-date-future"),
        pytest.param("Wed, 21 Oct 2015 07:30:00 -0000", 120.0, id="http-date-minus-zero"),
    ],
)
def test_retry_after_is_read_as_seconds(value: str, seconds: float) -> None:
    assert proto.parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("-5", id="negative"),
        pytest.param("-0.5", id="negative-fraction"),
        pytest.param("Wed, 21 Oct 2015 07:27:00 GMT", id="http-date-past"),
    ],
)
def test_retry_after_is_never_negative(value: str) -> None:
    assert proto.parse_retry_after(value, now=NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="absent"),
        pytest.param("", id="empty"),
        pytest.param("soon", id="garbage"),
        pytest.param("NaN", id="nan"),
        pytest.param("inf", id="infinity"),
        pytest.param("Wed, 32 Oct 2015 07:28:30 GMT", id="impossible-date"),
    ],
)
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert proto.parse_retry_after(value, now=NOW) is None


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="header"),
        pytest.param({"retry-after": "0.25"}, 0.25, id="lowercase"),
        pytest.param({}, None, id="absent"),
        pytest.param({"Retry-After": "later"}, None, id="garbage"),
    ],
)
def test_rate_limit_error_carries_retry_after_from_the_header(
    headers: dict[str, str], retry_after: float | None
) -> None:
    exc = status_error(429, **headers)

    assert isinstance(exc, RateLimitError)
    assert exc.retry_after == retry_after


@pytest.mark.parametrize(
    ("exc", "retry_after"),
    [
        pytest.param(status_error(429, **{"Retry-After": "3"}), 3.0, id="429"),
        pytest.param(status_error(503, **{"Retry-After": "4"}), 4.0, id="503"),
        pytest.param(status_error(503), None, id="503-without-header"),
        pytest.param(
            APIConnectionError("reset", method="GET", path="/p", request_sent=True),
            None,
            id="connection-error",
        ),
    ],
)
def test_server_requested_delay_is_read_from_429_and_503(
    exc: BaseException, retry_after: float | None
) -> None:
    assert proto.retry_after_of(exc) == retry_after


# --------------------------------------------------------------------------- pagination


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {"pagination-count": "135", "pagination-page": "2", "pagination-take": "20"},
            PageInfo(count=135, page=2, take=20),
            id="all",
        ),
        pytest.param(
            {"Pagination-Count": "7", "PAGINATION-PAGE": "1", "Pagination-Take": "10"},
            PageInfo(count=7, page=1, take=10),
            id="any-case",
        ),
        pytest.param({}, PageInfo(count=None, page=None, take=None), id="absent"),
        pytest.param(
            {"pagination-count": "many", "pagination-page": "", "pagination-take": "2.5"},
            PageInfo(count=None, page=None, take=None),
            id="not-integers",
        ),
    ],
)
def test_page_info_reads_the_pagination_headers(
    headers: dict[str, str], expected: PageInfo
) -> None:
    assert proto.page_info(headers) == expected


WITH_COUNT_45 = PageInfo(count=45, page=None, take=20)
WITH_COUNT_40 = PageInfo(count=40, page=None, take=20)
WITHOUT_COUNT = PageInfo(count=None, page=None, take=None)


@pytest.mark.parametrize(
    ("info", "page", "items", "expected"),
    [
        pytest.param(WITH_COUNT_45, 1, 20, True, id="count-first-page"),
        pytest.param(WITH_COUNT_45, 2, 20, True, id="count-middle-page"),
        pytest.param(WITH_COUNT_45, 3, 5, False, id="count-last-short-page"),
        pytest.param(WITH_COUNT_40, 2, 20, False, id="count-exact-multiple-no-extra-request"),
        pytest.param(WITH_COUNT_45, 1, 0, False, id="count-but-empty-page"),
        pytest.param(WITHOUT_COUNT, 1, 20, True, id="no-count-full-page"),
        pytest.param(WITHOUT_COUNT, 1, 7, False, id="no-count-short-page"),
        pytest.param(WITHOUT_COUNT, 4, 0, False, id="no-count-empty-page"),
    ],
)
def test_has_next_page(info: PageInfo, page: int, items: int, expected: bool) -> None:
    assert proto.has_next_page(info, page=page, take=20, items_on_page=items) is expected


def test_has_next_page_uses_the_page_size_the_server_reports() -> None:
    info = PageInfo(count=150, page=1, take=100)  # asked for 200 per page, got 100

    assert proto.has_next_page(info, page=1, take=200, items_on_page=100) is True


# --------------------------------------------------------------------------- retry classes


def connection_error(sent: bool) -> APIConnectionError:
    return APIConnectionError("connection reset", method="GET", path="/p", request_sent=sent)


def timeout_error(sent: bool) -> APITimeoutError:
    return APITimeoutError("timed out", method="GET", path="/p", request_sent=sent)


# (failure, retried for idempotent requests, retried for creating requests)
RETRY_TABLE: list[tuple[str, BaseException, bool, bool]] = [
    ("connect-failed", connection_error(sent=False), True, True),
    ("connection-lost-after-send", connection_error(sent=True), True, False),
    ("timeout-before-send", timeout_error(sent=False), True, True),
    ("timeout-after-send", timeout_error(sent=True), True, False),
    ("408", status_error(408), True, False),
    ("429", status_error(429), True, True),
    ("500", status_error(500), True, False),
    ("502", status_error(502), True, False),
    ("503", status_error(503), True, False),
    ("504", status_error(504), True, False),
    ("400", status_error(400), False, False),
    ("401", status_error(401), False, False),
    ("404", status_error(404), False, False),
    ("501", status_error(501), False, False),
    ("not-an-sdk-error", RuntimeError("bug"), False, False),
]


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        pytest.param(exc, idempotent, expected, id=f"{kind}-{name}")
        for name, exc, for_idempotent, for_creating in RETRY_TABLE
        for kind, idempotent, expected in (
            ("idempotent", True, for_idempotent),
            ("creating", False, for_creating),
        )
    ],
)
def test_is_retryable(exc: BaseException, idempotent: bool, expected: bool) -> None:
    assert proto.is_retryable(exc, idempotent) is expected


# --------------------------------------------------------------------------- parse_response


def test_parse_response_builds_the_model(json_backend: str) -> None:
    segment = proto.parse_response(GET_CONTACT, RawResponse(status=200, body=SEGMENT_JSON), Segment)

    assert segment.id == "sg_1"
    assert segment.contacts_count == 42


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html><body>Welcome to the hotel Wi-Fi</body></html>", id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe\x00", id="invalid-utf8"),
        pytest.param(b'{"id": "sg_1",', id="truncated-json"),
    ],
)
def test_non_json_success_body_is_a_response_validation_error(
    json_backend: str, body: bytes
) -> None:
    raw = RawResponse(status=200, headers={"Content-Type": "text/html"}, body=body)

    with pytest.raises(ResponseValidationError) as info:
        proto.parse_response(GET_CONTACT, raw, Segment)

    assert "not JSON" in str(info.value)
    assert "GET /orgs/c/contacts/ct_1" in str(info.value)


def test_mismatching_success_body_is_a_response_validation_error_naming_the_path(
    json_backend: str,
) -> None:
    contact = {
        "id": "ct_1",
        "name": None,
        "blocked": False,
        "is_admin": False,
        "channels": [{"id": None, "type": "custom", "user_id": "u"}],
        "segments": [],
        "created_at": "2023-11-07T05:31:56Z",
        "updated_at": "2023-11-07T05:31:56Z",
    }
    raw = RawResponse(status=200, body=json.dumps(contact).encode())

    with pytest.raises(ResponseValidationError) as info:
        proto.parse_response(GET_CONTACT, raw, Contact)

    assert any(e.endswith("@ $.channels[0].id") for e in info.value.errors), info.value.errors
    assert "$.channels[0].id" in str(info.value)
    assert "Contact" in str(info.value)
    assert (info.value.method, info.value.path) == ("GET", "/orgs/c/contacts/ct_1")


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
def test_parse_response_raises_the_status_error_for_non_2xx(
    status: int, cls: type[APIStatusError]
) -> None:
    with pytest.raises(cls):
        proto.parse_response(GET_CONTACT, json_response(status, {"message": "no"}), Segment)
