-- Takes entries whose shadow key vanished before the swap out of the live
-- generation, only while the fencing counter is still the swapping warm's.
-- KEYS: 1 fencing counter, 2 live master set, 3 live index list, 4 meta,
--       then per entry: the entry's live key and its three secondary indexes.
-- ARGV: 1 the warm's fencing number.
-- Returns the entries removed from the master set, or -1 when another
-- holder has taken the lock since (nothing is touched).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local removed = 0
for i = 5, #KEYS, 4 do
  local entry = KEYS[i]
  removed = removed + redis.call('SREM', KEYS[2], entry)
  redis.call('UNLINK', entry)
  for j = i + 1, i + 3 do
    redis.call('SREM', KEYS[j], entry)
    if redis.call('EXISTS', KEYS[j]) == 0 then
      redis.call('SREM', KEYS[3], KEYS[j])
    end
  end
end
if removed > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HINCRBY', KEYS[4], 'entries', -removed)
end
return removed
