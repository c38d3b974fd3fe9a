"""Lua scripts of the hot path: enqueue, claim, complete, fail, renew, reap, put back.

Every script takes the queue's key prefix as ``KEYS[1]`` (all keys share its ``{queue}`` hash
tag) and reads the clock with ``TIME`` so every worker and producer agrees on one clock.
Waiting jobs of priority 0 (the default) are a LIST, ``wait0``: pushed at the tail, popped at the
head, no sequence number and no score, which costs Redis a fraction of a sorted-set entry in CPU
and memory. Jobs of priority 1-10, and every job put back at the head of its priority (SIGTERM,
a requeue, a job deferred by its rate key), are the ZSET ``wait``, score
``(10 - priority) * 2^44 + seq`` (a put-back's seq is 0): ZPOPMIN gives the highest priority
first and FIFO within a priority; 2^44 leaves room for 17 trillion enqueues before scores could
overlap. A claim empties ``wait`` before it takes from ``wait0``.

A running attempt lives in the queue's ``lease`` HASH (job id -> ``worker NUL attempt NUL started
ms``), not in the job's own hash: a claim reads each job's hash and writes nothing to it, and the
leases of a whole claim (or a whole batch of completions) are one HSET (one HMGET and one HDEL),
where per-job fields were two calls a job more. Whatever ends an attempt (complete, fail, reap)
copies its lease into the job's hash (``l``, the last attempt) with its outcome; a put-back
removes the lease and leaves the job's last attempt as it was.
"""

PREAMBLE = """
local prefix = KEYS[1]
local job_prefix = prefix .. 'j:'  -- job keys are built in the hot loops: two pieces, not three
local t = redis.call('TIME')
-- As text, for the hot path's arguments: a Lua number passed to redis.call (or concatenated) is
-- formatted with a floating-point printf, which was a seventh of a claim's CPU. So constant
-- arguments are written as text ('0', not 0), the milliseconds are cut from the microseconds
-- padded to 6 digits, and a number that must become text goes through string.format('%d'), an
-- integer printf (a tenth of the cost).
local now_s = t[1] .. string.sub('00000' .. t[2], -6, -4)
-- Text to number by arithmetic (``s + 0``), not tonumber(): tonumber() parses the text twice
-- (strtod, ~1k instructions each); the scripts' numeric arguments are ours, always valid.
local now = now_s + 0
local SPAN = 17592186044416
-- Events are published only while someone listens (a SUBSCRIBE on the channel, or any
-- PSUBSCRIBE: the admin hub's pattern): asked once per script, only when it has an event.
local listening = nil
local function ev_listening()
  listening = redis.call('PUBSUB', 'NUMPAT') > 0 or redis.call('PUBSUB', 'NUMSUB', prefix .. 'events')[2] > 0
end
local function ev(name, id, extra)
  if listening == nil then ev_listening() end
  if listening then
    -- cjson, not concatenation: whatever an id holds, the event stays valid JSON.
    local event = extra or {}
    event.event = name
    event.jobId = id
    redis.call('PUBLISH', prefix .. 'events', cjson.encode(event))
  end
end
-- A job's priority from its packed fixed fields ``x`` (runtime/queue/keys.py): the digits after
-- the first NUL (the rate key before it holds none).
local function x_priority(x)
  return tonumber(x and string.match(x, '%z(%d+)') or '0') or 0
end
local function job_priority(jk)
  return x_priority(redis.call('HGET', jk, 'x'))
end
-- A job becoming ready (due, retried, promoted, reaped) goes behind the jobs of its priority.
-- ``pri``: the job's priority if the caller has it (read from the hash otherwise).
local function to_wait(jk, id, pri)
  pri = pri or job_priority(jk)
  if pri == 0 then
    redis.call('RPUSH', prefix .. 'wait0', id)
  else
    redis.call('ZADD', prefix .. 'wait', (10 - pri) * SPAN + redis.call('INCR', prefix .. 'seq'), id)
  end
end
-- Commands taking many arguments, in chunks that stay within Lua's stack.
local function each_chunk(items, command, key)
  if #items <= 1000 then  -- the usual case: one call, no copy
    if #items == 0 then return end
    if key then redis.call(command, key, unpack(items)) else redis.call(command, unpack(items)) end
    return
  end
  for i = 1, #items, 1000 do
    local part = {}
    for j = i, math.min(i + 999, #items) do part[#part + 1] = items[j] end
    if key then redis.call(command, key, unpack(part)) else redis.call(command, unpack(part)) end
  end
end
local function wake()
  if redis.call('LLEN', prefix .. 'notify') < 8 then redis.call('RPUSH', prefix .. 'notify', '1') end
end
local function trim(set, keep)
  if keep < 0 then return end
  -- Every member but the newest ``keep``: the end rank -(keep + 1) counts from the set's end, so
  -- no ZCARD first (a call from Lua costs Redis ~7k instructions); none when ``keep`` or fewer.
  -- ZRANGE + ZREMRANGEBYRANK rather than ZPOPMIN: its scores come back as printf'd doubles.
  local old = redis.call('ZRANGE', set, '0', string.format('%d', -(keep + 1)))
  if #old > 0 then
    redis.call('ZREMRANGEBYRANK', set, '0', string.format('%d', #old - 1))
    local jobs = {}
    for i = 1, #old do jobs[i] = job_prefix .. old[i] end
    each_chunk(jobs, 'DEL')
  end
end
"""

