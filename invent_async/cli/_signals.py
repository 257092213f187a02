"""SIGINT and SIGTERM around a bulk job: either one stops it, and none loses its results.

Left to itself, ``asyncio.run`` turns a first Ctrl-C into the cancellation of its main task
and a second one into a ``KeyboardInterrupt`` wherever the program happens to be (possibly in
the middle of writing the failed ids), and SIGTERM kills the process without a summary.
:class:`StopSignals` handles both signals alike for the whole command:

- outside :meth:`StopSignals.hold`, a signal raises at once: ``KeyboardInterrupt`` for SIGINT,
  :class:`~._runtime.Terminated` for SIGTERM (nothing to save yet, or already saved);
- inside it (the job and the saving of its results), the first signal cancels the job's task
  (see :meth:`StopSignals.attach`) and later ones, like any signal after the job has ended,
  are deferred until the block ends, then raised: a second Ctrl-C can cut the summary short,
  never the failed-ids file.

A signal that was ignored when the command started (``SIG_IGN``: a shell's background job,
``nohup``) stays ignored. Where handlers cannot be installed (not the main thread), nothing
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final, Self

from ._runtime import Terminated

__all__ = ["STOP_SIGNALS", "StopSignals", "stop_exception"]

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def stop_exception(signum: int) -> BaseException:
    """What a stop signal becomes: ``KeyboardInterrupt`` (SIGINT) or ``Terminated`` (SIGTERM)."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class StopSignals:
    """Installs handlers for SIGINT and SIGTERM while used as a context manager.

    Attributes:
        first: The signal received first inside :meth:`hold` (the one that stopped the job),
            or None.
    """

    def __init__(self) -> None:
        self.first: signal.Signals | None = None
        self._deferred: list[signal.Signals] = []
        self._holding = False
        self._task: asyncio.Task[object] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[signal.Signals, _Handler] = {}

    def __enter__(self) -> Self:
        for signum in STOP_SIGNALS:
            try:
                if signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # ignored by whoever started us: keep it so
                self._previous[signum] = signal.signal(signum, self._handle)
            except (ValueError, OSError):  # not the main thread, or not supported here
                continue
        return self

    def __exit__(self, *exc_info: object) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Defer signals (after the first, which stops the job) until the block has ended.

        Raises:
            KeyboardInterrupt, Terminated: a signal arrived after the first; raised once the
                block has finished without an error of its own.
        """
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            self._task = self._loop = None
        if self._deferred:
            raise stop_exception(self._deferred[0])

    def attach(self, task: asyncio.Task[object]) -> None:
        """Let the first signal cancel ``task`` (the job's main task, on the running loop)."""
        self._task = task
        self._loop = asyncio.get_running_loop()
        if self.first is not None:  # it came in before the job's loop was running
            task.cancel()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        if not self._holding:
            raise stop_exception(received)
        task, loop = self._task, self._loop
        if self.first is not None or (task is not None and task.done()):
            # a second signal, or the job has already ended: raised once its results are safe
            self._deferred.append(received)
            return
        self.first = received
        if task is not None and loop is not None and not task.done():
            # what asyncio.run does on Ctrl-C: cancel, then wake the loop up if it is waiting
            task.cancel()
            loop.call_soon_threadsafe(lambda: None)
