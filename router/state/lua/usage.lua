--[[
  usage: what each listed deployment of a group holds now. Read only: nothing is pruned, so
  entries past their window are left out by score instead.

  KEYS[1] health  HASH  <deployment>:cool -> cooldown end (ms)
  KEYS[2..]       per deployment i, 4 keys: rpm, tpm, tok, run

  ARGV[i]  deployment id of the i-th group of keys

  Reply: {now (ms), then per deployment: requests, tokens, in flight, cooldown end (ms, 0 = none)}
]]
--@flags allow-oom
--@include common.lua
--@include capacity.lua
local health = KEYS[1]
local now = now_ms()
local out = {now}
for i = 1, #ARGV do
  local rpm, tpm, tok, run = KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i], KEYS[4 * i + 1]
  local edge = '(' .. int(now - WINDOW)
  local requests = redis.call('ZCOUNT', rpm, edge, '+inf')
  local tokens = 0
  for _, slot in ipairs(redis.call('ZRANGEBYSCORE', tpm, edge, '+inf')) do
    tokens = tokens + (tonumber(redis.call('HGET', tok, slot)) or 0)
  end
  local running = redis.call('ZCOUNT', run, '(' .. int(now), '+inf')
  local cool = tonumber(redis.call('HGET', health, ARGV[i] .. ':cool')) or 0
  if cool <= now then cool = 0 end
  out[#out + 1] = requests
  out[#out + 1] = tokens
  out[#out + 1] = running
  out[#out + 1] = cool
end
return out
