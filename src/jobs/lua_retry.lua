-- Puts a job whose worker died back in the pending queue for another
-- worker, exactly once: only while it is live and its heartbeat is still
-- stale (a worker that came back wins).
-- KEYS: 1 job record (hash), 2 live jobs (set), 3 queue (zset),
--       4 slots (zset), 5 pending (zset)
-- ARGV: 1 job id, 2 heartbeat staleness ms, 3 record data (JSON),
--       4 pending score (its submit time, so it goes first)
-- Returns 1 put back by this call, 0 not (alive again, or already ended).
local id = ARGV[1]
if redis.call('SISMEMBER', KEYS[2], id) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hb = tonumber(redis.call('HGET', KEYS[1], 'heartbeat') or '0') or 0
if now - hb <= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'data', ARGV[3], 'heartbeat', now, 'control', 'run')
redis.call('HDEL', KEYS[1], 'worker')
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('ZADD', KEYS[5], ARGV[4], id)
return 1
