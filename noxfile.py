"""Task runner: ``nox`` runs tests (every Python the package claims), tests_lowest (the lowest
declared version of every runtime dependency), retry_backoff_221, deploy (the recipes as
deployed and the heavy multi-process tests, on one Python), lint, typecheck, codegen_check,
docs, build and prism (every operation through the SDK and FakeInvent behind Prism's
validating proxy, about 30 s; it needs Node.js' npm).

``nox -s bench`` runs the benchmarks.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nox

nox.options.sessions = [
    "tests",
    "tests_lowest",
    "retry_backoff_221",
    "deploy",
    "lint",
    "typecheck",
    "codegen_check",
    "docs",
    "build",
    "prism",
]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "uv|virtualenv"  # uv when installed (README: CI installs it)
# uv does not compile bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set, every process
# a test starts (the CLI, pytest in a subprocess, workers) compiled every module it imported
# again, which made each tests session 80 s slower.
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = [
    c.removeprefix("Programming Language :: Python :: ")
    for c in PYPROJECT["project"]["classifiers"]
    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
]
"""The interpreters the package claims (its classifiers): ``tests`` runs on each."""
EXTRAS = ".[orjson,cli,redis,otel]"


def _find_interpreters() -> None:
    """Put pyenv's installed interpreters on PATH for those not on it (nox looks up PATH)."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    path = os.environ.get("PATH", "").split(os.pathsep)
    for version in PYTHONS:
        found = sorted(versions.glob(f"{version}.*/bin/python{version}"))
        if found and str(found[-1].parent) not in path:
            path.append(str(found[-1].parent))
    os.environ["PATH"] = os.pathsep.join(path)


_find_interpreters()

