-- Give free batch slots to the best-ranked queued files, atomically (no two callers over-grant).
-- KEYS[1] holders zset (ingest id -> lease end, Redis time), KEYS[2] queue zset (ingest id -> rank),
-- KEYS[3] granted set (files granted whose task is not sent yet).
-- ARGV[1] slots, ARGV[2] lease seconds. Returns {granted ids, lapsed ids}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
-- A lease not renewed in time gives its slot back (its worker died, or stopped renewing).
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #lapsed > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local granted = {}
if free > 0 then
  local ids = redis.call('ZRANGE', KEYS[2], 0, free - 1)
  for _, id in ipairs(ids) do
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('SADD', KEYS[3], id)
    table.insert(granted, id)
  end
end
return {granted, lapsed}
