"""Secrets: the API key's wrapper :class:`Secret`, redaction of a secret from what a server
sent, and what may carry a secret in a URL.

A server or proxy that echoes the request's headers puts the key into a response; JSON may
spell any of its characters as ``\\uXXXX`` (Go's encoder does so for ``<``, ``>``, ``&``), or
escape ``/``, ``\\`` and ``"``. :meth:`Secret.redact` matches every such spelling, in bytes or
text, JSON or not; :meth:`Secret.strip_cut` removes a beginning of the key left at the end of
a body cut short. Both take time linear in the data, for a key of any length. A key shorter
than :data:`WHOLE_TOKEN_BELOW` characters (a test key such as ``"k"``) is matched only as a
whole token, not inside a longer word: ``bookkeeping`` stays whole, while the key in a
header, a JSON string or a query parameter (next to a space, a quote, ``=`` or ``&``) is
replaced. A longer key is matched anywhere: it cannot occur by chance.

URLs: :func:`redact_url` hides a Redis URL's password (in the user info and in a
``password=`` query parameter, which redis-py both reads), :func:`check_redis_url` accepts a
Redis URL only when nothing secret would cross the network in clear text, and
:func:`is_loopback_host` says which hosts may be reached without TLS (``http://`` for the API,
``redis://`` for a budget's server). Nothing else lives here.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast
from urllib.parse import parse_qs, unquote_plus, urlsplit

__all__ = [
    "REDACTED",
    "Secret",
    "check_redis_url",
    "has_password",
    "is_loopback_host",
    "redact_text",
    "redact_url",
    "redacted_url_repr",
    "secret_arguments",
    "secret_constructor",
]

REDACTED: Final = "<redacted>"
WHOLE_TOKEN_BELOW: Final = 16
"""A key shorter than this is redacted only where no letter or digit touches it."""
_NOT_AFTER: Final = r"(?:(?<![A-Za-z0-9])|(?<=\\u[0-9a-fA-F]{4}))"  # an escape may spell a space
_NOT_BEFORE: Final = "(?![A-Za-z0-9])"
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
        if len(value) < WHOLE_TOKEN_BELOW:
            whole = _NOT_AFTER + whole + _NOT_BEFORE
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
        short = len(value) < WHOLE_TOKEN_BELOW
        for size in range(min(len(value) - 1, len(tail)), 0, -1):
            if not tail.endswith(value[:size]):
                continue
            at = len(tail) - size
            if short and at > 0 and tail[at - 1].isascii() and tail[at - 1].isalnum():
                continue  # inside a word: not where a short key is looked for
            return data[: start + starts[at]]
        return data


F = TypeVar("F", bound=Callable[..., Any])


def secret_arguments(function: F) -> F:
    """Wrap a function that takes a secret (the API key, a Redis URL with its password), so
    that no frame of an error it raises holds that argument.

    A traceback keeps the frames between ``raise`` and ``except`` with their locals, and
    ``capture_locals``, ``pytest -l``, rich and crash reporters show them: the error leaves
    with a traceback starting at this wrapper (its own code's frames dropped, and those of
    the error's cause), and the wrapper's arguments deleted before it raises. The error's
    message says what was wrong; the caller's frame, which holds what it passed, stays.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            del args, kwargs
            if exc.__suppress_context__:
                exc.__context__ = None
            linked: BaseException | None = exc
            seen: set[int] = set()
            while linked is not None and id(linked) not in seen:  # the chain's frames too
                seen.add(id(linked))
                linked.__traceback__ = None
                linked = linked.__cause__ or linked.__context__
            raise exc  # its traceback now starts here

    return cast("F", wrapper)


C = TypeVar("C", bound=type)


def secret_constructor(cls: C) -> C:
    """Class decorator: :func:`secret_arguments` around ``cls.__init__`` (an attrs class's
    generated one included: put it above ``@attrs.define``)."""
    cls.__init__ = secret_arguments(cls.__init__)  # type: ignore[misc]
    return cls


def redact_text(text: str, secret: str) -> str:
    """``text`` without ``secret`` (for a secret that is not kept in a :class:`Secret`)."""
    return Secret(secret).redact_text(text)


# --------------------------------------------------------------------------- URLs


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redact_url(url: str | None) -> str | None:
    """``url`` with its password replaced by ``***``: in the user info (``user:pw@host``)
    and in a ``password=`` query parameter (redis-py reads both)."""
    if url is None:
        return None
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"{user}@{host}"
    query = "&".join(
        f"{name}=***" if unquote_plus(name).strip().lower() == "password" else pair
        for pair in parts.query.split("&")
        for name in [pair.partition("=")[0]]
    )
    if netloc == parts.netloc and query == parts.query:
        return url
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    return (
        rebuilt + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    )


def has_password(url: str) -> bool:
    """True when ``url`` carries a password (in the user info or a ``password=`` query)."""
    return redact_url(url) != url


def redacted_url_repr(url: str | None) -> str:
    """The repr of ``url`` without its password (for an attrs field's ``repr``)."""
    return repr(redact_url(url))


def check_redis_url(name: str, value: object) -> None:
    """Accept None or a Redis URL (``redis://`` on loopback only, ``rediss://``, ``unix://``);
    else raise TypeError or ValueError naming ``name``, never showing the password."""
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")
    parts = urlsplit(value)
    try:
        host = parts.hostname or ""
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        host = ""
        scheme_ok = False
    else:
        scheme_ok = parts.scheme in ("redis", "rediss", "unix")
    if not scheme_ok or (parts.scheme != "unix" and not host):
        raise ValueError(
            f"{name} must look like redis://host:port/db, rediss://host:port/db "
            f"(TLS) or unix:///path/to/socket, got {redact_url(value)!r}"
        )
    if parts.scheme == "redis" and not is_loopback_host(host):
        raise ValueError(
            f"{name} must use rediss:// (TLS) for a server that is not on this "
            f"machine: plain redis:// is only allowed for loopback hosts, got {redact_url(value)!r}"
        )
    problem = _query_problem(parts.scheme, parts.query)
    if problem is not None:
        raise ValueError(f"{name}: {problem} (in {redact_url(value)!r})")


SET_BY_THE_SDK: Final = frozenset(
    {"max_connections", "timeout", "socket_timeout", "socket_connect_timeout", "retry_on_error"}
)
"""Connection options a Redis budget sets itself (from ``RateLimit.redis_timeout``): a URL's
query would override them, and an outage would then take longer to notice."""


def _query_problem(scheme: str, query: str) -> str | None:
    """What is wrong with a Redis URL's query parameters, as redis-py would read them (None:
    nothing). Every parameter must be one redis-py reads, with a value it can parse; without
    redis-py installed only the options the SDK sets are checked (a budget on Redis needs it
    anyway, and says so at its first use)."""
    names = parse_qs(query, keep_blank_values=True)
    for key in names:
        if key in SET_BY_THE_SDK:
            return (
                f"the query parameter {key!r} is set by the SDK (RateLimit.redis_timeout is "
                "the budget's timeout): leave it out"
            )
    try:
        from redis.asyncio import connection
    except ImportError:  # pragma: no cover - the redis extra is not installed
        return None
    parsers = connection.URL_QUERY_ARGUMENT_PARSERS
    kind = {"unix": connection.UnixDomainSocketConnection, "rediss": connection.SSLConnection}
    accepted = _init_parameters(kind.get(scheme, connection.Connection))
    for key, values in names.items():
        parser = parsers.get(key)
        if parser is not None:
            try:
                parser(values[0])
            except (TypeError, ValueError):
                shown = "" if key.lower() == "password" else f" {values[0]!r}"
                return f"redis-py cannot read the query parameter {key}={shown.strip()!s}"
        elif key not in accepted:
            return f"redis-py does not know the query parameter {key!r}"
    return None


def _init_parameters(cls: type) -> frozenset[str]:
    """The keyword arguments ``cls`` (a redis-py connection class) takes, its bases' too."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return frozenset(names - {"self", "args", "kwargs"})
