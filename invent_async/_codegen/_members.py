"""Mirroring the async surface: a method, a resource class and the client, as sync source lines.

Each function here applies one of the rules of :mod:`invent_async._codegen` (named in its
docstring) and fails with :class:`CodegenError` on anything it has no rule for.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
from collections.abc import Sequence
from typing import Final

import attrs

from .._endpoints import Endpoint, insert_line
from .._public import defined_in
from ._source import (
    ASYNC_ITERATORS,
    CLASS_RULES,
    LINE_LENGTH,
    PAGER,
    SECRET_ARGUMENTS,
    SETTINGS,
    STD_MODULES,
    SYNC_CLIENT,
    CodegenError,
    Context,
    Expr,
    Source,
    Target,
    read_source,
    wrap,
)

__all__ = ["class_lines", "client_lines"]

OVERLOAD = ("typing", "overload")

# ---------------------------------------------------------------------- methods


@attrs.define
class _Param:
    text: str  # "name: ann = default", "*", "/", "*args: ann"
    call: str | None  # how to pass it on: "name", "name=name", "*args", "**kw"; None: marker


@attrs.define
class _Method:
    name: str
    params: list[_Param]
    returns: str
    body_kind: str  # call | call_none | pager | open <Twin>
    docstring: str


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = []
    for dec in node.decorator_list:
        if isinstance(dec, ast.Name):
            names.append(dec.id)
        elif isinstance(dec, ast.Attribute):
            names.append(dec.attr)
        else:
            names.append(ast.unparse(dec))
    return names


def _shape(expr: Expr) -> tuple[tuple[str, str] | None, list[ast.expr]]:
    """(where the annotation's outer name comes from, its subscript arguments).

    ``AsyncIterator[Contact]`` gives ``(("collections.abc", "AsyncIterator"), [Contact])``;
    builtins come from ``"builtins"``; anything but a (subscripted) name gives None.
    """
    node = expr.node
    args: list[ast.expr] = []
    if isinstance(node, ast.Subscript):
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        node = node.value
    if isinstance(node, ast.Name):
        return expr.origin(node.id) or ("builtins", node.id), args
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        raise CodegenError(f"{expr.where}: quoted annotations are not supported")
    return None, args


def _std(origin: tuple[str, str] | None, names: frozenset[str]) -> bool:
    """Whether ``origin`` is one of the standard library's ``names`` (typing & co.)."""
    return origin is not None and origin[0] in STD_MODULES and origin[1] in names


def _method(
    source: Source,
    cls_name: str,
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    ctx: Context,
    *,
    stub: bool = False,
) -> _Method:
    """The twin of one method; ``stub``: an ``@overload`` signature (no docstring, no body)."""
    where = f"{source.module}.{cls_name}.{node.name}"
    decorators = _decorator_names(node)
    if stub:
        if decorators != ["overload"] or source.origins.get("overload") != OVERLOAD:
            raise CodegenError(f"{where}: an overload needs exactly typing's @overload")
        ctx.imports.add("overload", *OVERLOAD)
    endpoint = None if stub else _documented_endpoint(source, node, where)
    if not stub and decorators and endpoint is None:
        raise CodegenError(f"{where}: no rule for decorators {decorators}")
    docstring = "" if stub else _docstring(source, node, where, indent=8, endpoint=endpoint)
    if node.returns is None:
        raise CodegenError(f"{where}: the return type is not annotated")
    ret = Expr(source, node.returns, f"{where} (return type)")
    origin, args = _shape(ret)
    ret_text = source.segment(node.returns)
    kind: str
    if isinstance(node, ast.AsyncFunctionDef):
        returns = ret.render(ctx)  # fails on any async type inside (async generators too)
        kind = "call_none" if returns == "None" else "call"
    elif origin in CLASS_RULES and not args:
        twin_module, twin = CLASS_RULES[origin]
        ctx.imports.add(twin, twin_module, twin)
        kind, returns = f"open {twin}", twin
    elif _same_object(origin, ("invent_async._pagination", "AsyncPager")) and len(args) == 1:
        ctx.imports.add("Pager", PAGER, "Pager")
        item = Expr(source, args[0], f"{where} (return type)").render(ctx)
        kind, returns = "pager", f"Pager[{item}]"
    else:
        ret.render(ctx)  # an async type here: say which
        raise CodegenError(
            f"{where}: no rule for a plain 'def' returning {ret_text!r} "
            "(the sync twin cannot tell whether it needs the event loop)"
        )
    return _Method(node.name, _params(source, node, where, ctx), returns, kind, docstring)


def _documented_endpoint(
    source: Source, node: ast.FunctionDef | ast.AsyncFunctionDef, where: str
) -> Endpoint | None:
    """The endpoint of a method decorated with exactly ``@ENDPOINT.documents`` (an
    :class:`~invent_async._endpoints.Endpoint` of its module), else None."""
    if len(node.decorator_list) != 1:
        return None
    decorator = node.decorator_list[0]
    if not (
        isinstance(decorator, ast.Attribute)
        and decorator.attr == "documents"
        and isinstance(decorator.value, ast.Name)
    ):
        return None
    origin = source.origins.get(decorator.value.id)
    if origin is None or origin[0] == "":
        return None
    found = getattr(importlib.import_module(origin[0]), origin[1], None)
    if not isinstance(found, Endpoint):
        raise CodegenError(f"{where}: @{decorator.value.id}.documents is not an endpoint's")
    return found


def _same_object(origin: tuple[str, str] | None, known: tuple[str, str]) -> bool:
    """Whether the name imported from ``origin`` is the object ``known`` names."""
    if origin is None:
        return False
    try:
        found = getattr(importlib.import_module(origin[0]), origin[1])
        return found is getattr(importlib.import_module(known[0]), known[1])
    except (ImportError, AttributeError):
        return False


def _params(
    source: Source,
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    where: str,
    ctx: Context,
    *,
    keep: Sequence[str] | None = None,
) -> list[_Param]:
    """The parameters of ``node`` as the twin declares and passes them (``keep``: only those)."""
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    if not positional or positional[0].arg != "self":
        raise CodegenError(f"{where}: not an instance method (no 'self')")
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults))
    defaults += a.defaults

    def one(arg: ast.arg, default: ast.expr | None, kind: str) -> _Param:
        """``kind``: how the argument is passed on: ``""`` (positionally), ``"="`` (by
        keyword), ``"*"`` or ``"**"``."""
        if arg.annotation is None:
            raise CodegenError(f"{where}: parameter {arg.arg!r} is not annotated")
        name = arg.arg
        ann = Expr(source, arg.annotation, f"{where} (parameter {name!r})")
        star = kind if kind in ("*", "**") else ""
        text = f"{star}{name}: {ann.render(ctx, inputs=True)}"
        if default is not None:
            value = Expr(source, default, f"{where} (default of {name!r})")
            text += f" = {value.render(ctx)}"
        passed = name
        if not star and any(_std(ann.origin(n.id), ASYNC_ITERATORS) for n in ann.names()):
            # it accepts an async iterable: hand a sync Pager over as its async pager
            passed = f"{use_for_loop()}({name})"
        return _Param(text, f"{name}={passed}" if kind == "=" else f"{star}{passed}")

    def use_for_loop() -> str:
        ctx.imports.add("for_loop", PAGER, "for_loop")
        return "for_loop"

    def kept(arg: ast.arg | None) -> bool:
        return arg is not None and (keep is None or arg.arg in keep)

    params: list[_Param] = []
    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        if index == 0:
            params.append(_Param("self", None))
        elif kept(arg):
            params.append(one(arg, default, ""))
        if a.posonlyargs and arg is a.posonlyargs[-1]:
            params.append(_Param("/", None))
    if kept(a.vararg):
        assert a.vararg is not None
        params.append(one(a.vararg, None, "*"))
    elif any(kept(arg) for arg in a.kwonlyargs):
        params.append(_Param("*", None))
    for arg, kw_default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        if kept(arg):
            params.append(one(arg, kw_default, "="))
    if kept(a.kwarg):
        assert a.kwarg is not None
        params.append(one(a.kwarg, None, "**"))
    return params


