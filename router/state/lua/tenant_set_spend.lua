--[[
  tenant_set_spend: set what a key or team spent in its current budget period (an import
  restoring a backup); the period starts now if it had not started.

  KEYS[1] spend  HASH  (tenant.lua)
  ARGV[1] spent (nano-USD)

  Reply: 1
]]
--@include common.lua
local spend = KEYS[1]
redis.call('HSET', spend, 's', int(tonumber(ARGV[1])))
if redis.call('HEXISTS', spend, 'p') == 0 then redis.call('HSET', spend, 'p', int(now_ms())) end
return 1
