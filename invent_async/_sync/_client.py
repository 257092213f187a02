"""The hand-written half of :class:`~invent_async.InventClient`: lifecycle, views and stats.

``InventClient`` itself is generated (``_generated``): its constructor takes the async client's
arguments (all but ``session`` and ``transport``), its docstring is :class:`SyncClient`'s text
followed by the async client's descriptions of those arguments, and its resource groups are
the generated twins of the async ones. Configuration and views are shared with the async
client (:class:`~invent_async._settings.Configured`); the event-loop thread and the bridging
live in ``_loop``, ``_runtime`` and ``_bridge``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Self, TypeVar

from .._client import from_settings
from .._exceptions import ClientClosedError
from .._governor_registry import lease as budget_lease
from .._limits import FleetStats, GovernorStats
from .._raw import RawResult, Recorder
from .._settings import Configured, Settings
from ._bridge import Bridge
from ._runtime import Runtime

__all__ = ["SyncClient"]

T = TypeVar("T")


async def _stats(bridge: Bridge) -> GovernorStats | None:
    return bridge.async_client().rate_limit_stats()


async def _reset(bridge: Bridge) -> float:
    return bridge.async_client().rate_limit_reset()


async def _fleet_stats(bridge: Bridge) -> FleetStats | None:
    return await bridge.async_client().rate_limit_fleet_stats()


class SyncClient(Configured):
    """Blocking client for the Invent API, for code that does not run an event loop.

    Use it as a context manager (or call :meth:`close`):

    .. code-block:: python

        from invent_async import InventClient

        with InventClient() as client:  # the key from INVENT_API_KEY
            contact = client.contacts.add_segment("ct_123", "sg_vip")
            names = [c.name for c in client.contacts.list(segment_id="sg_vip")]
        assert "sg_vip" in [segment.id for segment in contact.segments]
        assert "Ada" in names

    Every method runs the :class:`~invent_async.AsyncInventClient` code on one event loop
    that this client owns, in a background thread started on first use; a call blocks only
    the calling thread. One client may be shared by many threads. It also works where an
    event loop is already running in the calling thread (a Jupyter cell, async frameworks
    calling sync code): that thread just waits. After ``os.fork()`` the child starts its
    own loop and connections on first use. Ctrl-C during a call cancels the request and
    raises :class:`KeyboardInterrupt`; the client stays usable. In async code, use
    :class:`~invent_async.AsyncInventClient` instead: it needs no thread hop per call.

    Unlike the async client there is no ``session`` or ``transport`` argument: they belong to
    the event loop that uses them, and this client's loop is private to it.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._view_settings = settings
        limit = settings.rate_limit
        # Lease the budget's governor now (the async client on the loop thread leases it
        # again on first use): settings that conflict with another client's fail here.
        shared = limit is not None and limit.shared
        lease = budget_lease(settings.base_url, limit) if limit is not None and shared else None
        runtime = Runtime(lambda: from_settings(settings))
        self._budget = weakref.finalize(runtime, lease.release) if lease is not None else None
        self._bridge = Bridge(runtime)
        self._attach(self._bridge)

    def _attach(self, bridge: Bridge) -> None:
        raise NotImplementedError  # pragma: no cover - InventClient attaches its resources

    def _view(self, settings: Settings, recorder: Recorder | None = None) -> Self:
        view = object.__new__(type(self))
        Configured.__init__(view, settings)
        view._view_settings = settings
        bridge = self._bridge.derive(settings)
        view._bridge = bridge if recorder is None else bridge.recording(recorder)
        view._budget = self._budget
        view._attach(view._bridge)
        return view

    def with_raw_response(self, fn: Callable[[Self], T]) -> RawResult[T]:
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
        return recorder.result(fn(self._view(self._view_settings, recorder)))

    def rate_limit_stats(self) -> GovernorStats | None:
        """A snapshot of the rate governor: waits, 429s seen, current rate, requests in flight.

        With a shared budget (the default), the counters are those of every client sharing it.
        """
        bridge = self._bridge
        return bridge.call(lambda: _stats(bridge))

    def rate_limit_fleet_stats(self) -> FleetStats | None:
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
        bridge = self._bridge
        return bridge.call(lambda: _fleet_stats(bridge))

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
        bridge = self._bridge
        return bridge.call(lambda: _reset(bridge))

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run (on this client or the client a view came from)."""
        return self._bridge.runtime.closed

    def __enter__(self) -> Self:
        if self.closed:
            raise ClientClosedError(
                "this InventClient is closed; create a new client (or keep using it inside 'with')"
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client: cancel calls in flight, close its connections, stop its thread.

        Safe to call more than once (and on a view, which closes the client it came from).
        """
        self._bridge.runtime.close()
        if self._budget is not None:
            self._budget()  # give the rate-limit budget back
