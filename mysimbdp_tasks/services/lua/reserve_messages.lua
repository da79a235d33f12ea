-- Decide a whole poll of stream messages against the daily limit in one call. ``hw`` remembers,
-- per partition, the last offset already decided, and ``exhausted`` the first offset refused
-- because the day's quota ran out. A batch replayed after a bridge crash is then decided exactly
-- as before and counted once: within one day the counter only grows, so per partition the
-- admitted offsets are a prefix.
-- KEYS: the day's usage (hash), high-water marks (hash), exhausted marks of the day (hash)
-- ARGV: limit, usage expiry (epoch seconds), then partition, offset pairs in order
-- Returns one 1 (admitted) or 0 (refused) per message.
local usage, hw, exhausted = KEYS[1], KEYS[2], KEYS[3]
local limit, expire_at = tonumber(ARGV[1]), tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', usage, 'messages') or '0')
local granted = 0
local marks, stops, out = {}, {}, {}
for i = 3, #ARGV, 2 do
  local p, o = ARGV[i], tonumber(ARGV[i + 1])
  if marks[p] == nil then
    marks[p] = tonumber(redis.call('HGET', hw, p) or '-1')
    stops[p] = tonumber(redis.call('HGET', exhausted, p) or '-1')
  end
  if o <= marks[p] then
    out[#out + 1] = (stops[p] < 0 or o < stops[p]) and 1 or 0
  else
    if used + granted < limit then
      granted = granted + 1
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
      if stops[p] < 0 then
        stops[p] = o
        redis.call('HSET', exhausted, p, o)
      end
    end
    marks[p] = o
    redis.call('HSET', hw, p, o)
  end
end
if granted > 0 then
  redis.call('HINCRBY', usage, 'messages', granted)
end
redis.call('EXPIREAT', usage, expire_at)
redis.call('EXPIREAT', exhausted, expire_at)
return out
