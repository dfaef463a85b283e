"""Proper scores for ensemble forecasts of weekly counts and rates, as forecast hubs keep them.

- **Randomised PIT** (Czado, Gneiting and Held 2009): for an ensemble's empirical distribution F and an
  observation y, u = F(y-) + V (F(y) - F(y-)) with V uniform. Ties between y and the ensemble, which are
  common for small integer counts, are spread evenly, so a calibrated forecast gives uniform u and a
  central interval at level L holds y with probability exactly L. Coverage counted with inclusive bounds
  on integer counts is inflated by those ties.
- **Weighted interval score** (Bracher et al. 2021, the score of the CDC FluSight and COVID-19 Forecast
  Hubs) over the hubs' 23 quantiles: 11 central intervals and the median; computed by `scoringrules`.
- **A naive forecast** to score against: persistence (the last observed week) with the spread of the
  h-week changes seen in the history, symmetrised, as the hubs' baseline model does.
"""

from __future__ import annotations

import warnings

import numpy as np
import scoringrules

# the hubs' quantile levels: the median and 11 central intervals (98%, 95%, 90%, 80%, ..., 10%)
ALPHAS = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
QUANTILES = np.array(sorted({0.5, *(ALPHAS / 2), *(1 - ALPHAS / 2)}))


def randomised_pit(ensemble: np.ndarray, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PIT of `obs` [...] under the empirical distribution of `ensemble` [member, ...]; NaN where either is missing."""
    valid = ~np.isnan(ensemble)
    n = valid.sum(axis=0)
    below = (ensemble < obs).sum(axis=0)
    ties = (ensemble == obs).sum(axis=0)
    v = rng.random(np.shape(obs))
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (below + v * ties) / n
    return np.where((n > 0) & ~np.isnan(obs), u, np.nan)


def central_hit(pit: np.ndarray, level: float) -> np.ndarray:
    """Whether each observation falls in the central interval at `level` (0-1), judged by its randomised PIT."""
    return np.abs(pit - 0.5) <= level / 2


def quantiles_of(ensemble: np.ndarray) -> np.ndarray:
    """The hub quantiles of an ensemble [member, ...] as [..., quantile]; NaN where every member is (a
    missed-visit rate in a region with no visits scheduled)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.moveaxis(np.nanquantile(ensemble, QUANTILES, axis=0), 0, -1)


def wis(obs: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Weighted interval score of quantile forecasts `q` [..., QUANTILES] for `obs` [...]; lower is better."""
    k = len(ALPHAS)
    lower, upper = q[..., :k], q[..., ::-1][..., :k]  # alpha ascending: widest interval first
    median = q[..., k]
    return np.asarray(scoringrules.weighted_interval_score(obs, median, lower, upper, ALPHAS, backend="numba"))


def naive_quantiles(history: np.ndarray, horizons: int) -> np.ndarray:
    """Persistence forecasts [horizon, ..., QUANTILES] from `history` [week, ...] (oldest first): the last
    week's value plus the quantiles of the h-week changes in the history, taken with both signs; never below 0
    for a series that never was."""
    last = history[-1]
    out = np.empty((horizons, *last.shape, len(QUANTILES)))
    with warnings.catch_warnings():  # a region whose series is all missing gets NaN forecasts
        warnings.simplefilter("ignore", RuntimeWarning)
        floor = np.where(np.nanmin(history, axis=0) >= 0, 0.0, -np.inf)
        for h in range(1, horizons + 1):
            d = history[h:] - history[:-h] if len(history) > h else np.zeros((1, *last.shape))
            spread = np.moveaxis(np.nanquantile(np.concatenate([d, -d]), QUANTILES, axis=0), 0, -1)
            out[h - 1] = np.maximum(last[..., None] + spread, floor[..., None])
    return out
