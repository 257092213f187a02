"""The documented web recipes, run as deployed and loaded past the API's limit.

Each recipe's application is the code block of its page marked ``<!-- deployed: NAME -->``
(``docs/web-apps.md``: FastAPI, aiohttp.web; ``docs/sync.md``: Flask), written to a module of
that name and served by a real server process with 2 workers: uvicorn (FastAPI), gunicorn
with aiohttp's ``GunicornWebWorker`` (aiohttp.web), gunicorn sync workers (Flask). The page is
the one source: the same blocks also run through the frameworks' test clients (sybil).

The app talks to a FakeInvent over loopback that accepts :data:`FAKE_PER_MINUTE` requests a
minute (its 429s say when the window has room again), while each worker paces at the SDK's
default 500 a minute: 200 requests at once go past both, and the recipe must answer each with
200 or 503 + ``Retry-After`` within its deadline. Checked: no other status (no 500), every 503
has a ``Retry-After`` of whole seconds, every 200 is a call the fake applied, no worker was
killed or replaced (the server's log), and the server stops cleanly (exit status 0).

Marked ``deploy``: deselected in the ``tests`` session, run on one interpreter by ``nox -s
deploy`` (the ``deploy`` dependency group: uvicorn, gunicorn). Each test is bounded: the
servers are stopped (SIGTERM, then SIGKILL) whatever happens, and the load by a time limit.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import aiohttp
import anyio
import attrs
import pytest
from _harness import ThreadedFake

from invent_async.testing import FakeInvent

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(240)]

DOCS: Final = Path(__file__).parent.parent / "docs"
API_KEY: Final = "deploy-key"
FAKE_PER_MINUTE: Final = 60.0
"""The fake's limit: the workers' budgets (500/minute each, or one of 500 between them)
send more than this within the recipes' 10 s deadline, so some calls get the fake's 429."""
REQUESTS: Final = 200
LOAD_LIMIT: Final = 60.0  # seconds for the whole load: every request is answered by then
START_LIMIT: Final = 60.0
STOP_LIMIT: Final = 40.0


@attrs.frozen
class Recipe:
    """A documented application and how it is deployed."""

    page: str
    module: str
    command: str  # the arguments after ``python``; {module} and {port} are filled in
    method: str
    path: str  # {id}: a contact id
    writes: bool  # a 200 means the contact is in sg_vip (else: the fake answered its GET)
    worker_started: str  # a line the server logs once per worker started
    worker_lost: tuple[str, ...]  # lines it logs when a worker is killed or dies


GUNICORN_LOST: Final = ("WORKER TIMEOUT", "SIGKILL", "was sent", "Worker failed to boot")
RECIPES: Final = {
    "fastapi-uvicorn": Recipe(
        page="web-apps.md",
        module="fastapi_app",
        command="-m uvicorn {module}:app --workers 2 --host 127.0.0.1 --port {port}",
        method="POST",
        path="/contacts/{id}/vip",
        writes=True,
        worker_started="Started server process",
        worker_lost=("died", "failed to start", "not ready in time"),
    ),
    "aiohttp-gunicorn": Recipe(
        page="web-apps.md",
        module="aiohttp_app",
        command="-m gunicorn {module}:make_app() -k aiohttp.GunicornWebWorker --workers 2"
        " --bind 127.0.0.1:{port}",
        method="GET",
        path="/contacts/{id}",
        writes=False,
        worker_started="Booting worker",
        worker_lost=GUNICORN_LOST,
    ),
    "flask-gunicorn-sync": Recipe(
        page="sync.md",
        module="flask_app",
        command="-m gunicorn {module}:flask_app -k sync --workers 2 --timeout 30"
        " --bind 127.0.0.1:{port}",
        method="POST",
        path="/contacts/{id}/vip",
        writes=True,
        worker_started="Booting worker",
        worker_lost=GUNICORN_LOST,
    ),
}


def deployed_source(page: str, name: str) -> str:
    """The code block of ``docs/page`` marked ``<!-- deployed: name -->``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    marker = f"<!-- deployed: {name} -->\n```python\n"
    assert text.count(marker) == 1, f"{page}: no (or more than one) block marked {name!r}"
    start = text.index(marker) + len(marker)
    return text[start : text.index("\n```\n", start) + 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served(recipe: Recipe, fake: FakeInvent, folder: Path, log: Path) -> Iterator[str]:
    """The recipe's server, started in ``folder`` against ``fake``; its URL. Stopped with
    SIGTERM on the way out (SIGKILL if it does not stop within :data:`STOP_LIMIT`), and the
    test fails if it did not exit with status 0."""
    (folder / f"{recipe.module}.py").write_text(
        deployed_source(recipe.page, recipe.module), encoding="utf-8"
    )
    port = free_port()
    args = [arg.format(module=recipe.module, port=port) for arg in recipe.command.split()]
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("INVENT_REDIS_URL", "INVENT_LANE")
    }
    env.update(
        INVENT_API_KEY=API_KEY,
        INVENT_BASE_URL=fake.url,
        PYTHONPATH=str(folder),
        PYTHONUNBUFFERED="1",
    )
    with (
        log.open("w", encoding="utf-8") as out,
        subprocess.Popen(
            [sys.executable, *args], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
        ) as server,
    ):
        try:
            wait_until_listening(server, port)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                status = server.wait(STOP_LIMIT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
                raise AssertionError(f"the server did not stop:\n{log.read_text()}") from None
    assert status == 0, f"the server exited with {status}:\n{log.read_text()}"


def wait_until_listening(server: subprocess.Popen[bytes], port: int) -> None:
    end = time.monotonic() + START_LIMIT
    while True:
        assert server.poll() is None, f"the server exited with {server.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            assert time.monotonic() < end, "the server did not listen in time"
            time.sleep(0.05)
        else:
            return


async def load(url: str, recipe: Recipe, ids: list[str]) -> list[tuple[str, int, str | None]]:
    """One request per contact id, all at once: (id, status, Retry-After) of each; status 0
    for a request that got no answer within :data:`LOAD_LIMIT` (a worker killed, say)."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=LOAD_LIMIT),
    ) as http:

        async def one(contact_id: str) -> tuple[str, int, str | None]:
            path = recipe.path.format(id=contact_id)
            try:
                async with http.request(recipe.method, url + path) as response:
                    await response.read()
                    return contact_id, response.status, response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError):
                return contact_id, 0, None

        with anyio.fail_after(LOAD_LIMIT + 10):
            return await asyncio.gather(*(one(contact_id) for contact_id in ids))


def applied(fake: FakeInvent, recipe: Recipe) -> set[str]:
    """The contact ids whose call the fake applied (answered 200)."""
    if recipe.writes:
        return set(fake.segment_members("sg_vip"))
    return {
        r.path_params["contact_id"]
        for r in fake.requests
        if r.status == 200 and r.method == "GET" and "contact_id" in r.path_params
    }


@pytest.mark.parametrize("name", list(RECIPES))
async def test_a_deployed_recipe_answers_200_or_503_with_retry_after_past_the_limit(
    name: str, tmp_path: Path
) -> None:
    recipe = RECIPES[name]
    log = tmp_path / "server.log"
    with ThreadedFake(api_key=API_KEY, rate_limit_per_minute=FAKE_PER_MINUTE) as fake:
        fake.add_segment("VIP", id="sg_vip")
        ids = fake.add_contacts(REQUESTS)
        with served(recipe, fake, tmp_path, log) as url:
            answers = await load(url, recipe, ids)
        done = applied(fake, recipe)
        limited = sum(1 for r in fake.requests if r.status == 429)
    text = log.read_text(encoding="utf-8")

    statuses = collections.Counter(status for _, status, _ in answers)
    assert set(statuses) <= {200, 503}, (statuses, text)  # no 500, no 504, none unanswered
    assert statuses[200] > 0
    assert statuses[503] > 0  # the load went past the limit
    assert limited > 0  # ... of the fake: some 503s come from its 429s
    retry_afters = [retry for _, status, retry in answers if status == 503]
    assert all(retry is not None and re.fullmatch(r"[1-9][0-9]*", retry) for retry in retry_afters)
    assert {contact_id for contact_id, status, _ in answers if status == 200} <= done
    assert text.count(recipe.worker_started) == 2, text  # no worker replaced
    assert not [line for line in text.splitlines() if any(w in line for w in recipe.worker_lost)]
    assert "Traceback" not in text