def _docstring(
    source: Source,
    node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef,
    where: str,
    *,
    indent: int,
    endpoint: Endpoint | None = None,
) -> str:
    """The docstring's source text, reworded for the sync twin; with ``endpoint``, its
    documentation line inserted where ``@ENDPOINT.documents`` puts it at run time."""
    first = node.body[0] if node.body else None
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        raise CodegenError(f"{where}: public API without a docstring")
    if first.col_offset != indent:
        raise CodegenError(
            f"{where}: the docstring is indented by {first.col_offset}, expected {indent} "
            "(it is copied verbatim)"
        )
    text = source.segment(first.value)
    if endpoint is not None:
        if not (text.startswith('"""') and text.endswith('"""') and len(text) >= 6):
            raise CodegenError(f'{where}: the docstring of an endpoint is written in """')
        text = f'"""{insert_line(text[3:-3], endpoint.line, " " * indent)}"""'
    return sync_docstring(text)


SYNC_WORDING: Final = (
    (re.compile(r"\bawait\s+"), ""),
    (re.compile(r"\basync (with|for)\b"), r"\1"),
    (re.compile(r"\basync-iterable\b"), "iterable"),
    (re.compile(r"\bAsyncPager\b"), "Pager"),
)
"""What an async docstring says that is wrong for the sync twin, and what the twin says."""
ASYNC_WORDING: Final = re.compile(r"\bawait\b|\basync (with|for)\b|\basync-iterable\b|AsyncPager")
"""Words no generated docstring may contain (``tests/test_codegen.py`` checks)."""


