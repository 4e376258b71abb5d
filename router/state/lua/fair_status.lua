--[[
  fair_status: each tenant's waiting requests and served weighted tokens in one group, read from
  the fair-share clock admit keeps (fair.lua), for /queue/status and the metrics.

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] wlease  ZSET  waiter leases
  KEYS[3] wmeta   HASH  "t:<request id>" -> its tenant (waiters), "=s:<tenant>" -> weighted tokens
                        served since the clock started

  Reply: {tenant, waiting, served, tenant, waiting, served, ...} in no particular order.
  Waiting is counted among the first WAITING_SCAN live waiters in line: polled by monitoring,
  this must not cost Redis time in proportion to a line of thousands (one read of that many
  ids, one HMGET; the served counters are found by a scan of the hash in Redis' own code).
]]
--@flags allow-oom
--@include common.lua
--@include waiters_by_tenant.lua
local line, wlease, wmeta = KEYS[1], KEYS[2], KEYS[3]
local WAITING_SCAN = 1000
local now = now_ms()

local gone = {}
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', wlease, '-inf', now)) do gone[rid] = true end
local waiting, names = waiters_by_tenant(line, wmeta, gone, WAITING_SCAN)
local served = {}
for _, tenant in ipairs(names) do served[tenant] = 0 end

local cursor = '0'
repeat
  local page = redis.call('HSCAN', wmeta, cursor, 'MATCH', '=s:*', 'COUNT', 1000)
  cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do served[string.sub(fields[i], 4)] = tonumber(fields[i + 1]) end
until cursor == '0'

local out = {}
for tenant, tokens in pairs(served) do
  out[#out + 1] = tenant
  out[#out + 1] = waiting[tenant] or 0
  out[#out + 1] = tokens
end
return out
