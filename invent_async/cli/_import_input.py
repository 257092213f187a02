"""The rows of ``invent contacts import``: a CSV file, JSON lines or one email per line, read
lazily, each row's line in the file kept for its report.

Three formats (:func:`format_of`: from the file's extension, or ``--format``):

- ``csv``: a header row, then one row per record; the delimiter is the one of ``,``, ``;``
  and a tab that the header holds most of. Columns are matched to the row fields by
  name (:data:`COLUMN_NAMES`: ``email``, ``E-mail``, ``Email address``, ``name``, ``user_id``,
  ``contact_id``, ``type``, case and separators ignored); ``--column`` names the email
  column and ``--name-column`` the name's. Other columns are ignored; a file without an
  email, user id or contact id column is refused before any request.
- ``jsonl``: one JSON object per line, its keys the row fields (others ignored); a JSON
  string is an email. A line that is not such a value is an invalid row (:class:`Unparsed`),
  except the first, which refuses the file (it is probably not JSON lines).
- ``txt``: one email per line. A first line that looks like a CSV header is refused.

Blank lines (and CSV records with every cell blank) are no rows. The bytes are read as
:func:`~._ids.decoded_blocks` reads them (64 KiB blocks, ``read1``, strict UTF-8), and the
rows are handed over a block's at a time.

The import job knows a row by its ``position`` (1 for the first row handed over); the
:class:`LineMap` gives its line in the file. It holds one entry per place where the line
stops following the position (a header, a blank line, a CSV record over several lines), so
memory stays bounded by the file's irregularities, not its size.
"""

from __future__ import annotations

import csv
import io
import json
import re
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Final, Literal, Protocol, cast

import attrs

from .._jobs.import_rows import ROW_FIELDS
from ._ids import STDIN, column_index, decoded_blocks, is_regular_file, noop, open_input
from ._runtime import EXIT_USAGE, CliError, InputError

__all__ = [
    "COLUMN_NAMES",
    "IMPORT_FORMATS",
    "ImportFormat",
    "LineMap",
    "RowInput",
    "Unparsed",
    "format_of",
    "open_rows",
    "row_batches",
]

ImportFormat = Literal["csv", "jsonl", "txt"]
IMPORT_FORMATS: Final = ("csv", "jsonl", "txt")
COLUMN_NAMES: Final = {
    "email": "email",
    "emailaddress": "email",
    "mail": "email",
    "name": "name",
    "fullname": "name",
    "contactname": "name",
    "userid": "user_id",
    "contactid": "contact_id",
    "type": "type",
    "channeltype": "type",
}
"""A CSV header's cell, lower case without blanks, ``-``, ``_`` or ``.``, and its row field."""
_SEPARATORS: Final = re.compile(r"[\s_.-]+")
_CSV_DELIMITERS: Final = (",", ";", "\t")
_SHOWN: Final = 60  # characters of a refused line shown in the message


def format_of(path: str, chosen: str | None) -> ImportFormat:
    """The format of ``path``: ``chosen`` (``--format``), else its extension (``.csv``;
    ``.jsonl``, ``.ndjson``; anything else, stdin included: one email per line)."""
    if chosen is not None:
        return cast("ImportFormat", chosen)
    suffix = "" if path == STDIN else Path(path).suffix.casefold()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "txt"


@attrs.frozen
class Unparsed:
    """A line that is no row (not JSON, or JSON of another kind): handed to the job like a
    row, so that it is counted invalid with its line; ``reason`` says why."""

    text: str
    reason: str