# The lease helpers of the scripts that end or renew attempts.
LEASES = """
-- HMGET of many fields, in chunks that stay within Lua's stack; one reply list.
local function hmget_all(key, fields)
  if #fields <= 1000 then return redis.call('HMGET', key, unpack(fields)) end
  local out = {}
  for i = 1, #fields, 1000 do
    local part = {}
    for j = i, math.min(i + 999, #fields) do part[#part + 1] = fields[j] end
    local got = redis.call('HMGET', key, unpack(part))
    for j = 1, #got do out[#out + 1] = got[j] end
  end
  return out
end
-- A lease's worker, attempt and start (all text), or nil for none.
local function lease_parts(value)
  if not value then return nil end
  return string.match(value, '^(.*)%z(%d+)%z(%d+)$')
end
-- The start of a lease held by ``worker`` for attempt ``att`` (a lease value begins with it).
local function lease_head(worker, att)
  return worker .. '\0' .. att .. '\0'
end
-- The lease of job ``id`` if ``worker`` holds it for attempt ``att``, else nil.
local function held(id, worker, att)
  local value = redis.call('HGET', prefix .. 'lease', id)
  if not value then return nil end
  local head = lease_head(worker, att)
  if string.sub(value, 1, #head) ~= head then return nil end
  return value
end
"""

# One job into 'wait0' (priority 0), 'wait' or 'delayed' (delay_ms > 0) unless its id exists;
# false then. The ids for 'wait0' are collected in ``zero`` for one RPUSH by the caller, which also
# pushes the wake-up token once (``wake()``) after its last enqueue. The job's fixed fields are one
# field, ``x`` (runtime/queue/keys.py), its data another: two fields of a listpack, not up to seven.
# ``pri`` comes as the text the producer wrote (``str(int)``): stored as it is.
ENQUEUE_ONE = """
local function enqueue_one(id, name, data, pri_s, delay, max_attempts, rate_key, options, zero)
  local jk = prefix .. 'j:' .. id
  if redis.call('EXISTS', jk) == 1 then return false end
  local pri = tonumber(pri_s)
  delay = tonumber(delay)
  redis.call('HSET', jk, 'x', rate_key .. '\\0' .. pri_s .. '\\0' .. max_attempts .. '\\0' .. now_s .. '\\0' .. name
    .. '\\0' .. options, 'd', data)
  if delay > 0 then
    -- an idle worker blocks up to a second: the wake-up re-times its wait to this job
    redis.call('ZADD', prefix .. 'delayed', now + delay, id)
    ev('delayed', id)
  elseif pri == 0 then
    zero[#zero + 1] = id
    ev('waiting', id)
  else
    redis.call('ZADD', prefix .. 'wait', (10 - pri) * SPAN + redis.call('INCR', prefix .. 'seq'), id)
    ev('waiting', id)
  end
  return true
end
"""

