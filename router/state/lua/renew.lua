--[[
  renew: extend the leases of one instance's waiters and in-flight slots in one group, and clear
  out entries of instances that stopped renewing (crashed, frozen, timed out). When that removes
  the head of the line, the new head is woken, and a head among the renewed waiters is woken
  again (see the end).

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] wlease  ZSET  waiter leases
  KEYS[3] wmeta   HASH  waiter arrival times
  KEYS[4..]       one run ZSET per in-flight slot listed in ARGV

  ARGV[1] lease (ms)
  ARGV[2] wake channel
  ARGV[3] number of waiters W
  ARGV[4 .. 3+W]  waiting request ids
  ARGV[4+W ..]    in-flight slot ids, one per KEYS[4..]

  Reply: the waiting request ids that were no longer in the line (their lease had run out)
]]
--@flags allow-oom
--@include common.lua
local line, wlease, wmeta = KEYS[1], KEYS[2], KEYS[3]
local lease, channel = tonumber(ARGV[1]), ARGV[2]
local w = tonumber(ARGV[3])

local now = now_ms()

local head_before = redis.call('ZRANGE', line, 0, 0)[1]
prune_waiters(line, wlease, wmeta, now)

local lost = {}
for i = 1, w do
  local rid = ARGV[3 + i]
  if redis.call('ZADD', wlease, 'XX', 'CH', now + lease, rid) == 0
      and redis.call('ZSCORE', wlease, rid) == false then
    lost[#lost + 1] = rid
  end
end
if w > 0 then
  redis.call('PEXPIRE', line, lease * 4)
  redis.call('PEXPIRE', wlease, lease * 4)
  redis.call('PEXPIRE', wmeta, lease * 4)
end

for i = 4, #KEYS do
  local run = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', run, '-inf', now)
  redis.call('ZADD', run, 'XX', now + lease, ARGV[w + i])
  redis.call('PEXPIRE', run, lease + 60000)
end

-- A new head is woken; so is a head that is one of this instance's waiters, on every renewal:
-- a wake-up lost on its way (a subscription being re-made) is made good within a third of a
-- lease, which lets waiters behind the head go without a frequent check of their own.
local head_after = redis.call('ZRANGE', line, 0, 0)[1]
local announce = head_after ~= nil and head_after ~= head_before
if head_after ~= nil and not announce then
  for i = 1, w do
    if ARGV[3 + i] == head_after then
      announce = true
      break
    end
  end
end
if announce then redis.call('PUBLISH', channel, head_after) end
return lost
