"""Lua scripts moving a queue's data from key layout v1 (``sbq:v1``) to v2 (``sbq:v2``), and from
v2 to v3 (``sbq:v3``, the current one): ``runtime.queue.migrate`` runs the two steps in turn.

Both prefixes of a queue carry its ``{queue}`` hash tag, so one script reaches both (one cluster
slot). Each script is one atomic step: a job is either wholly in v1 (its hash and its place in
one of ``wait0``, ``wait``, ``delayed``, ``active``, ``completed``, ``failed``) or wholly in v2,
never both or neither, and a step run again finds nothing left to do.

Every script takes ``KEYS[1]`` = the queue's older prefix, ``KEYS[2]`` = the next one's.

v1 kept a job's attempts in its hash: ``a`` attempts made, ``s`` the last start (ms), ``w`` the
worker holding the lease (cleared, or set to '', once the attempt ended). v2 keeps the running
attempt in the queue's ``lease`` HASH (``worker NUL attempt NUL started``) and the last attempt
that ended in the job's ``l`` (same form; absent before any ended); a completed job's finish is
only its ``completed`` score and a result of None (``r`` = ``null``) is not stored
(``runtime.queue.keys``). Every other field (``n d p m t e g r o k q m0``) means the same.

v3 differs from v2 in the job's hash only: v2's fixed fields ``p m t k n o`` are one field ``x``
(``rate key NUL priority NUL max NUL enqueued NUL name NUL options``, defaults written out); every
other field, and every other key, means the same.
"""

# MOVE_JOBS_V1 and MOVE_JOBS_V2, one step each: ARGV: most jobs to move.  Returns {jobs moved, ids
# left in the older layout because the newer holds that id, ids dropped (listed with no hash, as a
# claim drops them)}.  Moves from 'active' first (their leases run out), then 'wait', 'delayed',
# 'completed', 'failed', and 'wait0' from its tail: each batch goes to the head of the newer
# 'wait0', so older jobs stay ahead of any the newer release enqueued meanwhile.
# A job whose id exists in the newer layout too (enqueued there before the move) keeps its old hash
# and is listed in the old 'conflicts' HASH (id -> the set it was in) for an operator: nothing is
# overwritten. Each step's ``translate(id, state)`` gives a job's new fields and, for a running
# job, its lease (nil, nil: no hash).
_MOVE_HEAD = r"""
local src, dst = KEYS[1], KEYS[2]
local limit = tonumber(ARGV[1])
local PIN = string.rep('~', 100)  -- the 'active' / 'lease' pin (runtime/queue/keys.py)
local moved, conflicts, dropped, taken = 0, 0, 0, 0
local ready = false
-- The v2 sequence first: ids it generates and FIFO scores it gives stay above v1's.
local seq = redis.call('GET', src .. 'seq')
if seq and tonumber(seq) > tonumber(redis.call('GET', dst .. 'seq') or '0') then
  redis.call('SET', dst .. 'seq', seq)
end
"""

_TRANSLATE_V1 = r"""
local function translate(id, state)
  local h = redis.call('HGETALL', src .. 'j:' .. id)
  if #h == 0 then return nil, nil end
  local out, n = {}, 0
  local att, started, worker = 0, '0', ''
  for i = 1, #h, 2 do
    local f, v = h[i], h[i + 1]
    if f == 'a' then
      att = tonumber(v) or 0
    elseif f == 's' then
      started = v
    elseif f == 'w' then
      worker = v
    elseif state == 'completed' and (f == 'f' or (f == 'r' and v == 'null')) then
      -- a completed job's finish is its score; a None result is not stored
    else
      out[n + 1] = f
      out[n + 2] = v
      n = n + 2
    end
  end
  local lease, ended = nil, att
  if state == 'active' then
    if att < 1 then att = 1 end
    lease = worker .. '\0' .. att .. '\0' .. started
    ended = att - 1  -- v1 overwrote the earlier start: the running one stands in for it
    worker = ''
  end
  if ended > 0 then
    out[n + 1] = 'l'
    out[n + 2] = worker .. '\0' .. ended .. '\0' .. started
  end
  return out, lease
end
"""

# v2 -> v3: the fixed fields packed into 'x'; a running job's lease moves from v2's 'lease'. A hash
# without a name is no job (a progress write that came after its job was removed): dropped.
_TRANSLATE_V2 = r"""
local FIXED = {k = 1, p = 2, m = 3, t = 4, n = 5, o = 6}
local function translate(id, state)
  local h = redis.call('HGETALL', src .. 'j:' .. id)
  if #h == 0 then return nil, nil end
  local fixed, out, n = {'', '0', '1', '0', false, ''}, {}, 0
  for i = 1, #h, 2 do
    local slot = FIXED[h[i]]
    if slot then
      fixed[slot] = h[i + 1]
    else
      out[n + 1] = h[i]
      out[n + 2] = h[i + 1]
      n = n + 2
    end
  end
  if not fixed[5] then return {}, nil end
  out[n + 1] = 'x'
  out[n + 2] = table.concat(fixed, '\0')
  local lease = nil
  if state == 'active' then
    lease = redis.call('HGET', src .. 'lease', id)
    redis.call('HDEL', src .. 'lease', id)
  end
  return out, lease
end
"""

