"""Reading the async sources: parsed modules, where each name comes from, annotations checked
and rendered, and the imports the generated module needs (laid out as ruff sorts them)."""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import attrs

__all__ = [
    "ASYNC_ITERATORS",
    "BRIDGE",
    "CLASS_RULES",
    "LINE_LENGTH",
    "OUTPUT_MODULE",
    "PAGER",
    "SETTINGS",
    "STD_ASYNC",
    "STD_MODULES",
    "SYNC_CLIENT",
    "CodegenError",
    "Context",
    "Expr",
    "Imports",
    "Source",
    "Target",
    "forget_sources",
    "is_async_object",
    "read_source",
    "wrap",
]

OUTPUT_MODULE: Final = "invent_async._sync._generated"
LINE_LENGTH: Final = 100

# Where the names the generated module uses come from.
BRIDGE: Final = "invent_async._sync._bridge"
PAGER: Final = "invent_async._sync._pager"
SYNC_CLIENT: Final = ("invent_async._sync._client", "SyncClient")
SETTINGS: Final = ("invent_async._settings", "Settings")
SECRET_ARGUMENTS: Final = ("invent_async._secret", "secret_arguments")

ASYNC_ITERATORS: Final = frozenset({"AsyncIterator", "AsyncIterable", "AsyncGenerator"})
ASYNC_CMS: Final = frozenset({"AbstractAsyncContextManager", "AsyncContextManager"})
AWAITABLES: Final = frozenset({"Awaitable", "Coroutine"})
STD_ASYNC: Final = ASYNC_ITERATORS | ASYNC_CMS | AWAITABLES
STD_MODULES: Final = frozenset({"collections.abc", "typing", "contextlib"})


CLASS_RULES: Final = {
    ("invent_async._jobs.engine", "BulkStream"): ("invent_async._sync._bridge", "SyncBulkStream"),
}
"""Async result classes with a hand-written sync twin: ``(module, name) -> (module, name)``.

The twin has ``open(bridge, factory)``, which creates the async object on the loop. A method
returning one of these (``def f(...) -> BulkStream``) becomes ``def f(...) -> SyncBulkStream``.
"""


class CodegenError(Exception):
    """The async surface has something the generator has no rule for (or cannot lay out)."""


@attrs.frozen
class Target:
    """One resource group to mirror: ``client.<attr>`` of type ``async_cls``.

    Attributes:
        attr: The client attribute (``"contacts"``).
        async_cls: The async resource class (``AsyncContacts``).
        sync_name: The generated class's name (``"Contacts"``).
    """

    attr: str
    async_cls: type
    sync_name: str


# ---------------------------------------------------------------------- reading sources


