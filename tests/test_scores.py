"""Published scores against their published point tables and equations."""

import numpy as np
import pytest

from caretwin.model.comorbidity import charlson_index
from caretwin.risk.scores import (
    hospital_category,
    hospital_components,
    hospital_score,
    lace,
    lace_components,
    p_possum_mortality,
    possum_morbidity,
    sort_logit,
    sort_mortality,
)


@pytest.mark.parametrize(("days", "points"), [(0, 0), (0.5, 0), (1, 1), (2, 2), (3, 3), (4, 4), (6, 4), (7, 5),
                                              (13, 5), (14, 7), (60, 7)])
def test_lace_length_of_stay_points(days, points):
    assert lace_components(days, False, 0, 0)["length_of_stay"] == points


@pytest.mark.parametrize(("charlson", "points"), [(0, 0), (1, 1), (2, 2), (3, 3), (4, 5), (9, 5)])
def test_lace_comorbidity_points(charlson, points):
    assert lace_components(0, False, charlson, 0)["comorbidity"] == points


@pytest.mark.parametrize(("visits", "points"), [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (12, 4)])
def test_lace_ed_visit_points(visits, points):
    assert lace_components(0, False, 0, visits)["ed_visits"] == points


def test_lace_runs_from_0_to_19_and_takes_the_charlson_index_of_the_codes():
    assert lace(0, False, 0, 0) == 0
    assert lace(20, True, 6, 5) == 19
    assert lace(5, True, 0, 1) == 4 + 3 + 0 + 1
    # heart failure (1) and diabetes with complications (2): Charlson 3 -> C = 3
    charlson = charlson_index(["I50.9", "E11.22"])
    assert charlson == 3 and lace(2, True, charlson, 0) == 2 + 3 + 3
    np.testing.assert_array_equal(lace([0, 14], [False, True], [0, 4], [0, 4]), [0, 19])


def test_hospital_score_point_table():
    one = hospital_components(11.9, True, 134, True, True, 6, 5)
    assert {k: int(v) for k, v in one.items()} == {
        "hemoglobin_below_12": 1, "oncology_discharge": 2, "sodium_below_135": 1, "procedure": 1,
        "urgent_admission": 1, "admissions_12m": 5, "length_of_stay_5_plus": 2}
    assert hospital_score(11.9, True, 134, True, True, 6, 5) == 13
    assert hospital_score(12.0, False, 135, False, False, 1, 4) == 0  # thresholds are strict: 12 and 135 score 0
    np.testing.assert_array_equal(hospital_components(14, False, 140, False, False, [0, 1, 2, 5, 6], 1)["admissions_12m"],
                                  [0, 0, 2, 2, 5])
    np.testing.assert_array_equal(hospital_category([0, 4, 5, 6, 7, 13]),
                                  ["low", "low", "intermediate", "intermediate", "high", "high"])


def test_sort_equation():
    # the reference patient: ASA I-II, elective, no other factor, under 65
    assert sort_mortality(2, "elective", False, False, False, 40) == pytest.approx(1 / (1 + np.exp(7.366)))
    # every factor adds its published coefficient to the log-odds
    x = sort_logit(3, "urgent", True, True, True, 72)
    assert x == pytest.approx(-7.366 + 1.411 + 1.657 + 0.712 + 0.381 + 0.667 + 0.777)
    assert sort_logit(5, "immediate", False, False, False, 80) == pytest.approx(-7.366 + 4.081 + 2.452 + 1.591)
    assert sort_logit(4, "expedited", False, False, False, 79) == pytest.approx(-7.366 + 2.388 + 1.236 + 0.777)
    with pytest.raises(ValueError, match="urgency"):
        sort_mortality(2, "soon", False, False, False, 40)


def test_p_possum_at_the_lowest_scores_predicts_about_0_2_percent():
    # the published floor of P-POSSUM: physiological score 12 and operative severity 6 give 0.2% mortality
    assert round(float(p_possum_mortality(12, 6)) * 100, 1) == 0.2
    assert p_possum_mortality(40, 20) > p_possum_mortality(30, 20) > p_possum_mortality(30, 10)
    assert possum_morbidity(12, 6) == pytest.approx(1 / (1 + np.exp(5.91 - 0.16 * 12 - 0.19 * 6)))
    with pytest.raises(ValueError, match="12 to 88"):
        p_possum_mortality(10, 6)
