"""Risk models and their evaluation: person-grouped splits, calibration, bootstrap intervals, equity."""

import numpy as np
import pytest
from sklearn.base import clone

from caretwin.risk.evaluate import calibration, equity, evaluate, grouped_split
from caretwin.risk.models import BoostedRisk, LogisticRisk


def simulated(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(-2.0 + 1.2 * x[:, 0] - 0.8 * x[:, 1])))
    return x, p, (rng.random(n) < p).astype(int)


def test_a_split_never_puts_one_person_on_both_sides():
    groups = np.repeat(np.arange(500), 4)
    train, test = grouped_split(groups, test_size=0.25, random_state=3)
    assert not set(groups[train]) & set(groups[test])
    assert len(test) == 500  # 125 persons x 4 rows


def test_calibration_of_true_probabilities_is_intercept_0_slope_1_and_overconfidence_shows():
    _, p, y = simulated()
    intercept, slope = calibration(y, p)
    assert abs(intercept) < 0.05 and abs(slope - 1) < 0.05  # n = 20,000, seed 0
    lp = np.log(p / (1 - p))
    too_extreme = 1 / (1 + np.exp(-2 * lp))
    assert calibration(y, too_extreme)[1] == pytest.approx(0.5, abs=0.05)


def test_bootstrap_resamples_persons_so_repeated_rows_do_not_shrink_the_interval():
    _, p, y = simulated(n=2000, seed=1)
    once = evaluate(y, p, n_boot=100, random_state=0)["auc"]
    groups = np.tile(np.arange(2000), 3)
    y3, p3 = np.tile(y, 3), np.tile(p, 3)
    by_person = evaluate(y3, p3, groups, n_boot=100, random_state=0)["auc"]  # 100 resamples, seed 0
    by_row = evaluate(y3, p3, n_boot=100, random_state=0)["auc"]
    width = lambda e: e.high - e.low  # noqa: E731
    assert by_person.value == pytest.approx(once.value)
    assert width(by_person) == pytest.approx(width(once), rel=0.25)  # the same information, the same uncertainty
    assert width(by_row) < 0.75 * width(by_person)  # rows treated as people would claim false precision
    assert by_person.low < by_person.value < by_person.high


def test_equity_flags_a_group_whose_risk_is_misstated_and_reports_training_shares():
    _, p, y = simulated(n=6000, seed=2)
    group = np.where(np.arange(len(y)) % 4 == 0, "b", "a")
    biased = np.where(group == "b", np.clip(p + 0.08, 0, 1), p)  # group b's risk overstated by 8 points
    rows = equity(y, biased, {"g": group}, threshold=0.3, training={"g": group[:3000]}, n_boot=30)
    by = {r.group: r for r in rows}
    assert by["b"].flagged and not by["a"].flagged
    assert by["b"].calibration_in_the_large.low > 0.05
    assert by["b"].share_of_training == pytest.approx(0.25)


@pytest.mark.parametrize("model", [BoostedRisk(n_members=2, max_iter=100, random_state=0),
                                   LogisticRisk(categorical_features=[2], random_state=0)])
def test_risk_models_follow_the_scikit_learn_contract_and_learn(model):
    x, _, y = simulated(n=8000, seed=4)
    x[:, 2] = np.floor(np.abs(x[:, 2]) * 2)  # a small categorical column
    assert clone(model).get_params() == model.get_params()
    fitted = model.fit(x[:6000], y[:6000])
    assert fitted is model and list(model.classes_) == [0, 1]
    proba = model.predict_proba(x[6000:])
    assert proba.shape == (2000, 2) and np.allclose(proba.sum(axis=1), 1)
    assert evaluate(y[6000:], proba[:, 1], n_boot=20)["auc"].value > 0.75
