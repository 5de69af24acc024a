-- The scheduler's leader lease: take it when free, renew it when ours.
-- KEYS: 1 the lease; ARGV: 1 this instance's id, 2 lease ms
-- Returns 1 when this instance leads (taken or renewed), 0 otherwise.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
