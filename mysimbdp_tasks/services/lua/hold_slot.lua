-- A task of a slotted file about to run, run by the file's tenant's pool: renew its file's lease,
-- or, if the slot was given back (its lease lapsed), ask for one again; the platform queues the
-- file again at its old place (batch/slots.py). Returns 1 if the task may run.
-- KEYS[1] the tenant's leases zset, KEYS[2] the tenant's wanted set, KEYS[3] the job's hash.
-- ARGV[1] ingest id, ARGV[2] lease seconds, ARGV[3] "1": renew only, ARGV[4] lifetime of the wanted set (s).
if redis.call('HEXISTS', KEYS[3], 'finalized') == 1 then
  return 1  -- nothing left to hold a slot for; the task finds the file done
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
-- Still a holder, even past its lease end: no grant has taken its place (grants purge first).
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
if ARGV[3] ~= '1' then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 0
