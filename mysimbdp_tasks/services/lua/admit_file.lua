-- Admit one staged file: tenant active, batch enabled, type, size, files and bytes of the day,
-- checked and reserved in one step so concurrent watchers never overshoot a limit.
-- Idempotent per ingest id: the verdict is stored with the reservation, and admitting the same
-- ingest id again (a watcher recovering a claim after a crash) returns that verdict and charges
-- nothing.
-- KEYS: active tenants (set), applied configs (hash), the day's usage (hash), the verdict (hash)
-- ARGV: tenant, extension, allowed extensions (comma-separated), size, max size,
--       max files per day (-1: batch not enabled), max bytes per day, usage expiry (epoch seconds),
--       day, lifetime of the verdict (seconds)
-- Returns {admitted 0/1, reason, limit, usage, day}.
local active, configs, usage, verdict = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tenant, ext, allowed = ARGV[1], ARGV[2], ARGV[3]
local size, max_size = tonumber(ARGV[4]), tonumber(ARGV[5])
local max_files, max_bytes, expire_at = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local day, keep = ARGV[9], tonumber(ARGV[10])

local seen = redis.call('HMGET', verdict, 'ok', 'reason', 'limit', 'usage', 'day')
if seen[1] then
  return {tonumber(seen[1]), seen[2], seen[3], seen[4], seen[5]}
end

local function decide(ok, reason, limit, used)
  redis.call('HSET', verdict, 'ok', ok, 'reason', reason, 'limit', limit, 'usage', used, 'day', day)
  redis.call('EXPIRE', verdict, keep)
  return {ok, reason, limit, used, day}
end

if redis.call('SISMEMBER', active, tenant) == 0 then
  if redis.call('HEXISTS', configs, tenant) == 1 then
    return decide(0, 'tenant_inactive', '', '')
  end
  return decide(0, 'unknown_tenant', '', '')
end
if max_files < 0 then
  return decide(0, 'batch_not_enabled', '', '')
end
if string.find(',' .. allowed .. ',', ',' .. ext .. ',', 1, true) == nil then
  return decide(0, 'wrong_file_type', allowed, ext)
end
if size > max_size then
  return decide(0, 'file_too_large', tostring(max_size), tostring(size))
end
local files = tonumber(redis.call('HGET', usage, 'files') or '0')
if files + 1 > max_files then
  return decide(0, 'daily_files_exceeded', tostring(max_files), tostring(files))
end
local bytes = tonumber(redis.call('HGET', usage, 'bytes') or '0')
if bytes + size > max_bytes then
  return decide(0, 'daily_bytes_exceeded', tostring(max_bytes), tostring(bytes))
end
files = redis.call('HINCRBY', usage, 'files', 1)
bytes = redis.call('HINCRBY', usage, 'bytes', size)
redis.call('EXPIREAT', usage, expire_at)
return decide(1, 'admitted', '', tostring(files) .. ',' .. tostring(bytes))