@attrs.define
class Source:
    """A parsed module: its text, tree, and where each of its names comes from."""

    module: str
    text: str
    tree: ast.Module
    origins: dict[str, tuple[str, str]]  # local name -> (module, name in that module)

    @classmethod
    def of(cls, module_name: str) -> Source:
        module = importlib.import_module(module_name)
        path = inspect.getsourcefile(module)
        if path is None:
            raise CodegenError(f"no source for module {module_name}")
        text = Path(path).read_text(encoding="utf-8")
        tree = ast.parse(text)
        package = module.__package__ or ""
        origins: dict[str, tuple[str, str]] = {}
        for node in _module_level(tree.body):
            if isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                for alias in node.names:
                    origins[alias.asname or alias.name] = (base, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    origins[alias.asname or alias.name] = ("", alias.name)  # a module
            elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                origins[node.name] = (module_name, node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        origins[target.id] = (module_name, target.id)
        return cls(module_name, text, tree, origins)

    def segment(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.text, node)
        if text is None:  # pragma: no cover - nodes from parsed source always have positions
            raise CodegenError(f"{self.module}: no source position for {ast.dump(node)}")
        return text

    def class_def(self, name: str) -> ast.ClassDef:
        for node in self.tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return node
        raise CodegenError(f"class {name} is not defined at the top level of {self.module}")


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Top-level statements, looking inside ``if`` blocks (``if TYPE_CHECKING:``)."""
    for node in body:
        if isinstance(node, ast.If):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        else:
            yield node


_SOURCES: dict[str, Source] = {}


def forget_sources() -> None:
    """Drop the parsed sources (each run of the generator reads them afresh)."""
    _SOURCES.clear()


def read_source(module_name: str) -> Source:
    if module_name not in _SOURCES:
        _SOURCES[module_name] = Source.of(module_name)
    return _SOURCES[module_name]


# ---------------------------------------------------------------------- names and imports


@attrs.define
class Imports:
    """The names (and modules) the generated module imports."""

    names: dict[str, tuple[str, str]] = attrs.Factory(dict)  # local name -> (module, name)
    modules: set[str] = attrs.Factory(set)  # ``import x``

    def add(self, local: str, module: str, name: str) -> None:
        known = self.names.get(local)
        if known is not None and known != (module, name):
            raise CodegenError(
                f"name clash in the generated module: {local!r} is both {known[0]}.{known[1]} "
                f"and {module}.{name}"
            )
        self.names[local] = (module, name)

    def add_module(self, module: str) -> None:
        if module.split(".")[0] == "invent_async" or "." in module:
            raise CodegenError(f"'import {module}' in a signature: use 'from ... import'")
        self.modules.add(module)

    def render(self) -> list[str]:
        """isort/ruff layout: future, stdlib, third party, local; ``import x`` before ``from``."""
        plain: dict[int, list[str]] = {}
        froms: dict[int, dict[str, list[tuple[str, str]]]] = {}
        for module in self.modules:
            plain.setdefault(_classify(module)[0], []).append(module)
        for local, (module, name) in self.names.items():
            section, spelled = _classify(module)
            froms.setdefault(section, {}).setdefault(spelled, []).append((name, local))
        lines = ["from __future__ import annotations"]
        for section in sorted(plain.keys() | froms.keys()):
            lines.append("")
            lines.extend(f"import {m}" for m in sorted(plain.get(section, []), key=str.lower))
            by_module = froms.get(section, {})
            for spelled in sorted(by_module, key=_module_key):
                members = sorted(by_module[spelled], key=lambda m: _member_key(m[1]))
                words = [name if name == local else f"{name} as {local}" for name, local in members]
                lines.extend(wrap(f"from {spelled} import ", words, "", indent=""))
        return lines


def _classify(module: str) -> tuple[int, str]:
    """(isort section, how to spell the module) for an absolute module name."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        return 1, module
    if top != "invent_async":
        return 2, module
    here = OUTPUT_MODULE.split(".")[:-1]
    parts = module.split(".")
    common = 0
    while common < min(len(here), len(parts)) and here[common] == parts[common]:
        common += 1
    dots = "." * (len(here) - common + 1)
    return 3, dots + ".".join(parts[common:])


def _module_key(spelled: str) -> tuple[int, str]:
    rest = spelled.lstrip(".")
    return -(len(spelled) - len(rest)), rest.lower()  # relative: furthest first (isort)


def _member_key(name: str) -> tuple[int, str, str]:
    if len(name) > 1 and name.isupper():
        kind = 0  # CONSTANT
    elif name[:1].isupper():
        kind = 1  # Class
    else:
        kind = 2  # variable
    return kind, name.lower(), name


@attrs.define
class Context:
    """What rendering one module collects: the imports it needs."""

    imports: Imports = attrs.Factory(Imports)


@attrs.define
class Expr:
    """A rendered piece of source (annotation or default) from one source module."""

    source: Source
    node: ast.expr
    where: str

    def names(self) -> list[ast.Name]:
        found = [n for n in ast.walk(self.node) if isinstance(n, ast.Name)]
        return sorted(found, key=lambda n: (n.lineno, n.col_offset))

    def origin(self, name: str) -> tuple[str, str] | None:
        """(module, name) where ``name`` comes from; None for builtins."""
        origin = self.source.origins.get(name)
        if origin is not None:
            return origin
        if hasattr(builtins, name):
            return None
        raise CodegenError(f"{self.where}: cannot tell where {name!r} comes from")

    def render(self, ctx: Context, *, inputs: bool = False) -> str:
        """The source text, checked, with the imports it needs recorded in ``ctx``.

        ``inputs``: the expression annotates a parameter, where the standard async types
        (``AsyncIterable``, ``Awaitable``, ...) may stay: the value is made by the caller and
        consumed on the loop. Elsewhere (results) they have no sync meaning.
        """
        text = self.source.segment(self.node)
        if "\n" in text:
            raise CodegenError(f"{self.where}: multi-line expression {text!r} is not supported")
        for node in self.names():
            self._check_name(node.id, ctx, inputs=inputs)
        return text

    def _check_name(self, name: str, ctx: Context, *, inputs: bool) -> None:
        origin = self.origin(name)
        if origin is None:
            return
        module, real = origin
        if module == "":  # ``import os`` for ``os.PathLike``
            ctx.imports.add_module(real)
            return
        if real in STD_ASYNC and module in STD_MODULES:
            if not inputs:
                raise CodegenError(
                    f"{self.where}: no rule maps {real} in this position (a blocking caller "
                    "cannot use an async object)"
                )
        elif (module, real) in CLASS_RULES or is_async_object(module, real):
            raise CodegenError(
                f"{self.where}: no rule maps {module}.{real} in this position (it is an async "
                "object; the generator maps it only as a method's whole result)"
            )
        ctx.imports.add(name, module, real)


def is_async_object(module: str, name: str) -> bool:
    """Whether ``module.name`` is a class whose instances need an event loop to be used."""
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    if not isinstance(obj, type):
        return False
    protocol = ("__aiter__", "__anext__", "__aenter__", "__await__")
    if any(hasattr(obj, attr) for attr in protocol):
        return True
    return any(
        inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value)
        for key, value in vars(obj).items()
        if not key.startswith("_")
    )


def wrap(head: str, items: Sequence[str], tail: str, indent: str) -> list[str]:
    """``head + items + tail`` on one line if it fits, else one item per line (+ comma)."""
    if indent == "" and tail == "":  # an import
        line = head + ", ".join(items)
        if len(line) <= LINE_LENGTH:
            return [line]
        return [head + "(", *(f"    {x}," for x in items), ")"]
    line = head + ", ".join(items) + tail
    if len(line) <= LINE_LENGTH:
        return [line]
    return [head, *(f"{indent}    {x}," for x in items), indent + tail]
