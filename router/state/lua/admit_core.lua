--[[
  admit_core (include): the body of `admit` as a function of its keys and arguments, so that
  admit.lua runs it alone and admit_tenant.lua runs it after a tenant's checks, in one script.
  Read admit.lua for what the keys, arguments and reply are.
]]
--@include tiers.lua
--@include stats.lua
local function admit_group(KEYS, ARGV, now)  -- now: optional, a caller that read TIME
  local line, wlease, wmeta, seq, health = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  local rid, slot = ARGV[1], ARGV[2]
  local priority = tonumber(ARGV[3])
  local tokens = tonumber(ARGV[4])
  local lease = tonumber(ARGV[5])
  local order = ARGV[6]
  local max_group, max_prio = tonumber(ARGV[7]), tonumber(ARGV[8])
  local retry = ARGV[9] == '1'
  local channel = ARGV[10]
  local rnd, buffer = tonumber(ARGV[11]), tonumber(ARGV[12])
  local SHIFT = 4294967296

  now = now or now_ms()

  local n = tonumber(ARGV[13])
  -- Fair share (fair.lua): the tenant and the weighted cost of this request, after the
  -- candidates' values; absent or '' orders the priority's line by arrival instead.
  local fair, fair_cost = ARGV[14 + 4 * n], tonumber(ARGV[15 + 4 * n]) or 1
  if fair == '' then fair = nil end
  -- Aging and reservation (tiers.lua), optional after the fair-share values.
  local aging_ms, mine, tiers, aging = tonumber(ARGV[16 + 4 * n]) or 0, 0, nil, KEYS[6 + 4 * n]
  local m = tonumber(ARGV[18 + 4 * n]) or 0
  if m > 0 then
    mine, tiers = tonumber(ARGV[17 + 4 * n]), {}
    for j = 1, m do
      tiers[j] = {name = ARGV[17 + 4 * n + 2 * j], share = tonumber(ARGV[18 + 4 * n + 2 * j]),
                  line = KEYS[6 + 4 * n + j]}
    end
  end

  local head_before = nil
  local pruned = prune_waiters(line, wlease, wmeta, now) > 0
  if aging_ms > 0 then
    if not pruned then head_before = redis.call('ZRANGE', line, 0, 0)[1] end
    pruned = age_promote(line, aging, tiers, now - aging_ms) or pruned
  end
  if pruned then
    -- A dead waiter may have been the head, or an aged one may be now: whoever heads the
    -- line now must hear it.
    local head = redis.call('ZRANGE', line, 0, 0)
    if #head > 0 and head[1] ~= rid and head[1] ~= head_before then
      redis.call('PUBLISH', channel, head[1])
    end
  end

  local score = tonumber(redis.call('ZSCORE', line, rid))
  local fresh = score == nil
  local start = nil
  if fresh then
    if retry then
      score = priority * SHIFT
    elseif fair ~= nil then
      start = fair_start(wmeta, fair)
      score = priority * SHIFT + start
    else
      score = priority * SHIFT + redis.call('INCR', seq) % SHIFT
    end
  end
  local ahead, pick, ranked = 0, nil, nil
  if tiers ~= nil then
    ranked = tier_rank(line, wmeta, tiers, mine, rid, score)  -- a retry too: the holds need it
  elseif not retry then
    ahead = redis.call('ZCOUNT', line, '-inf', '(' .. int(score))
  end

  local cands = {}
  local soonest = -1
  for i = 1, n do
    local k = {rpm = KEYS[2 + 4 * i], tpm = KEYS[3 + 4 * i], tok = KEYS[4 + 4 * i], run = KEYS[5 + 4 * i]}
    local id = ARGV[10 + 4 * i]
    local lim = {rpm = tonumber(ARGV[11 + 4 * i]), tpm = tonumber(ARGV[12 + 4 * i]),
                 par = tonumber(ARGV[13 + 4 * i])}
    local cool = tonumber(redis.call('HGET', health, id .. ':cool')) or 0
    local rpm_used, tok_used, running, ok, back = inspect(k, lim, tokens, now, cool)
    local lat = tonumber(redis.call('HGET', health, id .. ':lat')) or 0
    cands[i] = {i = i, k = k, lim = lim, ok = ok, rpm = rpm_used, tok = tok_used,
                run = running, lat = lat}
    if not ok and back >= 0 and (soonest < 0 or back < soonest) then soonest = back end
  end
  if tiers ~= nil then ahead, pick = tier_pick(ranked, tiers, mine, rid, cands, tokens, retry) end

  local function better(a, b)
    if order == 'least-busy' then
      if a.run ~= b.run then return a.run < b.run end
    elseif order == 'usage' then
      if a.tok ~= b.tok then return a.tok < b.tok end
      if a.rpm ~= b.rpm then return a.rpm < b.rpm end
    end
    return a.i < b.i
  end

  local chosen = nil
  local open = 0
  if ahead == 0 then
    local best_lat = nil
    for _, c in ipairs(cands) do
      if c.ok and c.fits ~= false then
        open = open + 1
        if best_lat == nil or c.lat < best_lat then best_lat = c.lat end
      end
    end
    if order == 'latency' and open > 0 then
      -- Every open deployment within the buffer of the fastest is equally good: pick one at random.
      local near = {}
      for _, c in ipairs(cands) do
        if c.ok and c.fits ~= false and c.lat <= best_lat * (1 + buffer) then
          near[#near + 1] = c
        end
      end
      chosen = near[1 + math.floor(rnd * #near) % #near]
    else
      for _, c in ipairs(cands) do
        if c.ok and c.fits ~= false and (chosen == nil or better(c, chosen)) then chosen = c end
      end
    end
  end

  if chosen ~= nil then
    local k = chosen.k
    redis.call('ZADD', k.rpm, now, slot)
    redis.call('ZADD', k.tpm, now, slot)
    redis.call('HSET', k.tok, slot, tokens)
    redis.call('HINCRBY', k.tok, '=total', tokens)
    redis.call('ZADD', k.run, now + lease, slot)
    local held = slot_tier(slot)  -- its tier's counters (capacity.lua)
    if held ~= nil then
      redis.call('HINCRBY', k.tok, '=r:' .. held, 1)
      if tokens ~= 0 then redis.call('HINCRBY', k.tok, '=t:' .. held, tokens) end
    end
    touch(k.rpm, WINDOW + 1000)
    touch(k.tpm, WINDOW + 1000)
    touch(k.tok, WINDOW + 1000)
    touch(k.run, lease + WINDOW)
    if not fresh then
      redis.call('ZREM', line, rid)
      redis.call('ZREM', wlease, rid)
      redis.call('HDEL', wmeta, rid, 't:' .. rid)
      if aging_ms > 0 then redis.call('ZREM', aging, rid) end
      if tiers ~= nil then redis.call('ZREM', tiers[mine].line, rid) end
    end
    if tiers ~= nil then tier_charge(wmeta, tiers[mine], lease) end
    if fair ~= nil then
      if start ~= nil then fair_charge(wmeta, fair, start, fair_cost) end
      redis.call('HINCRBY', wmeta, '=s:' .. fair, fair_cost)
      fair_served(line, wmeta, score - priority * SHIFT, lease)
    end
    -- Wake the next in line while capacity remains, so a burst of freed capacity drains in a chain.
    local still = open > 1
    if not still then
      local cool = tonumber(redis.call('HGET', health, ARGV[10 + 4 * chosen.i] .. ':cool')) or 0
      local _, _, _, ok = inspect(k, chosen.lim, tokens, now, cool)
      still = ok
    end
    if still then
      local head = redis.call('ZRANGE', line, 0, 0)
      if #head > 0 then redis.call('PUBLISH', channel, head[1]) end
    end
    return {1, chosen.i}
  end

  if pick ~= nil then
    -- Another tier's waiter is owed the capacity: when some is open, it must hear it.
    for _, c in ipairs(cands) do
      if c.ok then
        redis.call('PUBLISH', channel, pick)
        break
      end
    end
  end

  local retry_ms = -1
  if fresh then
    local depth = redis.call('ZCARD', line)
    local full = max_group >= 0 and depth >= max_group
    if not full and max_prio >= 0 then
      local lo = priority * SHIFT
      full = redis.call('ZCOUNT', line, int(lo), int(lo + SHIFT - 1)) >= max_prio
    end
    if full then
      -- Estimated drain time: the line at the rate requests were admitted over the last
      -- minute, but never before capacity returns (a cooldown, a window), and with nobody
      -- in line just that.
      local admitted = 0
      for _, c in ipairs(cands) do admitted = admitted + c.rpm end
      local drain = -1
      if admitted > 0 then drain = math.ceil((depth + 1) * WINDOW / admitted) end
      if soonest >= 0 and (depth == 0 or drain < soonest - now) then drain = soonest - now end
      stat_group(health, 'full', now)
      return {-1, depth, drain}
    end
    redis.call('ZADD', line, int(score), rid)
    redis.call('HSET', wmeta, rid, now)
    if start ~= nil then
      fair_charge(wmeta, fair, start, fair_cost)
      redis.call('HSET', wmeta, 't:' .. rid, fair)
    end
    if aging_ms > 0 then redis.call('ZADD', aging, now, rid) end
    if tiers ~= nil then redis.call('ZADD', tiers[mine].line, int(score), rid) end
  end
  -- The indexes outlive any wait (their stale entries are dropped as they surface).
  if aging_ms > 0 then touch(aging, aging_ms + 600000) end
  if tiers ~= nil then touch(tiers[mine].line, 600000) end
  redis.call('ZADD', wlease, now + lease, rid)
  touch(line, lease * 4)
  touch(wlease, lease * 4)
  touch(wmeta, lease * 4)
  touch(seq, 86400000)

  local position = redis.call('ZRANK', line, rid)
  if tiers ~= nil and ahead == 0 then position = 0 end  -- next when capacity returns
  if position == 0 and soonest >= 0 then retry_ms = soonest - now end
  return {0, position, retry_ms}
end
