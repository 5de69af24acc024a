-- Atomic swap of a warmed shadow generation over the live one.
-- Every key is in the datasource's {ds:N} slot.
-- KEYS: 1 lock, 2 epoch, 3 shadow master, 4 live master, 5 shadow index list,
--       6 live index list, 7 meta hash, 8 last_warm, 9 since_warm stats
-- ARGV: 1 job id, 2 epoch seen when the warm began, 3 live entry prefix,
--       4 shadow entry prefix, 5 live index prefix, 6 shadow index prefix,
--       7 last_warm ISO time, 8.. meta field/value pairs
-- Returns {1, generation, missing shadow keys} on success, {0, reason} when a
-- check fails; a failed check changes nothing.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, 'this job no longer holds the warm lock'}
end
local epoch = redis.call('GET', KEYS[2]) or '0'
if epoch ~= ARGV[2] then
  return {0, 'the datasource was invalidated while it was being warmed'}
end

local function rebase(name, from, to)
  return to .. string.sub(name, #from + 1)
end

local entries = redis.call('SMEMBERS', KEYS[3])
local indexes = redis.call('SMEMBERS', KEYS[5])

-- Live entries and indexes the new generation no longer has.
for _, k in ipairs(redis.call('SDIFF', KEYS[4], KEYS[3])) do
  redis.call('DEL', k)
end
for _, k in ipairs(redis.call('SDIFF', KEYS[6], KEYS[5])) do
  redis.call('DEL', k)
end

-- A shadow key can only be missing if something deleted it behind the warm's
-- back (an invalidation would have changed the epoch); such an entry is left
-- out and counted rather than stopping halfway.
local missing = 0
for _, k in ipairs(entries) do
  if not redis.pcall('RENAME', rebase(k, ARGV[3], ARGV[4]), k).ok then
    missing = missing + 1
    redis.call('SREM', KEYS[3], k)
    redis.call('DEL', k)
  end
end
for _, k in ipairs(indexes) do
  if not redis.pcall('RENAME', rebase(k, ARGV[5], ARGV[6]), k).ok then
    missing = missing + 1
    redis.call('SREM', KEYS[5], k)
  end
end
if #entries > 0 then
  redis.call('RENAME', KEYS[3], KEYS[4])
else
  redis.call('DEL', KEYS[4])
end
if #indexes > 0 then
  redis.call('RENAME', KEYS[5], KEYS[6])
else
  redis.call('DEL', KEYS[6])
end

local generation = tonumber(redis.call('HGET', KEYS[7], 'generation') or '0') + 1
redis.call('DEL', KEYS[7])
local fields = {'generation', tostring(generation)}
for i = 8, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[7], unpack(fields))
redis.call('SET', KEYS[8], ARGV[7])
redis.call('DEL', KEYS[9])
return {1, generation, missing}
