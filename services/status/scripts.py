"""The Lua scripts that change the live state: each runs atomically inside Redis, in one round trip.

``APPLY`` (one IngestBatch, a heartbeat, or a seed from the database)::

    KEYS  operators, queues, channels, meta, changes
    ARGV  1 source_id ('' = no fencing), 2 fencing_token, 3 mode ('set' | 'nx' | 'nx-if-empty'),
          4 replace_all ('1'/'0'), 5 now, 6 touch_ingest ('1'/'0'), 7 ttl, 8 stream maxlen,
          9 ChangeSet tail bytes, 10 change count, then op/field/value/header per change
          (see services.status.domain.batch)
    ->    {-1, highest_token}            refused: the fencing token is lower than one seen
                                         (the token as stored, in decimal digits)
          {1, revision, changes, operators, queues, channels, changeset, last_ingest_at, now}
                                         applied: counts of changes in total and per kind
                                         (revision unchanged when nothing changed), and the
                                         serialized ChangeSet it XADDed ('' when none) with the
                                         freshness of that entry, so the ingesting replica can
                                         deliver it to its own watchers without reading the
                                         stream back

Steps: fencing check (and record the new highest token); DEL the three hashes for
``replace_all``; HSET (batched, 1000 rows a call) / HSETNX / HDEL in the batch's order; when
anything changed INCR ``revision`` and XADD the ChangeSet it produced as ``<revision>-0``;
a batch without changes (a heartbeat) XADDs a freshness-only entry ``<revision>-<beat>``
(``beat`` counts heartbeats since the last revision; explicit ids keep Redis 6.2 supported);
EXPIRE the live keys.

``CLEAR`` removes every key, then writes ``revision + 1`` back with a replace_all ChangeSet
with no rows, so followers and watchers learn the state is empty and revisions never go back::

    KEYS  operators, queues, channels, meta, changes
    ARGV  1 now, 2 ChangeSet tail bytes (replace_all), 3 ttl, 4 stream maxlen
    ->    {number of keys that existed, the new revision}
"""

from __future__ import annotations

from typing import Final

_VARINT: Final = """
local function varint(n)
  local out = {}
  while n >= 128 do
    out[#out + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
  return table.concat(out)
end
"""

APPLY: Final = (
    _VARINT
    + """
local meta = KEYS[4]
local source = ARGV[1]
if source ~= '' then
  local fence = 'fence:' .. source
  local token = tonumber(ARGV[2])
  local stored = redis.call('HGET', meta, fence)
  local seen = tonumber(stored or '-1')
  if token < seen then
    -- The stored text, not tostring(seen): Lua prints a 16-digit number as 1.79e+15.
    return {-1, stored}
  end
  if token > seen then
    redis.call('HSET', meta, fence, ARGV[2])
  end
end
local mode = ARGV[3]
if mode == 'nx-if-empty' and redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3]) > 0 then
  return {1, tonumber(redis.call('HGET', meta, 'revision') or '0'), 0, 0, 0, 0}
end
local replace_all = ARGV[4] == '1'
local now = ARGV[5]
if replace_all then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
end
local kinds = {o = 1, q = 2, c = 3}
local pending = {{}, {}, {}}
local function flush(h)
  local p = pending[h]
  if #p > 0 then
    redis.call('HSET', KEYS[h], unpack(p))
    pending[h] = {}
  end
end
local entries = {}
local applied = {0, 0, 0}
local i = 11
for _ = 1, tonumber(ARGV[10]) do
  local op, field, value, header = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  local h = kinds[string.sub(op, 1, 1)]
  if string.sub(op, 2, 2) == '+' then
    if mode == 'set' then
      local p = pending[h]
      p[#p + 1] = field
      p[#p + 1] = value
      if #p >= 2000 then
        flush(h)
      end
      entries[#entries + 1] = header .. value
      applied[h] = applied[h] + 1
    elseif redis.call('HSETNX', KEYS[h], field, value) == 1 then
      entries[#entries + 1] = header .. value
      applied[h] = applied[h] + 1
    end
  else
    flush(h)
    redis.call('HDEL', KEYS[h], field)
    entries[#entries + 1] = header
    applied[h] = applied[h] + 1
  end
end
flush(1)
flush(2)
flush(3)
if ARGV[6] == '1' then
  redis.call('HSET', meta, 'last_ingest_at', now, 'touched_at', now)
else
  redis.call('HSET', meta, 'touched_at', now)
end
local last = redis.call('HGET', meta, 'last_ingest_at') or '0'
local revision
local cs = ''
if #entries > 0 or replace_all then
  revision = redis.call('HINCRBY', meta, 'revision', 1)
  cs = '\\8' .. varint(revision) .. table.concat(entries) .. ARGV[9]
  redis.call('HSET', meta, 'beat', 0)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], revision .. '-0', 'cs', cs, 'at', last, 'tt', now)
else
  revision = tonumber(redis.call('HGET', meta, 'revision') or '0')
  if ARGV[6] == '1' then
    local beat = redis.call('HINCRBY', meta, 'beat', 1)
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], revision .. '-' .. beat, 'at', last, 'tt', now)
  end
end
for k = 1, 5 do
  if k ~= 4 then
    redis.call('EXPIRE', KEYS[k], ARGV[7])
  end
end
return {1, revision, #entries, applied[1], applied[2], applied[3], cs, last, now}
"""
)

CLEAR: Final = (
    _VARINT
    + """
local existed = redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
local revision = tonumber(redis.call('HGET', KEYS[4], 'revision') or '0') + 1
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[4], 'revision', revision, 'touched_at', ARGV[1], 'beat', 0)
local cs = '\\8' .. varint(revision) .. ARGV[2]
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], revision .. '-0', 'cs', cs, 'at', '0', 'tt', ARGV[1])
redis.call('EXPIRE', KEYS[5], ARGV[3])
return {existed, revision}
"""
)
