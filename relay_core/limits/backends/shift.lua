-- shift.lua: a call went out late_s after the slot it had reserved. Each bucket owes late_s
-- of its refill (its level falls by late_s x rate, into debt if need be), so the slots after
-- the call move back by as much and the calls stay one refill apart as the provider sees them.
--
-- KEYS: bucket keys.
-- ARGV: now, late_s, then per bucket: rate, capacity

local now, late = tonumber(ARGV[1]), tonumber(ARGV[2])

local a = 3
for i = 1, #KEYS do
  local rate, cap = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local tokens, ts = read_bucket(KEYS[i], now, rate, cap)
  write_bucket(KEYS[i], now, rate, cap, tokens - late * rate, ts)
  a = a + 2
end
return 1
