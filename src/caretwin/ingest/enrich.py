"""Enrichment: derived tables rebuilt after every load, with their lineage.

`member_features` holds, per member: age and age band on the reference day, the Charlson
index (both weightings) from ICD-10 diagnoses, prior-year utilisation counts, and an
acuity tier: the source's when it has one, else derived by `ACUITY_RULE`.
"""

from __future__ import annotations

import json

import pyarrow as pa

from caretwin.governance.audit import Actor, audited
from caretwin.ingest.canonical import _record_lineage
from caretwin.model import comorbidity
from caretwin.model.schema import AGE_BANDS
from caretwin.workspace import Workspace

ACUITY_RULE = ("acuity/1", "points = Charlson index (1987) + admissions in the prior year + half the ED visits "
               "(rounded down) + 2 per crisis episode + 1 when aged 75 or over; tier 1 for 0 points, 2 for 1-2, "
               "3 for 3-4, 4 for 5 or more")
_BANDS = [(0, 17), (18, 44), (45, 64), (65, 74), (75, 84), (85, 200)]


def _band_sql(age: str) -> str:
    cases = " ".join(f"WHEN {age} <= {hi} THEN '{label}'" for (_, hi), label in zip(_BANDS, AGE_BANDS))
    return f"CASE {cases} END"


def enrich(ws: Workspace, load_id: int, *, actor: Actor | None = None) -> int:
    """Rebuild `member_features` (recorded in the audit trail); returns its rows."""
    con = ws.con
    con.register("_charlson_prefix", pa.table(dict(zip(
        ("prefix", "category", "w1987", "w2011"), map(list, zip(*comorbidity.prefix_rows()))))))
    hierarchy = " OR ".join(f"(category = '{mild}' AND has_{i})" for i, (mild, _) in enumerate(comorbidity.HIERARCHY))
    flags = ", ".join(f"bool_or(category = '{severe}') OVER (PARTITION BY member_id) AS has_{i}"
                      for i, (_, severe) in enumerate(comorbidity.HIERARCHY))
    sql = f"""
    WITH as_of AS (
        SELECT coalesce(greatest(
            (SELECT max(coalesce(discharge_date, admit_date)) FROM encounters),
            (SELECT max(scheduled_date) FROM visits),
            (SELECT max(received_date) FROM referrals)), (SELECT max(enrollment_start) FROM members), current_date) AS d
    ),
    codes AS (
        SELECT member_id, replace(upper(code), '.', '') AS c FROM diagnoses WHERE code_system = 'icd10cm'
        UNION ALL
        SELECT member_id, replace(upper(primary_diagnosis), '.', '') FROM encounters WHERE primary_diagnosis IS NOT NULL
    ),
    cats AS (
        SELECT DISTINCT member_id, coalesce(p4.category, p3.category) AS category,
               coalesce(p4.w1987, p3.w1987) AS w1987, coalesce(p4.w2011, p3.w2011) AS w2011
        FROM codes LEFT JOIN _charlson_prefix p4 ON p4.prefix = left(c, 4) LEFT JOIN _charlson_prefix p3 ON p3.prefix = left(c, 3)
        WHERE coalesce(p4.category, p3.category) IS NOT NULL
    ),
    charlson AS (
        SELECT member_id, sum(w1987) AS c1987, sum(w2011) AS c2011
        FROM (SELECT *, {flags} FROM cats) WHERE NOT ({hierarchy}) GROUP BY member_id
    ),
    coded AS (SELECT member_id, count(*) AS n FROM codes GROUP BY member_id),
    use AS (
        SELECT member_id,
               count(*) FILTER (WHERE encounter_class = 'emergency') AS ed,
               count(*) FILTER (WHERE encounter_class = 'inpatient') AS adm,
               count(*) FILTER (WHERE encounter_class = 'crisis') AS crisis
        FROM encounters, as_of WHERE admit_date > as_of.d - INTERVAL 365 DAY AND admit_date <= as_of.d GROUP BY member_id
    ),
    base AS (
        SELECT m.member_id, as_of.d AS as_of, greatest(year(as_of.d) - m.birth_year, 0) AS age, m.acuity_tier AS source_tier,
               coalesce(ch.c1987, 0) AS charlson_index, coalesce(ch.c2011, 0) AS charlson_quan,
               coalesce(coded.n, 0) AS coded_diagnoses, coalesce(u.ed, 0) AS ed_visits_12m,
               coalesce(u.adm, 0) AS admissions_12m, coalesce(u.crisis, 0) AS crisis_episodes_12m
        FROM members m CROSS JOIN as_of LEFT JOIN charlson ch USING (member_id) LEFT JOIN coded USING (member_id)
        LEFT JOIN use u USING (member_id)
    )
    SELECT member_id, CAST(as_of AS DATE), age, {_band_sql('age')} AS age_band, charlson_index, charlson_quan,
           coded_diagnoses, ed_visits_12m, admissions_12m, crisis_episodes_12m,
           coalesce(source_tier, CASE
               WHEN pts = 0 THEN 1 WHEN pts <= 2 THEN 2 WHEN pts <= 4 THEN 3 ELSE 4 END) AS acuity_tier,
           CASE WHEN source_tier IS NULL THEN 'derived' ELSE 'source' END AS acuity_source
    FROM (SELECT *, charlson_index + admissions_12m + ed_visits_12m // 2 + 2 * crisis_episodes_12m
                    + CASE WHEN age >= 75 THEN 1 ELSE 0 END AS pts FROM base)
    """
    inputs = [{"table": t, "rows": n} for t, n in ws.counts().items() if t in ("members", "encounters", "diagnoses")]
    with audited(ws, actor, kind="change", action="U", subtype="data.enrich", entity_type="table",
                 entity_id="member_features", detail={"load": load_id}) as event, ws.transaction():
        con.execute("DELETE FROM member_features")
        n = con.execute(f"INSERT INTO member_features {sql}").fetchone()[0]
        _record_lineage(con, load_id, "member_features", inputs, sum(int(i["rows"]) for i in inputs), int(n), 0, 0,
                        step="enrich", rules={"charlson": comorbidity.RULES_VERSION, "acuity": ACUITY_RULE[0],
                                              "age_bands": json.dumps(AGE_BANDS)})
        event.record()
    con.unregister("_charlson_prefix")
    return int(n)
