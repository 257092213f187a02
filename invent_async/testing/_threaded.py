"""A FakeInvent served from a thread of its own: :class:`ThreadedFake`.

A :class:`~invent_async.testing.FakeInvent` answers on the event loop it was started on, so a
blocking call on that loop's thread (an ``InventClient`` call in a notebook cell, in
``python -m asyncio`` or in a synchronous test) would wait for an answer the blocked loop
cannot give. ``ThreadedFake`` runs the fake on a loop in a daemon thread instead: any code,
blocking or async, on any thread or loop, can talk to it. Starting and stopping are bounded
by a timeout, so a broken fake fails fast instead of hanging.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any, Final

from ._fake import FakeInvent

__all__ = ["ThreadedFake"]

_TIMEOUT: Final = 10.0


class ThreadedFake:
    """A :class:`FakeInvent` served on an event loop of its own, in a daemon thread.

    .. code-block:: python

        from invent_async import InventClient
        from invent_async.testing import ThreadedFake

        with ThreadedFake(api_key="k") as fake:
            fake.add_contact(id="ct_1", name="Ada")
            with InventClient("k", base_url=fake.url) as client:
                assert client.contacts.get("ct_1").name == "Ada"

    Without ``with`` (a notebook, a REPL): ``fake = served.start()``, later ``served.stop()``.

    Args:
        **options: Passed to :class:`FakeInvent` (``api_key``, ``rate_limit_per_minute``, ...).
    """

    def __init__(self, **options: Any) -> None:
        self.fake = FakeInvent(**options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="invent-fake", daemon=True
        )
        self._stopped = False

    def __repr__(self) -> str:
        return f"<ThreadedFake {getattr(self, 'fake', None)!r}>"

    def start(self) -> FakeInvent:
        """Start the thread and the server; the running fake."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(_TIMEOUT)
        return self.fake

    def stop(self) -> None:
        """Stop the server, the loop and the thread. Safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._thread.is_alive():
                done = asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop)
                done.result(_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread.is_alive():
                self._thread.join(_TIMEOUT)
            self._loop.close()

    def __enter__(self) -> FakeInvent:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
