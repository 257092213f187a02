"""The resume journal: the ids a job has completed, in a UTF-8 text file.

One completed id per newline-terminated line, handed to the OS as each id completes (a killed
process loses none); only complete lines count when it is read back. A job of another kind
(the removals of a segment sync, the rows of an import) writes ``<kind>\t<id>`` lines into the
same file, which the other kinds ignore: :data:`JOURNAL_KINDS`. :func:`read_journal` reads one
without writing (for a dry run); :class:`JournalError` says why a journal cannot be used.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

from .._exceptions import InventError
from .idset import FingerprintSet

__all__ = [
    "IMPORTED",
    "JOURNAL_KINDS",
    "JOURNAL_SYNC_INTERVAL",
    "REMOVED",
    "Journal",
    "JournalError",
    "read_journal",
]

JOURNAL_SYNC_INTERVAL: Final = 1.0
"""Seconds between two ``fsync`` calls of the resume journal (each id is written at once)."""
REMOVED: Final = "removed"
"""The kind of a segment sync's removals: ``removed\t<id>``."""
IMPORTED: Final = "imported"
"""The kind of an import's rows: ``imported\t<key>``, the key of a row created or updated
(``e:<email>``, ``u:<user id>`` or ``c:<contact id>``: see ``import_rows.row_key``)."""
JOURNAL_KINDS: Final = frozenset({REMOVED, IMPORTED})
"""Kinds of journal lines besides plain ids: ``removed\t<id>`` records a segment sync's
removal (see ``segment_sync_job``), so that a resumed sync neither removes it again nor takes
it for an id that was added; ``imported\t<key>`` an imported row (``import_job``)."""


class JournalError(InventError):
    """The resume journal cannot be used: it is not UTF-8 text, or it cannot be read or written.

    Raised by the bulk job (from iteration, before any request for a bad file) instead of the
    raw ``UnicodeDecodeError`` or ``OSError``, which is kept as ``__cause__``.

    Attributes:
        path: The journal file.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class Journal:
    """Append-only file of completed ids, one per newline-terminated line.

    Only complete lines count: a torn last line (the process died in the middle of writing
    it) is ignored when loading and cut off before the first append, so it can neither be
    taken for a finished id nor glued to the next one. Each id is handed to the OS with one
    unbuffered ``os.write`` as soon as it completes, so a killed process loses none of them
    (at most the ids in flight are sent again on resume); ``fsync`` runs at most every
    :data:`JOURNAL_SYNC_INTERVAL` seconds and on close, for a crash of the whole machine.

    ``kind`` (one of ``JOURNAL_KINDS``, or None for plain ids) says which lines are this
    journal's: it writes ``<kind>\t<id>`` and loads only the lines of its own kind, so the
    adds and the removals of a segment sync share one file without mixing.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str | None = None) -> None:
        if kind is not None and kind not in JOURNAL_KINDS:
            raise ValueError(f"unknown journal kind {kind!r}")
        self.path = Path(path)
        self._kind = kind
        self._prefix = "" if kind is None else kind + "\t"
        self._fd: int | None = None
        self._valid_size: int | None = None  # bytes up to the last newline, when loaded
        self._last_sync = time.monotonic()

    def load_into(self, done: FingerprintSet) -> int:
        """Add the ids of every complete line of this kind to ``done``; return how many.

        Raises:
            JournalError: the file is not UTF-8 text or cannot be read.
        """
        count = 0
        valid = 0
        try:
            with self.path.open("rb") as fh:
                for number, raw in enumerate(fh, 1):
                    if not raw.endswith(b"\n"):
                        break  # a torn tail: never written completely
                    valid += len(raw)
                    try:
                        line = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError:
                        raise self._error(f"line {number} is not valid UTF-8 text") from None
                    kind, contact_id = _line_of(line)
                    if contact_id and kind == self._kind:
                        done.add(contact_id)
                        count += 1
        except FileNotFoundError:
            valid = 0
        except OSError as exc:
            raise self._error(f"cannot read it: {exc.strerror or exc}") from exc
        self._valid_size = valid
        return count

    def record(self, contact_id: str) -> None:
        """Hand one completed id to the OS now (one ``write``, no buffering in Python).

        An id containing a line break is not recorded (it could not be read back as one id),
        nor a plain id that would read back as a line of another kind: a resumed job sends
        it again, which is safe.

        Raises:
            JournalError: the file cannot be opened or written (disk full, permissions).
        """
        if "\n" in contact_id or "\r" in contact_id:
            return
        if self._kind is None and _line_of(contact_id)[0] is not None:
            return
        self._write(self._prefix + contact_id + "\n")

    def record_many(self, keys: list[str]) -> None:
        """:meth:`record` each of ``keys``, in one ``write`` (an import's answered chunk).

        Raises:
            JournalError: the file cannot be opened or written.
        """
        prefix = self._prefix
        if not prefix:
            raise ValueError("record_many is for a journal of a kind")
        lines = [prefix + key + "\n" for key in keys if "\n" not in key and "\r" not in key]
        if lines:
            self._write("".join(lines))

    def _write(self, text: str) -> None:
        """Hand ``text`` (whole lines) to the OS now; fsync at most every interval."""
        try:
            fd = self._fd if self._fd is not None else self._open()
            data = text.encode("utf-8", "surrogateescape")
            while data:
                data = data[os.write(fd, data) :]
            now = time.monotonic()
            if now - self._last_sync >= JOURNAL_SYNC_INTERVAL:
                self._last_sync = now
                os.fsync(fd)
        except OSError as exc:
            raise self._error(f"cannot write it: {exc.strerror or exc}") from exc

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            if self._valid_size is not None and os.fstat(fd).st_size > self._valid_size:
                os.ftruncate(fd, self._valid_size)  # repair a torn tail before appending
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return fd

    def close(self) -> None:
        """Sync and close the file (if anything was written).

        Raises:
            JournalError: the final ``fsync`` failed (the ids may not be on disk).
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            raise self._error(f"cannot save it: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)

    def _error(self, problem: str) -> JournalError:
        return JournalError(f"journal {self.path}: {problem}", str(self.path))


def _line_of(line: str) -> tuple[str | None, str]:
    """(kind, id) of a journal line: ``<kind>\t<id>`` for a known kind, else a plain id."""
    kind, tab, rest = line.partition("\t")
    if tab and kind in JOURNAL_KINDS:
        return kind, rest
    return None, line


def read_journal(path: str | os.PathLike[str], kind: str | None = None) -> FingerprintSet:
    """The ids a journal records as done (of ``kind``; None: plain ids), without writing it.

    A missing file records nothing. For a plan made before a job runs (a dry run).

    Raises:
        JournalError: the file is not UTF-8 text or cannot be read.
    """
    done = FingerprintSet(16)
    Journal(path, kind).load_into(done)
    return done
