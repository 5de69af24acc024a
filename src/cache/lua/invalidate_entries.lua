-- Invalidates some entries in one step (the caller holds the warm lock):
-- deletes them but keeps them listed in the master and secondary index sets,
-- so every reader of them sees a missing entry (a miss) until the next swap,
-- and records them in the invalidated set, which expires with the live
-- generation. Bumps the epoch, so a bounded read that straddles this step
-- starts over.
-- Runs only while the fencing counter is still the caller's acquisition.
-- KEYS: 1 live master, 2 invalidated entries, 3 epoch, 4 fencing counter
-- ARGV: 1 the caller's fencing number, then entry keys (of this datasource)
-- Returns the number of entries deleted, or -1 when another holder has
-- taken the lock since (nothing is touched).
if redis.call('GET', KEYS[4]) ~= ARGV[1] then
  return -1
end
local deleted = 0
for i = 2, #ARGV do
  deleted = deleted + redis.call('UNLINK', ARGV[i])
  redis.call('SADD', KEYS[2], ARGV[i])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
elseif ttl == -2 then
  -- No live generation: nothing is listed, nothing waits for a warm.
  redis.call('DEL', KEYS[2])
end
redis.call('INCR', KEYS[3])
return deleted
