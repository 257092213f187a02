"""The error tree. Every exception the SDK raises on purpose is an :class:`InventError`::

    InventError
    ├── ClientStateError                 misuse of the client object itself (also a RuntimeError)
    │   ├── ClientClosedError            used after aclose()/close()
    │   └── WrongEventLoopError          used from another event loop than the one it started on
    ├── APIConnectionError               the request did not get an HTTP answer
    │   └── APITimeoutError              ... because a timeout or the overall deadline ran out
    ├── APIStatusError                   the API answered with a non-2xx status
    │   ├── BadRequestError              400
    │   ├── AuthenticationError          401
    │   ├── PermissionDeniedError        403
    │   ├── NotFoundError                404
    │   ├── ConflictError                409
    │   ├── UnprocessableEntityError     422
    │   ├── RateLimitError               429 (carries ``retry_after``)
    │   └── InternalServerError          5xx
    ├── ResponseValidationError          a 2xx body that does not match the model
    ├── ResponseTooLargeError            a 2xx body larger than ``max_response_bytes``
    ├── BulkAbortedError                 a bulk job stopped early (defined in ``_jobs.results``)
    ├── JournalError                     a bulk job's journal cannot be used (``_jobs.journal``)
    ├── BudgetSettingsError              a shared budget on Redis holds other settings (also a
    │                                    ValueError)
    ├── RedisUnavailableError            a shared budget's Redis server did not answer in time,
    │                                    or refused the operation (the governor falls back)
    └── BudgetServerConfigError          a shared budget's Redis server refuses this process as
                                         configured (credentials, ACL, TLS, no scripting)

Messages name the HTTP method and the URL *path*; they never contain the API key, the host's
credentials or request headers (a key that a server or proxy echoes back in a response is
replaced by ``<redacted>`` before the error is built). Building an error from a response lives
in ``_protocol``.

:func:`retry_after_header` reads the two errors that say "the rate budget cannot serve this in
time" (a :class:`RateLimitError`, an :class:`APITimeoutError` with ``deadline_exceeded``) as the
``Retry-After`` of a web app's 503.

Every error survives a pickle round trip with its type and attributes (to cross a process
pool, say); its cause, context and traceback stay behind, as for any pickled exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from multidict import CIMultiDict

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetServerConfigError",
    "BudgetSettingsError",
    "ClientClosedError",
    "ClientStateError",
    "ConflictError",
    "InternalServerError",
    "InventError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedisUnavailableError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "UnprocessableEntityError",
    "WrongEventLoopError",
    "retry_after_header",
]


E = TypeVar("E", bound=BaseException)


def _restore(cls: type[E], args: tuple[Any, ...]) -> E:
    """Unpickle an error without calling its ``__init__`` (most take keyword-only arguments);
    pickle then puts its attributes back."""
    return cls.__new__(cls, *args)


class InventError(Exception):
    """Base class of every error raised by invent_async."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args), self.__dict__)


class ClientStateError(InventError, RuntimeError):
    """The client object was used in a way its lifecycle does not allow."""


class ClientClosedError(ClientStateError):
    """The client (or the client a view belongs to) was already closed."""


class WrongEventLoopError(ClientStateError):
    """An AsyncInventClient was used from a different event loop than the one it started on."""


