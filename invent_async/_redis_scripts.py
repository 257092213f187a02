"""The Lua scripts of the rate budget on a Redis server, as text: one script per verb of
:class:`~invent_async._redis_budget.RedisBudget`, each run atomically on the server's clock.

:data:`PRELUDE` (the verdicts, the clock, the helpers, what every key holds) opens every
script; :data:`SLOTS` holds the two admissions that :data:`ADMIT` runs in batches (book a
slot, check it before sending); the others give a slot back, leave the budget, close, read or
reopen the shared gate, and read the stats. Only text lives here: the module that sends them
(``_redis_budget``) names the verdicts (:class:`~invent_async._redis_budget.Verdict`, the same
numbers as the prelude's) and turns the answers into values.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "PRELUDE",
    "SLOTS",
    "ADMIT",
    "GIVE_BACK",
    "LEAVE",
    "COOL_DOWN",
    "GATE",
    "REOPEN",
    "STATS",
]

PRELUDE: Final = """
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
local function epoch()
  local value = redis.call('GET', KEYS[7])
  if value then return tonumber(value) end
  redis.call('SET', KEYS[7], string.format('%d', now))  -- born, or born again after a wipe
  return now
end
local function due(slot) if slot > now then return NOT_YET end return GO end
local function first_hole(gate)
  local from = string.format('%d', math.max(now, gate))
  return redis.call('ZRANGEBYSCORE', KEYS[11], from, '+inf', 'LIMIT', 0, 1)[1]
end
local function book(interval, tau, max_wait, bulk, gate)
  local hole = first_hole(gate)
  if hole then
    local slot = tonumber(hole)
    if max_wait >= 0 and slot - now > max_wait then return nil, slot end
    redis.call('ZREM', KEYS[11], hole)
    if bulk and slot > num(KEYS[5]) then put(KEYS[5], slot) end
    return true, slot
  end
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
latest slot booked by bulk work), 6 ``stats`` (a hash of counters), 7 ``epoch`` (born as the
server's clock, bumped by one by each reopen: slots booked before it are booked again; a
server that lost its keys, FLUSHALL or a restart without persistence, has a new one, so the
slots booked before the loss are booked again in the fresh queue, not honoured beside it),
8 ``settings`` and 9 ``members`` (see :data:`ADMIT`), 10 ``given`` (a sorted set of the
tickets whose slot was given back, scored by when they are forgotten), 11 ``holes`` (a sorted
set of the slots given back ahead of now with later slots booked behind them, each member
and score the slot: ``book`` takes the earliest one not past nor inside a cool-down, before
the queue's end). Times are server microseconds.
``next`` lives ``tau`` longer than its value (until then it still holds the bucket back); the
other keys expire once they are in the past, the stats a day after their last change, the
epoch never."""

SLOTS: Final = """
local function reserve(interval, tau, max_wait, bulk, express)
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
    local hole = first_hole(gate)
    if hole and tonumber(hole) <= slot then back = 0 end  -- a free slot as early: booked
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
end
local function check(slot, interval, tau, max_wait, bulk, booked_in)
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
end
"""
"""The two admissions, as Lua functions of :data:`ADMIT` (times in server microseconds).

``reserve``: GCRA: book the earliest hole (a slot given back, see :data:`GIVE_BACK`) not past
nor inside a cool-down, else ``slot = max(now - tau, next, gate_end)`` and move ``next`` one
interval on, unless the slot is more than ``max_wait`` away (negative: any wait). While bulk
bookings are queued ahead, an interactive request whose lane has a slot before the queue's end
takes an express slot: the first booked slot (they run one interval apart up to the queue's
end) at or after its lane's slot that is not due yet, noted in ``debt``. The bulk request
booked there gives it up when it is due (``check``) and books again (a hole, else at the
queue's end), so the total stays the budget's and the express call goes no earlier than that
slot allows; a hole as early as that slot is booked instead (no bulk request gives one up).
``express`` is the interactive lane's interval (0: no lanes). Returns ``{verdict, slot, now,
gate_end, epoch}``: GO (the slot is due), NOT_YET (it is ahead: sleep, then ``check``), or
REFUSED (it is past the wait asked for; nothing booked, nothing changed).

This is the express-lane rule of :meth:`invent_async._pacing.Schedule.overtakes` on the
server's store, with these differences (``tests/test_lane_conformance.py`` runs the scenarios
where both agree): the express slot is a slot on the queue's grid at least one interval before
the queue's end and no later than the latest bulk booking; it does not move the queue's end
(the bulk request whose slot it is, or a later one, books again at the end when it is due, so
bulk work does not keep its order and calls queued behind it go earlier than in the process);
and it may be a slot an interactive request booked (from the queue or a hole), which that
request does not give up (only bulk requests read ``debt``): then two requests go at that slot,
and until the bulk request that gives up one is due, that window holds one request more than
the GCRA's ``burst + W * rate``.

