"""Published risk scores, implemented exactly as their papers define them.

Each function takes arrays (or scalars) and returns points or probabilities, plus, where the
score is a sum of points, each component's points so a reviewer can see why.

- LACE index for death or unplanned readmission within 30 days of discharge: van Walraven C,
  Dhalla IA, Bell C, et al. CMAJ 2010;182(6):551-7.
- HOSPITAL score for potentially avoidable 30-day readmission: Donze J, Aujesky D, Williams D,
  Schnipper JL. JAMA Intern Med 2013;173(8):632-8.
- Charlson comorbidity index (1987 and Quan 2011 weights, Quan 2005 ICD-10 coding):
  `caretwin.model.comorbidity`.
- SORT, 30-day mortality after non-cardiac surgery: Protopapa KL, Simpson JC, Smith NCE,
  Moonesinghe SR. Br J Surg 2014;101(13):1774-83.
- P-POSSUM mortality: Prytherch DR, Whiteley MS, Higgins B, et al. Br J Surg 1998;85(9):1217-20;
  POSSUM morbidity: Copeland GP, Jones D, Walters M. Br J Surg 1991;78(3):355-60.
"""

from __future__ import annotations

import numpy as np

ArrayLike = np.ndarray | float | int | bool


def _a(x: ArrayLike) -> np.ndarray:
    return np.asarray(x)


# ------------------------------------------------------------------------------------------- LACE
def lace_components(length_of_stay_days: ArrayLike, acute_admission: ArrayLike, charlson: ArrayLike,
                    ed_visits_6m: ArrayLike) -> dict[str, np.ndarray]:
    """Points for L (length of stay), A (acute admission), C (Charlson index) and E (ED visits, 6 months)."""
    los = _a(length_of_stay_days)
    # stays of less than a day score 0; 1, 2, 3 days score 1, 2, 3; 4-6 days 4; 7-13 days 5; 14 or more 7
    l_pts = np.select([los < 1, los < 4, los < 7, los < 14], [0, np.floor(los), 4, 5], 7).astype(np.int64)
    a_pts = np.where(_a(acute_admission).astype(bool), 3, 0)
    c = _a(charlson)
    c_pts = np.where(c >= 4, 5, c).astype(np.int64)  # 0-3 score as they are; 4 or more score 5
    e_pts = np.minimum(_a(ed_visits_6m), 4).astype(np.int64)  # 0-3 as they are; 4 or more score 4
    return {"length_of_stay": l_pts, "acute_admission": a_pts, "comorbidity": c_pts, "ed_visits": e_pts}


def lace(length_of_stay_days: ArrayLike, acute_admission: ArrayLike, charlson: ArrayLike,
         ed_visits_6m: ArrayLike) -> np.ndarray:
    """The LACE index, 0-19."""
    return sum(lace_components(length_of_stay_days, acute_admission, charlson, ed_visits_6m).values())


# --------------------------------------------------------------------------------------- HOSPITAL
def hospital_components(hemoglobin_g_dl: ArrayLike, oncology_discharge: ArrayLike, sodium_mmol_l: ArrayLike,
                        procedure: ArrayLike, urgent_admission: ArrayLike, admissions_12m: ArrayLike,
                        length_of_stay_days: ArrayLike) -> dict[str, np.ndarray]:
    """Points for each letter of HOSPITAL (`admissions_12m` counts admissions in the previous year)."""
    adm = _a(admissions_12m)
    return {
        "hemoglobin_below_12": np.where(_a(hemoglobin_g_dl) < 12, 1, 0),
        "oncology_discharge": np.where(_a(oncology_discharge).astype(bool), 2, 0),
        "sodium_below_135": np.where(_a(sodium_mmol_l) < 135, 1, 0),
        "procedure": np.where(_a(procedure).astype(bool), 1, 0),
        "urgent_admission": np.where(_a(urgent_admission).astype(bool), 1, 0),
        "admissions_12m": np.select([adm <= 1, adm <= 5], [0, 2], 5),
        "length_of_stay_5_plus": np.where(_a(length_of_stay_days) >= 5, 2, 0),
    }


