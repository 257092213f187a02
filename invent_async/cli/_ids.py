"""Contact ids for ``invent contacts tag/untag``: parsing a file or stdin, lazily.

Two layouts: one id per line (blank lines and surrounding whitespace ignored), or a CSV file with
a header row and ``--column NAME``. A first line that looks like a CSV header (a comma, a
semicolon or a tab; or a bare column name such as ``contact_id``) is refused without
``--column``: it would be sent as an id, and every row after it too.

:func:`open_ids` checks what can be checked up front (the file opens, the CSV column exists,
no CSV header without ``--column``) and, for a regular file, counts the ids in a first cheap
pass so the progress bar has a total. The ids themselves are then read lazily by
:class:`BackgroundIds`, a daemon thread feeding a bounded buffer, so the event loop never blocks
on a slow pipe or a terminal and memory stays bounded whatever the input size.

Ids travel in batches (lists), never one object at a time: a file of one id per line is read
in blocks of :data:`READ_BLOCK` bytes (``read1``: what a pipe has now, never waiting for a
block to fill), each block decoded and split at once, so a million ids cost a few hundred
steps of Python rather than a few million (a 1,000,000-id file is read in about 0.1 s).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from typing import IO, Final, Generic, TypeVar, cast

import attrs

from ._runtime import InputError

__all__ = [
    "READ_BLOCK",
    "STDIN",
    "BackgroundIds",
    "IdInput",
    "batched",
    "column_index",
    "decode_lines",
    "decoded_blocks",
    "line_id_batches",
    "iter_csv_ids",
    "is_regular_file",
    "iter_line_ids",
    "looks_like_csv_header",
    "noop",
    "open_input",
    "open_ids",
    "refuse_csv_header",
]

T = TypeVar("T")

STDIN: Final = "-"
READ_BLOCK: Final = 64 * 1024
"""Bytes read from an id file or pipe at a time (about 7,000 ids of 8 characters)."""
_BATCH: Final = 4096  # ids a batch holds when they come one by one (CSV, a text stream)
_BUFFER: Final = 8192  # ids read ahead beyond the batch taken and the one being added
_PUT_POLL: Final = 0.1  # seconds between checks of the stop flag while the buffer is full
_CSV_DELIMITERS: Final = (",", ";", "\t")
_ID_COLUMN: Final = re.compile(r"(contacts?[ _-]?)?ids?", re.IGNORECASE)
_SHOWN: Final = 60  # characters of a refused first line shown in the message


def decode_lines(lines: Iterable[bytes], *, name: str) -> Iterator[str]:
    """Decode each line as strict UTF-8 (a leading byte order mark is dropped).

    Line by line, so that the ids before a bad line are still used and the error names it.

    Raises:
        InputError: a line is not valid UTF-8.
    """
    for number, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{name}: line {number} is not valid UTF-8 text") from None
        yield line.removeprefix("\ufeff") if number == 1 else line


def iter_line_ids(lines: Iterable[str]) -> Iterator[str]:
    """Ids from text with one id per line; blank lines and surrounding whitespace are ignored."""
    for line in lines:
        value = line.strip()
        if value:
            yield value


def decoded_blocks(stream: IO[bytes], *, name: str) -> Iterator[tuple[int, str]]:
    """The text of a binary stream in whole lines, a block of :data:`READ_BLOCK` bytes at a
    time: ``(lines before the block, its text)``, decoded as strict UTF-8 (the input's byte
    order mark dropped). Each text ends with a line end, except the input's last line
    when it has none. Never an empty text.

    ``read1`` returns what the stream has (a pipe's bytes so far), so a line that arrived is
    never held back for a block to fill; a line's end is awaited, as a line reader would.

    Raises:
        InputError: a line is not valid UTF-8 (the whole lines before it are yielded first).
    """
    read = getattr(stream, "read1", stream.read)
    carry: list[bytes] = []  # the start of a line whose end has not come yet
    lines_before = 0  # complete lines of the blocks already split
    first = True
    while True:
        chunk = read(READ_BLOCK)
        if not chunk:
            block = b"".join(carry)  # the last line, without its line end
            if not block:
                return
        else:
            cut = chunk.rfind(b"\n") + 1
            if not cut:  # no line end yet: wait for more (joined once, however long)
                carry.append(chunk)
                continue
            head = chunk if cut == len(chunk) else chunk[:cut]
            block = b"".join((*carry, head)) if carry else head
            carry = [chunk[cut:]] if cut < len(chunk) else []
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            good = block[: block.rfind(b"\n", 0, exc.start) + 1]
            if good:
                text = good.decode("utf-8")
                yield lines_before, text.removeprefix("\ufeff") if first else text
            number = lines_before + block.count(b"\n", 0, exc.start) + 1
            raise InputError(f"{name}: line {number} is not valid UTF-8 text") from None
        if first:
            text = text.removeprefix("\ufeff")
            first = False
        if text:
            yield lines_before, text
        if not chunk:
            return
        lines_before += block.count(b"\n")


def line_id_batches(stream: IO[bytes], *, name: str) -> Iterator[list[str]]:
    """Lists of ids from a binary stream of one id per line, as :func:`decode_lines` and
    :func:`iter_line_ids` read them (strict UTF-8, a leading byte order mark dropped, blank
    lines and surrounding whitespace ignored), a block of :data:`READ_BLOCK` bytes at a time
    (:func:`decoded_blocks`). Lists are never empty.

    Raises:
        InputError: a line is not valid UTF-8 (the ids before it are yielded first).
    """
    for _, text in decoded_blocks(stream, name=name):
        ids = _split_ids(text)
        if ids:
            yield ids


def _split_ids(text: str) -> list[str]:
    """The ids of whole lines of text."""
    return [value for value in map(str.strip, text.split("\n")) if value]


def batched(values: Iterable[str], size: int = _BATCH) -> Iterator[list[str]]:
    """``values`` in lists of at most ``size`` (never empty). An error of ``values`` is
    raised after the values read before it were yielded (a bad line loses no earlier id).

    Filling a list waits for ``size`` values: a stream that may pause (a pipe) is read with
    ``size=1`` (:func:`open_ids` does), a file with the default.
    """
    iterator = iter(values)
    while True:
        batch: list[str] = []
        try:
            batch.extend(islice(iterator, size))
        except BaseException:
            if batch:
                yield batch
            raise
        if not batch:
            return
        yield batch


def looks_like_csv_header(value: str) -> bool:
    """True for a (stripped) first line that is a CSV header rather than a contact id.

    Ids never contain a comma, a semicolon or a tab; a lone ``id``/``contact_id``/``Contact
    ID`` is the header of a one-column export.
    """
    return any(d in value for d in _CSV_DELIMITERS) or _ID_COLUMN.fullmatch(value) is not None


def refuse_csv_header(batches: Iterable[list[str]], *, name: str) -> Iterator[list[str]]:
    """Pass batches of ids through, checking the first id with :func:`looks_like_csv_header`.

    Raises:
        InputError: the first id looks like a CSV header (``--column`` reads such a file).
    """
    iterator = iter(batches)
    for batch in iterator:
        first = batch[0]
        if looks_like_csv_header(first):
            shown = first if len(first) <= _SHOWN else first[: _SHOWN - 1] + "…"
            raise InputError(
                f"{name}: the first line {shown!r} looks like a CSV header, not a contact id; "
                "give --column NAME to read the ids from one of its columns"
            )
        yield batch
        break
    yield from iterator


def iter_csv_ids(lines: Iterable[str], column: str, *, name: str) -> Iterator[str]:
    """Ids from the ``column`` of CSV text with a header row; blank values are ignored.

    The header is read (and the column looked up) as soon as this is called, not on the first
    ``next()``, so a missing column is reported before any work starts.

    Raises:
        InputError: no header row, no such column, or bad CSV (``name`` says where).
    """
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"{name}: cannot read the CSV header: {exc}") from None
    if not header:
        raise InputError(f"{name}: no CSV header row (--column needs one)")
    return _csv_values(reader, column_index([c.strip() for c in header], column, name), name)


def column_index(header: list[str], column: str, name: str) -> int:
    """The index of ``column`` in a CSV ``header``: its exact name, else the one cell equal
    to it case-insensitively.

    Raises:
        InputError: no such column (the message lists the header's cells).
    """
    if column in header:
        return header.index(column)
    folded = [cell.casefold() for cell in header]
    if folded.count(column.casefold()) == 1:
        return folded.index(column.casefold())
    shown = ", ".join(repr(cell) for cell in header)
    raise InputError(f"{name}: no column {column!r} in the CSV header; columns: {shown}")


def _csv_values(reader: Iterator[list[str]], index: int, name: str) -> Iterator[str]:
    try:
        for row in reader:
            if index < len(row):
                value = row[index].strip()
                if value:
                    yield value
    except csv.Error as exc:
        line = getattr(reader, "line_num", "?")
        raise InputError(f"{name}: bad CSV near line {line}: {exc}") from None


@attrs.define(kw_only=True)
class IdInput:
    """An opened id source: the lazy ids, their count when known, and how to close it.

    Attributes:
        name: The file name shown in messages (``<stdin>`` for ``-``).
        batches: The ids in lists (never empty), read lazily (iterate once).
        total: How many ids there are (duplicates included), or None for a pipe or stdin.
    """

    name: str
    batches: Iterator[list[str]]
    total: int | None
    _close: Callable[[], object] = attrs.field(alias="close")

    @property
    def ids(self) -> Iterator[str]:
        """The ids one by one (the same single pass as :attr:`batches`)."""
        return chain.from_iterable(self.batches)

    def close(self) -> None:
        """Close the file (stdin stays open). Safe to call more than once."""
        self._close()


def open_ids(path: str, *, column: str | None, stdin: IO[str]) -> IdInput:
    """Open ``path`` (``-``: ``stdin``) as an id source and check it before any work starts.

    Both are read as UTF-8 bytes, line by line. A regular file gets a first pass that counts its
    ids (cheap, and it makes the progress bar's total and ETA exact); anything else (stdin, a
    pipe) is read once, with an unknown total.

    Raises:
        InputError: the file cannot be opened, ``column`` is not in its header, or (without
            ``column``) its first line looks like a CSV header; for stdin, the last two are
            raised by the first ``next()``.
    """
    if path == STDIN:
        name = "<stdin>"
        # the bytes under sys.stdin, not its own decoding (which may be surrogateescape)
        buffer: IO[bytes] | None = getattr(stdin, "buffer", None)
        batches = _parse(stdin if buffer is None else buffer, column, name, size=1)
        return IdInput(name=name, batches=batches, total=None, close=noop)
    total = None
    size = 1  # a pipe: an id is handed on as soon as it is read
    if is_regular_file(path):
        size = _BATCH
        with open_input(path) as counting:
            total = sum(map(len, _parse(counting, column, path, size=size)))
    handle = open_input(path)
    try:
        batches = _parse(handle, column, path, size=size)
    except BaseException:
        handle.close()
        raise
    return IdInput(name=path, batches=batches, total=total, close=handle.close)


def _parse(
    stream: IO[bytes] | IO[str], column: str | None, name: str, *, size: int
) -> Iterator[list[str]]:
    """The batches of ids of a binary stream (or a text one: stdin replaced by a test): a
    block's at a time for one id per line, else at most ``size`` (1 for a pipe)."""
    lines: Iterable[str]
    if isinstance(stream, io.TextIOBase):
        lines = cast("IO[str]", stream)
    else:
        binary = cast("IO[bytes]", stream)
        if column is None:
            return refuse_csv_header(line_id_batches(binary, name=name), name=name)
        lines = decode_lines(binary, name=name)
    if column is None:
        return refuse_csv_header(batched(iter_line_ids(lines), size), name=name)
    return batched(iter_csv_ids(lines, column, name=name), size)


def open_input(path: str) -> IO[bytes]:
    """``path`` opened for reading bytes (closed by the input that reads it).

    Raises:
        InputError: it cannot be opened.
    """
    try:
        return open(path, "rb")  # closed by IdInput.close / RowInput.close
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def is_regular_file(path: str) -> bool:
    """Whether ``path`` is a regular file (one that may be read twice: counted, then read)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False  # open_input reports the problem


def noop() -> None:
    """The ``close`` of an input that owns nothing to close (stdin)."""


# --------------------------------------------------------------------------- the reader thread


class _End:
    """Put in the queue after the last id."""


@attrs.frozen
class _Failure:
    """Put in the queue when reading failed; the consumer re-raises it."""

    error: BaseException


class BackgroundIds(Generic[T]):
    """An async iterator over ids (or any items: ``contacts import`` reads rows) that a daemon
    thread reads from blocking batches of them.

    The thread runs ahead of the consumer by at most ``buffer`` ids and a batch (pending),
    beyond the batch being consumed (as large) and the one being read, so memory stays
    bounded and the event loop never waits
    on file or pipe I/O. A daemon thread (not the loop's executor) is used so that a read
    blocked on an idle terminal never delays exit. An error raised by the iterator is raised
    again from ``__anext__`` (and :meth:`next_batch`), after the ids read before it. Call
    :meth:`close` when done (also after an early stop) to let the thread end.

    The ids pass in batches: the thread adds each batch it reads to a list under a lock (at
    once, so ids read from a slow pipe are never held back for more to come), and the consumer
    takes the whole list when its own runs out, so a million ids cost a few hundred handovers
    rather than a queue operation each way per id. :meth:`next_batch` hands a consumer that
    works in batches (segment sync's classification) whatever is there, in one list.
    """

    def __init__(self, batches: Iterator[list[T]], *, buffer: int = _BUFFER) -> None:
        self._batches = batches
        self._buffer = max(1, buffer)
        self._room = threading.Condition()  # its lock guards the four fields below
        self._pending: list[T] = []  # read, not yet taken by the consumer
        self._last: _End | _Failure | None = None  # after the pending ids: the end, or why not
        self._waiting = False  # the consumer waits for the thread to wake it
        self._stopped = False
        self._taken: list[T] = []  # the consumer's batch ...
        self._at = 0  # ... and the next id of it
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._exhausted = False

    def __aiter__(self) -> BackgroundIds[T]:
        return self

    async def __anext__(self) -> T:
        at = self._at
        if at < len(self._taken):
            self._at = at + 1
            return self._taken[at]
        taken = await self._refill()
        if not taken:
            raise StopAsyncIteration
        self._taken, self._at = taken, 1
        return taken[0]

    async def next_batch(self) -> list[T]:
        """The ids read so far and not yet handed out (waiting for one if there is none), in
        one list; an empty list once the input is exhausted."""
        at, taken = self._at, self._taken
        if at < len(taken):
            self._taken, self._at = [], 0
            return taken[at:] if at else taken
        return await self._refill()

    async def _refill(self) -> list[T]:
        """The next batch, once the thread has one (empty: the end; or its error raised)."""
        if self._exhausted:
            return []
        if self._thread is None:
            self._start()
        wakeup = self._wakeup
        assert wakeup is not None
        self._taken, self._at = [], 0
        while True:
            with self._room:
                taken, last = self._pending, self._last
                if taken:
                    self._pending = []
                    self._room.notify()  # the thread may be waiting for room
                elif last is None:
                    wakeup.clear()
                    self._waiting = True  # under the lock: the thread's next id wakes us
            if taken:
                return taken
            if last is not None:
                self._exhausted = True
                if isinstance(last, _Failure):
                    raise last.error
                return []
            await wakeup.wait()

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._thread = threading.Thread(target=self._read, name="invent-id-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        """The thread: move ids from the iterator to the consumer until the end or close()."""
        room = self._room
        try:
            for batch in self._batches:
                with room:
                    while len(self._pending) >= self._buffer and not self._stopped:
                        room.wait(_PUT_POLL)
                    if self._stopped:
                        return
                    if self._pending:
                        self._pending.extend(batch)
                    else:
                        self._pending = batch
                    wake, self._waiting = self._waiting, False
                if wake:
                    self._wake()
            self._finish(_End())
        except BaseException as exc:  # handed to the consumer, which raises it
            self._finish(_Failure(exc))

    def _finish(self, last: _End | _Failure) -> None:
        with self._room:
            self._last = last
            wake, self._waiting = self._waiting, False
        if wake:
            self._wake()

    def _wake(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        assert loop is not None
        assert wakeup is not None
        try:
            loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            with self._room:
                self._stopped = True

    def close(self) -> None:
        """Tell the thread to stop and free the buffer (it may still finish a blocked read)."""
        self._exhausted = True
        self._taken, self._at = [], 0
        with self._room:
            self._stopped = True
            self._pending = []
            self._room.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=0.5)
