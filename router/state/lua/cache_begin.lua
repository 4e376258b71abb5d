--[[
  cache_begin: look a response cache entry up and, on a miss, try to become the one caller
  (fleet-wide) that computes it (single-flight). Read and lock in one step, so two instances
  can never both see a miss with no leader.

  KEYS[1] entry  STRING  the stored response (JSON); its TTL is the entry's
  KEYS[2] lock   STRING  the leader's token; its TTL is the lease

  ARGV[1] token     this caller's random token
  ARGV[2] lease_ms  how long the lock holds without a renewal ("0": read only, never lead)

  Reply: {1, entry} a hit; {2} this caller leads; {0, lease left (ms)} another caller leads
         (or nobody may lead: ARGV[2] was 0 and there is no entry, then lease left is -2)
]]
local value = redis.call('GET', KEYS[1])
if value then return {1, value} end
local lease = tonumber(ARGV[2])
if lease <= 0 then return {0, -2} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', lease) then return {2} end
return {0, redis.call('PTTL', KEYS[2])}
