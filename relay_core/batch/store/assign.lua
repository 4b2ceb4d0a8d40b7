-- assign.lua: note which provider each line sent holds (its first candidate), for the
-- per-provider shares of the window (claim.lua). A line re-sent to another provider moves
-- from the old one's count to the new one's; a line no longer in flight (recorded meanwhile)
-- is left out.
--
-- KEYS: inflight, assigned, flying
-- ARGV: pairs of line index and provider name

for i = 1, #ARGV, 2 do
  local index, provider = ARGV[i], ARGV[i + 1]
  if redis.call('ZSCORE', KEYS[1], index) then
    local old = redis.call('HGET', KEYS[2], index)
    if old then
      redis.call('HINCRBY', KEYS[3], old, -1)
    end
    redis.call('HSET', KEYS[2], index, provider)
    redis.call('HINCRBY', KEYS[3], provider, 1)
  end
end
return 0
