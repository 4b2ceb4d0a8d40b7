-- orphans.lua: take the lines a dead worker held that are still in flight (not recorded
-- since) and give them a new due time, counting them in the batch hash (`resent_worker_died`).
-- Only the live worker that took the dead one's hold record calls it (holds.claim_orphaned).
--
-- KEYS: inflight, meta
-- ARGV: due, then the line indices
-- Returns the indices taken.

local taken = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
    taken[#taken + 1] = ARGV[i]
  end
end
if #taken > 0 then
  redis.call('HINCRBY', KEYS[2], 'resent_worker_died', #taken)
end
return taken
