"""``MockTransport``: answer a client's requests in memory, without a server or a socket.

For tests that want to script responses one by one (``FakeInvent`` is the better choice for
tests of behaviour against a realistic API). The client's whole request path still runs: the
rate governor, timeouts, retries, error mapping and parsing; only the bytes never leave the
process::

    def answer(request: TransportRequest) -> RawResponse:
        return mock_response(200, {"id": "sg_1", ...})

    async with AsyncInventClient("key", transport=MockTransport(answer)) as client:
        ...
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .. import _converter
from .._protocol import RawResponse, TransportRequest
from .._transport import timeout_error

__all__ = ["MockTransport", "mock_response"]

Handler = Callable[[TransportRequest], RawResponse | Awaitable[RawResponse]]


def mock_response(
    status: int = 200, json: Any = None, *, headers: Mapping[str, str] | None = None
) -> RawResponse:
    """A response with a JSON body (``json`` None: an empty body)."""
    body = b"" if json is None else _converter.dumps(json)
    all_headers = {"content-type": "application/json", **(headers or {})}
    return RawResponse(status=status, reason="", headers=all_headers, body=body)


class MockTransport:
    """An :class:`~invent_async.AsyncTransport` that asks ``handler`` for every response.

    ``handler`` gets the :class:`~invent_async.TransportRequest` (method, URL, headers, body)
    and returns a :class:`~invent_async.RawResponse`, or an awaitable of one; it may raise
    :class:`~invent_async.APIConnectionError` to act out a failed connection. An attempt
    that outlasts its timeout raises :class:`~invent_async.APITimeoutError`, as on a network.

    Attributes:
        requests: Every request sent, oldest first.
        closed: True once the client closed the transport.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[TransportRequest] = []
        self.closed = False

    async def send(
        self, request: TransportRequest, *, attempt_timeout: float | None
    ) -> RawResponse:
        """Record ``request`` and return the handler's response."""
        self.requests.append(request)
        try:
            async with asyncio.timeout(attempt_timeout):
                result = self._handler(request)
                if inspect.isawaitable(result):
                    result = await result
        except TimeoutError:
            error = timeout_error(request, attempt_timeout, request_sent=True)
        else:
            return result
        raise error

    async def aclose(self) -> None:
        """Mark the transport closed."""
        self.closed = True

    def __repr__(self) -> str:
        requests, closed = getattr(self, "requests", ()), getattr(self, "closed", False)
        return f"<MockTransport requests={len(requests)} closed={closed}>"
