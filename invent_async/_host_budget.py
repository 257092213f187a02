"""A rate budget kept in a file on this host (sqlite), shared by every process of the host.

:class:`HostBudget` is the host-wide counterpart of ``_redis_budget.RedisBudget``, with the
same verbs and answers (:class:`~invent_async._redis_budget.Reservation`,
:class:`~invent_async._redis_budget.Gate`, ``FleetStats``): GCRA pacing ("next free send
time"), the 429 cool-down gate, and the express lane of interactive calls over booked bulk
work, each verb the Python twin of a Lua script of ``_redis_budget`` (same names, same
verdicts), run in one short ``BEGIN IMMEDIATE`` transaction. The clock is the host's wall
clock (``time.time``, as Redis's ``TIME``): the same in every process and container of the
host, and a store from before a reboot only holds times in the past. A wall clock set back
moves every stored time back by as much (the ``touched`` column notes the latest time written).

**Why sqlite.** It is the standard library's, a transaction is atomic (a process SIGKILLed in
the middle of one leaves the file as it was: the write lock is the kernel's, freed with the
process, and the WAL's uncommitted frames are ignored), many processes may open and create it
at once (``busy_timeout``), and a damaged file is detected (``SQLITE_CORRUPT``,
``SQLITE_NOTADB``) rather than read as nonsense. Measured (``python -m benchmarks host cost``,
on a 2-core machine busy with other work): one reservation 111 us, 424 us each while four
processes reserve back to back; on an ``fcntl``-locked ``mmap`` of a fixed struct, 8 and
22 us. The ``mmap`` is faster, but a process killed while writing it can leave a torn
record, and the format, its versioning and its damage checks would be ours to write. At the
API's 500 requests a minute the store is used 8-16 times a second: a tenth of a millisecond
each does not matter.

**Where.** One file, ``budgets.sqlite3``, in :func:`budget_dir`: ``$INVENT_BUDGET_DIR`` if set
(a volume shared by containers of one host), else ``$XDG_RUNTIME_DIR/invent_async`` (a
per-user tmpfs), else ``~/.cache/invent_async``; created ``0700``, the file ``0600``. One row
per budget, keyed by its name (``budget@host:port``, the API host and ``RateLimit.budget``).
``INVENT_BUDGET_DIR=off`` turns the host budget off (each process paces itself).

**What may go wrong**, each handled here: a stale file (another schema version, written by
another release) or a corrupt one is rebuilt empty (under an ``flock`` of ``budgets.lock`` so
that processes finding it at once rebuild it once), said once on the ``invent_async``
logger; a process that still has the old file open notices within a second (its inode
changed) and opens the new one. A read-only or full disk, or a missing permission, raise
:class:`HostBudgetUnavailableError`: the governor (``_host``) then paces the process on its
own. A write lock held past :data:`BUSY_TIMEOUT` raises its subclass
:class:`HostBudgetBusyError`: the governor waits a little (the loop free) and tries again.
A forked child never uses its parent's connection (it opens its own on first use).

One connection per process and budget, used under a ``threading.Lock`` (requests of several
threads and event loops take turns in the process, not in sqlite's busy handler, which sleeps
1, 2, 5, 10 ms and more between tries: two threads reserving back to back, on the busy
machine above, took 112 us a reservation that way and 116 us with a connection each, which
also waited past :data:`BUSY_TIMEOUT` twice in 30,000); the lock and the transaction last tens of
microseconds, so the verbs are synchronous and run on the caller's event loop. Processes take
turns through sqlite's busy handler: fair enough at the API's rates, not under a lock kept
busy all the time (four processes admitting back to back on two cores starved one another
past :data:`BUSY_TIMEOUT` now and then, in the benchmark; an ``flock`` queue was fair there,
but a process stopped in a transaction would then hold every other one without a bound).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Final, TypeVar

from ._exceptions import InventError
from ._limits import FleetStats
from ._redis_budget import Gate, Reservation, Verdict

if sys.platform != "win32":  # POSIX: processes that find the file damaged rebuild it once
    import fcntl

__all__ = [
    "BUDGET_DIR_ENV",
    "BUSY_TIMEOUT",
    "OPEN_BUSY_TIMEOUT",
    "HostBudget",
    "HostBudgetBusyError",
    "HostBudgetUnavailableError",
    "budget_dir",
]

log = logging.getLogger("invent_async")

BUDGET_DIR_ENV: Final = "INVENT_BUDGET_DIR"
"""The directory of the host's budgets; ``off`` turns the host budget off."""
OPEN_BUSY_TIMEOUT: Final = 2.0
"""Seconds opening the store may wait for its lock (switching to WAL, creating the schema):
many processes starting at once on a busy machine take turns there, once each."""
BUSY_TIMEOUT: Final = 0.1
"""Seconds a process waits for the store's write lock before it counts as unavailable. A
transaction holds it for tens of microseconds: at the API's rates (a few hundred
transactions a second on a host at most) a wait is rare and short; this bounds the time a
process's event loop is held by one that stopped in the middle of one (``kill -STOP``, a
debugger), once a second (``_host.RETRY_STORE``)."""
SCHEMA: Final = 1
"""The store's ``PRAGMA user_version``: a file with another one is rebuilt."""
FILE_NAME: Final = "budgets.sqlite3"
_MICRO: Final = 1_000_000
_DAY: Final = 86_400 * _MICRO
_INODE_CHECK: Final = 1.0  # seconds between checks that the file is still the one opened
_COLUMNS: Final = (
    "next, gate, express, bulk, epoch, debt_until, acquired, express_n, rate_limited, "
    "given_back, stats_until, touched"
)
_CREATE_HOLE: Final = (
    "CREATE TABLE IF NOT EXISTS hole (name TEXT NOT NULL, slot INTEGER NOT NULL, "
    "PRIMARY KEY (name, slot)) WITHOUT ROWID"
)
_CREATE: Final = (
    f"CREATE TABLE IF NOT EXISTS budget (name TEXT PRIMARY KEY, "
    f"{', '.join(c.strip() + ' INTEGER NOT NULL' for c in _COLUMNS.split(','))}) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS debt (name TEXT NOT NULL, slot INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS debt_slot ON debt (name, slot)",
    _CREATE_HOLE,
    f"PRAGMA user_version = {SCHEMA}",
)
"""The store's tables: ``budget`` (a row per budget), ``debt`` (the express slots owed by
bulk requests) and ``hole`` (the slots given back inside the queue, which the next bookings
take: added after the first release of schema 1, so it is also made in a file that lacks it,
and a release that does not know it leaves it alone)."""
# built from the constant column names above; every value is a bound parameter
_SELECT: Final = f"SELECT {_COLUMNS} FROM budget WHERE name = ?"  # noqa: S608
_INSERT: Final = f"INSERT INTO budget (name, {_COLUMNS}) VALUES (?{', ?' * 12})"  # noqa: S608
_SET: Final = ", ".join(column.strip() + " = ?" for column in _COLUMNS.split(","))
_UPDATE: Final = f"UPDATE budget SET {_SET} WHERE name = ?"  # noqa: S608
_CORRUPT: Final = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
T = TypeVar("T")


