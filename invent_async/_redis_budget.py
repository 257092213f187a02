"""A rate budget kept on a Redis-protocol server (Redis, Valkey), shared by every process.

:class:`RedisBudget` is the fleet-wide counterpart of the governor's local pacing: the same
GCRA ("next free send time"), done atomically by Lua scripts (``_redis_scripts``, the text of
each) that read the **server's** clock (``TIME``), so processes on hosts with skewed clocks
still share one budget. The 429 cool-down is a key of its own: one process's ``Retry-After``
holds back every process.

Interactive calls may overtake booked bulk work up to a share of the rate (the lanes of
``RateLimit.interactive_share``): see ``_redis_scripts.SLOTS``.

The budget's settings are stored with it, and every process of the fleet is a member with an
expiry (its host and pid), renewed by its admissions: a process asking for other settings
gets :class:`~invent_async.BudgetSettingsError`, one may join the stored settings, and the
count of live members is known to each (the fleet's share of the rate while Redis is down).
A process's admissions go to the server in batches, one script call at a time (see
``_redis_scripts.ADMIT``), over a pool of :data:`MAX_CONNECTIONS` connections that waits
when they are all busy and closes the idle ones after :data:`IDLE_CLOSE` seconds without an
operation.

This module is the primitive only: reserve a slot, check it right before sending, give back
a slot that will not be used (``_redis_scripts.GIVE_BACK``), close the shared gate, read the
stats, leave. The fleet governor (``_fleet``) sleeps until a slot, checks it, and falls back
to a local budget when the server does not answer. Needs the ``redis`` extra (redis-py's
asyncio client), imported on first use.

Keys, for a budget ``name``: ``invent:{name}:next``, ``:gate``, ``:express``, ``:debt``,
``:bulk``, ``:stats``, ``:epoch``, ``:settings``, ``:members``, ``:given`` and ``:holes``
(what each holds: ``_redis_scripts.PRELUDE``); the braces make them one hash slot on a
cluster. Each expires once it is in the past (the settings and members :data:`MEMBER_TTL`
after the latest admission, a ticket given back after ten minutes), so an idle budget leaves
only its stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import os
import socket
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final

import attrs

from . import _redis_scripts as scripts
from ._exceptions import (
    BudgetServerConfigError,
    BudgetSettingsError,
    InventError,
    RedisUnavailableError,
)
from ._limits import DEFAULT_REDIS_TIMEOUT, FleetStats
from ._secret import redact_url

if TYPE_CHECKING:  # pragma: no cover - types only
    import redis.asyncio

__all__ = [
    "IDLE_CLOSE",
    "MAX_BATCH",
    "MAX_CONNECTIONS",
    "MEMBER_TTL",
    "Gate",
    "RedisBudget",
    "RedisUnavailableError",
    "Reservation",
    "Verdict",
    "member_name",
    "state_lost",
]

MAX_CONNECTIONS: Final = 4
"""Connections per budget (per event loop); more operations at once wait for one (however
long: that is back-pressure, not an outage). The admissions of a loop go in one batch at a
time, so they use one; cool-downs, reopens, the stats and a leave use the others."""
MAX_BATCH: Final = 256
"""Most admissions in one script call (the server runs a script alone: ~2 ms for a full one)."""
LATE: Final = 2.0
LATE_TRIES: Final = 3
"""A command whose timeout fired more than ``LATE`` times ``timeout`` after it was sent was
held up by this process's own event loop (busy with thousands of calls starting at once,
say), not (for all it knows) by the server, whose answer may be waiting unread: it is sent
again, up to ``LATE_TRIES`` times in all, before the server counts as unreachable. An
admission sent twice may book a slot that goes unused (never one too many)."""
IDLE_CLOSE: Final = 60.0
"""Seconds without an operation after which a budget closes its idle connections (the next
operation opens one again)."""
MEMBER_TTL: Final = 60.0
"""Seconds a process counts as a member of its budget after its latest admission (one that
closes its client leaves at once)."""

_MICRO: Final = 1_000_000


_FIXES: Final = {
    "auth": (
        "Put the server's password (and user, for an ACL user) in redis_url or "
        "INVENT_REDIS_URL: redis://:PASSWORD@host:6379/0 or redis://USER:PASSWORD@host:6379/0"
    ),
    "permission": (
        "Let the Redis user run the budget's commands on its keys: ACL SETUSER USER "
        "+eval +evalsha +script ~invent:*"
    ),
    "command": (
        "The budget needs a server that runs Lua scripts (Redis or Valkey with scripting), "
        "reached directly or through a proxy that passes EVALSHA on"
    ),
    "tls": (
        "It answers plain Redis, not TLS: use redis:// instead of rediss:// (or turn TLS on "
        "at the server)"
    ),
}


def _problem_of(exc: BaseException | None) -> tuple[str, str]:
    """The configuration problem ``exc`` is (``_FIXES``' key) and what to say of it: the
    server's own words (it never repeats a password), else the error's type."""
    if exc is None:
        return "tls", "a TLS connection to it failed"
    import redis.exceptions

    words = str(exc).strip() or type(exc).__name__
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return "permission", f"the server refused a command ({words})"
    if isinstance(exc, redis.exceptions.ResponseError) and not isinstance(
        exc, redis.exceptions.AuthenticationWrongNumberOfArgsError
    ):
        return "command", f"the server does not know a command ({words})"
    return "auth", f"the server refused this process's credentials ({words})"


def _unknown_command(exc: BaseException) -> bool:
    """Whether the server answered that it does not know the command (no scripting)."""
    import redis.exceptions

    return isinstance(exc, redis.exceptions.ResponseError) and str(exc).lower().startswith(
        ("unknown command", "err unknown command")
    )


class Verdict(IntEnum):
    """What a script says of a slot (the numbers the Lua scripts return, named alike in
    ``_redis_scripts.PRELUDE``)."""

    REFUSED = 0
    """The slot is further away than the wait asked for: nothing was booked."""
    GO = 1
    """The slot is due: send now."""
    NOT_YET = 2
    """The slot is ahead: sleep until it (at most ``RECHECK``), then check it."""
    REBOOKED = 3
    """The slot was given up and a new one booked (a cool-down closed over it, a reopen, or
    an express call took it): go when the new one is due."""


@attrs.frozen(kw_only=True)
class Reservation:
    """The answer to :meth:`RedisBudget.reserve` and :meth:`RedisBudget.check`, in seconds
    of the server's clock.

    Attributes:
        verdict: What the script says of the slot (see :class:`Verdict`).
        slot: When the request may be sent (after :meth:`~RedisBudget.check`: perhaps a new
            slot, booked again).
        now: The server's time when it answered.
        gate_end: When the shared cool-down gate opens (in the past, or 0, when open).
        epoch: The budget's reopen count when the slot was booked (a reopen since makes
            :meth:`~RedisBudget.check` book it again).
    """

    verdict: Verdict
    slot: float
    now: float
    gate_end: float = 0.0
    epoch: int = 0

    @property
    def admitted(self) -> bool:
        """False when the wait would have been longer than asked for (nothing was reserved
        then)."""
        return self.verdict is not Verdict.REFUSED

    @property
    def wait(self) -> float:
        """Seconds from the answer until the slot (0 when it may go at once)."""
        return max(0.0, self.slot - self.now)


@attrs.frozen(kw_only=True)
class Gate:
    """The shared cool-down gate, in seconds of the server's clock.

    Attributes:
        end: When it opens (in the past, or 0, when it is open).
        now: The server's time when it answered.
    """

    end: float
    now: float

    @property
    def remaining(self) -> float:
        """Seconds until it opens (0 when it is open)."""
        return max(0.0, self.end - self.now)


class RedisBudget:
    """One named budget on a Redis-protocol server: GCRA pacing and a shared cool-down gate.

    The admissions (:meth:`reserve`, :meth:`check`) of one event loop are sent together:
    the ones asked for while a batch is on its way go in the next one (at most
    :data:`MAX_BATCH` in a script call), so a process makes about one round trip at a time
    whatever its concurrency, and needs few connections (:data:`MAX_CONNECTIONS`). Each batch
    also checks the budget's stored settings and renews this process's membership.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS); the password, if any, is
            never shown in a repr or an error.
        name: The budget's name: every process using the same server and name shares it.
        per_minute: The budget's rate (None: join the settings stored on the server).
        burst: Requests that may go at once after an idle time.
        interactive_share: Share of the rate interactive calls may take ahead of booked
            bulk work (0: one queue).
        timeout: Seconds an operation may take before :class:`RedisUnavailableError` (the
            wait for a free connection of the pool is not counted: that is this process's
            own back-pressure, not an outage).
        settings: The settings as stored and compared (by default: the three above);
            processes asking for other ones get :class:`~invent_async.BudgetSettingsError`.
        member: This process's name among the budget's members (default ``host/pid``).
        member_ttl: Seconds a member counts after its latest admission.
        idle_close: Seconds without an operation after which the idle connections close.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        per_minute: float | None,
        burst: int = 1,
        interactive_share: float = 0.0,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        settings: str | None = None,
        member: str | None = None,
        member_ttl: float = MEMBER_TTL,
        idle_close: float = IDLE_CLOSE,
    ) -> None:
        if per_minute is not None and (
            not (isinstance(per_minute, int | float) and math.isfinite(per_minute))
            or not per_minute > 0
        ):
            raise ValueError(f"per_minute must be a positive number, got {per_minute!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        if not name or any(char in name for char in "{}\r\n "):
            raise ValueError(f"name must be non-empty, without braces or spaces, got {name!r}")
        if not (isinstance(interactive_share, int | float) and 0 <= interactive_share < 1):
            raise ValueError(
                f"interactive_share must be a number from 0 to below 1, got {interactive_share!r}"
            )
        import redis.asyncio  # the optional extra: only a Redis budget needs it
        import redis.asyncio.retry
        import redis.backoff
        import redis.exceptions

        self.name = name
        self._shown = redact_url(url) or ""
        self._tls = url.lower().startswith("rediss:")
        if per_minute is None:
            self._interval = self._tau = self._express = 0
            self._asked = ""
        else:
            self._interval = round(60 * _MICRO / per_minute)
            self._tau = (burst - 1) * self._interval
            self._express = round(self._interval / interactive_share) if interactive_share else 0
            self._asked = settings or (
                f"interval={self._interval} tau={self._tau} express={self._express}"
            )
        self.member = member_name() if member is None else member
        self.host = self.member.partition("/")[0]
        self._ttl = round(member_ttl * _MICRO)
        self.settings: str | None = None
        """The settings stored on the server, once an admission was answered."""
        self.members = 0
        """Live members of the budget (every process's latest admission within
        ``member_ttl``) at the latest answer; 0 before one."""
        self.members_on_host = 0
        """Of those, the ones on this host (named ``host/...``)."""
        self._keys = tuple(
            f"invent:{{{name}}}:{key}"
            for key in (
                "next",
                "gate",
                "express",
                "debt",
                "bulk",
                "stats",
                "epoch",
                "settings",
                "members",
                "given",
                "holes",
            )
        )
        # A blocking pool of a few connections: an operation waits for a free one however
        # long that takes (back-pressure of this process, never an outage: DESIGN pitfall
        # 13); only the command itself is bounded by ``timeout``. A connection the server
        # dropped (it restarted) fails its next command: that is tried once more, at once, on
        # a new connection. Nothing else is retried, so a command takes at most about
        # ``timeout``.
        self._pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=None,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=redis.asyncio.retry.Retry(
                redis.backoff.NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)
            ),
            retry_on_error=[redis.exceptions.ConnectionError],
        )
        self._client: redis.asyncio.Redis = redis.asyncio.Redis(connection_pool=self._pool)
        self._scripts = {
            "admit": self._client.register_script(scripts.ADMIT),
            "leave": self._client.register_script(scripts.LEAVE),
            "cool_down": self._client.register_script(scripts.COOL_DOWN),
            "gate": self._client.register_script(scripts.GATE),
            "reopen": self._client.register_script(scripts.REOPEN),
            "give_back": self._client.register_script(scripts.GIVE_BACK),
            "stats": self._client.register_script(scripts.STATS),
        }
        self._pending: list[tuple[tuple[int, ...], asyncio.Future[Reservation]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._busy = False  # a batch is on its way (sent by a caller, or by the sender task)
        self._joined = False
        self._idle_close = idle_close
        self._last_use = 0.0
        self._running = 0  # operations on their way
        self._quiet: asyncio.Event | None = None  # set when none is (made by the first)
        self._timeout = timeout
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing_idle: asyncio.Task[None] | None = None
        self.batches = 0
        """Script calls that carried admissions (for the benchmarks)."""

    def __repr__(self) -> str:
        return f"<RedisBudget {self.name!r} interval={self._interval / _MICRO:g}s>"

    async def _call(self, script: str, *args: int | str) -> list[Any]:
        import redis.exceptions

        loop = asyncio.get_running_loop()
        if self._quiet is None:
            self._quiet = asyncio.Event()
        self._running += 1
        self._quiet.clear()
        error: InventError
        try:
            for attempt in range(1, LATE_TRIES + 1):
                started = loop.time()
                try:
                    return list(await self._scripts[script](keys=self._keys, args=args))
                except redis.exceptions.TimeoutError as exc:
                    late = loop.time() - started > LATE * self._timeout
                    if late and attempt < LATE_TRIES:
                        continue  # the loop was busy when the answer came: ask again
                    error = RedisUnavailableError(
                        f"the rate budget's server did not answer: {type(exc).__name__}"
                    )
                except (
                    redis.exceptions.AuthenticationError,  # a ConnectionError: before it
                    redis.exceptions.AuthenticationWrongNumberOfArgsError,
                    redis.exceptions.NoPermissionError,
                ) as exc:
                    error = self._config_error(exc)
                except (redis.exceptions.ConnectionError, OSError) as exc:
                    error = RedisUnavailableError(
                        f"the rate budget's server did not answer: {type(exc).__name__}"
                    )
                except redis.exceptions.RedisError as exc:  # out of memory, read-only...
                    if _unknown_command(exc):
                        error = self._config_error(exc)
                    else:
                        error = RedisUnavailableError(
                            f"the rate budget's server refused the operation: {type(exc).__name__}"
                        )
                break
            tls_to_plain = self._tls and isinstance(error, RedisUnavailableError)
            if tls_to_plain and await self._speaks_plain_redis():
                error = self._config_error(None)
        finally:
            self._running -= 1
            if not self._running:
                self._quiet.set()
            self._last_use = loop.time()
            if self._idle_timer is None:
                self._idle_timer = loop.call_later(self._idle_close, self._idle, loop)
        raise error  # outside the except block: redis-py's error stays unreachable

    def _config_error(self, exc: BaseException | None) -> BudgetServerConfigError:
        """The configuration error that ``exc`` (None: TLS to a plain server) tells of."""
        problem, told = _problem_of(exc)
        return BudgetServerConfigError(
            f"the shared rate budget {self.name!r} cannot use its Redis server ({self._shown}):"
            f" {told}. {_FIXES[problem]}. This is a configuration error, not an outage: no "
            "call is sent (nor paced on a fallback) until it is fixed",
            budget=self.name,
            problem=problem,
        )

    async def _speaks_plain_redis(self) -> bool:
        """After ``rediss://`` failed: whether the server answers a plain ``PING`` (it speaks
        no TLS at all), within the budget's timeout."""
        kwargs = self._pool.connection_kwargs
        host, port = kwargs.get("host"), kwargs.get("port")
        if not isinstance(host, str) or not isinstance(port, int):
            return False
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(b"PING\r\n")
                    await writer.drain()
                    line = await reader.readline()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (OSError, TimeoutError):
            return False
        return line[:1] in (b"+", b"-")  # PONG, or an error such as NOAUTH: plain RESP

    async def _run(self, script: str, *args: int | str) -> list[int]:
        return [int(value) for value in await self._call(script, *args)]

    def _idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the idle connections once no operation ran for ``idle_close`` seconds."""
        self._idle_timer = None
        quiet = loop.time() - self._last_use
        if self._running or quiet < self._idle_close:  # used meanwhile: look again then
            delay = self._idle_close - quiet if not self._running else self._idle_close
            self._idle_timer = loop.call_later(max(delay, 0.0), self._idle, loop)
            return
        closing = self._closing_idle = loop.create_task(self._pool.disconnect(False))
        closing.add_done_callback(_retrieve)

    # ------------------------------------------------------------------ admissions, batched

    async def reserve(self, max_wait: float | None = None, *, bulk: bool = False) -> Reservation:
        """Reserve the next send slot of the budget (unless it is more than ``max_wait`` away).

        Args:
            max_wait: The longest acceptable wait in seconds (None: any).
            bulk: The request is bulk work (interactive ones may overtake it).

        Raises:
            RedisUnavailableError: the server did not answer within the timeout.
            BudgetSettingsError: the budget holds other settings (or none to join).
        """
        return await self._admit((0, _limit(max_wait), int(bulk), 0, 0))

    async def check(
        self, reservation: Reservation, max_wait: float | None = None, *, bulk: bool = False
    ) -> Reservation:
        """Right before sending at a reserved slot: the slot to go at now.

        The same slot when it may go (``slot <= now``) or the server's clock is not there
        yet (a process clock running fast); a new one, booked at the queue's end, when a
        cool-down closed over the slot or (for bulk work that is due) this slot or one before
        it went to an interactive call; not admitted when that new slot is more than
        ``max_wait`` away.
        """
        slot = round(reservation.slot * _MICRO)
        return await self._admit((1, _limit(max_wait), int(bulk), slot, reservation.epoch))

    async def _admit(self, admission: tuple[int, ...]) -> Reservation:
        """``admission``'s answer: sent at once, by this caller, when no batch is on its way;
        else in the next batch (sent by a task once this one is back)."""
        if not self._busy:
            self._busy = True
            try:
                [answer] = await self._send_batch([admission])
            finally:
                self._busy = False
                self._send_pending()
            return answer
        waiter: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
        self._pending.append((admission, waiter))
        return await waiter

    def _send_pending(self) -> None:
        """Start the task sending the admissions that queued meanwhile, if any."""
        if self._pending and not self._busy:
            self._busy = True
            self._sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        """Send the queued admissions, one batch after the other, until none is left."""
        try:
            await self._send_all()
        finally:
            self._busy = False

    async def _send_all(self) -> None:
        while self._pending:
            batch = [item for item in self._pending[:MAX_BATCH] if not item[1].done()]
            del self._pending[:MAX_BATCH]
            if not batch:
                continue
            try:
                answers = await self._send_batch([admission for admission, _ in batch])
            except asyncio.CancelledError:  # aclose: the waiters are told so
                for _, waiter in batch + self._pending:
                    waiter.cancel()
                self._pending.clear()
                raise
            except Exception as exc:  # each waiter raises an error of its own
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(
                            copy.copy(exc) if isinstance(exc, InventError) else exc
                        )
                continue
            for (_, waiter), answer in zip(batch, answers, strict=True):
                if not waiter.done():
                    waiter.set_result(answer)

    async def _send_batch(self, batch: list[tuple[int, ...]]) -> list[Reservation]:
        args: list[int | str] = [
            self._asked,
            self.member,
            self._ttl,
            self._interval,
            self._tau,
            self._express,
            self.host + "/",
        ]
        for admission in batch:
            args.extend(admission)
        self.batches += 1
        answer = await self._call("admit", *args)
        ok, stored = int(answer[0]), _text(answer[1])
        if not ok:
            raise self._settings_error(stored or None)
        self._joined = True
        self.settings, self.members, self.members_on_host = stored, int(answer[2]), int(answer[3])
        self._interval, self._tau, self._express = (int(value) for value in answer[4:7])
        values = [int(value) for value in answer[7:]]
        return [_reservation(values[k : k + 5]) for k in range(0, len(values), 5)]

    def _settings_error(self, stored: str | None) -> BudgetSettingsError:
        asked = self._asked or None
        if stored is None:
            message = (
                f"the rate budget {self.name!r} on Redis has no settings to join (no process "
                "uses it now): pass per_minute (the CLI: --per-minute) to start it"
            )
        else:
            message = (
                f"the rate budget {self.name!r} on Redis is in use with other settings "
                f"({settings_differences(stored, asked or '')}; stored: {stored}; this process "
                f"asks for: {asked}). Every process of a budget must ask for the same settings: "
                "pass the same RateLimit, join the stored ones (RateLimit(per_minute=None, "
                "redis_url=...), the CLI without --per-minute), or name another budget. To "
                "change them, stop every process of the budget: the settings go with the last "
                f"one (or {self._ttl / _MICRO:g}s after the last call of one that was killed)"
            )
        return BudgetSettingsError(message, budget=self.name, stored=stored, asked=asked)

    # ------------------------------------------------------------------ the rest

    async def stats(self) -> FleetStats:
        """The budget's counters as every process sees them."""
        acquired, express, rate_limited, gate, next_slot, now, given = await self._run("stats")
        return FleetStats(
            acquired=acquired,
            express=express,
            rate_limited=rate_limited,
            cooldown_remaining=max(0.0, (gate - now) / _MICRO),
            backlog=max(0.0, (next_slot - now) / _MICRO),
            given_back=given,
        )

    async def give_back(self, reservation: Reservation, ticket: int, *, owed: bool = False) -> bool:
        """The request that booked ``reservation`` will not be sent: give its slot back
        (see ``_redis_scripts.GIVE_BACK``). ``ticket`` names the request: a second call with
        the same ticket gives nothing back. ``owed``: the request went to the fallback while
        the server did not answer (and was sent there): its slot goes back only if it is
        still ahead. True when a slot went back."""
        slot = round(reservation.slot * _MICRO)
        given, _ = await self._run(
            "give_back", slot, self._interval, reservation.epoch, ticket, int(owed)
        )
        return bool(given)

    async def cool_down(self, seconds: float) -> Gate:
        """Close the shared gate for ``seconds`` from now (a longer pause already set stays)."""
        end, now = await self._run("cool_down", max(0, round(seconds * _MICRO)), self._tau)
        return Gate(end=end / _MICRO, now=now / _MICRO)

    async def gate(self) -> Gate:
        """The shared gate as it is now."""
        end, now = await self._run("gate")
        return Gate(end=end / _MICRO, now=now / _MICRO)

    async def reopen(self) -> Gate:
        """Open the shared gate now; return it as it was (``end``: when it would have opened)."""
        end, now = await self._run("reopen", self._tau)
        return Gate(end=end / _MICRO, now=now / _MICRO)

    async def leave(self) -> int:
        """Stop counting this process among the budget's members; the members left (the
        last one takes the stored settings with it)."""
        self._joined = False
        [left] = await self._run("leave", self.member)
        return left

    async def aclose(self) -> None:
        """Leave the budget (if this process joined it; an unreachable server is not waited
        for beyond the timeout) and close the connections to the server."""
        sender = self._sender
        if sender is not None and not sender.done():
            sender.cancel()
            await asyncio.wait((sender,))
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._closing_idle is not None and not self._closing_idle.done():
            await asyncio.wait((self._closing_idle,))
        if self._running and self._quiet is not None:  # a cool-down on its way, say
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), 4 * self._timeout)
        if self._joined:
            with contextlib.suppress(RedisUnavailableError, BudgetServerConfigError):
                await self.leave()
        await self._client.aclose()
        await self._pool.disconnect()


