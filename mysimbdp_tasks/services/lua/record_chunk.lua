-- Store one chunk's outcome under its index (a redelivered chunk overwrites, never adds) and
-- tell how many chunks of the job have one.
-- KEYS: the job's chunk outcomes (hash), the job (hash)
-- ARGV: chunk index, outcome (JSON), lifetime (seconds), now (epoch seconds)
-- Returns {chunks with an outcome, chunks planned (-1 before planning)}.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'updated_at', ARGV[4])
local total = tonumber(redis.call('HGET', KEYS[2], 'chunks') or '-1')
return {redis.call('HLEN', KEYS[1]), total}
