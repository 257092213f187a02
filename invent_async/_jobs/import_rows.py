"""The rows of a bulk import, without I/O: each row checked, keyed, put into a chunk, and
matched back to the answer to that chunk.

- :func:`check_row`: one input item (an email string, a mapping of the row's fields, or a
  :class:`~invent_async.ContactChannelOption`) as its wire dict and its key, or the reason it
  is invalid. What the client can see before sending is checked here, so an invalid email or
  an over-long name costs one row, not a 400 for the 10,000 rows of its request.
- :func:`row_key`: which contact a row is for: its email (case-folded), else its user id, else
  its contact id (the key the journal records and the answer is matched by).
  :func:`identities`: every one of them. Two rows sharing one in a request would race on the
  server; the second is skipped as a duplicate (:class:`Chunk`), and the job never has two
  requests sharing one in flight (their ``keys`` are compared).
- :class:`Chunk`: the rows of one request, closed at :data:`MAX_CHUNK_ROWS` rows or at a
  body size (:data:`DEFAULT_CHUNK_BYTES`), with their positions in the input and their keys.
- :func:`sort_answer`: the answer to a chunk (``created``, ``updated``, ``invalid`` lists of
  rows) matched back to the chunk's rows by key; a row the answer does not mention is
  reported as such.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from .._converter import dumps
from .._models import ContactChannelOption
from .._types import UNSET

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "MAX_CHUNK_ROWS",
    "MAX_FIELD",
    "NOT_IN_ANSWER",
    "ROW_FIELDS",
    "Chunk",
    "check_row",
    "row_key",
    "sort_answer",
]

MAX_CHUNK_ROWS: Final = 10_000
"""The most rows one import request takes (the API's limit)."""
DEFAULT_CHUNK_BYTES: Final = 1_000_000
"""The default largest body of one import request, in bytes: a chunk closes before it would
pass it. A row of a name and an email is about 90 bytes, so a chunk of typical rows closes at
10,000 rows (0.9 MB); rows with long names close it earlier. 1 MB stays under the 1 MiB that
common proxies accept by default (nginx's ``client_max_body_size``); a 413 answer splits the
chunk in two and sends each half."""
MAX_FIELD: Final = 256
"""The most characters of a row's email, name, user id or contact id (the API's 256 for a
channel's email and name)."""
ROW_FIELDS: Final = ("type", "email", "user_id", "name", "contact_id")
"""The fields of a row, as the API names them."""
NOT_IN_ANSWER: Final = "not in the answer: the API did not say what it did with this row"
"""The reason of a sent row that the answer lists under none of created, updated, invalid."""

_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+").fullmatch
_ROW_OVERHEAD: Final = 12  # "{}", a comma, and the quotes and colon of a field beyond its name
_FIELD_OVERHEAD: Final = {name: len(name) + 4 for name in ROW_FIELDS}  # "name":"" and a comma
_BODY_OVERHEAD: Final = 64  # {"channels":[...],"segment_id":"..."} beyond the id
_EMAIL_ROW: Final = _ROW_OVERHEAD + _FIELD_OVERHEAD["type"] + 5 + _FIELD_OVERHEAD["email"]
"""``row_size`` of ``{"type": "email", "email": ...}`` beyond the email's bytes."""


def row_key(row: Mapping[str, object]) -> str | None:
    """Which contact ``row`` (a wire dict, sent or answered) is for: ``e:<email case-folded>``,
    else ``u:<user id>``, else ``c:<contact id>``; None when it has none of them."""
    email = row.get("email")
    if isinstance(email, str) and email:
        return "e:" + email.casefold()
    user_id = row.get("user_id")
    if isinstance(user_id, str) and user_id:
        return "u:" + user_id
    contact_id = row.get("contact_id")
    if isinstance(contact_id, str) and contact_id:
        return "c:" + contact_id
    return None


def identities(row: Mapping[str, str], key: str) -> list[str]:
    """Every identity of ``row`` (a checked wire dict whose :func:`row_key` is ``key``): its
    email (case-folded), user id and contact id, as keys, ``key`` first."""
    found = [key]
    user_id, contact_id = row.get("user_id"), row.get("contact_id")
    if user_id and key[0] != "u":
        found.append("u:" + user_id)
    if contact_id and key[0] != "c":
        found.append("c:" + contact_id)
    return found


def _sendable(text: str) -> bool:
    """UTF-8 can carry ``text`` (no lone surrogate) and it has no control character."""
    if text.isascii():
        return text.isprintable()
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return text.isprintable()


def check_row(item: object) -> tuple[dict[str, str], str, int] | str:
    """``item`` as ``(wire dict, key, size)``, or the reason it is not a valid row (a ``str``);
    ``size`` is :func:`row_size` of the wire dict.

    An item is an email (a string), a mapping of :data:`ROW_FIELDS` to strings (None or an
    empty string: not given), or a :class:`~invent_async.ContactChannelOption`. Surrounding
    blanks are dropped; a row with an email and no ``type`` gets ``type="email"``.

    A row is invalid when: it is none of those; a mapping has another key or a value that is
    not a string; it has none of email, user id and contact id; its email is not an address
    (``local@domain.tld``, no blanks); a field is longer than :data:`MAX_FIELD` characters, or
    holds a control character or text UTF-8 cannot carry.
    """
    if isinstance(item, str):  # the common case: one email
        email = item.strip()
        if not email:
            return "no email, user_id or contact_id"
        if len(email) > MAX_FIELD:
            return f"email is {len(email)} characters, more than {MAX_FIELD}"
        if not _EMAIL(email) or not _sendable(email):
            return f"email {_shown(email)} is not an email address"
        size = _EMAIL_ROW + (len(email) if email.isascii() else len(email.encode()) + 8)
        return {"type": "email", "email": email}, "e:" + email.casefold(), size
    if isinstance(item, ContactChannelOption):
        fields: Mapping[str, object] = {
            name: value for name in ROW_FIELDS if (value := getattr(item, name)) is not UNSET
        }
    elif isinstance(item, Mapping):
        fields = item
    else:
        return (
            "not a row: expected an email, a mapping of row fields or a "
            f"ContactChannelOption, got {type(item).__name__}"
        )
    row: dict[str, str] = {}
    for name, value in fields.items():
        if name not in _FIELD_OVERHEAD:
            return f"unknown field {_shown(str(name))} (a row has {', '.join(ROW_FIELDS)})"
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{name} must be a string, got {type(value).__name__}"
        value = value.strip()
        if not value:
            continue
        if len(value) > MAX_FIELD:
            return f"{name} is {len(value)} characters, more than {MAX_FIELD}"
        if not _sendable(value):
            return f"{name} holds a control character or text UTF-8 cannot carry"
        row[name] = value
    address = row.get("email")
    if address is not None:
        if not _EMAIL(address):
            return f"email {_shown(address)} is not an email address"
        row.setdefault("type", "email")
    key = row_key(row)
    if key is None:
        return "no email, user_id or contact_id"
    return row, key, row_size(row)


def _shown(text: str) -> str:
    """``text`` quoted for a reason, cut at 80 characters."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def row_size(row: dict[str, str]) -> int:
    """An upper estimate of ``row``'s bytes in the JSON body (UTF-8, a few escapes)."""
    size = _ROW_OVERHEAD
    for name, value in row.items():
        size += _FIELD_OVERHEAD[name] + (len(value) if value.isascii() else len(value.encode()) + 8)
    return size


class Chunk:
    """The rows of one import request, in input order.

    Attributes:
        positions: Each row's position in the input (1 for the first item).
        items: Each row as the input gave it.
        rows: The wire dicts, sent as the body's ``channels``.
        primary: Each row's key (:func:`row_key`).
        keys: Every identity of every row (:func:`identities`), and the index of its row.
        size: The estimated body size in bytes.
    """

    __slots__ = ("items", "keys", "max_bytes", "max_rows", "positions", "primary", "rows", "size")

    def __init__(self, max_rows: int = MAX_CHUNK_ROWS, max_bytes: int = DEFAULT_CHUNK_BYTES):
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.positions: list[int] = []
        self.items: list[object] = []
        self.rows: list[dict[str, str]] = []
        self.primary: list[str] = []
        self.keys: dict[str, int] = {}
        self.size = _BODY_OVERHEAD

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, position: int, item: object, row: dict[str, str], key: str, size: int) -> int:
        """Add a row of ``size`` bytes (from :func:`check_row`): 0 when it was added; -1 when
        the chunk is full without it (not added; a chunk takes its first row whatever its
        size); else the position of the row that shares one of its identities (a duplicate,
        not added)."""
        rows = self.rows
        count = len(rows)
        if count and (count >= self.max_rows or self.size + size > self.max_bytes):
            return -1
        keys = self.keys
        if len(row) <= 2 and "type" in row:  # one identity (the common row): one probe
            index = keys.setdefault(key, count)
            if index != count:
                return self.positions[index]
        else:
            names = identities(row, key)
            for name in names:
                if (held := keys.get(name)) is not None:
                    return self.positions[held]
            for name in names:
                keys[name] = count
        self.positions.append(position)
        self.items.append(item)
        rows.append(row)
        self.primary.append(key)
        self.size += size
        return 0

    def subset(self, indices: list[int]) -> Chunk:
        """A chunk of the rows at ``indices`` (in order)."""
        part = Chunk(self.max_rows, self.max_bytes)
        part.positions = [self.positions[i] for i in indices]
        part.items = [self.items[i] for i in indices]
        part.rows = [self.rows[i] for i in indices]
        part.primary = [self.primary[i] for i in indices]
        part.keys = {
            name: index
            for index, (row, key) in enumerate(zip(part.rows, part.primary, strict=True))
            for name in identities(row, key)
        }
        part.size = _BODY_OVERHEAD + sum(map(row_size, part.rows))
        return part

    def halves(self) -> tuple[Chunk, Chunk]:
        """The chunk cut in two, in order (for a 413 answer); it holds 2 rows or more."""
        middle = len(self.rows) // 2
        return self.subset(list(range(middle))), self.subset(list(range(middle, len(self.rows))))

    def body(self, segment_id: str | None) -> bytes:
        """The request body: ``{"channels": [...], "segment_id": ...}``."""
        if segment_id is None:
            return dumps({"channels": self.rows})
        return dumps({"channels": self.rows, "segment_id": segment_id})


