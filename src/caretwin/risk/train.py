"""Training a person-level risk model from the workspace, with its evaluation and a filled-in model card."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from caretwin.risk.dataset import OUTCOMES, build
from caretwin.risk.evaluate import Estimate, GroupRow, equity, evaluate, grouped_split
from caretwin.risk.models import BoostedRisk, LogisticRisk
from caretwin.risk.registry import ModelCard
from caretwin.workspace import Workspace

FLAG_SHARE = 0.2  # the operating point: the top 20% of predicted risk are flagged for review


@dataclass
class Fitted:
    outcome: str
    model: Any
    names: list[str]
    reference: np.ndarray  # typical (median) value of each feature, for reasons
    threshold: float
    evaluation: dict[str, Estimate]
    equity: list[GroupRow]
    card: ModelCard


def fit_outcome(ws: Workspace, outcome: str, *, kind: str = "logistic", lookback_days: int = 180,
                random_state: int = 0, n_boot: int = 100) -> Fitted:
    """Fit on 75% of members, evaluate on the other 25% (no member on both sides), and fill the card."""
    ex = build(ws, outcome, lookback_days=lookback_days)
    train, test = grouped_split(ex.member_id, random_state=random_state)
    est = LogisticRisk(random_state=random_state) if kind == "logistic" else \
        BoostedRisk(n_members=3, min_samples_leaf=50, random_state=random_state)
    est.fit(ex.X[train], ex.y[train])
    p = est.predict_proba(ex.X[test])[:, 1]
    threshold = float(np.quantile(p, 1 - FLAG_SHARE))
    ev = evaluate(ex.y[test], p, ex.member_id[test], n_boot=n_boot, random_state=random_state)
    eq = equity(ex.y[test], p, {k: v[test] for k, v in ex.groups.items()}, threshold=threshold,
                training={k: v[train] for k, v in ex.groups.items()}, n_boot=max(n_boot // 2, 20),
                random_state=random_state, min_group=50)
    meaning, horizon, _ = OUTCOMES[outcome]
    reference = np.median(ex.X[train], axis=0)  # each feature's typical value: the baseline for reasons
    shares = {k: {g: float((v[train] == g).mean()) for g in sorted(set(v[train]))} for k, v in ex.groups.items()}
    card = ModelCard(
        name=outcome.replace("_", "-"), outcome=meaning,
        intended_use=f"rank enrolled members by their risk of {meaning}, for a care coordinator to review",
        intended_users="care coordinators and care managers; analysts for planning",
        out_of_scope="eligibility, coverage or payment decisions; any action without a person's review; "
                     "populations unlike the training data",
        training_data={"source": f"workspace {ws.name}", "cut-offs": f"{ex.cutoff.min()} to {ex.cutoff.max()}",
                       "examples": int(len(train)), "members": int(len(set(ex.member_id[train]))),
                       "outcome rate": f"{ex.y[train].mean():.1%}", "predictors": ", ".join(ex.names),
                       "model": type(est).__name__, "outcome key": outcome,
                       "typical values": dict(zip(ex.names, reference.tolist()))},
        demographics=shares,
        fairness_approach="AUC, calibration gap (mean predicted minus observed) and false-negative rate at the "
                          f"operating point (top {FLAG_SHARE:.0%} flagged) by sex, race and ethnicity, age band and "
                          "region, with bootstrap intervals; a group is flagged when its calibration gap exceeds "
                          "2 points. Sex and race are not predictors.",
        fairness_results=[{"feature": r.feature, "group": r.group, "auc": r.auc.short(),
                           "calibration_gap": r.calibration_in_the_large.short(),
                           "false_negative_rate": r.false_negative_rate.short(), "flagged": r.flagged} for r in eq],
        validation={"split": "25% of members held out (no member in both sets)", "test examples": int(len(test)),
                    "operating threshold": threshold,
                    **{k: str(v) for k, v in ev.items()}},
        monitoring="monthly: calibration overall and by group on new outcomes; alert when the calibration "
                   "intercept leaves its interval or a group is flagged",
        update_schedule=f"refit yearly, or when monitoring shows drift; horizon {horizon} days")
    return Fitted(outcome, est, ex.names, reference, threshold, ev, eq, card)

