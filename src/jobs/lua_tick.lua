-- One progress tick of a running job: renews its run slot (or, when the
-- lease lapsed because the process stalled, takes a slot again only under
-- the limit) and writes its record with a heartbeat, all at once, so the
-- record never says "running" for a job that holds no slot.
-- KEYS: 1 slots (zset id -> lease deadline), 2 live jobs (set),
--       3 job record (hash)
-- ARGV: 1 job id, 2 limit, 3 lease ms, 4 record data while it holds a slot,
--       5 record data while it waits for one, 6 record lifetime ms
-- Returns 1 renewed, 2 taken again after a lapse, 0 lapsed and every slot
-- is taken (the waiting data was written), -1 no longer live (the job was
-- given up as dead: nothing written).
local id = ARGV[1]
if redis.call('SISMEMBER', KEYS[2], id) == 0 then
  return -1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local result = 0
if redis.call('ZSCORE', KEYS[1], id) then
  result = 1
elseif redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  result = 2
end
local data = ARGV[5]
if result > 0 then
  redis.call('ZADD', KEYS[1], deadline, id)
  data = ARGV[4]
end
redis.call('HSET', KEYS[3], 'data', data, 'heartbeat', now)
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return result
