"""Buckets in Redis (`OPENRESPONSES_REDIS_URL`): replicas share them, on Redis's clock.

A take is one Lua script, which Redis runs atomically; each bucket expires once full, so
nothing is left behind.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from openresponses.ratelimit.base import WINDOW, Draw, Taken

# KEYS: the buckets; ARGV: the window, then each bucket's need and cost (µs). Returns
# whether the draws fitted, then each bucket's `tat - now`. Numbers are Lua doubles, exact
# for integers below 2^53 (a timestamp in µs is about 2^51); %d keeps them whole as text.
_TAKE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = tonumber(ARGV[1])
local tats = {}
local fitted = 1
for i, key in ipairs(KEYS) do
  tats[i] = math.max(tonumber(redis.call('GET', key) or '0'), now)
  if tats[i] + tonumber(ARGV[2 * i]) - now > window then fitted = 0 end
end
local result = {fitted}
for i, key in ipairs(KEYS) do
  local cost = tonumber(ARGV[2 * i + 1])
  if fitted == 1 and cost > 0 then
    tats[i] = tats[i] + cost
    local ttl = math.ceil((tats[i] - now) / 1000) + 1
    redis.call('SET', key, string.format('%d', tats[i]), 'PX', string.format('%d', ttl))
  end
  result[i + 1] = tats[i] - now
end
return result
"""


class RedisCounters:
    def __init__(self, url: str, prefix: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._prefix = prefix
        self._take = self._client.register_script(_TAKE)

    async def take(self, draws: Sequence[Draw]) -> Taken:
        keys = [f"{self._prefix}rate:{draw.name}" for draw in draws]
        args = [WINDOW, *(n for draw in draws for n in (draw.need, draw.cost))]
        fitted, *ahead = await self._take(keys=keys, args=args)
        return Taken(fitted == 1, tuple(int(value) for value in ahead))

    async def close(self) -> None:
        await self._client.aclose()