class LineMap:
    """Each row's line in the file, from its position (1 for the first row).

    The reader thread records, in order, where the line stops being the position plus the
    last offset; the event loop looks rows up (always rows already handed over, so already
    recorded). Appends and lookups are single operations on ``array``s: the offsets are
    appended before the positions, so a lookup never sees a position without its offset.
    """

    def __init__(self) -> None:
        self._positions = array("q")
        self._offsets = array("q")

    def mark(self, position: int, offset: int) -> None:
        """From row ``position`` on, a row's line is its position plus ``offset``."""
        self._offsets.append(offset)
        self._positions.append(position)

    def line_of(self, position: int) -> int:
        """The line of the row at ``position``."""
        index = bisect_right(self._positions, position) - 1
        return position + (self._offsets[index] if index >= 0 else 0)

    def __len__(self) -> int:
        """Breakpoints held."""
        return len(self._positions)


def _shown(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…")


def _normal(cell: str) -> str:
    return _SEPARATORS.sub("", cell.casefold())


# --------------------------------------------------------------------------- one email a line


def _line_rows(
    blocks: Iterator[tuple[int, str]],
    lines: LineMap | None,
    convert: Callable[[str], object] | None,
    check_first: Callable[[str, int, object], None],
) -> Iterator[list[object]]:
    """The rows of non-blank lines (stripped), converted (None: left as text, to count them),
    a block's at a time; ``check_first(text, line, row)`` may refuse the first."""
    position = 0
    offset = 0
    first = True
    for before, text in blocks:
        batch: list[object] = []
        for number, raw in enumerate(text.split("\n"), before + 1):
            value = raw.strip()
            if not value:
                continue
            row: object = value
            if first:
                row = value if convert is None else convert(value)
                check_first(value, number, row)
                first = False
            elif convert is not None:
                row = convert(value)
            position += 1
            if lines is not None and number - position != offset:
                offset = number - position
                lines.mark(position, offset)
            batch.append(row)
        if batch:
            yield batch


def _check_email_line(name: str) -> Callable[[str, int, object], None]:
    def check(text: str, line: int, row: object) -> None:
        if any(d in text for d in _CSV_DELIMITERS) or _normal(text) in ("email", "emailaddress"):
            raise InputError(
                f"{name}: the first line {_shown(text)} looks like a CSV header, not an email; "
                "give --format csv to read the file as CSV"
            )

    return check


def _json_row(text: str) -> object:
    """A JSON line as a row: an object's row fields, a string (an email), else Unparsed."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        reason = getattr(exc, "msg", str(exc))
        return Unparsed(text, f"not JSON ({reason})")
    if isinstance(value, dict):
        return {key: value[key] for key in ROW_FIELDS if key in value}
    if isinstance(value, str):
        return value
    kind = "null" if value is None else type(value).__name__
    return Unparsed(text, f"not a JSON object but {kind}")


def _check_json_line(name: str) -> Callable[[str, int, object], None]:
    def check(text: str, line: int, row: object) -> None:
        parsed = _json_row(text)  # again when counting (the row is the text then)
        if isinstance(parsed, Unparsed):
            raise InputError(
                f"{name}: line {line} {_shown(text)} is {parsed.reason}, not a row of JSON "
                "lines (one object per line); give --format to read the file otherwise"
            )

    return check


# --------------------------------------------------------------------------- CSV


class _CsvLines:
    """The lines of decoded blocks, line ends kept, for ``csv.reader``; says when the lines
    read so far end a block (so that the rows of a pipe are handed on, never held back)."""

    def __init__(self, blocks: Iterator[tuple[int, str]]) -> None:
        self._blocks = blocks
        self._lines: list[str] = []
        self._at = 0

    def __iter__(self) -> _CsvLines:
        return self

    def _load(self) -> None:
        _, text = next(self._blocks)
        parts = text.split("\n")
        last = parts.pop()
        lines = [part + "\n" for part in parts]
        if last:  # the input's last line, without its line end
            lines.append(last)
        self._lines, self._at = self._lines[self._at :] + lines, 0

    def first_line(self) -> str:
        """The first line that is not blank, not taken ("": none)."""
        while True:
            for line in self._lines[self._at :]:
                if line.strip():
                    return line
            try:
                self._load()
            except StopIteration:
                return ""

    def __next__(self) -> str:
        if self._at >= len(self._lines):
            self._load()
        line = self._lines[self._at]
        self._at += 1
        return line

    def block_done(self) -> bool:
        """Whether every line read so far has been taken."""
        return self._at >= len(self._lines)


@attrs.frozen
class _Columns:
    """Which cells of a record are which row field (``(index, field)``)."""

    cells: tuple[tuple[int, str], ...]

    @property
    def email_only(self) -> int | None:
        """The index of the email column when it is the only one (rows are then emails)."""
        if len(self.cells) == 1 and self.cells[0][1] == "email":
            return self.cells[0][0]
        return None


def _columns(header: list[str], column: str | None, name_column: str | None, name: str) -> _Columns:
    """The row fields of a CSV ``header``.

    Raises:
        InputError: ``--column`` or ``--name-column`` is not in it, or no column is an email,
            user id or contact id.
    """
    cells = [cell.strip() for cell in header]
    found: dict[str, int] = {}
    if column is not None:
        found["email"] = column_index(cells, column, name)
    if name_column is not None:
        found["name"] = column_index(cells, name_column, name)
    taken = set(found.values())
    for index, cell in enumerate(cells):
        field = COLUMN_NAMES.get(_normal(cell))
        if field is not None and field not in found and index not in taken:
            found[field] = index
            taken.add(index)
    if not found.keys() & {"email", "user_id", "contact_id"}:
        shown = ", ".join(repr(cell) for cell in cells)
        hint = (
            "; it looks like a row: a CSV file needs a header row"
            if any("@" in cell for cell in cells)
            else ""
        )
        raise InputError(
            f"{name}: no email, user_id or contact_id column in the CSV header (columns: "
            f"{shown}){hint}; give --column NAME to name the email column"
        )
    order = {field: rank for rank, field in enumerate(ROW_FIELDS)}
    return _Columns(tuple(sorted(((i, f) for f, i in found.items()), key=lambda c: order[c[1]])))


def _csv_rows(
    blocks: Iterator[tuple[int, str]],
    lines: LineMap | None,
    *,
    column: str | None,
    name_column: str | None,
    name: str,
    count_only: bool,
) -> Iterator[list[object]]:
    """The rows of CSV text: the header is read now (a bad one raises here, before any
    request), the records lazily, a block's at a time.

    Raises:
        InputError: no header, a bad header or a missing column (now); bad CSV or text that
            is not UTF-8 further on (from the iterator, after the rows before it).
    """
    source = _CsvLines(blocks)
    first = source.first_line()
    delimiter = max(_CSV_DELIMITERS, key=first.count)  # a tie (none): the comma
    reader = csv.reader(source, delimiter=delimiter, strict=True)
    try:
        header: list[str] | None = None
        for record in reader:
            if any(cell.strip() for cell in record):
                header = record
                break
    except csv.Error as exc:
        raise InputError(f"{name}: cannot read the CSV header: {exc}") from None
    if header is None:
        return iter(())  # no header: no rows
    columns = _columns(header, column, name_column, name)
    return _csv_records(reader, source, columns, lines, name=name, count_only=count_only)


class _Reader(Protocol):
    """What ``csv.reader`` returns."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def _csv_records(
    reader: _Reader,
    source: _CsvLines,
    columns: _Columns,
    lines: LineMap | None,
    *,
    name: str,
    count_only: bool,
) -> Iterator[list[object]]:
    last = reader.line_num  # the line of the header's end
    position = 0
    offset = 0
    email_only = columns.email_only
    cells = columns.cells
    batch: list[object] = []
    while True:
        try:
            record = next(reader, None)
        except csv.Error as exc:
            if batch:
                yield batch
            raise InputError(f"{name}: bad CSV at line {last + 1}: {exc}") from None
        if record is None:
            break
        number = last + 1  # the record's first line
        last = reader.line_num
        if any(cell.strip() for cell in record):
            position += 1
            if lines is not None and number - position != offset:
                offset = number - position
                lines.mark(position, offset)
            row: object = None
            if count_only:
                pass
            elif email_only is not None:
                row = record[email_only].strip() if email_only < len(record) else ""
            else:
                size = len(record)
                row = {field: record[i] for i, field in cells if i < size and record[i]}
            batch.append(row)
        if batch and source.block_done():
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------- opening


