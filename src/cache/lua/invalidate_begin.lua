-- Starts a full invalidation: bumps the epoch (a running warm's swap then
-- aborts), moves the master index and index list aside so readers see a cold
-- cache at once, and drops meta. The moved sets are emptied in batches after.
-- KEYS: 1 epoch, 2 live master, 3 live index list, 4 meta, 5 last_warm,
--       6 since_warm, 7 trash master, 8 trash index list
-- Returns {epoch, memoryBytes from meta or '0', entries from meta or '0'}.
local epoch = redis.call('INCR', KEYS[1])
local memory = redis.call('HGET', KEYS[4], 'memoryBytes') or '0'
local entries = redis.call('HGET', KEYS[4], 'entries') or '0'
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[7])
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[8])
end
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
return {epoch, memory, entries}
