"""30-day readmission on the real UCI diabetes data (130 US hospitals, 1999-2008): held-out AUC and equity.

    python benchmarks/uci_readmission.py [--data ../shared/data/uci_diabetes/diabetic_data.csv.gz] [--seed 0]

Prints figures; asserts nothing. Target (issue 7): held-out AUC >= 0.67 (public baselines 0.63-0.68;
above about 0.72 suspect leakage). Guards against leakage: the split is by patient (no patient on both
sides); encounters that ended in death or hospice are left out (they cannot be readmitted); the only
history used is what came before the encounter (earlier encounters of the same patient, in encounter order).
Data: Strack B, DeShazo JP, Gennings C, et al. BioMed Res Int 2014:781670 (UCI, CC BY 4.0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb
import numpy as np

from caretwin.risk.evaluate import equity, evaluate, grouped_split
from caretwin.risk.models import BoostedRisk, LogisticRisk, calibrated

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci_diabetes" / "diabetic_data.csv.gz"
DEATH_OR_HOSPICE = (11, 13, 14, 19, 20, 21)  # discharge_disposition_id: expired, hospice (IDs_mapping.csv)
NUMERIC = ("prior_encounters", "time_in_hospital", "num_lab_procedures", "num_procedures", "num_medications",
           "number_outpatient", "number_emergency", "number_inpatient", "number_diagnoses")
CATEGORICAL = ("race", "gender", "age", "admission_type_id", "discharge_disposition_id", "admission_source_id",
               "payer_code", "medical_specialty", "max_glu_serum", "A1Cresult", "change", "diabetesMed", "insulin",
               "metformin", "diag_1_group", "diag_2_group", "diag_3_group", "diag_1_code")


def _icd9_group(col: str) -> str:
    """ICD-9 chapters as grouped in Strack et al. 2014 (Table 2)."""
    v = f"TRY_CAST(regexp_extract({col}, '^([0-9]+)', 1) AS INTEGER)"
    return f"""CASE
        WHEN {col} LIKE '250%' THEN 'diabetes'
        WHEN {v} BETWEEN 390 AND 459 OR {v} = 785 THEN 'circulatory'
        WHEN {v} BETWEEN 460 AND 519 OR {v} = 786 THEN 'respiratory'
        WHEN {v} BETWEEN 520 AND 579 OR {v} = 787 THEN 'digestive'
        WHEN {v} BETWEEN 800 AND 999 THEN 'injury'
        WHEN {v} BETWEEN 710 AND 739 THEN 'musculoskeletal'
        WHEN {v} BETWEEN 580 AND 629 OR {v} = 788 THEN 'genitourinary'
        WHEN {v} BETWEEN 140 AND 239 THEN 'neoplasms'
        WHEN {col} IS NULL THEN 'missing'
        ELSE 'other' END"""


def load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray], list[str]]:
    """Features (categorical columns as integer codes), outcome, patient ids, sensitive attributes, column names."""
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE enc AS SELECT * FROM read_csv('{path}', all_varchar=true, nullstr='?')""")
    top = "(SELECT substr(diag_1, 1, 3) FROM enc GROUP BY 1 ORDER BY count(*) DESC LIMIT 200)"
    rows = con.execute(f"""
        SELECT patient_nbr, readmitted = '<30' AS y,
               row_number() OVER (PARTITION BY patient_nbr ORDER BY encounter_id::BIGINT) - 1 AS prior_encounters,
               {", ".join(f"{c}::DOUBLE AS {c}" for c in NUMERIC[1:])},
               {", ".join(f"coalesce({c}, 'missing') AS {c}" for c in CATEGORICAL[:14])},
               {_icd9_group("diag_1")} AS diag_1_group, {_icd9_group("diag_2")} AS diag_2_group,
               {_icd9_group("diag_3")} AS diag_3_group,
               CASE WHEN substr(diag_1, 1, 3) IN {top} THEN substr(diag_1, 1, 3) ELSE 'other' END AS diag_1_code
        FROM enc
        QUALIFY discharge_disposition_id::INTEGER NOT IN {DEATH_OR_HOSPICE}
        ORDER BY encounter_id::BIGINT""").fetchnumpy()
    y = rows["y"].astype(int)
    X = np.column_stack([rows[c].astype(float) for c in NUMERIC]
                        + [np.unique(rows[c].astype(str), return_inverse=True)[1].astype(float) for c in CATEGORICAL])
    sensitive = {"race": rows["race"].astype(str), "sex": rows["gender"].astype(str), "age_band": rows["age"].astype(str)}
    return X, y, rows["patient_nbr"].astype(str), sensitive, list(NUMERIC + CATEGORICAL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()
    X, y, patients, sensitive, names = load(a.data)
    cat = [names.index(c) for c in CATEGORICAL]
    train, test = grouped_split(patients, test_size=0.25, random_state=a.seed)
    assert not set(patients[train]) & set(patients[test])
    print(f"{len(y):,} encounters of {len(set(patients)):,} patients (deaths and hospice discharges left out); "
          f"readmitted within 30 days: {y.mean():.1%}; test set {len(test):,} encounters, no patient in both sets "
          f"({time.perf_counter() - t0:.1f} s to load)")
    fits = {"LogisticRisk": lambda: LogisticRisk(categorical_features=cat, random_state=a.seed).fit(X[train], y[train]),
            "BoostedRisk": lambda: BoostedRisk(categorical_features=cat, random_state=a.seed).fit(X[train], y[train]),
            "BoostedRisk, isotonic calibration (3 patient-grouped folds)": lambda: calibrated(
                BoostedRisk(n_members=2, categorical_features=cat, random_state=a.seed), X[train], y[train],
                patients[train])}
    for name, fit in fits.items():
        t1 = time.perf_counter()
        p = fit().predict_proba(X[test])[:, 1]
        ev = evaluate(y[test], p, patients[test], n_boot=100, random_state=a.seed)
        print(f"\n{name} (fit and score in {time.perf_counter() - t1:.1f} s)")
        for metric, est in ev.items():
            print(f"  {metric:<24}{est}")
    threshold = float(np.quantile(p, 0.8))  # operating point: the top 20% of predicted risk are flagged
    print(f"\nequity, calibrated BoostedRisk, operating threshold {threshold:.3f} (top 20% flagged); bootstrap 95% intervals")
    print(f"  {'group':<26}{'train share':>12}{'n':>8}   {'AUC':<24}{'calibration gap':<26}false-negative rate")
    training = {k: v[train] for k, v in sensitive.items()}
    for r in equity(y[test], p, {k: v[test] for k, v in sensitive.items()}, threshold=threshold,
                    persons=patients[test], training=training, n_boot=100, random_state=a.seed):
        print(f"  {r.feature + '=' + r.group:<26}{r.share_of_training:>12.1%}{r.n:>8,}   {r.auc.short():<24}"
              f"{r.calibration_in_the_large.short():<26}{r.false_negative_rate.short()}"
              + ("  FLAG: calibration gap" if r.flagged else ""))


if __name__ == "__main__":
    main()
