--[[
  capacity (include): sliding-window bookkeeping of one deployment, for admit.

  Per deployment, four keys:
    rpm  ZSET  slot id -> admission time (ms)          requests in the last 60 s
    tpm  ZSET  slot id -> admission time (ms)          token reservations in the last 60 s
    tok  HASH  slot id -> tokens, "=total" -> their sum
    run  ZSET  slot id -> lease expiry (ms)            requests in flight
  The windows are exact logs, not minute buckets: an entry counts for exactly 60 s.
]]
local WINDOW = 60000

-- Drop window entries older than 60 s; keep the token total in step.
local function prune_tokens(tpm, tok, now)
  local expired = redis.call('ZRANGEBYSCORE', tpm, '-inf', now - WINDOW)
  if #expired > 0 then
    local sum = 0
    for _, slot in ipairs(expired) do
      sum = sum + (tonumber(redis.call('HGET', tok, slot)) or 0)
      redis.call('HDEL', tok, slot)
    end
    redis.call('ZREMRANGEBYSCORE', tpm, '-inf', now - WINDOW)
    redis.call('HINCRBY', tok, '=total', 0 - sum)  -- never -0: Redis refuses "-0" as an integer
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