_MOVE_BODY = r"""
-- Moves job ``id`` of the old set ``state``; true if it now is in v2's hash (the caller places it).
local function move(id, state)
  local jk = dst .. 'j:' .. id
  if redis.call('EXISTS', jk) == 1 then
    redis.call('HSET', src .. 'conflicts', id, state)
    conflicts = conflicts + 1
    return false, nil
  end
  local fields, lease = translate(id, state)
  if not fields or #fields == 0 then
    redis.call('DEL', src .. 'j:' .. id)
    dropped = dropped + 1
    return false, nil
  end
  redis.call('HSET', jk, unpack(fields))
  redis.call('DEL', src .. 'j:' .. id)
  moved = moved + 1
  return true, lease
end
for _, state in ipairs({'active', 'wait', 'delayed', 'completed', 'failed'}) do
  if taken >= limit then break end
  local page = redis.call('ZRANGE', src .. state, 0, limit - taken - 1, 'WITHSCORES')
  for i = 1, #page, 2 do
    local id, score = page[i], page[i + 1]
    redis.call('ZREM', src .. state, id)
    if not (state == 'active' and id == PIN) then
      taken = taken + 1
      local ok, lease = move(id, state)
      if ok then
        redis.call('ZADD', dst .. state, score, id)
        if state == 'active' then
          redis.call('ZADD', dst .. 'active', 'inf', PIN)
          if lease then
            redis.call('HSET', dst .. 'lease', PIN, '', id, lease)
          else  -- none (v2 removes a lease with its job's place in 'active'): the reaper's to take
            redis.call('HSET', dst .. 'lease', PIN, '')
          end
        elseif state == 'wait' or state == 'delayed' then
          ready = true
        end
      end
    end
  end
end
local take = math.min(limit - taken, redis.call('LLEN', src .. 'wait0'))
if take > 0 then
  local ids = redis.call('LRANGE', src .. 'wait0', -take, -1)
  redis.call('LTRIM', src .. 'wait0', 0, -take - 1)
  local push = {}
  for i = #ids, 1, -1 do  -- newest first: LPUSH leaves the oldest at the head
    taken = taken + 1
    if move(ids[i], 'wait0') then push[#push + 1] = ids[i] end
  end
  if #push > 0 then
    redis.call('LPUSH', dst .. 'wait0', unpack(push))
    ready = true
  end
end
if ready and redis.call('LLEN', dst .. 'notify') < 8 then redis.call('RPUSH', dst .. 'notify', 1) end
return {moved, conflicts, dropped}
"""
MOVE_JOBS_V1 = _MOVE_HEAD + _TRANSLATE_V1 + _MOVE_BODY
MOVE_JOBS_V2 = _MOVE_HEAD + _TRANSLATE_V2 + _MOVE_BODY

# The queue's own state, once its jobs moved: the sequence (the higher of the two), a pause, a
# provider's hold (the longer), each schedule's last tick (the later: a tick v1 took is not taken
# again), the global rate-limit log (kept while the newer has none of its own). The old worker
# heartbeats, wake-up tokens and the 'lease' pin (v2) are dropped: no newer worker is behind them.
# Returns the number of old keys removed.
MOVE_STATE = r"""
local src, dst = KEYS[1], KEYS[2]
local seq = redis.call('GET', src .. 'seq')
if seq and tonumber(seq) > tonumber(redis.call('GET', dst .. 'seq') or '0') then
  redis.call('SET', dst .. 'seq', seq)
end
local paused = redis.call('GET', src .. 'paused')
if paused then redis.call('SET', dst .. 'paused', paused) end
local hold_ms = redis.call('PTTL', src .. 'hold')
if hold_ms > 0 and redis.call('PTTL', dst .. 'hold') < hold_ms then
  redis.call('SET', dst .. 'hold', redis.call('GET', src .. 'hold'), 'PX', hold_ms)
end
local ticks = redis.call('HGETALL', src .. 'schedules')
for i = 1, #ticks, 2 do
  local mine = redis.call('HGET', dst .. 'schedules', ticks[i])
  if not mine or tonumber(mine) < tonumber(ticks[i + 1]) then
    redis.call('HSET', dst .. 'schedules', ticks[i], ticks[i + 1])
  end
end
if redis.call('EXISTS', dst .. 'rl', dst .. 'rln') == 0 and redis.call('EXISTS', src .. 'rl') == 1 then
  redis.call('RENAME', src .. 'rl', dst .. 'rl')
  if redis.call('EXISTS', src .. 'rln') == 1 then redis.call('RENAME', src .. 'rln', dst .. 'rln') end
end
return redis.call('DEL', src .. 'seq', src .. 'paused', src .. 'hold', src .. 'schedules', src .. 'rl', src .. 'rln',
  src .. 'workers', src .. 'notify', src .. 'lease')
"""

# One per-key rate-limit log (``rk:<key>`` / ``rk<i>:<key>``): renamed (its TTL kept) unless v2
# already logs that key. KEYS: the v1 key, the v2 key. Returns 1 when renamed.
MOVE_KEY_LOG = r"""
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""

# The migration lock: KEYS[1] the lock, ARGV[1] its holder's token, ARGV[2] ms -> 1 if still held.
EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
