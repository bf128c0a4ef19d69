"""A bounded, thread-safe, process-local map that forgets its least recently used entries."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            self._trim()

    def setdefault(self, key: K, value: V) -> V:
        """The value under `key`, storing `value` there first if there is none."""
        with self._lock:
            current = self._items.get(key)
            if current is None:
                self._items[key] = current = value
            self._items.move_to_end(key)
            self._trim()
            return current

    def _trim(self) -> None:
        # Under the lock: forget the least recently used beyond the size.
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)
