-- Ends a job whose process stopped, exactly once: only while it is live
-- and its heartbeat is still stale (a process that came back wins).
-- KEYS: 1 job record (hash), 2 live jobs (set), 3 queue (zset),
--       4 slots (zset)
-- ARGV: 1 job id, 2 heartbeat staleness ms, 3 final record data (JSON),
--       4 lifetime of an ended record in seconds
-- Returns 1 ended by this call, 0 not (alive again, or already ended).
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
redis.call('HSET', KEYS[1], 'data', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
return 1
