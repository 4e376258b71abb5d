--[[
  release_core (include): the body of `release` as a function of its keys and arguments, so that
  release.lua runs it alone and release_tenant.lua runs it with a tenant's release, in one
  script. Read release.lua for what the keys, arguments and reply are. Needs capacity.lua
  (slot_tier) included before it.
]]
--@include stats.lua
local function release_group(KEYS, ARGV, now)  -- now: optional, as admit_group's
  local line, health, tpm, tok, run, fails = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
  local slot, dep = ARGV[1], ARGV[2]
  local used, latency = tonumber(ARGV[3]), tonumber(ARGV[4])
  local outcome = ARGV[5]
  local allowed, cooldown, demanded = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local channel = ARGV[9]
  local fair, fair_delta = ARGV[10], tonumber(ARGV[11]) or 0

  now = now or now_ms()

  redis.call('ZREM', run, slot)

  -- Reconcile: the window keeps what was really used; a failed attempt used nothing (a full
  -- refund), and a caller that passes 0 refunds an attempt of any outcome.
  if outcome == 'fail' or outcome == 'fatal' then used = 0 end
  if used >= 0 then
    local reserved = tonumber(redis.call('HGET', tok, slot))
    if reserved ~= nil then
      redis.call('HSET', tok, slot, used)
      redis.call('HINCRBY', tok, '=total', used - reserved)
      local tier = slot_tier(slot)  -- its tier's tokens in the window (capacity.lua)
      if tier ~= nil and used ~= reserved then
        redis.call('HINCRBY', tok, '=t:' .. tier, used - reserved)
      end
    end
  end

  stat_attempt(health, dep, outcome, latency, now)
  if latency >= 0 and outcome == 'ok' then
    local old = tonumber(redis.call('HGET', health, dep .. ':lat'))
    local ewma = latency
    if old ~= nil then ewma = old * 0.7 + latency * 0.3 end
    redis.call('HSET', health, dep .. ':lat', ewma)
  end

  local cool_for = 0
  if demanded > 0 then
    cool_for = demanded
  elseif outcome == 'fatal' then
    cool_for = cooldown
  elseif outcome == 'fail' then
    redis.call('ZADD', fails, now, slot)
    redis.call('ZREMRANGEBYSCORE', fails, '-inf', now - 60000)
    redis.call('PEXPIRE', fails, 61000)
    if redis.call('ZCARD', fails) >= allowed then cool_for = cooldown end
  end
  if cool_for > 0 then
    local until_ms = now + cool_for
    local current = tonumber(redis.call('HGET', health, dep .. ':cool')) or 0
    if until_ms > current then
      -- Why, for the dashboard (overview.lua); nothing in admission reads it.
      local why = 'failures'
      if demanded > 0 then why = 'retry-after' elseif outcome == 'fatal' then why = 'fatal' end
      redis.call('HSET', health, dep .. ':cool', until_ms, dep .. ':why', why)
    end
    redis.call('DEL', fails)
  end
  redis.call('PEXPIRE', health, math.max(3600000, cool_for + 60000))

  if fair ~= nil and fair ~= '' then fair_correct(KEYS[7], fair, fair_delta) end
  -- A value kept with the release (a stored conversation): the last key, written here so
  -- that it costs the request no round trip of its own.
  if ARGV[12] ~= nil then redis.call('SET', KEYS[#KEYS], ARGV[12], 'PX', ARGV[13]) end

  local head = redis.call('ZRANGE', line, 0, 0)
  if #head > 0 then redis.call('PUBLISH', channel, head[1]) end
  if cool_for > 0 then return {1, cool_for} end
  return {0, 0}
end
