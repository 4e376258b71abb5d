--[[
  tiers (include): capacity reserved per tier and the aging of waiters, for admit.

  Reservation (router_settings.priority_reservation). Every request of a group with
  reservations belongs to one tier, with a share of the group's capacity. Per tier two keys:
    line  ZSET  the tier's waiters -> their score in the group's line (an index of the line:
                entries that left the line are dropped when they surface)
    adm   ZSET  slot -> admission time: the tier's admissions in the last 60 s
  Capacity that comes free goes to the tier with demand (a live waiter, or the request asking)
  that has received the least relative to its share: admissions in the last minute divided by
  the share. Under saturation each tier so gets its share; a tier with no demand lends its
  share to the others, and takes it back with the next capacity that comes free. Inside a
  tier the line's order holds (priority, then fair share).

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

-- Whether a waiter goes before request `rid` (score `score`, tier `mine`): 0 when it may go
-- now, else 1 and the id of the waiter that should (to wake it when capacity is open).
local function tier_ahead(line, tiers, mine, rid, score, now)
  local depth = redis.call('ZCARD', line)
  local best, best_n, best_s, pick = nil, nil, nil, nil
  for j, t in ipairs(tiers) do
    tier_sweep(t, line, depth)
    redis.call('ZREMRANGEBYSCORE', t.adm, '-inf', now - WINDOW)
    local first, s = tier_first(t, line)
    if j == mine and (first == nil or first == rid or s >= score) then first, s = rid, score end
    if first ~= nil then
      local served = redis.call('ZCARD', t.adm)
      local n = math.huge
      if t.share > 0 then n = served / t.share end
      if best == nil or n < best_n or (n == best_n and s < best_s) then
        best, best_n, best_s, pick = j, n, s, first
      end
    end
  end
  if pick == rid then return 0, nil end
  return 1, pick
end
