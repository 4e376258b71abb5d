--[[
  release_tenant: the last attempt of a request released together with its tenant (one script
  when both live on one Redis node).

  KEYS: release.lua's keys, then the tenant's, 6 per entity
  ARGV[1] number of group keys G   ARGV[2] number of group values V
  ARGV[3 .. 2+V]   release.lua's values
  ARGV[3+V] request id   ARGV[4+V] tokens used   ARGV[5+V] cost (nano-USD)
  ARGV[6+V] cost reserved at admission (nano-USD)
  ARGV[7+V] number of entities N, then per entity the 8 values of tenant.lua

  Reply: {release.lua's reply, tenant_release.lua's reply}
]]
--@flags allow-oom
--@include common.lua
--@include capacity.lua
--@include fair.lua
--@include release_core.lua
--@include tenant.lua

local g, v = tonumber(ARGV[1]), tonumber(ARGV[2])
local gk, ga = slice(KEYS, 1, g), slice(ARGV, 3, 2 + v)  -- as release.lua takes them
local now = now_ms()
local group_reply = release_group(gk, ga, now)
local rid, used, cost = ARGV[3 + v], tonumber(ARGV[4 + v]), tonumber(ARGV[5 + v])
local ents = tenant_entities(KEYS, ARGV, g, 7 + v, tonumber(ARGV[7 + v]))
return {group_reply, tenant_release(ents, rid, used, cost, tonumber(ARGV[6 + v]), now, false)}
