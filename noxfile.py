"""Task runner: ``nox`` runs tests, lint, typecheck, codegen_check; ``nox -s bench`` benchmarks."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "codegen_check"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
LOOPBACK_ONLY = ["--allow-hosts=127.0.0.1,::1,localhost"]  # pytest-socket


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against FakeInvent over loopback (no other address is reachable)."""
    session.install("-e", ".[orjson,cli]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *LOOPBACK_ONLY, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests, the benchmarks and this file."""
    session.install("-e", ".[orjson,cli]", *nox.project.dependency_groups(PYPROJECT, "typing"))
    session.run("mypy", "--strict", "invent_async", "tests", "benchmarks", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against loopback servers, printed as ratios to baselines of the same run."""
    session.install("-e", ".[orjson,cli]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def codegen(session: nox.Session) -> None:
    """Regenerate the sync client from the async one; ``nox -s codegen -- --check`` only checks."""
    session.install("-e", ".")
    session.run("python", "-m", "invent_async._codegen", *session.posargs)


@nox.session
def codegen_check(session: nox.Session) -> None:
    """Fail (with a diff) when the generated sync client is stale: part of the default run."""
    session.install("-e", ".")
    session.run("python", "-m", "invent_async._codegen", "--check")
