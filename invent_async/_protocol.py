"""Sans-I/O protocol: everything about a request and a response that needs no socket.

Builds :class:`Request` values (method, percent-encoded path, query, JSON body, retry class),
turns a :class:`RawResponse` into a model or into the right exception, parses ``Retry-After``
and the pagination headers, and decides which failures may be retried. No aiohttp, no event
loop: this module is tested with plain function calls.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from . import _converter
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    ResponseValidationError,
    UnprocessableEntityError,
)
from ._secret import Secret, is_loopback_host
from ._types import JSON, QueryValue

T = TypeVar("T")

DEFAULT_BASE_URL: Final = "https://api.useinvent.com"
MAX_TAKE: Final = 100
BODY_LIMIT: Final = 2000
"""Characters of a non-JSON error body kept on the exception."""
MESSAGE_BODY_LIMIT: Final = 300
"""Characters of the error body shown in the exception message."""
ERROR_BODY_READ_LIMIT: Final = 64 * 1024
"""Bytes of a non-2xx body read at most (more is never useful in an error)."""

RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
REQUEST_ID_HEADERS: Final = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")

_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


@attrs.define(kw_only=True, slots=True)
class Request:
    """One HTTP request, before any I/O.

    Not frozen (a frozen ``__init__`` sets each field through ``object.__setattr__``, which
    costs about half a microsecond per call), but never changed once built: treat it as
    read-only. It is not hashable.

    Attributes:
        method: HTTP method.
        path: Percent-encoded URL path, starting with ``/``.
        query: Query parameters, already converted to strings.
        body: Encoded JSON body, or None.
        idempotent: True when repeating the request cannot do harm (GET, PATCH, DELETE and
            adding/removing a segment); False for creating calls, which are retried only when
            the request certainly did not reach the server.
        operation: The SDK operation it belongs to (``"contacts.add_segment"``): the name of
            its span, and a label of its metrics and log records.
        template: The path with its parameters unfilled, as documented
            (``/orgs/{org_id}/contacts/{contact_id}``): ``url.template`` of its spans. Never
            holds an id, so it may label metrics.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    idempotent: bool = True
    operation: str = ""
    template: str = ""


class Headers(CIMultiDictProxy[str]):
    """Read-only, case-insensitive request headers; the repr never shows ``Authorization``.

    One instance is shared by every request of a client, so it cannot be changed: a
    transport that needs other headers builds its own mapping (``{**request.headers, ...}``).
    aiohttp takes it as it is, without copying it.
    """

    __slots__ = ("_built",)

    def __init__(self, items: Mapping[str, str]) -> None:
        super().__init__(CIMultiDict(items))
        self._built = True

    def copy(self) -> Headers:  # type: ignore[override]
        """A copy (still read-only, still redacted in its repr)."""
        return Headers(self)

    def __repr__(self) -> str:
        if not getattr(self, "_built", False):  # its __init__ raised: multidict before 7
            return "Headers(<not built>)"  # crashes the interpreter on reading the items
        shown = {k: "<redacted>" if k.lower() == "authorization" else v for k, v in self.items()}
        return f"Headers({shown!r})"


@attrs.define(kw_only=True)
class TransportRequest:
    """One HTTP request as a transport sends it.

    Attributes:
        method: HTTP method.
        url: Absolute URL, already percent-encoded, query string included.
        path: The URL's path, for error messages (no host, no query, no credentials).
        headers: Every header to send, ``Authorization`` included (hidden in the repr).
        body: Encoded JSON body, or None.
        max_response_bytes: Read no more than about this many bytes of the response body,
            counted after decompression (None: no limit); see :func:`read_limit`. The client
            raises :class:`ResponseTooLargeError` for a 2xx body that is longer.
    """

    method: str
    url: str
    path: str
    headers: Headers
    body: bytes | None = None
    max_response_bytes: int | None = None


def _size(body: bytes) -> str:
    return f"<{len(body)} bytes>"


def _names(headers: Mapping[str, str]) -> str:
    return f"<headers {', '.join(headers)}>"


@attrs.frozen(kw_only=True)
class RawResponse:
    """An HTTP response as bytes. ``headers`` must look names up case-insensitively.

    The repr shows the body's size and the headers' names, not their contents: a traceback
    rendered with its locals (or a crash reporter) copies no contact data, no cookie, and
    nothing a server echoed (such as the API key).
    """

    status: int
    reason: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=_names)
    body: bytes = attrs.field(default=b"", repr=_size)


_new = object.__new__
_set_status = RawResponse.__dict__["status"].__set__
_set_reason = RawResponse.__dict__["reason"].__set__
_set_headers = RawResponse.__dict__["headers"].__set__
_set_body = RawResponse.__dict__["body"].__set__


