--[[
  common (include): the clock and the clearing of expired waiters, shared by every script.
]]

-- An integer as Redis should see it. Lua turns numbers into strings with "%.14g", which rounds
-- line scores (priority * 2^32 + arrival) above 10^14, so every score is formatted with this.
-- Whole numbers within 2^52 (all but absurd ones) take '%d', several times cheaper than the
-- float formatting of '%.0f' (which was about a tenth of every script's instructions).
local function int(x)
  if x % 1 == 0 and x > -4503599627370496 and x < 4503599627370496 then
    return string.format('%d', x)
  end
  return string.format('%.0f', x)
end

-- t[from .. to] as a new table. unpack() copies in C, several times faster than a loop (a few
-- µs of every tenant admission), but only so many values fit on Lua's stack at once.
local function slice(t, from, to)
  if to - from < 4000 then return {unpack(t, from, to)} end
  local out = {}
  for i = from, to do out[i - from + 1] = t[i] end
  return out
end

-- Milliseconds from Redis' own clock, so every instance agrees on the time.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Waiters whose instance stopped renewing their lease (crashed, frozen) leave the line.
-- In batches: unpack() of a very long list (a crashed instance with thousands of waiters)
-- would overflow Lua's stack.
-- Returns how many left.
local function prune_waiters(line, wlease, wmeta, now)
  local removed = 0
  while true do
    local dead = redis.call('ZRANGEBYSCORE', wlease, '-inf', now, 'LIMIT', 0, 1000)
    if #dead == 0 then return removed end
    redis.call('ZREM', line, unpack(dead))
    redis.call('ZREM', wlease, unpack(dead))
    redis.call('HDEL', wmeta, unpack(dead))
    for i = 1, #dead do dead[i] = 't:' .. dead[i] end
    redis.call('HDEL', wmeta, unpack(dead))
    removed = removed + #dead
  end
end
