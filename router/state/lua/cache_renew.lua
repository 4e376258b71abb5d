--[[
  cache_renew: a leader still working extends its single-flight lease (only its own lock).

  KEYS[1] lock  STRING  the leader's token

  ARGV[1] token     the leader's token
  ARGV[2] lease_ms  the new lease

  Reply: 1 when renewed, 0 when the lock is gone or another caller's
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
