--[[
  tenant_cas: compare-and-set of one tenant value (a key or team record, or an alias claim),
  the atomic step of every read-modify-write of the tenant store: the caller read the value,
  computed the new one, and it is written only if nobody changed it in between.

  KEYS[1] the value  STRING  a record (JSON) or an alias's key hash; permanent, no TTL

  ARGV[1] expected   the value read before: "" when it must not exist, "*" for any value
  ARGV[2] new value  "" to delete it

  Reply: 1 when written (or deleted), 0 when the current value was not the expected one
]]
local current = redis.call('GET', KEYS[1])
local expected, new = ARGV[1], ARGV[2]
if expected ~= '*' then
  if expected == '' then
    if current then return 0 end
  elseif current ~= expected then
    return 0
  end
end
if new == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], new)
end
return 1
