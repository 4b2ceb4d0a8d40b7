-- prelude.lua: helpers prepended to every limits script (a script cannot include another).
-- Numbers cross into Redis as strings: '%.17g' keeps every bit of a double, and a Lua number
-- returned to Redis would be truncated to an integer.

local function fmt(x)
  return string.format('%.17g', x)
end

-- A bucket as of `now`: stored tokens plus refill, capped at capacity; a missing bucket is
-- full. Time never runs backwards for a bucket (a caller whose clock lags gets no refill).
local function read_bucket(key, now, rate, cap)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(state[1]), tonumber(state[2])
  if tokens == nil or ts == nil then
    return cap, now
  end
  return math.min(cap, tokens + math.max(0, now - ts) * rate), math.max(ts, now)
end

-- Store a bucket; it expires once it would be full again (and missing means full).
local function write_bucket(key, now, rate, cap, tokens, ts)
  redis.call('HSET', key, 'tokens', fmt(tokens), 'ts', fmt(ts))
  redis.call('EXPIRE', key, math.ceil(ts - now + (cap - tokens) / rate) + 1)
end

-- Give a key at least `ttl` more seconds to live, never fewer than it already has.
local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then
    redis.call('EXPIRE', key, ttl)
  end
end
