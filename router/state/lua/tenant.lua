--[[
  tenant (include): a key's and its team's limits and budgets, for one request.

  A request holds its tenant reservation from its first admission to its end, through waiting,
  retries and fallbacks: one rpm entry, its tokens, one parallel slot and its most possible cost,
  reconciled with the real usage and cost at the end.

  Per tenant entity (the key, then its team), 6 keys:
    win   ZSET  request id -> admission time (ms)        requests in the last 60 s, and the
                                                         log of their token reservations
    tok   HASH  request id -> tokens, "=total" tokens and "=n" requests in the window, "=q"
                when it was last pruned, "=x" when its TTLs were set, "=p" requests in flight
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

-- A 60 s window of one entity (or of one entity on one model group): its totals as last
-- written in `tok`, which may still count entries that aged out since the window was last
-- pruned. Pruning runs at most every PRUNE_EVERY ms, or at once when the totals would refuse
-- a request (so that only entries of the last 60 s ever refuse one): at a steady rate every
-- admission would otherwise prune the one entry that aged out since the one before.
local PRUNE_EVERY = 100

-- Entries older than 60 s leave the window, their tokens with them (`w.exact` from now on,
-- `w.dirty` when its totals changed and are to be written: tenant_reserve does, with its own
-- entry, or window_keep).
local function window_prune(w, now)
  while true do  -- in batches: after an idle minute a whole minute's entries leave at once
    local expired = redis.call('ZRANGEBYSCORE', w.win, '-inf', now - WINDOW, 'LIMIT', 0, 1000)
    if #expired == 0 then break end
    for _, t in ipairs(redis.call('HMGET', w.tok, unpack(expired))) do
      w.used = w.used - (tonumber(t) or 0)
    end
    redis.call('HDEL', w.tok, unpack(expired))
    redis.call('ZREM', w.win, unpack(expired))
    w.requests, w.dirty = w.requests - #expired, true
    if #expired < 1000 then break end
  end
  w.exact, w.pruned_at = true, now
end

-- The window's totals, pruned when a prune is due. `running`: the entity's requests in
-- flight as counted in its main window's hash ("=p"; nil when not counted there yet).
local function window_open(win, tok, now)
  local got = redis.call('HMGET', tok, '=total', '=n', '=x', '=q', '=p')
  local w = {win = win, tok = tok, used = tonumber(got[1]) or 0, requests = tonumber(got[2]),
             x = tonumber(got[3]), pruned_at = tonumber(got[4]) or 0,
             running = tonumber(got[5]), exact = false, dirty = false}
  if w.requests == nil then  -- written before "=n" was, or expired
    w.requests = redis.call('ZCARD', win)
    w.dirty = true
  end
  if now - w.pruned_at >= PRUNE_EVERY then window_prune(w, now) end
  return w
end

-- 0 when the window takes `tokens` more within its rpm and tpm limits, else 1 (rpm) or 2
-- (tpm); a refusal is decided on the pruned window only.
local function window_refuses(w, rpm, tpm, tokens, now)
  for _ = 1, 2 do
    if rpm > 0 and w.requests >= rpm then
      if w.exact then return 1 end
    elseif tpm > 0 and w.used > 0 and w.used + tokens > tpm then
      if w.exact then return 2 end
    else
      return 0
    end
    window_prune(w, now)
  end
  return 0
end

-- The windows' TTLs are set for two refresh periods past the window, and set again only once
-- a period has passed since ("=x" in tok: when): an entry added since the last setting
-- expires with the window long before its key could. Saves three PEXPIREs a request.
local TTL_REFRESH = 30000
local function stale_ttl(x, now)
  return x == nil or now - x >= TTL_REFRESH
end

-- `fields` and then the window's totals, for one HSET: the prune's time when it pruned, the
-- count in flight when the window keeps it.
local function with_totals(w, fields, used, requests, running)
  local n = #fields
  fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = '=total', int(used), '=n', int(requests)
  if w.exact then fields[n + 5], fields[n + 6] = '=q', int(w.pruned_at) end
  if running ~= nil then fields[#fields + 1], fields[#fields + 2] = '=p', int(running) end
  return fields
end

-- The totals of a window that gains no entry (the request was refused, or its line was
-- full), when they changed.
local function window_keep(w)
  if not (w.dirty or w.exact) then return end
  redis.call('HSET', w.tok, unpack(with_totals(w, {}, w.used, w.requests, w.running)))
  if w.x == nil then touch(w.tok, WINDOW + 2 * TTL_REFRESH) end  -- it may have been new
end

local function oldest_plus_window(zset)
  local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return tonumber(first[2]) + WINDOW
end

-- Requests whose lease ran out (their instance stopped renewing it: crashed, frozen) leave
-- `run` here: once a refresh period (before the checks, so that what they held is free for
-- the request being checked), and when the count in flight would refuse a request. The cost
-- they had reserved goes back to the budget, as nobody will release them. One that is still
-- running after all finds no reservation at its release and is charged its cost alone.
-- Returns how many left.
local function expire_leases(e, now)
  local gone = 0
  while true do  -- in batches, like the windows
    local dead = redis.call('ZRANGEBYSCORE', e.run, '-inf', now, 'LIMIT', 0, 1000)
    if #dead == 0 then return gone end
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
    gone = gone + #dead
    if #dead < 1000 then return gone end
  end
end

-- Whether the entity's requests in flight leave no parallel slot. Its count ("=p", kept with
-- every entry and exit of `run`) may still include leases that ran out: those leave first
-- when it would refuse.
local function no_parallel_slot(e, w, now)
  if w.running == nil then
    w.running, w.dirty = redis.call('ZCARD', e.run), true
  end
  if w.running < e.par_limit then return false end
  expire_leases(e, now)
  w.running, w.dirty = redis.call('ZCARD', e.run), true
  return w.running >= e.par_limit
end

-- What the checks pruned, written back when no reservation follows (a refusal, a full line):
-- entities not checked yet have nothing to write.
local function tenant_keep(ents)
  for _, e in ipairs(ents) do
    if e.w ~= nil then window_keep(e.w) end
    if e.mw ~= nil then window_keep(e.mw) end
  end
end

-- Nil when every entity can take the request now, else the denial. Notes on each entity what
-- tenant_reserve needs (its windows `w` and `mw`, `start`: the budget period's start).
local function tenant_check(ents, tokens, cost, now)
  local denied = nil
  for i, e in ipairs(ents) do
    local w = window_open(e.win, e.tok, now)
    e.w = w
    if stale_ttl(w.x, now) then  -- before the counts it frees
      local gone = expire_leases(e, now)
      if gone > 0 and w.running ~= nil then w.running, w.dirty = math.max(w.running - gone, 0), true end
    end
    local over = window_refuses(w, e.rpm_limit, e.tpm_limit, tokens, now)
    if over ~= 0 then
      denied = {-2, over, i, oldest_plus_window(e.win) - now}
    elseif e.par_limit > 0 and no_parallel_slot(e, w, now) then
      denied = {-2, 3, i, -1}
    end
    if denied == nil and (e.mrpm_limit > 0 or e.mtpm_limit > 0) then
      local mw = window_open(e.mwin, e.mtok, now)
      e.mw = mw
      local mover = window_refuses(mw, e.mrpm_limit, e.mtpm_limit, tokens, now)
      if mover ~= 0 then denied = {-2, mover + 4, i, oldest_plus_window(e.mwin) - now} end
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

-- A window's totals with the request's entry added (its tokens under its id), in one write,
-- with the prune's time when it pruned, the count in flight when it keeps it, and the TTLs
-- when they are due.
local function window_add(w, rid, tokens, added, now, running)
  local fields = with_totals(w, {rid, tokens}, w.used + tokens, w.requests + added, running)
  local refresh = stale_ttl(w.x, now)
  if refresh then fields[#fields + 1], fields[#fields + 2] = '=x', int(now) end
  redis.call('HSET', w.tok, unpack(fields))
  if refresh then
    touch(w.win, WINDOW + 2 * TTL_REFRESH)
    touch(w.tok, WINDOW + 2 * TTL_REFRESH)
  end
  return refresh
end

-- Only after tenant_check (same entities, same moment): the totals it read are still the
-- totals, so each is written with its entry in one HSET.
local function tenant_reserve(ents, rid, tokens, cost, now, lease)
  for _, e in ipairs(ents) do
    local w = e.w
    local added = redis.call('ZADD', e.win, now, rid)  -- 0 for a request already in it
    local running = w.running
    if running == nil then running = redis.call('ZCARD', e.run) end
    running = running + redis.call('ZADD', e.run, now + lease, rid)
    if window_add(w, rid, tokens, added, now, running) then
      touch(e.run, lease + WINDOW + 2 * TTL_REFRESH)
    end
    if e.mw ~= nil then
      window_add(e.mw, rid, tokens, redis.call('ZADD', e.mwin, now, rid), now, nil)
    end
    if cost > 0 then
      redis.call('HSET', e.spend, 'r', int(e.reserved + cost), 'r:' .. rid, cost)
    end
  end
end

-- The end of a request: free its slot, reconcile tokens and cost. Returns the entities (by
-- index) whose spend crossed their soft budget just now. `reserved_cost`: what its admission
-- reserved (a call that reserved and cost nothing leaves the spend alone). `undo` takes the
-- reservation back as if it never was (its line turned out to be full).
local function tenant_release(ents, rid, used, cost, reserved_cost, now, undo)
  local crossed = {}
  for i, e in ipairs(ents) do
    local left = redis.call('ZREM', e.run, rid)
    -- The window's totals and the count in flight (kept in the main window's hash only, and
    -- only while that hash is there: a new one counts `run` again) in one write.
    local function reconcile(win, tok, main)
      local got = redis.call('HMGET', tok, rid, '=total', '=n', '=p')
      local reserved, running = tonumber(got[1]), tonumber(got[4])
      local fields = {}
      if main and running ~= nil then fields = {'=p', int(math.max(running - left, 0))} end
      if reserved ~= nil then
        local total = tonumber(got[2]) or 0
        if undo then
          redis.call('ZREM', win, rid)
          redis.call('HDEL', tok, rid)
          local requests = tonumber(got[3]) or redis.call('ZCARD', win) + 1
          fields[#fields + 1], fields[#fields + 2] = '=total', int(total - reserved)
          fields[#fields + 1], fields[#fields + 2] = '=n', int(requests - 1)
        elseif used >= 0 and used ~= reserved then
          fields[#fields + 1], fields[#fields + 2] = rid, used
          fields[#fields + 1], fields[#fields + 2] = '=total', int(total + used - reserved)
        end
      end
      if #fields > 0 then redis.call('HSET', tok, unpack(fields)) end
    end
    reconcile(e.win, e.tok, true)
    if e.mrpm_limit > 0 or e.mtpm_limit > 0 then reconcile(e.mwin, e.mtok, false) end
    if cost > 0 or reserved_cost > 0 then
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
    end
  end
  return crossed
end
