-- Writes a live job's record with a heartbeat from Redis TIME, only while
-- the job is live: a process that was given up as dead cannot bring its
-- record back.
-- KEYS: 1 job record (hash), 2 live jobs (set)
-- ARGV: 1 job id, 2 record data (JSON), 3 record lifetime ms
-- Returns 1 written, 0 not live (nothing written).
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'heartbeat', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
