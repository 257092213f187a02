"""The package's structure, checked from its source: layers, privacy, one request path.

Run just these with ``pytest tests/test_architecture.py``. They read every module of
``invent_async/`` with ``ast`` (nothing is imported), so they see lazy imports inside
functions too.

- **Layers**: every import of a package module goes *down* :data:`LAYERS`; so there is no
  import cycle either (also checked directly, to name the cycle if one appears).
- **Privacy**: no module reads or writes another module's private names: no
  ``from .x import _name`` (private *modules* are the package's layout and may be imported),
  and no ``obj._attr`` unless ``_attr`` is defined in the same module (a class attribute or
  method, or an attribute assigned on ``self`` there). Name-based, so an attribute of the same
  name defined here hides a foreign one; the layer rule keeps such cases rare.
- **No hidden channel**: no module creates a ``ContextVar``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "invent_async"

LAYERS: list[list[str]] = [
    ["_version", "_types", "_secret", "_public"],
    ["_exceptions"],
    ["_models"],
    ["_converter"],
    ["_protocol", "_serialize", "_limits", "_otel", "_send_floor"],
    ["_redis_scripts"],
    ["_pagination", "_governor", "_redis_budget", "_retry", "_observe", "_raw", "_endpoints"],
    ["_cap", "_cooldown", "_probe", "_host_budget"],
    ["_pacing"],
    ["_admission"],
    ["_ratelimit", "_host"],
    ["_fleet"],
    ["_transport", "_settings", "_governor_registry"],
    ["_pipeline"],
    ["_jobs.idset"],
    ["_jobs.reader", "_jobs.journal", "_jobs.segment_sync_plan", "_jobs.import_rows"],
    ["_jobs.import_results"],
    ["_jobs.results"],
    ["_jobs.engine"],
    ["_jobs.segment_sync_job", "_jobs.import_job"],
    ["_jobs"],
    ["resources._segment_jobs", "resources._contact_chats", "resources._contact_import"],
    ["resources.*"],
    ["resources"],
    ["_client"],
    ["_sync._loop", "_sync._traceback", "_sync._process"],
    ["_sync._runtime"],
    ["_sync._bridge"],
    ["_sync._pager"],
    ["_sync._client"],
    ["_sync._generated"],
    ["_sync"],
    ["testing._faults", "testing._records"],
    ["testing._store"],
    ["testing._validation"],
    ["testing._routes"],
    ["testing._app", "testing._mock"],
    ["testing._fake"],
    ["testing._threaded"],
    ["testing"],
    ["testing.__main__", "testing.pytest_plugin"],
    ["cli._runtime"],
    ["cli._progress", "cli._output", "cli._ids", "cli._signals", "cli._argv"],
    ["cli._job_run", "cli._import_input"],
    ["cli._tag_jobs", "cli._segment_sync", "cli._broadcasts", "cli._import"],
    ["cli.commands"],
    ["cli"],
    ["cli.__main__"],
    ["_codegen._source"],
    ["_codegen._members"],
    ["_codegen"],
    ["_codegen.__main__"],
    [""],  # the package's __init__
]
"""The modules bottom up (``fnmatch`` patterns, relative to the package). A module may
import modules of lower layers only; modules of one layer do not import each other."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = modules()


def layer_of(name: str) -> int:
    for index, patterns in enumerate(LAYERS):
        if any(fnmatch(name, pattern) for pattern in patterns):
            return index
    raise AssertionError(f"module {name!r} is in no layer of LAYERS")


def _is_package(name: str) -> bool:
    return (PACKAGE / name.replace(".", "/") / "__init__.py").exists() if name else True


def source_of(from_import: ast.ImportFrom, name: str) -> str | None:
    """The package module a ``from ... import`` in module ``name`` reads (None: outside)."""
    if from_import.level:
        package = name if _is_package(name) else name.rpartition(".")[0]
        base = package.split(".") if package else []
        base = base[: len(base) - (from_import.level - 1)]
        return ".".join([*base, *([from_import.module] if from_import.module else [])])
    if (from_import.module or "").split(".")[0] == "invent_async":
        return (from_import.module or "").removeprefix("invent_async").lstrip(".")
    return None


def imported(source: str, alias: str) -> str:
    """The module ``from source import alias`` brings: ``source.alias`` if that is a module."""
    sub = f"{source}.{alias}" if source else alias
    return sub if sub in MODULES else source


def imports_of(name: str) -> Iterator[tuple[str, ast.stmt]]:
    """(imported package module, node) for every import in module ``name``, lazy ones too."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "invent_async":
                    yield alias.name.removeprefix("invent_async").lstrip("."), node
        elif isinstance(node, ast.ImportFrom):
            source = source_of(node, name)
            if source is not None:
                for alias in node.names:
                    yield imported(source, alias.name), node


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_import_goes_down_the_layers(name: str) -> None:
    mine = layer_of(name)
    upward = [
        f"line {node.lineno}: imports {target or 'invent_async'} (layer {layer_of(target)})"
        for target, node in imports_of(name)
        if target != name and layer_of(target) >= mine
    ]
    assert not upward, f"{name or 'invent_async'} (layer {mine}) " + "; ".join(upward)


def test_the_package_has_no_import_cycle() -> None:
    graph = {name: {t for t, _ in imports_of(name) if t != name} for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(m or "invent_async" for m in cycle))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def _private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def defined_here(tree: ast.Module) -> set[str]:
    """Names a module defines: its top-level names, class members, attributes set on self."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets)
            and isinstance(node.value, ast.Tuple)
        ):
            names.update(str(e.value) for e in node.value.elts if isinstance(e, ast.Constant))
    return names


THIRD_PARTY_PRIVATE: dict[tuple[str, str], str] = {
    ("_transport", "_retry_connection"): (
        "aiohttp's silent re-send of a GET/DELETE on a dropped keep-alive connection has no "
        "public switch; test_client_retries checks that turning it off still works"
    ),
}
"""The private attributes of a library that a module sets on purpose, each with why."""


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_touches_another_modules_private_names(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    here = defined_here(tree) | {attr for (module, attr) in THIRD_PARTY_PRIVATE if module == name}
    foreign = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in here:
            foreign.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom):
            source = source_of(node, name)
            for alias in node.names:
                is_module = source is not None and imported(source, alias.name) != source
                if _private(alias.name) and not is_module:
                    foreign.append(f"line {node.lineno}: imports {alias.name}")
    assert not foreign, f"{name or 'invent_async'}: " + "; ".join(foreign)


def test_no_module_passes_values_through_a_context_variable() -> None:
    users = [name for name, path in MODULES.items() if "ContextVar(" in path.read_text()]
    assert users == []
