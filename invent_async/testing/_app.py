"""The fake's HTTP layer: one aiohttp.web handler in front of the route table.

:class:`FakeHandler` takes each request through, in order: queued faults, the rate limiter,
the bearer token, routing on the *raw* (percent-encoded) path (``_routes``), strict validation
of query and body (``_validation``), the route's handler on the store (under its lock), and
the recording of the exchange (:class:`RecordedRequest`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .. import _converter
from ._faults import FaultQueue, FaultRule, SlidingWindowLimiter, TrafficCounter, format_retry_after
from ._routes import BodyMode, Call, resolve
from ._store import ApiError, Store
from ._validation import json_kind, parse_query

__all__ = ["FakeHandler", "RecordedRequest"]

_log = logging.getLogger("invent_async.testing")

_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_NO_HEADERS: Final[Mapping[str, str]] = {}


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request the fake received, as it arrived, and the status it was answered with.

    Attributes:
        method: HTTP method, upper case.
        path: the raw, still percent-encoded path, without the query string.
        query: the decoded query parameters as ``(name, value)`` pairs, in order.
        json: the decoded JSON body, or None when there was no body or it was not JSON.
        body: the raw body bytes.
        headers: the request headers without ``Authorization`` (case-insensitive lookup).
        path_params: decoded path parameters (``org_id``, ``contact_id``, ...) of the matched
            route; empty when no route matched or the request never reached routing.
        operation: the operationId of the matched route (``"addSegmentToContact"``), or None.
        status: the status sent back; None when the connection was dropped.
        fault: ``"fail"`` (``fail_next``), ``"drop"`` (``drop_next``), ``"rate_limit"``
            (the limiter's 429) or None for a normal answer.
        time: ``time.monotonic()`` when the request arrived.
        request_id: the ``x-request-id`` header sent back (``req_N``).
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    json: Any = attrs.field(hash=False)
    body: bytes
    headers: CIMultiDictProxy[str] = attrs.field(hash=False)
    path_params: Mapping[str, str] = attrs.field(hash=False)
    operation: str | None
    status: int | None
    fault: str | None
    time: float
    request_id: str

    @property
    def params(self) -> dict[str, str]:
        """The query parameters as a dict (the last value wins for repeated names)."""
        return dict(self.query)


@attrs.define(slots=True, kw_only=True)
class _Exchange:
    """One request on its way through the handler, and what became of it."""

    request: web.Request
    raw_path: str
    body: bytes
    parsed: tuple[bool, Any]
    arrived: float
    request_id: str
    status: int | None = None
    fault: str | None = None
    operation: str | None = None
    path_params: dict[str, str] = attrs.Factory(dict)

    def recorded(self) -> RecordedRequest:
        """The exchange as a :class:`RecordedRequest` (Authorization left out)."""
        request = self.request
        headers = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() != "authorization"
        )
        return RecordedRequest(
            method=request.method,
            path=self.raw_path,
            query=tuple(request.query.items()),
            json=self.parsed[1],
            body=self.body,
            headers=CIMultiDictProxy(headers),
            path_params=self.path_params,
            operation=self.operation,
            status=self.status,
            fault=self.fault,
            time=self.arrived,
            request_id=self.request_id,
        )


# --------------------------------------------------------------------------- handler


class FakeHandler:
    """The request handler and everything it consults (store, faults, limiter, recording)."""

    def __init__(
        self,
        store: Store,
        *,
        api_key: str,
        latency: float,
        record: bool,
        rate_limit_per_minute: float | None,
        rate_limit_window: float,
        retry_after_precision: int,
    ) -> None:
        self.store = store
        self.api_key = api_key
        self.latency = latency
        self.record = record
        self.retry_after_precision = retry_after_precision
        self.requests: list[RecordedRequest] = []
        self.faults = FaultQueue()
        self.traffic = TrafficCounter(rate_limit_window)
        self.limiter: SlidingWindowLimiter | None = None
        self.configure_limiter(rate_limit_per_minute, rate_limit_window)
        self._request_number = 0

    def configure_limiter(self, rate_per_minute: float | None, window: float) -> None:
        """Replace the rate limiter (None: no limit); its history starts empty."""
        if window <= 0:
            raise ValueError(f"rate_limit_window must be positive, got {window!r}")
        self.limiter = (
            None if rate_per_minute is None else SlidingWindowLimiter(rate_per_minute, window)
        )
        self.traffic.window = window

    # ------------------------------------------------------------------ the aiohttp handler

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request (the catch-all route of the aiohttp application)."""
        arrived = time.monotonic()
        self.traffic.arrival(arrived)
        self.traffic.operation(_operation_of(request.method, request.rel_url.raw_path))
        self._request_number += 1
        body = await request.read() if request.body_exists else b""
        exchange = _Exchange(
            request=request,
            raw_path=request.rel_url.raw_path,
            body=body,
            parsed=_decode_json(body),
            arrived=arrived,
            request_id=f"req_{self._request_number}",
        )
        response = await self._respond(exchange)
        self.traffic.response(exchange.status)
        if self.record:
            self.requests.append(exchange.recorded())
        if response is None:  # drop: close the connection without answering
            transport = request.transport
            if transport is not None:
                transport.close()
            return web.Response(status=503)  # never sent: the transport is closed
        response.headers["x-request-id"] = exchange.request_id
        return response

    async def _respond(self, exchange: _Exchange) -> web.Response | None:
        """Faults first, then the limiter, then the API; None means drop the connection."""
        method, raw_path = exchange.request.method, exchange.raw_path
        delay, fault = self.faults.take(method, raw_path)
        delay += self.latency
        if delay > 0:
            await asyncio.sleep(delay)
        wait: float | None = None
        if fault is None and self.limiter is not None:
            wait = self.limiter.acquire(time.monotonic())
        if fault is not None:
            exchange.fault = fault.kind
            if fault.kind == "drop":
                return None
            self.traffic.injected += 1
            response = self._fault_response(fault)
        elif wait is not None:
            exchange.fault = "rate_limit"
            self.traffic.rate_limited += 1
            retry_after = format_retry_after(wait, self.retry_after_precision)
            response = _json_response(
                429, {"message": "Too many requests"}, {"Retry-After": retry_after}
            )
        else:
            response = self._answer(exchange)
        exchange.status = response.status
        return response

    def _fault_response(self, fault: FaultRule) -> web.Response:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        body = fault.body
        if body is None:
            return _json_response(
                fault.status, {"message": f"Injected failure ({fault.status})"}, headers
            )
        if isinstance(body, str):
            content_type = fault.content_type or (
                "text/html" if body.lstrip().startswith("<") else "text/plain"
            )
            headers["Content-Type"] = f"{content_type}; charset=utf-8"
            return web.Response(status=fault.status, body=body.encode(), headers=headers)
        return _json_response(fault.status, dict(body), headers)

    def _answer(self, exchange: _Exchange) -> web.Response:
        request, method, raw_path = exchange.request, exchange.request.method, exchange.raw_path
        try:
            self._authenticate(request)
            route, exchange.path_params = resolve(method, raw_path)
            exchange.operation = route.operation
            query = parse_query(request.query.items(), route.query)
            body = _body(route.body, request, exchange.body, exchange.parsed)
            with self.store.lock:  # the answer is encoded under the lock: it may share state
                org = self.store.org(exchange.path_params["org_id"])
                call = Call(self.store, org, exchange.path_params, query, body)
                payload, headers = route.handler(call)
                response = _json_response(200, payload, headers)
        except ApiError as exc:
            error: dict[str, Any] = {"message": exc.message}
            extra = _NO_HEADERS
            if exc.status == 401:
                extra = {"WWW-Authenticate": "Bearer"}
            elif exc.status == 405:
                extra = {"Allow": ", ".join(exc.errors)}
            elif exc.errors:
                error["errors"] = exc.errors
            return _json_response(exc.status, error, extra)
        except Exception as exc:  # a bug in the fake: answer 500 so the test sees it
            _log.exception("FakeInvent failed on %s %s", method, raw_path)
            return _json_response(500, {"message": f"FakeInvent internal error: {exc!r}"})
        return response

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        if header is None:
            raise ApiError(401, "Missing API key: send 'Authorization: Bearer <API_KEY>'")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token != self.api_key:
            raise ApiError(401, "Invalid API key")