# ARGV: count, then per job: id ('' = generate), name, data, priority, delay_ms, max_attempts,
# rate_key, options.  Returns one entry per job: its id, or '' when that id already exists.
ENQUEUE = (
    PREAMBLE
    + ENQUEUE_ONE
    + """
local n = tonumber(ARGV[1])
local out = {}
local woke = false
local zero = {}
for i = 0, n - 1 do
  local b = 2 + i * 8
  local id = ARGV[b]
  if id == '' then
    repeat id = tostring(redis.call('INCR', prefix .. 'seq')) until redis.call('EXISTS', prefix .. 'j:' .. id) == 0
  end
  local queued = enqueue_one(id, ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 6],
    ARGV[b + 7], zero)
  if queued then
    woke = true
    out[#out + 1] = id
  else
    out[#out + 1] = ''
  end
end
each_chunk(zero, 'RPUSH', prefix .. 'wait0')
if woke then wake() end
return out
"""
)

# A schedule's tick, at most once however many workers ask: the tick is taken only if it is later
# than the last one taken (HASH 'schedules': schedule name -> last tick ms), and its job is
# enqueued in the same call, so no crash can take a tick without queueing its job.
# ARGV: schedule name, tick ms, then the job's 8 fields as for ENQUEUE (its id never '').
# Returns 1 = taken and queued, 0 = this tick (or a later one) was already taken, 2 = taken but
# a job with that id existed.
SCHEDULE_TICK = (
    PREAMBLE
    + ENQUEUE_ONE
    + """
local last = tonumber(redis.call('HGET', prefix .. 'schedules', ARGV[1]) or '-1')
if last >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', prefix .. 'schedules', ARGV[1], ARGV[2])
local zero = {}
if enqueue_one(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], zero) then
  each_chunk(zero, 'RPUSH', prefix .. 'wait0')
  wake()
  return 1
end
return 2
"""
)

