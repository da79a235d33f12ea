-- Decide a whole poll of stream messages against the daily limit in one call, given as ranges of
-- offsets per partition, and remember each verdict by offset range, so that a replayed offset gets
-- the verdict it got the first time, whatever the day or the limit is now, and is not counted again.
--
-- ``hw`` remembers, per partition, the last offset decided. ``runs`` remembers, per partition, the
-- verdicts given as runs "start:verdict,start:verdict,..." (1 admitted, 0 refused): a run covers
-- its start up to the next run's start (the last one up to hw). A run begins only where the
-- verdict flips (the quota runs out; a new day or a top-up admits again), so a partition keeps a
-- few per day; past ``max_runs`` the oldest are dropped. An offset older than every run kept
-- (decided before runs were recorded, or dropped) is taken as admitted.
-- KEYS: the day's usage (hash), high-water marks (hash), verdict runs (hash)
-- ARGV: limit, usage expiry (epoch seconds), max runs per partition, then partition, first, last
-- triples: ranges of consecutive offsets, in offset order within a partition. Returns, per range,
-- its verdicts as a flat list of runs {start, verdict, start, verdict, ...} within the range.
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

-- The verdict of offset o from the runs kept (1 when older than all of them).
local function replayed(list, o)
  for i = #list, 1, -1 do
    if list[i][1] <= o then
      return list[i][2]
    end
  end
  return 1
end

-- Append a run to res unless it repeats the verdict of the run before it.
local function emit(res, start, verdict)
  if #res == 0 or res[#res] ~= verdict then
    res[#res + 1] = start
    res[#res + 1] = verdict
  end
end

-- The runs already decided within first..last (all <= the high-water mark).
local function replay(res, list, first, last)
  emit(res, first, replayed(list, first))
  for i = 1, #list do
    local s = list[i][1]
    if s > first and s <= last then
      emit(res, s, list[i][2])
    end
  end
end

-- Record a new verdict starting at o in the partition's runs when it flips.
local function remember(p, o, verdict)
  local list = lists[p]
  if #list == 0 or list[#list][2] ~= verdict then
    list[#list + 1] = {o, verdict}
    changed[p] = true
  end
end

for i = 4, #ARGV, 3 do
  local p, first, last = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if marks[p] == nil then
    marks[p] = tonumber(redis.call('HGET', hw, p) or '-1')
    lists[p] = load(p)
  end
  local res = {}
  if first <= marks[p] then
    replay(res, lists[p], first, math.min(last, marks[p]))
  end
  local fresh = math.max(first, marks[p] + 1)
  if fresh <= last then
    local room = math.max(0, limit - used - granted)
    local take = math.min(room, last - fresh + 1)
    if take > 0 then
      granted = granted + take
      emit(res, fresh, 1)
      remember(p, fresh, 1)
    end
    if fresh + take <= last then
      emit(res, fresh + take, 0)
      remember(p, fresh + take, 0)
    end
    marks[p] = last
    redis.call('HSET', hw, p, last)
  end
  out[#out + 1] = res
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
