--[[
  status: the depth of a group's line per priority and the oldest arrival per priority.

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] wlease  ZSET  waiter leases
  KEYS[3] wmeta   HASH  waiter arrival times

  Reply: {now (ms), priority, count, oldest arrival (ms), priority, count, oldest, ...}
         ordered by priority; expired waiters are not counted. Waiters promoted by aging
         (tiers.lua) count at AGED, one below the most important priority a request may have.
]]
--@include common.lua
local line, wlease, wmeta = KEYS[1], KEYS[2], KEYS[3]
local SHIFT = 4294967296
local AGED = -1048576

local now = now_ms()

local out = {now}
local entries = redis.call('ZRANGE', line, 0, -1, 'WITHSCORES')
local current, count, oldest = nil, 0, 0
for i = 1, #entries, 2 do
  local rid = entries[i]
  local expiry = tonumber(redis.call('ZSCORE', wlease, rid))
  if expiry ~= nil and expiry > now then
    local prio = math.floor(tonumber(entries[i + 1]) / SHIFT)
    if prio < AGED then prio = AGED end
    local arrived = tonumber(redis.call('HGET', wmeta, rid)) or now
    if prio ~= current then
      if current ~= nil then
        out[#out + 1] = current; out[#out + 1] = count; out[#out + 1] = oldest
      end
      current, count, oldest = prio, 0, arrived
    end
    count = count + 1
    if arrived < oldest then oldest = arrived end
  end
end
if current ~= nil then
  out[#out + 1] = current; out[#out + 1] = count; out[#out + 1] = oldest
end
return out