# ARGV: want, lease_ms, worker, rl_max, rl_period_ms, key_max, key_period_ms, then per prefix
# limit: prefix, max, period_ms.
# Returns one string, its fields joined by NUL: status, info, then per job its id, attempt, packed
# fixed fields (rate key, priority, max, enqueued, name, options: runtime/queue/keys.py) and data
# (see runtime.queue.execution.claim_reply); status 0 = ok (info = ms until
# the next delayed job, -1 none), 1 = paused, 2 = rate limited or held (info = ms until the window
# frees or the hold ends). One string, not an array: Redis converts each element of a script's
# array reply on its own, a seventh of a claim's CPU at 7 fields a job; no field can hold a NUL
# (ids, rate keys and job names are checked, data and options are JSON, the rest digits).
# Per job: one HMGET of three fields (the job's hash is only read); the pops, the leases (the 'lease' HSET and the
# 'active' ZADD) and the rate-limit log entry are one call per claim.
CLAIM = (
    PREAMBLE
    + """
local want = ARGV[1] + 0
local lease = ARGV[2] + 0
local worker = ARGV[3]
local rl_max, rl_period = ARGV[4] + 0, ARGV[5] + 0
local key_max, key_period = ARGV[6] + 0, ARGV[7] + 0
-- Per-key windows: {zset key suffix, applies-to prefix, max, period}; the first is every key's.
local key_limits = {}
if key_max > 0 then key_limits[1] = {'rk:', '', key_max, key_period} end
for i = 8, #ARGV, 3 do
  key_limits[#key_limits + 1] = {'rk' .. ((i - 5) / 3) .. ':', ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])}
end
local wait, wait0, delayed, active = prefix .. 'wait', prefix .. 'wait0', prefix .. 'delayed', prefix .. 'active'
local byte = string.byte  -- once, not two table lookups a job
-- 'active' holds a pin (see runtime/queue/keys.py): a member longer than zset-max-listpack-value,
-- score +inf, so Redis keeps it a skiplist; compact, every ZADD and ZREM scanned the whole set.
-- 'lease' carries the same pin, as a field (hash-max-listpack-value is 64 too): a listpack hash
-- scans its fields at every HSET, HMGET and HDEL.
local ACTIVE_PIN = string.rep('~', 100)
local deadline_s = string.format('%d', now + lease)
local lease_of = worker .. '\\0'  -- + attempt .. lease_at: a lease's value (see LEASES)
local lease_at = '\\0' .. now_s
local first_lease = lease_of .. '1' .. lease_at  -- most claims are first attempts: built once
-- The head of 'delayed' says both whether anything is due and when the next job will be.
local head = redis.call('ZRANGE', delayed, '0', '0', 'WITHSCORES')
if head[2] and head[2] + 0 <= now then
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    local jk = prefix .. 'j:' .. id
    local h = redis.call('HMGET', jk, 'q', 'x')
    if h[1] then
      redis.call('HDEL', jk, 'q')
      redis.call('ZADD', wait, h[1], id)
    else
      to_wait(jk, id, x_priority(h[2]))
    end
    ev('waiting', id)
  end
  redis.call('ZREM', delayed, unpack(due))
  head = redis.call('ZRANGE', delayed, '0', '0', 'WITHSCORES')
end
local function next_due()
  if head[2] then return string.format('%d', math.max(head[2] - now, 0)) end
  return '-1'
end
-- One EXISTS for both (a pause, or a hold: a provider's "retry after" that stops every claim until
-- it expires); which one only when either is there.
if redis.call('EXISTS', prefix .. 'paused', prefix .. 'hold') > 0 then
  if redis.call('EXISTS', prefix .. 'paused') == 1 then return '1\\0' .. next_due() end
  local held = redis.call('PTTL', prefix .. 'hold')
  if held > 0 then return '2\\0' .. held end
end
-- The global limit's sliding log holds one 'ms:count' entry per claim, not one per job: every
-- job of a claim starts at the same 'now', so the window's count is exact at a fraction of the
-- cost (a claim of 25 jobs pushes one entry instead of 25 ZADDs into a ZSET of a window's starts).
local rl, rln = prefix .. 'rl', prefix .. 'rln'
local function log_entry(entry)  -- 'ms:count' -> ms, count
  local sep = string.find(entry, ':', 1, true)
  return string.sub(entry, 1, sep - 1) + 0, string.sub(entry, sep + 1) + 0
end
local used, rl_logged = 0, 0
if rl_max > 0 then
  local logged = redis.call('GET', rln)
  logged = logged and logged + 0 or 0
  used = logged
  local head = redis.call('LINDEX', rl, '0')
  while head do
    local at, count = log_entry(head)
    if at > now - rl_period then break end
    redis.call('LPOP', rl)
    used = used - count
    head = redis.call('LINDEX', rl, '0')
  end
  if not head or used < 0 then used = 0 end
  if used >= rl_max then
    if used ~= logged then redis.call('SET', rln, string.format('%d', used)) end
    local oldest = log_entry(head)
    return '2\\0' .. math.max(oldest + rl_period - now, 1)
  end
  want = math.min(want, rl_max - used)
  rl_logged = logged
end
-- Appends by index, not ``#t + 1`` (a search of the table's border at every append).
local out, nout = {'0', '-1'}, 2
local got, popped = 0, 0
local leases, nleases = {}, 0
local held_by, nheld = {prefix .. 'lease', ACTIVE_PIN, ''}, 3
local deferred = false
-- 'wait' (priorities 1-10 and put-backs, as id, score pairs) first, then 'wait0' (ids).
local zset_dry = false
local function pop(n)
  local count = string.format('%d', n)  -- a count as text: see now_s
  if not zset_dry then
    local top = redis.call('ZPOPMIN', wait, count)
    if #top < n * 2 then zset_dry = true end
    if #top > 0 then return top, 2 end
  end
  return redis.call('LPOP', wait0, count) or {}, 1
end
while got < want and popped < want * 4 + 8 do
  local asked = want - got
  local top, step = pop(asked)
  if #top == 0 then break end
  for j = 1, #top, step do
    popped = popped + 1
    local id = top[j]
    local jk = job_prefix .. id
    local f = redis.call('HMGET', jk, 'x', 'l', 'd')
    local blocked = f[1] == false  -- an id whose hash is gone: dropped
    -- the rate key leads the fixed fields: a job without one (the usual) is told by its first byte
    local rk = #key_limits > 0 and not blocked and byte(f[1]) ~= 0 and string.match(f[1], '^[^%z]+')
    if rk then
      -- Every window that applies must have room; a start is logged in all of them or none.
      local frees, windows = 0, {}
      for _, lim in ipairs(key_limits) do
        if string.sub(rk, 1, #lim[2]) == lim[2] then
          local kz = prefix .. lim[1] .. rk
          redis.call('ZREMRANGEBYSCORE', kz, '-inf', now - lim[4])
          if redis.call('ZCARD', kz) >= lim[3] then
            local oldest = redis.call('ZRANGE', kz, 0, 0, 'WITHSCORES')
            frees = math.max(frees, tonumber(oldest[2]) + lim[4])
          end
          windows[#windows + 1] = {kz, lim[4]}
        end
      end
      if frees > 0 then
        -- keeps its place: its score, or (from 'wait0') the head of priority 0 in pop order
        redis.call('HSET', jk, 'q', step == 2 and top[j + 1] or 10 * SPAN + redis.call('INCR', prefix .. 'seq'))
        redis.call('ZADD', delayed, frees, id)
        blocked, deferred = true, true
      else
        for _, w in ipairs(windows) do
          redis.call('ZADD', w[1], now, id .. ':' .. now)
          redis.call('PEXPIRE', w[1], w[2])
        end
      end
    end
    if not blocked then
      local att, leased = '1', first_lease
      if f[2] then
        att = string.format('%d', string.match(f[2], '%z(%d+)%z%d+$') + 1)
        leased = lease_of .. att .. lease_at
      end
      held_by[nheld + 1] = id
      held_by[nheld + 2] = leased
      nheld = nheld + 2
      leases[nleases + 1] = deadline_s
      leases[nleases + 2] = id
      nleases = nleases + 2
      out[nout + 1] = id
      out[nout + 2] = att
      out[nout + 3] = f[1]
      out[nout + 4] = f[3] or ''
      nout = nout + 4
      got = got + 1
      if listening == nil then ev_listening() end
      if listening then ev('active', id) end
    end
  end
  if step == 1 and #top < asked then break end  -- both ran dry
end
if got > 0 then
  redis.call('ZADD', active, 'inf', ACTIVE_PIN, unpack(leases))
  redis.call('HSET', unpack(held_by))
  if rl_max > 0 then
    redis.call('RPUSH', rl, now_s .. ':' .. string.format('%d', got))
    redis.call('SET', rln, string.format('%d', used + got))
  end
elseif rl_max > 0 and used ~= rl_logged then
  redis.call('SET', rln, string.format('%d', used))
end
-- More may wait: wake another worker. The token count first: under a backlog every worker is
-- busy, the tokens are all there, and the EXISTS is not needed.
if got == want and redis.call('LLEN', prefix .. 'notify') < 8 and redis.call('EXISTS', wait, wait0) > 0 then
  redis.call('RPUSH', prefix .. 'notify', '1')
end
if deferred then head = redis.call('ZRANGE', delayed, '0', '0', 'WITHSCORES') end
out[2] = next_due()
return table.concat(out, '\\0')
"""
)

