-- lower.lua: an upstream said how much is left (x-ratelimit-remaining-*). Lower our view to
-- it, never raise it: a bucket holds at most `remaining`; a counter has used at least
-- `limit - remaining`.
--
-- KEYS: bucket keys, then counter keys.
-- ARGV: now, #buckets, then per bucket: rate, capacity, remaining;
--   per counter: limit, ttl_s, remaining

local now, nb = tonumber(ARGV[1]), tonumber(ARGV[2])

local a = 3
for i = 1, nb do
  local rate, cap, left = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local tokens, ts = read_bucket(KEYS[i], now, rate, cap)
  write_bucket(KEYS[i], now, rate, cap, math.min(tokens, left), ts)
  a = a + 3
end
for i = nb + 1, #KEYS do
  local limit, ttl, left = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
  local used = tonumber(redis.call('GET', KEYS[i])) or 0
  redis.call('SET', KEYS[i], fmt(math.max(used, limit - left)), 'EX', ttl)
  a = a + 3
end
return 1
