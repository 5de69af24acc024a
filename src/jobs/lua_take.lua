-- A worker takes the oldest pending (detached) job: it leaves the pending
-- queue for the global queue at its submit time, and its record names the
-- worker with a fresh heartbeat, so from now on a dead worker makes it
-- stale. Pending ids whose job is no longer live, or whose record expired,
-- are dropped on the way.
-- KEYS: 1 pending (zset), 2 queue (zset), 3 live jobs (set)
-- ARGV: 1 job key prefix, 2 worker instance, 3 most entries looked at
-- Returns the job id, or false when nothing is pending.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _ = 1, tonumber(ARGV[3]) do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if not head[1] then
    return false
  end
  local id, score = head[1], head[2]
  redis.call('ZREM', KEYS[1], id)
  if redis.call('EXISTS', ARGV[1] .. id) == 0 then
    -- Its record expired while it waited (no worker for a day): forget it
    -- rather than run a job nobody can read.
    redis.call('SREM', KEYS[3], id)
  elseif redis.call('SISMEMBER', KEYS[3], id) == 1 then
    redis.call('HSET', ARGV[1] .. id, 'worker', ARGV[2], 'heartbeat', now)
    redis.call('ZADD', KEYS[2], score, id)
    return id
  end
end
return false
