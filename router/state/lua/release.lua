--[[
  release: the end of one attempt on a deployment. Frees its parallel slot, reconciles the
  reserved tokens with the real usage, records latency and failures (possibly starting a
  cooldown), and wakes the head of the group's line.

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] health  HASH  <deployment>:cool -> cooldown end (ms), <deployment>:lat -> latency (ms),
                  <deployment>:why -> the cooldown's reason
  KEYS[3] tpm     ZSET  the deployment's token reservations
  KEYS[4] tok     HASH  the deployment's reserved tokens per slot, "=total"
  KEYS[5] run     ZSET  the deployment's requests in flight
  KEYS[6] fails   ZSET  the deployment's failures in the last 60 s

  ARGV[1] slot id ("<tier>|<slot>" in a group with reservations: its tier's counters follow)
  ARGV[2] deployment id
  ARGV[3] tokens actually used (0 = refund all; -1 = keep the reservation)
  ARGV[4] latency in ms to record (-1 = none)
  ARGV[5] outcome: ok | fail | fatal (cool down at once) | none (cancelled, not the deployment's fault)
  ARGV[6] allowed failures per minute before a cooldown
  ARGV[7] cooldown (ms)
  ARGV[8] cooldown demanded by the upstream, e.g. from Retry-After (ms, 0 = none)
  ARGV[9] wake channel
  ARGV[10] fair-share tenant (optional; '' = none)   ARGV[11] its cost correction (fair.lua)
  KEYS[7] wmeta (optional, with ARGV[10]): the group's fair-share clock
  ARGV[12] a value to keep (optional; ARGV[10..11] are then given, '' and 0 without fair share)
  ARGV[13] its time to live (ms)   KEYS[#KEYS] its key (the last key)

  Reply: {cooled down (0/1), cooldown ms}
]]
--@flags allow-oom
--@include common.lua
--@include capacity.lua
--@include fair.lua
--@include release_core.lua

return release_group(KEYS, ARGV)