MYPY_PATHS = ["invent_async", "tests", "benchmarks", "tools", "noxfile.py"]
LOOPBACK_ONLY = ["--allow-hosts=127.0.0.1,::1,localhost"]  # pytest-socket
PARALLEL = ["-n", "2", "--dist", "loadfile"]
"""pytest-xdist: two workers (the suite waits on sockets and timers more than it computes: 6
min become 3 on 2 cores), each test file on one worker, in order (a docs page's examples share
one namespace). The heavy tests (deploy) run on their own: they load the machine on purpose."""
RETRY_TESTS = [
    "tests/test_client_retries.py",
    "tests/test_retry_waits.py",
    "tests/test_pipeline.py",
    "tests/test_ratelimit.py",
    "tests/test_bulk.py",
]
"""The tests that go through the retry layer (backoff): client retries, the wait generator,
the request path, the governor's 429 handling, per-item retries of bulk jobs."""


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite against FakeInvent over loopback (no other address is reachable)."""
    session.install("-e", EXTRAS, *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *LOOPBACK_ONLY, *PARALLEL, *session.posargs)


def lowest_pins() -> list[str]:
    """``name==lowest`` for every runtime dependency and extra, from their ``>=`` bounds."""
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    pins = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        name, _, lowest = spec.strip().partition(">=")
        pins.append(f"{name}=={lowest}" + (f"; {marker.strip()}" if marker else ""))
    return pins


FREEZE = (
    "import importlib.metadata as m; "
    "print(*sorted(f'{d.name}=={d.version}' for d in m.distributions()), sep='\\n')"
)


@nox.session(python=PYTHONS[0])
def tests_lowest(session: nox.Session) -> None:
    """The test suite with the lowest declared version of every runtime dependency and extra.

    Part of the default run: a lower bound in pyproject.toml is one this session passes with.
    Without the documentation's examples (``tests/`` only): the web frameworks they run need
    newer versions of anyio than the lowest this package supports. ``nox -s tests_lowest --
    tests/test_cli.py -x`` runs only what the arguments name when one of them is in ``tests``.
    """
    pins = session.create_tmp() + "/lowest.txt"
    Path(pins).write_text("\n".join(lowest_pins()) + "\n", encoding="utf-8")
    test_core = nox.project.dependency_groups(PYPROJECT, "test-core")
    session.install("-c", pins, "-e", EXTRAS, *test_core)
    session.run("python", "-c", FREEZE, silent=False)  # what was installed (pip or uv)
    named = any(arg == "tests" or arg.startswith("tests/") for arg in session.posargs)
    where = [] if named else ["tests"]
    session.run(
        "pytest",
        *LOOPBACK_ONLY,
        *PARALLEL,
        *where,
        *session.posargs,
        env={"INVENT_DOCS_EXAMPLES": "off"},
    )


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


@nox.session(python=PYTHONS[0])
def deploy(session: nox.Session) -> None:
    """The tests of real processes, on one interpreter (the ``tests`` and ``tests_lowest``
    sessions deselect them): the documented recipes as deployed (real uvicorn, gunicorn and
    celery processes loaded past the API's limit, the ``deploy`` marker) and the ``heavy``
    ones (fleets of worker processes on a real valkey-server, the host store shared by
    processes, the pytest plugin under every async setup in a subprocess)."""
    groups = [
        *nox.project.dependency_groups(PYPROJECT, "test"),
        *nox.project.dependency_groups(PYPROJECT, "deploy"),
    ]
    session.install("-e", EXTRAS, *groups)
    session.run("pytest", *LOOPBACK_ONLY, "-m", "deploy or heavy", "tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict: the package, tests, benchmarks, tools/, conftest.py and this file."""
    typing = nox.project.dependency_groups(PYPROJECT, "typing")
    session.install("-e", ".[orjson,cli,redis,otel]", *typing)
    session.run("mypy", "--strict", *MYPY_PATHS)
    session.run("mypy", "--strict", "conftest.py")  # apart: tests/ has a conftest module too


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


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site: warnings are errors, every cross-reference must resolve.

    The examples on its pages run in ``tests`` (``conftest.py``), not here.
    """
    session.install("-e", EXTRAS, *nox.project.dependency_groups(PYPROJECT, "docs"))
    out = "docs/_build/html"
    session.run("sphinx-build", "-W", "-n", "--keep-going", "-E", "-b", "html", "docs", out)
    session.run("python", "tools/check_docs.py", out)  # public paths and default values only
    session.log(f"built {out}/index.html")


PRISM = "@stoplight/prism-cli@5.14.2"
"""The Prism release ``nox -s prism`` installs (npm), pinned: its validator decides what a
violation is."""
SPEC = "spec/invent-openapi.yaml"


@nox.session
def prism(session: nox.Session) -> None:
    """Drive every operation of the spec through the SDK and FakeInvent behind Prism's
    validating proxy (``prism proxy --errors``), all on loopback: 0 violations or it fails.

    Prism is installed with npm into the session's tmp directory (about 20 s the first time,
    a few seconds after).
    ``nox -s prism -- path/to/openapi.yaml`` checks against another copy of the description
    (the live one, once it can be read). In the default run (about 30 s); it needs Node.js'
    npm, and is skipped, saying so, on a machine without it.
    """
    session.install("-e", EXTRAS)
    npm = shutil.which("npm")
    if npm is None:  # the README's command works on a machine with Python alone: said, not run
        session.skip("npm (Node.js) is not installed: Prism cannot be installed, not checked")
    prefix = Path(session.create_tmp()) / "prism"
    session.run(npm, "install", "--prefix", str(prefix), "--no-save", PRISM, external=True)
    binary = prefix / "node_modules" / ".bin" / "prism"
    spec = session.posargs[0] if session.posargs else SPEC
    session.run("python", "tools/prism_check.py", spec, "--prism", str(binary))


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel, check them with twine, list the wheel's files."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "build"))
    out = Path(session.create_tmp()) / "dist"
    shutil.rmtree(out, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(out), ".")
    dists = sorted(str(p) for p in out.iterdir())
    session.run("twine", "check", "--strict", *dists)
    session.run("python", "tools/check_dist.py", *dists)
