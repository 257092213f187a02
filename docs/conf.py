"""Sphinx configuration: furo, MyST Markdown pages, autodoc of the public surface, sphinx-click.

Built by ``nox -s docs`` with warnings as errors (``-W``) and nitpicky cross-references
(``-n``): every reference to this package's own objects must resolve. The machines that build
the docs reach no external inventory, so references into the standard library and
third-party packages (``datetime.datetime``, ``aiohttp.ClientSession``) are not linked; the
patterns below name exactly those namespaces, nothing of ``invent_async``.
"""

from __future__ import annotations

import re
import typing
from importlib.metadata import version as _version

project = "invent_async"
author = "invent_async developers"
copyright = "2026, invent_async developers"
release = _version("invent-async")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_click",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "conftest.py"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"invent_async {release}"

autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

nitpicky = True
_EXTERNAL = (
    r"(builtins|re|json|datetime|collections|typing|typing_extensions|types|enum|os|pathlib|asyncio"
    r"|concurrent|threading|logging|contextlib|aiohttp|multidict|yarl|attrs|attr|cattrs"
    r"|click|redis|opentelemetry|pytest|_pytest)(\..+)?"
)
_BUILTIN = (
    r"(str|int|float|bool|bytes|object|None|type|dict|list|tuple|set|frozenset|Any|Self"
    r"|Callable|Iterable|AsyncIterable|Iterator|AsyncIterator|Mapping|Sequence|Awaitable"
    r"|Coroutine|Generator|AsyncGenerator|Unpack|Literal|TypeVar|Final|ClassVar|Generic"
    r"|BaseException|Exception|ValueError|TypeError|KeyError|RuntimeError|OSError"
    r"|TimeoutError|KeyboardInterrupt|PathLike|datetime|timedelta|T|T_co|R|S|E|P|F"
    r"|ClientSession|CIMultiDictProxy|ContextManager|AbstractAsyncContextManager)"
)
_TYPE_VARIABLES = r"(invent_async\.[\w.]+\.)?(T|T_co|T_contra|S|E|R|P|F)"
_PRIVATE_IN_SIGNATURES = (
    r"(invent_async\.[\w.]+\.)?(Bridge|Pipeline|SyncClient|Configured|PageInfo|SyncIterator"
    r"|AsyncPageIterator|Headers|Runtime|ProgressCallback|PageFetcher|Operation|LoopThread"
    r"|IdSource|Handler|AiohttpTransport|read_limit)"
)
"""Private names that public signatures and base classes mention (shown, never linked)."""
nitpick_ignore_regex = [
    (r"py:.*", _EXTERNAL),
    (r"py:.*", _BUILTIN),
    (r"py:.*", _TYPE_VARIABLES),
    (r"py:.*", _PRIVATE_IN_SIGNATURES),
]

# Type hints and docstrings name public objects where they are defined
# (``invent_async._models.Contact``, or a bare ``BulkReport`` inside a generated class): such a
# reference resolves to the public name, ``invent_async.Contact``, when ``invent_async`` (or
# ``invent_async.testing``) exports it. Nothing else is redirected.
import invent_async  # noqa: E402
import invent_async.testing  # noqa: E402

_PUBLIC = {name: f"invent_async.{name}" for name in invent_async.__all__}
_PUBLIC |= {name: f"invent_async.testing.{name}" for name in invent_async.testing.__all__}


def _public_reference(app, env, node, contnode):  # type: ignore[no-untyped-def]
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    head = target.removeprefix("~").split(".")
    for i in range(len(head)):  # the longest tail of the dotted name that is public
        if head[i] in _PUBLIC:
            new = ".".join([_PUBLIC[head[i]], *head[i + 1 :]])
            break
    else:
        new = target
    domain = env.get_domain("py")
    candidates = [new] if new != target else []
    if "." not in target:  # a bare method name, from a docstring inherited or generated
        candidates += [
            f"invent_async.{cls}.{target}" for cls in ("InventClient", "AsyncInventClient")
        ]
    for candidate in candidates:
        found = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], candidate, node, contnode
        )
        if found is not None:
            return found
    return None


_TYPE_VARIABLE_PATH = re.compile(r"invent_async(\.\w+)*\.(T|T_co|T_contra|S|E|R|P|F)\b")


def _short_type_variables(app, what, name, obj, options, lines):  # type: ignore[no-untyped-def]
    """``tuple[T, ...]``, not ``tuple[invent_async._pagination.T, ...]``: napoleon writes an
    attribute's type with the module of its type variable (the module that defines it)."""
    lines[:] = [_TYPE_VARIABLE_PATH.sub(r"\2", line) for line in lines]


from docutils import nodes  # noqa: E402
from docutils.statemachine import StringList  # noqa: E402
from sphinx.util.docutils import SphinxDirective  # noqa: E402
from sphinx.util.nodes import nested_parse_with_titles  # noqa: E402

from invent_async import _models  # noqa: E402


class _Models(SphinxDirective):
    """``.. invent-models::``: an ``autoclass`` (with ``:undoc-members:``) of each name of
    ``invent_async._models.__all__``, in its order: a new model needs no edit of the page."""

    def run(self):  # type: ignore[no-untyped-def]
        lines = StringList()
        for name in _models.__all__:
            lines.append(f".. autoclass:: invent_async.{name}", "<invent-models>")
            lines.append("   :undoc-members:", "<invent-models>")
        holder = nodes.Element()
        nested_parse_with_titles(self.state, lines, holder)
        return holder.children


_OBTAINED = frozenset(
    f"invent_async.{name}"
    for name in (
        "AsyncContacts",
        "AsyncSegments",
        "AsyncBroadcasts",
        "Contacts",
        "Segments",
        "Broadcasts",
        "AsyncPager",
        "Pager",
        "BulkStream",
        "SyncBulkStream",
    )
)
"""Classes a user gets from a client (``client.contacts``, a list method, ``stream_*``) and
never constructs: their constructors take the client's internals, so no signature is shown."""


def _no_constructor(app, what, name, obj, options, signature, annotation):  # type: ignore[no-untyped-def]
    if what == "class" and name in _OBTAINED:
        return "", None
    return None


def _private(base: object) -> bool:
    """A base class of this package that is not public (``_settings.Configured``)."""
    origin = typing.get_origin(base) or base
    module = getattr(origin, "__module__", "")
    return module.startswith("invent_async") and any(
        part.startswith("_") for part in module.split(".")
    )


def _public_bases(app, name, obj, options, bases):  # type: ignore[no-untyped-def]
    """The bases shown: the private ones left out (their members are documented with the
    class itself, ``:inherited-members:``, or are internals); ``object`` if none is left."""
    bases[:] = [base for base in bases if not _private(base)] or [object]


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("missing-reference", _public_reference)
    app.connect("autodoc-process-docstring", _short_type_variables)
    app.connect("autodoc-process-signature", _no_constructor)
    app.connect("autodoc-process-bases", _public_bases)
    app.add_directive("invent-models", _Models)


# ``type[T]`` in a signature is searched fuzzily and also finds the models' ``type`` fields
# (``Channel.type``, ``ContactField.type``); Sphinx then warns of two targets and links
# neither. Only that ambiguity warning is silenced; a missing target still fails the build.
suppress_warnings = ["ref.python"]
