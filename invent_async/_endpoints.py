"""Each operation of the API declared once, as an :class:`Endpoint`; the rest derived from it.

An endpoint is one value per operation: its HTTP method, its path template as documented
(``/orgs/{org_id}/contacts/{contact_id}``), the SDK operation it is (``"contacts.get"``: the
name of its span, a label of its metrics and log records), whether repeating it is safe
(``idempotent``) and whether the published docs showed it (``inferred``). From it come:

- the :class:`~invent_async._protocol.Request` of a call, ``ENDPOINT.request(prefix, *ids)``:
  the template is checked where the endpoint is declared, and compiled on its first use
  (importing the package compiles none), once, into a function that joins its literal
  pieces, written as they are, with each id encoded by
  :func:`~invent_async._protocol.path_segment` (so no id can change the path), under the
  view's already-encoded ``/orgs/{org}`` prefix;
- the documentation line: ``@ENDPOINT.documents`` puts ````METHOD /orgs/{org_id}/...```` into
  the method's docstring, after its summary paragraph (``invent_async._codegen`` writes the sync
  twin's docstring the same way, with :func:`insert_line`), and records the endpoint on the
  method (:func:`endpoint_of`), where the README table and the tests' inventories find it.

Sans-I/O: nothing here sends anything. The endpoints themselves are declared in the resource
modules, next to the methods that call them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from ._protocol import Request, json_body, path_segment

__all__ = ["Endpoint", "RequestBuilder", "endpoint_of", "insert_line"]

F = TypeVar("F", bound=Callable[..., Any])

ORG_PREFIX: Final = "/orgs/{org_id}"
"""Where every template starts: the part a view's pipeline encodes once (its ``prefix``)."""
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PARAMETER: Final = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_LITERAL: Final = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*")
"""A literal path segment: characters a path carries as they are (so the compiled source may
hold it verbatim), and never ``.`` or ``..``."""
_RESERVED: Final = frozenset({"prefix", "query", "body"})
_OPERATION: Final = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")


class RequestBuilder(Protocol):
    """``ENDPOINT.request``: the :class:`Request` of one call (ids in template order)."""

    def __call__(
        self,
        prefix: str,
        /,
        *ids: str,
        query: tuple[tuple[str, str], ...] = ...,
        body: object | None = ...,
    ) -> Request: ...


def _parameters(template: str) -> tuple[list[str], list[str]]:
    """The template after :data:`ORG_PREFIX` as (literal pieces, parameter names), the pieces
    one longer than the names: ``/contacts/{contact_id}/notes`` gives
    ``(["/contacts/", "/notes"], ["contact_id"])``. ValueError for anything else."""
    if not template.startswith(ORG_PREFIX + "/") and template != ORG_PREFIX:
        raise ValueError(f"an endpoint's template starts with {ORG_PREFIX}, got {template!r}")
    pieces, names, literal = [], [], ""
    for segment in template[len(ORG_PREFIX) + 1 :].split("/") if template != ORG_PREFIX else []:
        found = _PARAMETER.fullmatch(segment)
        if found is not None:
            name = found[1]
            if name in names or name in _RESERVED or name == "org_id":
                raise ValueError(f"{template!r}: parameter {name!r} is reserved or repeated")
            pieces.append(literal + "/")
            names.append(name)
            literal = ""
        elif _LITERAL.fullmatch(segment):
            literal += f"/{segment}"
        else:
            raise ValueError(f"{template!r}: {segment!r} is neither a literal nor a {{parameter}}")
    pieces.append(literal)
    return pieces, names


def _compile(
    template: str, method: str, operation: str, idempotent: bool
) -> tuple[tuple[str, ...], Callable[..., str], RequestBuilder]:
    """The parameter names, the path function and the request function of a template.

    Both functions are generated once per endpoint (as the converter generates its structure
    functions): the path is one f-string of the prefix, the literal pieces and one
    ``path_segment`` call per id, and the request is built without ``Request.__init__``'s call
    (its slots set directly, as attrs' own ``__init__`` would).
    """
    pieces, names = _parameters(template)
    path = "".join(
        f"{piece}{{_segment({name}, {name!r})}}" for piece, name in zip(pieces, names, strict=False)
    )
    path = f'f"{{prefix}}{path}{pieces[-1]}"'
    params = ", ".join(["prefix", *names])
    source = f"""\
def path({params}):
    return {path}

def request({params}, *, query=(), body=None):
    path = {path}  # first: a bad id raises before the body is encoded or a request made
    r = _new(Request)
    r.method = {method!r}
    r.path = path
    r.query = query
    r.body = None if body is None else body if body.__class__ is bytes else _json_body(body)
    r.idempotent = {idempotent!r}
    r.operation = {operation!r}
    r.template = {template!r}
    return r
"""
    namespace: dict[str, Any] = {
        "_segment": path_segment,
        "_json_body": json_body,
        "_new": object.__new__,
        "Request": Request,
    }
    exec(source, namespace)  # noqa: S102 - source built above from a checked template
    return tuple(names), namespace["path"], namespace["request"]


