-- prelude.lua: helpers prepended to every breaker script (a script cannot include another).
--
-- A breaker is one hash. No hash at all means closed, fresh window, base cool-down.
--   state        'open' | 'half_open' (absent: closed)
--   opened_at    when it last opened (epoch s);  cooldown: how long it stays open
--   probe_until  when the probe in flight is presumed dead
--   fails        consecutive failures while closed
--   n:<slot>, f:<slot>  calls and failures in one slot of the ratio window

local function fmt(x)
  return string.format('%.17g', x)
end

-- The breaker's stored fields and its state as of `now`: an open breaker whose cool-down
-- has ended is half-open.
local function load(key, now)
  local s = redis.call('HMGET', key, 'state', 'opened_at', 'cooldown', 'probe_until', 'fails')
  local b = {
    state = s[1] or 'closed',
    opened_at = tonumber(s[2]) or 0,
    cooldown = tonumber(s[3]) or 0,
    probe_until = tonumber(s[4]) or 0,
    fails = tonumber(s[5]) or 0,
  }
  if b.state == 'open' and now >= b.opened_at + b.cooldown then
    b.state = 'half_open'
  end
  return b
end

-- Calls and failures in the window's live slots (newer than slot - nslots); with `prune`,
-- delete the slots that fell out.
local function window(key, slot, nslots, prune)
  local calls, failures = 0, 0
  local all = redis.call('HGETALL', key)
  for j = 1, #all, 2 do
    local kind, at = string.match(all[j], '^([nf]):(%-?%d+)$')
    if kind then
      if tonumber(at) <= slot - nslots then
        if prune then
          redis.call('HDEL', key, all[j])
        end
      elseif kind == 'n' then
        calls = calls + tonumber(all[j + 1])
      else
        failures = failures + tonumber(all[j + 1])
      end
    end
  end
  return calls, failures
end
