-- Gives up a lease only when this instance holds it.
-- KEYS: 1 the lease; ARGV: 1 this instance's id
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
