"""Lua scripts of the control plane: retry, remove, promote, clean, drain, retry-all-failed."""

from runtime.queue.lua_worker import PREAMBLE

# A manual retry keeps the attempt count (job_try goes on from where it stopped, the error
# history stays continuous) and grants the job a fresh budget of its original max attempts: the
# max attempts, third of the packed fixed fields ``x`` (runtime/queue/keys.py), is rewritten.
GRANT = """
local function grant(jk)
  local h = redis.call('HMGET', jk, 'l', 'x', 'm0')
  local head, max, rest = string.match(h[2], '^([^%z]*%z%d+)%z(%d+)%z(.*)$')  -- key, priority | max | rest
  local budget = tonumber(h[3] or max)
  if not h[3] then redis.call('HSET', jk, 'm0', max) end
  local made = h[1] and tonumber(string.match(h[1], '%z(%d+)%z%d+$')) or 0  -- 'l': the last attempt
  redis.call('HSET', jk, 'x', head .. '\\0' .. tostring(made + budget) .. '\\0' .. rest)
end
"""

# ARGV: id.  Returns 1 retried, 0 not found, -1 not in a retryable state (failed/completed).
RETRY = (
    PREAMBLE
    + GRANT
    + """
local id = ARGV[1]
local jk = prefix .. 'j:' .. id
if redis.call('EXISTS', jk) == 0 then return 0 end
if redis.call('ZREM', prefix .. 'failed', id) == 0 and redis.call('ZREM', prefix .. 'completed', id) == 0 then
  return -1
end
grant(jk)
redis.call('HDEL', jk, 'f', 'r')
to_wait(jk, id)
ev('waiting', id)
wake()
return 1
"""
)

# ARGV: limit.  Moves up to ``limit`` failed jobs back to waiting; returns how many.
RETRY_ALL_FAILED = (
    PREAMBLE
    + GRANT
    + """
local ids = redis.call('ZRANGE', prefix .. 'failed', 0, tonumber(ARGV[1]) - 1)
for _, id in ipairs(ids) do
  local jk = prefix .. 'j:' .. id
  redis.call('ZREM', prefix .. 'failed', id)
  grant(jk)
  redis.call('HDEL', jk, 'f')
  to_wait(jk, id)
  ev('waiting', id)
end
if #ids > 0 then wake() end
return #ids
"""
)

# ARGV: id.  Returns 1 removed, 0 not found, -1 active (cannot remove a running job).
REMOVE = (
    PREAMBLE
    + """
local id = ARGV[1]
local jk = prefix .. 'j:' .. id
if redis.call('EXISTS', jk) == 0 then return 0 end
if redis.call('ZSCORE', prefix .. 'active', id) then return -1 end
local found = 0
for _, s in ipairs({'wait', 'delayed', 'completed', 'failed'}) do
  found = found + redis.call('ZREM', prefix .. s, id)
end
if found == 0 then redis.call('LREM', prefix .. 'wait0', 1, id) end
redis.call('DEL', jk)
ev('removed', id)
return 1
"""
)

# ARGV: id.  Returns 1 promoted, 0 not found, -1 not delayed.
PROMOTE = (
    PREAMBLE
    + """
local id = ARGV[1]
local jk = prefix .. 'j:' .. id
if redis.call('EXISTS', jk) == 0 then return 0 end
if redis.call('ZREM', prefix .. 'delayed', id) == 0 then return -1 end
redis.call('HDEL', jk, 'q')
to_wait(jk, id)
ev('waiting', id)
wake()
return 1
"""
)

# ARGV: state set suffix, grace_ms, limit.  Removes jobs of that state older than grace_ms
# (finished time for completed/failed, enqueue time for waiting/delayed).  Returns the ids.
CLEAN = (
    PREAMBLE
    + """
local set = prefix .. ARGV[1]
local cutoff = now - tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local removed = {}
local function clean(ids, take_out)
  for _, id in ipairs(ids) do
    if #removed >= limit then return end
    local jk = prefix .. 'j:' .. id
    local h = redis.call('HMGET', jk, 'f', 'x')  -- enqueued: the fourth of the fixed fields
    local t0 = tonumber(h[1] or (h[2] and string.match(h[2], '^[^%z]*%z%d+%z%d+%z(%d+)')) or 0)
    if t0 <= cutoff then
      take_out(id)
      redis.call('DEL', jk)
      ev('removed', id)
      removed[#removed + 1] = id
    end
  end
end
local function from_set(id) redis.call('ZREM', set, id) end
if ARGV[1] == 'completed' or ARGV[1] == 'failed' then
  clean(redis.call('ZRANGEBYSCORE', set, '-inf', cutoff, 'LIMIT', 0, limit), from_set)
else
  clean(redis.call('ZRANGE', set, 0, 9999), from_set)
  if ARGV[1] == 'wait' then  -- priority 0 waits in a list
    local wait0 = prefix .. 'wait0'
    clean(redis.call('LRANGE', wait0, 0, 9999), function(id) redis.call('LREM', wait0, 1, id) end)
  end
end
return removed
"""
)

# ARGV: include_delayed (0/1), limit.  Removes waiting (and delayed) jobs; returns how many.
DRAIN = (
    PREAMBLE
    + """
local n = 0
local sets = {'wait'}
if ARGV[1] == '1' then sets[2] = 'delayed' end
for _, s in ipairs(sets) do
  local ids = redis.call('ZRANGE', prefix .. s, 0, tonumber(ARGV[2]) - 1)
  for _, id in ipairs(ids) do
    redis.call('ZREM', prefix .. s, id)
    redis.call('DEL', prefix .. 'j:' .. id)
    n = n + 1
  end
end
-- priority 0 waits in a list: the first ``limit`` of it
local ids = redis.call('LRANGE', prefix .. 'wait0', 0, tonumber(ARGV[2]) - 1)
for _, id in ipairs(ids) do redis.call('DEL', prefix .. 'j:' .. id) end
if #ids > 0 then redis.call('LTRIM', prefix .. 'wait0', #ids, -1) end
n = n + #ids
if n > 0 then ev('drained', '*', {count = n}) end
return n
"""
)
