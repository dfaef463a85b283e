"""Struct-of-arrays containers for the synthetic county's state and event records."""

from __future__ import annotations

import numpy as np


class Records:
    """Rows with named columns in growable, preallocated numpy arrays (one array per column)."""

    def __init__(self, capacity: int = 1024, **dtypes: np.dtype | type):
        self.n = 0
        self._cols = {k: np.zeros(max(capacity, 16), dtype=dt) for k, dt in dtypes.items()}

    def add(self, **values: np.ndarray | float) -> np.ndarray:
        """Append rows (array values must share one length); returns their indices."""
        k = max((len(v) for v in values.values() if isinstance(v, np.ndarray)), default=1)
        if k == 0:
            return np.empty(0, dtype=np.int64)
        need = self.n + k
        if need > len(next(iter(self._cols.values()))):
            size = max(need, 2 * len(next(iter(self._cols.values()))))
            for name, arr in self._cols.items():
                grown = np.zeros(size, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self._cols[name] = grown
        for name, arr in self._cols.items():
            arr[self.n : need] = values.get(name, 0)
        idx = np.arange(self.n, need)
        self.n = need
        return idx

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("_cols", {})
        if name in cols:
            return cols[name][: self.n]
        raise AttributeError(name)

    def columns(self) -> dict[str, np.ndarray]:
        return {k: v[: self.n] for k, v in self._cols.items()}


class Log:
    """Append-only event log: chunks of column arrays, concatenated once at the end."""

    def __init__(self, **dtypes: np.dtype | type):
        self._dtypes = dtypes
        self._chunks: dict[str, list[np.ndarray]] = {k: [] for k in dtypes}

    def add(self, **values: np.ndarray) -> None:
        k = max(len(v) for v in values.values() if np.ndim(v))
        if k == 0:
            return
        for name, dt in self._dtypes.items():
            self._chunks[name].append(np.broadcast_to(np.asarray(values[name], dtype=dt), (k,)).copy())

    def columns(self) -> dict[str, np.ndarray]:
        return {
            k: (np.concatenate(chunks) if chunks else np.empty(0, dtype=self._dtypes[k]))
            for k, chunks in self._chunks.items()
        }
