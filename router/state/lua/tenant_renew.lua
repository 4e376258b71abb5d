--[[
  tenant_renew: extend the parallel-slot leases of one instance's requests of one tenant.

  KEYS: the tenant's keys, 6 per entity
  ARGV[1] lease (ms)   ARGV[2] number of entities N, then per entity the 8 values of tenant.lua
  ARGV[3 + 8N ..] request ids

  Reply: the number of leases extended
]]
--@flags allow-oom
--@include common.lua
--@include capacity.lua
--@include tenant.lua

local lease, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local ents = tenant_entities(KEYS, ARGV, 0, 2, n)
local now = now_ms()
local renewed = 0
for _, e in ipairs(ents) do
  -- What a dead instance held goes back first; the count in flight kept beside the window
  -- is then counted again by the next admission.
  if expire_leases(e, now) > 0 then redis.call('HDEL', e.tok, '=p') end
  for i = 3 + TENANT_VALUES * n, #ARGV do
    renewed = renewed + redis.call('ZADD', e.run, 'XX', 'CH', now + lease, ARGV[i])
  end
  touch(e.run, lease + WINDOW)
end
return renewed
