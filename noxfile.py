"""Task runner: ``nox`` runs tests, retry_backoff_221, lint, typecheck and codegen_check.

``nox -s bench`` runs the benchmarks.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "retry_backoff_221", "lint", "typecheck", "codegen_check"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
LOOPBACK_ONLY = ["--allow-hosts=127.0.0.1,::1,localhost"]  # pytest-socket
RETRY_TESTS = [
    "tests/test_client_retries.py",
    "tests/test_retry_waits.py",
    "tests/test_pipeline.py",
    "tests/test_ratelimit.py",
    "tests/test_bulk.py",
]
"""The tests that go through the retry layer (backoff): client retries, the wait generator,
the request path, the governor's 429 handling, per-item retries of bulk jobs."""


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against FakeInvent over loopback (no other address is reachable)."""
    session.install(
        "-e", ".[orjson,cli,redis,otel]", *nox.project.dependency_groups(PYPROJECT, "test")
    )
    session.run("pytest", *LOOPBACK_ONLY, *session.posargs)


@nox.session
def retry_backoff_221(session: nox.Session) -> None:
    """The retry tests with the original ``backoff`` 2.2.1 owning the import name ``backoff``.

    ``python-backoff`` (our dependency) and ``backoff`` both install the package ``backoff/``;
    a project depending on ``backoff`` 2.x may well overwrite the fork. Installed after it here.
    """
    session.install(
        "-e", ".[orjson,cli,redis,otel]", *nox.project.dependency_groups(PYPROJECT, "test")
    )
    session.install("backoff==2.2.1")
    session.run(
        "python",
        "-c",
        "import backoff; assert backoff.__version__ == '2.2.1', backoff.__version__",
    )
    session.run("pytest", *LOOPBACK_ONLY, *RETRY_TESTS, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests, the benchmarks and this file."""
    typing = nox.project.dependency_groups(PYPROJECT, "typing")
    session.install("-e", ".[orjson,cli,redis,otel]", *typing)
    session.run("mypy", "--strict", "invent_async", "tests", "benchmarks", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against loopback servers, printed as ratios to baselines of the same run.

    ``nox -s bench -- fleet`` runs only the benchmarks whose name contains ``fleet``; further
    words after a module name are passed to it (``nox -s bench -- fleet lanes redis_cost``).
    """
    session.install(
        "-e", ".[orjson,cli,redis,otel]", *nox.project.dependency_groups(PYPROJECT, "bench")
    )
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
