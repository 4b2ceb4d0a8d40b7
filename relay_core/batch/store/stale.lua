-- stale.lua: the sweeper takes in-flight lines whose sign of life is overdue (their task
-- vanished with a worker that stalled, or never left a dead feeder) and gives them a new due
-- time, counting them in the batch hash (`resent_overdue`). Atomic, so two sweepers never
-- both re-send a line.
--
-- KEYS: inflight, meta
-- ARGV: now, due, max_n
-- Returns the indices taken.

local found = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(found) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
if #found > 0 then
  redis.call('HINCRBY', KEYS[2], 'resent_overdue', #found)
end
return found