def state_lost(before: int, after: int) -> bool:
    """Whether a budget's epoch went from ``before`` to ``after`` by a loss of the server's
    keys rather than by reopens: an epoch is born as the server's clock (microseconds) and each
    reopen adds one, so one born again after a wipe jumps by the time since the first birth
    (more than a second's worth of reopens), or back (another server's clock)."""
    return after < before or after - before > _MICRO


def member_name() -> str:
    """This process's member name: ``host/pid`` (the host's name without a slash)."""
    host = (socket.gethostname() or "localhost").replace("/", "-")
    return f"{host}/{os.getpid()}"


def settings_differences(stored: str, asked: str) -> str:
    """``"per_minute 600.0 stored, 300.0 asked"`` for each ``key=value`` that differs."""
    old, new = _pairs(stored), _pairs(asked)
    return "; ".join(
        f"{key} {old.get(key, '-')} stored, {new.get(key, '-')} asked"
        for key in dict.fromkeys([*old, *new])
        if old.get(key) != new.get(key)
    )


def _pairs(settings: str) -> dict[str, str]:
    return dict(part.partition("=")[::2] for part in settings.split())


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # closing an idle connection that failed: nothing to do


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _limit(max_wait: float | None) -> int:
    return -1 if max_wait is None else max(0, round(max_wait * _MICRO))


def _reservation(answer: list[int]) -> Reservation:
    verdict, slot, now, gate, epoch = answer
    return Reservation(
        verdict=Verdict(verdict),
        slot=slot / _MICRO,
        now=now / _MICRO,
        gate_end=gate / _MICRO,
        epoch=epoch,
    )
