"""Training a person-level risk model from the workspace, with its evaluation and a filled-in model card."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from caretwin.errors import CaretwinError
from caretwin.governance.audit import Actor, record_event
from caretwin.governance.suppression import suppress_breakdown
from caretwin.risk.dataset import OUTCOMES, build, predict
from caretwin.risk.evaluate import AmountGroupRow, Estimate, GroupRow, equity, equity_amount, evaluate, \
    evaluate_amount, grouped_split
from caretwin.risk.models import BoostedRisk, CostModel, LogisticRisk, calibrated
from caretwin.risk.registry import ModelCard
from caretwin.workspace import Workspace

FLAG_SHARE = 0.2  # the operating point: the top 20% of scores are flagged for review
KINDS = ("logistic", "boosted")


@dataclass
class Fitted:
    outcome: str
    model: Any
    names: list[str]
    reference: np.ndarray  # typical (median) value of each feature, for reasons
    threshold: float
    evaluation: dict[str, Estimate]
    equity: list[GroupRow] | list[AmountGroupRow]
    card: ModelCard


def _estimator(kind: str, amount: bool, random_state: int):
    if kind not in KINDS:
        raise CaretwinError(f"kind must be one of: {', '.join(KINDS)}")
    if amount:
        return CostModel(kind="linear" if kind == "logistic" else "boosted", random_state=random_state)
    if kind == "logistic":
        return LogisticRisk(random_state=random_state)
    # one fit of at most 300 trees (calibration follows, so a bag adds little): scoring a million stays quick
    return BoostedRisk(n_members=1, learning_rate=0.1, max_iter=300, min_samples_leaf=50, random_state=random_state)


def _shares(groups: np.ndarray, persons: np.ndarray) -> dict[str, float | None]:
    """Each group's share of the training examples; None for groups of 1-10 people, and for a partner group
    where one hidden share could be worked out from the others (the card is read by every role)."""
    names = sorted(set(groups))
    people = np.array([len(set(persons[groups == g])) for g in names])
    rows = np.array([(groups == g).sum() for g in names])
    hide = suppress_breakdown(people, rows)
    return {g: None if h else float(n / len(groups)) for g, n, h in zip(names, rows, hide)}


def fit_outcome(ws: Workspace, outcome: str, *, kind: str = "logistic", calibration: str | None = None,
                lookback_days: int = 180, random_state: int = 0, n_boot: int = 100,
                actor: Actor | None = None) -> Fitted:
    """Fit on 75% of members, evaluate on the other 25% (no member on both sides), and fill the card. Reading
    every member's history is recorded as done by `actor` (the operating-system user unless given).

    `calibration` ("isotonic" or "sigmoid") maps a classifier's scores onto observed rates with
    person-grouped cross-fitting on the training members; the default is isotonic for boosted trees
    (whose scores are often over-confident) and none for logistic regression (calibrated by its loss).
    """
    ex = build(ws, outcome, lookback_days=lookback_days)
    o = OUTCOMES[outcome]
    amount = o.kind == "amount"
    est = _estimator(kind, amount, random_state)
    if calibration not in (None, "isotonic", "sigmoid"):
        raise CaretwinError("calibration must be isotonic or sigmoid")
    train, test = grouped_split(ex.person, random_state=random_state)
    if calibration is None and kind == "boosted" and not amount:
        calibration = "isotonic"
    if calibration and not amount:
        est = calibrated(est, ex.X[train], ex.y[train], ex.person[train], method=calibration)
    else:
        est.fit(ex.X[train], ex.y[train])
    p = predict(est, ex.X[test])
    threshold = float(np.quantile(p, 1 - FLAG_SHARE))
    groups = {k: v[test] for k, v in ex.groups.items()}
    training = {k: v[train] for k, v in ex.groups.items()}
    if amount:
        ev = evaluate_amount(ex.y[test], p, ex.person[test], n_boot=n_boot, random_state=random_state)
        eq = equity_amount(ex.y[test], p, groups, persons=ex.person[test], training=training, n_boot=max(n_boot // 2, 20),
                           random_state=random_state, min_group=50)
        fairness = ("predictive ratio (total predicted over total observed cost) and mean absolute error by sex, "
                    "race and ethnicity, age band, region and rurality, with bootstrap intervals; a group is flagged "
                    "when its predictive ratio is more than 10% from 1.")
    else:
        ev = evaluate(ex.y[test], p, ex.person[test], n_boot=n_boot, random_state=random_state)
        eq = equity(ex.y[test], p, groups, threshold=threshold, persons=ex.person[test], training=training,
                    n_boot=max(n_boot // 2, 20), random_state=random_state, min_group=50)
        fairness = ("AUC, calibration gap (mean predicted minus observed) and false-negative rate at the operating "
                    f"point (top {FLAG_SHARE:.0%} flagged) by sex, race and ethnicity, age band, region and "
                    "rurality, with bootstrap intervals; a group is flagged on each metric whose gap is beyond its "
                    "tolerance with an interval that excludes none: calibration gap over 2 points either way, "
                    "false-negative rate over 10 points above everyone's, AUC over 0.05 below everyone's.")
    reference = np.median(ex.X[train], axis=0)  # each feature's typical value: the baseline for reasons
    shares = {k: _shares(v, ex.person[train]) for k, v in training.items()}
    unit = "discharges" if o.unit == "discharge" else "members enrolled on each cut-off"
    card = ModelCard(
        name=outcome.replace("_", "-"), outcome=o.meaning,
        intended_use=(f"estimate {o.meaning} for each enrolled member, to find people whose care may need "
                      "planning and to price value-based arrangements" if amount else
                      f"rank people by their risk of {o.meaning}, for a care coordinator to review"),
        intended_users="care coordinators and care managers; analysts for planning",
        out_of_scope="eligibility, coverage or payment decisions about a person; any action without a person's "
                     "review; populations unlike the training data",
        training_data={"source": f"workspace {ws.name}", "examples are": unit,
                       "cut-offs": f"{ex.cutoff.min()} to {ex.cutoff.max()}",
                       "examples": int(len(train)), "members": int(len(set(ex.person[train]))),
                       ("mean cost" if amount else "outcome rate"):
                           f"{ex.y[train].mean():,.0f}" if amount else f"{ex.y[train].mean():.1%}",
                       "predictors": ", ".join(ex.names), "model": type(est).__name__,
                       "calibration": calibration or "none", "outcome key": outcome,
                       "typical values": dict(zip(ex.names, reference.tolist()))},
        demographics=shares,
        fairness_approach=fairness + " Sex, race and ethnicity, region and rurality are not predictors.",
        fairness_results=[{k: v.short() if isinstance(v, Estimate) else v for k, v in asdict(r).items()
                           if k not in ("share_of_training",)} for r in eq],
        validation={"split": "25% of members held out (no member in both sets)", "test examples": int(len(test)),
                    "operating threshold": threshold, **{k: str(v) for k, v in ev.items()}},
        monitoring=("monthly: " + ("predictive ratio overall and by group on new costs; alert when it leaves "
                                   "0.9-1.1 or a group is flagged" if amount else
                                   "calibration overall and by group on new outcomes; alert when the calibration "
                                   "intercept leaves its interval or a group is flagged")),
        update_schedule=f"refit yearly, or when monitoring shows drift; horizon {o.horizon_days} days")
    record_event(ws, actor or Actor.local("quality_improvement"), kind="query", action="E", subtype="model.train",
                 entity_type="outcome", entity_id=outcome,
                 detail={"kind": kind, "calibration": calibration, "examples": int(len(ex.y)),
                         "members": int(len(set(ex.person))), "lookback_days": lookback_days, "seed": random_state})
    return Fitted(outcome, est, ex.names, reference, threshold, ev, eq, card)
