-- pause.lua: an upstream said "retry after": refuse everything under this key until then.
-- A pause only ever grows (a shorter retry-after does not cut a longer one short).
--
-- KEYS[1]: the pause key. ARGV: until, now (epoch seconds).

local untilv, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1])) or 0
if untilv > now and untilv > current then
  redis.call('SET', KEYS[1], fmt(untilv), 'EX', math.ceil(untilv - now) + 1)
  return 1
end
return 0