def row_batches(
    stream: IO[bytes],
    fmt: ImportFormat,
    *,
    name: str,
    lines: LineMap | None,
    column: str | None = None,
    name_column: str | None = None,
    count_only: bool = False,
) -> Iterator[list[object]]:
    """The rows of ``stream`` in lists (never empty), read lazily; ``lines`` (None: not
    kept) gets each row's line. ``count_only``: the lists hold placeholders (JSON is not
    parsed, CSV records not made rows), for counting; the checks are the same.

    Raises:
        InputError: for CSV, a bad header now; otherwise (the first line of JSON lines or
            text refused, bad UTF-8, bad CSV) from the iterator.
    """
    blocks = decoded_blocks(stream, name=name)
    if fmt == "csv":
        return _csv_rows(
            blocks,
            lines,
            column=column,
            name_column=name_column,
            name=name,
            count_only=count_only,
        )
    if fmt == "jsonl":
        convert = None if count_only else _json_row
        return _line_rows(blocks, lines, convert, _check_json_line(name))
    return _line_rows(blocks, lines, None, _check_email_line(name))


@attrs.define(kw_only=True)
class RowInput:
    """An opened import file: its rows (lazy), their count when known, and their lines.

    Attributes:
        name: The file name shown in messages (``<stdin>`` for ``-``).
        format: How it is read.
        batches: The rows in lists (never empty), read lazily (iterate once).
        total: How many rows there are, or None for stdin or a pipe.
        lines: Each row's line, filled as the rows are read.
    """

    name: str
    format: ImportFormat
    batches: Iterator[list[object]]
    total: int | None
    lines: LineMap
    _close: Callable[[], object] = attrs.field(alias="close")

    def close(self) -> None:
        """Close the file (stdin stays open). Safe to call more than once."""
        self._close()


