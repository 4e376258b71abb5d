--[[
  kv_put: store one value with its time to live.

  KEYS[1] the value's key  STRING

  ARGV[1] the value
  ARGV[2] time to live (ms)

  Reply: 1
]]
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
