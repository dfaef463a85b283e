"""Risk models and their evaluation: person-grouped splits, calibration, bootstrap intervals, equity."""

import numpy as np
import pytest
from sklearn.base import clone

from caretwin.risk.evaluate import calibration, equity, equity_amount, evaluate, evaluate_amount, grouped_split
from caretwin.risk.models import BoostedRisk, CostModel, LogisticRisk, calibrated


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


def test_calibration_pulls_an_overconfident_model_back_towards_observed_rates():
    x, _, y = simulated(n=12_000, seed=5)
    overfit = BoostedRisk(n_members=1, max_iter=300, learning_rate=0.3, min_samples_leaf=5, max_leaf_nodes=63,
                          random_state=0)
    raw = clone(overfit).fit(x[:8000], y[:8000]).predict_proba(x[8000:])[:, 1]
    fixed = calibrated(overfit, x[:8000], y[:8000], np.arange(8000)).predict_proba(x[8000:])[:, 1]
    raw_ev, fixed_ev = evaluate(y[8000:], raw, n_boot=20), evaluate(y[8000:], fixed, n_boot=20)
    assert raw_ev["calibration_slope"].high < 0.8  # seed 5: the overfit trees are too extreme (slope about 0.6)
    assert abs(fixed_ev["calibration_slope"].value - 1) < abs(raw_ev["calibration_slope"].value - 1)
    assert fixed_ev["brier"].value < raw_ev["brier"].value


def simulated_costs(n=12_000, seed=6):
    """Costs like a payer's: 60% of people cost nothing in the year, the rest a gamma-distributed amount
    whose mean rises with two of three features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    mean = np.exp(7 + 0.8 * x[:, 0] + 0.4 * x[:, 1])
    return x, np.where(rng.random(n) < 0.4, rng.gamma(2.0, mean / 2.0) / 0.4, 0.0)


@pytest.mark.parametrize("kind", ["linear", "boosted"])
def test_cost_models_are_unbiased_in_total_and_find_the_costly_tenth(kind):
    x, cost = simulated_costs()
    model = CostModel(kind=kind, random_state=0)
    assert clone(model).get_params() == model.get_params() and model.fit(x[:8000], cost[:8000]) is model
    ev = evaluate_amount(cost[8000:], model.predict(x[8000:]), n_boot=50)
    assert ev["predictive_ratio"].low < 1 < ev["predictive_ratio"].high  # seed 6: 0.96-0.98
    assert ev["top_decile_capture"].low > 0.25  # a random tenth would hold 10% of the cost
    assert ev["r2"].value > 0.1
    with pytest.raises(ValueError, match="kind must be"):
        CostModel(kind="neural").fit(x, cost)


def test_cost_equity_flags_a_group_whose_cost_is_understated():
    x, cost = simulated_costs(n=8000, seed=7)
    p = CostModel(kind="linear").fit(x, cost).predict(x)
    group = np.where(np.arange(len(cost)) % 3 == 0, "b", "a")
    rows = {r.group: r for r in equity_amount(cost, np.where(group == "b", 0.7 * p, p), {"g": group}, n_boot=50)}
    assert rows["b"].flagged and rows["b"].predictive_ratio.high < 0.9
    assert not rows["a"].flagged


def test_equity_flags_each_metric_whose_gap_is_beyond_its_tolerance():
    # seed 3: group b's scores are noise, so the model misses most of b's outcomes and ranks b no better than chance
    rng = np.random.default_rng(3)
    _, p, y = simulated(n=8000, seed=3)
    group = np.where(np.arange(len(y)) % 4 == 0, "b", "a")
    blind = p.copy()
    blind[group == "b"] = rng.permutation(p[group == "b"]) * 0.5  # shuffled (no signal) and halved (below the cut)
    rows = {r.group: r for r in equity(y, blind, {"g": group}, threshold=0.3, n_boot=30)}
    assert "false-negative rate" in rows["b"].flagged and "AUC" in rows["b"].flagged
    assert rows["b"].auc.high < rows["a"].auc.low  # the gap is real, not noise
    assert rows["a"].flagged == ()  # the better-served group is not flagged for being better served


def test_a_model_cards_training_shares_hide_groups_of_1_to_10_people_and_their_partner():
    from caretwin.risk.train import _shares

    persons = np.repeat(np.arange(120), 3)  # 120 people, three examples each
    groups = np.where(persons < 4, "nh_nhpi", np.where(persons < 30, "hispanic", "nh_white"))
    shown = _shares(groups, persons)
    assert shown["nh_nhpi"] is None  # 4 people
    assert shown["hispanic"] is None  # its partner: otherwise 1 - nh_white's share gives nh_nhpi's away
    assert shown["nh_white"] == pytest.approx(90 / 120)
