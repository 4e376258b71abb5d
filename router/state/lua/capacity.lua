--[[
  capacity (include): sliding-window bookkeeping of one deployment, for admit.

  Per deployment, four keys:
    rpm  ZSET  slot id -> admission time (ms)          requests in the last 60 s
    tpm  ZSET  slot id -> admission time (ms)          token reservations in the last 60 s
    tok  HASH  slot id -> tokens, "=total" -> their sum
    run  ZSET  slot id -> lease expiry (ms)            requests in flight
  The windows are exact logs, not minute buckets: an entry counts for exactly 60 s.

  Reservation tiers (tiers.lua) count each tier's use of a deployment. A group with
  reservations names its slots "<tier>|<slot>" (slot ids hold no "|"), and tok keeps per tier
    "=r:<tier>"  its requests in the rpm window
    "=t:<tier>"  its tokens in the tpm window
  moved by the admission, by release (real tokens) and by prune_tokens below. The rpm and tpm
  windows hold the same members with the same scores (both are written at admission and
  pruned at the same edge, and nothing else removes from them), so the expired members that
  prune_tokens reads anyway retire both counters: no command more, and none at all for slots
  without a tier. In flight per tier is read from run itself when needed (tiers.lua).
]]
local WINDOW = 60000

-- The reservation tier a window member belongs to, nil when it names none.
local function slot_tier(slot)
  return string.match(slot, '^(.*)|')
end

-- Drop window entries older than 60 s; keep the token total, and each tier's counters, in step.
local function prune_tokens(tpm, tok, now)
  local expired = redis.call('ZRANGEBYSCORE', tpm, '-inf', now - WINDOW)
  if #expired > 0 then
    local sum, per = 0, nil
    for _, slot in ipairs(expired) do
      local n = tonumber(redis.call('HGET', tok, slot)) or 0
      sum = sum + n
      redis.call('HDEL', tok, slot)
      local t = slot_tier(slot)
      if t ~= nil then
        per = per or {}
        local u = per[t] or {0, 0}
        u[1], u[2] = u[1] + 1, u[2] + n
        per[t] = u
      end
    end
    redis.call('ZREMRANGEBYSCORE', tpm, '-inf', now - WINDOW)
    redis.call('HINCRBY', tok, '=total', 0 - sum)  -- never -0: Redis refuses "-0" as an integer
    if per ~= nil then
      for t, u in pairs(per) do
        redis.call('HINCRBY', tok, '=r:' .. t, 0 - u[1])
        if u[2] ~= 0 then redis.call('HINCRBY', tok, '=t:' .. t, 0 - u[2]) end
      end
    end
  end
  return tonumber(redis.call('HGET', tok, '=total')) or 0
end

-- Usage of one deployment and whether it can take `tokens` more now.
-- Returns used rpm, used tokens, in-flight count, ok (bool), and when capacity returns (ms, or -1).
local function inspect(k, lim, tokens, now, cool_until)
  redis.call('ZREMRANGEBYSCORE', k.rpm, '-inf', now - WINDOW)
  redis.call('ZREMRANGEBYSCORE', k.run, '-inf', now)
  local rpm_used = redis.call('ZCARD', k.rpm)
  local tok_used = prune_tokens(k.tpm, k.tok, now)
  local running = redis.call('ZCARD', k.run)
  local back = -1
  local ok = true
  local function later(t)
    if back < t then back = t end
  end
  if cool_until > now then
    ok = false
    later(cool_until)
  end
  if lim.rpm > 0 and rpm_used >= lim.rpm then
    ok = false
    local oldest = redis.call('ZRANGE', k.rpm, 0, 0, 'WITHSCORES')
    later(tonumber(oldest[2]) + WINDOW)
  end
  -- A request larger than the whole limit never fits here (the engine refuses one that fits
  -- no deployment of its group with a 400 before it reaches the line).
  if lim.tpm > 0 and tok_used + tokens > lim.tpm then
    ok = false
    if tokens <= lim.tpm and tok_used > 0 then
      local oldest = redis.call('ZRANGE', k.tpm, 0, 0, 'WITHSCORES')
      later(tonumber(oldest[2]) + WINDOW)
    end
  end
  if lim.par > 0 and running >= lim.par then
    ok = false
    local first = redis.call('ZRANGE', k.run, 0, 0, 'WITHSCORES')
    later(tonumber(first[2]))
  end
  return rpm_used, tok_used, running, ok, back
end

local function touch(key, ttl)
  redis.call('PEXPIRE', key, ttl)
end
