"""Per-tenant daily quotas as atomic Redis scripts.

Every check-and-increment runs inside one Lua script, so concurrent watchers, bridges and processes
never overshoot a limit: Redis runs a script to its end before anything else. Counters live in one
hash per tenant per UTC day (``mysimbdp:usage:<tenant>:<YYYY-MM-DD>``: files, bytes, messages) that
expires a day after its own day ends, so yesterday's numbers stay readable for a while.

Accounting of admitted files that turn out to be unusable: a file that lands **no row at all**
(unparseable, or every row refused) is refunded once, because the tenant got no service for it; a
file that lands some rows counts in full (its bytes were read, parsed and partly stored).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import redis

from ..core.tenants import Tenant
from .registry import ACTIVE, CONFIGS

GRACE_SECONDS = 24 * 3600  # usage of a day stays readable this long after the day ends

_ADMIT_FILE = """
local active, configs, usage = KEYS[1], KEYS[2], KEYS[3]
local tenant, ext, allowed = ARGV[1], ARGV[2], ARGV[3]
local size, max_size = tonumber(ARGV[4]), tonumber(ARGV[5])
local max_files, max_bytes, expire_at = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('SISMEMBER', active, tenant) == 0 then
  if redis.call('HEXISTS', configs, tenant) == 1 then
    return {0, 'tenant_inactive', '', ''}
  end
  return {0, 'unknown_tenant', '', ''}
end
if max_files < 0 then
  return {0, 'batch_not_enabled', '', ''}
end
if string.find(',' .. allowed .. ',', ',' .. ext .. ',', 1, true) == nil then
  return {0, 'wrong_file_type', allowed, ext}
end
if size > max_size then
  return {0, 'file_too_large', tostring(max_size), tostring(size)}
end
local files = tonumber(redis.call('HGET', usage, 'files') or '0')
if files + 1 > max_files then
  return {0, 'daily_files_exceeded', tostring(max_files), tostring(files)}
end
local bytes = tonumber(redis.call('HGET', usage, 'bytes') or '0')
if bytes + size > max_bytes then
  return {0, 'daily_bytes_exceeded', tostring(max_bytes), tostring(bytes)}
end
files = redis.call('HINCRBY', usage, 'files', 1)
bytes = redis.call('HINCRBY', usage, 'bytes', size)
redis.call('EXPIREAT', usage, expire_at)
return {1, 'admitted', '', tostring(files) .. ',' .. tostring(bytes)}
"""

_REFUND_FILE = """
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
"""


# Messages: decide a whole poll of messages in one call. ``hw`` remembers, per partition, the last
# offset already decided, and ``exhausted`` the first offset refused because the day's quota ran
# out. A batch replayed after a bridge crash is then decided exactly as before and counted once:
# within one day the counter only grows, so per partition the admitted offsets are a prefix.
_RESERVE_MESSAGES = """
local usage, hw, exhausted = KEYS[1], KEYS[2], KEYS[3]
local limit, expire_at = tonumber(ARGV[1]), tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', usage, 'messages') or '0')
local granted = 0
local marks, stops, out = {}, {}, {}
for i = 3, #ARGV, 2 do
  local p, o = ARGV[i], tonumber(ARGV[i + 1])
  if marks[p] == nil then
    marks[p] = tonumber(redis.call('HGET', hw, p) or '-1')
    stops[p] = tonumber(redis.call('HGET', exhausted, p) or '-1')
  end
  if o <= marks[p] then
    out[#out + 1] = (stops[p] < 0 or o < stops[p]) and 1 or 0
  else
    if used + granted < limit then
      granted = granted + 1
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
      if stops[p] < 0 then
        stops[p] = o
        redis.call('HSET', exhausted, p, o)
      end
    end
    marks[p] = o
    redis.call('HSET', hw, p, o)
  end
end
if granted > 0 then
  redis.call('HINCRBY', usage, 'messages', granted)
end
redis.call('EXPIREAT', usage, expire_at)
redis.call('EXPIREAT', exhausted, expire_at)
return out
"""


@dataclass(frozen=True)
class Admission:
    admitted: bool
    reason: str  # "admitted" or a refusal reason such as "daily_files_exceeded"
    limit: str = ""
    usage: str = ""
    day: str = ""


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def usage_key(tenant: str, day: str) -> str:
    return f"mysimbdp:usage:{tenant}:{day}"


def _expire_at(day: str) -> int:
    end = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1), dt.time(), dt.UTC)
    return int(end.timestamp()) + GRACE_SECONDS


class Quotas:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._admit = client.register_script(_ADMIT_FILE)
        self._refund = client.register_script(_REFUND_FILE)
        self._reserve = client.register_script(_RESERVE_MESSAGES)

    def admit_file(self, tenant_name: str, tenant: Tenant | None, file_name: str, size: int,
                   day: str | None = None) -> Admission:
        """Check type, size, files and bytes for today and reserve them, all in one atomic step."""
        day = day or today()
        ext = Path(file_name).suffix.lower()
        if tenant is not None and tenant.batch is not None:
            b = tenant.batch
            allowed, max_size, max_files, max_bytes = (",".join(b.file_types), b.max_file_size_bytes,
                                                       b.max_files_per_day, b.max_bytes_per_day)
        else:  # unknown to this process, or stream-only: the script tells which
            allowed, max_size, max_files, max_bytes = "", 0, -1, 0
        ok, reason, limit, usage = self._admit(
            keys=[ACTIVE, CONFIGS, usage_key(tenant_name, day)],
            args=[tenant_name, ext, allowed, size, max_size, max_files, max_bytes, _expire_at(day)],
        )
        return Admission(bool(ok), _s(reason), _s(limit), _s(usage), day)

    def refund_file(self, tenant_name: str, ingest_id: str, size: int, day: str) -> bool:
        """Give back one file and its bytes, at most once per ingestion (the marker makes it idempotent)."""
        return bool(self._refund(keys=[usage_key(tenant_name, day), f"mysimbdp:refund:{ingest_id}"],
                                 args=[size, GRACE_SECONDS + 86400]))

    def reserve_messages(self, tenant_name: str, limit: int, positions: list[tuple[int, int]],
                         day: str | None = None) -> list[bool]:
        """Admit messages (given by Kafka partition and offset, in order) against the daily limit.

        Returns one decision per message. Admission is partial when the quota runs out in the
        middle of the batch; a replayed message gets the decision it had and is not counted again.
        """
        if not positions:
            return []
        day = day or today()
        args: list[int | str] = [limit, _expire_at(day)]
        for partition, offset in positions:
            args += [partition, offset]
        keys = [usage_key(tenant_name, day), f"mysimbdp:stream:hw:{tenant_name}",
                f"mysimbdp:stream:exhausted:{tenant_name}:{day}"]
        return [bool(x) for x in self._reserve(keys=keys, args=args)]

    def usage(self, tenant_name: str, day: str | None = None) -> dict[str, int]:
        raw = self.redis.hgetall(usage_key(tenant_name, day or today()))
        found = {_s(k): int(v) for k, v in raw.items()}
        return {"files": found.get("files", 0), "bytes": found.get("bytes", 0), "messages": found.get("messages", 0)}


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
