-- record.lua: a call ended; count it under every breaker it went through.
-- Closed: count it in the window; a failure may open the breaker (consecutive failures, or
-- the window's failure ratio once it saw min_calls). Half-open: only the probe's result
-- counts: success closes (deletes the hash), failure opens again with the cool-down doubled.
-- Open: ignored (the call began before it opened).
--
-- KEYS: breaker hashes. ARGV: now, success (0/1), failures, ratio, window_s, min_calls,
--   cooldown_s, cooldown_max_s, ttl_s, nslots, count, then probe (0/1) per key.
-- `count` calls with the same result are recorded at once (a worker's tallied successes).

local now, success = tonumber(ARGV[1]), ARGV[2] == '1'
local max_fails, ratio = tonumber(ARGV[3]), tonumber(ARGV[4])
local window_s, min_calls = tonumber(ARGV[5]), tonumber(ARGV[6])
local cooldown, cooldown_max = tonumber(ARGV[7]), tonumber(ARGV[8])
local ttl, nslots, count = ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])

local function open(key, period)
  redis.call('DEL', key)
  redis.call('HSET', key, 'state', 'open', 'opened_at', fmt(now), 'cooldown', fmt(period))
  redis.call('EXPIRE', key, ttl)
end

local function record_closed(key, fails)
  local slot = math.floor(now / (window_s / nslots))
  window(key, slot, nslots, true)
  redis.call('HINCRBY', key, 'n:' .. slot, count)
  if not success then
    redis.call('HINCRBY', key, 'f:' .. slot, count)
  end
  fails = success and 0 or fails + count
  local calls, failures = window(key, slot, nslots, false)
  if not success and (fails >= max_fails or (calls >= min_calls and failures / calls >= ratio)) then
    open(key, cooldown)
  else
    redis.call('HSET', key, 'fails', fails)
    redis.call('EXPIRE', key, ttl)
  end
end

for i, key in ipairs(KEYS) do
  local probe = ARGV[11 + i] == '1'
  local b = load(key, now)
  if b.state == 'closed' then
    record_closed(key, b.fails)
  elseif probe and b.state == 'half_open' then
    if success then
      redis.call('DEL', key)
    else
      open(key, math.min(2 * b.cooldown, cooldown_max))
    end
  end
end
return 1
