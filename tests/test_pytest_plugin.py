"""The pytest plugin users get: its fixtures under anyio's plugin, pytest-asyncio (strict and
auto mode) and plain sync tests, each run in a pytest subprocess of its own."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest

from invent_async import AsyncInventClient, InventClient


{marker}
async def test_async_client(invent_fake, invent_client) -> None:
    invent_fake.add_segment("VIP", id="sg_vip")
    invent_fake.add_contact(id="ct_123", name="Ada")
    contact = await invent_client.contacts.add_segment("ct_123", "sg_vip")
    assert [s.id for s in contact.segments] == ["sg_vip"]
    assert invent_fake.requests[-1].method == "POST"


{marker}
async def test_own_client_from_the_environment(invent_env) -> None:
    invent_env.add_contact(id="ct_1", name="Bo")
    async with AsyncInventClient() as client:
        assert (await client.contacts.get("ct_1")).name == "Bo"


def test_sync_client(invent_fake, invent_sync_client) -> None:
    invent_fake.add_contact(id="ct_9", name="Cy")
    invent_fake.fail_next(1, status=503)
    assert invent_sync_client.contacts.get("ct_9").name == "Cy"


def test_sync_code_of_the_application(invent_env) -> None:
    invent_env.add_contacts(3)
    with InventClient() as client:
        assert len(client.contacts.list().collect()) == 3
"""


@pytest.fixture(autouse=True)
def _own_configuration(pytester: pytest.Pytester) -> None:
    """The user's project has a pytest configuration of its own.

    Without one, pytest looks for it in the directories above the test's: under nox they are
    inside this repository (nox points TMPDIR into ``.nox/``), whose pyproject.toml would
    configure the user's run (``anyio_mode = "auto"``, an unknown option before anyio 4.11).
    """
    pytester.makeini("[pytest]\n")


LOOP_SCOPE = ["-o", "asyncio_default_fixture_loop_scope=function"]
ANYIO = """
@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


STRICT = ["-p", "asyncio", *LOOP_SCOPE]
AUTO = ["-p", "asyncio", "-o", "asyncio_mode=auto", *LOOP_SCOPE]


@pytest.mark.parametrize(
    ("marker", "args", "extra"),
    [
        pytest.param("@pytest.mark.anyio", ["-p", "no:asyncio"], ANYIO, id="anyio"),
        pytest.param("@pytest.mark.asyncio", STRICT, "", id="pytest-asyncio-strict"),
        pytest.param("", AUTO, "", id="pytest-asyncio-auto"),
        pytest.param(
            "@pytest.mark.anyio",
            AUTO,
            ANYIO,
            id="anyio-test-beside-asyncio-auto",
            marks=pytest.mark.heavy,
        ),
        pytest.param(
            '@pytest.mark.asyncio(loop_scope="module")',
            STRICT,
            "",
            id="strict-module-loop",
            marks=pytest.mark.heavy,
        ),
        pytest.param(
            '@pytest.mark.asyncio(loop_scope="session")',
            STRICT,
            "",
            id="strict-session-loop",
            marks=pytest.mark.heavy,
        ),
        pytest.param(
            "",
            [*AUTO, "-o", "asyncio_default_test_loop_scope=session"],
            "",
            id="auto-session-test-loops",
            marks=pytest.mark.heavy,
        ),
        pytest.param(
            "",
            [*AUTO, "-o", "asyncio_default_test_loop_scope=module"],
            "",
            id="auto-module-test-loops",
            marks=pytest.mark.heavy,
        ),
    ],
)
def test_the_fixtures_work_under_each_async_plugin(
    pytester: pytest.Pytester, marker: str, args: list[str], extra: str
) -> None:
    pytester.makepyfile(test_user=USER_TESTS.format(marker=marker) + extra)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", *args)

    result.assert_outcomes(passed=4)


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_x(invent_fake): pass")

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:invent_async")

    result.assert_outcomes(errors=1)


def test_the_applications_host_budget_stays_in_the_tests_own_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_user="""
import os
from pathlib import Path

from invent_async import InventClient


def test_app(invent_env) -> None:
    invent_env.add_contact(id="ct_1", name="Bo")
    with InventClient() as client:  # the application's own client: the host budget
        assert client.contacts.get("ct_1").name == "Bo"
    where = Path(os.environ["INVENT_BUDGET_DIR"])
    assert where.is_relative_to(os.environ["PYTEST_TMP"]), where
    assert (where / "budgets.sqlite3").exists()
"""
    )
    home = pytester.path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # where ~/.cache would be
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("INVENT_BUDGET_DIR", raising=False)
    monkeypatch.setenv("PYTEST_TMP", str(pytester.path / "tmp"))

    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--basetemp={pytester.path / 'tmp'}"
    )

    result.assert_outcomes(passed=1)
    assert not list(home.rglob("*.sqlite3"))