``check``: before a request that waited for its slot is sent (and every few seconds while it
waits): may it go? Returns ``{verdict, slot, now, gate_end, epoch}``: GO; NOT_YET (the
process's clock ran ahead of the server's, or it checks while it waits); REBOOKED at ``slot``
(a cool-down closed over the slot; a reopen since it was booked (``booked_in``, the epoch);
or, for bulk work that is due, an express call took this slot or one before it); REFUSED:
that new slot is past the wait asked for (nothing booked).
"""

ADMIT: Final = (
    PRELUDE
    + SLOTS
    + """
local asked, member, ttl, host = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[7]
local stored = redis.call('HMGET', KEYS[8], 'settings', 'interval', 'tau', 'express')
local interval, tau, express
if stored[1] then
  if asked ~= '' and asked ~= stored[1] then return {0, stored[1], 0, 0} end
  interval, tau, express = tonumber(stored[2]), tonumber(stored[3]), tonumber(stored[4])
elseif asked == '' then
  return {0, '', 0, 0}
else
  interval, tau, express = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  redis.call('HSET', KEYS[8], 'settings', asked, 'interval', ARGV[4], 'tau', ARGV[5],
             'express', ARGV[6])
end
redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', now)
redis.call('ZADD', KEYS[9], now + ttl, member)
redis.call('PEXPIRE', KEYS[9], math.floor(ttl / 1000) + 1000)
redis.call('PEXPIRE', KEYS[8], math.floor(ttl / 1000) + 1000)
local members = redis.call('ZRANGE', KEYS[9], 0, -1)
local here = 0
for _, m in ipairs(members) do
  if string.sub(m, 1, #host) == host then here = here + 1 end
end
local out = {1, stored[1] or asked, #members, here, interval, tau, express}
for i = 8, #ARGV, 5 do
  local r
  if ARGV[i] == '0' then
    r = reserve(interval, tau, tonumber(ARGV[i + 1]), ARGV[i + 2] == '1', express)
  else
    r = check(tonumber(ARGV[i + 3]), interval, tau, tonumber(ARGV[i + 1]), ARGV[i + 2] == '1',
              tonumber(ARGV[i + 4]))
  end
  for _, v in ipairs(r) do out[#out + 1] = v end
end
return out
"""
)
"""A batch of admissions (reserves and checks) of one process, in one call: the settings
check, the member's heartbeat, then each admission in order.

KEYS: the seven of :data:`PRELUDE`, 8 ``settings`` (a hash: the budget's settings as text,
and the interval, tau and express interval they make, in microseconds), 9 ``members`` (a
sorted set: one member per process, scored by when it expires). ARGV: 1 the settings asked
for (empty: join the stored ones), 2 this process's member name (``host/pid``), 3 the member's
time to live, 4-6 the interval, tau and express interval of the settings asked for, 7 the
host's prefix of member names (``host/``); then five per admission: the kind (``0`` reserve,
``1`` check), the longest acceptable wait (negative: any), the lane (``1`` bulk), and for a
check the slot and the epoch it was booked in.

The first process stores its settings; a process asking for others gets ``{0, stored}`` and
nothing is booked (a joiner gets ``{0, ''}`` when none are stored). Else the member is
noted (expiring ``ttl`` from now), the members past their time are dropped, and the answer
is ``{1, settings, members, members_on_this_host, interval, tau, express}`` followed by five
numbers per admission
(``{verdict, slot, now, gate_end, epoch}``, see :data:`SLOTS`). The settings and the
members live ``ttl`` past the latest admission, and the settings go with the last member
that leaves (:data:`LEAVE`): a fleet restarted with other settings stores them anew.
"""

GIVE_BACK: Final = (
    PRELUDE
    + """
local slot, interval, booked_in = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ticket, owed = ARGV[4], ARGV[5] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now)
if redis.call('ZADD', KEYS[10], 'NX', now + 600000000, ticket) == 0 then return {0, now} end
redis.call('PEXPIRE', KEYS[10], 600000)
local gate = num(KEYS[2])
if epoch() ~= booked_in or gate > slot then return {0, now} end
if redis.call('ZREM', KEYS[4], slot) == 1 then
  count('given_back')
  return {1, now}
end
if owed and slot < now then return {0, now} end
local nxt = num(KEYS[1])
if slot > now and slot < nxt - interval then
  redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', string.format('(%d', now))
  redis.call('ZADD', KEYS[11], slot, string.format('%d', slot))
  redis.call('PEXPIRE', KEYS[11], math.floor((nxt - now) / 1000) + 1000)
else
  local back = math.max(nxt - interval, now, gate)
  if back >= nxt then return {0, now} end
  redis.call('SET', KEYS[1], string.format('%d', back), 'KEEPTTL')
end
count('given_back')
return {1, now}
"""
)
"""A request will not be sent at its slot after all: give the slot back to the budget.

ARGV: the slot, the interval, the epoch it was booked in, the ticket (a token unique to the
request) and ``1`` when the slot is owed by a request that went to the fallback (else
``0``). A slot ahead of now with later slots booked behind it becomes a hole (``holes``)
that the next booking takes: moving the queue's end back for it, as before, booked a slot
that a later request held a second time (the slots given back after a short server pause
ran the fleet over its rate for seconds). Any other slot (the last one booked, or one due
already, a request let through and not sent) moves the queue's next free slot back one
interval, never before the server's ``now`` nor into a cool-down, so the next request to
book takes it instead of a later one. An owed slot that is past is not given back: its
request was sent on the fallback, in that slot's time. Nothing moves when a reopen or a
cool-down laid the queue out again since the slot was booked. An express slot still owed by
a bulk request (``debt``) is given back by cancelling the debt: the bulk request keeps its
slot. Each ticket is given back once (``given`` remembers it ten minutes), so a command
retried on a new connection does not give back two slots. Returns ``{1, now}`` when a slot
went back, ``{0, now}`` otherwise.
"""

LEAVE: Final = (
    PRELUDE
    + """
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', now)
local left = redis.call('ZCARD', KEYS[9])
if left == 0 then redis.call('DEL', KEYS[8]) end
return {left}
"""
)
"""A process leaves the budget (ARGV[1]: its member name); the last one takes the stored
settings with it. Returns the members left."""

COOL_DOWN: Final = (
    PRELUDE
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

GATE: Final = (
    PRELUDE
    + """
return {num(KEYS[2]), now}
"""
)

REOPEN: Final = (
    PRELUDE
    + """
local gate = num(KEYS[2])
if gate <= now then return {gate, now} end
redis.call('DEL', KEYS[2], KEYS[11])
redis.call('SET', KEYS[7], string.format('%d', epoch() + 1))
if num(KEYS[1]) > now then put(KEYS[1], now, tonumber(ARGV[1])) end
return {gate, now}
"""
)
"""Open a closed gate now (ARGV[1]: tau): the queue starts again from now, and every slot
booked before (for after the gate) is booked again at its next check, in check order."""

STATS: Final = (
    PRELUDE
    + """
local h = redis.call('HMGET', KEYS[6], 'acquired', 'express', 'rate_limited', 'given_back')
return {tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0'),
        num(KEYS[2]), num(KEYS[1]), now, tonumber(h[4] or '0')}
"""
)
