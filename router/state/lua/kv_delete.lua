--[[
  kv_delete: forget one stored value.

  KEYS[1] the value's key  STRING

  Reply: 1 when there was a value, else 0
]]
--@flags allow-oom
return redis.call('DEL', KEYS[1])
