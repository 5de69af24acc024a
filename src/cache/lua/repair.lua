-- Entries whose shadow key vanished before the swap (evicted, deleted by
-- hand): the new generation has no value for them. They stay listed in the
-- master and index sets and are recorded as invalidated, so every query
-- touching them misses (the read contract) until the next warm restores
-- them; the live key, the previous generation's value, is deleted. Runs only
-- while the fencing counter is still the swapping warm's.
-- KEYS: 1 fencing counter, 2 live master set, 3 invalidated set,
--       then the entries' live keys.
-- ARGV: 1 the warm's fencing number, 2 the generation's expiry (unix ms).
-- Returns the entries recorded, or -1 when another holder has taken the
-- lock since (nothing is touched).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local recorded = 0
for i = 4, #KEYS do
  local entry = KEYS[i]
  if redis.call('SISMEMBER', KEYS[2], entry) == 1 then
    redis.call('UNLINK', entry)
    redis.call('SADD', KEYS[3], entry)
    recorded = recorded + 1
  end
end
if recorded > 0 then
  redis.call('PEXPIREAT', KEYS[3], ARGV[2])
end
return recorded
