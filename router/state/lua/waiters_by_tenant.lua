--[[
  waiters_by_tenant (include): live waiters per fair-share tenant, for the read-only views.
]]
--@flags no-writes

-- Among the first `limit` waiters in line (one read of that many ids and one HMGET however
-- long the line is), skipping those in `gone` (request id -> true: their lease ran out).
-- Returns tenant -> waiters, and the tenants in the order they first appear.
local function waiters_by_tenant(line, wmeta, gone, limit)
  local counts, names = {}, {}
  local ids = redis.call('ZRANGE', line, 0, limit - 1)
  if #ids == 0 then return counts, names end
  local fields = {}
  for i, rid in ipairs(ids) do fields[i] = 't:' .. rid end
  local owners = redis.call('HMGET', wmeta, unpack(fields))
  for i, rid in ipairs(ids) do
    local tenant = owners[i]
    if tenant and not gone[rid] then
      if counts[tenant] == nil then
        counts[tenant] = 0
        names[#names + 1] = tenant
      end
      counts[tenant] = counts[tenant] + 1
    end
  end
  return counts, names
end