def sync_docstring(text: str) -> str:
    """An async docstring reworded for the sync twin: no ``await``, ``async with``/``for``,
    "async-iterable" or ``AsyncPager`` (a call blocks, a pager is a plain iterable)."""
    for pattern, replacement in SYNC_WORDING:
        text = pattern.sub(replacement, text)
    return text


# ---------------------------------------------------------------------- classes


def _public_members(cls: type) -> list[tuple[type, str]]:
    """(defining class, name) of each public name of ``cls``, in source order."""
    found: list[tuple[type, str]] = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or owner is object:
            raise CodegenError(f"{cls.__qualname__}.{name}: no rule for an inherited built-in")
        found.append((owner, name))

    def order(item: tuple[type, str]) -> tuple[int, int]:
        owner, name = item
        body = read_source(defined_in(owner)).class_def(owner.__name__).body
        lines = [n.lineno for n in body if getattr(n, "name", None) == name]
        return cls.__mro__.index(owner), (lines[0] if lines else 0)

    return sorted(found, key=order)


def class_lines(target: Target, ctx: Context) -> list[str]:
    cls = target.async_cls
    source = read_source(defined_in(cls))
    cdef = source.class_def(cls.__name__)
    where = f"{defined_in(cls)}.{cls.__name__}"
    _check_instance_attributes(cdef, where)
    ctx.imports.add(cls.__name__, defined_in(cls), cls.__name__)
    lines = [
        f"class {target.sync_name}:",
        f"    {_docstring(source, cdef, where, indent=4)}",
        "",
        '    __slots__ = ("_bridge",)',
        "",
        "    def __init__(self, bridge: Bridge) -> None:",
        "        self._bridge = bridge",
        "",
        f"    def _async(self) -> {cls.__name__}:",
        f"        return self._bridge.async_client().{target.attr}",
    ]
    for owner, name in _public_members(cls):
        owner_source = read_source(defined_in(owner))
        owner_def = owner_source.class_def(owner.__name__)
        nodes = [n for n in owner_def.body if getattr(n, "name", None) == name]
        member_where = f"{defined_in(owner)}.{owner.__name__}.{name}"
        if not nodes or not all(
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in nodes
        ):
            kind = type(vars(owner)[name]).__name__
            raise CodegenError(f"{member_where}: no rule for a public {kind} (only methods)")
        functions = [n for n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        *overloads, implementation = functions
        if "overload" in _decorator_names(implementation):
            raise CodegenError(f"{member_where}: @overload signatures without an implementation")
        if len(overloads) == 1:
            raise CodegenError(f"{member_where}: one @overload alone (typing wants two or more)")
        for node in overloads:  # the @overload signatures, then the implementation
            stub = _method(owner_source, owner.__name__, node, ctx, stub=True)
            lines += ["", *_stub_lines(stub)]
        lines.append("")
        lines.extend(_method_lines(_method(owner_source, owner.__name__, implementation, ctx)))
    return lines


def _check_instance_attributes(cdef: ast.ClassDef, where: str) -> None:
    for node in ast.walk(cdef):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and not node.attr.startswith("_")
        ):
            raise CodegenError(f"{where}: no rule for the public attribute {node.attr!r}")


def _stub_lines(m: _Method) -> list[str]:
    """An ``@overload`` signature with an ellipsis body, laid out as ruff formats it."""
    return [
        "    @overload",
        *wrap(f"    def {m.name}(", [p.text for p in m.params], f") -> {m.returns}: ...", "    "),
    ]


