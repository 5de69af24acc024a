import { createHash } from "node:crypto";

// The read step: one generation per query, bounded. Index reads and entry
// fetch run in one script, so a small selection sees one generation; a
// selection larger than the cap is answered 'large' and read by the client
// in bounded steps (reader.ts).
//
// KEYS: 1 live master, 2 meta hash, 3 epoch, 4 measure+frequency index,
//       then ARGV[1] practice indexes, then ARGV[2] provider indexes
// ARGV: 1 np, 2 nv, 3 member cap
// Returns {'miss', gen, epoch} when the master is absent,
//         {'large', gen, epoch} when the sets hold more than cap members,
//         else {'hit'|'miss', gen, epoch, n, key1..keyn, value1..valuen}
//         ('miss' when an entry is gone; '' stands in for its value).
export const QUERY_SCRIPT = `
local gen = redis.call('HGET', KEYS[2], 'generation') or '0'
local epoch = redis.call('GET', KEYS[3]) or '0'
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'miss', gen, epoch}
end
local np = tonumber(ARGV[1])
local nv = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])

local first, last
if np == 0 and nv == 0 then
  first, last = 4, 4
else
  first, last = 5, 4 + np + nv
end
local total = 0
for i = first, last do
  total = total + redis.call('SCARD', KEYS[i])
end
if total > cap then
  return {'large', gen, epoch}
end

local function union(from, count)
  local set = {}
  for i = from, from + count - 1 do
    local members = redis.call('SMEMBERS', KEYS[i])
    for j = 1, #members do
      set[members[j]] = true
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

local keys = {}
for k in pairs(chosen) do
  keys[#keys + 1] = k
end
table.sort(keys)
local out = {'hit', gen, epoch, #keys}
for i = 1, #keys do
  out[#out + 1] = keys[i]
end
for i = 1, #keys, 500 do
  local values = redis.call('MGET', unpack(keys, i, math.min(i + 499, #keys)))
  for j = 1, #values do
    local v = values[j]
    if not v then
      out[1] = 'miss'
      v = ''
    end
    out[#out + 1] = v
  end
end
return out
`;

/** SHA1 of the script, for EVALSHA. */
export const QUERY_SCRIPT_SHA = createHash("sha1").update(QUERY_SCRIPT).digest("hex");
