"""The estimator cache is bounded; alias lookups expire."""

import time

from server.inference.cache import LruCache, TtlCache, stats


def test_lru_keeps_at_most_capacity_and_evicts_the_least_recent() -> None:
    cache: LruCache[int] = LruCache(2)
    loads: list[str] = []

    def loader(key: str) -> int:
        loads.append(key)
        return len(loads)

    for key in ("a", "b", "a", "c", "b"):
        cache.get_or_load(key, lambda k=key: loader(k))
    assert loads == ["a", "b", "c", "b"]  # "b" was evicted by "c", "a" was kept (recent)
    assert stats(cache) == {"size": 2, "capacity": 2, "hits": 1, "misses": 4, "evictions": 2}


def test_ttl_cache_reloads_after_expiry() -> None:
    cache: TtlCache[float] = TtlCache(ttl=0.05)
    first = cache.get_or_load("k", time.monotonic)
    assert cache.get_or_load("k", time.monotonic) == first
    time.sleep(0.06)
    assert cache.get_or_load("k", time.monotonic) != first