ANSWER_LISTS: Final = ("created", "updated", "invalid")


def sort_answer(chunk: Chunk, answer: object) -> tuple[bytearray, list[str | None]] | str:
    """The answer to ``chunk`` matched to its rows: each row's code (0: not in the answer, 1:
    created, 2: updated, 3: invalid, in the order of :data:`ANSWER_LISTS`) and the contact id
    the answer gives it; or what is wrong with the answer (a ``str``) when it is not an
    object of three lists of rows.

    A row of the answer is matched by its key (:func:`row_key`: the email, user id or contact
    id sent); one that matches no row sent, or a row already matched, is ignored.
    """
    if not isinstance(answer, dict):
        return f"expected an object with {', '.join(ANSWER_LISTS)}, got {type(answer).__name__}"
    codes = bytearray(len(chunk.rows))
    contacts: list[str | None] = [None] * len(chunk.rows)
    keys = chunk.keys
    for code, name in enumerate(ANSWER_LISTS, 1):
        rows = answer.get(name)
        if not isinstance(rows, list):
            return f"$.{name}: expected a list of rows, got {type(rows).__name__}"
        for row in rows:
            if row.__class__ is not dict:
                return f"$.{name}: expected rows (objects), got {type(row).__name__}"
            email = row.get("email")  # (row_key, inlined for the common row)
            key = "e:" + email.casefold() if email.__class__ is str and email else row_key(row)
            index = keys.get(key) if key is not None else None
            if index is None or codes[index]:
                continue
            codes[index] = code
            contact_id = row.get("contact_id")
            if isinstance(contact_id, str):
                contacts[index] = contact_id
    return codes, contacts
