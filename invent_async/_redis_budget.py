"""A rate budget kept on a Redis-protocol server (Redis, Valkey), shared by every process.

:class:`RedisBudget` is the fleet-wide counterpart of the governor's local pacing: the same
GCRA ("next free send time"), done atomically by one Lua script that reads the **server's**
clock (``TIME``), so processes on hosts with skewed clocks still share one budget. The 429
cool-down is a key of its own: one process's ``Retry-After`` holds back every process.

Interactive calls may overtake booked bulk work up to a share of the rate (the lanes of
``RateLimit.interactive_share``): see :data:`_RESERVE` and :data:`_CHECK`.

This module is the primitive only: reserve a slot, check it right before sending, give back
a slot that will not be used (:data:`_GIVE_BACK`), close the shared gate, read the stats.
The fleet governor (``_fleet``) sleeps until a slot, checks it, and falls back to a local
budget when the server does not answer. Needs the ``redis`` extra
(redis-py's asyncio client), imported on first use.

Keys, for a budget ``name``: ``invent:{name}:next``, ``:gate``, ``:express``, ``:debt``,
``:bulk``, ``:stats``, ``:epoch`` and ``:given`` (see :data:`_PRELUDE`); the braces make them
one hash slot on a cluster. Each expires once it is in the past, so an idle budget leaves
only its stats.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import TYPE_CHECKING, Final

import attrs

from ._exceptions import InventError
from ._limits import DEFAULT_REDIS_TIMEOUT, FleetStats

if TYPE_CHECKING:  # pragma: no cover - types only
    import redis.asyncio

__all__ = [
    "Gate",
    "RedisBudget",
    "RedisUnavailableError",
    "Reservation",
    "Verdict",
]

MAX_CONNECTIONS: Final = 32
"""Connections per budget (per event loop); more requests at once wait for one."""

_PRELUDE: Final = """
local REFUSED, GO, NOT_YET, REBOOKED = 0, 1, 2, 3
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function num(key) return tonumber(redis.call('GET', key) or '0') end
local function put(key, value, extra)
  redis.call('SET', key, string.format('%d', value), 'PX',
             math.floor(math.max(value - now, 0) / 1000) + math.floor((extra or 0) / 1000) + 1000)
end
local function count(field)
  redis.call('HINCRBY', KEYS[6], field, 1)
  redis.call('PEXPIRE', KEYS[6], 86400000)
end
local function epoch() return tonumber(redis.call('GET', KEYS[7]) or '0') end
local function due(slot) if slot > now then return NOT_YET end return GO end
local function book(interval, tau, max_wait, bulk, gate)
  local slot = math.max(now - tau, num(KEYS[1]), gate)
  if max_wait >= 0 and slot - now > max_wait then return nil, slot end
  put(KEYS[1], slot + interval, tau)
  if bulk then put(KEYS[5], slot) end
  return true, slot
end
"""
"""Shared by every script: the verdicts (named as in :class:`Verdict`, with the same numbers)
and the keys. KEYS: 1 ``next`` (the queue's next free slot), 2 ``gate`` (end of the
cool-down), 3 ``express`` (the interactive lane's next free slot), 4 ``debt`` (a sorted set
of the slots express calls took, not yet given up by their bulk request), 5 ``bulk`` (the
latest slot booked by bulk work), 6 ``stats`` (a hash of counters), 7 ``epoch`` (bumped by
each reopen: slots booked before it are booked again), 8 ``given`` (a sorted set of the
tickets whose slot was given back, scored by when they are forgotten). Times are server
microseconds.
``next`` lives ``tau`` longer than its value (until then it still holds the bucket back); the
other keys expire once they are in the past, the stats a day after their last change, the
epoch never."""

_RESERVE: Final = (
    _PRELUDE
    + """
local interval, tau, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bulk, express = ARGV[4] == '1', tonumber(ARGV[5])
local gate = num(KEYS[2])
local queue = math.max(now - tau, num(KEYS[1]), gate)
if not bulk and express > 0 and queue > now and num(KEYS[5]) > now then
  local lane = math.max(now, num(KEYS[3]), gate)
  local back = math.floor((queue - lane) / interval)
  local slot = queue - back * interval
  if slot <= now then
    back = back - 1
    slot = slot + interval
  end
  if back >= 1 and slot <= num(KEYS[5]) then
    if max_wait >= 0 and slot - now > max_wait then return {REFUSED, slot, now, gate, epoch()} end
    put(KEYS[3], lane + express)
    redis.call('ZADD', KEYS[4], slot, slot)
    redis.call('PEXPIRE', KEYS[4], math.floor((queue - now) / 1000) + 1000)
    count('acquired')
    count('express')
    return {due(slot), slot, now, gate, epoch()}
  end
end
local ok, slot = book(interval, tau, max_wait, bulk, gate)
if not ok then return {REFUSED, slot, now, gate, epoch()} end
count('acquired')
return {due(slot), slot, now, gate, epoch()}
"""
)
"""GCRA: book ``slot = max(now - tau, next, gate_end)`` and move ``next`` one interval on.

