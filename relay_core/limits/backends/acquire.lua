-- acquire.lua: check every limit of a plan; when all allow the request, take from all of them
-- (all or nothing). With take = 0 it is `peek`: the same check, and no writes at all.
--
-- Reservation: when only token buckets refuse, and each would pass within reserve_s, the
-- request takes its tokens now anyway (the buckets go into debt) and is granted with wait_s =
-- the delay before it may start. The next caller's wait then counts that debt, so callers are
-- spaced exactly one refill apart however late each of them wakes: no slot is lost to a
-- caller's lateness. Pauses, daily counters and concurrency caps are never reserved.
--
-- KEYS: pause keys, bucket keys, counter keys, concurrency keys, in that order.
-- ARGV: now, cost_tokens, lease_id, take (0/1), poll_s, reserve_s, #pauses, #buckets, #counters
--   (the concurrency keys are the rest), then
--   per bucket:      rate, capacity, reason, counts_tokens (0/1)
--   per counter:     limit, reset_at, ttl_s, reason, counts_tokens (0/1)
--   per concurrency: limit, lease_ttl_s
-- Returns {granted (0/1), wait_s, reason ('' when granted), level per bucket/counter/cap...}.

local now, cost, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local take, poll, reserve = ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6])
local np, nb, nc = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local nk = #KEYS - np - nb - nc
local B, C, K = np, np + nb, np + nb + nc -- key offsets of each group

local wait, reason, levels, hard = 0, '', {}, false
local function refuse(w, r, bucket)
  if w > wait then
    wait, reason = w, r
  end
  hard = hard or not bucket
end

-- Check (no writes) -------------------------------------------------------------------------
for i = 1, np do
  local untilv = tonumber(redis.call('GET', KEYS[i]))
  if untilv and untilv > now then
    refuse(untilv - now, 'paused')
  end
end

local a = 10
local btok, bts, bamt = {}, {}, {}
for i = 1, nb do
  local rate, cap = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  bamt[i] = ARGV[a + 3] == '1' and cost or 1
  btok[i], bts[i] = read_bucket(KEYS[B + i], now, rate, cap)
  local need = math.min(bamt[i], cap)
  if btok[i] < need then
    refuse((need - btok[i]) / rate, ARGV[a + 2], true)
  end
  levels[#levels + 1] = fmt(btok[i])
  a = a + 4
end

local cused, camt = {}, {}
for i = 1, nc do
  local limit, reset_at = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  camt[i] = ARGV[a + 4] == '1' and cost or 1
  cused[i] = tonumber(redis.call('GET', KEYS[C + i])) or 0
  if cused[i] + math.min(camt[i], limit) > limit then
    refuse(math.max(reset_at - now, poll), ARGV[a + 3])
  end
  levels[#levels + 1] = fmt(limit - cused[i])
  a = a + 5
end

for i = 1, nk do
  local key, limit = KEYS[K + i], tonumber(ARGV[a])
  local live = redis.call('ZCOUNT', key, '(' .. fmt(now), '+inf')
  local mine = tonumber(redis.call('ZSCORE', key, lease))
  if not (mine and mine > now) and live >= limit then
    local first = redis.call('ZRANGEBYSCORE', key, '(' .. fmt(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    refuse(math.min(poll, tonumber(first[2]) - now), 'concurrency')
  end
  levels[#levels + 1] = fmt(limit - live)
  a = a + 2
end

local granted = not hard and wait <= reserve
if granted and take then
  -- Take -------------------------------------------------------------------------------------
  a = 10
  for i = 1, nb do
    local rate, cap = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    write_bucket(KEYS[B + i], now, rate, cap, btok[i] - bamt[i], bts[i])
    a = a + 4
  end
  for i = 1, nc do
    redis.call('SET', KEYS[C + i], fmt(cused[i] + camt[i]), 'EX', ARGV[a + 2])
    a = a + 5
  end
  for i = 1, nk do
    local ttl = tonumber(ARGV[a + 1])
    redis.call('ZREMRANGEBYSCORE', KEYS[K + i], '-inf', fmt(now))
    redis.call('ZADD', KEYS[K + i], fmt(now + ttl), lease)
    extend(KEYS[K + i], math.ceil(ttl) + 1)
    a = a + 2
  end
end

return {granted and 1 or 0, fmt(wait), reason, unpack(levels)}
