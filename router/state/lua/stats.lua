--[[
  stats (include): minute counters in a group's health hash, for the dashboard (overview.lua).
  Nothing in admission reads them.

  A counter's fields are "<prefix><name>|<minute>" (minute = ms / 60000, floored), one marker
  per prefix, "<prefix>|m", names the newest minute written. When a new minute starts the
  minute before the previous one is deleted, so at most two minutes of every counter exist:
  the current and the previous one, which the overview sums.

  Per deployment (prefix "<id>:s:"): n = attempts ended (ok, fail, fatal), e = failed ones,
  l0..l15 = successful attempts by latency, bucket b holding [2^b, 2^(b+1)) ms (l0 also below
  1 ms, l15 also above). Per group (prefix "=s:"): full = requests refused because the line was
  full (429), timeout = waiters whose timeout ran out in line (408).
]]
local STAT_BUCKETS = 16

local function stat_minute(health, prefix, names, now)
  local m = math.floor(now / 60000)
  local last = tonumber(redis.call('HGET', health, prefix .. '|m'))
  if last ~= m then
    if last ~= nil then
      local old = {}
      for _, name in ipairs(names) do
        old[#old + 1] = prefix .. name .. '|' .. (last - 1)
        if last < m - 1 then old[#old + 1] = prefix .. name .. '|' .. last end
      end
      redis.call('HDEL', health, unpack(old))
    end
    redis.call('HSET', health, prefix .. '|m', m)
  end
  return m
end

local DEP_STATS = {'n', 'e'}
for b = 0, STAT_BUCKETS - 1 do DEP_STATS[#DEP_STATS + 1] = 'l' .. b end
local GROUP_STATS = {'full', 'timeout'}

-- An attempt on `dep` ended with `outcome` after `latency` ms.
local function stat_attempt(health, dep, outcome, latency, now)
  if outcome ~= 'ok' and outcome ~= 'fail' and outcome ~= 'fatal' then return end
  local prefix = dep .. ':s:'
  local m = stat_minute(health, prefix, DEP_STATS, now)
  redis.call('HINCRBY', health, prefix .. 'n|' .. m, 1)
  if outcome ~= 'ok' then
    redis.call('HINCRBY', health, prefix .. 'e|' .. m, 1)
  elseif latency >= 0 then
    local b = 0
    if latency >= 1 then b = math.min(STAT_BUCKETS - 1, math.floor(math.log(latency) / math.log(2))) end
    redis.call('HINCRBY', health, prefix .. 'l' .. b .. '|' .. m, 1)
  end
end

-- A group event: 'full' or 'timeout'.
local function stat_group(health, name, now)
  local m = stat_minute(health, '=s:', GROUP_STATS, now)
  redis.call('HINCRBY', health, '=s:' .. name .. '|' .. m, 1)
  if redis.call('PTTL', health) < 0 then redis.call('PEXPIRE', health, 3600000) end
end

-- The two minutes of every counter in `names` under `prefix`, as one HMGET's field list.
local function stat_fields(prefix, names, now)
  local m = math.floor(now / 60000)
  local fields = {}
  for _, name in ipairs(names) do
    fields[#fields + 1] = prefix .. name .. '|' .. m
    fields[#fields + 1] = prefix .. name .. '|' .. (m - 1)
  end
  return fields
end
