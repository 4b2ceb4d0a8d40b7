-- state.lua: how every breaker stands, for routing and status screens. Reads only.
--
-- KEYS: breaker hashes. ARGV: now, window_s, nslots, cooldown_s (the base cool-down)
-- Returns per key: state, retry_in_s, consecutive failures, calls, failures, cooldown_s

local now, window_s = tonumber(ARGV[1]), tonumber(ARGV[2])
local nslots, base = tonumber(ARGV[3]), tonumber(ARGV[4])
local slot = math.floor(now / (window_s / nslots))

local out = {}
for _, key in ipairs(KEYS) do
  local b = load(key, now)
  local retry, cooldown = 0, b.cooldown
  if b.state == 'open' then
    retry = b.opened_at + b.cooldown - now
  elseif b.state == 'half_open' and b.probe_until > now then
    retry = b.probe_until - now
  elseif b.state == 'closed' then
    cooldown = base
  end
  local calls, failures = window(key, slot, nslots, false)
  for _, v in ipairs({b.state, fmt(retry), b.fails, calls, failures, fmt(cooldown)}) do
    out[#out + 1] = v
  end
end
return out
