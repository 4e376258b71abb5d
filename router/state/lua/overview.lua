--[[
  overview: a group's line and deployments as the dashboard shows them. Read only: nothing is
  pruned, so expired entries are left out by their lease or score instead.

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] wlease  ZSET  waiter leases
  KEYS[3] wmeta   HASH  waiter arrival times; "t:<request id>" -> its fair-share tenant
  KEYS[4] health  HASH  <deployment>:cool, :why, :lat
  KEYS[5..]       per deployment i, 5 keys: rpm, tpm, tok, run, fails

  ARGV[i]  deployment id of the i-th group of keys

  Reply: {now (ms),
          n, then n times: priority, count, oldest arrival (ms)     (ordered by priority)
          m, then m times: tenant, waiting
          per deployment: requests, tokens, in flight, cooldown end (ms, 0 = none),
                          cooldown reason, failures, latency EWMA ("" = none)}
]]
--@include common.lua
--@include capacity.lua
local line, wlease, wmeta, health = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local SHIFT = 4294967296
local now = now_ms()

local lanes, order, tenants, names = {}, {}, {}, {}
local entries = redis.call('ZRANGE', line, 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local rid = entries[i]
  local expiry = tonumber(redis.call('ZSCORE', wlease, rid))
  if expiry ~= nil and expiry > now then
    local prio = math.floor(tonumber(entries[i + 1]) / SHIFT)
    local arrived = tonumber(redis.call('HGET', wmeta, rid)) or now
    local lane = lanes[prio]
    if lane == nil then
      lane = {0, arrived}
      lanes[prio] = lane
      order[#order + 1] = prio
    end
    lane[1] = lane[1] + 1
    if arrived < lane[2] then lane[2] = arrived end
    local tenant = redis.call('HGET', wmeta, 't:' .. rid)
    if tenant then
      if tenants[tenant] == nil then
        tenants[tenant] = 0
        names[#names + 1] = tenant
      end
      tenants[tenant] = tenants[tenant] + 1
    end
  end
end

local out = {now, #order}
for _, prio in ipairs(order) do  -- the line is sorted, so priorities come in order
  out[#out + 1] = prio; out[#out + 1] = lanes[prio][1]; out[#out + 1] = lanes[prio][2]
end
out[#out + 1] = #names
for _, tenant in ipairs(names) do
  out[#out + 1] = tenant; out[#out + 1] = tenants[tenant]
end

local edge = '(' .. int(now - WINDOW)
for i = 1, #ARGV do
  local base = 4 + 5 * (i - 1)
  local rpm, tpm, tok, run, fails = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3],
    KEYS[base + 4], KEYS[base + 5]
  local tokens = 0
  for _, slot in ipairs(redis.call('ZRANGEBYSCORE', tpm, edge, '+inf')) do
    tokens = tokens + (tonumber(redis.call('HGET', tok, slot)) or 0)
  end
  local cool = tonumber(redis.call('HGET', health, ARGV[i] .. ':cool')) or 0
  if cool <= now then cool = 0 end
  out[#out + 1] = redis.call('ZCOUNT', rpm, edge, '+inf')
  out[#out + 1] = tokens
  out[#out + 1] = redis.call('ZCOUNT', run, '(' .. int(now), '+inf')
  out[#out + 1] = cool
  out[#out + 1] = redis.call('HGET', health, ARGV[i] .. ':why') or ''
  out[#out + 1] = redis.call('ZCOUNT', fails, edge, '+inf')
  -- A string: a Lua number would reach the client truncated to an integer.
  out[#out + 1] = redis.call('HGET', health, ARGV[i] .. ':lat') or ''
end
return out
