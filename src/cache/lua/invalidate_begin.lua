-- Starts a full invalidation (the caller holds the warm lock): bumps the
-- epoch, moves the master index and index list aside so readers see a cold
-- cache at once, and drops meta, last_warm and the set of selectively
-- invalidated entries. The moved sets are emptied in batches after. The
-- reader counters since the last swap are kept.
-- KEYS: 1 epoch, 2 live master, 3 live index list, 4 meta, 5 last_warm,
--       6 invalidated entries, 7 trash master, 8 trash index list,
--       9 fencing counter
-- ARGV: 1 the caller's fencing number
-- Returns {epoch, memoryBytes from meta or '0', entries from meta or '0'},
-- or {-1, '0', '0'} when another holder has taken the lock since (nothing
-- is touched).
if redis.call('GET', KEYS[9]) ~= ARGV[1] then
  return {-1, '0', '0'}
end
local epoch = redis.call('INCR', KEYS[1])
local memory = redis.call('HGET', KEYS[4], 'memoryBytes') or '0'
local entries = redis.call('HGET', KEYS[4], 'entries') or '0'
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[7])
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[8])
end
redis.call('UNLINK', KEYS[4], KEYS[5], KEYS[6])
return {epoch, memory, entries}
