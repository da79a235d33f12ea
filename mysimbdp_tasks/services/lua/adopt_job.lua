-- Move one job of an older platform (keys named by ingest id) to its tenant's names (batch/legacy.py).
-- KEYS[1] old job hash, KEYS[2] old chunk outcomes, KEYS[3] new job hash, KEYS[4] new chunk outcomes,
-- KEYS[5] the tenant's open set, KEYS[6] the index of tenants with open jobs, KEYS[7] the old open set,
-- KEYS[8] slot holders zset, KEYS[9] running jobs hash, KEYS[10] the tenant's slot leases zset.
-- ARGV[1] ingest id, ARGV[2] tenant, ARGV[3] lifetime (s).
-- A field already under the new name wins: it was written by a task since the upgrade.
for pair = 0, 1 do
  local old, new = KEYS[1 + pair], KEYS[3 + pair]
  local fields = redis.call('HGETALL', old)
  for i = 1, #fields, 2 do
    redis.call('HSETNX', new, fields[i], fields[i + 1])
  end
  if #fields > 0 then
    redis.call('EXPIRE', new, ARGV[3])
  end
  redis.call('DEL', old)
end
if redis.call('HEXISTS', KEYS[3], 'finalized') == 0 then
  redis.call('SADD', KEYS[5], ARGV[1])
  redis.call('SADD', KEYS[6], ARGV[2])
end
redis.call('SREM', KEYS[7], ARGV[1])
-- A file holding a batch slot: its lease goes to its tenant's key, where its pool renews it.
local ends = redis.call('ZSCORE', KEYS[8], ARGV[1])
local job = redis.call('HGET', KEYS[3], 'job')
if ends and job and redis.call('HEXISTS', KEYS[9], ARGV[1]) == 0 then
  redis.call('HSET', KEYS[9], ARGV[1], job)
  redis.call('ZADD', KEYS[10], ends, ARGV[1])
end
return 1