ARGV: interval, tau (``(burst - 1) * interval``), the longest acceptable wait (negative:
any), in microseconds; the lane (``1`` bulk, ``0`` interactive) and the interactive lane's
interval (0: no lanes). While bulk bookings are queued ahead, an interactive request whose
lane has a slot before the queue's end takes an express slot: the first booked slot (they
run one interval apart up to the queue's end) at or after its lane's slot that is not due
yet, noted in ``debt``. The bulk request booked there gives it up when it is due
(:data:`_CHECK`) and books again at the queue's end, so the total stays the budget's and the
express call goes no earlier than that slot allows. Returns ``{verdict, slot, now,
gate_end, epoch}``: GO (the slot is due), NOT_YET (it is ahead: sleep, then :data:`_CHECK`),
or REFUSED (it is past the wait asked for; nothing booked, nothing changed).

This is the express-lane rule of :meth:`invent_async._pacing.Schedule.overtakes` on the
server's store, with these differences (``tests/test_lane_conformance.py`` runs the scenarios
where both agree): the express slot is a slot on the queue's grid at least one interval
before the queue's end and no later than the latest bulk booking; it does not move the
queue's end (the bulk request whose slot it is, or a later one, books again at the end when
it is due, so bulk work does not keep its order and calls queued behind it go earlier than
in the process); and it may be a slot an interactive request booked, which that request does
not give up (only bulk requests read ``debt``): then two requests go at that slot, and until
the bulk request that gives up one is due, that window holds one request more than the
GCRA's ``burst + W * rate``.
"""

_CHECK: Final = (
    _PRELUDE
    + """
local slot, interval, tau = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max_wait, bulk, booked_in = tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local gate = num(KEYS[2])
local again = gate > slot or epoch() ~= booked_in
if not again and bulk and now >= slot then
  local taken = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', slot, 'LIMIT', 0, 1)
  if taken[1] then
    redis.call('ZREM', KEYS[4], taken[1])
    again = true
  end
end
if again then
  local ok, booked = book(interval, tau, max_wait, bulk, gate)
  if not ok then return {REFUSED, booked, now, gate, epoch()} end
  return {REBOOKED, booked, now, gate, epoch()}
end
if now < slot then return {NOT_YET, slot, now, gate, booked_in} end
return {GO, slot, now, gate, booked_in}
"""
)
"""Before a request that waited for its slot is sent (and every few seconds while it
waits): may it go?

ARGV: the slot, interval, tau, the longest acceptable wait, the lane (as for
:data:`_RESERVE`) and the epoch it was booked in. Returns ``{verdict, slot, now, gate_end,
epoch}``: GO; NOT_YET (the process's clock ran ahead of the server's, or it checks while
it waits); REBOOKED at ``slot`` (a cool-down closed over the slot; a reopen since it was
booked; or, for bulk work that is due, an express call took this slot or one before it);
REFUSED: that new slot is past the wait asked for (nothing booked).
"""

_GIVE_BACK: Final = (
    _PRELUDE
    + """
local slot, interval, booked_in = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ticket = ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
if redis.call('ZADD', KEYS[8], 'NX', now + 600000000, ticket) == 0 then return {0, now} end
redis.call('PEXPIRE', KEYS[8], 600000)
local gate = num(KEYS[2])
if epoch() ~= booked_in or gate > slot then return {0, now} end
if redis.call('ZREM', KEYS[4], slot) == 1 then
  count('given_back')
  return {1, now}
end
local nxt = num(KEYS[1])
local back = math.max(nxt - interval, now, gate)
if back >= nxt then return {0, now} end
redis.call('SET', KEYS[1], string.format('%d', back), 'KEEPTTL')
count('given_back')
return {1, now}
"""
)
"""A request will not be sent at its slot after all: give the slot back to the budget.

ARGV: the slot, the interval, the epoch it was booked in and the ticket (a token unique to
the request). The queue's next free slot moves back one interval, never before the server's
``now`` nor into a cool-down, so the next request to book takes it instead of a later one;
nothing moves when a reopen or a cool-down laid the queue out again since the slot was
booked. An express slot still owed by a bulk request (``debt``) is given back by cancelling
the debt: the bulk request keeps its slot. Each ticket is given back once (``given``
remembers it ten minutes), so a command retried on a new connection does not give back two
slots. Returns ``{1, now}`` when a slot went back, ``{0, now}`` otherwise.
"""

_COOL_DOWN: Final = (
    _PRELUDE
    + """
local gate = math.max(now + tonumber(ARGV[1]), num(KEYS[2]))
put(KEYS[2], gate)
if num(KEYS[1]) < gate then put(KEYS[1], gate, tonumber(ARGV[2])) end
count('rate_limited')
return {gate, now}
"""
)
"""Close the gate for ARGV[1] microseconds (never shortening it) and move ``next`` past it
(ARGV[2]: tau), so that requests resume one interval apart after the gate, not as a burst."""

_GATE: Final = (
    _PRELUDE
    + """
return {num(KEYS[2]), now}
"""
)

_REOPEN: Final = (
    _PRELUDE
    + """
