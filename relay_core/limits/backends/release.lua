-- release.lua: a call ended. Free its concurrency slots and correct the token limits by what
-- it really used: delta = actual - estimated (negative is a refund; positive is debt).
-- Buckets never rise above capacity; counters never fall below zero.
--
-- KEYS: token bucket keys, token counter keys, concurrency keys, in that order.
-- ARGV: now, lease_id, delta, #buckets, #counters, then
--   per bucket: rate, capacity; per counter: ttl_s

local now, lease, delta = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local nb, nc = tonumber(ARGV[4]), tonumber(ARGV[5])

for i = nb + nc + 1, #KEYS do
  redis.call('ZREM', KEYS[i], lease)
end
if delta == 0 then
  return 0
end

local a = 6
for i = 1, nb do
  local rate, cap = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local tokens, ts = read_bucket(KEYS[i], now, rate, cap)
  write_bucket(KEYS[i], now, rate, cap, math.min(cap, tokens - delta), ts)
  a = a + 2
end
for i = nb + 1, nb + nc do
  local used = tonumber(redis.call('GET', KEYS[i]))
  if used or delta > 0 then
    redis.call('SET', KEYS[i], fmt(math.max(0, (used or 0) + delta)), 'EX', ARGV[a])
  end
  a = a + 1
end
return 1