def open_rows(
    path: str,
    *,
    fmt: ImportFormat,
    column: str | None,
    name_column: str | None,
    stdin: IO[str],
) -> RowInput:
    """Open ``path`` (``-``: ``stdin``) and check it before any request.

    A regular file is read a first time to count its rows (and check it all: its encoding,
    its CSV, its first line), so that the progress bar has a total and a bad file is refused
    before any request; anything else (stdin, a pipe) is read once.

    Raises:
        InputError: the file cannot be opened or is refused (see :func:`row_batches`).
        CliError: ``--column``/``--name-column`` with a format other than CSV.
    """
    if fmt != "csv" and (column is not None or name_column is not None):
        option = "--column" if column is not None else "--name-column"
        raise CliError(
            f"{option} names a CSV column, and {path} is read as {fmt}: give --format csv",
            EXIT_USAGE,
        )
    lines = LineMap()
    if path == STDIN:
        name = "<stdin>"
        buffer: IO[bytes] | None = getattr(stdin, "buffer", None)
        stream = buffer if buffer is not None else io.BytesIO(stdin.read().encode())
        batches = row_batches(
            stream, fmt, name=name, lines=lines, column=column, name_column=name_column
        )
        return RowInput(name=name, format=fmt, batches=batches, total=None, lines=lines, close=noop)
    total = None
    if is_regular_file(path):
        with open_input(path) as counting:
            counted = row_batches(
                counting,
                fmt,
                name=path,
                lines=None,
                column=column,
                name_column=name_column,
                count_only=True,
            )
            total = sum(map(len, counted))
    handle = open_input(path)
    try:
        batches = row_batches(
            handle, fmt, name=path, lines=lines, column=column, name_column=name_column
        )
    except BaseException:
        handle.close()
        raise
    return RowInput(
        name=path, format=fmt, batches=batches, total=total, lines=lines, close=handle.close
    )
