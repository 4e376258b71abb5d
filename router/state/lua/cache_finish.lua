--[[
  cache_finish: a leader is done: store its response (unless it has none to store), give the
  lock up if it still holds it, and wake every instance's followers of this entry.

  KEYS[1] entry  STRING  the stored response (JSON)
  KEYS[2] lock   STRING  the leader's token

  ARGV[1] token    the leader's token
  ARGV[2] value    the response to store; "" to store nothing (an error, a cancelled stream)
  ARGV[3] ttl_ms   the entry's TTL
  ARGV[4] channel  the wake channel
  ARGV[5] message  the wake message (the cache prefix and the entry's digest)

  Reply: 1 when the lock was still this leader's, else 0
]]
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
end
local held = 0
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  held = 1
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return held
