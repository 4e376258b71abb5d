--[[
  admit: reserve capacity on one deployment of a model group, or wait in the group's line.

  A request is admitted when a deployment has capacity (rpm, tpm, parallel slots, not cooling
  down) and no live waiter of the group ranks before it (lower priority number, then earlier
  arrival). Otherwise it enters (or keeps its place in) the line.

  KEYS[1] line    ZSET  waiting request id -> priority * 2^32 + arrival sequence
  KEYS[2] wlease  ZSET  waiting request id -> lease expiry (ms)
  KEYS[3] wmeta   HASH  waiting request id -> arrival time (ms), "t:<id>" -> its tenant, the
                        fair-share clock ("=V", "f:<tenant>", "=s:<tenant>", see fair.lua) and
                        the tiers' ("=T", "=r:<tier>", tiers.lua)
  KEYS[4] seq     STRING arrival counter
  KEYS[5] health  HASH  <deployment>:cool -> cooldown end (ms), <deployment>:lat -> latency (ms)
  KEYS[6..]       per candidate i (in the caller's order), 4 keys: rpm, tpm, tok, run
  then, with the optional aging and reservation values: the aging ZSET, then per tier j its
                  index of the line (tiers.lua)

  ARGV[1]  request id (member of the line)
  ARGV[2]  slot id (member of the windows; unique per attempt; "<tier>|<slot>" in a group with
           reservations, which counts its use per tier: capacity.lua, tiers.lua)
  ARGV[3]  priority (integer, lower first)
  ARGV[4]  tokens to reserve
  ARGV[5]  lease (ms)
  ARGV[6]  order: given | least-busy | usage | latency
  ARGV[7]  max waiters in the group (-1 = unlimited, 0 = never wait)
  ARGV[8]  max waiters at this priority (-1 = unlimited)
  ARGV[9]  retry: 1 when the request was admitted before (skips the line check)
  ARGV[10] wake channel
  ARGV[11] random number in [0, 1) for tie-breaks
  ARGV[12] latency buffer (fraction; deployments this close to the fastest count as equal)
  ARGV[13] number of candidates n
  ARGV[14..] per candidate i, 4 values: deployment id, rpm limit, tpm limit, parallel limit
             (0 = no limit)
  then, optional: fair-share tenant ('' = order by arrival) and the request's weighted cost
             (fair.lua)
  then, optional (tiers.lua): aging bound (ms, 0 = off), the request's tier j (1-based),
             the number of tiers m, and each tier's name and share (0..1)

  Reply:
    {1, i}              admitted on candidate i (1-based)
    {0, position, ms}   waiting at `position` (0 = head); ms until capacity returns, or -1
    {-1, depth, ms}     the line is full; ms = estimated time until it drains
]]
--@include common.lua
--@include capacity.lua
--@include fair.lua
--@include admit_core.lua

return admit_group(KEYS, ARGV)
