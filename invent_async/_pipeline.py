"""The request path, top to bottom: every call of every resource goes through :class:`Pipeline`.

One call is ``Pipeline.send(request)``::

    check the client is open, on its loop
    for each attempt (the first one directly, the others under backoff, see ``_retry``):
        governor.acquire(deadline - floor) pacing, the 429 cool-down gate, the concurrency cap
        still open?                       a client closed meanwhile sends nothing more
        less than the floor left?         the slot goes back, the call fails unsent
        timeout = min(attempt timeout, what is left of the deadline)
        transport.send(...)               any AsyncTransport; aiohttp by default
        ticket.release(sent=...)          whatever happened (unsent: the slot goes back)
        body within max_response_bytes?   else ResponseTooLargeError (an error body is cut)
        non-2xx -> the key redacted       a proxy may echo the request's headers
        429  -> governor.rate_limited()   closes the gate for every request; retried, unless
                                          its Retry-After is above max_retry_after
        else -> governor.succeeded()
        non-2xx -> the APIStatusError subclass (``_protocol``); retried when retryable

:class:`Core` is what a client shares with all of its views: the transport, the governor, the
request headers and the lifecycle (closed, the event loop it is bound to, the warning for a
client nobody closed). A :class:`Pipeline` is a core plus the :class:`Options` of one view;
views are new pipelines over the same core. Attempts are counted into an explicit
:class:`CallStats` when the caller passes one (the bulk engine does, per item).

The **send floor** (``_send_floor``) is the least time a call's deadline must still leave for
a request to be sent: the governor is asked with the deadline minus the floor (a slot that
would come later is refused before anything is booked), and an attempt left with less than
the floor once it has its ticket gives its slot back and fails unsent. Either way the call
fails with ``APITimeoutError(deadline_exceeded=True, request_sent=False)`` saying why.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
import weakref
from collections.abc import Callable, Coroutine, Mapping
from types import GenericAlias
from typing import Final, TypeVar

from ._exceptions import (
    APITimeoutError,
    ClientClosedError,
    InventError,
    RateLimitError,
    ResponseValidationError,
    WrongEventLoopError,
)
from ._governor import Governor
from ._governor_registry import lease as budget_lease
from ._limits import DEFAULT_MAX_RETRY_AFTER, FleetStats, GovernorDeadlineExceeded, GovernorStats
from ._observe import Attempt, Operation, Server
from ._observe import operation as observe
from ._pagination import AsyncPager
from ._protocol import (
    Headers,
    PageInfo,
    RawResponse,
    Request,
    TransportRequest,
    bounded_response,
    build_path,
    build_url,
    error_from_response,
    is_retryable,
    page_info,
    parse_response,
    query_params,
    redact_response,
)
from ._raw import Recorder
from ._retry import retry_after
from ._secret import Secret
from ._send_floor import SLACK, AnswerTimes
from ._settings import Options, Settings
from ._transport import USER_AGENT, AsyncTransport
from ._types import QueryValue

__all__ = ["CallStats", "Core", "Pipeline", "RecordingPipeline"]

T = TypeVar("T")

_UNCLOSED: Final = (
    "AsyncInventClient was not closed: use 'async with AsyncInventClient() as client:' "
    "or 'await client.aclose()'"
)


class CallStats:
    """Counts the HTTP attempts of one logical call (the bulk engine keeps one per item).

    Attributes:
        attempts: Attempts started (each one waits for the governor first).
        sent: Attempts handed to the transport: the requests the server may have seen. (On a
            session passed as ``session=``, aiohttp may itself send an idempotent request once
            more, unseen here, when a reused keep-alive connection turns out to have been
            closed by the server; the client's own session does not.)
        rate_limited: Attempts answered 429.
    """

    __slots__ = ("attempts", "rate_limited", "sent")

    def __init__(self) -> None:
        self.attempts = 0
        self.sent = 0
        self.rate_limited = 0


class _Lifecycle:
    """A core's state that its unclosed-client finalizer reads (it holds no core)."""

    __slots__ = ("closed", "loop", "used")

    def __init__(self) -> None:
        self.closed = False
        self.used = False
        self.loop: asyncio.AbstractEventLoop | None = None


def _in_a_test() -> str:
    """Advice for a loop mix-up inside a pytest test (where the usual advice does not fit)."""
    if "PYTEST_CURRENT_TEST" not in os.environ:
        return ""
    return (
        " In a test: make the client in the test itself, or take the invent_client fixture "
        "(it binds to the test's loop); an async fixture may run on another loop than the "
        "test (pytest-asyncio's loop scopes, an anyio test beside pytest-asyncio)."
    )


def _warn_unclosed(state: _Lifecycle) -> None:
    if state.used and not state.closed:
        warnings.warn(_UNCLOSED, ResourceWarning, stacklevel=1)


class Core:
    """What a client shares with its views: transport, governor, headers, lifecycle.

    The governor is leased from ``_governor_registry`` (by default shared with every client of the
    process on the same API host and budget) and given back in :meth:`aclose`,
    :meth:`abandon`, or when the core is collected unclosed.

    Args:
        settings: The client's settings (base URL, key, rate limit).
        transport: Where requests go.
        owns_resources: Whether closing the client releases something (it does unless the
            caller lent it an aiohttp session); only then does an unclosed client warn when
            it is collected.
    """

    def __init__(self, settings: Settings, transport: AsyncTransport, *, owns_resources: bool):
        limit = settings.rate_limit
        # the governor: the budget's shared one (ValueError on other settings), or our own
        lease = budget_lease(settings.base_url, limit) if limit is not None else None
        self.governor: Governor | None = lease.governor if lease is not None else None
        self._lease = weakref.finalize(self, lease.release) if lease is not None else None
        self.transport = transport
        # the longest Retry-After a call waits for (the default one without a governor)
        self.max_retry_after = (
            limit.max_retry_after if limit is not None else DEFAULT_MAX_RETRY_AFTER
        )
        self.base_url = settings.base_url
        self.server = Server(settings.base_url)
        self._secret = settings.api_key
        # the answer times of calls with a deadline: the send floor (see _send_floor)
        self.answer_times = AnswerTimes()
        self._max_response_bytes = settings.max_response_bytes
        self._headers = Headers(
            {
                "Authorization": f"Bearer {settings.api_key.reveal()}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            }
        )
        self._body_headers = Headers({**self._headers, "Content-Type": "application/json"})
        self._state = _Lifecycle()
        self._finalizer = weakref.finalize(self, _warn_unclosed, self._state)
        if not owns_resources:
            self._finalizer.detach()

    def __repr__(self) -> str:
        return f"<Core base_url={self.base_url!r} closed={self.closed}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run."""
        return self._state.closed

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the client was first used on (None: not used yet)."""
        return self._state.loop

    def check_open(self) -> None:
        """Raise :class:`ClientClosedError` once :meth:`aclose` has run."""
        if self._state.closed:
            raise ClientClosedError(
                "this AsyncInventClient is closed; create a new client "
                "(or keep using it inside 'async with')"
            )

    def check_usable(self) -> None:
        """Raise if closed, or if called on another event loop than the first one used."""
        self.check_open()
        state = self._state
        loop = asyncio.get_running_loop()
        if state.loop is None:
            state.loop = loop
        elif loop is not state.loop:
            raise WrongEventLoopError(
                "this AsyncInventClient was first used on another event loop "
                f"({_describe(state.loop)}); aiohttp sessions are bound to one loop. Create "
                "one client per event loop (for example inside the coroutine you pass to "
                "asyncio.run()), or use the synchronous InventClient from blocking code."
                + _in_a_test()
            )

    def wire(self, request: Request) -> TransportRequest:
        """``request`` as the transport sends it: absolute URL and every header."""
        self._state.used = True
        headers = self._body_headers if request.body is not None else self._headers
        # build_url's work only for a query string (to encode); else it is base + path
        url = build_url(self.base_url, request) if request.query else self.base_url + request.path
        return TransportRequest(
            method=request.method,
            url=url,
            path=request.path,
            headers=headers,
            body=request.body,
            max_response_bytes=self._max_response_bytes,
        )

    @property
    def secret(self) -> Secret:
        """The API key, in its redacting wrapper."""
        return self._secret

    def redact_validation(self, exc: ResponseValidationError) -> ResponseValidationError:
        """``exc`` again, with the API key replaced in its messages (a 2xx that echoed it)."""
        errors = [self._secret.redact_text(line) for line in exc.errors]
        if errors == exc.errors:
            return exc
        return ResponseValidationError(
            errors, method=exc.method, path=exc.path, type_name=exc.type_name
        )

    def stats(self) -> GovernorStats | None:
        """The governor's counters (None when it is off)."""
        return self.governor.stats() if self.governor is not None else None

    async def fleet_stats(self) -> FleetStats | None:
        """The counters of the budget shared beyond this process, on Redis or on this host
        (None when there is none)."""
        governor = self.governor
        return await governor.fleet_stats() if governor is not None else None

    def reopen(self) -> float:
        """Open the governor's 429 cool-down gate now; seconds it had left (0: it was open)."""
        return self.governor.reopen() if self.governor is not None else 0.0

    async def aclose(self) -> None:
        """Close the transport (idempotent), on the event loop the client was used on.

        If that loop is already closed, its connections died with it: the client is marked
        closed and the transport told to drop them.
        """
        state = self._state
        if state.closed:
            return
        loop = state.loop
        elsewhere = loop is not None and asyncio.get_running_loop() is not loop
        if state.used and elsewhere and loop is not None and not loop.is_closed():
            raise WrongEventLoopError(
                f"close this AsyncInventClient on the event loop it was used on ({_describe(loop)})"
                + _in_a_test()
            )
        state.closed = True
        governor = self.governor
        if self._release_budget() and governor is not None:
            await governor.aclose()  # the last user of what it holds on this loop
        await self.transport.aclose()

    def abandon(self) -> None:
        """Give up on this client without closing it: it will not warn when collected, and
        gives its budget back."""
        self._finalizer.detach()
        self._release_budget()

    def _release_budget(self) -> bool:
        """Give the lease on the governor back (once; the GC does it for an unclosed client).

        Returns:
            True when nobody else uses the governor any more.
        """
        return self._lease is not None and bool(self._lease())


class Pipeline:
    """The request path of one view: a :class:`Core` and that view's :class:`Options`."""

    __slots__ = ("_core", "_options", "_prefix")

    def __init__(self, core: Core, options: Options) -> None:
        self._core = core
        self._options = options
        self._prefix = build_path("orgs", ("org_id", options.org_id))

    @property
    def options(self) -> Options:
        """This view's options."""
        return self._options

    @property
    def max_retry_after(self) -> float:
        """The longest ``Retry-After`` a call waits for; a longer one fails it at once."""
        return self._core.max_retry_after

    def with_options(self, options: Options) -> Pipeline:
        """A pipeline over the same core with other options (a view)."""
        return Pipeline(self._core, options)

    def governor_stats(self) -> GovernorStats | None:
        """The rate governor's counters and current rate (None when it is off)."""
        return self._core.stats()

    @property
    def prefix(self) -> str:
        """This view's organisation as the start of a path, encoded once (``/orgs/{org}``):
        what an endpoint's request is built under (``ENDPOINT.request(prefix, *ids)``)."""
        return self._prefix

    def call(
        self, request: Request, cl: type[T], stats: CallStats | None = None
    ) -> Coroutine[None, None, T]:
        """Send ``request`` and build ``cl`` from the response body (await the result).

        A plain function returning the coroutine of :meth:`_run`: one coroutine per call."""
        return self._run(request, stats, lambda raw: self._parse(request, raw, cl))

    def _parse(self, request: Request, raw: RawResponse, cl: type[T]) -> T:
        try:
            return parse_response(request, raw, cl)
        except ResponseValidationError as exc:
            error = self._core.redact_validation(exc)
        raise error

    def send(
        self, request: Request, stats: CallStats | None = None
    ) -> Coroutine[None, None, RawResponse]:
        """Send ``request`` through the governor and the retries; return (to await) a 2xx
        response.

        Each attempt waits for the rate governor first; that wait counts against the call's
        deadline but not against the attempt's HTTP timeout, which starts once it is sent.
        """
        return self._run(request, stats, _as_is)

    async def _run(
        self, request: Request, stats: CallStats | None, result: Callable[[RawResponse], T]
    ) -> T:
        """One call: its attempts (the first one directly, the others under backoff), and
        ``result(raw)`` of the 2xx response.

        When something observes (``_observe``: an OpenTelemetry provider, ``INVENT_LOG``),
        the call is an operation span and each attempt a child span and a log record;
        otherwise the only cost is asking.
        """
        core = self._core
        core.check_usable()
        options = self._options
        obs = observe(
            request,
            core.server,
            core.secret,
            org_id=options.org_id,
            lane=options.lane,
            bulk_item=options.bulk_item,
        )
        deadline_at = None if options.deadline is None else time.monotonic() + options.deadline
        wire = core.wire(request)
        try:
            failure: InventError | None = None
            try:
                raw = await (
                    self._attempt(request, wire, deadline_at, stats, None, first=True)
                    if obs is None
                    else self._observed(request, wire, deadline_at, stats, obs, first=True)
                )
            except InventError as exc:
                if options.retry.max_retries == 0 or not is_retryable(exc, request.idempotent):
                    raise
                failure = exc
            if failure is not None:
                raw = await retry_after(
                    failure,
                    lambda: self._observed(request, wire, deadline_at, stats, obs),
                    request,
                    options.retry,
                    deadline_at,
                    governed=core.governor is not None,
                    max_retry_after=core.max_retry_after,
                )
            value = result(raw)
        except BaseException as exc:
            if obs is not None:
                obs.end(exc)
            raise
        if obs is not None:
            obs.end(None)
        return value

    async def _observed(
        self,
        request: Request,
        wire: TransportRequest,
        deadline_at: float | None,
        stats: CallStats | None,
        obs: Operation | None,
        *,
        first: bool = False,
    ) -> RawResponse:
        """One attempt, observed as a span, metrics and a log record when ``obs`` is set."""
        if obs is None:
            return await self._attempt(request, wire, deadline_at, stats, None, first=first)
        attempt = obs.attempt()
        try:
            raw = await self._attempt(request, wire, deadline_at, stats, attempt, first=first)
        except BaseException as exc:
            attempt.end(None, exc)
            raise
        attempt.end(raw, None)
        return raw

    async def _attempt(
        self,
        request: Request,
        wire: TransportRequest,
        deadline_at: float | None,
        stats: CallStats | None,
        attempt: Attempt | None,
        *,
        first: bool = False,
    ) -> RawResponse:
        """One attempt; ``first``: nothing was awaited since ``_run`` checked the client."""
        if stats is not None:
            stats.attempts += 1
        core = self._core
        governor = core.governor
        options = self._options
        ticket = None
        floor = 0.0
        if deadline_at is not None:
            assert options.deadline is not None
            floor = core.answer_times.floor(options.timeout, options.deadline)
        if governor is not None:
            try:
                ticket = await governor.acquire(
                    None if deadline_at is None else deadline_at - floor - SLACK, options.lane
                )
            except GovernorDeadlineExceeded as exc:
                raise self._deadline_error(request, exc.wait, deadline_at, floor) from None
        sent = False
        try:
            if ticket is not None or not first:
                core.check_open()  # closed while this attempt waited (governor, retry backoff)
            timeout = options.timeout
            started = 0.0
            if deadline_at is not None:
                started = time.monotonic()
                left = deadline_at - started
                if left < floor:  # an unknown wait used it up: the slot goes back, unsent
                    raise self._deadline_error(request, None, deadline_at, floor)
                timeout = left if timeout is None else min(timeout, left)
            if stats is not None:
                stats.sent += 1
            sent = True
            try:
                if attempt is None:
                    raw = await core.transport.send(wire, attempt_timeout=timeout)
                else:
                    admitted = attempt.admitted(ticket.waited if ticket is not None else 0.0, wire)
                    try:
                        raw = await core.transport.send(admitted, attempt_timeout=timeout)
                    finally:
                        attempt.sent()
            except APITimeoutError:
                if deadline_at is not None:
                    core.answer_times.record(time.monotonic() - started)
                raise
            if deadline_at is not None:
                core.answer_times.record(time.monotonic() - started)
        finally:
            if ticket is not None:
                ticket.release(sent=sent)
        raw = bounded_response(wire, raw, core.secret)  # cut, without a key split by the cut
        if 200 <= raw.status < 300:
            if governor is not None:
                governor.succeeded(ticket)
            return raw
        raw = redact_response(raw, core.secret)
        if raw.status == 429:
            if stats is not None:
                stats.rate_limited += 1
            error = error_from_response(request, raw)
            if governor is not None:
                assert isinstance(error, RateLimitError)
                governor.rate_limited(error.retry_after, ticket)
            raise error
        if governor is not None:
            governor.succeeded(ticket)
        raise error_from_response(request, raw)

    def _deadline_error(
        self, request: Request, wait: float | None, deadline_at: float | None, floor: float
    ) -> APITimeoutError:
        """The error of a call that is not sent for its deadline: the governor would hold it
        ``wait`` seconds (None: unknown, it waited and too little is left), and a request
        needs ``floor`` seconds left to be answered. Rounded for people."""
        deadline = self._options.deadline
        assert deadline is not None
        assert deadline_at is not None
        left = deadline_at - time.monotonic()
        if wait is None:
            why = (
                f"the call's deadline of {human(deadline)} ran out while it waited"
                if left <= 0
                else f"only {human(left)} of the call's deadline of {human(deadline)} was left "
                "once it could go"
            )
        elif wait >= left:
            why = (
                f"the rate budget would hold it {human(wait)}, past the call's deadline of "
                f"{human(deadline)}"
            )
        else:
            why = (
                f"the rate budget would hold it {human(wait)}, too close to the call's "
                f"deadline of {human(deadline)}"
            )
        return APITimeoutError(
            f"{request.method} {request.path} not sent: {why} (a request needs at least "
            f"{human(floor)} left to be answered)",
            method=request.method,
            path=request.path,
            request_sent=False,
            deadline_exceeded=True,
            retry_after=wait,
        )

    def paginate(
        self,
        first: Request,
        params: Mapping[str, QueryValue | None],
        item_type: type[T],
        *,
        take: int,
        page: int,
        stats: CallStats | None = None,
    ) -> AsyncPager[T]:
        """A pager over a list endpoint: each page is ``first`` (an endpoint's request, its
        ids already checked: ``ENDPOINT.request(prefix, *ids)``) with the query of
        ``params`` and the page's ``page``/``take``, one operation through :meth:`call`.

        ``stats`` counts the attempts of every page fetched (a segment sync's reads).
        """
        base_query = (*first.query, *query_params(params))
        page_type: type[tuple[T, ...]] = GenericAlias(tuple, (item_type, ...))  # type: ignore[assignment]

        def parsed(request: Request, raw: RawResponse) -> tuple[tuple[T, ...], PageInfo]:
            return self._parse(request, raw, page_type), page_info(raw.headers)

        async def fetch(number: int, size: int) -> tuple[tuple[T, ...], PageInfo]:
            request = Request(
                method=first.method,
                path=first.path,
                query=(*base_query, ("page", str(number)), ("take", str(size))),
                body=first.body,
                idempotent=first.idempotent,
                operation=first.operation,
                template=first.template,
            )
            return await self._run(request, stats, lambda raw: parsed(request, raw))

        return AsyncPager(fetch, page=page, take=take)


class RecordingPipeline(Pipeline):
    """A pipeline that hands each call's final 2xx response to a :class:`Recorder` (the
    views ``with_raw_response`` makes); the request path is the one of :class:`Pipeline`."""

    __slots__ = ("_recorder",)

    def __init__(self, core: Core, options: Options, recorder: Recorder) -> None:
        super().__init__(core, options)
        self._recorder = recorder

    def with_options(self, options: Options) -> Pipeline:
        """A recording pipeline over the same core and recorder, with other options."""
        return RecordingPipeline(self._core, options, self._recorder)

    async def _run(
        self, request: Request, stats: CallStats | None, result: Callable[[RawResponse], T]
    ) -> T:
        record = self._recorder.record

        def recorded(raw: RawResponse) -> T:
            record(raw)
            return result(raw)

        return await super()._run(request, stats, recorded)


def human(seconds: float) -> str:
    """``seconds`` rounded for people: ``2 ms``, ``0.5 s``, ``2.4 s``, ``14 s``, ``3.5 min``."""
    if seconds < 0.1:
        return f"{max(seconds, 0.0) * 1000:.0f} ms"
    if seconds < 9.95:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f}".removesuffix(".0") + " min"


def _as_is(raw: RawResponse) -> RawResponse:
    return raw


def _describe(loop: asyncio.AbstractEventLoop) -> str:
    state = "closed" if loop.is_closed() else "running" if loop.is_running() else "not running"
    return f"{type(loop).__name__} at {id(loop):#x}, {state}"
