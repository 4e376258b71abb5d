--[[
  tiers (include): capacity reserved per tier and the aging of waiters, for admit.

  Reservation (router_settings.priority_reservation). Every request of a group with
  reservations belongs to one tier, with a share of the group's capacity. Capacity that comes
  free goes to the tier with demand (a live waiter, or the request asking) that is furthest
  behind its share: start-time fair queueing across tiers, as fair.lua does across tenants,
  each admission costing a tier 1 / its share. In the group's wmeta HASH: "=T" the tiers'
  clock (the start tag of the latest admission), "=r:<tier>" each tier's finish tag. Under
  saturation each tier so gets its share; a tier with no demand lends its share to the others
  and, like an idle tenant, earns no credit for it (it starts level with the clock when it
  returns), while one that borrowed owes nothing. A tier with share 0 gets only capacity that
  no tier with a share wants. Inside a tier the line's order holds (priority, then fair
  share). Per tier one key:
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

-- Whether a waiter goes before request `rid` (score `score`, tier `mine`): 0 when it may go
-- now, else 1 and the id of the waiter that should (to wake it when capacity is open).
local function tier_ahead(line, wmeta, tiers, mine, rid, score)
  local depth = redis.call('ZCARD', line)
  local v = tonumber(redis.call('HGET', wmeta, '=T')) or 0
  local best, pick = nil, nil
  for j, t in ipairs(tiers) do
    tier_sweep(t, line, depth)
    local first, s = tier_first(t, line)
    if j == mine and (first == nil or first == rid or s >= score) then first, s = rid, score end
    if first ~= nil then
      local key = {1, 0, s}
      if t.share > 0 then key = {0, tier_tag(wmeta, t, v), s} end
      if best == nil or key[1] < best[1] or (key[1] == best[1] and (key[2] < best[2]
          or (key[2] == best[2] and key[3] < best[3]))) then
        best, pick = key, first
      end
    end
  end
  if pick == rid then return 0, nil end
  return 1, pick
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