# ARGV: worker, keep_completed, first, plain, valued, then the ids of ``first`` jobs (a first
# attempt whose result is None: most jobs), then ``plain`` pairs id, attempt (result None), then
# ``valued`` triples id, attempt, result_json. No argument that says what most jobs' would: Redis
# reads every argument into a Lua string before the script runs (~0.5k instructions each).
# Built by runtime.queue.execution.complete_args. Returns the ids whose lease this worker no longer
# held (result dropped).  Per job: one HSET (its last attempt and result; none with retention 0);
# the leases' HMGET and HDEL, the ZREM from 'active', the 'completed' ZADD and the DELs (retention
# 0, or the jobs the trim drops) are one call per batch.
# The lease check needs no look at 'active': every script that takes a job out of 'active'
# (complete, fail, reap, put back) removes its lease in the same step, and a lease names its
# worker and attempt, so a lease of this worker with the same attempt means the job is still
# leased to us (and an id sent twice completes once).
COMPLETE = (
    PREAMBLE
    + LEASES
    + """
local worker, keep = ARGV[1], ARGV[2] + 0
local first, plain = ARGV[3] + 0, ARGV[4] + 0
local n = first + plain + ARGV[5]
local paired = first + plain
-- Where job i's arguments start: 5 + i for the first attempts, then pairs_at + 2 * i, then
-- triples_at + 3 * i (the pairs start at ARGV[6 + first], the triples after them).
local pairs_at, triples_at = 4 - first, 3 - 2 * first - plain
local ids = {}
for i = 1, first do ids[i] = ARGV[5 + i] end
for i = first + 1, paired do ids[i] = ARGV[pairs_at + 2 * i] end
for i = paired + 1, n do ids[i] = ARGV[triples_at + 3 * i] end
local held_now = hmget_all(prefix .. 'lease', ids)
local of_worker = worker .. '\\0'
-- The start of a lease of this worker, per attempt (text): built once per attempt number, not per job.
local heads = {}
-- Appends by index, not ``#t + 1`` (a search of the table's border at every append).
local lost, done, finished, gone, seen = {}, {}, {}, {}, {}
local nlost, ndone, nfinished, ngone = 0, 0, 0, 0
for i = 1, n do
  local id, att, res = ids[i], '1', 'null'
  if i > paired then
    local b = triples_at + 3 * i
    att, res = ARGV[b + 1], ARGV[b + 2]
  elseif i > first then
    att = ARGV[pairs_at + 2 * i + 1]
  end
  local value = held_now[i]
  local head = heads[att]
  if not head then
    head = of_worker .. att .. '\\0'
    heads[att] = head
  end
  -- find, not sub: no new string to build and intern per job
  if not value or seen[id] or string.find(value, head, 1, true) ~= 1 then
    nlost = nlost + 1
    lost[nlost] = id
  else
    seen[id] = true
    ndone = ndone + 1
    done[ndone] = id
    if listening == nil then ev_listening() end
    if listening then
      -- The result is JSON our codec wrote: spliced in as it is, so numbers keep their types.
      redis.call('PUBLISH', prefix .. 'events',
        '{"event":"completed","jobId":' .. cjson.encode(id) .. ',"result":' .. (res ~= '' and res or 'null') .. '}')
    end
    local jk = job_prefix .. id
    if keep == 0 then
      ngone = ngone + 1
      gone[ngone] = jk
    else
      -- Its finish is its score in 'completed'; a result of None is not stored (it reads back as None).
      if res == 'null' then
        redis.call('HSET', jk, 'l', value)
      else
        redis.call('HSET', jk, 'l', value, 'r', res)
      end
      finished[nfinished + 1] = now_s
      finished[nfinished + 2] = id
      nfinished = nfinished + 2
    end
  end
end
each_chunk(done, 'HDEL', prefix .. 'lease')
each_chunk(done, 'ZREM', prefix .. 'active')
each_chunk(gone, 'DEL')
if nfinished > 0 then
  each_chunk(finished, 'ZADD', prefix .. 'completed')
  trim(prefix .. 'completed', keep)
end
return lost
"""
)

