--[[
  line_bands (include): a group's line per priority, read only, at a cost that does not grow
  with the line: a few calls per priority present (a count over its band of scores, its first
  live member), plus the expired waiters not yet cleared. Monitoring that polls a line of
  thousands must not take Redis time from the admissions and renewals that keep it moving.

  line_bands(line, wlease, wmeta, now) -> bands {{priority, count, head's arrival (ms)}, ...}
  in priority order, and `gone` (a set of the expired waiters still in the line). Waiters
  promoted by aging (tiers.lua) count at AGED, one below the most important priority.
]]
--@flags no-writes
local BAND_SHIFT = 4294967296
local AGED = -1048576

local function line_bands(line, wlease, wmeta, now)
  local expired, gone = {}, {}
  for _, rid in ipairs(redis.call('ZRANGEBYSCORE', wlease, '-inf', now)) do
    gone[rid] = true
    local score = tonumber(redis.call('ZSCORE', line, rid))
    if score ~= nil then
      local prio = math.max(math.floor(score / BAND_SHIFT), AGED)
      expired[prio] = (expired[prio] or 0) + 1
    end
  end
  local bands = {}
  local lo = '-inf'
  while true do
    local first = redis.call('ZRANGEBYSCORE', line, lo, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #first == 0 then break end
    local prio = math.max(math.floor(tonumber(first[2]) / BAND_SHIFT), AGED)
    local band_lo, band_hi = prio * BAND_SHIFT, (prio + 1) * BAND_SHIFT
    if prio == AGED then band_lo = '-inf' end
    local count = redis.call('ZCOUNT', line, band_lo, '(' .. int(band_hi)) - (expired[prio] or 0)
    if count > 0 then
      local offset, head = 0, nil  -- the band's first live member
      while head == nil do
        local batch = redis.call('ZRANGEBYSCORE', line, band_lo, '(' .. int(band_hi),
                                 'LIMIT', offset, 16)
        if #batch == 0 then break end
        for _, rid in ipairs(batch) do
          if not gone[rid] then
            head = rid
            break
          end
        end
        offset = offset + #batch
      end
      bands[#bands + 1] = {prio, count, head and tonumber(redis.call('HGET', wmeta, head)) or now}
    end
    lo = int(band_hi)
  end
  return bands, gone
end
