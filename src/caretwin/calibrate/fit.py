"""Model fits shared by the estimators, with draws of the coefficients for parameter uncertainty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ThinData(ValueError):
    """Too few events to estimate from; the parameters keep their documented defaults."""


MIN_EVENTS = 10
# a log-scale coefficient whose standard error exceeds this (its 90% interval spans a factor of e^16 or more, as
# for a covariate class with no events) is not estimable: it is NaN, and its parameter keeps the default
SE_LIMIT = 5.0


@dataclass
class Fit:
    names: list[str]
    coef: np.ndarray
    cov: np.ndarray
    events: float
    exposure: float

    def draws(self, n: int, seed: int) -> np.ndarray:
        """Coefficient draws from the asymptotic normal (n x k); NaN for a coefficient that is not estimable."""
        rng = np.random.default_rng(seed)
        known = np.isfinite(self.coef)
        B = np.full((n, len(self.coef)), np.nan)
        B[:, known] = rng.multivariate_normal(self.coef[known], self.cov[np.ix_(known, known)], size=n, method="eigh")
        return B

    def index(self, name: str) -> int:
        return self.names.index(name)

    def multiplier(self, name: str, draws: np.ndarray) -> tuple[float, np.ndarray]:
        """exp(coefficient): the rate ratio of a covariate, and its draws (from `draws`, one row per draw)."""
        i = self.index(name)
        return float(np.exp(self.coef[i])), np.exp(draws[:, i])


def poisson(y: np.ndarray, X: np.ndarray, exposure: np.ndarray, names: list[str]) -> Fit:
    """Poisson regression of counts on covariates with log(exposure) as offset (statsmodels GLM).

    Cells of person-time with the same covariates give the same estimates as one row per
    person-week, at a fraction of the cost.
    """
    import warnings

    import statsmodels.api as sm

    keep = exposure > 0
    if y[keep].sum() < MIN_EVENTS:
        raise ThinData(f"{int(y[keep].sum())} events (at least {MIN_EVENTS} needed)")
    model = sm.GLM(y[keep], X[keep], family=sm.families.Poisson(), exposure=exposure[keep])
    with warnings.catch_warnings():  # sparse cells (no deaths among children) are expected; their intervals say so
        warnings.simplefilter("ignore")
        res = model.fit()
    coef, cov = np.array(res.params, float), np.array(res.cov_params(), float)
    se = np.sqrt(np.abs(np.diag(cov)))
    unknown = ~(np.isfinite(coef) & np.isfinite(se) & (se <= SE_LIMIT))
    coef[unknown] = np.nan
    cov[unknown, :] = cov[:, unknown] = 0.0
    return Fit(names, coef, cov, float(y.sum()), float(exposure.sum()))


def gamma_rate_draws(events: float, exposure: float, n: int, seed: int) -> np.ndarray:
    """Draws of a Poisson rate: Gamma(events + 0.5, exposure), the Jeffreys posterior."""
    return np.random.default_rng(seed).gamma(events + 0.5, 1.0 / max(exposure, 1e-12), size=n)


def beta_draws(successes: float, trials: float, n: int, seed: int) -> np.ndarray:
    """Draws of a probability: Beta(successes + 0.5, failures + 0.5), the Jeffreys posterior."""
    return np.random.default_rng(seed).beta(successes + 0.5, trials - successes + 0.5, size=n)
