-- Drop a tenant from the index of tenants with open jobs, only if its open set is still empty (a
-- job opened since the sweeper looked keeps it there: opening adds both in one transaction).
-- KEYS[1] the tenant's open jobs (set), KEYS[2] the index (set). ARGV[1] the tenant.
if redis.call('SCARD', KEYS[1]) == 0 then
  return redis.call('SREM', KEYS[2], ARGV[1])
end
return 0
