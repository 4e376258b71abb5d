--[[
  overview: a group's line and deployments as the dashboard shows them. Read only: nothing is
  pruned, so expired entries are left out by their lease or score instead.

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] wlease  ZSET  waiter leases
  KEYS[3] wmeta   HASH  waiter arrival times; "t:<request id>" -> its fair-share tenant
  KEYS[4] health  HASH  <deployment>:cool, :why, :lat
  KEYS[5..]       per deployment i, 5 keys: rpm, tpm, tok, run, fails
  then per reservation tier j, its index of the line (tiers.lua)

  ARGV[1]       the number of deployments n
  ARGV[1 + i]   deployment id of the i-th group of keys
  ARGV[1 + n + j]  the name of tier j (none in a group without reservations)

  Reply: {now (ms),
          n, then n times: priority, count, head's arrival (ms)     (line_bands.lua)
          m, then m times: tenant, waiting             (among the first 1,000 in line)
          429s (line full), 408s (timed out in line)   (this minute and the last: stats.lua)
          per deployment: requests, tokens, in flight, cooldown end (ms, 0 = none),
                          cooldown reason, failures, latency EWMA ("" = none),
                          attempts, failed attempts, 16 latency buckets (stats.lua),
          per tier: waiting (among the first 1,000 of its index), in flight, requests and
                    tokens in the window (summed over the deployments)}
]]
--@flags allow-oom
--@include common.lua
--@include capacity.lua
--@include line_bands.lua
--@include waiters_by_tenant.lua
--@include stats.lua
local line, wlease, wmeta, health = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local TENANT_SCAN = 1000
local now = now_ms()

local bands, gone = line_bands(line, wlease, wmeta, now)
-- Waiters per tenant, among the first TENANT_SCAN in line.
local tenants, names = waiters_by_tenant(line, wmeta, gone, TENANT_SCAN)

local out = {now, #bands}
for _, band in ipairs(bands) do
  out[#out + 1] = band[1]; out[#out + 1] = band[2]; out[#out + 1] = band[3]
end
out[#out + 1] = #names
for _, tenant in ipairs(names) do
  out[#out + 1] = tenant; out[#out + 1] = tenants[tenant]
end
-- The group's counters over this minute and the last (stats.lua): 429 line full, 408 timeout.
local function two_minutes(values, k)
  return (tonumber(values[k]) or 0) + (tonumber(values[k + 1]) or 0)
end
local gs = redis.call('HMGET', health, unpack(stat_fields('=s:', GROUP_STATS, now)))
out[#out + 1] = two_minutes(gs, 1); out[#out + 1] = two_minutes(gs, 3)

local n = tonumber(ARGV[1])
local tiers = {}  -- per tier: {waiting, in flight, requests, tokens}
for j = 1, #ARGV - 1 - n do tiers[ARGV[1 + n + j]] = {0, 0, 0, 0} end
local edge = '(' .. int(now - WINDOW)
for i = 1, n do
  local base = 4 + 5 * (i - 1)
  local rpm, tpm, tok, run, fails = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3],
    KEYS[base + 4], KEYS[base + 5]
  local id = ARGV[1 + i]
  -- The window's total less what has expired and not been pruned yet (a handful: every
  -- admission prunes), not a read of every entry of the last minute. Each tier's counters
  -- (capacity.lua) the same way.
  local tokens = tonumber(redis.call('HGET', tok, '=total')) or 0
  for t, use in pairs(tiers) do
    use[3] = use[3] + (tonumber(redis.call('HGET', tok, '=r:' .. t)) or 0)
    use[4] = use[4] + (tonumber(redis.call('HGET', tok, '=t:' .. t)) or 0)
  end
  local stale = redis.call('ZRANGEBYSCORE', tpm, '-inf', now - WINDOW, 'LIMIT', 0, 5000)
  if #stale > 0 then
    for s, v in ipairs(redis.call('HMGET', tok, unpack(stale))) do
      local spent = tonumber(v) or 0
      tokens = tokens - spent
      local use = tiers[slot_tier(stale[s]) or '']
      if use ~= nil then use[3], use[4] = use[3] - 1, use[4] - spent end
    end
  end
  if next(tiers) ~= nil then
    for _, slot in ipairs(redis.call('ZRANGEBYSCORE', run, '(' .. int(now), '+inf')) do
      local use = tiers[slot_tier(slot) or '']
      if use ~= nil then use[2] = use[2] + 1 end
    end
  end
  local cool = tonumber(redis.call('HGET', health, id .. ':cool')) or 0
  if cool <= now then cool = 0 end
  out[#out + 1] = redis.call('ZCOUNT', rpm, edge, '+inf')
  out[#out + 1] = tokens
  out[#out + 1] = redis.call('ZCOUNT', run, '(' .. int(now), '+inf')
  out[#out + 1] = cool
  out[#out + 1] = redis.call('HGET', health, id .. ':why') or ''
  out[#out + 1] = redis.call('ZCOUNT', fails, edge, '+inf')
  -- A string: a Lua number would reach the client truncated to an integer.
  out[#out + 1] = redis.call('HGET', health, id .. ':lat') or ''
  -- Attempts, failures and the latency histogram over this minute and the last (stats.lua).
  local ds = redis.call('HMGET', health, unpack(stat_fields(id .. ':s:', DEP_STATS, now)))
  for k = 1, #DEP_STATS do out[#out + 1] = two_minutes(ds, 2 * k - 1) end
end
-- Each tier's live waiters: its index (which may hold entries that left the line) read
-- against the line, among its first TENANT_SCAN.
for j = 1, #ARGV - 1 - n do
  local use = tiers[ARGV[1 + n + j]]
  local ids = redis.call('ZRANGE', KEYS[4 + 5 * n + j], 0, TENANT_SCAN - 1)
  if #ids > 0 then
    local scores = redis.call('ZMSCORE', line, unpack(ids))
    for k, rid in ipairs(ids) do
      if scores[k] and not gone[rid] then use[1] = use[1] + 1 end
    end
  end
  for k = 1, 4 do out[#out + 1] = use[k] end
end
return out