# ARGV: worker, id, attempt, error_entry_json, retry_delay_ms (-1 = dead letter), keep_failed.
# Returns 1 when retried, 0 when moved to failed, -1 when the lease was lost.
FAIL = (
    PREAMBLE
    + LEASES
    + """
local worker, id, att, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local delay, keep = tonumber(ARGV[5]), tonumber(ARGV[6])
local jk = prefix .. 'j:' .. id
local value = held(id, worker, att)
if not value or redis.call('ZREM', prefix .. 'active', id) == 0 then return -1 end
redis.call('HDEL', prefix .. 'lease', id)
local errors = redis.call('HGET', jk, 'e')
if errors then
  errors = string.sub(errors, 1, -2) .. ',' .. entry .. ']'
else
  errors = '[' .. entry .. ']'
end
redis.call('HSET', jk, 'e', errors, 'l', value)
if delay >= 0 then
  redis.call('ZADD', prefix .. 'delayed', now + delay, id)
  ev('retrying', id, {attempt = tonumber(att), delayMs = delay})
  -- an idle worker blocks up to a second: wake one so it re-times its wait to this retry
  wake()
  return 1
end
redis.call('HSET', jk, 'f', now)
redis.call('ZADD', prefix .. 'failed', now, id)
ev('failed', id, {attempt = tonumber(att)})
trim(prefix .. 'failed', keep)
return 0
"""
)

