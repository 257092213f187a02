"""The transport seam: the :class:`AsyncTransport` protocol and its aiohttp implementation.

A transport sends one :class:`~invent_async._protocol.TransportRequest` (absolute URL, headers,
body) and returns the :class:`~invent_async._protocol.RawResponse`, whatever its status. When
no answer comes it raises :class:`APIConnectionError` (:class:`APITimeoutError` for a
timeout). No retries, no parsing, no sleeping, no rate limiting: the client's pipeline does
those, the same way for every transport.

:class:`AiohttpTransport` is the default. It creates its ``ClientSession`` lazily on first use
inside the running loop; an injected session belongs to the caller and is never closed here.
aiohttp's exception objects (some carry the request headers, hence the API key) never stay
reachable from the errors raised.
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import AsyncGenerator
from typing import Final, Protocol, runtime_checkable

import aiohttp
from yarl import URL

from ._exceptions import APIConnectionError, APITimeoutError, ClientClosedError
from ._protocol import RawResponse, TransportRequest, raw_response, read_limit
from ._secret import redact_text
from ._version import __version__

__all__ = ["USER_AGENT", "AiohttpTransport", "AsyncTransport", "timeout_error"]

USER_AGENT: Final = (
    f"invent-async/{__version__} aiohttp/{aiohttp.__version__} python/{platform.python_version()}"
)


@runtime_checkable
class AsyncTransport(Protocol):
    """What the client sends its requests through (advanced API).

    The default is aiohttp (:class:`AiohttpTransport`); pass another implementation as
    ``AsyncInventClient(transport=...)``, for example :class:`invent_async.testing.MockTransport`
    to answer requests in memory. The client still paces, retries, times and parses every
    call; a transport only moves bytes.
    """

    async def send(
        self, request: TransportRequest, *, attempt_timeout: float | None
    ) -> RawResponse:
        """Send one request and return its response, whatever the status.

        Args:
            request: The method, absolute URL, headers (``Authorization`` included) and body,
                and how much of the response body to read at most
                (:func:`~invent_async._protocol.read_limit` of the status and
                ``request.max_response_bytes``: stop reading once past it; the client
                raises or cuts the body).
            attempt_timeout: Seconds the attempt may take (None: no limit); the client has
                already shortened it to what is left of the call's deadline.

        Raises:
            APIConnectionError: no response came; ``request_sent=False`` only when the
                request certainly did not reach the server. APITimeoutError for a timeout.
        """
        ...

    async def aclose(self) -> None:
        """Release the transport's connections (the client calls it once, from aclose)."""
        ...


