"""How good and how fair a risk model is: discrimination, accuracy and calibration with bootstrap
intervals, on splits that keep each person's records together, and the same by group.

A person in both the training and the test set inflates every figure (their own history predicts
their own outcome), so splits and bootstrap resamples are by person (`groups`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

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


METRICS = ("auc", "brier", "calibration_intercept", "calibration_slope")


def _point(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    intercept, slope = calibration(y, p, w)
    return {"auc": float(roc_auc_score(y, p, sample_weight=w)), "brier": float(brier_score_loss(y, p, sample_weight=w)),
            "calibration_intercept": intercept, "calibration_slope": slope}


def evaluate(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None, *, n_boot: int = 200,
             random_state: int = 0) -> dict[str, Estimate]:
    """AUC, Brier score, calibration intercept and slope, each with a 95% bootstrap interval (resampling persons)."""
    y, p = np.asarray(y), np.asarray(p, dtype=float)
    point = _point(y, p)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    _, inverse = np.unique(groups, return_inverse=True)
    n_groups = inverse.max() + 1
    rng = np.random.default_rng(random_state)
    draws = {m: [] for m in METRICS}
    for _ in range(n_boot):
        # a resample of persons, as how many times each person's rows are drawn
        w = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[inverse].astype(float)
        keep = w > 0
        if y[keep].min() == y[keep].max():
            continue
        for m, v in _point(y[keep], p[keep], w[keep]).items():
            draws[m].append(v)
    return {m: Estimate(point[m], *np.percentile(draws[m], (2.5, 97.5))) if draws[m] else
            Estimate(point[m], math.nan, math.nan) for m in METRICS}


# ------------------------------------------------------------------------------------------ equity
def false_negative_rate(y: np.ndarray, flagged: np.ndarray) -> float:
    positives = np.asarray(y) == 1
    return float((~np.asarray(flagged, bool)[positives]).mean()) if positives.any() else math.nan


@dataclass(frozen=True)
class GroupRow:
    feature: str
    group: str
    share_of_training: float
    n: int
    auc: Estimate
    calibration_in_the_large: Estimate  # mean predicted minus observed rate
    false_negative_rate: Estimate
    flagged: bool  # calibration gap beyond the threshold


def equity(y: np.ndarray, p: np.ndarray, sensitive: dict[str, np.ndarray], *, threshold: float,
           training: dict[str, np.ndarray] | None = None, max_calibration_gap: float = 0.02, n_boot: int = 200,
           random_state: int = 0, min_group: int = 100) -> list[GroupRow]:
    """Performance by group (fairlearn's MetricFrame, with its bootstrap intervals).

    `threshold` is the operating point (people at or above it are flagged); a group whose mean
    predicted risk differs from its observed rate by more than `max_calibration_gap` is flagged.
    Groups with fewer than `min_group` people are left out (too few to judge).
    """
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    y = np.asarray(y)
    p = np.asarray(p, dtype=float)

    def auc(yt, yp):
        return roc_auc_score(yt, yp) if len(np.unique(yt)) == 2 else math.nan

    def citl(yt, yp):
        return float(np.mean(yp) - np.mean(yt))

    def fnr(yt, yp):
        return false_negative_rate(yt, np.asarray(yp) >= threshold)

    rows = []
    for feature, values in sensitive.items():
        values = np.asarray(values).astype(str)
        with warnings.catch_warnings():  # resamples of a group with one outcome class have no AUC
            warnings.simplefilter("ignore", RuntimeWarning)
            mf = MetricFrame(metrics={"auc": auc, "citl": citl, "fnr": fnr}, y_true=y, y_pred=p,
                             sensitive_features=pd.Series(values, name=feature), n_boot=n_boot,
                             ci_quantiles=[0.025, 0.975], random_state=random_state)
        lo, hi = mf.by_group_ci
        train = np.asarray(training[feature]).astype(str) if training and feature in training else values
        for group, row in mf.by_group.iterrows():
            n = int((values == group).sum())
            if n < min_group:
                continue
            est = {m: Estimate(float(row[m]), float(lo.loc[group, m]), float(hi.loc[group, m])) for m in row.index}
            rows.append(GroupRow(feature, str(group), float((train == group).mean()), n, est["auc"], est["citl"],
                                 est["fnr"], abs(est["citl"].value) > max_calibration_gap))
    return rows
