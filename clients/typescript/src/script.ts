import { createHash } from "node:crypto";

// The read step (README, "Reading"): one generation per query, bounded. This
// is cachedeck's own src/cache/lua/query.lua, byte for byte (a test compares
// them), so both readers select the same members (only the datasource's own
// `cache:{ds:N}:` entry keys), order them bytewise whatever the server's
// locale, and share one script SHA in the server's script cache.
//
// KEYS: 1 live master, 2 meta hash, 3 epoch, 4 measure+frequency index,
//       then ARGV[1] practice indexes, then ARGV[2] provider indexes
// ARGV: 1 np, 2 nv, 3 member cap
// Returns {'miss', gen, epoch} when the master is absent,
//         {'large', gen, epoch} when the sets hold more than cap members,
//         else {'hit'|'miss', gen, epoch, n, key1..keyn, value1..valuen}
//         ('miss' when an entry is gone; '' stands in for its value).
export const QUERY_SCRIPT = `-- One bounded query (README, "Reading"): answers in one step when the sets
-- to read hold at most ARGV[3] members together, otherwise says 'large' and
-- the client reads them in SSCAN steps.
-- KEYS: 1 live master, 2 meta hash, 3 epoch, 4 measure+frequency index,
--       then ARGV[1] practice indexes, then ARGV[2] provider indexes,
--       then optionally the live index list (a set to read that does not
--       exist but is listed there vanished: evicted or deleted, a miss,
--       not a value the source never had)
-- ARGV: 1 np, 2 nv, 3 member cap
-- Returns {'miss', generation, epoch} when the master does not exist,
-- {'large', generation, epoch} when the sets are larger than the cap,
-- otherwise {status, generation, epoch, n, key1..keyn, value1..valuen} with
-- the keys in bytewise order; status is 'miss' when any value is missing
-- (its value is then '').

local generation = redis.call('HGET', KEYS[2], 'generation') or '0'
local epoch = redis.call('GET', KEYS[3]) or '0'
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'miss', generation, epoch}
end
local np = tonumber(ARGV[1])
local nv = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])

local first, count
if np == 0 and nv == 0 then
  first, count = 4, 1
else
  first, count = 5, np + nv
end
local list = KEYS[5 + np + nv]
local total = 0
for i = first, first + count - 1 do
  local n = redis.call('SCARD', KEYS[i])
  if n == 0 and list and redis.call('SISMEMBER', list, KEYS[i]) == 1 then
    return {'miss', generation, epoch}
  end
  total = total + n
end
if total > cap then
  return {'large', generation, epoch}
end

-- Only entry keys of this datasource are read: a member with another prefix
-- (written by something else) cannot be a cached group of this query.
local prefix = 'cache:' .. string.match(KEYS[1], '^idx:(%b{}):master$') .. ':'
local function union(from, n)
  local set = {}
  for i = from, from + n - 1 do
    for _, m in ipairs(redis.call('SMEMBERS', KEYS[i])) do
      if string.sub(m, 1, #prefix) == prefix then
        set[m] = true
      end
    end
  end
  return set
end

local chosen
if np == 0 and nv == 0 then
  chosen = union(4, 1)
elseif np > 0 and nv > 0 then
  local a = union(5, np)
  local b = union(5 + np, nv)
  chosen = {}
  for k in pairs(a) do
    if b[k] then chosen[k] = true end
  end
elseif np > 0 then
  chosen = union(5, np)
else
  chosen = union(5, nv)
end

-- Bytewise order whatever the server's locale (Lua compares strings with
-- strcoll): each key becomes numbers of 6 bytes each, base 257, a byte b as
-- b + 1 and 0 past the end, so comparing the numbers in turn compares bytes.
local function digit(b)
  if b then return b + 1 end
  return 0
end
local packed = {}
local keys = {}
for k in pairs(chosen) do
  keys[#keys + 1] = k
  local p = {}
  for i = 1, #k, 6 do
    local a1, a2, a3, a4, a5, a6 = string.byte(k, i, i + 5)
    p[#p + 1] = ((((digit(a1) * 257 + digit(a2)) * 257 + digit(a3)) * 257
      + digit(a4)) * 257 + digit(a5)) * 257 + digit(a6)
  end
  packed[k] = p
end
table.sort(keys, function(x, y)
  local a, b = packed[x], packed[y]
  for i = 1, #a do
    local u, v = a[i], b[i]
    if v == nil then return false end
    if u ~= v then return u < v end
  end
  return #a < #b
end)

local out = {'hit', generation, epoch, #keys}
for _, k in ipairs(keys) do
  out[#out + 1] = k
end
local status = 'hit'
for i = 1, #keys, 500 do
  local last = math.min(i + 499, #keys)
  local values = redis.call('MGET', unpack(keys, i, last))
  for j = 1, last - i + 1 do
    local v = values[j]
    if not v then
      status = 'miss'
      v = ''
    end
    out[#out + 1] = v
  end
end
out[1] = status
return out
`;

/** SHA1 of the script, for EVALSHA. */
export const QUERY_SCRIPT_SHA = createHash("sha1").update(QUERY_SCRIPT).digest("hex");
