"""Tracebacks of errors crossing from the client's loop thread: bridge frames trimmed away.

An error raised on the loop reaches the blocking caller as the same exception object; its
traceback (and those of the errors chained to it) loses the frames of asyncio, anyio,
concurrent.futures, threading and the sync runtime itself, keeping the SDK's and the caller's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import types
from pathlib import Path
from typing import Final, cast

import anyio

__all__ = ["trim"]


def _module_dir(module: types.ModuleType) -> str:
    return str(Path(cast("str", module.__file__)).parent) + os.sep


_HERE: Final = Path(__file__).parent
_INTERNAL_DIRS: Final = (_module_dir(asyncio), _module_dir(anyio), _module_dir(concurrent.futures))
_INTERNAL_FILES: Final = frozenset(
    {threading.__file__, *(str(_HERE / name) for name in ("_loop.py", "_runtime.py", "_bridge.py"))}
)


def _is_internal(tb: types.TracebackType) -> bool:
    filename = tb.tb_frame.f_code.co_filename
    return filename in _INTERNAL_FILES or filename.startswith(_INTERNAL_DIRS)


def trim(error: BaseException) -> types.TracebackType | None:
    """``error``'s traceback without bridge internals (its chained errors are trimmed too)."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        if exc is not error:
            exc.__traceback__ = _trimmed(exc.__traceback__)
        todo.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
        if isinstance(exc, BaseExceptionGroup):
            todo.extend(exc.exceptions)
    return _trimmed(error.__traceback__)


def _trimmed(tb: types.TracebackType | None) -> types.TracebackType | None:
    entries: list[types.TracebackType] = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if not any(_is_internal(entry) for entry in entries):
        return entries[0] if entries else None
    keep = [e for e in entries[:-1] if not _is_internal(e)] + entries[-1:]  # keep the raiser
    rebuilt: types.TracebackType | None = None
    for entry in reversed(keep):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt
