"""Request rate limits per client (A_WEB_DOS), with bounded memory. No I/O.

Each client address has a token bucket; a request without a token is answered
429 at once, before any work is done. Live-update streams (SSE) hold a
connection each, so they are capped per client and in total. The table of
clients is an LRU of fixed size: a flood from many addresses evicts old
buckets instead of growing the portal.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    rate_per_s: float = 20.0  # sustained requests per client
    burst: float = 60.0  # a page load fetches a handful of files at once
    max_clients: int = 4096
    streams_per_client: int = 4
    streams_total: int = 32


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)
    _streams: dict[str, int] = field(default_factory=dict)
    allowed: int = 0
    limited: int = 0

    def allow(self, client: str) -> bool:
        """Take one token for ``client``; False means answer 429."""
        now = self.clock()
        lim = self.limits
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = _Bucket(lim.burst, now)
            self._buckets[client] = bucket
            if len(self._buckets) > lim.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            bucket.tokens = min(lim.burst, bucket.tokens + (now - bucket.at) * lim.rate_per_s)
            bucket.at = now
        if bucket.tokens < 1.0:
            self.limited += 1
            return False
        bucket.tokens -= 1.0
        self.allowed += 1
        return True

    @property
    def streams(self) -> int:
        return sum(self._streams.values())

    def open_stream(self, client: str) -> bool:
        if (
            self._streams.get(client, 0) >= self.limits.streams_per_client
            or self.streams >= self.limits.streams_total
        ):
            self.limited += 1
            return False
        self._streams[client] = self._streams.get(client, 0) + 1
        return True

    def close_stream(self, client: str) -> None:
        n = self._streams.get(client, 0) - 1
        if n > 0:
            self._streams[client] = n
        else:
            self._streams.pop(client, None)
