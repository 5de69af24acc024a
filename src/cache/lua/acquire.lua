-- Takes the warm lock KEYS[1] for ARGV[1] with a lease of ARGV[2] ms and
-- hands out the next fencing number from KEYS[2], in one step so no other
-- holder can come between.
-- Returns {1, fence} when taken, {0, current holder or ''} when not.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, tostring(redis.call('INCR', KEYS[2]))}
end
return {0, redis.call('GET', KEYS[1]) or ''}
