#!lua flags=no-writes
-- One bounded read of a collection for the key inspector. Elements are
-- read inside Redis and only their first ARGV[4] bytes travel, each with
-- its full length, so a collection of 10 MB elements sends a few KiB per
-- element, not the elements.
-- KEYS: 1 the key
-- ARGV: 1 kind (list, zset, hash, set), 2 cursor (an index for list and
--       zset, a SCAN cursor for hash and set), 3 most elements to read,
--       4 cap (bytes of one element sent), 5 bytes to send in this call,
--       6 most SCAN calls in this call
-- Returns {next cursor, then per element its first bytes and full length,
-- for a zset followed by its score} where the elements are list items, set
-- members, zset members, or hash fields and values in turn.
-- The next cursor is '' when the collection ends here.

local key = KEYS[1]
local kind = ARGV[1]
local cursor = ARGV[2]
local want = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local max_calls = tonumber(ARGV[6])

local out = {''}
-- `read` counts whole element bytes loaded into the script: a call ends
-- once it passes the budget too, so one call holds at most one huge
-- element beyond the budget (memory inside Redis, not only on the wire).
local got, sent, read = 0, 0, 0

-- Adds a cut element and its full length; true when it was cut.
local function put(s)
  local n = #s
  read = read + n
  if n > cap then
    out[#out + 1] = string.sub(s, 1, cap)
    sent = sent + cap
  else
    out[#out + 1] = s
    sent = sent + n
  end
  out[#out + 1] = n
  return n > cap
end

-- Elements per inner call: one while they are big, more while they are
-- small, never more than the bytes left could hold at the cap.
local step = 1
local per = (kind == 'zset' or kind == 'hash') and 2 or 1
local function next_step(big)
  if big then
    return 1
  end
  local room = math.floor((budget - sent) / (cap * per))
  return math.max(1, math.min(step * 2, room, 256))
end

if kind == 'list' or kind == 'zset' then
  local at = tonumber(cursor)
  local len = redis.call(kind == 'list' and 'LLEN' or 'ZCARD', key)
  while got < want and at < len and sent < budget and read < budget do
    local n = math.min(step, want - got)
    local items
    if kind == 'list' then
      items = redis.call('LRANGE', key, at, at + n - 1)
    else
      items = redis.call('ZRANGE', key, at, at + n - 1, 'WITHSCORES')
    end
    if #items == 0 then
      break
    end
    local big = false
    for i = 1, #items, per do
      if put(items[i]) then
        big = true
      end
      if kind == 'zset' then
        out[#out + 1] = items[i + 1]
      end
    end
    local count = #items / per
    items = nil
    if big then
      collectgarbage()
    end
    at = at + count
    got = got + count
    step = next_step(big)
  end
  if at < len then
    out[1] = tostring(at)
  end
  return out
end

-- hash, set: SCAN pages; a page is sent whole (each element cut), so the
-- cursor stays exact.
local cmd = kind == 'hash' and 'HSCAN' or 'SSCAN'
local calls = 0
repeat
  local r = redis.call(cmd, key, cursor, 'COUNT', step)
  cursor = r[1]
  local big = false
  for _, v in ipairs(r[2]) do
    if put(v) then
      big = true
    end
  end
  got = got + #r[2] / per
  calls = calls + 1
  step = next_step(big)
  r = nil
  if big then
    collectgarbage()
  end
until cursor == '0' or got >= want or sent >= budget or read >= budget or calls >= max_calls
if cursor ~= '0' then
  out[1] = cursor
end
return out
