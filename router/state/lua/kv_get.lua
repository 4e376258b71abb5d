--[[
  kv_get: one stored value (a Responses conversation, router/state/kv.py).

  KEYS[1] the value's key  STRING

  Reply: the value, or false when there is none (never stored, expired or deleted)
]]
--@flags no-writes
return redis.call('GET', KEYS[1])
