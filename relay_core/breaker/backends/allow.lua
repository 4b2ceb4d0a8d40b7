-- allow.lua: may a call go ahead under every one of these breakers? All or nothing:
-- refused if any is open, or half-open with its probe in flight; else each half-open one
-- gets a probe lease, so exactly one caller probes it.
--
-- KEYS: breaker hashes. ARGV: now, probe_ttl_s, ttl_s
-- Returns {allowed (0/1), state, retry_in_s, probe (0/1) per key}

local now, probe_ttl, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]

local wait, worst, probes = 0, '', {}
for i, key in ipairs(KEYS) do
  local b = load(key, now)
  local w = 0
  probes[i] = 0
  if b.state == 'open' then
    w = b.opened_at + b.cooldown - now
  elseif b.state == 'half_open' then
    if b.probe_until > now then
      w = b.probe_until - now
    else
      probes[i] = 1
    end
  end
  if w > wait then
    wait, worst = w, b.state
  end
end
if worst ~= '' then
  return {0, worst, fmt(wait)}
end

local state = 'closed'
for i, key in ipairs(KEYS) do
  if probes[i] == 1 then
    redis.call('HSET', key, 'state', 'half_open', 'probe_until', fmt(now + probe_ttl))
    redis.call('EXPIRE', key, ttl)
    state = 'half_open'
  end
end
return {1, state, '0', unpack(probes)}
