-- Sliding-window rate limit: prune, count and add in one step with Redis TIME.
-- KEYS: 1 the window (sorted set: member -> time in ms)
-- ARGV: 1 limit, 2 window ms, 3 units wanted, 4 unique member prefix
-- Returns {allowed 1|0, units in the window, ms until the request fits (-1: never)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + n > limit then
  if n > limit then
    return {0, used, -1}
  end
  -- The request fits once the (used + n - limit) oldest units have left.
  local need = used + n - limit
  local oldest = redis.call('ZRANGE', KEYS[1], need - 1, need - 1, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return {0, used, wait}
end
for i = 1, n do
  redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
end
redis.call('PEXPIRE', KEYS[1], window)
return {1, used + n, 0}
