-- Removes some entries and their index memberships in one step.
-- KEYS: 1 live master, 2 live index list, 3 meta
-- ARGV: groups of 4: entry key, measure+frequency index, practice index,
--       provider index
-- Returns {entries deleted, indexes deleted}.
local deleted = 0
local touched = {}
for i = 1, #ARGV, 4 do
  local k = ARGV[i]
  deleted = deleted + redis.call('DEL', k)
  redis.call('SREM', KEYS[1], k)
  for j = 1, 3 do
    local idx = ARGV[i + j]
    redis.call('SREM', idx, k)
    touched[idx] = true
  end
end
local dropped = 0
for idx in pairs(touched) do
  if redis.call('SCARD', idx) == 0 then
    redis.call('SREM', KEYS[2], idx)
    dropped = dropped + 1
  end
end
if deleted > 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'entries', -deleted)
  redis.call('HINCRBY', KEYS[3], 'indexes', -dropped)
end
return {deleted, dropped}
