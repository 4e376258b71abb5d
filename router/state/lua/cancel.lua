--[[
  cancel: a waiting request leaves the line (its client went away, it timed out, or it was
  served). When it was the head, the new head is woken.

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] wlease  ZSET  waiter leases
  KEYS[3] wmeta   HASH  waiter arrival times

  KEYS[4] health  HASH  (optional) the group's health, where a timed-out waiter is counted
  ARGV[1] request id
  ARGV[2] wake channel
  ARGV[3] (optional) 1 when the waiter leaves because its timeout ran out (stats.lua)

  Reply: 1 when the request was in the line, else 0
]]
--@flags allow-oom
--@include common.lua
--@include stats.lua
local line, wlease, wmeta = KEYS[1], KEYS[2], KEYS[3]
local rid, channel = ARGV[1], ARGV[2]

local rank = redis.call('ZRANK', line, rid)
redis.call('ZREM', wlease, rid)
redis.call('HDEL', wmeta, rid, 't:' .. rid)
if rank == false then return 0 end
redis.call('ZREM', line, rid)
if KEYS[4] ~= nil and ARGV[3] == '1' then stat_group(KEYS[4], 'timeout', now_ms()) end
if rank == 0 then
  local head = redis.call('ZRANGE', line, 0, 0)
  if #head > 0 then redis.call('PUBLISH', channel, head[1]) end
end
return 1
