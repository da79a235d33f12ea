-- Decide a whole poll of stream messages against the daily limit in one call, and remember each
-- verdict by offset range, so that a replayed offset gets the verdict it got the first time,
-- whatever the day or the limit is now, and is not counted again.
--
-- ``hw`` remembers, per partition, the last offset decided. ``runs`` remembers, per partition, the
-- verdicts given as runs "start:verdict,start:verdict,..." (1 admitted, 0 refused): a run covers
-- its start up to the next run's start (the last one up to hw). A run begins only where the
-- verdict flips (the quota runs out; a new day or a top-up admits again), so a partition keeps a
-- few per day; past ``max_runs`` the oldest are dropped. An offset older than every run kept
-- (decided before runs were recorded, or dropped) is taken as admitted.
-- KEYS: the day's usage (hash), high-water marks (hash), verdict runs (hash)
-- ARGV: limit, usage expiry (epoch seconds), max runs per partition, then partition, offset pairs
-- in order. Returns one 1 (admitted) or 0 (refused) per message.
local usage, hw, runs = KEYS[1], KEYS[2], KEYS[3]
local limit, expire_at, max_runs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local used = tonumber(redis.call('HGET', usage, 'messages') or '0')
local granted = 0
local marks, lists, changed, out = {}, {}, {}, {}

local function load(p)
  local list = {}
  local raw = redis.call('HGET', runs, p)
  if raw then
    for s, v in string.gmatch(raw, '(%d+):(%d)') do
      list[#list + 1] = {tonumber(s), tonumber(v)}
    end
  end
  return list
end

local function replayed(list, o)
  for i = #list, 1, -1 do
    if list[i][1] <= o then
      return list[i][2]
    end
  end
  return 1
end

for i = 4, #ARGV, 2 do
  local p, o = ARGV[i], tonumber(ARGV[i + 1])
  if marks[p] == nil then
    marks[p] = tonumber(redis.call('HGET', hw, p) or '-1')
    lists[p] = load(p)
  end
  local list = lists[p]
  if o <= marks[p] then
    out[#out + 1] = replayed(list, o)
  else
    local verdict = 0
    if used + granted < limit then
      granted = granted + 1
      verdict = 1
    end
    out[#out + 1] = verdict
    if #list == 0 or list[#list][2] ~= verdict then
      list[#list + 1] = {o, verdict}
      changed[p] = true
    end
    marks[p] = o
    redis.call('HSET', hw, p, o)
  end
end

for p, _ in pairs(changed) do
  local list, parts = lists[p], {}
  for i = math.max(1, #list - max_runs + 1), #list do
    parts[#parts + 1] = string.format('%d:%d', list[i][1], list[i][2])
  end
  redis.call('HSET', runs, p, table.concat(parts, ','))
end
if granted > 0 then
  redis.call('HINCRBY', usage, 'messages', granted)
end
redis.call('EXPIREAT', usage, expire_at)
return out