class AiohttpTransport:
    """Sends requests over one aiohttp ClientSession bound to the loop it was created on.

    A response body is read chunk by chunk and reading stops once it is past the request's
    limit, so a hostile or broken server (an endless body, a gzip bomb) costs at most about
    ``max_response_bytes`` of memory. aiohttp (3.13.3 and later) decompresses incrementally,
    at most one chunk per step, so a bomb never holds the event loop.
    """

    def __init__(
        self, *, session: aiohttp.ClientSession | None = None, connection_limit: int = 100
    ) -> None:
        self._injected = session
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = session  # None: made on first use
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._origins: dict[str, URL | None] = {}
        self._watcher: AsyncGenerator[None] | None = None

    def __repr__(self) -> str:
        return f"<AiohttpTransport injected_session={self._injected is not None}>"

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:  # never open a session (nor use a lent one) once closed
            raise ClientClosedError("this transport is closed")
        if self._injected is not None:
            return self._injected
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(limit=self._connection_limit)
            session = self._session = aiohttp.ClientSession(connector=connector)
            # aiohttp sends a GET or DELETE again, at once and unseen, when a kept-alive
            # connection turns out dropped: that request skips the rate governor, the retry
            # rules (max_retries=0) and the logs. Only the SDK retries (a dropped connection
            # is an APIConnectionError it retries by its rules). aiohttp has no public switch.
            session._retry_connection = False
            self._session_loop = asyncio.get_running_loop()
            self._watcher = _close_at_loop_shutdown(session)
            await anext(self._watcher)
        return session

    def _timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=seconds)
            if len(self._timeouts) < 64:
                self._timeouts[seconds] = timeout
        return timeout

    def _url(self, url: str, path: str) -> URL:
        """``URL(url, encoded=True)``; for ``origin + path`` (no query), the cached origin's
        ``with_path(path, encoded=True)``: the same URL, three times cheaper to make."""
        if "?" in url or "#" in url or not url.endswith(path) or not path.startswith("/"):
            return URL(url, encoded=True)
        origin = url[: len(url) - len(path)]
        try:
            base = self._origins[origin]
        except KeyError:
            base = URL(origin, encoded=True)
            if base.raw_path not in ("", "/") or base.raw_query_string or base.raw_fragment:
                base = None  # a base URL with a path of its own: not an origin
            if len(self._origins) < 16:
                self._origins[origin] = base
        if base is None:
            return URL(url, encoded=True)
        return base.with_path(path, encoded=True)

    async def send(
        self, request: TransportRequest, *, attempt_timeout: float | None
    ) -> RawResponse:
        """Send one request; raise APIConnectionError/APITimeoutError when no answer came."""
        session = self._session
        if session is None or self._closed:
            session = await self._get_session()
        try:
            async with session.request(
                request.method,
                self._url(request.url, request.path),
                data=request.body,
                headers=request.headers,
                timeout=self._timeout(attempt_timeout),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                limit = read_limit(status, request.max_response_bytes)
                length = resp.content_length
                if limit is None or (
                    length is not None and length <= limit and not resp.headers.get(_ENCODING)
                ):
                    body = await resp.read()
                else:
                    body = await _read_at_most(resp.content, limit)
                return raw_response(status, resp.reason or "", resp.headers, body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            error = _connection_error(request, exc, attempt_timeout)
        # Raised outside the except block: aiohttp's exception objects (some carry the request
        # headers, hence the API key) must not stay reachable as __cause__ or __context__.
        raise error

    async def aclose(self) -> None:
        """Close the session it created (an injected one stays open); send nothing more.

        If the session's event loop is already closed, the session was closed when that loop
        shut down (``asyncio.run`` and ``anyio.run`` close a loop's async generators first):
        nothing is left to do.
        """
        self._closed = True
        self._session = None
        loop, self._session_loop = self._session_loop, None
        watcher, self._watcher = self._watcher, None
        if watcher is None or (loop is not None and loop.is_closed()):
            return
        await watcher.aclose()  # closes the session


async def _close_at_loop_shutdown(session: aiohttp.ClientSession) -> AsyncGenerator[None]:
    """Closes ``session`` when closed: by ``aclose``, or by the loop's shutdown.

    Started once on the session's loop, it registers with the loop's async-generator hooks,
    so a loop shut down with the client still open (``asyncio.run`` returning without
    ``aclose``) closes the session's sockets instead of leaking them.
    """
    try:
        yield
    finally:
        if not session.closed:
            await session.close()
            await asyncio.sleep(0)  # let aiohttp's transports finish closing


_ENCODING: Final = "Content-Encoding"


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes and one chunk more: reading stops there (the
    connection is then closed rather than reused)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await content.readany()
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def timeout_error(
    request: TransportRequest, attempt_timeout: float | None, *, request_sent: bool
) -> APITimeoutError:
    """The error of an attempt that outlasted its timeout (for any transport)."""
    return APITimeoutError(
        f"{request.method} {request.path} timed out after {attempt_timeout}s",
        method=request.method,
        path=request.path,
        request_sent=request_sent,
    )


def _connection_error(
    request: TransportRequest, exc: TimeoutError | aiohttp.ClientError, timeout: float | None
) -> APIConnectionError:
    """The SDK error for an aiohttp failure; its message never includes request headers, nor
    the key where aiohttp quotes a response that echoed it."""
    method, path = request.method, request.path
    if isinstance(exc, TimeoutError):  # before ClientError: ServerTimeoutError is both
        sent = not isinstance(exc, aiohttp.ConnectionTimeoutError)
        return timeout_error(request, timeout, request_sent=sent)
    if isinstance(exc, aiohttp.ClientConnectorError):
        message, sent = f"could not connect for {method} {path}: {exc}", False
    elif isinstance(exc, aiohttp.ClientResponseError):
        message = f"connection error during {method} {path}: {type(exc).__name__}: "
        message, sent = f"{message}{exc.status} {exc.message}", True
    else:
        message, sent = (
            f"connection error during {method} {path}: {type(exc).__name__}: {exc}",
            True,
        )
    credentials = request.headers.get("Authorization", "").partition(" ")[2]
    if credentials:
        message = redact_text(message, credentials)
    return APIConnectionError(message, method=method, path=path, request_sent=sent)
