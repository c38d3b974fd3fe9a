"""The Lua scripts that change the live state: each runs atomically inside Redis, in one round trip.

``APPLY`` (one IngestBatch, a heartbeat, or a seed from the database)::

    KEYS  operators, queues, channels, meta, changes, owners, lease (ami_ingest's leader key
          of source_id: ``holder|token``)
    ARGV  1 source_id ('' = no fencing), 2 fencing_token (decimal), 3 mode ('set' | 'nx' |
          'nx-if-empty'), 4 replace_all ('1'/'0'), 5 now, 6 touch_ingest ('1'/'0'), 7 ttl,
          8 stream maxlen, 9 ChangeSet tail bytes, 10 change count, 11 owner (the source the
          rows belong to), 12 the batch's W3C traceparent ('' = untraced), then
          op/field/value/header per change (see services.status.domain.batch)
    ->    {-1, token, 'lease'}           refused: the lease holder's token (``''``: no lease) is
                                         not the batch's
          {-1, highest, 'lower'}         refused: the token is lower than the highest seen
          {1, revision, changes, operators, queues, channels, changeset, last_ingest_at, now}
                                         applied: counts of changes in total and per kind
                                         (revision unchanged when nothing changed), and the
                                         serialized ChangeSet it XADDed ('' when none) with the
                                         freshness of that entry, so the ingesting replica can
                                         deliver it to its own watchers without reading the
                                         stream back

Steps: fencing check — the batch's token must be the one the lease holder got from Redis
(whatever the caller claims) and not lower than the highest seen, compared as exact decimal
strings — and record the new highest token; for ``replace_all`` remove the rows owned by this
source (``owners``) and re-announce the other sources' rows in the ChangeSet; HSET (batched,
1000 rows a call) / HSETNX / HDEL in the batch's order, recording each row's owner; when
anything changed INCR ``revision`` and XADD the ChangeSet it produced as ``<revision>-0``
(with ``tp``, the traceparent, when the batch is traced: every replica's watch fan-out joins
the batch's trace);
a batch without changes (a heartbeat) XADDs a freshness-only entry ``<revision>-<beat>``
(``beat`` counts heartbeats since the last revision; explicit ids keep Redis 6.2 supported);
EXPIRE the live keys.

``CLEAR`` removes every key, then writes ``revision + 1`` back with a replace_all ChangeSet
with no rows, so followers and watchers learn the state is empty and revisions never go back::

    KEYS  operators, queues, channels, meta, changes, owners
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
-- Tokens are compared as decimal strings (no leading zeros): exact at any magnitude, where
-- Lua's numbers would round a 64-bit token to a float.
local function below(a, b)
  if #a ~= #b then
    return #a < #b
  end
  return a < b
end
if source ~= '' then
  local token = ARGV[2]
  local lease = redis.call('GET', KEYS[7])
  local held = lease and string.match(lease, '|(%d+)$') or ''
  if held ~= token then
    return {-1, held, 'lease'}
  end
  local fence = 'fence:' .. source
  local seen = redis.call('HGET', meta, fence) or ''
  if seen ~= '' and below(token, seen) then
    return {-1, seen, 'lower'}
  end
  if seen ~= token then
    redis.call('HSET', meta, fence, token)
  end
end
local mode = ARGV[3]
if mode == 'nx-if-empty' and redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3]) > 0 then
  return {1, tonumber(redis.call('HGET', meta, 'revision') or '0'), 0, 0, 0, 0}
end
local replace_all = ARGV[4] == '1'
local now = ARGV[5]
local owner = ARGV[11]
local letters = {'o', 'q', 'c'}
local upsert_tags = {'\\10', '\\26', '\\42'}
local function upsert_entry(h, value)
  local inner = upsert_tags[h] .. varint(#value)
  return '\\18' .. varint(#inner + #value) .. inner .. value
end
-- A replace_all is the complete truth of ONE source: it removes that source's rows (and rows
-- nobody owns, e.g. seeded before owners were recorded) and keeps every other source's rows,
-- which its ChangeSet announces again so readers that start over from it keep them too.
local kept = {}
if replace_all then
  for h = 1, 3 do
    local fields = redis.call('HKEYS', KEYS[h])
    for first = 1, #fields, 1000 do
      local chunk, names = {}, {}
      for j = first, math.min(first + 999, #fields) do
        chunk[#chunk + 1] = fields[j]
        names[#names + 1] = letters[h] .. ':' .. fields[j]
      end
      local owners = redis.call('HMGET', KEYS[6], unpack(names))
      local drop, drop_names, keep = {}, {}, {}
      for j = 1, #chunk do
        local who = owners[j]
        if (not who) or who == '' or who == owner then
          drop[#drop + 1] = chunk[j]
          drop_names[#drop_names + 1] = names[j]
        else
          keep[#keep + 1] = chunk[j]
        end
      end
      if #drop > 0 then
        redis.call('HDEL', KEYS[h], unpack(drop))
        redis.call('HDEL', KEYS[6], unpack(drop_names))
      end
      if #keep > 0 then
        local values = redis.call('HMGET', KEYS[h], unpack(keep))
        for j = 1, #keep do
          kept[#kept + 1] = upsert_entry(h, values[j])
        end
      end
    end
  end
end
local kinds = {o = 1, q = 2, c = 3}
local pending = {{}, {}, {}, {}}
local function flush(h)
  local p = pending[h]
  if #p > 0 then
    redis.call('HSET', KEYS[h == 4 and 6 or h], unpack(p))
    pending[h] = {}
  end
end
local function own(h, field)
  local p = pending[4]
  p[#p + 1] = letters[h] .. ':' .. field
  p[#p + 1] = owner
  if #p >= 2000 then
    flush(4)
  end
end
local entries = {}
local applied = {0, 0, 0}
local i = 13
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
      own(h, field)
      entries[#entries + 1] = header .. value
      applied[h] = applied[h] + 1
    elseif redis.call('HSETNX', KEYS[h], field, value) == 1 then
      own(h, field)
      entries[#entries + 1] = header .. value
      applied[h] = applied[h] + 1
    end
  else
    flush(h)
    flush(4)
    redis.call('HDEL', KEYS[h], field)
    redis.call('HDEL', KEYS[6], letters[h] .. ':' .. field)
    entries[#entries + 1] = header
    applied[h] = applied[h] + 1
  end
end
flush(1)
flush(2)
flush(3)
flush(4)
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
  cs = '\\8' .. varint(revision) .. table.concat(kept) .. table.concat(entries) .. ARGV[9]
  redis.call('HSET', meta, 'beat', 0)
  local entry = {'cs', cs, 'at', last, 'tt', now}
  if ARGV[12] ~= '' then
    entry[#entry + 1], entry[#entry + 2] = 'tp', ARGV[12]
  end
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], revision .. '-0', unpack(entry))
else
  revision = tonumber(redis.call('HGET', meta, 'revision') or '0')
  if ARGV[6] == '1' then
    local beat = redis.call('HINCRBY', meta, 'beat', 1)
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], revision .. '-' .. beat, 'at', last, 'tt', now)
  end
end
for _, k in ipairs({1, 2, 3, 5, 6}) do
  redis.call('EXPIRE', KEYS[k], ARGV[7])
end
return {1, revision, #entries, applied[1], applied[2], applied[3], cs, last, now}
"""
)

CLEAR: Final = (
    _VARINT
    + """
local existed = redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
local revision = tonumber(redis.call('HGET', KEYS[4], 'revision') or '0') + 1
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[4], 'revision', revision, 'touched_at', ARGV[1], 'beat', 0)
local cs = '\\8' .. varint(revision) .. ARGV[2]
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], revision .. '-0', 'cs', cs, 'at', '0', 'tt', ARGV[1])
redis.call('EXPIRE', KEYS[5], ARGV[3])
return {existed, revision}
"""
)
