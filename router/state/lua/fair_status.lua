--[[
  fair_status: each tenant's waiting requests and served weighted tokens in one group, read from
  the fair-share clock admit keeps (fair.lua), for /queue/status and the metrics.

  KEYS[1] wmeta  HASH  "t:<request id>" -> its tenant (waiters), "=s:<tenant>" -> weighted tokens
                       served since the clock started

  Reply: {tenant, waiting, served, tenant, waiting, served, ...} in no particular order
]]
local fields = redis.call('HGETALL', KEYS[1])
local waiting, served = {}, {}
for i = 1, #fields, 2 do
  local name = fields[i]
  if string.sub(name, 1, 2) == 't:' then
    local tenant = fields[i + 1]
    waiting[tenant] = (waiting[tenant] or 0) + 1
    served[tenant] = served[tenant] or 0
  elseif string.sub(name, 1, 3) == '=s:' then
    served[string.sub(name, 4)] = tonumber(fields[i + 1])
  end
end
local out = {}
for tenant, tokens in pairs(served) do
  out[#out + 1] = tenant
  out[#out + 1] = waiting[tenant] or 0
  out[#out + 1] = tokens
end
return out