class APIConnectionError(InventError):
    """No HTTP response was received (DNS, refused connection, reset, TLS, ...).

    Attributes:
        method: HTTP method of the failed request.
        path: URL path of the failed request (no host, no query, no credentials).
        request_sent: False when the request certainly never reached the server (for example
            the connection could not be opened), True when it may have been received.
    """

    def __init__(self, message: str, *, method: str, path: str, request_sent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The request timed out, or the call's overall deadline ran out.

    Attributes:
        deadline_exceeded: True when the call's ``deadline`` ran out, or would have before the
            rate governor let the request go (then it was not sent); never retried, since no
            time is left. False for one attempt's ``timeout``.
        retry_after: When the rate governor refused the call because its deadline would run
            out first: the seconds it would have held the call, a hint for when the budget
            can serve it (a web app's ``Retry-After``). None otherwise, or when that wait was
            not known.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        request_sent: bool,
        deadline_exceeded: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path, request_sent=request_sent)
        self.deadline_exceeded = deadline_exceeded
        self.retry_after = retry_after


class APIStatusError(InventError):
    """The API answered with a non-success HTTP status.

    Attributes:
        status: HTTP status code.
        method: HTTP method of the request.
        path: URL path of the request (no host, no query, no credentials).
        body: The response body: decoded JSON when it was JSON, otherwise text (truncated).
        request_id: The request id header of the response, if the server sent one.
        headers: The response headers (a case-insensitive copy, repeated names kept).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        path: str,
        body: Any,
        request_id: str | None,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        self.request_id = request_id
        self.headers: Mapping[str, str] = CIMultiDict(headers)  # aiohttp's proxy won't pickle


class BadRequestError(APIStatusError):
    """400: the request was invalid (bad parameters or body)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or invalid, or the endpoint is not open to API keys."""


class PermissionDeniedError(APIStatusError):
    """403: the API key may not do this."""


class NotFoundError(APIStatusError):
    """404: the resource (or organisation) does not exist."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's current state."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well-formed but could not be processed."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Attributes:
        retry_after: Seconds the server asked us to wait (from ``Retry-After``), or None.
    """

    def __init__(self, message: str, *, retry_after: float | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the API (or a proxy in front of it) failed."""


class ResponseTooLargeError(InventError):
    """A successful response's body was larger than the client's ``max_response_bytes``.

    Reading stopped at the limit (counted after decompression), so no more than about that
    much was ever held in memory. Not retried: the same request would get the same answer.

    Attributes:
        method: HTTP method of the request.
        path: URL path of the request.
        status: The response's HTTP status.
        limit: The ``max_response_bytes`` that was exceeded.
        request_id: The request id header of the response, if the server sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status: int,
        limit: int,
        request_id: str | None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.limit = limit
        self.request_id = request_id


class ResponseValidationError(InventError):
    """A successful response did not have the shape the SDK expects.

    Attributes:
        errors: One line per problem, each naming the field path, e.g.
            ``"required field missing @ $.channels[0].id"``.
        method: HTTP method of the request.
        path: URL path of the request.
        type_name: What the body should have been, e.g. ``"Contact"``.
    """

    def __init__(self, errors: list[str], *, method: str, path: str, type_name: str) -> None:
        shown = "; ".join(errors[:5]) + ("; ..." if len(errors) > 5 else "")
        super().__init__(f"{method} {path}: response is not a valid {type_name}: {shown}")
        self.errors = errors
        self.method = method
        self.path = path
        self.type_name = type_name


class BudgetSettingsError(InventError, ValueError):
    """A rate budget shared on a Redis server holds other settings than this process asks
    for, or (joining it with ``RateLimit(per_minute=None, redis_url=...)``) holds none.

    A configuration error, raised by the call that first asks the server (nothing is booked
    for it), and by every later one; never retried and never taken for an outage. The
    settings are stored by the first process of the budget and kept while any process uses
    it (see ``docs/many-workers.md``).

    Attributes:
        budget: The budget's name on the server (``budget@host:port``).
        stored: The settings the server holds (``per_minute=600.0 burst=1 ...``), or None
            when it holds none.
        asked: The settings this process asks for, or None when it joins.
    """

    def __init__(self, message: str, *, budget: str, stored: str | None, asked: str | None) -> None:
        super().__init__(message)
        self.budget = budget
        self.stored = stored
        self.asked = asked


class BudgetServerConfigError(InventError):
    """The Redis server of a shared rate budget refuses this process as it is configured:
    ``problem`` says how, the message says how to fix it.

    - ``"auth"``: no password, a wrong one, or an unknown user (``redis_url`` takes them as
      ``redis://USER:PASSWORD@host:6379/0``);
    - ``"permission"``: an ACL user that may not run the budget's commands (``EVAL``,
      ``EVALSHA``, ``SCRIPT``) on its keys (``invent:*``);
    - ``"command"``: a server or proxy that does not run Lua scripts;
    - ``"tls"``: ``rediss://`` to a server that speaks plain Redis (no TLS handshake).

    A configuration error, not an outage: raised by every call that asks the server (nothing
    is booked or sent), and by ``rate_limit_fleet_stats()``; never retried, no fallback pacing
    (which would run each process at its share of the limit for as long as the mistake lasts),
    and a bulk job stops at it. The message shows the server's URL with its password hidden.

    Attributes:
        budget: The budget's name on the server (``budget@host:port``).
        problem: ``"auth"``, ``"permission"``, ``"command"`` or ``"tls"``.
    """

    def __init__(self, message: str, *, budget: str, problem: str) -> None:
        super().__init__(message)
        self.budget = budget
        self.problem = problem


class RedisUnavailableError(InventError):
    """The budget's server did not answer in time, or not at all, or refused the operation
    (out of memory, a read-only replica, ...): the governor falls back."""


def retry_after_header(error: BaseException) -> str | None:
    """The ``Retry-After`` of an HTTP 503 for a call the rate budget could not serve in time.

    A web app answers such a call with 503 Service Unavailable and this header (whole seconds,
    rounded up, at least 1), instead of letting the error become a 500:

    - :class:`RateLimitError`: the API answered 429 and the retries allowed by the call's
      deadline did not get through; its ``retry_after`` (the API's ``Retry-After``);
    - :class:`APITimeoutError` with ``deadline_exceeded``: the call's deadline ran out, or
      would have, before the rate governor let it go; its ``retry_after`` (how long the
      governor would have held it).

    ``"1"`` when that wait is not known.

    .. code-block:: python

        from invent_async import APITimeoutError, RateLimitError, retry_after_header

        assert retry_after_header(APITimeoutError(
            "GET /contacts/ct_1: the call's deadline of 10.0s ran out", method="GET",
            path="/contacts/ct_1", request_sent=False, deadline_exceeded=True, retry_after=12.2,
        )) == "13"
        assert retry_after_header(ValueError("not about the budget")) is None

    Args:
        error: Any exception.

    Returns:
        The header's value, or None for any other error, an :class:`APITimeoutError` of one
        attempt's ``timeout`` included (the API was slow: a 504 rather than a 503).
    """
    if not isinstance(error, RateLimitError | APITimeoutError):
        return None
    if isinstance(error, APITimeoutError) and not error.deadline_exceeded:
        return None
    wait = error.retry_after
    if wait is None or not math.isfinite(wait):
        return "1"
    return str(max(1, math.ceil(wait)))
