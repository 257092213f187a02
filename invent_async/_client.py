"""AsyncInventClient: configuration, lifecycle, and the one request path.

Every call goes ``resource -> AsyncInventClient._send -> retries -> transport``; nothing else
opens connections or sleeps. Views made by :meth:`AsyncInventClient.for_org` and
:meth:`AsyncInventClient.with_options` share the parent's transport (session, connection pool)
and lifetime: close the parent, not the view.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from types import GenericAlias, TracebackType
from typing import TYPE_CHECKING, Final, Self, TypeVar

import aiohttp
import attrs

from ._exceptions import APITimeoutError, RateLimitError
from ._pagination import AsyncPager
from ._protocol import (
    DEFAULT_BASE_URL,
    PageInfo,
    RawResponse,
    Request,
    check_status,
    error_from_response,
    page_info,
    parse_response,
    path_segment,
    query_params,
    validate_base_url,
)
from ._ratelimit import GovernorDeadlineExceeded, GovernorStats, RateGovernor, RateLimit
from ._retry import RetryPolicy, attempt_counter, call_with_retries
from ._transport import AiohttpTransport
from ._types import QueryValue

if TYPE_CHECKING:
    from .resources.contacts import AsyncContacts
    from .resources.segments import AsyncSegments

__all__ = ["DEFAULT_RATE_LIMIT", "NO_LIMIT", "AsyncInventClient"]

T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_DEADLINE: Final = 120.0
DEFAULT_RATE_LIMIT: Final = RateLimit()
"""500 requests per minute with a burst of 5: the Invent API's documented per-IP limit."""
API_KEY_ENV: Final = "INVENT_API_KEY"


@attrs.frozen(kw_only=True)
class _Options:
    org_id: str
    timeout: float | None
    retry: RetryPolicy
    deadline: float | None


def _check_seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


