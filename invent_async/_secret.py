"""The API key's wrapper, :class:`Secret`, and redaction of a secret from what a server sent.

A server or proxy that echoes the request's headers puts the key into a response; JSON may
spell any of its characters as ``\\uXXXX`` (Go's encoder does so for ``<``, ``>``, ``&``), or
escape ``/``, ``\\`` and ``"``. :meth:`Secret.redact` matches every such spelling, in bytes or
text, JSON or not; :meth:`Secret.strip_cut` removes a beginning of the key left at the end of
a body cut short. Both take time linear in the data, for a key of any length. Nothing else
lives here.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["REDACTED", "Secret", "redact_text"]

REDACTED: Final = "<redacted>"
_PARTIAL_ESCAPE: Final = re.compile(rb"\\(?:u[0-9a-fA-F]{0,3})?\Z")
"""A JSON escape cut short at the end of the data (nothing of it is worth keeping)."""


def _spellings(char: str) -> str:
    """A regex for ``char`` as itself or as any JSON escape of it, tried in that order without
    backtracking into it (an atomic group: matching stays linear whatever the key holds)."""
    alternatives = [f"\\\\u(?i:{ord(char):04x})"]
    if char in '"\\/':
        alternatives.append(re.escape("\\" + char))
    alternatives.append(re.escape(char))
    return "(?>" + "|".join(alternatives) + ")"


_ESCAPE: Final = re.compile(rb'\\(?:u([0-9a-fA-F]{4})|(["\\/]))')


def _unescaped(data: bytes) -> tuple[str, list[int]]:
    """``data`` with its JSON escapes of ``\\uXXXX`` and ``\\" \\\\ \\/`` decoded (other bytes
    as Latin-1), and the offset in ``data`` where each character of the result starts."""
    chars: list[str] = []
    starts: list[int] = []
    at = 0
    for found in _ESCAPE.finditer(data):
        chunk = data[at : found.start()].decode("latin-1")
        chars.extend(chunk)
        starts.extend(range(at, found.start()))
        code, plain = found.groups()
        chars.append(chr(int(code, 16)) if code is not None else plain.decode("latin-1"))
        starts.append(found.start())
        at = found.end()
    chars.extend(data[at:].decode("latin-1"))
    starts.extend(range(at, len(data)))
    return "".join(chars), starts


class _Patterns:
    """The compiled patterns of one secret (kept inside its :class:`Secret`)."""

    __slots__ = ("bytes_whole", "text_whole")

    def __init__(self, value: str) -> None:
        whole = "".join(_spellings(char) for char in value)
        self.text_whole = re.compile(whole)
        self.bytes_whole = re.compile(whole.encode())

    def __repr__(self) -> str:
        return "<redacted>"


class Secret:
    """Holds a secret (the API key): its repr never shows it, and it does not pickle."""

    __slots__ = ("_patterns", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        self._patterns: _Patterns | None = None

    def __repr__(self) -> str:
        return REDACTED

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("an API key is not pickled; pass it to the client in each process")

    def reveal(self) -> str:
        """The secret itself, for the one place that sends it."""
        return self._value

    def _compiled(self) -> _Patterns:
        if self._patterns is None:
            self._patterns = _Patterns(self._value)
        return self._patterns

    def redact(self, data: bytes) -> bytes:
        """``data`` with every occurrence of the secret, in any JSON spelling, replaced."""
        if not self._value:
            return data
        return self._compiled().bytes_whole.sub(REDACTED.encode(), data)

    def redact_text(self, text: str) -> str:
        """``text`` with every occurrence of the secret, in any JSON spelling, replaced."""
        if not self._value:
            return text
        return self._compiled().text_whole.sub(REDACTED, text)

    def strip_cut(self, data: bytes) -> bytes:
        """``data`` (cut short) without a beginning of the secret at its very end (and
        without an escape sequence the cut split)."""
        value = self._value
        if not value:
            return data
        partial = _PARTIAL_ESCAPE.search(data, max(0, len(data) - 6))
        if partial is not None:
            data = data[: partial.start()]
        # The longest spelling of a character is 6 bytes (\uXXXX); a little more, so that an
        # escape split by the window's own start is far from the end.
        window = 6 * len(value) + 12
        start = max(0, len(data) - window)
        tail, starts = _unescaped(data[start:])
        for size in range(min(len(value) - 1, len(tail)), 0, -1):
            if tail.endswith(value[:size]):
                return data[: start + starts[len(tail) - size]]
        return data


def redact_text(text: str, secret: str) -> str:
    """``text`` without ``secret`` (for a secret that is not kept in a :class:`Secret`)."""
    return Secret(secret).redact_text(text)