def raw_response(status: int, reason: str, headers: Mapping[str, str], body: bytes) -> RawResponse:
    """``RawResponse(status=..., reason=..., headers=..., body=...)``, without attrs' frozen
    ``__init__`` (one ``object.__setattr__`` per field): what a transport calls per response.
    """
    raw: RawResponse = _new(RawResponse)
    _set_status(raw, status)
    _set_reason(raw, reason)
    _set_headers(raw, headers)
    _set_body(raw, body)
    return raw


# --------------------------------------------------------------------------- building


def validate_base_url(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash, or raise ``ValueError``.

    Only ``https://`` may leave the machine; plain ``http://`` is accepted for loopback hosts
    (127.0.0.0/8, ::1, localhost), which is what FakeInvent and tests use.
    """
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - a port out of range raises here, not at the first call
    except ValueError as exc:
        raise ValueError(f"base_url is not a valid URL: {exc}") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("base_url must not contain credentials; pass api_key instead")
    host = parts.hostname or ""
    shown = f"{parts.scheme}://{parts.netloc}" if parts.scheme else repr(base_url)
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"base_url must be an absolute https:// URL, got {shown}")
    if "?" in base_url or "#" in base_url:
        raise ValueError("base_url must not have a query string or a fragment")
    if not _valid_host(host):
        raise ValueError(f"base_url's host is not a valid host name or address, got {shown!r}")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ValueError(
            f"base_url must use https:// (plain http is only allowed for loopback hosts), "
            f"got {shown}"
        )
    return base_url.rstrip("/")


_HOST_NAME: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?").fullmatch


def _valid_host(host: str) -> bool:
    """An IP address, or a host name (internationalised names in their IDNA form)."""
    if ":" in host:  # only an IPv6 address, from between brackets, has a colon here
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            return False
        return True
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOST_NAME(ascii_host) is not None


_PLAIN_SEGMENT: Final = re.compile(r"[A-Za-z0-9_~-]+").fullmatch
"""Ids made only of these characters need no encoding (the common case, checked first)."""


def path_segment(value: object, what: str) -> str:
    """Percent-encode one path parameter so that it can never change the path.

    Raises ``TypeError`` for a non-string and ``ValueError`` for an empty or blank string and
    for ``.``/``..``, which URL normalisation would turn into a different path.
    """
    if type(value) is str and _PLAIN_SEGMENT(value):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if value in (".", ".."):
        raise ValueError(f"{what} {value!r} is not a valid id")
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:
        raise unsendable(what, value) from None


def unsendable(what: str, text: str) -> ValueError:
    """The error for ``text``, the value of ``what``, holding a lone surrogate (a character
    UTF-8 cannot carry, left by decoding bytes with ``errors="surrogateescape"``)."""
    position, char = next((i, c) for i, c in enumerate(text) if "\ud800" <= c <= "\udfff")
    return ValueError(
        f"{what} holds a character that cannot be sent: a lone surrogate ({char!r}) at "
        f"position {position}; check how the text was read or decoded"
    )


def build_path(*segments: tuple[str, object] | str) -> str:
    """Join literal segments and ``(what, value)`` parameters into an encoded path."""
    return "/" + "/".join(
        [seg if seg.__class__ is str else path_segment(seg[1], seg[0]) for seg in segments]
    )


def query_params(params: Mapping[str, QueryValue | None]) -> tuple[tuple[str, str], ...]:
    """Drop ``None`` values and encode the rest (booleans as ``true``/``false``)."""
    out = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out.append((key, "true" if value else "false"))
            continue
        text = str(value)
        if not text.isascii() and not _utf8(text):
            raise unsendable(key, text)
        out.append((key, text))
    return tuple(out)


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def json_body(model: Any) -> bytes:
    """Encode a request model as JSON (fields left UNSET are omitted).

    Raises:
        ValueError: a text field holds a lone surrogate (the message names the field).
    """
    data = _converter.unstructure(model)
    try:
        return _converter.dumps(data)
    except (TypeError, UnicodeEncodeError):
        found = _unsendable_field(data, "$")
        if found is None:
            raise
        raise unsendable(f"the request body's field {found[0]}", found[1]) from None


def _unsendable_field(data: object, at: str) -> tuple[str, str] | None:
    """The path and text of the first string in ``data`` that UTF-8 cannot carry."""
    if isinstance(data, str):
        return None if _utf8(data) else (at, data)
    if isinstance(data, dict):
        for key, value in data.items():
            if not _utf8(str(key)):
                return f"{at} key", str(key)
            found = _unsendable_field(value, f"{at}.{key}")
            if found is not None:
                return found
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            found = _unsendable_field(value, f"{at}[{index}]")
            if found is not None:
                return found
    return None


def build_url(base_url: str, request: Request) -> str:
    """The absolute, already-encoded URL of ``request``."""
    url = base_url + request.path
    if request.query:
        url += "?" + urlencode(request.query)
    return url


def validate_take(take: int) -> int:
    """Page size check (the API's maximum is 100)."""
    if isinstance(take, bool) or not isinstance(take, int) or not 1 <= take <= MAX_TAKE:
        raise ValueError(f"take must be an integer from 1 to {MAX_TAKE}, got {take!r}")
    return take


def validate_page(page: int) -> int:
    """Page number check (pages are 1-based)."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError(f"page must be an integer >= 1, got {page!r}")
    return page


# --------------------------------------------------------------------------- reading


def read_limit(status: int, max_response_bytes: int | None) -> int | None:
    """How many body bytes a transport reads at most for a response with ``status``.

    A 2xx body may be as long as ``max_response_bytes``; an error body never needs more
    than :data:`ERROR_BODY_READ_LIMIT` (it is cut there, and the error raised as usual).
    A transport stops reading once it holds more than this (one chunk more at most).
    """
    if 200 <= status < 300:
        return max_response_bytes
    if max_response_bytes is None:
        return ERROR_BODY_READ_LIMIT
    return min(max_response_bytes, ERROR_BODY_READ_LIMIT)


def bounded_response(
    request: TransportRequest, raw: RawResponse, secret: Secret | None = None
) -> RawResponse:
    """``raw`` within its :func:`read_limit`: an error body cut there, a longer 2xx an error.

    Where an error body is cut, a beginning of ``secret`` at the cut goes too (the rest of
    it was never read, or is cut off).

    Raises:
        ResponseTooLargeError: a 2xx body longer than ``request.max_response_bytes``.
    """
    limit = request.max_response_bytes
    if 200 <= raw.status < 300:  # the common case, without read_limit's call
        if limit is None or len(raw.body) <= limit:
            return raw
        raise ResponseTooLargeError(
            f"{request.method} {request.path}: the response body is larger than "
            f"max_response_bytes={limit}",
            method=request.method,
            path=request.path,
            status=raw.status,
            limit=limit,
            request_id=request_id(raw.headers),
        )
    limit = read_limit(raw.status, limit)
    if limit is None or len(raw.body) <= limit:
        return raw
    body = raw.body[:limit]
    return attrs.evolve(raw, body=secret.strip_cut(body) if secret is not None else body)


def redact_response(raw: RawResponse, secret: Secret) -> RawResponse:
    """``raw`` with ``secret`` replaced in its body and header values, however spelled.

    For error responses, whose body and headers end up on the exception (a proxy may echo
    the request's headers). Applied after :func:`bounded_response`, which already removed a
    key split by the cut.
    """
    body = secret.redact(raw.body)
    headers: Mapping[str, str] = raw.headers
    items = list(raw.headers.items())
    redacted = [(name, secret.redact_text(value)) for name, value in items]
    if redacted != items:
        headers = CIMultiDict(redacted)
    if body == raw.body and headers is raw.headers:
        return raw
    return attrs.evolve(raw, body=body, headers=headers)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, val in headers.items():
        if key.lower() == lname:
            return val
    return None


def request_id(headers: Mapping[str, str]) -> str | None:
    """The first request id header the server sent, if any."""
    for name in REQUEST_ID_HEADERS:
        value = header(headers, name)
        if value:
            return value
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP-date).

    Returns None when the header is absent or unreadable; never a negative number.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
            return None
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def decode_error_body(raw: RawResponse) -> tuple[JSON, str]:
    """Return ``(body, summary)``: the parsed JSON or truncated text, and a one-line summary."""
    text = raw.body.decode("utf-8", errors="replace")
    content_type = (header(raw.headers, "content-type") or "").lower()
    body: JSON
    try:
        body = _converter.loads(raw.body) if raw.body else None
    except ValueError:
        body = text[:BODY_LIMIT]
        if "html" in content_type or text.lstrip().startswith("<"):
            summary = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
        else:
            summary = _SPACE.sub(" ", text).strip()
    else:
        summary = _summarise_json(body)
    if len(summary) > MESSAGE_BODY_LIMIT:
        summary = summary[:MESSAGE_BODY_LIMIT] + "..."
    return body, summary


def _summarise_json(body: JSON) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "error_description"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return "; ".join(value)
    return _converter.dumps(body).decode("utf-8", errors="replace") if body is not None else ""


def error_from_response(request: Request, raw: RawResponse) -> APIStatusError:
    """The exception for a non-2xx response (never contains the API key)."""
    body, summary = decode_error_body(raw)
    status = raw.status
    reason = raw.reason or ""
    rid = request_id(raw.headers)
    message = f"{status} {reason}".rstrip() + f" for {request.method} {request.path}"
    if summary:
        message += f": {summary}"
    if rid:
        message += f" (request id {rid})"
    fields: dict[str, Any] = {
        "status": status,
        "method": request.method,
        "path": request.path,
        "body": body,
        "request_id": rid,
        "headers": raw.headers,
    }
    if status == 429:
        retry_after = parse_retry_after(header(raw.headers, "retry-after"))
        return RateLimitError(message, retry_after=retry_after, **fields)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIStatusError
    return cls(message, **fields)


def parse_response(request: Request, raw: RawResponse, cl: type[T]) -> T:
    """Check the status and build ``cl`` from the JSON body.

    Raises:
        APIStatusError: (a subclass of) for any non-2xx status.
        ResponseValidationError: the body is not JSON or does not match ``cl``.
    """
    if not 200 <= raw.status < 300:
        raise error_from_response(request, raw)
    try:
        data = _converter.loads(raw.body)
    except ValueError:
        snippet = raw.body[:80].decode("utf-8", errors="replace")
        raise ResponseValidationError(
            [f"body is not JSON: {snippet!r}"],
            method=request.method,
            path=request.path,
            type_name=_type_name(cl),
        ) from None
    try:
        return _converter.structure(data, cl)
    except _converter.InvalidData as exc:
        raise ResponseValidationError(
            exc.errors, method=request.method, path=request.path, type_name=_type_name(cl)
        ) from None


def _type_name(cl: object) -> str:
    args = getattr(cl, "__args__", ())
    if getattr(cl, "__origin__", None) is tuple and args:
        return f"list of {_type_name(args[0])}"
    return getattr(cl, "__name__", None) or str(cl)


@attrs.frozen(kw_only=True)
class PageInfo:
    """Values of the ``pagination-count/page/take`` response headers (None when absent)."""

    count: int | None
    page: int | None
    take: int | None


def page_info(headers: Mapping[str, str]) -> PageInfo:
    """Read the pagination headers, ignoring values that are not integers."""

    def read(name: str) -> int | None:
        value = header(headers, name)
        if value is None:
            return None
        try:
            return int(value.strip())
        except ValueError:
            return None

    return PageInfo(
        count=read("pagination-count"), page=read("pagination-page"), take=read("pagination-take")
    )


def has_next_page(info: PageInfo, page: int, take: int, items_on_page: int) -> bool:
    """Whether another page should be requested after ``page``.

    Uses the total count when the server sent it; otherwise a short (or empty) page is last.
    """
    if items_on_page == 0:
        return False
    if info.count is not None:
        size = info.take or take
        return page * size < info.count
    return items_on_page >= take


# --------------------------------------------------------------------------- retries


def is_retryable(exc: BaseException, idempotent: bool) -> bool:
    """Whether a failed attempt may be repeated.

    Idempotent calls retry connection errors, timeouts, 408, 429 and 500/502/503/504; a call
    whose deadline ran out is never retried.
    Creating calls retry only when the request certainly did not reach the server: a
    connection that could not be opened, or a 429 (the server refused to process it).
    """
    if isinstance(exc, APITimeoutError) and exc.deadline_exceeded:
        return False  # the call's own time is up
    if isinstance(exc, APIConnectionError):  # includes APITimeoutError
        return idempotent or not exc.request_sent
    if isinstance(exc, APIStatusError):
        if exc.status == 429:
            return True
        return idempotent and exc.status in RETRYABLE_STATUSES
    return False


def retry_after_of(exc: BaseException) -> float | None:
    """The server-requested delay carried by ``exc`` (429 or 503 with ``Retry-After``)."""
    if isinstance(exc, RateLimitError):
        return exc.retry_after
    if isinstance(exc, APIStatusError):
        return parse_retry_after(header(exc.headers, "retry-after"))
    return None


__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_TAKE",
    "Headers",
    "PageInfo",
    "RawResponse",
    "Request",
    "TransportRequest",
    "bounded_response",
    "build_path",
    "build_url",
    "decode_error_body",
    "error_from_response",
    "has_next_page",
    "header",
    "is_retryable",
    "json_body",
    "page_info",
    "parse_response",
    "parse_retry_after",
    "path_segment",
    "query_params",
    "raw_response",
    "read_limit",
    "redact_response",
    "request_id",
    "retry_after_of",
    "validate_base_url",
    "validate_page",
    "validate_take",
]
