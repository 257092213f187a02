"""Process events every open sync client must react to: interpreter exit and ``os.fork()``.

- At exit, clients still open are closed, briefly and silently, so that exit never hangs.
- In a forked child, every client drops the parent's loop thread without touching it (its
  thread does not exist in the child); the next call starts a new one.

Runtimes :func:`register` themselves when created and :func:`unregister` when closed; this
module keeps only weak references to them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import weakref
from typing import Final, Protocol

__all__ = ["EXIT_TIMEOUT", "register", "unregister"]

EXIT_TIMEOUT: Final = 1.0
"""Seconds the atexit hook gives each unclosed client to shut down."""


class _Member(Protocol):
    def close(self, timeout: float) -> None: ...

    def after_fork_in_child(self) -> None: ...


_OPEN: weakref.WeakSet[_Member] = weakref.WeakSet()
_atexit_registered = False


def register(member: _Member) -> None:
    """Close ``member`` at exit and tell it about forks, until :func:`unregister`.

    Call it after the member made its own ``weakref.finalize``, so that weakref's atexit hook
    (which would warn about the async client's open session) is older and runs after ours.
    """
    global _atexit_registered
    _OPEN.add(member)
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_close_all_at_exit)


def unregister(member: _Member) -> None:
    """Forget ``member`` (it was closed)."""
    _OPEN.discard(member)


def _close_all_at_exit() -> None:
    for member in list(_OPEN):
        with contextlib.suppress(BaseException):  # nothing may be printed at exit
            member.close(timeout=EXIT_TIMEOUT)


def _after_fork_in_child() -> None:
    for member in list(_OPEN):
        member.after_fork_in_child()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
