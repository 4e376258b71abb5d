--[[
  tenant_status: what a tenant entity holds now, read only.

  KEYS: one entity's 8 tenant keys   ARGV[1] budget period (ms, 0 = never resets)

  Reply: {now, requests in 60 s, tokens in 60 s, in flight, spent, reserved, period start}
         (spend in nano-USD; spent is 0 when the period is over)
]]
--@include common.lua
--@include capacity.lua
local rpm, tpm, tok, run, spend = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local period = tonumber(ARGV[1])
local now = now_ms()
local edge = '(' .. int(now - WINDOW)
local tokens = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', tpm, edge, '+inf')) do
  tokens = tokens + (tonumber(redis.call('HGET', tok, id)) or 0)
end
local start = tonumber(redis.call('HGET', spend, 'p')) or now
local spent = tonumber(redis.call('HGET', spend, 's')) or 0
if period > 0 and now >= start + period then
  start = now - (now - start) % period
  spent = 0
end
return {now, redis.call('ZCOUNT', rpm, edge, '+inf'), tokens,
        redis.call('ZCOUNT', run, '(' .. int(now), '+inf'), spent,
        tonumber(redis.call('HGET', spend, 'r')) or 0, start}