local gate = num(KEYS[2])
if gate <= now then return {gate, now} end
redis.call('DEL', KEYS[2])
redis.call('INCR', KEYS[7])
if num(KEYS[1]) > now then put(KEYS[1], now, tonumber(ARGV[1])) end
return {gate, now}
"""
)
"""Open a closed gate now (ARGV[1]: tau): the queue starts again from now, and every slot
booked before (for after the gate) is booked again at its next check, in check order."""

_STATS: Final = (
    _PRELUDE
    + """
local h = redis.call('HMGET', KEYS[6], 'acquired', 'express', 'rate_limited', 'given_back')
return {tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0'),
        num(KEYS[2]), num(KEYS[1]), now, tonumber(h[4] or '0')}
"""
)

_MICRO: Final = 1_000_000


class RedisUnavailableError(InventError):
    """The budget's server did not answer in time, or not at all, or refused the operation
    (out of memory, a read-only replica, ...): the governor falls back."""


class Verdict(IntEnum):
    """What a script says of a slot (the numbers the Lua scripts return, named alike in
    :data:`_PRELUDE`)."""

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

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS); the password, if any, is
            never shown in a repr or an error.
        name: The budget's name: every process using the same server and name shares it.
        per_minute: The budget's rate.
        burst: Requests that may go at once after an idle time.
        interactive_share: Share of the rate interactive calls may take ahead of booked
            bulk work (0: one queue).
        timeout: Seconds an operation may take before :class:`RedisUnavailableError`.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        per_minute: float,
        burst: int = 1,
        interactive_share: float = 0.0,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
    ) -> None:
        if not (isinstance(per_minute, int | float) and math.isfinite(per_minute)) or not (
            per_minute > 0
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
        self._interval = round(60 * _MICRO / per_minute)
        self._tau = (burst - 1) * self._interval
        self._express = round(self._interval / interactive_share) if interactive_share else 0
        self._keys = tuple(
            f"invent:{{{name}}}:{key}"
            for key in ("next", "gate", "express", "debt", "bulk", "stats", "epoch", "given")
        )
        # A blocking pool: many requests of one loop at once wait (up to the timeout) for a
        # connection, instead of failing as the default pool does past max_connections. A
        # connection the server dropped (it restarted) fails its next command: that is tried
        # once more, at once, on a new connection. Nothing else is retried, so an operation
        # takes at most about ``timeout``.
        self._pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=redis.asyncio.retry.Retry(
                redis.backoff.NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)
            ),
            retry_on_error=[redis.exceptions.ConnectionError],
        )
        self._client: redis.asyncio.Redis = redis.asyncio.Redis(connection_pool=self._pool)
        self._scripts = {
            "reserve": self._client.register_script(_RESERVE),
            "check": self._client.register_script(_CHECK),
            "cool_down": self._client.register_script(_COOL_DOWN),
            "gate": self._client.register_script(_GATE),
            "reopen": self._client.register_script(_REOPEN),
            "give_back": self._client.register_script(_GIVE_BACK),
            "stats": self._client.register_script(_STATS),
        }

    def __repr__(self) -> str:
        return f"<RedisBudget {self.name!r} interval={self._interval / _MICRO:g}s>"

    async def _run(self, script: str, *args: int) -> list[int]:
        import redis.exceptions

        try:
            result = await self._scripts[script](keys=self._keys, args=args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            error = RedisUnavailableError(
                f"the rate budget's server did not answer: {type(exc).__name__}"
            )
        except redis.exceptions.RedisError as exc:  # out of memory, read-only replica, ACL...
            error = RedisUnavailableError(
                f"the rate budget's server refused the operation: {type(exc).__name__}"
            )
        else:
            return [int(value) for value in result]
        raise error  # outside the except block: redis-py's error stays unreachable

    async def reserve(self, max_wait: float | None = None, *, bulk: bool = False) -> Reservation:
        """Reserve the next send slot of the budget (unless it is more than ``max_wait`` away).

        Args:
            max_wait: The longest acceptable wait in seconds (None: any).
            bulk: The request is bulk work (interactive ones may overtake it).

        Raises:
            RedisUnavailableError: the server did not answer within the timeout.
        """
        answer = await self._run(
            "reserve", self._interval, self._tau, _limit(max_wait), int(bulk), self._express
        )
        return _reservation(answer)

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
        answer = await self._run(
            "check",
            slot,
            self._interval,
            self._tau,
            _limit(max_wait),
            int(bulk),
            reservation.epoch,
        )
        return _reservation(answer)

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

    async def give_back(self, reservation: Reservation, ticket: int) -> bool:
        """The request that booked ``reservation`` will not be sent: give its slot back
        (see :data:`_GIVE_BACK`). ``ticket`` names the request: a second call with the same
        ticket gives nothing back. True when a slot went back."""
        slot = round(reservation.slot * _MICRO)
        given, _ = await self._run("give_back", slot, self._interval, reservation.epoch, ticket)
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

    async def aclose(self) -> None:
        """Close the connections to the server."""
        await self._client.aclose()
        await self._pool.disconnect()


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
