--[[
  tenant_release: the end of a request for its tenant: its parallel slot freed, its tokens and
  cost reconciled (see tenant.lua).

  KEYS: the tenant's keys, 6 per entity
  ARGV[1] request id   ARGV[2] tokens used (-1 keeps the reservation)   ARGV[3] cost (nano-USD)
  ARGV[4] 1 to undo the reservation entirely (the request's line was full), else 0
  ARGV[5] cost reserved at admission (nano-USD)
  ARGV[6] number of entities N, then per entity the 8 values of tenant.lua

  Reply: {entity indexes that just crossed their soft budget...}
]]
--@flags allow-oom
--@include common.lua
--@include capacity.lua
--@include tenant.lua

local rid, used, cost, undo = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local ents = tenant_entities(KEYS, ARGV, 0, 6, tonumber(ARGV[6]))
return tenant_release(ents, rid, used, cost, tonumber(ARGV[5]), now_ms(), undo)
