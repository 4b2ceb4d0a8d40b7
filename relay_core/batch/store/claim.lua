-- claim.lua: the feeder takes the next lines of a running batch, paced and bounded.
--
-- A pacing bucket in the batch hash (pace_tok, pace_ts) refills at `rate` lines/s up to
-- `burst`. The lines in flight are bounded per provider: each provider named has a share of
-- the batch's window, and the lines it holds (`flying`, kept by assign.lua and record.lua)
-- count against its share only, so a provider that hangs holds its own share and no more.
-- With no provider named, at most `window` lines may be in flight in all. The lines taken are
-- the next ones by index (the cursor `next`), added to the in-flight set due back by `due`.
--
-- KEYS: meta, inflight, flying
-- ARGV: now, rate, burst, window, max_n, due, then pairs of provider name and share
-- Returns {first index, count, then each named provider's room} (count 0: nothing to do now);
-- a room below 0 is a provider holding more than its share (lines handed on to it).

local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window, max_n, due = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]

local f = redis.call('HMGET', KEYS[1], 'status', 'next', 'total', 'pace_tok', 'pace_ts')
if f[1] ~= 'in_progress' then
  return {0, 0}
end
local nxt, total = tonumber(f[2]) or 0, tonumber(f[3]) or 0
local tok, ts = tonumber(f[4]), tonumber(f[5])
if tok == nil or ts == nil then
  tok, ts = burst, now
end
tok = math.min(burst, tok + math.max(0, now - ts) * rate)
ts = math.max(ts, now)

local rooms = {}
local room = 0
if #ARGV > 6 then
  for i = 7, #ARGV, 2 do
    local held = tonumber(redis.call('HGET', KEYS[3], ARGV[i])) or 0
    local r = tonumber(ARGV[i + 1]) - held
    rooms[#rooms + 1] = r
    room = room + math.max(0, r)
  end
else
  room = window - redis.call('ZCARD', KEYS[2])
end
local n = math.min(math.floor(tok), room, total - nxt, max_n)
if n <= 0 then
  redis.call('HSET', KEYS[1], 'pace_tok', string.format('%.17g', tok), 'pace_ts', string.format('%.17g', ts))
  return {nxt, 0, unpack(rooms)}
end
for i = nxt, nxt + n - 1 do
  redis.call('ZADD', KEYS[2], due, i)
end
redis.call('HSET', KEYS[1], 'next', nxt + n, 'pace_tok', string.format('%.17g', tok - n),
  'pace_ts', string.format('%.17g', ts))
return {nxt, n, unpack(rooms)}
