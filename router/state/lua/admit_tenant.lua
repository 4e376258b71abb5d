--[[
  admit_tenant: a request's first admission with its tenant's checks, in one script (used when
  the tenant's keys and the group's keys live on one Redis node).

  KEYS: the group's keys as admit.lua takes them, then the tenant's (tenant.lua), 6 per entity
  ARGV[1] number of group keys G
  ARGV[2] number of group values V
  ARGV[3 .. 2+V]     admit.lua's values
  ARGV[3+V]          number of tenant entities N (1 or 2)
  ARGV[4+V]          cost to reserve (nano-USD)
  ARGV[5+V ..]       per entity, the 8 values of tenant.lua

  Reply: admit.lua's reply; or {-2, code, entity, ms} when a tenant limit refuses the request,
  in which case nothing was written. The tenant's reservation is made whenever the request is
  admitted or waits in line (a full line leaves nothing behind).
]]
--@include common.lua
--@include capacity.lua
--@include fair.lua
--@include admit_core.lua
--@include tenant.lua

local g, v = tonumber(ARGV[1]), tonumber(ARGV[2])
local gk, ga = slice(KEYS, 1, g), slice(ARGV, 3, 2 + v)  -- as admit.lua takes them
local n, cost = tonumber(ARGV[3 + v]), tonumber(ARGV[4 + v])
local ents = tenant_entities(KEYS, ARGV, g, 4 + v, n)
local rid, tokens, lease = ga[1], tonumber(ga[4]), tonumber(ga[5])
local now = now_ms()

local denied = tenant_check(ents, tokens, cost, now)
if denied ~= nil then return denied end
local reply = admit_group(gk, ga, now)
if reply[1] ~= -1 then tenant_reserve(ents, rid, tokens, cost, now, lease) else tenant_keep(ents) end
return reply
