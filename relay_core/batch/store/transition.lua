-- transition.lua: move a batch from one of the given statuses to another, or do nothing.
--
-- KEYS: meta
-- ARGV: to, from (comma-separated statuses), then field/value pairs to set with the move
-- Returns 1 when the batch moved, 0 when its status was not one of `from`.

local status = redis.call('HGET', KEYS[1], 'status')
if status == false then
  return 0
end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do
  if s == status then
    allowed = true
  end
end
if not allowed then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
