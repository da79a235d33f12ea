-- A task of a slotted file about to run: renew its file's slot, or queue the file again if the slot
-- was given back (its lease lapsed), so it waits its turn. Returns 1 if the task may run.
-- KEYS[1] holders zset, KEYS[2] queue zset, KEYS[3] queued jobs hash, KEYS[4] the job's hash.
-- ARGV[1] ingest id, ARGV[2] lease seconds, ARGV[3] rank, ARGV[4] job JSON, ARGV[5] "1": renew only.
if redis.call('HEXISTS', KEYS[4], 'finalized') == 1 then
  return 1  -- nothing left to hold a slot for; the task finds the file done
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
-- Still a holder, even past its lease end: no grant has taken its place (grants purge first).
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
if ARGV[5] ~= '1' and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
end
return 0
