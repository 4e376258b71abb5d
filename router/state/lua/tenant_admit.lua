--[[
  tenant_admit: a tenant's checks and reservation alone, for a request whose group lives on
  another Redis Cluster node (the group's admit follows; a full line refunds with
  tenant_release).

  KEYS: the tenant's keys (tenant.lua), 6 per entity
  ARGV[1] request id   ARGV[2] tokens   ARGV[3] cost (nano-USD)   ARGV[4] lease (ms)
  ARGV[5] number of entities N, then per entity the 8 values of tenant.lua

  Reply: {1} reserved, or {-2, code, entity, ms} refused (nothing written)
]]
--@include common.lua
--@include capacity.lua
--@include tenant.lua

local rid, tokens, cost, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ents = tenant_entities(KEYS, ARGV, 0, 5, tonumber(ARGV[5]))
local now = now_ms()
local denied = tenant_check(ents, tokens, cost, now)
if denied ~= nil then return denied end
tenant_reserve(ents, rid, tokens, cost, now, lease)
return {1}
