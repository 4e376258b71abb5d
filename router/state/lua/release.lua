--[[
  release: the end of one attempt on a deployment. Frees its parallel slot, reconciles the
  reserved tokens with the real usage, records latency and failures (possibly starting a
  cooldown), and wakes the head of the group's line.

  KEYS[1] line    ZSET  the group's waiting requests
  KEYS[2] health  HASH  <deployment>:cool -> cooldown end (ms), <deployment>:lat -> latency (ms)
  KEYS[3] tpm     ZSET  the deployment's token reservations
  KEYS[4] tok     HASH  the deployment's reserved tokens per slot, "=total"
  KEYS[5] run     ZSET  the deployment's requests in flight
  KEYS[6] fails   ZSET  the deployment's failures in the last 60 s

  ARGV[1] slot id
  ARGV[2] deployment id
  ARGV[3] tokens actually used (0 = refund all; -1 = keep the reservation)
  ARGV[4] latency in ms to record (-1 = none)
  ARGV[5] outcome: ok | fail | fatal (cool down at once) | none (cancelled, not the deployment's fault)
  ARGV[6] allowed failures per minute before a cooldown
  ARGV[7] cooldown (ms)
  ARGV[8] cooldown demanded by the upstream, e.g. from Retry-After (ms, 0 = none)
  ARGV[9] wake channel

  Reply: {cooled down (0/1), cooldown ms}
]]
--@include common.lua
local line, health, tpm, tok, run, fails = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local slot, dep = ARGV[1], ARGV[2]
local used, latency = tonumber(ARGV[3]), tonumber(ARGV[4])
local outcome = ARGV[5]
local allowed, cooldown, demanded = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local channel = ARGV[9]

local now = now_ms()

redis.call('ZREM', run, slot)

-- Reconcile: the window keeps what was really used; a failed attempt used nothing (a full
-- refund), and a caller that passes 0 refunds an attempt of any outcome.
if outcome == 'fail' or outcome == 'fatal' then used = 0 end
if used >= 0 then
  local reserved = tonumber(redis.call('HGET', tok, slot))
  if reserved ~= nil then
    redis.call('HSET', tok, slot, used)
    redis.call('HINCRBY', tok, '=total', used - reserved)
  end
end

if latency >= 0 and outcome == 'ok' then
  local old = tonumber(redis.call('HGET', health, dep .. ':lat'))
  local ewma = latency
  if old ~= nil then ewma = old * 0.7 + latency * 0.3 end
  redis.call('HSET', health, dep .. ':lat', ewma)
end

local cool_for = 0
if demanded > 0 then
  cool_for = demanded
elseif outcome == 'fatal' then
  cool_for = cooldown
elseif outcome == 'fail' then
  redis.call('ZADD', fails, now, slot)
  redis.call('ZREMRANGEBYSCORE', fails, '-inf', now - 60000)
  redis.call('PEXPIRE', fails, 61000)
  if redis.call('ZCARD', fails) >= allowed then cool_for = cooldown end
end
if cool_for > 0 then
  local until_ms = now + cool_for
  local current = tonumber(redis.call('HGET', health, dep .. ':cool')) or 0
  if until_ms > current then redis.call('HSET', health, dep .. ':cool', until_ms) end
  redis.call('DEL', fails)
end
redis.call('PEXPIRE', health, math.max(3600000, cool_for + 60000))

local head = redis.call('ZRANGE', line, 0, 0)
if #head > 0 then redis.call('PUBLISH', channel, head[1]) end
if cool_for > 0 then return {1, cool_for} end
return {0, 0}
