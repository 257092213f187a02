"""What every job command shares: ``contacts tag/untag``, ``demo`` and ``segments sync``.

A job runs in one ``asyncio.run`` (:func:`execute`) with the progress display around it, as
the task that the first SIGINT or SIGTERM cancels (:class:`~._signals.StopSignals`). However
it ends (normally, aborted by the API, on bad input, or on Ctrl-C or SIGTERM), the command
then writes the failed ids (:func:`save_failed`: atomically, never over its own input when
the job stopped early, with further signals deferred until they are written), prints its
summary (:func:`stop_reason` says why it stopped), and returns :func:`exit_status` of its
:class:`JobOutcome`: the one place that maps how a job ended to the documented exit status
(``_runtime.EXIT_*``) and says how to resume.

Also here: the checks every job makes before any work (:func:`before_reading_ids`,
:func:`check_writable`, :func:`open_job_client`) and the ``failed-<segment>.txt`` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs
import click

from .._client import AsyncInventClient
from .._exceptions import APIStatusError, InventError
from .._jobs.import_results import ImportAbortedError
from .._jobs.journal import JournalError
from .._jobs.results import BulkAbortedError
from ._ids import STDIN
from ._progress import Reporter
from ._runtime import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
    Settings,
    Terminated,
    describe_api_error,
    open_client,
    read_api_key,
)
from ._signals import StopSignals, stop_exception

__all__ = [
    "FailedIds",
    "JobOutcome",
    "ReplacingFile",
    "before_reading_ids",
    "check_segment",
    "check_writable",
    "default_failed_path",
    "execute",
    "exit_status",
    "is_terminal",
    "open_job_client",
    "same_file",
    "save_failed",
    "stop_reason",
    "write_ids",
]

T = TypeVar("T")


# --------------------------------------------------------------------------- before the job


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is an open terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # closed
        return False


def before_reading_ids(settings: Settings, ids_path: str) -> None:
    """Check the API key before reading (and counting) what may be millions of ids, and say
    that stdin is being read when it is a terminal.

    Raises:
        CliError: (exit 2) no API key.
    """
    if not settings.sandbox:
        read_api_key()
    if ids_path == STDIN and is_terminal(sys.stdin):
        end = "Ctrl-Z then Enter" if sys.platform == "win32" else "Ctrl-D"
        click.echo(f"reading contact ids from stdin, one per line (end with {end})", err=True)


@contextlib.asynccontextmanager
async def open_job_client(settings: Settings, segment_id: str) -> AsyncIterator[AsyncInventClient]:
    """The client of a job on ``segment_id`` (see ``open_client``), once the segment is found
    to exist (:func:`check_segment`)."""
    async with open_client(settings) as client:
        await check_segment(client, segment_id)
        yield client


async def check_segment(client: AsyncInventClient, segment_id: str) -> None:
    """Fail fast (one request) when the segment does not exist, instead of once per id.

    ``GET /segments/{id}`` is an inferred endpoint; if it answers 404 or 405, the segment is
    looked for in the documented list before giving up with the original error.
    """
    try:
        await client.segments.get(segment_id)
    except APIStatusError as exc:
        if exc.status not in (404, 405):
            raise
        async for segment in client.segments.list():
            if segment.id == segment_id:
                return
        raise


def default_failed_path(segment_id: str, prefix: str = "failed") -> Path:
    """``failed-<segment>.txt`` (or ``<prefix>-<segment>.txt``) in the current directory,
    unsafe characters replaced."""
    return Path(f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]', '_', segment_id)}.txt")


def check_writable(*paths: Path | None) -> None:
    """Fail before any work when a file a job writes (``--journal``, ``--failed-out``; None:
    not given) cannot be appended to, creating it if needed.

    Raises:
        CliError: (exit 2) the file or its directory cannot be created or written.
    """
    for path in paths:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE) from None


# --------------------------------------------------------------------------- the job


async def _attached(main: Coroutine[Any, Any, T], signals: StopSignals) -> T:
    """Await ``main`` as the task that the first SIGINT or SIGTERM cancels."""
    task = asyncio.current_task()
    assert task is not None
    signals.attach(task)
    return await main


def execute(
    main: Coroutine[Any, Any, T],
    reporter: Reporter,
    signals: StopSignals,
    *,
    started: Callable[[], bool],
) -> tuple[T | None, BaseException | None]:
    """Run ``main`` with the progress display; return its result and why the job stopped early.

    Call it inside ``signals.hold()``. Ctrl-C (as ``KeyboardInterrupt``), SIGTERM (as
    :class:`Terminated`), an aborted job, bad input or a bad journal is returned once
    ``started()`` says there is something to report (so that the caller saves the failed ids
    and prints the partial summary); before that, it propagates (an OSError or a
    JournalError as a :class:`CliError`, exit 2).
    """
    try:
        with reporter:
            return asyncio.run(_attached(main, signals)), None
    except (KeyboardInterrupt, BulkAbortedError, ImportAbortedError, CliError) as exc:
        stopped: BaseException = exc
    except asyncio.CancelledError:  # by StopSignals
        stopped = stop_exception(signals.first or signal.SIGINT)
    except JournalError as exc:
        stopped = CliError(str(exc), EXIT_USAGE)
    except OSError as exc:  # the journal cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        stopped = CliError(f"{where}{exc.strerror or exc}", EXIT_USAGE)
    if not started():
        raise stopped
    return None, stopped


def stop_reason(stopped: BaseException | None) -> str | None:
    """Why the job stopped early, for its summary (None: it ran to its end)."""
    if isinstance(stopped, KeyboardInterrupt):
        return "interrupted"
    if isinstance(stopped, Terminated):
        return "terminated"
    return None if stopped is None else "stopped early"


# --------------------------------------------------------------------------- failed ids


def _mode_of(target: Path) -> int:
    """The permission bits for a new version of ``target``: its own, or what the umask
    gives a new file."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for every thread, briefly)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def write_ids(path: Path, ids: Sequence[str]) -> None:
    """Write one id per line (the ``--ids`` format), atomically.

    The ids go to a temporary file next to ``path``, which then replaces it (``os.replace``):
    an interruption leaves the old file or the new one, never a truncated one. A ``path``
    that is not a regular file (``/dev/stdout``, a named pipe) is written in place.

    Raises:
        CliError: (exit 2) the file cannot be written.
    """
    data = "".join(f"{i}\n" for i in ids).encode("utf-8", "surrogateescape")
    target = Path(os.path.realpath(path))
    try:
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            target.write_bytes(data)
            return
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            # mkstemp makes it 0600: give it the mode a plain open() would, or keep the mode
            # of the file it replaces
            os.fchmod(fd, _mode_of(target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE) from None


class ReplacingFile:
    """A file written in pieces (a job's failed rows, as they come), atomically: into a
    temporary file beside ``path``, moved over it by :meth:`commit` (``os.replace``), as
    :func:`write_ids` does; a ``path`` that is not a regular file (``/dev/stdout``) is
    written in place. Nothing is created before the first :meth:`write`.

    Raises:
        CliError: (exit 2) the file cannot be written (from :meth:`write` or :meth:`commit`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._target = Path(os.path.realpath(path))
        self._handle: IO[bytes] | None = None
        self._temp: str | None = None

    def write(self, data: bytes) -> None:
        """Append ``data`` (buffered)."""
        try:
            if self._handle is None:
                self._handle = self._open()
            self._handle.write(data)
        except OSError as exc:
            self.discard()
            raise CliError(f"cannot write {self.path}: {exc.strerror or exc}", EXIT_USAGE) from None

    def _open(self) -> IO[bytes]:
        target = self._target
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            return target.open("wb")
        fd, self._temp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        os.fchmod(fd, _mode_of(target))
        return os.fdopen(fd, "wb")

    def commit(self) -> None:
        """Put what was written in place (an empty file when nothing was)."""
        try:
            if self._handle is None:
                self._handle = self._open()
            handle, self._handle = self._handle, None
            with handle:
                handle.flush()
                if self._temp is not None:
                    os.fsync(handle.fileno())
            if self._temp is not None:
                os.replace(self._temp, self._target)
                self._temp = None
        except OSError as exc:
            self.discard()
            raise CliError(f"cannot write {self.path}: {exc.strerror or exc}", EXIT_USAGE) from None

    def discard(self) -> None:
        """Drop what was written; ``path`` stays as it was."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()
        temp, self._temp = self._temp, None
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def same_file(path: Path, other: str) -> bool:
    """Whether ``path`` and ``other`` are the same existing file."""
    return _same_file(path, other)


def _same_file(path: Path, other: str) -> bool:
    try:
        return path.samefile(other)
    except OSError:
        return False


@attrs.frozen(kw_only=True)
class FailedIds:
    """One file of failed ids a job writes.

    Attributes:
        path: Where.
        ids: The failed ids (written even when empty if ``explicit``).
        explicit: Named by ``--failed-out``: always written. Else only when some failed.
        what: What they are, for the message (``"failed ids"``, ``"failed adds"``, ...).
        rerun: How to retry them, for the message.
    """

    path: Path
    ids: Sequence[str]
    explicit: bool
    what: str
    rerun: str


def save_failed(
    files: Sequence[FailedIds], *, source: str, job: str, complete: bool
) -> list[tuple[str, bool]]:
    """Write the failed-id files; return what to say about them (message, to stderr).

    A job that stopped early (not ``complete``) never overwrites its own input (``--ids
    failed-sg.txt``, the re-run the summary suggests): the ids it did not reach would be lost.
    """
    said: list[tuple[str, bool]] = []
    for failed in files:
        if not failed.explicit and not failed.ids:
            continue
        if not complete and _same_file(failed.path, source):
            said.append((f"{failed.path} is the input of this {job}: left as it is", True))
            continue
        write_ids(failed.path, failed.ids)
        if failed.ids:
            said.append((f"{failed.what} written to {failed.path} ({failed.rerun})", False))
    return said


# --------------------------------------------------------------------------- the exit status


@attrs.frozen(kw_only=True)
class JobOutcome:
    """How a job command ended, for :func:`exit_status`.

    Attributes:
        stopped: Why it stopped early (an :func:`execute` result), or None.
        ok: Whether everything that ran went well (nothing failed; for a sync, also a verify
            that found nothing; for the demo, the segment's count checked).
        resume: Said after ``interrupted`` or ``terminated (SIGTERM)``: how to resume.
    """

    stopped: BaseException | None = None
    ok: bool = True
    resume: str = ""


def exit_status(outcome: JobOutcome) -> int:
    """The exit status of a job command (``_runtime.EXIT_*``); says on stderr why it stopped.

    Ctrl-C 130 and SIGTERM 143 (with how to resume); a job the API stopped: 3 for a 401 or
    403, 4 for a 429 asking to wait longer than the client waits (``describe_api_error``);
    a usage or input error its own status (2); else 0, or 1 when not ``ok``.
    """
    stopped = outcome.stopped
    if isinstance(stopped, KeyboardInterrupt | Terminated):
        interrupted = isinstance(stopped, KeyboardInterrupt)
        what = "interrupted" if interrupted else "terminated (SIGTERM)"
        click.echo(what + outcome.resume, err=True)
        return EXIT_INTERRUPTED if interrupted else EXIT_TERMINATED
    if isinstance(stopped, BulkAbortedError | ImportAbortedError):
        cause = stopped.__cause__
        message, status = (
            describe_api_error(cause)
            if isinstance(cause, InventError)
            else (str(stopped), EXIT_FAILURES)
        )
        stopped = CliError(message, status)
    if isinstance(stopped, CliError):
        stopped.show()
        return stopped.exit_code
    return EXIT_OK if outcome.ok else EXIT_FAILURES
