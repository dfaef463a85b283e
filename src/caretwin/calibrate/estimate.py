"""Estimates: a value, its interval and draws, how it was made and from what; or a flagged default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEVEL = 0.90  # the interval reported for every estimate


@dataclass
class Estimate:
    """One engine parameter estimated from the workspace (or left at its default, flagged).

    `draws` has one row per draw (parameter uncertainty); a per-region parameter is a dict
    region_id -> value and its draws are a dict of arrays.
    """

    name: str
    value: Any
    draws: Any = None
    method: str = ""
    data: str = ""
    supported: bool = True
    note: str = ""
    low: Any = field(default=None)
    high: Any = field(default=None)

    def __post_init__(self) -> None:
        self._drop_not_estimable()
        if self.draws is not None and self.low is None:
            q = ((1 - LEVEL) / 2, (1 + LEVEL) / 2)
            if isinstance(self.draws, dict):
                self.low = {k: float(np.quantile(v, q[0])) for k, v in self.draws.items()}
                self.high = {k: float(np.quantile(v, q[1])) for k, v in self.draws.items()}
            else:  # a NaN column is an element the data could not inform (e.g. a rurality class with no providers)
                d = np.asarray(self.draws, float)
                lo, hi = (np.full(d.shape[1:], np.nan) for _ in range(2)) if d.ndim > 1 else (np.nan, np.nan)
                ok = ~np.isnan(d).all(axis=0)
                if d.ndim > 1:
                    lo[ok], hi[ok] = np.quantile(d[:, ok], q, axis=0)
                elif ok:
                    lo, hi = np.quantile(d, q)
                self.low, self.high = _plain(np.asarray(lo)), _plain(np.asarray(hi))
        self.value = _plain(self.value)

    def _drop_not_estimable(self) -> None:
        """A NaN value is one the data cannot inform: a scalar is flagged unsupported (the default stays), a
        region's entry is dropped (the region keeps the default); NaN elements of a tuple keep their defaults."""
        if isinstance(self.value, dict):
            bad = sorted(k for k, v in self.value.items() if not np.isfinite(v))
            if bad:
                self.value = {k: v for k, v in self.value.items() if k not in bad}
                if isinstance(self.draws, dict):
                    self.draws = {k: v for k, v in self.draws.items() if k not in bad}
                self._add_note(f"not estimable from these data for {', '.join(bad)}, which keep the default")
        elif np.ndim(self.value) == 0 and self.value is not None and not np.isfinite(float(self.value)):
            self.supported, self.draws = False, None
            self._add_note("not estimable from these data (too few events in a class); the default is used")
        elif np.ndim(self.value) == 1 and np.isnan(np.asarray(self.value, float)).any():
            self._add_note("elements not estimable from these data keep their defaults")

    def _add_note(self, text: str) -> None:
        self.note = f"{self.note}; {text}" if self.note else text

    def draw(self, k: int) -> Any:
        """The k-th draw (cycling), in the parameter's shape."""
        if self.draws is None:
            return self.value
        if isinstance(self.draws, dict):
            return {r: float(v[k % len(v)]) for r, v in self.draws.items()}
        d = np.asarray(self.draws)
        return _plain(d[k % len(d)])

    def contains(self, truth: Any) -> bool:
        """Whether the interval contains `truth` (every element of it)."""
        if self.low is None:
            return bool(np.allclose(np.asarray(truth, float), np.asarray(self.value, float)))
        if isinstance(self.low, dict):
            t = truth if isinstance(truth, dict) else {k: truth for k in self.low}
            return all(self.low[k] <= t[k] <= self.high[k] for k in self.low)
        lo, hi, t = (np.atleast_1d(np.asarray(x, float)) for x in (self.low, self.high, truth))
        known = ~np.isnan(lo)
        return bool(((lo <= t + 1e-12) & (t <= hi + 1e-12))[known].all())

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "low": self.low, "high": self.high, "level": LEVEL,
                "method": self.method, "data": self.data, "supported": self.supported, "note": self.note}


def _plain(x: Any) -> Any:
    """numpy scalars and arrays as Python floats and tuples (the parameter file's shapes)."""
    if isinstance(x, np.ndarray):
        return float(x) if x.ndim == 0 else tuple(float(v) for v in x)
    if isinstance(x, np.generic):
        return float(x)
    return x
