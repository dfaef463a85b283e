"""How good and how fair a risk model is: discrimination, accuracy and calibration with bootstrap
intervals, on splits that keep each person's records together, and the same by group.

A person in both the training and the test set inflates every figure (their own history predicts
their own outcome), so splits and bootstrap resamples are by person (`groups`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import statsmodels.api as sm
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupShuffleSplit

EPS = 1e-6


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} (95% interval {self.low:.3f} to {self.high:.3f})"

    def short(self) -> str:
        return f"{self.value:.3f} ({self.low:.3f} to {self.high:.3f})"


def grouped_split(groups: np.ndarray, *, test_size: float = 0.25, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices with every group (person) wholly on one side."""
    split = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
    return next(split.split(np.zeros(len(groups)), groups=groups))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def calibration(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Calibration intercept (in the large: logit(y) = a + logit(p) as offset) and slope (logit(y) = a + b logit(p)).

    A well-calibrated model has intercept 0 and slope 1; a slope below 1 means predictions too extreme.
    """
    lp = _logit(np.asarray(p, dtype=float))
    y = np.asarray(y, dtype=float)
    family = sm.families.Binomial()
    intercept = sm.GLM(y, np.ones((len(y), 1)), family=family, offset=lp, freq_weights=weights).fit().params[0]
    slope = sm.GLM(y, sm.add_constant(lp), family=family, freq_weights=weights).fit().params[1]
    return float(intercept), float(slope)


def _point(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    intercept, slope = calibration(y, p, w)
    return {"auc": float(roc_auc_score(y, p, sample_weight=w)), "brier": float(brier_score_loss(y, p, sample_weight=w)),
            "calibration_intercept": intercept, "calibration_slope": slope}


def _bootstrap(point, y: np.ndarray, p: np.ndarray, groups: np.ndarray | None, n_boot: int,
               random_state: int) -> dict[str, Estimate]:
    """`point(y, p, weights)` with a 95% percentile interval from resampling persons (`groups`)."""
    at = point(y, p, None)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    _, inverse = np.unique(groups, return_inverse=True)
    n_groups = inverse.max() + 1
    rng = np.random.default_rng(random_state)
    draws: dict[str, list[float]] = {m: [] for m in at}
    for _ in range(n_boot):
        # a resample of persons, as how many times each person's rows are drawn
        w = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[inverse].astype(float)
        keep = w > 0
        if y[keep].min() == y[keep].max():
            continue
        for m, v in point(y[keep], p[keep], w[keep]).items():
            draws[m].append(v)
    return {m: Estimate(at[m], *np.percentile(draws[m], (2.5, 97.5))) if draws[m] else
            Estimate(at[m], math.nan, math.nan) for m in at}


def evaluate(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None, *, n_boot: int = 200,
             random_state: int = 0) -> dict[str, Estimate]:
    """AUC, Brier score, calibration intercept and slope, each with a 95% bootstrap interval (resampling persons)."""
    return _bootstrap(_point, np.asarray(y), np.asarray(p, dtype=float), groups, n_boot, random_state)


def _point_amount(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    w = np.ones(len(y)) if w is None else w
    resid = np.average((y - p) ** 2, weights=w)
    return {"r2": float(1 - resid / np.average((y - np.average(y, weights=w)) ** 2, weights=w)),
            "mean_absolute_error": float(np.average(np.abs(y - p), weights=w)),
            "predictive_ratio": float(np.sum(w * p) / np.sum(w * y)),
            "top_decile_capture": _top_share(y, p, w)}


def _top_share(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """Share of all cost incurred by the tenth of people the model ranks highest."""
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(w[order])
    top = cum <= 0.1 * cum[-1]
    return float(np.sum((w * y)[order][top]) / np.sum(w * y))


def evaluate_amount(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None, *, n_boot: int = 200,
                    random_state: int = 0) -> dict[str, Estimate]:
    """For an expected-cost model: R² on individual costs, mean absolute error, predictive ratio (total
    predicted over total observed; 1 is unbiased) and the share of cost among the top-ranked tenth, each
    with a 95% bootstrap interval resampling persons. Individual cost R² of 0.15-0.25 is typical of
    claims-based risk adjustment (e.g. CMS-HCC)."""
    return _bootstrap(_point_amount, np.asarray(y, dtype=float), np.asarray(p, dtype=float), groups, n_boot,
                      random_state)


# ------------------------------------------------------------------------------------------ equity
@dataclass(frozen=True)
class GroupRow:
    feature: str
    group: str
    share_of_training: float
    n: int
    auc: Estimate
    calibration_in_the_large: Estimate  # mean predicted minus observed rate
    false_negative_rate: Estimate
    flagged: tuple[str, ...]  # the metrics whose gap is beyond its tolerance, with an interval that excludes none


@dataclass(frozen=True)
class AmountGroupRow:
    feature: str
    group: str
    share_of_training: float
    n: int
    predictive_ratio: Estimate  # total predicted over total observed cost
    mean_absolute_error: Estimate
    flagged: tuple[str, ...]  # ("predictive ratio",) when it is outside the tolerance, else ()


def _beyond(e: Estimate, fair: float, tolerance: float, harm: int = 0) -> bool:
    """A gap worth a flag: further than `tolerance` from the fair value, and its interval excludes that value
    (a small group's noisy estimate alone is not a finding). `harm` +1 or -1 flags only gaps in that direction
    (a higher false-negative rate, a lower AUC); 0 either way."""
    if math.isnan(e.value) or math.isnan(fair) or e.low <= fair <= e.high:
        return False
    gap = e.value - fair
    return (abs(gap) if harm == 0 else harm * gap) > tolerance


def _by_group(y: np.ndarray, p: np.ndarray, sensitive: dict[str, np.ndarray], metrics: dict, *,
              persons: np.ndarray | None, training: dict[str, np.ndarray] | None, n_boot: int, random_state: int,
              min_group: int):
    """(feature, group, share of training, n, {metric: Estimate}) for each group with at least `min_group`
    rows. The values come from fairlearn's MetricFrame; the 95% intervals from resampling the group's persons
    (fairlearn's own bootstrap resamples rows, which understates the uncertainty when a person has many).
    Each metric is `f(y, p, weights)`."""
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    persons = np.arange(len(y)) if persons is None else np.asarray(persons)
    unweighted = {m: partial(f, w=None) for m, f in metrics.items()}  # MetricFrame passes (y_true, y_pred)

    def point(yt, yp, w):
        return {m: f(yt, yp, w) for m, f in metrics.items()}

    for feature, values in sensitive.items():
        values = np.asarray(values).astype(str)
        mf = MetricFrame(metrics=unweighted, y_true=y, y_pred=p, sensitive_features=pd.Series(values, name=feature))
        train = np.asarray(training[feature]).astype(str) if training and feature in training else values
        for group, row in mf.by_group.iterrows():
            idx = np.flatnonzero(values == group)
            if len(idx) < min_group:
                continue
            with warnings.catch_warnings():  # resamples of a group with one outcome class have no AUC
                warnings.simplefilter("ignore", RuntimeWarning)
                boot = _bootstrap(point, y[idx], p[idx], persons[idx], n_boot, random_state)
            yield feature, str(group), float((train == group).mean()), len(idx), {
                m: Estimate(float(row[m]), boot[m].low, boot[m].high) for m in metrics}


def equity(y: np.ndarray, p: np.ndarray, sensitive: dict[str, np.ndarray], *, threshold: float,
           persons: np.ndarray | None = None, training: dict[str, np.ndarray] | None = None,
           max_calibration_gap: float = 0.02, max_fnr_gap: float = 0.10, max_auc_gap: float = 0.05,
           n_boot: int = 200, random_state: int = 0, min_group: int = 100) -> list[GroupRow]:
    """Performance by group: AUC, calibration in the large, false-negative rate at the operating point.

    `threshold` is the operating point (people at or above it are flagged). A group is flagged on each metric
    whose gap is beyond its tolerance with a 95% interval that excludes no gap: mean predicted risk against
    its observed rate (`max_calibration_gap`, either way), its false-negative rate above everyone's
    (`max_fnr_gap`: the model misses more of this group's people who have the outcome), its AUC below
    everyone's (`max_auc_gap`). Groups with fewer than `min_group` rows are left out (too few to judge).
    """
    y, p = np.asarray(y), np.asarray(p, dtype=float)

    def auc(yt, yp, w):
        return float(roc_auc_score(yt, yp, sample_weight=w)) if len(np.unique(yt)) == 2 else math.nan

    def citl(yt, yp, w):
        return float(np.average(yp, weights=w) - np.average(yt, weights=w))

    def fnr(yt, yp, w):
        pos = yt == 1
        return float(np.average(yp[pos] < threshold, weights=None if w is None else w[pos])) if pos.any() else math.nan

    everyone = {"auc": auc(y, p, None), "fnr": fnr(y, p, None)}

    def gaps(e: dict[str, Estimate]) -> tuple[str, ...]:
        return tuple(name for name, hit in (
            ("calibration", _beyond(e["citl"], 0.0, max_calibration_gap)),
            ("false-negative rate", _beyond(e["fnr"], everyone["fnr"], max_fnr_gap, harm=1)),
            ("AUC", _beyond(e["auc"], everyone["auc"], max_auc_gap, harm=-1))) if hit)

    return [GroupRow(f, g, share, n, e["auc"], e["citl"], e["fnr"], gaps(e))
            for f, g, share, n, e in _by_group(y, p, sensitive, {"auc": auc, "citl": citl, "fnr": fnr},
                                               persons=persons, training=training, n_boot=n_boot,
                                               random_state=random_state, min_group=min_group)]


def equity_amount(y: np.ndarray, p: np.ndarray, sensitive: dict[str, np.ndarray], *, persons: np.ndarray | None = None,
                  training: dict[str, np.ndarray] | None = None, tolerance: float = 0.10, n_boot: int = 200,
                  random_state: int = 0, min_group: int = 100) -> list[AmountGroupRow]:
    """An expected-cost model by group: predictive ratio and mean absolute error; a group whose predictive
    ratio is further than `tolerance` from 1, with an interval that excludes 1, is flagged (its cost is
    systematically over- or under-stated)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)

    def ratio(yt, yp, w):
        observed = np.average(yt, weights=w)
        return float(np.average(yp, weights=w) / observed) if observed > 0 else math.nan

    def mae(yt, yp, w):
        return float(np.average(np.abs(yt - yp), weights=w))

    return [AmountGroupRow(f, g, share, n, e["ratio"], e["mae"],
                           ("predictive ratio",) if _beyond(e["ratio"], 1.0, tolerance) else ())
            for f, g, share, n, e in _by_group(y, p, sensitive, {"ratio": ratio, "mae": mae}, persons=persons,
                                               training=training, n_boot=n_boot, random_state=random_state,
                                               min_group=min_group)]
