"""InventClient: the blocking twin of :class:`~invent_async.AsyncInventClient`.

Hand-written and small: configuration, views and lifecycle. The resource methods
(``client.contacts``, ``client.segments``) are generated into ``_generated``; the event-loop
thread and the bridging live in ``_runtime``.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Self

from .._client import (
    API_KEY_ENV,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT,
    DEFAULT_TIMEOUT,
    AsyncInventClient,
    _NoLimit,
)
from .._exceptions import ClientClosedError
from .._protocol import DEFAULT_BASE_URL
from .._ratelimit import GovernorStats, RateLimit
from ._generated import SyncResources
from ._runtime import Bridge, Runtime, ViewStep

__all__ = ["InventClient"]


async def _stats(client: AsyncInventClient) -> GovernorStats | None:
    return client.rate_limit_stats()


class InventClient(SyncResources):
    """Blocking client for the Invent API, for code that does not run an event loop.

    Use it as a context manager (or call :meth:`close`)::

        with InventClient(api_key="...") as client:
            contact = client.contacts.add_segment("ct_123", "sg_vip")
            for c in client.contacts.list(segment_id="sg_vip"):
                ...

    Every method runs the :class:`~invent_async.AsyncInventClient` code on one event loop
    that this client owns, in a background thread started on first use; a call blocks only
    the calling thread. One client may be shared by many threads. It also works where an
    event loop is already running in the calling thread (a Jupyter cell, async frameworks
    calling sync code): that thread just waits. After ``os.fork()`` the child starts its
    own loop and connections on first use. Ctrl-C during a call cancels the request and
    raises :class:`KeyboardInterrupt`; the client stays usable. In async code, use
    :class:`~invent_async.AsyncInventClient` instead: it needs no thread hop per call.

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
        rate_limit: The rate governor shared by every request of this client and its views
            (see :class:`~invent_async.RateLimit`); ``None`` turns it off.

    Unlike the async client there is no ``session`` argument: an aiohttp session belongs to
    the event loop that created it, and this client's loop is private to it.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        org_id: str = "c",
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        deadline: float | None = DEFAULT_DEADLINE,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)

        def make() -> AsyncInventClient:
            return AsyncInventClient(
                key,
                org_id=org_id,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                deadline=deadline,
                rate_limit=rate_limit,
            )

        # Built here only to check the arguments (it never connects); the client that does
        # the work is built on the runtime's loop, again after a fork.
        template = make()
        self._setup(template, Bridge(Runtime(make)))

    def _setup(self, template: AsyncInventClient, bridge: Bridge) -> None:
        self._template = template
        self._bridge = bridge
        self._init_resources(bridge)

    def _view(self, step: ViewStep) -> Self:
        # The step runs on the template now (checking the arguments) and on the real async
        # client when the view is first used.
        view = object.__new__(type(self))
        view._setup(step(self._template), self._bridge.derive(step))
        return view

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, org_id={self.org_id!r})"

    # ------------------------------------------------------------------ configuration

    @property
    def base_url(self) -> str:
        """The API root this client talks to."""
        return self._template.base_url

    @property
    def org_id(self) -> str:
        """The organisation this client (or view) acts on."""
        return self._template.org_id

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate governor's settings (None when the governor is off)."""
        return self._template.rate_limit

    def rate_limit_stats(self) -> GovernorStats | None:
        """A snapshot of the rate governor: waits, 429s seen, current rate, requests in flight."""
        return self._bridge.call(lambda: _stats(self._bridge.async_client()))

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run (on this client or the client a view came from)."""
        return self._bridge.runtime.closed

    def for_org(self, org_id: str) -> Self:
        """A view of this client that acts on another organisation (a sub-organisation).

        The view shares this client's session, connection pool and lifetime.
        """
        return self._view(lambda client: client.for_org(org_id))

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
        return self._view(
            lambda client: client.with_options(
                timeout=timeout, max_retries=max_retries, deadline=deadline
            )
        )

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        if self.closed:
            raise ClientClosedError(
                "this InventClient is closed; create a new client (or keep using it inside 'with')"
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the client: cancel calls in flight, close its connections, stop its thread.

        Safe to call more than once (and on a view, which closes the client it came from).
        """
        self._bridge.runtime.close()
