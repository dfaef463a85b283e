"""Charlson comorbidity index from ICD-10 diagnosis codes.

Categories use the ICD-10 coding algorithm of Quan H, Sundararajan V, Halfon P, et al.
"Coding algorithms for defining comorbidities in ICD-9-CM and ICD-10 administrative data",
Med Care 2005;43(11):1130-9 (Table 1, Charlson column). Weights: Charlson ME, Pompei P,
Ales KL, MacKenzie CR, J Chronic Dis 1987;40(5):373-83; and the updated weights of
Quan H, Li B, Couris CM, et al., Am J Epidemiol 2011;173(6):676-82.

A condition counts once however many codes show it, and in the three hierarchy pairs
(mild / moderate-severe liver disease, diabetes without / with chronic complications,
any malignancy / metastatic solid tumour) only the more severe member counts.
"""

from __future__ import annotations

from collections.abc import Iterable

RULES_VERSION = "quan2005-icd10/1"


def _span(stem: str, first: int, last: int) -> list[str]:
    """`_span("I42", 5, 9)` -> I425..I429; `_span("I6", 0, 9)` -> I60..I69."""
    return [f"{stem}{i}" for i in range(first, last + 1)]


def _letters(letter: str, first: int, last: int) -> list[str]:
    """Three-character codes C00..C26 as `_letters("C", 0, 26)`."""
    return [f"{letter}{i:02d}" for i in range(first, last + 1)]


# Dotless prefixes (three or four characters) for each category.
CATEGORIES: dict[str, list[str]] = {
    "myocardial_infarction": ["I21", "I22", "I252"],
    "congestive_heart_failure": ["I099", "I110", "I130", "I132", "I255", "I420", *_span("I42", 5, 9), "I43", "I50", "P290"],
    "peripheral_vascular_disease": ["I70", "I71", "I731", "I738", "I739", "I771", "I790", "I792", "K551", "K558", "K559",
                                    "Z958", "Z959"],
    "cerebrovascular_disease": ["G45", "G46", "H340", *_letters("I", 60, 69)],
    "dementia": ["F00", "F01", "F02", "F03", "F051", "G30", "G311"],
    "chronic_pulmonary_disease": ["I278", "I279", *_letters("J", 40, 47), *_letters("J", 60, 67), "J684", "J701", "J703"],
    "rheumatic_disease": ["M05", "M06", "M315", "M32", "M33", "M34", "M351", "M353", "M360"],
    "peptic_ulcer_disease": ["K25", "K26", "K27", "K28"],
    "mild_liver_disease": ["B18", *_span("K70", 0, 3), "K709", *_span("K71", 3, 5), "K717", "K73", "K74", "K760",
                           *_span("K76", 2, 4), "K768", "K769", "Z944"],
    "diabetes_without_complication": [f"E1{t}{d}" for t in range(5) for d in (0, 1, 6, 8, 9)],
    "diabetes_with_complication": [f"E1{t}{d}" for t in range(5) for d in (2, 3, 4, 5, 7)],
    "hemiplegia_paraplegia": ["G041", "G114", "G801", "G802", "G81", "G82", *_span("G83", 0, 4), "G839"],
    "renal_disease": ["I120", "I131", *_span("N03", 2, 7), *_span("N05", 2, 7), "N18", "N19", "N250",
                      *_span("Z49", 0, 2), "Z940", "Z992"],
    "malignancy": [*_letters("C", 0, 26), *_letters("C", 30, 34), *_letters("C", 37, 41), "C43", *_letters("C", 45, 58),
                   *_letters("C", 60, 76), *_letters("C", 81, 85), "C88", *_letters("C", 90, 97)],
    "moderate_severe_liver_disease": ["I850", "I859", "I864", "I982", "K704", "K711", "K721", "K729", "K765", "K766",
                                      "K767"],
    "metastatic_solid_tumor": ["C77", "C78", "C79", "C80"],
    "aids_hiv": ["B20", "B21", "B22", "B24"],
}

WEIGHTS: dict[str, dict[str, int]] = {
    "charlson1987": {
        "myocardial_infarction": 1, "congestive_heart_failure": 1, "peripheral_vascular_disease": 1,
        "cerebrovascular_disease": 1, "dementia": 1, "chronic_pulmonary_disease": 1, "rheumatic_disease": 1,
        "peptic_ulcer_disease": 1, "mild_liver_disease": 1, "diabetes_without_complication": 1,
        "diabetes_with_complication": 2, "hemiplegia_paraplegia": 2, "renal_disease": 2, "malignancy": 2,
        "moderate_severe_liver_disease": 3, "metastatic_solid_tumor": 6, "aids_hiv": 6,
    },
    "quan2011": {
        "myocardial_infarction": 0, "congestive_heart_failure": 2, "peripheral_vascular_disease": 0,
        "cerebrovascular_disease": 0, "dementia": 2, "chronic_pulmonary_disease": 1, "rheumatic_disease": 1,
        "peptic_ulcer_disease": 0, "mild_liver_disease": 2, "diabetes_without_complication": 0,
        "diabetes_with_complication": 1, "hemiplegia_paraplegia": 2, "renal_disease": 1, "malignancy": 2,
        "moderate_severe_liver_disease": 4, "metastatic_solid_tumor": 6, "aids_hiv": 4,
    },
}

# (milder, more severe): when both are present only the more severe counts.
HIERARCHY = (
    ("mild_liver_disease", "moderate_severe_liver_disease"),
    ("diabetes_without_complication", "diabetes_with_complication"),
    ("malignancy", "metastatic_solid_tumor"),
)

_PREFIX: dict[str, str] = {p: cat for cat, prefixes in CATEGORIES.items() for p in prefixes}


def normalise_icd10(code: str) -> str:
    """Upper case, no dot, no spaces: 'e11.65 ' -> 'E1165'."""
    return code.strip().upper().replace(".", "")


def category(code: str) -> str | None:
    """The Charlson category an ICD-10 code falls in, or None."""
    c = normalise_icd10(code)
    return _PREFIX.get(c[:4]) or _PREFIX.get(c[:3])


def comorbidities(codes: Iterable[str]) -> set[str]:
    """The Charlson categories shown by `codes`, after the hierarchy rules."""
    found = {cat for cat in map(category, codes) if cat}
    for milder, severe in HIERARCHY:
        if severe in found:
            found.discard(milder)
    return found


def charlson_index(codes: Iterable[str], weights: str = "charlson1987") -> int:
    """The Charlson comorbidity index (without the age component) of a person's ICD-10 codes."""
    try:
        w = WEIGHTS[weights]
    except KeyError:
        raise ValueError(f"unknown weights {weights!r}; choose one of: {', '.join(WEIGHTS)}") from None
    return sum(w[cat] for cat in comorbidities(codes))


def prefix_rows() -> list[tuple[str, str, int, int]]:
    """(prefix, category, weight 1987, weight 2011) rows, to compute the index in SQL."""
    return [(p, cat, WEIGHTS["charlson1987"][cat], WEIGHTS["quan2011"][cat]) for p, cat in _PREFIX.items()]
