"""The host budget: one rate budget for the processes of a host, in a sqlite store.

Real processes (spawned, see ``_host_workers`` and ``test_fleet``'s ``Fleet``), a real sqlite
file in the test's own ``INVENT_BUDGET_DIR`` (``conftest.host_budgets``), FakeInvent over
loopback. The store's answers are compared in whole slots (its times are exact: each slot is
one interval after the one before), never against the real clock. The lane scenarios run
through the host governor in ``test_lane_conformance``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from _harness import API_KEY, ThreadedFake
from _host_workers import hold_worker, reserve_worker
from test_fleet import WORKER_TIMEOUT, job, most_admitted, run_fleet

from invent_async import AsyncInventClient, RateLimit
from invent_async._governor_registry import new_governor
from invent_async._host import HostGovernor
from invent_async._host_budget import (
    _CREATE,
    BUDGET_DIR_ENV,
    FILE_NAME,
    HostBudget,
    HostBudgetUnavailableError,
    budget_dir,
)
from invent_async._ratelimit import RateGovernor
from invent_async.testing import FakeInvent

pytestmark = pytest.mark.heavy  # real servers and worker processes: nox -s deploy runs them

NAME: Final = "default@127.0.0.1:1"
PER_MINUTE: Final = 6000.0  # one slot every 10 ms
INTERVAL_US: Final = 10_000
MOUNT: Final = shutil.which("mount") or "/bin/mount"
UMOUNT: Final = shutil.which("umount") or "/bin/umount"


def spaced(slots: list[float]) -> list[int]:
    """The gaps between the slots, in microseconds, in time order."""
    micros = sorted(round(s * 1_000_000) for s in slots)
    return [b - a for a, b in itertools.pairwise(micros)]


def run_reservers(directory: Path, processes: int, count: int) -> list[dict[str, Any]]:
    spawn = multiprocessing.get_context("spawn")  # no fork() of a threaded test process
    start = spawn.Barrier(processes)
    queues = [spawn.Queue() for _ in range(processes)]
    workers = [
        spawn.Process(
            target=reserve_worker,
            args=(str(directory), NAME, PER_MINUTE, count, start, queue),
            daemon=True,
        )
        for queue in queues
    ]
    for worker in workers:
        worker.start()
    try:
        results = [queue.get(timeout=WORKER_TIMEOUT) for queue in queues]
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
                worker.join(10)
    errors = [r["error"] for r in results if "error" in r]
    assert not errors, errors[0]
    return results


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------- the default


async def test_a_client_without_redis_shares_the_hosts_budget(host_budgets: Path) -> None:
    async with FakeInvent(api_key=API_KEY) as fake:
        ids = [fake.add_contact(email=f"c{k}@example.com").id for k in range(3)]
        async with AsyncInventClient(API_KEY, base_url=fake.url) as client:
            for contact_id in ids:
                await client.contacts.get(contact_id)
            stats = client.rate_limit_stats()
            host = await client.rate_limit_fleet_stats()
    assert stats is not None
    assert stats.host
    assert not stats.fleet
    assert not stats.fallback
    assert host is not None
    assert host.acquired == 3
    assert (host_budgets / FILE_NAME).exists()


async def test_a_store_busy_for_a_moment_is_waited_for_not_left(
    host_budgets: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Other processes holding the store's lock past BUSY_TIMEOUT (admissions at once on a
    busy machine) is back-pressure: the call waits, with the event loop free, and takes its
    slot from the store. It fell back to pacing itself at the whole rate, and the host's
    processes together went over the limit (seen in CI: 90 requests where 67 fit)."""
    caplog.set_level(logging.WARNING, logger="invent_async")
    async with FakeInvent(api_key=API_KEY) as fake:
        contact = fake.add_contact(email="c@example.com")
        async with AsyncInventClient(API_KEY, base_url=fake.url) as client:
            await client.contacts.get(contact.id)  # the store exists
            holder = sqlite3.connect(host_budgets / FILE_NAME, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another process, mid-transaction
            asyncio.get_running_loop().call_later(0.3, holder.execute, "COMMIT")
            try:
                await client.contacts.get(contact.id)
            finally:
                holder.close()
            stats = client.rate_limit_stats()
            host = await client.rate_limit_fleet_stats()

    assert stats is not None
    assert not stats.fallback
    assert host is not None
    assert host.acquired == 2  # both through the store
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_shared_false_adaptive_and_off_keep_a_budget_in_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(new_governor(RateLimit(), name=NAME), HostGovernor)
    assert isinstance(new_governor(RateLimit(shared=False), name=NAME), RateGovernor)
    assert isinstance(new_governor(RateLimit(adaptive=True), name=NAME), RateGovernor)
    assert isinstance(new_governor(RateLimit(per_minute=None), name=NAME), RateGovernor)
    monkeypatch.setenv(BUDGET_DIR_ENV, "off")
    assert isinstance(new_governor(RateLimit(), name=NAME), RateGovernor)


def test_the_store_lives_in_a_private_directory(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "budgets"
    budget = HostBudget(directory, name=NAME, per_minute=PER_MINUTE)
    budget.reserve()
    budget.close()
    assert directory.stat().st_mode & 0o777 == 0o700
    assert (directory / FILE_NAME).stat().st_mode & 0o777 == 0o600
    home = tmp_path / "home"
    assert budget_dir({"HOME": str(home)}) is None or budget_dir({}) is not None
    assert budget_dir({BUDGET_DIR_ENV: str(directory)}) == directory
    assert budget_dir({BUDGET_DIR_ENV: "off"}) is None
    assert budget_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "invent_async"


# ---------------------------------------------------------------------- many processes


def test_processes_of_a_host_share_one_budget(host_budgets: Path) -> None:
    per_minute, processes, each = 1200.0, 3, 30
    with ThreadedFake(api_key=API_KEY) as fake:
        fake.add_segment("VIP")
        ids = fake.add_contacts(processes * each)
        chunks = [ids[k * each : (k + 1) * each] for k in range(processes)]
        start, results = run_fleet(
            [job(fake, "sg_1", chunk, per_minute=per_minute) for chunk in chunks]
        )
        requests = fake.requests
        members = fake.segment_members("sg_1")

    span = max(r.time for r in requests) - start
    assert [r["succeeded"] for r in results] == [each] * processes  # 0 lost
    assert sorted(members) == sorted(ids)
    assert all(r.status == 200 for r in requests)
    assert [(r["host"], r["fallback"]) for r in results] == [(True, False)] * processes
    assert len(requests) <= most_admitted(per_minute, span) + 1  # paced as one


def test_many_processes_starting_at_once_create_the_store_once(tmp_path: Path) -> None:
    processes, count = 8, 20
    results = run_reservers(tmp_path, processes, count)

    slots = [slot for r in results for slot in r["slots"]]
    assert len(slots) == processes * count
    assert spaced(slots) == [INTERVAL_US] * (len(slots) - 1)  # one budget, no slot twice
    assert [(r["rebuilt"], r["said"]) for r in results] == [(0, [])] * processes
    with contextlib.closing(sqlite3.connect(tmp_path / FILE_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        assert conn.execute("SELECT name, acquired FROM budget").fetchall() == [
            (NAME, processes * count)
        ]


def test_a_429_in_one_process_holds_the_others_until_a_reset(tmp_path: Path) -> None:
    governor = HostGovernor(
        RateLimit(per_minute=PER_MINUTE, burst=1), name=NAME, directory=tmp_path
    )

    async def signal_429() -> float:
        ticket = await governor.acquire()
        ticket.release()
        return governor.rate_limited(3600.0, ticket)  # a long Retry-After (capped)

    remaining = asyncio.run(signal_429())
    gate = governor.store.gate()
    [held] = run_reservers(tmp_path, 1, 2)
    governor.reopen()  # rate_limit_reset() in this process
    [free] = run_reservers(tmp_path, 1, 2)
    governor.store.close()

    assert remaining > 0
    assert gate.remaining > 0
    assert min(held["slots"]) >= gate.end  # another process: after the gate
    assert max(free["slots"]) < gate.end  # reopened for every process


# ---------------------------------------------------------------------- what may go wrong


def test_a_process_killed_in_a_transaction_leaves_no_lock_and_no_change(tmp_path: Path) -> None:
    budget = HostBudget(tmp_path, name=NAME, per_minute=PER_MINUTE)
    budget.reserve()  # the row exists
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    holder = spawn.Process(
        target=hold_worker, args=(str(tmp_path / FILE_NAME), NAME, ready), daemon=True
    )
    holder.start()
    try:
        assert ready.wait(WORKER_TIMEOUT)
        with pytest.raises(HostBudgetUnavailableError, match="locked"):
            budget.reserve()  # the lock is held: unavailable (the governor falls back)
    finally:
        os.kill(holder.pid or 0, signal.SIGKILL)
        holder.join(10)
    assert holder.exitcode == -signal.SIGKILL

    answer = budget.reserve()  # no lock left, the half transaction rolled back
    assert answer.wait * 1_000_000 <= INTERVAL_US  # not an hour ahead
    assert budget.gate().remaining == 0
    assert budget.stats().acquired == 2
    budget.close()


def corrupt(directory: Path) -> None:
    budget = HostBudget(directory, name=NAME, per_minute=PER_MINUTE)
    budget.reserve()
    budget.close()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{directory / FILE_NAME}{suffix}")
    (directory / FILE_NAME).write_bytes(b"not a database, " * 512)


def test_a_corrupt_store_is_rebuilt_once_by_processes_finding_it_at_once(tmp_path: Path) -> None:
    corrupt(tmp_path)
    processes, count = 4, 10
    results = run_reservers(tmp_path, processes, count)

    assert sum(r["rebuilt"] for r in results) == 1
    said = [line for r in results for line in r["said"]]
    assert len(said) == 1
    assert "corrupt" in said[0]
    assert "rebuilt empty" in said[0]
    slots = [slot for r in results for slot in r["slots"]]
    assert spaced(slots) == [INTERVAL_US] * (len(slots) - 1)  # all on the one new store


def test_a_stale_store_is_rebuilt_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / FILE_NAME)) as conn:
        conn.execute("CREATE TABLE budget (name TEXT, other_columns TEXT)")
        conn.execute("PRAGMA user_version = 7")
        conn.commit()
    budget = HostBudget(tmp_path, name=NAME, per_minute=PER_MINUTE)
    with caplog.at_level(logging.WARNING, logger="invent_async"):
        answers = [budget.reserve() for _ in range(3)]
    assert [a.admitted for a in answers] == [True] * 3
    assert budget.rebuilt == 1
    assert len(warnings_of(caplog)) == 1
    assert "stale (schema version 7" in warnings_of(caplog)[0]
    budget.close()


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` (holding a store) read-only: by its mode for a user, or a read-only
    tmpfs mounted over it for root (who writes whatever the mode says)."""
    if os.geteuid() != 0:
        paths = [directory / FILE_NAME, directory]
        for path in paths:
            path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            for path in paths:
                path.chmod(0o700 if path.is_dir() else 0o600)
        return
    with mounted(directory, "size=1m"):
        HostBudget(directory, name=NAME, per_minute=PER_MINUTE).close()  # a store in it
        budget = HostBudget(directory, name=NAME, per_minute=PER_MINUTE)
        budget.reserve()
        budget.close()
        remount = subprocess.run(
            [MOUNT, "-o", "remount,ro", str(directory)], capture_output=True, check=False
        )
        assert remount.returncode == 0, remount.stderr
        yield


@contextlib.contextmanager
def mounted(directory: Path, options: str) -> Iterator[None]:
    """A tmpfs on ``directory`` (root only; skips the test where mounting is not allowed)."""
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [MOUNT, "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run([UMOUNT, "-l", str(directory)], capture_output=True, check=False)


async def acquire_all(governor: HostGovernor, count: int) -> None:
    for _ in range(count):
        ticket = await governor.acquire()
        ticket.release()
        governor.succeeded(ticket)


async def test_a_read_only_store_falls_back_to_the_process_and_says_it_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "budgets"
    directory.mkdir(mode=0o700)
    HostBudget(directory, name=NAME, per_minute=PER_MINUTE).reserve()
    limit = RateLimit(per_minute=PER_MINUTE, burst=1)
    with read_only(directory):
        governor = HostGovernor(limit, name=NAME, directory=directory)
        with caplog.at_level(logging.WARNING, logger="invent_async"):
            await acquire_all(governor, 5)
        stats = governor.stats()
        await governor.aclose()
    assert stats.acquired == 5
    assert stats.fallback
    assert stats.host
    said = warnings_of(caplog)
    assert len(said) == 1
    assert "cannot be used" in said[0]
    assert "100/min" not in said[0]


def fill(path: Path) -> None:
    """Write ``path`` until its file system is full."""
    with contextlib.suppress(OSError), open(path, "wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()


async def test_a_full_disk_falls_back_to_the_process_and_says_it_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if os.geteuid() != 0:
        pytest.skip("filling a disk needs a tmpfs of its own (root)")
    directory = tmp_path / "budgets"
    with mounted(directory, "size=64k"):
        fill(directory / "filler")
        governor = HostGovernor(
            RateLimit(per_minute=PER_MINUTE, burst=1), name=NAME, directory=directory
        )
        with caplog.at_level(logging.WARNING, logger="invent_async"):
            await acquire_all(governor, 5)
        stats = governor.stats()
        await governor.aclose()
    assert stats.acquired == 5
    assert stats.fallback
    said = warnings_of(caplog)
    assert len(said) == 1
    assert "cannot be used" in said[0]


def test_a_forked_child_uses_a_connection_of_its_own(tmp_path: Path) -> None:
    governor = HostGovernor(
        RateLimit(per_minute=PER_MINUTE, burst=1), name=NAME, directory=tmp_path
    )
    asyncio.run(acquire_all(governor, 1))  # the parent's connection is open
    reader, writer = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a threaded process
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            asyncio.run(acquire_all(governor, 3))
            os.write(writer, f"{int(governor.fallback)} {governor.stats().acquired}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    asyncio.run(acquire_all(governor, 3))
    _, status = os.waitpid(pid, 0)
    with os.fdopen(reader) as pipe:
        told = pipe.read()
    assert os.waitstatus_to_exitcode(status) == 0
    assert told == "0 4"  # the child's 3 (its copy counted the parent's first), no fallback
    asyncio.run(acquire_all(governor, 1))  # the parent's connection still works
    budget = governor.store
    assert budget.stats().acquired == 8
    with contextlib.closing(sqlite3.connect(tmp_path / FILE_NAME)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    budget.close()


# ---------------------------------------------------------------------- the clock


def test_a_wall_clock_set_back_moves_the_booked_slots_back_too(tmp_path: Path) -> None:
    now = [1_000.0]
    budget = HostBudget(tmp_path, name=NAME, per_minute=60.0, wall=lambda: now[0])
    assert [budget.reserve().wait for _ in range(3)] == [0.0, 1.0, 2.0]
    now[0] = 900.0  # set back 100 s
    assert budget.reserve().wait == 3.0  # not 103 s
    budget.close()


def test_a_slot_given_back_moves_the_queue_back_never_before_now(tmp_path: Path) -> None:
    now = [1_000.0]
    budget = HostBudget(tmp_path, name=NAME, per_minute=60.0, wall=lambda: now[0])
    answers = [budget.reserve() for _ in range(3)]
    budget.give_back(answers[-1])
    assert budget.reserve().wait == 2.0  # the slot given back, taken again
    now[0] = 1_010.0
    budget.give_back(answers[0])  # the queue is empty by now: nothing to move
    assert budget.reserve().wait == 0.0
    budget.close()


def test_a_slot_given_back_inside_the_queue_is_taken_by_the_next_booking_not_booked_twice(
    tmp_path: Path,
) -> None:
    now = [1_000.0]
    budget = HostBudget(tmp_path, name=NAME, per_minute=60.0, wall=lambda: now[0])
    answers = [budget.reserve() for _ in range(4)]  # at 0, 1, 2 and 3 s
    assert budget.give_back(answers[1]) is True  # cancelled while it slept: 1 s is free
    later = [budget.reserve() for _ in range(2)]
    slots = [a.slot for a in (answers[0], *answers[2:], *later)]

    assert [a.wait for a in later] == [1.0, 4.0]  # the hole, then the queue's end
    assert len(set(slots)) == len(slots)  # unfixed: the queue's end moved back, 3 s twice
    assert budget.stats().given_back == 1
    budget.close()


def test_a_hole_is_not_taken_inside_a_cool_down_nor_after_a_reopen(tmp_path: Path) -> None:
    now = [1_000.0]
    budget = HostBudget(tmp_path, name=NAME, per_minute=60.0, wall=lambda: now[0])
    answers = [budget.reserve() for _ in range(6)]  # 0 to 5 s
    budget.give_back(answers[1])
    budget.give_back(answers[3])
    budget.cool_down(2.5)  # the gate shuts until 2.5 s: the hole at 1 s is inside it
    assert budget.reserve().slot == answers[3].slot  # the hole after the gate (unfixed: 4 s)
    budget.give_back(answers[4])
    budget.cool_down(10.0)
    budget.reopen()  # the queue starts again from now: slots booked before are rebooked
    assert budget.reserve().wait == 0.0  # not the old hole at 4 s
    assert budget.reserve().wait == 1.0
    budget.close()


def test_an_interactive_call_takes_a_hole_before_it_overtakes_bulk_work(tmp_path: Path) -> None:
    now = [1_000.0]
    budget = HostBudget(
        tmp_path, name=NAME, per_minute=60.0, interactive_share=0.25, wall=lambda: now[0]
    )
    booked = [budget.reserve(bulk=True) for _ in range(6)]  # bulk: 0 to 5 s
    budget.give_back(booked[1])  # 1 s is free: as early as overtaking
    call = budget.reserve()  # interactive

    assert call.slot == booked[1].slot  # the free slot: no bulk request has to give one up
    assert budget.stats().express == 0
    budget.close()


def test_a_store_made_before_the_hole_table_gets_it(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / FILE_NAME)) as conn:
        for statement in _CREATE:
            if "hole" not in statement:
                conn.execute(statement)
        conn.commit()
    now = [1_000.0]
    budget = HostBudget(tmp_path, name=NAME, per_minute=60.0, wall=lambda: now[0])
    answers = [budget.reserve() for _ in range(3)]
    budget.give_back(answers[1])

    assert budget.reserve().wait == 1.0
    assert budget.rebuilt == 0  # the same file: its budgets kept
    budget.close()
