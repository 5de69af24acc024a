-- Claims a run slot for ARGV[1] under the global concurrency limit, in queue
-- order. Cost per call: O(log n) for n queued jobs, plus at most
-- limit + ARGV[6] job records read, however long the queue is.
-- KEYS: 1 queue (zset id -> enqueue time), 2 slots (zset id -> lease
--       deadline), 3 live jobs (set)
-- ARGV: 1 job id, 2 limit, 3 lease ms, 4 heartbeat staleness ms,
--       5 job key prefix, 6 most dead entries dropped per call
-- Returns 1 claimed, 0 wait, -1 no longer queued (take a place again),
-- -2 no longer live (the job ended or was given up as dead).
local id = ARGV[1]
if redis.call('SISMEMBER', KEYS[3], id) == 0 then
  return -2
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
-- Lapsed leases: their holders stopped renewing.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[2], id) then
  -- Already holds one (an answer lost on the way): keep it.
  redis.call('ZADD', KEYS[2], now + lease, id)
  redis.call('ZREM', KEYS[1], id)
  return 1
end
if not redis.call('ZSCORE', KEYS[1], id) then
  return -1
end
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[2])
if free <= 0 then
  return 0
end
-- Walk the head of the queue: the job may start when fewer than `free`
-- live jobs are ahead of it. Dead entries met on the way (stale heartbeat
-- or no record) lose their place, at most ARGV[6] per call.
local stale = tonumber(ARGV[4])
local budget = tonumber(ARGV[6])
local pos = 0
local alive = 0
while alive < free do
  local head = redis.call('ZRANGE', KEYS[1], pos, pos)[1]
  if not head then
    return -1
  end
  if head == id then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', KEYS[2], now + lease, id)
    return 1
  end
  local hb = tonumber(redis.call('HGET', ARGV[5] .. head, 'heartbeat') or '0') or 0
  if now - hb > stale then
    redis.call('ZREM', KEYS[1], head)
    budget = budget - 1
    if budget <= 0 then
      return 0
    end
  else
    alive = alive + 1
    pos = pos + 1
  end
end
return 0
