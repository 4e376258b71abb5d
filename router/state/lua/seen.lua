--[[
  seen: note an instance as alive and list the instances seen recently (the dashboard's fleet).

  KEYS[1] seen  ZSET  instance -> last seen (ms)
  ARGV[1] instance   ARGV[2] window (ms): older entries are dropped

  Reply: {now (ms), instance, last seen (ms), instance, last seen, ...}
]]
--@flags allow-oom
--@include common.lua
local seen, window = KEYS[1], tonumber(ARGV[2])
local now = now_ms()
redis.call('ZADD', seen, now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', seen, '-inf', now - window)
redis.call('PEXPIRE', seen, window * 2)
local out = {now}
local found = redis.call('ZRANGE', seen, 0, -1, 'WITHSCORES')
for i = 1, #found do out[#out + 1] = found[i] end
return out