class Endpoint:
    """One operation of the API, declared once.

    Args:
        method: The HTTP method (``"GET"``, ``"POST"``, ...).
        template: The path as documented, starting with ``/orgs/{org_id}``; a ``{name}``
            segment is a parameter, anything else a literal.
        operation: The SDK operation, ``"<group>.<method name>"`` (``"contacts.get"``).
        idempotent: Whether repeating the request can do no harm (reading, changing to a given
            state, adding a segment). False for creating calls, which are retried only when
            the request certainly did not reach the server.
        inferred: The published docs do not show the endpoint (the README marks it).

    Attributes:
        params: The template's parameter names after ``org_id``, in order.
        path: ``path(prefix, *ids)``: the encoded path under a view's ``prefix``.
        request: ``request(prefix, *ids, query=(), body=None)``: the :class:`Request`; ``body``
            is a request model, encoded as JSON (``json_body``) once the ids are checked, or
            a body already encoded (``bytes``: the import job encodes its chunks itself).
        line: The documentation line, ````METHOD /orgs/{org_id}/...````.
    """

    __slots__ = (
        "idempotent",
        "inferred",
        "line",
        "method",
        "operation",
        "params",
        "path",
        "request",
        "template",
    )

    method: str
    template: str
    operation: str
    idempotent: bool
    inferred: bool
    params: tuple[str, ...]
    path: Callable[..., str]
    request: RequestBuilder
    line: str

    def __init__(
        self,
        method: str,
        template: str,
        operation: str,
        *,
        idempotent: bool = True,
        inferred: bool = False,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"unknown HTTP method {method!r}")
        if not _OPERATION.fullmatch(operation):
            raise ValueError(f"an operation is named '<group>.<method>', got {operation!r}")
        self.method = method
        self.template = template
        self.operation = operation
        self.idempotent = bool(idempotent)
        self.inferred = bool(inferred)
        self.params = tuple(_parameters(template)[1])  # a bad template raises here
        self.line = f"``{method} {template}``"

    if not TYPE_CHECKING:  # for the type checker, ``path`` and ``request`` are plain slots

        def __getattr__(self, name: str) -> Any:
            """``path`` and ``request``, compiled on first use (then set: plain slots)."""
            if name not in ("path", "request"):
                raise AttributeError(f"'Endpoint' object has no attribute {name!r}")
            _, self.path, self.request = _compile(
                self.template, self.method, self.operation, self.idempotent
            )
            return getattr(self, name)

    def __repr__(self) -> str:
        return f"<Endpoint {self.operation}: {self.method} {self.template}>"

    def documents(self, function: F) -> F:
        """Decorate the method that calls this endpoint: its docstring gets :attr:`line`
        after the summary paragraph, and :func:`endpoint_of` finds the endpoint on it."""
        doc = function.__doc__
        if doc is not None:  # None under python -OO
            if self.line in doc:
                raise ValueError(f"{function.__qualname__}: the docstring spells {self.line}")
            function.__doc__ = insert_line(doc, self.line)
        function.__endpoint__ = self  # type: ignore[attr-defined]
        return function


def endpoint_of(function: object) -> Endpoint | None:
    """The endpoint a method documents (``@ENDPOINT.documents``), or None."""
    found = getattr(function, "__endpoint__", None)
    return found if isinstance(found, Endpoint) else None


def insert_line(doc: str, line: str, indent: str = " " * 8) -> str:
    """``doc`` (a docstring as written, without its quotes) with ``line`` as the paragraph
    after its summary. The line is indented as the docstring's other lines are (``indent``
    when there are none: a method's); a docstring that is all summary gets its closing
    quotes on a line of their own, as a formatter writes them."""
    lines = doc.split("\n")
    body = [text for text in lines[1:] if text.strip()]
    if body:
        indent = body[0][: len(body[0]) - len(body[0].lstrip())]
    for index in range(1, len(lines) - 1):
        if not lines[index].strip():  # the end of the summary paragraph
            return "\n".join([*lines[: index + 1], indent + line, "", *lines[index + 1 :]])
    if len(lines) > 1 and not lines[-1].strip():
        lines.pop()  # the closing quotes' own line, written again below
    return "\n".join([*lines, "", indent + line, indent])
