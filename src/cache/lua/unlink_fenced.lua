-- UNLINKs KEYS[2..] only while the fencing counter KEYS[1] is still ARGV[1]
-- (the caller's acquisition of the warm lock): a holder whose lease lapsed
-- must not delete names a later holder has written since.
-- Returns how many keys existed, or -1 when another holder has taken the
-- lock since (nothing is touched).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if #KEYS < 2 then
  return 0
end
return redis.call('UNLINK', unpack(KEYS, 2))
