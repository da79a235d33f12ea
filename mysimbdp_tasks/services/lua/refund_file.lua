-- Give back one file and its bytes, at most once per ingestion: the marker makes it idempotent.
-- KEYS: the day's usage (hash), the refund marker of the ingestion
-- ARGV: bytes of the file, lifetime of the marker (seconds)
-- Returns 1 if refunded now, 0 if already refunded or the day's usage has expired.
local usage, marker = KEYS[1], KEYS[2]
if redis.call('SET', marker, '1', 'NX', 'EX', tonumber(ARGV[2])) == false then
  return 0
end
if redis.call('EXISTS', usage) == 0 then
  return 0
end
local files = tonumber(redis.call('HGET', usage, 'files') or '0')
local bytes = tonumber(redis.call('HGET', usage, 'bytes') or '0')
redis.call('HSET', usage, 'files', math.max(files - 1, 0), 'bytes', math.max(bytes - tonumber(ARGV[1]), 0))
return 1