# --------------------------------------------------------------------------- helpers


def _operation_of(method: str, raw_path: str) -> str:
    """The operationId of the route a request is for (``"unknown"``: none), for the stats."""
    try:
        return resolve(method, raw_path)[0].operation
    except ApiError:
        return "unknown"


def _json_response(
    status: int, payload: Any, headers: Mapping[str, str] = _NO_HEADERS
) -> web.Response:
    all_headers = {**_JSON_HEADERS, **headers} if headers else dict(_JSON_HEADERS)
    return web.Response(status=status, body=_converter.dumps(payload), headers=all_headers)


def _decode_json(body: bytes) -> tuple[bool, Any]:
    """(True, value) when ``body`` is JSON, (False, None) when it is empty or not JSON."""
    if not body:
        return False, None
    try:
        return True, _converter.loads(body)
    except ValueError:
        return False, None


def _body(mode: BodyMode, request: web.Request, raw: bytes, parsed: tuple[bool, Any]) -> Any:
    """The decoded JSON body the route allows (None when absent); ApiError 400 otherwise."""
    if not raw:
        if mode == "required":
            raise ApiError(400, "A JSON request body is required")
        return None
    if mode == "none":
        raise ApiError(400, "This endpoint takes no request body")
    if request.content_type != "application/json":
        raise ApiError(400, f"Content-Type must be application/json, got {request.content_type!r}")
    ok, value = parsed
    if not ok:
        raise ApiError(400, "The request body is not valid JSON")
    if not isinstance(value, dict):
        raise ApiError(
            400, "Invalid request body", [f"$: expected a JSON object, got {json_kind(value)}"]
        )
    return value
