"""The estimator cache is bounded and loads a key once however many threads miss it;
alias lookups expire."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

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


def test_threads_missing_one_key_at_once_share_a_single_load() -> None:
    cache: LruCache[object] = LruCache(4)
    started, release = threading.Event(), threading.Event()
    loads: list[object] = []

    def slow_load() -> object:
        loads.append(value := object())
        started.set()
        assert release.wait(10)
        return value

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(cache.get_or_load, "forest", slow_load)
        assert started.wait(10)
        others = [pool.submit(cache.get_or_load, "forest", slow_load) for _ in range(3)]
        time.sleep(0.1)  # the others are waiting, not loading
        release.set()
        answers = [first.result(10)] + [f.result(10) for f in others]
    assert len(loads) == 1 and all(a is loads[0] for a in answers)


def test_a_failed_load_fails_its_waiters_and_is_tried_again_later() -> None:
    cache: LruCache[int] = LruCache(4)
    release = threading.Event()

    def failing() -> int:
        assert release.wait(10)
        raise OSError("artifact unreadable")

    with ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(cache.get_or_load, "m", failing) for _ in range(2)]
        time.sleep(0.1)
        release.set()
        for call in calls:
            with pytest.raises(OSError, match="unreadable"):
                call.result(10)
    assert cache.get_or_load("m", lambda: 7) == 7
