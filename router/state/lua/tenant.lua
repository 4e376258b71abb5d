--[[
  tenant (include): a key's and its team's limits and budgets, for one request.

  A request holds its tenant reservation from its first admission to its end, through waiting,
  retries and fallbacks: one rpm entry, its tokens, one parallel slot and its most possible cost,
  reconciled with the real usage and cost at the end.

  Per tenant entity (the key, then its team), 8 keys:
    rpm   ZSET  request id -> admission time (ms)        requests in the last 60 s
    tpm   ZSET  request id -> admission time (ms)        token reservations in the last 60 s
    tok   HASH  request id -> tokens, "=total"
    run   ZSET  request id -> lease expiry (ms)          requests in flight
    spend HASH  s = spent, r = reserved (nano-USD), p = period start (ms), a = period alerted,
                "r:<request id>" = this request's reservation
    mrpm, mtpm, mtok    the same windows for this model group alone
  and 8 values: rpm, tpm, parallel, model rpm, model tpm limits (0 = none), max budget and soft
  budget (nano-USD, -1 = none), budget period (ms, 0 = never resets).

  Denials: {-2, code, entity (1 = key, 2 = team), ms until it may pass (-1 unknown)}, codes
    1 rpm, 2 tpm, 3 parallel, 4 budget, 5 model rpm, 6 model tpm.
]]
local TENANT_KEYS, TENANT_VALUES = 8, 8

local function tenant_entities(K, A, koff, aoff, n)
  local out = {}
  for e = 1, n do
    local k, a = koff + (e - 1) * TENANT_KEYS, aoff + (e - 1) * TENANT_VALUES
    out[e] = {
      rpm = K[k + 1], tpm = K[k + 2], tok = K[k + 3], run = K[k + 4], spend = K[k + 5],
      mrpm = K[k + 6], mtpm = K[k + 7], mtok = K[k + 8],
      rpm_limit = tonumber(A[a + 1]), tpm_limit = tonumber(A[a + 2]),
      par_limit = tonumber(A[a + 3]), mrpm_limit = tonumber(A[a + 4]),
      mtpm_limit = tonumber(A[a + 5]), budget = tonumber(A[a + 6]), soft = tonumber(A[a + 7]),
      period = tonumber(A[a + 8]),
    }
  end
  return out
end

-- The budget period: spend starts again at zero once a period is over.
local function tenant_period(e, now)
  local start = tonumber(redis.call('HGET', e.spend, 'p'))
  if start == nil then
    redis.call('HSET', e.spend, 'p', int(now))
    return now
  end
  if e.period > 0 and now >= start + e.period then
    start = now - (now - start) % e.period
    redis.call('HSET', e.spend, 'p', int(start), 's', 0)
  end
  return start
end

local function window_count(zset, now)
  redis.call('ZREMRANGEBYSCORE', zset, '-inf', now - WINDOW)
  return redis.call('ZCARD', zset)
end

local function oldest_plus_window(zset)
  local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return tonumber(first[2]) + WINDOW
end

-- Nil when every entity can take the request now, else the denial.
local function tenant_check(ents, tokens, cost, now)
  for i, e in ipairs(ents) do
    if e.rpm_limit > 0 and window_count(e.rpm, now) >= e.rpm_limit then
      return {-2, 1, i, oldest_plus_window(e.rpm) - now}
    end
    if e.tpm_limit > 0 then
      local used = prune_tokens(e.tpm, e.tok, now)
      if used > 0 and used + tokens > e.tpm_limit then
        return {-2, 2, i, oldest_plus_window(e.tpm) - now}
      end
    end
    if e.par_limit > 0 then
      redis.call('ZREMRANGEBYSCORE', e.run, '-inf', now)
      if redis.call('ZCARD', e.run) >= e.par_limit then return {-2, 3, i, -1} end
    end
    if e.mrpm_limit > 0 and window_count(e.mrpm, now) >= e.mrpm_limit then
      return {-2, 5, i, oldest_plus_window(e.mrpm) - now}
    end
    if e.mtpm_limit > 0 then
      local used = prune_tokens(e.mtpm, e.mtok, now)
      if used > 0 and used + tokens > e.mtpm_limit then
        return {-2, 6, i, oldest_plus_window(e.mtpm) - now}
      end
    end
    if e.budget >= 0 then
      local start = tenant_period(e, now)
      local spent = tonumber(redis.call('HGET', e.spend, 's')) or 0
      local reserved = tonumber(redis.call('HGET', e.spend, 'r')) or 0
      if spent + reserved + cost > e.budget or spent >= e.budget then
        local back = -1
        if e.period > 0 then back = start + e.period - now end
        return {-2, 4, i, back}
      end
    end
  end
  return nil
