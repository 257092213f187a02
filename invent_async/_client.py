"""AsyncInventClient: arguments to settings, the pipeline they configure, lifecycle and views.

Every call goes ``resource -> Pipeline.send -> governor -> transport`` (see ``_pipeline``);
this module only builds that path and hands it to the resource groups. Views made by
:meth:`~invent_async._settings.Configured.for_org` and ``with_options`` share the parent's
transport (session, connection pool), rate governor and lifetime: close the parent, not the
view.

The resource groups (``resources``, and the models they read and write) are imported when the
first client is created (:meth:`AsyncInventClient._setup`), not with this module: building the
models' classes is most of what ``import invent_async`` would cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Self, TypeVar

import aiohttp

from ._limits import FleetStats, GovernorStats, RateLimit
from ._pipeline import Core, Pipeline, RecordingPipeline
from ._raw import RawResult, Recorder
from ._secret import secret_arguments
from ._settings import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT,
    DEFAULT_TIMEOUT,
    Configured,
    Settings,
)
from ._transport import AiohttpTransport, AsyncTransport

if TYPE_CHECKING:
    from .resources.broadcasts import AsyncBroadcasts
    from .resources.contacts import AsyncContacts
    from .resources.segments import AsyncSegments

__all__ = ["AsyncInventClient", "abandon", "from_settings", "recording_view_of", "view_of"]

T = TypeVar("T")


class AsyncInventClient(Configured):
    """Async client for the Invent API.

    Use it as an async context manager (or call :meth:`aclose`):

    .. code-block:: python

        from invent_async import AsyncInventClient

        async with AsyncInventClient() as client:  # the key from INVENT_API_KEY
            contact = await client.contacts.add_segment("ct_123", "sg_vip")
            names = [c.name async for c in client.contacts.list(segment_id="sg_vip")]
        assert "sg_vip" in [segment.id for segment in contact.segments]
        assert "Ada" in names

    The aiohttp session is created on first use inside the running event loop and stays bound
    to that loop: create one client per event loop (in a web app, one per application, opened
    at startup and closed at shutdown).

    Args:
        api_key: The API key. Defaults to the ``INVENT_API_KEY`` environment variable.
        org_id: Organisation to act on; ``"c"`` is the key's own organisation. Use
            :meth:`for_org` for sub-organisations.
        base_url: API root. Defaults to the ``INVENT_BASE_URL`` environment variable, else
            ``https://api.useinvent.com``. Must be ``https://``; plain ``http://`` is only
            accepted for loopback hosts (tests, :class:`~invent_async.testing.FakeInvent`).
        timeout: Seconds allowed for one HTTP attempt (None: no per-attempt limit).
        max_retries: Retries after a failed first attempt (see the retry rules in the README).
        deadline: Seconds allowed for a whole call, retries and waits included (None: none).
            When the server asks to wait beyond it, the call fails at once. A request is sent
            only with at least the *send floor* of it left: ``min(timeout, deadline / 2,
            max(0.5 s, 2 x the 99th percentile of the client's latest 100 answer times))``.
            A call the rate budget cannot serve before the deadline minus that floor fails at
            once, before it books a slot, with ``APITimeoutError(deadline_exceeded=True,
            request_sent=False)`` (``retry_after``: the seconds until the budget could serve
            it); one left with less than the floor after an unknown wait (``max_in_flight``,
            a probe) gives its slot back and fails unsent, the same way.
        rate_limit: The rate governor: pacing (default 500 requests/minute, burst 5), a
            cool-down after any 429 that holds every queued and new request until
            ``Retry-After`` has passed, an optional cap on requests in flight
            (``max_in_flight``) and an optional adaptive mode. See
            :class:`~invent_async.RateLimit`. By default it is shared by every client of
            this process (async or not, on any thread) with the same API host and
            ``RateLimit.budget``, which must then ask for equal settings (``ValueError``
            otherwise); ``RateLimit(shared=False)`` gives this client and its views a
            governor of their own. ``None`` turns the governor off entirely.
        max_response_bytes: The longest response body the client reads, counted after
            decompression (default 8 MiB; a page of 100 contacts is far smaller). A longer
            successful response raises :class:`~invent_async.ResponseTooLargeError` (not
            retried), having held no more than about this much in memory; an error body is
            cut at 64 KiB (or at this limit, if smaller). ``None`` removes the limit.
        session: An ``aiohttp.ClientSession`` to use instead of creating one. It stays yours:
            the client never closes it, nor changes it. aiohttp then keeps re-sending a GET
            or DELETE at once, unseen, when a kept-alive connection turns out dropped (the
            client's own session does not: there, only the client retries, by its rules).
        transport: Advanced: an :class:`~invent_async.AsyncTransport` to send requests through
            instead of aiohttp (for example :class:`~invent_async.testing.MockTransport`).
            The client closes it in :meth:`aclose`. Not together with ``session``.
    """

    contacts: AsyncContacts
    segments: AsyncSegments
    broadcasts: AsyncBroadcasts

    @secret_arguments  # an error leaves with no frame holding the key
    def __init__(
        self,
        api_key: str | None = None,
        *,
        org_id: str = "c",
        base_url: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        deadline: float | None = DEFAULT_DEADLINE,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        session: aiohttp.ClientSession | None = None,
        transport: AsyncTransport | None = None,
    ) -> None:
        key = Settings.key(api_key)
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError("session must be an aiohttp.ClientSession")
        settings = Settings.build(
            key,
            org_id=org_id,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            deadline=deadline,
            rate_limit=rate_limit,
            max_response_bytes=max_response_bytes,
        )
        if transport is not None:
            if session is not None:
                raise TypeError("pass session= or transport=, not both")
            if not isinstance(transport, AsyncTransport):
                raise TypeError("transport must implement AsyncTransport (send and aclose)")
        self._start(settings, session, transport)

    def _start(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None,
        transport: AsyncTransport | None,
    ) -> None:
        owned = session is None  # the client closes its own session and any transport
        if transport is None:
            cap = settings.rate_limit.max_in_flight if settings.rate_limit is not None else None
            transport = AiohttpTransport(session=session, connection_limit=max(100, cap or 0))
        core = Core(settings, transport, owns_resources=owned)
        self._setup(settings, core, Pipeline(core, settings.options))

    def _setup(self, settings: Settings, core: Core, pipeline: Pipeline) -> None:
        from .resources import AsyncBroadcasts, AsyncContacts, AsyncSegments  # the first: loads

        super().__init__(settings)
        self._view_settings = settings
        self._core = core
        self.contacts = AsyncContacts(pipeline)
        self.segments = AsyncSegments(pipeline)
        self.broadcasts = AsyncBroadcasts(pipeline)
        self._pipeline = pipeline

    def _view(self, settings: Settings) -> Self:
        view = object.__new__(type(self))
        view._setup(settings, self._core, self._pipeline.with_options(settings.options))
        return view

    def _recording(self, recorder: Recorder) -> Self:
        view = object.__new__(type(self))
        pipeline = RecordingPipeline(self._core, self._pipeline.options, recorder)
        view._setup(self._view_settings, self._core, pipeline)
        return view

    async def with_raw_response(self, fn: Callable[[Self], Awaitable[T]]) -> RawResult[T]:
        """The HTTP response of one call, with its result: status, headers, request id.

        ``fn`` gets a view of this client (same options, organisation, connections and rate
        governor) and makes exactly one call through it; nothing is sent twice::

            raw = await client.with_raw_response(lambda c: c.contacts.get("ct_123"))
            raw.status, raw.request_id, raw.headers["content-type"]
            contact = raw.parse()

            raw = await client.with_raw_response(lambda c: c.contacts.list(take=10).first_page())
            raw.pagination.count, raw.parse().items

        With the blocking ``InventClient`` it is the same without ``await`` (``fn`` then
        gets a view of the blocking client). A call that fails raises as usual; its
        :class:`~invent_async.APIStatusError` has the status, headers and request id.

        Args:
            fn: Makes one call through the client it is given and returns its result
                (a listing: one page, ``first_page()``).

        Returns:
            A :class:`~invent_async.RawResult`: ``status``, ``reason``, ``headers``,
            ``request_id``, ``pagination``, ``content`` and ``parse()``, the call's result.

        Raises:
            ValueError: ``fn`` made no call or more than one (a bulk job, a whole listing).
        """
        recorder = Recorder()
        return recorder.result(await fn(self._recording(recorder)))

    # ------------------------------------------------------------------ state and lifecycle

    def rate_limit_stats(self) -> GovernorStats | None:
        """A snapshot of the rate governor: waits, 429s seen, current rate, requests in flight.

        With a shared budget (the default), the counters are those of every client sharing it.
        """
        return self._core.stats()

    async def rate_limit_fleet_stats(self) -> FleetStats | None:
        """The counters of the fleet's budget on its Redis server, the same from every worker
        sharing it: slots handed out, express slots of interactive calls, 429s signalled,
        the shared cool-down, the backlog booked ahead. Without Redis, the same counters of
        the host budget, shared by the processes of this machine (the default for a shared,
        paced limit; see ``docs/many-workers.md``); None when the budget is this process's
        own (``RateLimit(shared=False)``, ``adaptive=True``, ``INVENT_BUDGET_DIR=off``) or
        the host's store cannot be used.

        Raises:
            RedisUnavailableError: the server did not answer within ``redis_timeout``.
        """
        return await self._core.fleet_stats()

    def rate_limit_reset(self) -> float:
        """Open the rate governor's 429 cool-down gate now, for this client and its views
        (and, with a shared budget, for every client sharing it).

        For when the cause of a long ``Retry-After`` is gone (an operator raised the quota,
        for example) before the gate's ``max_retry_after`` has passed: requests waiting for
        the gate go at once, spread out by the pacing. Does nothing when the gate is open or
        the governor is off.

        Returns:
            Seconds the gate would still have stayed closed (0 when it was open).
        """
        return self._core.reopen()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run (on this client or the client a view came from)."""
        return self._core.closed

    async def __aenter__(self) -> Self:
        self._core.check_usable()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's own aiohttp session, or the transport it was given.

        A session passed as ``session=`` stays open. Calls still waiting (for the rate
        governor, or to retry) raise :class:`ClientClosedError` instead of sending. Safe to
        call more than once.
        """
        await self._core.aclose()


def from_settings(settings: Settings) -> AsyncInventClient:
    """A client built from settings checked already (the sync client builds one per loop)."""
    client = object.__new__(AsyncInventClient)
    client._start(settings, None, None)
    return client


def close_from_blocking_code(client: AsyncInventClient, timeout: float = 10.0) -> None:
    """Close ``client`` from code that runs no event loop (a synchronous test fixture's
    teardown): on the loop it was first used on, if that loop is still open (run there, or
    handed to it when it runs in another thread); on a loop of its own otherwise (it was
    never used, or its loop is closed and its connections died with it)."""
    loop = client._core.loop
    if loop is not None and not loop.is_closed():
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout)
        else:
            loop.run_until_complete(client.aclose())
        return
    spare = asyncio.new_event_loop()  # not set as the thread's loop: a test plugin's stays
    try:
        spare.run_until_complete(client.aclose())
    finally:
        spare.close()


def abandon(client: AsyncInventClient) -> None:
    """Give up on ``client`` without closing it (its loop is stuck or in another process)."""
    client._core.abandon()


def recording_view_of(client: AsyncInventClient, recorder: Recorder) -> AsyncInventClient:
    """The view of ``client`` whose calls hand their responses to ``recorder`` (the sync
    client's ``with_raw_response``)."""
    return client._recording(recorder)


def view_of(client: AsyncInventClient, settings: Settings) -> AsyncInventClient:
    """The view of ``client`` with ``settings`` (made and checked by a sync client's view)."""
    return client._view(settings)
