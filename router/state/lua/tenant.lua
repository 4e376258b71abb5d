--[[
  tenant (include): a key's and its team's limits and budgets, for one request.

  A request holds its tenant reservation from its first admission to its end, through waiting,
  retries and fallbacks: one rpm entry, its tokens, one parallel slot and its most possible cost,
  reconciled with the real usage and cost at the end.

  Per tenant entity (the key, then its team), 6 keys:
    win   ZSET  request id -> admission time (ms)        requests in the last 60 s, and the
                                                         log of their token reservations
    tok   HASH  request id -> tokens, "=total" tokens and "=n" requests in the window
    run   ZSET  request id -> lease expiry (ms)          requests in flight
    spend HASH  s = spent, r = reserved (nano-USD), p = period start (ms), a = period alerted,
                "r:<request id>" = this request's reservation
    mwin, mtok  the same window for this model group alone (kept only with a model limit)
  One window serves both the request and the token limit: both count the same admissions
  over the same 60 s, so one log and one prune do for both.
  and 8 values: rpm, tpm, parallel, model rpm, model tpm limits (0 = none), max budget and soft
  budget (nano-USD, -1 = none), budget period (ms, 0 = never resets).

  Denials: {-2, code, entity (1 = key, 2 = team), ms until it may pass (-1 unknown)}, codes
    1 rpm, 2 tpm, 3 parallel, 4 budget, 5 model rpm, 6 model tpm.
]]
local TENANT_KEYS, TENANT_VALUES = 6, 8

local function tenant_entities(K, A, koff, aoff, n)
  local out = {}
  for e = 1, n do
    local k, a = koff + (e - 1) * TENANT_KEYS, aoff + (e - 1) * TENANT_VALUES
    out[e] = {
      win = K[k + 1], tok = K[k + 2], run = K[k + 3], spend = K[k + 4],
      mwin = K[k + 5], mtok = K[k + 6],
      rpm_limit = tonumber(A[a + 1]), tpm_limit = tonumber(A[a + 2]),
      par_limit = tonumber(A[a + 3]), mrpm_limit = tonumber(A[a + 4]),
      mtpm_limit = tonumber(A[a + 5]), budget = tonumber(A[a + 6]), soft = tonumber(A[a + 7]),
      period = tonumber(A[a + 8]),
    }
  end
  return out
end

-- The budget period from the spend hash's `p` (nil: none yet): spend starts again at zero once
-- a period is over. Returns the period's start and whether spend was reset just now.
local function tenant_period(e, start, now)
  if start == nil then
    redis.call('HSET', e.spend, 'p', int(now))
    return now, false
  end
  if e.period > 0 and now >= start + e.period then
    start = now - (now - start) % e.period
    redis.call('HSET', e.spend, 'p', int(start), 's', 0)
    return start, true
  end
  return start, false
end

-- A window's entries older than 60 s leave it, their tokens with them. Returns the requests
-- and the tokens still in it, when its TTLs were last set, and whether entries left (their
-- totals are then to be written: tenant_reserve does, with its own entry, or window_keep).
local function window(win, tok, now)
  local got = redis.call('HMGET', tok, '=total', '=n', '=x')
  local used, x = tonumber(got[1]) or 0, tonumber(got[3])
  local requests = tonumber(got[2])
  if requests == nil then requests = redis.call('ZCARD', win) end  -- written before "=n" was
  local pruned = false
  while true do  -- in batches: after an idle minute a whole minute's entries leave at once
    local expired = redis.call('ZRANGEBYSCORE', win, '-inf', now - WINDOW, 'LIMIT', 0, 1000)
    if #expired == 0 then break end
    for _, t in ipairs(redis.call('HMGET', tok, unpack(expired))) do used = used - (tonumber(t) or 0) end
    redis.call('HDEL', tok, unpack(expired))
    redis.call('ZREM', win, unpack(expired))
    requests, pruned = requests - #expired, true
    if #expired < 1000 then break end
  end
  return requests, used, x, pruned
end

-- The totals of a window that lost entries and gains none (the request was refused).
local function window_keep(tok, requests, used)
  redis.call('HSET', tok, '=total', int(used), '=n', int(requests))
