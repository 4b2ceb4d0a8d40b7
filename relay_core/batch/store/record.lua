-- record.lua: record one line's outcome, once per custom_id, whatever the redeliveries.
--
-- The first record of a custom_id wins (HSETNX); later ones change nothing. Counters, usage
-- and per-provider counts move only with a new record. Nothing is recorded once the batch
-- left in_progress / cancelling (it is being finalized, or is final).
--
-- The line leaves the in-flight set, and its provider's share of the window (assign.lua).
--
-- KEYS: meta, results, inflight, providers, assigned, flying
-- ARGV: custom_id, index, value, ok (1/0), input_tokens, output_tokens, provider ('' if none),
--   upstream_s (the provider call's duration; 0 if none), kept as moving averages
--   (`upstream_s` in the hash, and `upstream_s:{provider}` per provider) that size the
--   feeder's window and each provider's share of it.
-- Returns {outcome, finished}: outcome 1 recorded, 0 already recorded, -1 too late;
-- finished 1 when every line of the batch now has a result.

local meta = KEYS[1]
local status = redis.call('HGET', meta, 'status')
if status ~= 'in_progress' and status ~= 'cancelling' then
  return {-1, 0}
end
redis.call('ZREM', KEYS[3], ARGV[2])
local holder = redis.call('HGET', KEYS[5], ARGV[2])
if holder then
  redis.call('HDEL', KEYS[5], ARGV[2])
  redis.call('HINCRBY', KEYS[6], holder, -1)
end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then
  return {0, 0}
end
local ok = ARGV[4] == '1'
redis.call('HINCRBY', meta, ok and 'completed' or 'failed', 1)
local tin, tout = tonumber(ARGV[5]), tonumber(ARGV[6])
if tin > 0 then
  redis.call('HINCRBY', meta, 'input_tokens', tin)
end
if tout > 0 then
  redis.call('HINCRBY', meta, 'output_tokens', tout)
end
local up = tonumber(ARGV[8]) or 0
local function ewma(name)
  local avg = tonumber(redis.call('HGET', meta, name))
  avg = avg and (avg * 0.9 + up * 0.1) or up
  redis.call('HSET', meta, name, string.format('%.6g', avg))
end
if up > 0 then
  ewma('upstream_s')
  if ARGV[7] ~= '' then
    ewma('upstream_s:' .. ARGV[7])  -- the provider's own, for its share of the window
  end
end
if ARGV[7] ~= '' then
  redis.call('HINCRBY', KEYS[4], ARGV[7] .. (ok and ':ok' or ':err'), 1)
end
local f = redis.call('HMGET', meta, 'completed', 'failed', 'total')
local done = (tonumber(f[1]) or 0) + (tonumber(f[2]) or 0) >= (tonumber(f[3]) or 0)
return {1, done and 1 or 0}
