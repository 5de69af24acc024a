-- One generation per query: the index read and the entry fetch in one script.
-- KEYS: 1 live master, 2 meta hash, 3 measure+frequency index,
--       then ARGV[1] practice indexes, then ARGV[2] provider indexes
-- Returns {status, generation, n, key1..keyn, value1..valuen}; status is
-- 'hit' or 'miss' (cold cache, or an indexed entry is gone).

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'miss', '0', 0}
end
local generation = redis.call('HGET', KEYS[2], 'generation') or '0'
local np = tonumber(ARGV[1])
local nv = tonumber(ARGV[2])

local function union(from, count)
  local set = {}
  for i = from, from + count - 1 do
    for _, m in ipairs(redis.call('SMEMBERS', KEYS[i])) do
      set[m] = true
    end
  end
  return set
end

local chosen
if np == 0 and nv == 0 then
  chosen = union(3, 1)
elseif np > 0 and nv > 0 then
  local a = union(4, np)
  local b = union(4 + np, nv)
  chosen = {}
  for k in pairs(a) do
    if b[k] then chosen[k] = true end
  end
elseif np > 0 then
  chosen = union(4, np)
else
  chosen = union(4, nv)
end

local keys = {}
for k in pairs(chosen) do
  keys[#keys + 1] = k
end
table.sort(keys)
local out = {'hit', generation, #keys}
for _, k in ipairs(keys) do
  out[#out + 1] = k
end
local status = 'hit'
for i = 1, #keys, 500 do
  local last = math.min(i + 499, #keys)
  local values = redis.call('MGET', unpack(keys, i, last))
  for j = 1, #values do
    if not values[j] then
      status = 'miss'
      values[j] = ''
    end
    out[#out + 1] = values[j]
  end
end
out[1] = status
return out