class HostBudgetUnavailableError(InventError):
    """The host's budget store cannot be used (read-only or full disk, no permission, its
    lock held too long): the governor paces the process on its own."""


class HostBudgetBusyError(HostBudgetUnavailableError):
    """The store's lock stayed busy past :data:`BUSY_TIMEOUT` (other processes admitting
    at once): back-pressure, tried again shortly, not a store that cannot be used."""


class _Stale(Exception):
    """The file holds another schema: rebuilt."""


def budget_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory of the host's budgets (see the module docstring); None when
    ``INVENT_BUDGET_DIR=off``."""
    env = os.environ if environ is None else environ
    chosen = env.get(BUDGET_DIR_ENV, "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen).expanduser()
    runtime = env.get("XDG_RUNTIME_DIR", "").strip()
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "invent_async"
    return Path.home() / ".cache" / "invent_async"


class _Forks:
    """Counts the forks this process came from: a store opened before one reconnects."""

    count = 0


def _forked() -> None:
    _Forks.count += 1


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forked)

_ABANDONED: list[sqlite3.Connection] = []
"""Connections a forked child inherited: kept, never used nor closed (sqlite's advice)."""


class _Row:
    """One budget's state, in microseconds of the host's wall clock (the columns of
    ``budget``): ``next``, ``gate``, ``express``, ``bulk`` and ``epoch`` as the Redis keys
    of the same names; ``debt_until`` when the express debt expires; the counters and when
    they expire; ``touched``, the latest time written."""

    __slots__ = (
        "acquired",
        "bulk",
        "debt_until",
        "epoch",
        "express",
        "express_n",
        "gate",
        "given_back",
        "next",
        "rate_limited",
        "stats_until",
        "touched",
    )

    def __init__(self, values: tuple[int, ...] | None) -> None:
        (
            self.next,
            self.gate,
            self.express,
            self.bulk,
            self.epoch,
            self.debt_until,
            self.acquired,
            self.express_n,
            self.rate_limited,
            self.given_back,
            self.stats_until,
            self.touched,
        ) = values or (0,) * 12

    def values(self) -> tuple[int, ...]:
        return (
            self.next,
            self.gate,
            self.express,
            self.bulk,
            self.epoch,
            self.debt_until,
            self.acquired,
            self.express_n,
            self.rate_limited,
            self.given_back,
            self.stats_until,
            self.touched,
        )


class _Txn:
    """One transaction on one budget: its row, the express debt, the time (the Lua
    scripts' ``_PRELUDE``)."""

    __slots__ = ("conn", "fresh", "name", "now", "row")

    def __init__(self, conn: sqlite3.Connection, name: str, now: int) -> None:
        self.conn = conn
        self.name = name
        self.now = now
        found = conn.execute(_SELECT, (name,)).fetchone()
        self.fresh = found is None
        self.row = row = _Row(found)
        if row.touched > now + _MICRO:  # the wall clock was set back: so is every stored time
            back = row.touched - now
            row.next, row.gate, row.express, row.bulk = (
                max(0, t - back) for t in (row.next, row.gate, row.express, row.bulk)
            )
            row.debt_until = 0
            conn.execute("DELETE FROM hole WHERE name = ?", (name,))
        if row.debt_until and row.debt_until < now:
            conn.execute("DELETE FROM debt WHERE name = ?", (name,))
            row.debt_until = 0
        if row.stats_until < now:
            row.acquired = row.express_n = row.rate_limited = row.given_back = 0

    def save(self) -> None:
        self.row.touched = self.now
        if self.fresh:
            self.conn.execute(_INSERT, (self.name, *self.row.values()))
            self.fresh = False
        else:
            self.conn.execute(_UPDATE, (*self.row.values(), self.name))

    def count(
        self, *, express: bool = False, rate_limited: bool = False, given_back: bool = False
    ) -> None:
        row = self.row
        if rate_limited:
            row.rate_limited += 1
        elif given_back:
            row.given_back += 1
        else:
            row.acquired += 1
            row.express_n += express
        row.stats_until = self.now + _DAY

    def due(self, slot: int) -> Verdict:
        return Verdict.NOT_YET if slot > self.now else Verdict.GO

    def first_hole(self) -> int | None:
        """The earliest slot given back inside the queue that is not past nor inside a
        cool-down (the ones that are stay until the next hole is left: one read here, on
        every booking)."""
        found = self.conn.execute(
            "SELECT slot FROM hole WHERE name = ? AND slot >= ? ORDER BY slot LIMIT 1",
            (self.name, max(self.now, self.row.gate)),
        ).fetchone()
        return None if found is None else int(found[0])

    def book(self, interval: int, tau: int, max_wait: int, bulk: bool) -> tuple[bool, int]:
        row = self.row
        hole = self.first_hole()
        if hole is not None:  # a slot given back inside the queue: the earliest one first
            if max_wait >= 0 and hole - self.now > max_wait:
                return False, hole
            self.conn.execute("DELETE FROM hole WHERE name = ? AND slot = ?", (self.name, hole))
            if bulk:
                row.bulk = max(row.bulk, hole)
            return True, hole
        slot = max(self.now - tau, row.next, row.gate)
        if max_wait >= 0 and slot - self.now > max_wait:
            return False, slot
        row.next = slot + interval
        if bulk:
            row.bulk = slot
        return True, slot

    def owe(self, slot: int, until: int) -> None:
        self.conn.execute("INSERT INTO debt (name, slot) VALUES (?, ?)", (self.name, slot))
        self.row.debt_until = until

    def repay(self, slot: int) -> bool:
        """Take the earliest express slot at or before ``slot`` off the debt: True if any."""
        found = self.conn.execute(
            "SELECT rowid FROM debt WHERE name = ? AND slot <= ? ORDER BY slot LIMIT 1",
            (self.name, slot),
        ).fetchone()
        if found is None:
            return False
        self.conn.execute("DELETE FROM debt WHERE rowid = ?", found)
        return True

    def leave_hole(self, slot: int) -> None:
        """Note ``slot`` as given back inside the queue: the next booking takes it. The
        holes past by now are forgotten."""
        self.conn.execute("DELETE FROM hole WHERE name = ? AND slot < ?", (self.name, self.now))
        self.conn.execute(
            "INSERT OR IGNORE INTO hole (name, slot) VALUES (?, ?)", (self.name, slot)
        )

    def forgive(self, slot: int) -> bool:
        """Take the express slot ``slot`` off the debt (its request gives it back): True if
        it was there."""
        found = self.conn.execute(
            "SELECT rowid FROM debt WHERE name = ? AND slot = ? LIMIT 1", (self.name, slot)
        ).fetchone()
        if found is None:
            return False
        self.conn.execute("DELETE FROM debt WHERE rowid = ?", found)
        return True

    def answer(self, verdict: Verdict, slot: int, epoch: int | None = None) -> Reservation:
        return Reservation(
            verdict=verdict,
            slot=slot / _MICRO,
            now=self.now / _MICRO,
            gate_end=self.row.gate / _MICRO,
            epoch=self.row.epoch if epoch is None else epoch,
        )


class HostBudget:
    """One named budget in the host's store: GCRA pacing, the cool-down gate and the lanes
    (see the module docstring). Opens the file on first use.

    Args:
        directory: Where the store lives (made ``0700`` if missing).
        name: The budget's name: every process of the host using it shares the budget.
        per_minute: The budget's rate.
        burst: Requests that may go at once after an idle time.
        interactive_share: Share of the rate interactive calls may take ahead of booked
            bulk work (0: one queue).
        wall: The host's clock in seconds (``time.time``; tests inject one).
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str,
        per_minute: float,
        burst: int = 1,
        interactive_share: float = 0.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(per_minute, int | float) and math.isfinite(per_minute)) or not (
            per_minute > 0
        ):
            raise ValueError(f"per_minute must be a positive number, got {per_minute!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        if not (isinstance(interactive_share, int | float) and 0 <= interactive_share < 1):
            raise ValueError(
                f"interactive_share must be a number from 0 to below 1, got {interactive_share!r}"
            )
        self.name = name
        self.path = directory / FILE_NAME
        self._interval = round(60 * _MICRO / per_minute)
        self._tau = (burst - 1) * self._interval
        self._express = round(self._interval / interactive_share) if interactive_share else 0
        self._wall = wall
        self._lock = threading.Lock()
        self._forks = _Forks.count
        self._conn: sqlite3.Connection | None = None
        self._closer: weakref.finalize[[], HostBudget] | None = None  # closes it if nobody does
        self._inode = 0
        self._inode_checked = -math.inf
        self.rebuilt = 0  # times this process rebuilt a stale or corrupt store

    def __repr__(self) -> str:
        return f"<HostBudget {self.name!r} in {str(self.path)!r}>"

    # ------------------------------------------------------------------ the verbs

    def reserve(self, max_wait: float | None = None, *, bulk: bool = False) -> Reservation:
        """Reserve the next send slot (unless it is more than ``max_wait`` away): the
        ``_RESERVE`` script of ``_redis_budget``, with the same express-lane rule.

        Raises:
            HostBudgetUnavailableError: the store cannot be used.
        """
        limit = _limit(max_wait)
        interval, tau, express = self._interval, self._tau, self._express

        def run(txn: _Txn) -> Reservation:
            row, now = txn.row, txn.now
            queue = max(now - tau, row.next, row.gate)
            if not bulk and express > 0 and queue > now and row.bulk > now:
                lane = max(now, row.express, row.gate)
                back = (queue - lane) // interval
                slot = queue - back * interval
                if slot <= now:
                    back -= 1
                    slot += interval
                hole = txn.first_hole()
                if hole is not None and hole <= slot:  # a free slot as early: booked
                    back = 0
                if back >= 1 and slot <= row.bulk:
                    if limit >= 0 and slot - now > limit:
                        return txn.answer(Verdict.REFUSED, slot)
                    row.express = lane + express
                    txn.owe(slot, until=queue + _MICRO)
                    txn.count(express=True)
                    txn.save()
                    return txn.answer(txn.due(slot), slot)
            ok, slot = txn.book(interval, tau, limit, bulk)
            if not ok:
                return txn.answer(Verdict.REFUSED, slot)
            txn.count()
            txn.save()
            return txn.answer(txn.due(slot), slot)

        return self._transaction(run)

    def check(
        self, reservation: Reservation, max_wait: float | None = None, *, bulk: bool = False
    ) -> Reservation:
        """Right before sending at a reserved slot: the slot to go at now (``_CHECK``: the
        same one, or a new one when a cool-down or a reopen came since, or an express call
        took this bulk slot or one before it; REFUSED when that is past ``max_wait``)."""
        limit = _limit(max_wait)
        slot = round(reservation.slot * _MICRO)
        booked_in = reservation.epoch

        def run(txn: _Txn) -> Reservation:
            row, now = txn.row, txn.now
            again = row.gate > slot or row.epoch != booked_in
            if not again and bulk and now >= slot:
                again = txn.repay(slot)
            if again:
                ok, booked = txn.book(self._interval, self._tau, limit, bulk)
                if not ok:
                    return txn.answer(Verdict.REFUSED, booked)
                txn.save()
                return txn.answer(Verdict.REBOOKED, booked)
            return txn.answer(txn.due(slot), slot, booked_in)

        return self._transaction(run)

    def give_back(self, reservation: Reservation) -> bool:
        """The request that booked ``reservation`` will not be sent: give its slot back
        (``GIVE_BACK`` of ``_redis_scripts``). A slot ahead of now with later ones booked
        behind it becomes a hole that the next booking takes; any other moves the queue's
        next free slot back one interval, never before now nor into a cool-down; nothing
        moves when a reopen or a cool-down laid the queue out again since it was booked; an
        express slot leaves the debt instead. True when a slot went back. (One transaction:
        nothing is retried, so no ticket names the request as on Redis.)"""
        slot = round(reservation.slot * _MICRO)

        def run(txn: _Txn) -> bool:
            row, now = txn.row, txn.now
            if row.epoch != reservation.epoch or row.gate > slot:
                return False
            if not txn.forgive(slot):
                if now < slot < row.next - self._interval:
                    txn.leave_hole(slot)  # ahead, with later slots booked behind it
                else:
                    back = max(row.next - self._interval, now, row.gate)
                    if back >= row.next:
                        return False
                    row.next = back
            txn.count(given_back=True)
            txn.save()
            return True

        return self._transaction(run)

    def cool_down(self, seconds: float) -> Gate:
        """Close the gate for ``seconds`` from now (a longer pause already set stays), and
        move the queue past it, so that requests resume one interval apart."""
        pause = max(0, round(seconds * _MICRO))

        def run(txn: _Txn) -> Gate:
            row = txn.row
            row.gate = max(txn.now + pause, row.gate)
            row.next = max(row.next, row.gate)
            txn.count(rate_limited=True)
            txn.save()
            return Gate(end=row.gate / _MICRO, now=txn.now / _MICRO)

        return self._transaction(run)

    def gate(self) -> Gate:
        """The gate as it is now."""
        return self._transaction(lambda txn: Gate(end=txn.row.gate / _MICRO, now=txn.now / _MICRO))

    def reopen(self) -> Gate:
        """Open a closed gate now; the gate as it was. Slots booked before are booked again
        at their next check (the epoch moves on)."""

        def run(txn: _Txn) -> Gate:
            row = txn.row
            was = Gate(end=row.gate / _MICRO, now=txn.now / _MICRO)
            if row.gate > txn.now:
                row.gate = 0
                row.epoch += 1
                row.next = min(row.next, txn.now)
                txn.conn.execute("DELETE FROM hole WHERE name = ?", (self.name,))
                txn.save()
            return was

        return self._transaction(run)

    def stats(self) -> FleetStats:
        """The budget's counters as every process of the host sees them."""

        def run(txn: _Txn) -> FleetStats:
            row, now = txn.row, txn.now
            return FleetStats(
                acquired=row.acquired,
                express=row.express_n,
                rate_limited=row.rate_limited,
                cooldown_remaining=max(0.0, (row.gate - now) / _MICRO),
                backlog=max(0.0, (row.next - now) / _MICRO),
                given_back=row.given_back,
            )

        return self._transaction(run)

    def close(self) -> None:
        """Close the connection (opened again on next use)."""
        with self._guard():
            self._drop()

    # ------------------------------------------------------------------ the file

    def _guard(self) -> threading.Lock:
        if self._forks != _Forks.count:  # a forked child: the parent's lock and connection
            self._forks = _Forks.count  # are not ours (the lock may have been held)
            self._lock = threading.Lock()
            if self._conn is not None:
                _ABANDONED.append(self._conn)
                self._conn = None
            if self._closer is not None:
                self._closer.detach()
        return self._lock

    def _transaction(self, run: Callable[[_Txn], T]) -> T:
        with self._guard():
            for attempt in (1, 2):
                try:
                    conn = self._connection()
                    return _in_transaction(conn, self.name, self._now, run)
                except (sqlite3.DatabaseError, _Stale) as exc:
                    damaged = isinstance(exc, _Stale) or _damaged(exc)
                    if getattr(exc, "sqlite_errorname", "") == "SQLITE_BUSY":
                        raise HostBudgetBusyError(_describe(exc)) from None  # keep the file
                    if not damaged or attempt == 2:
                        self._drop()
                        raise HostBudgetUnavailableError(_describe(exc)) from None
                    self._rebuild(exc)
                except FileNotFoundError as exc:  # unlinked by a process rebuilding it
                    if attempt == 2:
                        self._drop()
                        raise HostBudgetUnavailableError(f"cannot use {self.path}: {exc}") from None
                    self._rebuild(exc)
                except OSError as exc:
                    self._drop()
                    raise HostBudgetUnavailableError(
                        f"cannot use {self.path}: {exc.strerror or type(exc).__name__}"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _now(self) -> int:
        return round(self._wall() * _MICRO)

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        now = time.monotonic()
        if conn is not None and now - self._inode_checked >= _INODE_CHECK:
            self._inode_checked = now
            try:
                same = os.stat(self.path).st_ino == self._inode
            except FileNotFoundError:
                same = False
            if not same:  # rebuilt by another process: this one is unlinked
                self._drop()
                conn = None
        if conn is None:
            conn = self._conn = self._open()
            self._closer = weakref.finalize(self, conn.close)  # not left to the collector
        return conn

    def _open(self) -> sqlite3.Connection:
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # not world-readable
        conn = sqlite3.connect(
            self.path, timeout=OPEN_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            self._inode = os.stat(self.path).st_ino
            self._inode_checked = time.monotonic()
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = OFF")  # no fsync: a crash of the OS may corrupt it
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                    if version != SCHEMA:  # else another process made it meanwhile
                        if version != 0 or tables:
                            raise _Stale(f"schema version {version}, this release writes {SCHEMA}")
                        for statement in _CREATE:
                            conn.execute(statement)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
            else:  # made by a release before the ``hole`` table
                conn.execute(_CREATE_HOLE)
            cutoff = self._now() - _DAY  # budgets idle for a day (a random test port's)
            conn.execute(
                "DELETE FROM budget WHERE stats_until < ? AND next < ? AND gate < ?",
                (cutoff + _DAY, cutoff, cutoff),
            )
            conn.execute("DELETE FROM hole WHERE slot < ?", (cutoff,))
            conn.execute(f"PRAGMA busy_timeout = {round(BUSY_TIMEOUT * 1000)}")  # admissions
        except BaseException:
            conn.close()
            raise
        return conn

    def _drop(self) -> None:
        if self._closer is not None:
            self._closer.detach()
            self._closer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _rebuild(self, reason: BaseException) -> None:
        """Replace a stale or corrupt file by an empty store (once, whoever finds it)."""
        self._drop()
        with _exclusive(self.path.with_name("budgets.lock")):
            with contextlib.suppress(sqlite3.DatabaseError, _Stale, OSError):
                self._drop()
                conn = self._conn = self._open()  # rebuilt by another process meanwhile?
                self._closer = weakref.finalize(self, conn.close)
                conn.execute("SELECT count(*) FROM budget").fetchone()
                conn.execute("SELECT count(*) FROM debt").fetchone()
                return
            self._drop()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            conn = self._conn = self._open()
            self._closer = weakref.finalize(self, conn.close)
        self.rebuilt += 1
        log.warning(
            "the host's rate budget store %s was %s: rebuilt empty",
            self.path,
            _describe(reason),
        )


def _in_transaction(
    conn: sqlite3.Connection, name: str, now: Callable[[], int], run: Callable[[_Txn], T]
) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:  # the time is read with the lock held: no process has written a later one
        result = run(_Txn(conn, name, now()))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return result


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _damaged(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    if name in _CORRUPT:
        return True
    text = str(exc)
    return "no such table" in text or "no such column" in text or "malformed" in text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Stale):
        return f"stale ({exc})"
    name = getattr(exc, "sqlite_errorname", "") or type(exc).__name__
    return f"{'corrupt' if _damaged(exc) else 'not usable'} ({name}: {exc})"


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` of ``path`` (nothing where there is no ``fcntl``)."""
    if sys.platform == "win32":  # pragma: no cover
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _limit(max_wait: float | None) -> int:
    return -1 if max_wait is None else max(0, round(max_wait * _MICRO))
