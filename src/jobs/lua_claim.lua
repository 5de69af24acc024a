-- Claims a run slot for ARGV[1] under the global concurrency limit, FIFO.
-- KEYS: 1 queue (zset id -> enqueue time), 2 slots (zset id -> lease deadline)
-- ARGV: 1 job id, 2 limit, 3 lease ms, 4 heartbeat staleness ms, 5 job key prefix
-- Returns 1 when claimed, 0 to wait, -1 when the job is no longer queued.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local running = redis.call('ZCARD', KEYS[2])
local limit = tonumber(ARGV[2])
local ahead = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local hb = tonumber(redis.call('HGET', ARGV[5] .. id, 'heartbeat') or '0')
  if now - hb > tonumber(ARGV[4]) then
    -- Its process is gone: it no longer holds a place in the queue.
    redis.call('ZREM', KEYS[1], id)
  elseif id == ARGV[1] then
    if running + ahead < limit then
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), id)
      return 1
    end
    return 0
  else
    ahead = ahead + 1
  end
end
return -1
