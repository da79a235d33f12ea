-- Give free batch slots to the best-ranked queued files, atomically (no two callers over-grant).
-- KEYS[1] holders zset (ingest id -> lease end, Redis time), KEYS[2] queue zset (ingest id -> rank),
-- KEYS[3] granted set (files granted whose task is not sent yet), KEYS[4] queued jobs hash,
-- KEYS[5] running jobs hash (holders' jobs), KEYS[6] lapsed jobs hash.
-- ARGV[1] slots, ARGV[2] lease seconds, ARGV[3] prefix of the tenants' lease keys (+ tenant: zset
-- ingest id -> lease end, renewed by the tenant's pool, which may write nothing else of the slots).
-- Returns {granted ids, lapsed ids}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease_s = tonumber(ARGV[2])
local lapsed = {}
local holders = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #holders, 2 do
  local id, ends = holders[i], tonumber(holders[i + 1])
  local job = redis.call('HGET', KEYS[5], id)
  if job then
    local leases = ARGV[3] .. cjson.decode(job)['tenant']
    local lease = redis.call('ZSCORE', leases, id)
    if not lease then
      -- Given back by its pool (the file is finalized): free now.
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[5], id)
    elseif tonumber(lease) <= now then
      -- Not renewed in time (its worker died, or stopped renewing): free, and remembered, so the
      -- file is queued again at its old place once its tasks come back asking for a slot.
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', leases, id)
      redis.call('HDEL', KEYS[5], id)
      redis.call('HSET', KEYS[6], id, job)
      table.insert(lapsed, id)
    elseif tonumber(lease) ~= ends then
      redis.call('ZADD', KEYS[1], lease, id)  -- the holders show the renewed lease end
    end
  elseif ends <= now then
    -- A holder without a job of its own (granted before leases were the tenants'): its score is its lease.
    redis.call('ZREM', KEYS[1], id)
    table.insert(lapsed, id)
  end
end
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local granted = {}
if free > 0 then
  local ids = redis.call('ZRANGE', KEYS[2], 0, free - 1)
  for _, id in ipairs(ids) do
    redis.call('ZADD', KEYS[1], now + lease_s, id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('SADD', KEYS[3], id)
    local job = redis.call('HGET', KEYS[4], id)
    if job then
      redis.call('HSET', KEYS[5], id, job)
      redis.call('ZADD', ARGV[3] .. cjson.decode(job)['tenant'], now + lease_s, id)
    end
    table.insert(granted, id)
  end
end
return {granted, lapsed}