end

-- The windows' TTLs are set for two refresh periods past the window, and set again only once
-- a period has passed since ("=x" in tok: when): an entry added since the last setting
-- expires with the window long before its key could. Saves three PEXPIREs a request.
local TTL_REFRESH = 30000
local function stale_ttl(x, now)
  return x == nil or now - x >= TTL_REFRESH
end

local function oldest_plus_window(zset)
  local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return tonumber(first[2]) + WINDOW
end

-- Requests whose lease ran out (their instance stopped renewing it: crashed, frozen) are not
-- counted in flight (ZCOUNT from now) and leave `run` here, once a refresh period (before
-- the checks, so that what they held is free for the request being checked); the cost
-- they had reserved goes back to the budget, as nobody will release them. One that is still
-- running after all finds no reservation at its release and is charged its cost alone.
local function expire_leases(e, now)
  while true do  -- in batches, like the windows
    local dead = redis.call('ZRANGEBYSCORE', e.run, '-inf', now, 'LIMIT', 0, 1000)
    if #dead == 0 then return end
    local fields = {}
    for i, rid in ipairs(dead) do fields[i] = 'r:' .. rid end
    local held = 0
    for _, c in ipairs(redis.call('HMGET', e.spend, unpack(fields))) do held = held + (tonumber(c) or 0) end
    if held > 0 then
      redis.call('HDEL', e.spend, unpack(fields))
      local reserved = tonumber(redis.call('HGET', e.spend, 'r')) or 0
      reserved = math.max(reserved - held, 0)
      redis.call('HSET', e.spend, 'r', int(reserved))
    end
    redis.call('ZREM', e.run, unpack(dead))
    if #dead < 1000 then return end
  end
end

-- What the checks pruned, written back when no reservation follows (a refusal, a full line):
-- entities not checked yet have nothing to write.
local function tenant_keep(ents)
  for _, e in ipairs(ents) do
    if e.pruned then window_keep(e.tok, e.requests, e.used) end
    if e.mpruned then window_keep(e.mtok, e.mrequests, e.mused) end
  end
end

