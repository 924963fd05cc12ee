"""A bounded, per-worker cache of decrypted estimators and resolved aliases.

Estimators are keyed by (model, version, sha256) and evicted least recently
used beyond `capacity`, so one worker never holds every model. Alias and
version lookups are kept for `ttl` seconds only: when a publisher moves an
alias, every worker serves the new version within that time, no restart.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class LruCache(Generic[V]):
    """Least-recently-used mapping with a fixed capacity; thread-safe.

    A key is loaded once however many threads miss it at the same moment: the
    first loads, the others wait for its result (or its error). Loading a large
    forest once per request thread would cost its CPU and its memory four times
    over on a cold worker under load.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._loading: dict[Hashable, Future[V]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            loading = self._loading.get(key)
            if loading is None:
                loading = self._loading[key] = Future()
                self.misses += 1
                owner = True
            else:
                owner = False
        if not owner:
            return loading.result()
        try:
            value = load()  # outside the lock: loading decrypts and deserialises
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            loading.set_exception(exc)
            raise
        with self._lock:
            del self._loading[key]
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
                self.evictions += 1
        loading.set_result(value)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items


class TtlCache(Generic[V]):
    """Values remembered for `ttl` seconds (monotonic clock); thread-safe."""

    def __init__(self, ttl: float, max_entries: int = 1024) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            found = self._items.get(key)
            if found and now - found[0] < self.ttl:
                return found[1]
        value = load()
        with self._lock:
            if len(self._items) >= self.max_entries:
                self._items.clear()
            self._items[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def stats(cache: LruCache[Any]) -> dict[str, int]:
    return {
        "size": len(cache),
        "capacity": cache.capacity,
        "hits": cache.hits,
        "misses": cache.misses,
        "evictions": cache.evictions,
    }
