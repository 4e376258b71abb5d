--[[
  status: the depth of a group's line per priority and the arrival of each priority's head.

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] wlease  ZSET  waiter leases
  KEYS[3] wmeta   HASH  waiter arrival times

  Reply: {now (ms), priority, count, head's arrival (ms), priority, count, arrival, ...}
         ordered by priority; expired waiters are not counted. Waiters promoted by aging
         (tiers.lua) count at AGED, one below the most important priority a request may have.
  Its cost does not grow with the line (line_bands.lua). A priority's head is its oldest
  waiter when the line is ordered by arrival; with fair share it is the one whose tenant
  received least, and an older request of another tenant may wait behind it.
]]
--@flags allow-oom
--@include common.lua
--@include line_bands.lua
local line, wlease, wmeta = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
local out = {now}
for _, band in ipairs(line_bands(line, wlease, wmeta, now)) do
  out[#out + 1] = band[1]; out[#out + 1] = band[2]; out[#out + 1] = band[3]
end
return out