# ARGV: worker, lease_ms, id... -> number of leases extended.
RENEW = (
    PREAMBLE
    + LEASES
    + """
local worker, lease = ARGV[1], tonumber(ARGV[2])
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return 0 end
local of_worker = worker .. '\\0'
local held_now = hmget_all(prefix .. 'lease', ids)
local deadline = tostring(now + lease)
local renew = {}
for i, id in ipairs(ids) do
  local value = held_now[i]
  if value and string.sub(value, 1, #of_worker) == of_worker then
    renew[#renew + 1] = deadline
    renew[#renew + 1] = id
  end
end
if #renew == 0 then return 0 end
local renewed = 0
for i = 1, #renew, 1000 do
  local part = {}
  for j = i, math.min(i + 999, #renew) do part[#part + 1] = renew[j] end
  renewed = renewed + redis.call('ZADD', prefix .. 'active', 'XX', 'CH', unpack(part))
end
return renewed
"""
)

# Jobs whose lease ran out (their worker died): back to waiting, or to failed when that was
# their last attempt.  ARGV: keep_failed.  Returns the stalled ids.
REAP = (
    PREAMBLE
    + LEASES
    + """
local keep = tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', prefix .. 'active', '-inf', now, 'LIMIT', 0, 200)
for _, id in ipairs(stale) do
  local jk = prefix .. 'j:' .. id
  redis.call('ZREM', prefix .. 'active', id)
  local value = redis.call('HGET', prefix .. 'lease', id)
  local worker, att = lease_parts(value)
  redis.call('HDEL', prefix .. 'lease', id)
  local h = redis.call('HMGET', jk, 'l', 'x', 'e')
  att = att or tostring((tonumber(select(2, lease_parts(h[1]))) or 0) + 1)
  local who = worker and string.sub(cjson.encode(worker), 2, -2) or '?'
  local entry = '{"attempt":' .. att .. ',"error":"stalled: worker ' .. who .. ' lost its lease","traceback":"","at":'
    .. now .. '}'
  if h[3] then entry = string.sub(h[3], 1, -2) .. ',' .. entry .. ']' else entry = '[' .. entry .. ']' end
  if value then
    redis.call('HSET', jk, 'e', entry, 'l', value)
  else
    redis.call('HSET', jk, 'e', entry)
  end
  ev('stalled', id)
  if tonumber(att) < tonumber(h[2] and string.match(h[2], '^[^%z]*%z%d+%z(%d+)') or '1') then
    to_wait(jk, id)
    wake()
  else
    redis.call('HSET', jk, 'f', now)
    redis.call('ZADD', prefix .. 'failed', now, id)
    ev('failed', id)
    trim(prefix .. 'failed', keep)
  end
end
return stale
"""
)

# SIGTERM put-back: the attempt did not count; the job goes to the head of its priority.
# ARGV: worker, id... -> number put back.
PUT_BACK = (
    PREAMBLE
    + LEASES
    + """
local worker = ARGV[1]
local of_worker = worker .. '\\0'
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local jk = prefix .. 'j:' .. id
  local value = redis.call('HGET', prefix .. 'lease', id)
  if value and string.sub(value, 1, #of_worker) == of_worker and redis.call('ZREM', prefix .. 'active', id) == 1 then
    redis.call('HDEL', prefix .. 'lease', id)
    redis.call('ZADD', prefix .. 'wait', (10 - job_priority(jk)) * SPAN, id)
    ev('waiting', id)
    n = n + 1
  end
end
if n > 0 then wake() end
return n
"""
)

# A job asked to go back (a provider's rate limit): the attempt did not count, the job goes to
# the head of its priority, and with hold_ms > 0 the whole queue takes no job for that long (a
# longer hold already set is kept).  ARGV: worker, id, attempt, hold_ms -> 1, or 0 if the lease was lost.
REQUEUE = (
    PREAMBLE
    + LEASES
    + """
local worker, id, att, hold = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local jk = prefix .. 'j:' .. id
if not held(id, worker, att) or redis.call('ZREM', prefix .. 'active', id) == 0 then return 0 end
redis.call('HDEL', prefix .. 'lease', id)
redis.call('ZADD', prefix .. 'wait', (10 - job_priority(jk)) * SPAN, id)
if hold > 0 and redis.call('PTTL', prefix .. 'hold') < hold then
  redis.call('SET', prefix .. 'hold', 1, 'PX', hold)
  ev('held', id, {holdMs = hold})
end
ev('waiting', id)
wake()
return 1
"""
)
