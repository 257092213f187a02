"""aiohttp adapter: owns (or borrows) the ClientSession and maps aiohttp errors to SDK errors.

The session is created lazily on first use inside the running loop and remembers that loop;
using it from another loop raises :class:`WrongEventLoopError` instead of aiohttp's
"attached to a different loop" / "Event loop is closed" noise. An injected session belongs to
the caller and is never closed here. This module does one thing per request: send the bytes of
a :class:`~invent_async._protocol.Request` and return a :class:`RawResponse`. No retries, no
parsing, no sleeping.
"""

from __future__ import annotations

import asyncio
import platform
import warnings
import weakref
from typing import Final

import aiohttp
from yarl import URL

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    WrongEventLoopError,
)
from ._protocol import RawResponse, Request, build_url

__all__ = ["AiohttpTransport"]

USER_AGENT: Final = (
    f"invent-async/0.1.0 aiohttp/{aiohttp.__version__} python/{platform.python_version()}"
)


class _Secret:
    """Holds the Authorization header value; its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "<redacted>"

    def reveal(self) -> str:
        return self._value


class _SessionState:
    """What the unclosed-client finalizer needs to know (holds no reference to the client)."""

    __slots__ = ("session",)

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None


def _warn_unclosed(state: _SessionState) -> None:
    session = state.session
    if session is not None and not session.closed:
        warnings.warn(
            "AsyncInventClient was not closed: use 'async with AsyncInventClient() as client:' "
            "or 'await client.aclose()'",
            ResourceWarning,
            stacklevel=1,
        )


class AiohttpTransport:
    """Sends requests over one aiohttp ClientSession bound to one event loop."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        session: aiohttp.ClientSession | None,
        connection_limit: int,
    ) -> None:
        self._base_url = base_url
        self._auth = _Secret(f"Bearer {api_key}")
        self._injected = session
        self._connection_limit = connection_limit
        self._state = _SessionState()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._headers = self._make_headers(with_body=False)
        self._body_headers = self._make_headers(with_body=True)
        self._finalizer = weakref.finalize(self, _warn_unclosed, self._state)

    def _make_headers(self, *, with_body: bool) -> dict[str, str]:
        headers = {
            "Authorization": self._auth.reveal(),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if with_body:
            headers["Content-Type"] = "application/json"
        return headers

    def __repr__(self) -> str:
        return f"<AiohttpTransport base_url={self._base_url!r} closed={self._closed}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def check_usable(self) -> None:
        """Raise if the transport is closed or if called on a loop other than its own."""
        if self._closed:
            raise ClientClosedError(
                "this AsyncInventClient is closed; create a new client "
                "(or keep using it inside 'async with')"
            )
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise WrongEventLoopError(
                "this AsyncInventClient was first used on another event loop "
                f"({_describe(self._loop)}); aiohttp sessions are bound to one loop. Create "
                "one client per event loop (for example inside the coroutine you pass to "
                "asyncio.run()), or use the synchronous InventClient from blocking code."
            )

    def _session(self) -> aiohttp.ClientSession:
        self.check_usable()
        if self._injected is not None:
            return self._injected
        session = self._state.session
        if session is None:
            connector = aiohttp.TCPConnector(limit=self._connection_limit)
            session = aiohttp.ClientSession(connector=connector)
            self._state.session = session
        return session

    def _timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=seconds)
            if len(self._timeouts) < 64:
                self._timeouts[seconds] = timeout
        return timeout

    async def send(self, request: Request, *, attempt_timeout: float | None) -> RawResponse:
        """Send one request; raise APIConnectionError/APITimeoutError when no answer came."""
        session = self._session()
        url = URL(build_url(self._base_url, request), encoded=True)
        headers = self._body_headers if request.body is not None else self._headers
        method, path = request.method, request.path
        error: APIConnectionError
        try:
            async with session.request(
                method,
                url,
                data=request.body,
                headers=headers,
                timeout=self._timeout(attempt_timeout),
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                return RawResponse(
                    status=resp.status, reason=resp.reason or "", headers=resp.headers, body=body
                )
        except TimeoutError as exc:  # before ClientError: ServerTimeoutError is both
            sent = not isinstance(exc, aiohttp.ConnectionTimeoutError)
            error = APITimeoutError(
                f"{method} {path} timed out after {attempt_timeout}s",
                method=method,
                path=path,
                request_sent=sent,
            )
        except aiohttp.ClientConnectorError as exc:
            error = APIConnectionError(
                f"could not connect for {method} {path}: {exc}",
                method=method,
                path=path,
                request_sent=False,
            )
        except aiohttp.ClientError as exc:
            error = APIConnectionError(
                f"connection error during {method} {path}: {_describe_error(exc)}",
                method=method,
                path=path,
                request_sent=True,
            )
        # Raised outside the except blocks: aiohttp's exception objects (some carry the request
        # headers, hence the API key) must not stay reachable as __cause__ or __context__.
        raise error

    async def aclose(self) -> None:
        """Close the owned session (idempotent). An injected session is left open.

        Must run on the loop the client was used on. If that loop is already closed, its
        connections died with it: the client is marked closed and nothing is awaited.
        """
        if self._closed:
            return
        session = self._state.session
        loop = self._loop
        if session is not None and loop is not None and asyncio.get_running_loop() is not loop:
            if not loop.is_closed():
                raise WrongEventLoopError(
                    "close this AsyncInventClient on the event loop it was used on "
                    f"({_describe(loop)})"
                )
            self._closed = True
            self._state.session = None
            return
        self._closed = True
        self._state.session = None
        if session is not None and not session.closed:
            await session.close()
            await asyncio.sleep(0)  # let aiohttp's transports finish closing


def _describe_error(exc: aiohttp.ClientError) -> str:
    """A one-line description of an aiohttp error that never includes request headers."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{type(exc).__name__}: {exc.status} {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _describe(loop: asyncio.AbstractEventLoop) -> str:
    state = "closed" if loop.is_closed() else "running" if loop.is_running() else "not running"
    return f"{type(loop).__name__} at {id(loop):#x}, {state}"
