--[[
  tiers (include): capacity reserved per tier and the aging of waiters, for admit.

  Reservation (router_settings.priority_reservation). Every request of a group with
  reservations belongs to one tier, with a share of the group's capacity. Two rules decide
  who takes capacity that is open:

  Held per deployment. On each deployment, for each of its limits L (rpm: requests in the
  window, tpm: tokens in the window, parallel: in flight), a tier with demand — a live waiter
  in the line, or the request asking — holds floor(share * L) units. A request may take a
  unit when, for every limit, its tier is still within its own hold, or what stays free
  after it covers what every other tier with demand is still owed of its hold
  (sum of max(0, hold - used)). The floors never add up to more than L, so what they leave is
  shared, and a tier without demand holds nothing: its share is lent. Per-tier use comes
  from capacity.lua's counters ("=r:", "=t:") and, for in flight, from the run ZSET itself
  (counted only when another tier with demand holds parallel slots): an in-flight count that
  is never kept cannot drift, whatever way a slot ends (release, lease run out, undo).

  Order. Among the tiers with demand, capacity goes to the one furthest behind its share
  that may take it (start-time fair queueing across tiers, as fair.lua does across tenants,
  each admission costing a tier 1 / its share). In the group's wmeta HASH: "=T" the tiers'
  clock (the start tag of the latest admission), "=r:<tier>" each tier's finish tag. A tier
  that was idle earns no credit (it starts level with the clock), one that borrowed owes
  nothing. A tier with share 0 comes after every tier with a share. When the holds leave no
  tier with demand able to go (they conflict across limits), the order alone decides, so
  open capacity never idles while someone waits. Inside a tier the line's order holds
  (priority, then fair share). Another tier's waiter is judged on its need of one request
  (its tokens are not known here): like a large request at the head of any line, it may then
  find the tpm it needs not there, and waits for it. Per tier one key:
    line  ZSET  the tier's waiters -> their score in the group's line (an index of the line:
                entries that left the line are dropped when they surface)

  Aging (router_settings.priority_aging): a waiter that has waited `aging` ms is promoted
  ahead of every priority (PROMOTED + its arrival), so no stream of more important requests
  delays it further than that bound plus the service of waiters promoted before it.
    aging ZSET  waiting request id -> arrival (ms); entries that left the line are dropped when
                they surface
]]
local PROMOTED = -9007199254740992  -- -2^53: below the most important band (-2^20 * 2^32)

-- Waiters that have waited past `edge` move ahead of every priority, oldest first.
local function age_promote(line, aging, tiers, edge)
  local moved = false
  while true do
    local oldest = redis.call('ZRANGE', aging, 0, 0, 'WITHSCORES')
    if #oldest == 0 or tonumber(oldest[2]) > edge then return moved end
    local rid = oldest[1]
    redis.call('ZREM', aging, rid)
    if redis.call('ZSCORE', line, rid) then
      local promoted = int(PROMOTED + tonumber(oldest[2]))
      redis.call('ZADD', line, promoted, rid)
      if tiers ~= nil then
        for _, t in ipairs(tiers) do redis.call('ZADD', t.line, 'XX', promoted, rid) end
      end
      moved = true
    end
  end
end

-- The first live waiter of a tier and its score in the line (nil when it has none).
local function tier_first(t, line)
  while true do
    local first = redis.call('ZRANGE', t.line, 0, 0)
    if #first == 0 then return nil, nil end
    local s = redis.call('ZSCORE', line, first[1])
    if s then return first[1], tonumber(s) end
    redis.call('ZREM', t.line, first[1])
  end
end

-- An index that outgrew the line (waiters that left it from deep inside) is swept.
local function tier_sweep(t, line, depth)
  if redis.call('ZCARD', t.line) <= 2 * depth + 64 then return end
  local members = redis.call('ZRANGE', t.line, 0, -1)
  for _, m in ipairs(members) do
    if not redis.call('ZSCORE', line, m) then redis.call('ZREM', t.line, m) end
  end
end

local function tier_tag(wmeta, t, v)
  local f = tonumber(redis.call('HGET', wmeta, '=r:' .. t.name)) or 0
  if f > v then return f end
  return v
end