end

local function tenant_reserve(ents, rid, tokens, cost, now, lease)
  for _, e in ipairs(ents) do
    redis.call('ZADD', e.rpm, now, rid)
    redis.call('ZADD', e.tpm, now, rid)
    redis.call('HSET', e.tok, rid, tokens)
    redis.call('HINCRBY', e.tok, '=total', tokens)
    redis.call('ZADD', e.run, now + lease, rid)
    touch(e.rpm, WINDOW + 1000)
    touch(e.tpm, WINDOW + 1000)
    touch(e.tok, WINDOW + 1000)
    touch(e.run, lease + WINDOW)
    if e.mrpm_limit > 0 then
      redis.call('ZADD', e.mrpm, now, rid)
      touch(e.mrpm, WINDOW + 1000)
    end
    if e.mtpm_limit > 0 then
      redis.call('ZADD', e.mtpm, now, rid)
      redis.call('HSET', e.mtok, rid, tokens)
      redis.call('HINCRBY', e.mtok, '=total', tokens)
      touch(e.mtpm, WINDOW + 1000)
      touch(e.mtok, WINDOW + 1000)
    end
    if cost > 0 then
      tenant_period(e, now)
      redis.call('HINCRBY', e.spend, 'r', cost)
      redis.call('HSET', e.spend, 'r:' .. rid, cost)
    end
  end
end

-- The end of a request: free its slot, reconcile tokens and cost. Returns the entities (by
-- index) whose spend crossed their soft budget just now, and the key's spend after this.
-- `undo` takes the reservation back as if it never was (its line turned out to be full).
local function tenant_release(ents, rid, used, cost, now, undo)
  local crossed, key_spent = {}, 0
  for i, e in ipairs(ents) do
    redis.call('ZREM', e.run, rid)
    local function reconcile(tpm, tok)
      local reserved = tonumber(redis.call('HGET', tok, rid))
      if reserved == nil then return end
      if undo then
        redis.call('ZREM', tpm, rid)
        redis.call('HDEL', tok, rid)
        redis.call('HINCRBY', tok, '=total', 0 - reserved)  -- not -reserved: "-0" is no integer to Redis
      elseif used >= 0 then
        redis.call('HSET', tok, rid, used)
        redis.call('HINCRBY', tok, '=total', used - reserved)
      end
    end
    reconcile(e.tpm, e.tok)
    reconcile(e.mtpm, e.mtok)
    if undo then
      redis.call('ZREM', e.rpm, rid)
      redis.call('ZREM', e.mrpm, rid)
    end
    local held = tonumber(redis.call('HGET', e.spend, 'r:' .. rid))
    if held ~= nil then
      redis.call('HDEL', e.spend, 'r:' .. rid)
      redis.call('HINCRBY', e.spend, 'r', 0 - held)
    end
    local start = tenant_period(e, now)
    local spent = tonumber(redis.call('HGET', e.spend, 's')) or 0
    if cost > 0 then
      spent = redis.call('HINCRBY', e.spend, 's', cost)
    end
    if e.soft >= 0 and spent >= e.soft and redis.call('HGET', e.spend, 'a') ~= int(start) then
      redis.call('HSET', e.spend, 'a', int(start))
      crossed[#crossed + 1] = i
    end
    if i == 1 then key_spent = spent end
  end
  return crossed, key_spent
end