def hospital_score(hemoglobin_g_dl: ArrayLike, oncology_discharge: ArrayLike, sodium_mmol_l: ArrayLike,
                   procedure: ArrayLike, urgent_admission: ArrayLike, admissions_12m: ArrayLike,
                   length_of_stay_days: ArrayLike) -> np.ndarray:
    """The HOSPITAL score, 0-13."""
    return sum(hospital_components(hemoglobin_g_dl, oncology_discharge, sodium_mmol_l, procedure, urgent_admission,
                                   admissions_12m, length_of_stay_days).values())


def hospital_category(score: ArrayLike) -> np.ndarray:
    """The paper's risk groups: low (0-4), intermediate (5-6), high (7 or more)."""
    s = _a(score)
    return np.select([s <= 4, s <= 6], ["low", "intermediate"], "high")


# ------------------------------------------------------------------------------------------- SORT
SORT_INTERCEPT = -7.366
SORT_ASA = {1: 0.0, 2: 0.0, 3: 1.411, 4: 2.388, 5: 4.081}
SORT_URGENCY = {"elective": 0.0, "expedited": 1.236, "urgent": 1.657, "immediate": 2.452}
SORT_HIGH_RISK_SPECIALTY = 0.712  # gastrointestinal, thoracic or vascular surgery
SORT_XMAJOR_COMPLEX = 0.381  # surgical severity "Xmajor" or complex (minor to major add nothing)
SORT_CANCER = 0.667
SORT_AGE = ((80, 1.591), (65, 0.777))  # 65-79, and 80 or over


def sort_logit(asa: ArrayLike, urgency: ArrayLike, high_risk_specialty: ArrayLike, xmajor_or_complex: ArrayLike,
               cancer: ArrayLike, age: ArrayLike) -> np.ndarray:
    asa, urgency, age = _a(asa), _a(urgency), _a(age)
    if not np.isin(asa, list(SORT_ASA)).all():
        raise ValueError("ASA physical status is 1 to 5")
    if not np.isin(urgency, list(SORT_URGENCY)).all():
        raise ValueError(f"urgency is one of {', '.join(SORT_URGENCY)}")
    x = SORT_INTERCEPT + np.vectorize(SORT_ASA.get, otypes=[float])(asa)
    x = x + np.vectorize(SORT_URGENCY.get, otypes=[float])(urgency)
    x = x + SORT_HIGH_RISK_SPECIALTY * _a(high_risk_specialty).astype(bool)
    x = x + SORT_XMAJOR_COMPLEX * _a(xmajor_or_complex).astype(bool) + SORT_CANCER * _a(cancer).astype(bool)
    return x + np.select([age >= a for a, _ in SORT_AGE], [b for _, b in SORT_AGE], 0.0)


def sort_mortality(asa: ArrayLike, urgency: ArrayLike, high_risk_specialty: ArrayLike, xmajor_or_complex: ArrayLike,
                   cancer: ArrayLike, age: ArrayLike) -> np.ndarray:
    """Predicted 30-day mortality (a probability) after non-cardiac surgery."""
    return 1.0 / (1.0 + np.exp(-sort_logit(asa, urgency, high_risk_specialty, xmajor_or_complex, cancer, age)))


# ---------------------------------------------------------------------------------------- POSSUM
def p_possum_mortality(physiological_score: ArrayLike, operative_severity_score: ArrayLike) -> np.ndarray:
    """P-POSSUM predicted mortality: logit = -9.065 + 0.1692 PS + 0.1550 OS (PS 12-88, OS 6-44)."""
    ps, os_ = _a(physiological_score), _a(operative_severity_score)
    if np.any((ps < 12) | (ps > 88) | (os_ < 6) | (os_ > 44)):
        raise ValueError("the physiological score runs from 12 to 88 and the operative severity score from 6 to 44")
    return 1.0 / (1.0 + np.exp(-(-9.065 + 0.1692 * ps + 0.1550 * os_)))


def possum_morbidity(physiological_score: ArrayLike, operative_severity_score: ArrayLike) -> np.ndarray:
    """POSSUM predicted morbidity: logit = -5.91 + 0.16 PS + 0.19 OS."""
    ps, os_ = _a(physiological_score), _a(operative_severity_score)
    return 1.0 / (1.0 + np.exp(-(-5.91 + 0.16 * ps + 0.19 * os_)))