-- The tiers with demand, in the order start-time fair queueing serves them: entries
-- {j, first waiter, key}; tier `mine` has demand through `rid` (score `score`) itself. Marks
-- each tier with demand (t.demand) for the holds.
local function tier_rank(line, wmeta, tiers, mine, rid, score)
  local depth = redis.call('ZCARD', line)
  local v = tonumber(redis.call('HGET', wmeta, '=T')) or 0
  local ranked = {}
  for j, t in ipairs(tiers) do
    tier_sweep(t, line, depth)
    local first, s = tier_first(t, line)
    if j == mine and (first == nil or first == rid or s >= score) then first, s = rid, score end
    if first ~= nil then
      local key = {1, 0, s, j}
      if t.share > 0 then key = {0, tier_tag(wmeta, t, v), s, j} end
      ranked[#ranked + 1] = {j = j, first = first, key = key}
      t.demand = true
    end
  end
  table.sort(ranked, function(a, b)
    for i = 1, 4 do
      if a.key[i] ~= b.key[i] then return a.key[i] < b.key[i] end
    end
    return false
  end)
  return ranked
end

-- Each tier's use of candidate c ({r, t, p} by tier name), read once per admission.
local function tier_use(c, tiers)
  if c.use ~= nil then return c.use end
  local fields = {}
  for _, t in ipairs(tiers) do
    fields[#fields + 1] = '=r:' .. t.name
    fields[#fields + 1] = '=t:' .. t.name
  end
  local values = redis.call('HMGET', c.k.tok, unpack(fields))
  local use = {}
  for i, t in ipairs(tiers) do
    use[t.name] = {r = tonumber(values[2 * i - 1]) or 0, t = tonumber(values[2 * i]) or 0, p = 0}
  end
  if c.lim.par > 0 then
    for _, slot in ipairs(redis.call('ZRANGE', c.k.run, 0, -1)) do
      local u = use[slot_tier(slot) or '']
      if u ~= nil then u.p = u.p + 1 end
    end
  end
  c.use = use
  return use
end

-- Units of limit `lim` held for a tier with `share` while it has demand.
local function tier_hold(share, lim)
  return math.floor(share * lim + 1e-9)
end

-- Whether tier j may take one request and `need` tokens on open candidate c without taking
-- what is held for another tier with demand.
local function tier_fits(tiers, j, c, need)
  local dims = {{c.lim.rpm, c.rpm, 'r', 1}, {c.lim.tpm, c.tok, 't', need},
                {c.lim.par, c.run, 'p', 1}}
  for _, d in ipairs(dims) do
    local lim, used, field, want = d[1], d[2], d[3], d[4]
    if lim > 0 then
      local owed, use = 0, nil
      for u, t in ipairs(tiers) do
        if u ~= j and t.demand then
          local hold = tier_hold(t.share, lim)
          if hold > 0 then
            use = use or tier_use(c, tiers)
            local short = hold - use[t.name][field]
            if short > 0 then owed = owed + short end
          end
        end
      end
      if owed > 0 and lim - used - want < owed
          and use[tiers[j].name][field] + want > tier_hold(tiers[j].share, lim) then
        return false
      end
    end
  end
  return true
end

-- Who open capacity goes to (see the top): 0 when it may go to request `rid` now, else 1 and
-- the waiter it should go to (nil when none can take it). Marks the candidates `rid` may use
-- (c.fits). A retry skips the order but not the holds.
local function tier_pick(ranked, tiers, mine, rid, cands, tokens, retry)
  local open = false
  for _, c in ipairs(cands) do
    if c.ok then open = true end
  end
  local function fits(j, need)
    local found = false
    for _, c in ipairs(cands) do
      if c.ok and (j == mine or not found) then
        local yes = tier_fits(tiers, j, c, need)
        if j == mine then c.fits = yes end
        found = found or yes
      end
    end
    return found
  end
  if open then
    if retry and fits(mine, tokens) then return 0, nil end
    for _, e in ipairs(ranked) do
      local need = 0
      if e.j == mine then need = tokens end
      if (e.j ~= mine or not retry) and fits(e.j, need) then
        if e.first == rid then return 0, nil end
        return 1, e.first
      end
    end
    -- The holds conflict (no tier with demand may go): the order alone decides.
    for _, c in ipairs(cands) do c.fits = true end
  end
  if retry or ranked[1].first == rid then return 0, nil end
  return 1, ranked[1].first
end

-- An admission of tier `t`: its finish tag moves on by 1 / its share, the clock to its start.
local function tier_charge(wmeta, t, lease)
  if t.share > 0 then
    local v = tonumber(redis.call('HGET', wmeta, '=T')) or 0
    local start = tier_tag(wmeta, t, v)
    redis.call('HSET', wmeta, '=r:' .. t.name, tostring(start + 1 / t.share))
    if start > v then redis.call('HSET', wmeta, '=T', tostring(start)) end
    redis.call('PEXPIRE', wmeta, lease * 4)
  end
end