-- Nil when every entity can take the request now, else the denial. Notes on each entity what
-- tenant_reserve needs (`start`, the budget period's start).
local function tenant_check(ents, tokens, cost, now)
  local denied = nil
  for i, e in ipairs(ents) do
    local requests, used, x, pruned = window(e.win, e.tok, now)
    e.requests, e.used, e.x, e.pruned = requests, used, x, pruned
    if stale_ttl(x, now) then expire_leases(e, now) end  -- before the counts it frees
    if e.rpm_limit > 0 and requests >= e.rpm_limit then
      denied = {-2, 1, i, oldest_plus_window(e.win) - now}
    elseif e.tpm_limit > 0 and used > 0 and used + tokens > e.tpm_limit then
      denied = {-2, 2, i, oldest_plus_window(e.win) - now}
    elseif e.par_limit > 0 and redis.call('ZCOUNT', e.run, '(' .. int(now), '+inf') >= e.par_limit then
      denied = {-2, 3, i, -1}  -- live leases only: expired ones are pruned with the TTLs
    end
    if denied == nil and (e.mrpm_limit > 0 or e.mtpm_limit > 0) then
      local mrequests, mused, mx, mpruned = window(e.mwin, e.mtok, now)
      e.mrequests, e.mused, e.mx, e.mpruned = mrequests, mused, mx, mpruned
      if e.mrpm_limit > 0 and mrequests >= e.mrpm_limit then
        denied = {-2, 5, i, oldest_plus_window(e.mwin) - now}
      elseif e.mtpm_limit > 0 and mused > 0 and mused + tokens > e.mtpm_limit then
        denied = {-2, 6, i, oldest_plus_window(e.mwin) - now}
      end
    end
    if denied == nil and (e.budget >= 0 or cost > 0) then
      local got = redis.call('HMGET', e.spend, 'p', 's', 'r')
      local start, reset = tenant_period(e, tonumber(got[1]), now)
      e.start = start
      local spent = tonumber(got[2]) or 0
      if reset then spent = 0 end
      local reserved = tonumber(got[3]) or 0
      e.reserved = reserved
      if e.budget >= 0 and (spent + reserved + cost > e.budget or spent >= e.budget) then
        local back = -1
        if e.period > 0 then back = start + e.period - now end
        denied = {-2, 4, i, back}
      end
    end
    if denied ~= nil then
      tenant_keep(ents)
      return denied
    end
  end
  return nil
end

-- Only after tenant_check (same entities, same moment): the totals it read (`used`,
-- `mused`, `reserved`) are still the totals, so each is written with its entry in one HSET.
local function tenant_reserve(ents, rid, tokens, cost, now, lease)
  for _, e in ipairs(ents) do
    local added = redis.call('ZADD', e.win, now, rid)  -- 0 for a request already in it
    redis.call('ZADD', e.run, now + lease, rid)
    if stale_ttl(e.x, now) then
      redis.call('HSET', e.tok, rid, tokens, '=total', int(e.used + tokens),
                 '=n', int(e.requests + added), '=x', int(now))
      touch(e.win, WINDOW + 2 * TTL_REFRESH)
      touch(e.tok, WINDOW + 2 * TTL_REFRESH)
      touch(e.run, lease + WINDOW + 2 * TTL_REFRESH)
    else
      redis.call('HSET', e.tok, rid, tokens, '=total', int(e.used + tokens),
                 '=n', int(e.requests + added))
    end
    if e.mrpm_limit > 0 or e.mtpm_limit > 0 then
      local madded = redis.call('ZADD', e.mwin, now, rid)
      if stale_ttl(e.mx, now) then
        redis.call('HSET', e.mtok, rid, tokens, '=total', int(e.mused + tokens),
                   '=n', int(e.mrequests + madded), '=x', int(now))
        touch(e.mwin, WINDOW + 2 * TTL_REFRESH)
        touch(e.mtok, WINDOW + 2 * TTL_REFRESH)
      else
        redis.call('HSET', e.mtok, rid, tokens, '=total', int(e.mused + tokens),
                   '=n', int(e.mrequests + madded))
      end
    end
    if cost > 0 then
      redis.call('HSET', e.spend, 'r', int(e.reserved + cost), 'r:' .. rid, cost)
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
    local function reconcile(win, tok)
      local got = redis.call('HMGET', tok, rid, '=total', '=n')
      local reserved = tonumber(got[1])
      if reserved == nil then return end
      local total = tonumber(got[2]) or 0
      if undo then
        redis.call('ZREM', win, rid)
        redis.call('HDEL', tok, rid)
        local requests = tonumber(got[3]) or redis.call('ZCARD', win) + 1
        redis.call('HSET', tok, '=total', int(total - reserved), '=n', int(requests - 1))
      elseif used >= 0 and used ~= reserved then
        redis.call('HSET', tok, rid, used, '=total', int(total + used - reserved))
      end
    end
    reconcile(e.win, e.tok)
    if e.mrpm_limit > 0 or e.mtpm_limit > 0 then reconcile(e.mwin, e.mtok) end
    local got = redis.call('HMGET', e.spend, 'r:' .. rid, 'p', 's', 'a', 'r')
    local held = tonumber(got[1])
    local start, reset = tenant_period(e, tonumber(got[2]), now)
    local spent = tonumber(got[3]) or 0
    if reset then spent = 0 end
    -- The reservation's and the spend's new totals in one write (read above, in this script).
    local fields = {}
    if held ~= nil then
      redis.call('HDEL', e.spend, 'r:' .. rid)
      fields = {'r', int((tonumber(got[5]) or 0) - held)}
    end
    if cost > 0 then
      spent = spent + cost
      fields[#fields + 1], fields[#fields + 2] = 's', int(spent)
    end
    if #fields > 0 then redis.call('HSET', e.spend, unpack(fields)) end
    if e.soft >= 0 and spent >= e.soft and got[4] ~= int(start) then
      redis.call('HSET', e.spend, 'a', int(start))
      crossed[#crossed + 1] = i
    end
    if i == 1 then key_spent = spent end
  end
  return crossed, key_spent
end