class AsyncInventClient:
    """Async client for the Invent API.

    Use it as an async context manager (or call :meth:`aclose`)::

        async with AsyncInventClient(api_key="...") as client:
            contact = await client.contacts.add_segment("ct_123", "sg_vip")

    The aiohttp session is created on first use inside the running event loop and stays bound
    to that loop: create one client per event loop (in a web app, one per application, opened
    at startup and closed at shutdown).

    Args:
        api_key: The API key. Defaults to the ``INVENT_API_KEY`` environment variable.
        org_id: Organisation to act on; ``"c"`` is the key's own organisation. Use
            :meth:`for_org` for sub-organisations.
        base_url: API root. Must be ``https://``; plain ``http://`` is only accepted for
            loopback hosts (tests, :class:`~invent_async.testing.FakeInvent`).
        timeout: Seconds allowed for one HTTP attempt (None: no per-attempt limit).
        max_retries: Retries after a failed first attempt (see the retry rules in the README).
        deadline: Seconds allowed for a whole call, retries and waits included (None: none).
            When the server asks to wait beyond it, the call fails at once.
        session: An ``aiohttp.ClientSession`` to use instead of creating one. It stays yours:
            the client never closes it.
        rate_limit: The rate governor shared by every request of this client and its views:
            pacing (default 500 requests/minute, burst 5), a cool-down after any 429 that holds
            every queued and new request until ``Retry-After`` has passed, an optional cap on
            requests in flight (``max_in_flight``) and an optional adaptive mode. See
            :class:`RateLimit`. ``None`` turns the governor off entirely.
    """

    contacts: AsyncContacts
    segments: AsyncSegments

    def __init__(
        self,
        api_key: str | None = None,
        *,
        org_id: str = "c",
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        deadline: float | None = DEFAULT_DEADLINE,
        session: aiohttp.ClientSession | None = None,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key or not key.strip():
            raise ValueError(
                f"no API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
            )
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError("session must be an aiohttp.ClientSession")
        url = validate_base_url(base_url)
        options = _Options(
            org_id=_check_org(org_id),
            timeout=_check_seconds("timeout", timeout),
            retry=RetryPolicy(max_retries=max_retries),
            deadline=_check_seconds("deadline", deadline),
        )
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError("rate_limit must be a RateLimit or None")
        cap = rate_limit.max_in_flight if rate_limit is not None else None
        transport = AiohttpTransport(
            base_url=url,
            api_key=key.strip(),
            session=session,
            connection_limit=max(100, cap or 0),
        )
        governor = RateGovernor(rate_limit) if rate_limit is not None else None
        self._setup(url, transport, governor, options)

    def _setup(
        self,
        base_url: str,
        transport: AiohttpTransport,
        governor: RateGovernor | None,
        options: _Options,
    ) -> None:
        from .resources.contacts import AsyncContacts
        from .resources.segments import AsyncSegments

        self._base_url = base_url
        self._transport = transport
        self._governor = governor
        self._options = options
        self.contacts = AsyncContacts(self)
        self.segments = AsyncSegments(self)

    def _view(self, options: _Options) -> Self:
        view = object.__new__(type(self))
        view._setup(self._base_url, self._transport, self._governor, options)
        return view

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, org_id={self._options.org_id!r})"
        )

    # ------------------------------------------------------------------ configuration

    @property
    def base_url(self) -> str:
        """The API root this client talks to."""
        return self._base_url

    @property
    def org_id(self) -> str:
        """The organisation this client (or view) acts on."""
        return self._options.org_id

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate governor's settings (None when the governor is off)."""
        return self._governor.config if self._governor is not None else None

    def rate_limit_stats(self) -> GovernorStats | None:
        """A snapshot of the rate governor: waits, 429s seen, current rate, requests in flight."""
        return self._governor.stats() if self._governor is not None else None

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run (on this client or the client a view came from)."""
        return self._transport.closed

    def for_org(self, org_id: str) -> Self:
        """A view of this client that acts on another organisation (a sub-organisation).

        The view shares this client's session, connection pool and lifetime.
        """
        return self._view(attrs.evolve(self._options, org_id=_check_org(org_id)))

    def with_options(
        self,
        *,
        timeout: float | _NoLimit | None = None,
        max_retries: int | None = None,
        deadline: float | _NoLimit | None = None,
    ) -> Self:
        """A view with other per-call settings, e.g. ``client.with_options(max_retries=0)``.

        Arguments left out keep this client's values; pass :data:`NO_LIMIT` (a module
        constant) as ``timeout`` or ``deadline`` to remove the limit.
        """
        opts = self._options
        if timeout is not None:
            opts = attrs.evolve(opts, timeout=_limit("timeout", timeout))
        if deadline is not None:
            opts = attrs.evolve(opts, deadline=_limit("deadline", deadline))
        if max_retries is not None:
            opts = attrs.evolve(opts, retry=attrs.evolve(opts.retry, max_retries=max_retries))
        return self._view(opts)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._transport.check_usable()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's own aiohttp session. Safe to call more than once."""
        await self._transport.aclose()

    # ------------------------------------------------------------------ the request path

    async def _send(self, request: Request) -> RawResponse:
        """Send ``request`` through the governor and the retries; return a 2xx response.

        Each attempt waits for the rate governor first; that wait counts against the call's
        deadline but not against the attempt's HTTP timeout, which starts once it is sent.
        """
        opts = self._options
        transport = self._transport
        governor = self._governor
        transport.check_usable()
        deadline_at = None if opts.deadline is None else time.monotonic() + opts.deadline
        counter = attempt_counter.get()

        async def attempt() -> RawResponse:
            if counter is not None:
                counter.attempts += 1
            ticket = None
            if governor is not None:
                try:
                    ticket = await governor.acquire(deadline_at)
                except GovernorDeadlineExceeded as exc:
                    raise self._deadline_error(request, exc.wait) from None
            try:
                timeout = opts.timeout
                if deadline_at is not None:
                    left = deadline_at - time.monotonic()
                    if left <= 0:
                        raise self._deadline_error(request, None)
                    timeout = left if timeout is None else min(timeout, left)
                raw = await transport.send(request, attempt_timeout=timeout)
            finally:
                if ticket is not None:
                    ticket.release()
            if raw.status == 429:
                if counter is not None:
                    counter.rate_limited += 1
                error = error_from_response(request, raw)
                if governor is not None:
                    assert isinstance(error, RateLimitError)
                    governor.rate_limited(error.retry_after, ticket)
                raise error
            if governor is not None:
                governor.succeeded(ticket)
            check_status(request, raw)
            return raw

        return await call_with_retries(
            attempt, request, opts.retry, deadline_at, governed=governor is not None
        )

    def _deadline_error(self, request: Request, wait: float | None) -> APITimeoutError:
        why = f" (the rate governor would hold it {wait:.1f}s)" if wait is not None else ""
        return APITimeoutError(
            f"{request.method} {request.path}: the call's deadline of "
            f"{self._options.deadline}s ran out{why}",
            method=request.method,
            path=request.path,
            request_sent=False,
        )

    async def _request(self, request: Request, cl: type[T]) -> T:
        """Send ``request`` and build ``cl`` from the response body."""
        return parse_response(request, await self._send(request), cl)

    def _paginate(
        self,
        path: str,
        params: Mapping[str, QueryValue | None],
        item_type: type[T],
        *,
        take: int,
        page: int,
    ) -> AsyncPager[T]:
        """A pager over a list endpoint; each page is one ``GET`` through :meth:`_send`."""
        base_query = query_params(params)
        page_type: type[tuple[T, ...]] = GenericAlias(tuple, (item_type, ...))  # type: ignore[assignment]

        async def fetch(number: int, size: int) -> tuple[tuple[T, ...], PageInfo]:
            query = (*base_query, ("page", str(number)), ("take", str(size)))
            request = Request(method="GET", path=path, query=query)
            raw = await self._send(request)
            return parse_response(request, raw, page_type), page_info(raw.headers)

        return AsyncPager(fetch, page=page, take=take)

    def _org_path(self) -> tuple[str, tuple[str, str]]:
        return ("orgs", ("org_id", self._options.org_id))


class _NoLimit:
    """Type of :data:`NO_LIMIT`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_LIMIT"


NO_LIMIT: Final = _NoLimit()
"""Pass as ``timeout`` or ``deadline`` to :meth:`AsyncInventClient.with_options` for no limit."""


def _limit(name: str, value: float | _NoLimit) -> float | None:
    return None if isinstance(value, _NoLimit) else _check_seconds(name, value)


def _check_org(org_id: str) -> str:
    path_segment(org_id, "org_id")
    return org_id
