--[[
  tenant_status: what a tenant entity holds now, read only.

  KEYS: one entity's 6 tenant keys   ARGV[1] budget period (ms, 0 = never resets)

  Reply: {now, requests in 60 s, tokens in 60 s, in flight, spent, reserved, period start}
         (spend in nano-USD; spent is 0 when the period is over)
]]
--@flags allow-oom
--@include common.lua
--@include capacity.lua
local win, tok, run, spend = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local period = tonumber(ARGV[1])
local now = now_ms()
local edge = '(' .. int(now - WINDOW)
-- The window's total less what has expired and not been pruned yet (a handful: every admission
-- prunes), so a key with a busy minute costs no more to read than a quiet one.
local tokens = tonumber(redis.call('HGET', tok, '=total')) or 0
local stale = redis.call('ZRANGEBYSCORE', win, '-inf', now - WINDOW, 'LIMIT', 0, 5000)
if #stale > 0 then
  for _, t in ipairs(redis.call('HMGET', tok, unpack(stale))) do tokens = tokens - (tonumber(t) or 0) end
end
local got = redis.call('HMGET', spend, 'p', 's', 'r')
local start = tonumber(got[1]) or now
local spent = tonumber(got[2]) or 0
if period > 0 and now >= start + period then
  start = now - (now - start) % period
  spent = 0
end
return {now, redis.call('ZCOUNT', win, edge, '+inf'), math.max(tokens, 0), redis.call('ZCOUNT', run, '(' .. int(now), '+inf'), spent,
        tonumber(got[3]) or 0, start}
