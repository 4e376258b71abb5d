--[[
  fair (include): fair share inside a priority (start-time fair queueing over weighted tokens).

  Each tenant of a group has a virtual finish F (in the group's wmeta HASH, "f:<tenant>"): the
  weighted tokens it has been served (input plus a weight times output, divided by its
  fair-share weight), and "=s:<tenant>" the weighted tokens it was served since the clock
  started (what /queue/status reports as its share). A request's place among its priority is its start tag max(F, V), not its
  arrival, so the tenant that has received the least goes first; then F grows by the request's
  cost. V ("=V") is the start tag of the latest admission, so a tenant arriving or returning
  after being idle starts level with the others and idleness earns no credit. Real usage
  corrects F at release. The clock lives as long as the line's metadata: it starts again at
  zero after the group has been idle for a few leases, and is rebased before tags outgrow the
  32 bits a score keeps for them.
]]
local FAIR_REBASE = 2147483648

local function fair_start(wmeta, tenant)
  local v = tonumber(redis.call('HGET', wmeta, '=V')) or 0
  local f = tonumber(redis.call('HGET', wmeta, 'f:' .. tenant)) or 0
  if f > v then return f end
  return v
end

local function fair_charge(wmeta, tenant, start, cost)
  redis.call('HSET', wmeta, 'f:' .. tenant, int(start + cost))
end

-- Every score and clock moved down by `by`, keeping their order.
local function fair_rebase(line, wmeta, by)
  local entries = redis.call('ZRANGE', line, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    local score = tonumber(entries[i + 1])
    local band = math.floor(score / 4294967296) * 4294967296
    local tag = score - band - by
    if tag < 0 then tag = 0 end
    redis.call('ZADD', line, int(band + tag), entries[i])
  end
  local fields = redis.call('HGETALL', wmeta)
  for i = 1, #fields, 2 do
    local name = fields[i]
    if name == '=V' or string.sub(name, 1, 2) == 'f:' then
      local value = tonumber(fields[i + 1]) - by
      if value < 0 then value = 0 end
      redis.call('HSET', wmeta, name, int(value))
    end
  end
end

-- An admission with start tag `tag`: the clock moves up to it.
local function fair_served(line, wmeta, tag, lease)
  local v = tonumber(redis.call('HGET', wmeta, '=V')) or 0
  if tag > v then
    redis.call('HSET', wmeta, '=V', int(tag))
    v = tag
  end
  if v > FAIR_REBASE then fair_rebase(line, wmeta, v) end
  redis.call('PEXPIRE', wmeta, lease * 4)
end

-- Real usage replaces the estimate in the tenant's finish tag.
local function fair_correct(wmeta, tenant, delta)
  if tenant ~= nil and tenant ~= '' and delta ~= 0 and redis.call('HEXISTS', wmeta, 'f:' .. tenant) == 1 then
    local f = redis.call('HINCRBY', wmeta, 'f:' .. tenant, delta)
    if f < 0 then redis.call('HSET', wmeta, 'f:' .. tenant, 0) end
    if redis.call('HEXISTS', wmeta, '=s:' .. tenant) == 1 then
      local served = redis.call('HINCRBY', wmeta, '=s:' .. tenant, delta)
      if served < 0 then redis.call('HSET', wmeta, '=s:' .. tenant, 0) end
    end
  end
end