def _method_lines(m: _Method) -> list[str]:
    lines = wrap(f"    def {m.name}(", [p.text for p in m.params], f") -> {m.returns}:", "    ")
    lines.append(f"        {m.docstring}")
    args = [p.call for p in m.params if p.call is not None]
    target = f"self._async().{m.name}("
    if m.body_kind == "pager":
        head, lead = "return Pager(", ["self._bridge"]
    elif m.body_kind.startswith("open "):
        head, lead = f"return {m.body_kind.split()[1]}.open(", ["self._bridge"]
    elif m.body_kind == "call_none":
        head, lead = "self._bridge.call(", []
    else:
        head, lead = "return self._bridge.call(", []
    one_line = f"        {head}{''.join(x + ', ' for x in lead)}lambda: {target}{', '.join(args)}))"
    if len(one_line) <= LINE_LENGTH:
        lines.append(one_line)
    else:
        lines.append(f"        {head}")
        lines.extend(f"            {x}," for x in lead)
        if args:
            lines.append(f"            lambda: {target}")
            lines.extend(f"                {x}," for x in args)
            lines.append("            ),")
        else:
            lines.append(f"            lambda: {target}),")
        lines.append("        )")
    return lines


def client_lines(client_cls: type, targets: Sequence[Target], ctx: Context) -> list[str]:
    """``class InventClient(SyncClient)``: its constructor, docstring and resource groups."""
    source = read_source(defined_in(client_cls))
    cdef = source.class_def(client_cls.__name__)
    where = f"{defined_in(client_cls)}.{client_cls.__name__}"
    init = next(
        (n for n in cdef.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
    )
    if init is None:
        raise CodegenError(f"{where}: no __init__ to mirror")
    settings_module, settings_name = SETTINGS
    build = getattr(importlib.import_module(settings_module), settings_name).build
    shared = list(inspect.signature(build).parameters)
    given = [a.arg for a in (*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs)]
    missing = [name for name in shared if name not in given]
    if missing:
        raise CodegenError(f"{where}.__init__ does not take {settings_name}.build's {missing}")
    params = _params(source, init, f"{where}.__init__", ctx, keep=shared)
    base_module, base = SYNC_CLIENT
    ctx.imports.add(base, base_module, base)
    ctx.imports.add(settings_name, settings_module, settings_name)
    base_source = read_source(base_module)
    intro = _docstring(base_source, base_source.class_def(base), f"{base_module}.{base}", indent=4)
    described = _described_args(source, cdef, where)
    undocumented = [name for name in shared if name not in described]
    if undocumented:
        raise CodegenError(f"{where}: the Args of its docstring do not describe {undocumented}")
    lines = [f"class InventClient({base}):", "    " + intro[:-3].rstrip(), "", "    Args:"]
    for name in shared:
        lines += described[name]
    lines += ['    """', ""]
    lines += [f"    {t.attr}: {t.sync_name}" for t in targets]
    secrets_module, secrets = SECRET_ARGUMENTS
    ctx.imports.add(secrets, secrets_module, secrets)
    lines += ["", f"    @{secrets}  # an error leaves with no frame holding the key"]
    lines += wrap("    def __init__(", [p.text for p in params], ") -> None:", "    ")
    calls = [f"{name}={name}" for name in shared]
    lines += wrap(f"        settings = {settings_name}.build(", calls, ")", "        ")
    lines += ["        super().__init__(settings)", ""]
    lines += ["    def _attach(self, bridge: Bridge) -> None:"]
    lines += [f"        self.{t.attr} = {t.sync_name}(bridge)" for t in targets]
    return lines


def _described_args(source: Source, cdef: ast.ClassDef, where: str) -> dict[str, list[str]]:
    """The entries of a class docstring's ``Args:`` section, by name, as source lines."""
    entries: dict[str, list[str]] = {}
    current: list[str] = []
    inside = False
    for line in _docstring(source, cdef, where, indent=4).splitlines():
        if line.strip() == "Args:":
            inside = True
        elif inside and line.startswith(" " * 12) and current:
            current.append(line)
        elif inside and line.startswith(" " * 8) and ":" in line:
            current = entries[line.strip().split(":", 1)[0]] = [line]
        elif inside:
            break
    return entries
