"""Derived member features: Charlson index (Quan 2005 codes, two weightings), age bands, use, acuity."""

import csv

import pytest

from caretwin import Workspace
from caretwin.governance.privacy import pseudonymise
from caretwin.ingest import ingest
from caretwin.model import SCHEMA_VERSION, comorbidity
from caretwin.model.comorbidity import charlson_index, comorbidities


def test_no_code_prefix_belongs_to_two_categories():
    seen = {}
    for cat, prefixes in comorbidity.CATEGORIES.items():
        for p in prefixes:
            assert seen.setdefault(p, cat) == cat, p
            assert 3 <= len(p) <= 4


@pytest.mark.parametrize("codes, w1987, w2011", [
    ([], 0, 0),
    (["I21.4"], 1, 0),                       # myocardial infarction: 1 (1987), 0 (2011)
    (["I50.9", "I50.1"], 1, 2),              # heart failure counted once
    (["E11.9"], 1, 0),                       # diabetes without complications
    (["E11.9", "E11.22"], 2, 1),             # with complications: only the more severe counts
    (["K70.30", "K72.10"], 3, 4),            # mild + moderate/severe liver: severe only
    (["C18.9", "C78.00"], 6, 6),             # malignancy + metastatic: metastatic only
    (["B20", "F03.90", "J44.1", "N18.3"], 6 + 1 + 1 + 2, 4 + 2 + 1 + 1),
    (["e119"], 1, 0),                        # case and dot do not matter
    (["Z00.00", "S72.001A"], 0, 0),          # codes in no category
])
def test_charlson_index_with_both_weightings(codes, w1987, w2011):
    assert charlson_index(codes) == w1987
    assert charlson_index(codes, "quan2011") == w2011


def test_all_seventeen_conditions_reach_the_published_maxima():
    one_each = [prefixes[0] for prefixes in comorbidity.CATEGORIES.values()]
    assert len(comorbidities(one_each)) == 17 - 3  # three hierarchy pairs keep their severe member
    # Quan 2011: the maximum updated score is 24 (Am J Epidemiol 2011;173:676-82, Table 3)
    assert charlson_index(one_each, "quan2011") == 24
    assert charlson_index(one_each) == 1 * 8 + 2 * 3 + 3 + 6 + 6  # 1987 weights, severe members of the pairs


def test_unknown_weights_are_refused():
    with pytest.raises(ValueError, match="quan2011"):
        charlson_index(["I21"], "elixhauser")


def test_member_features_agree_with_the_python_charlson_and_the_encounters(workspace, extract_csv):
    ingest(workspace, extract_csv)
    con = workspace.con
    assert workspace.counts()["member_features"] == workspace.counts()["members"]
    codes = {}
    for m, c in con.execute("SELECT member_id, code FROM diagnoses WHERE code_system = 'icd10cm'").fetchall():
        codes.setdefault(m, []).append(c)
    got = dict(con.execute("SELECT member_id, charlson_index FROM member_features").fetchall())
    got2011 = dict(con.execute("SELECT member_id, charlson_quan FROM member_features").fetchall())
    for m, cs in codes.items():
        assert got[m] == charlson_index(cs), m
        assert got2011[m] == charlson_index(cs, "quan2011"), m
    assert any(v > 0 for v in got.values())
    ed = con.execute("""SELECT count(*) FROM encounters, (SELECT max(as_of) d FROM member_features)
                        WHERE encounter_class = 'emergency' AND admit_date > d - 365 AND admit_date <= d""").fetchone()[0]
    assert con.execute("SELECT sum(ed_visits_12m) FROM member_features").fetchone()[0] == ed
    # the synthetic county states acuity, so none is derived
    assert con.execute("SELECT DISTINCT acuity_source FROM member_features").fetchall() == [("source",)]


def test_acuity_is_derived_when_the_source_has_none(workspace, editable_extract):
    path = editable_extract / "members.csv"
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        r["acuity_tier"] = ""
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ingest(workspace, editable_extract)
    tiers = dict(workspace.con.execute(
        "SELECT acuity_tier, count(*) FROM member_features WHERE acuity_source = 'derived' GROUP BY 1").fetchall())
    assert sum(tiers.values()) == len(rows) and len(tiers) >= 2
    member = pseudonymise(rows[0]["member_id"], workspace.key())
    band, age = workspace.con.execute("SELECT age_band, age FROM member_features WHERE member_id = ?", [member]).fetchone()
    lo, _, hi = band.partition("-")
    assert int(lo.rstrip("+")) <= age <= (int(hi) if hi else 200)


def test_a_workspace_of_schema_1_0_is_migrated_on_open(tmp_path):
    ws = Workspace.create(tmp_path / "old")
    con = ws.con
    for t in ("diagnoses", "claims", "member_features", "_quarantine", "_repairs", "_lineage"):
        con.execute(f"DROP TABLE {t}")
    con.execute("ALTER TABLE _loads DROP COLUMN details")
    con.execute("ALTER TABLE regions ALTER population SET NOT NULL")
    ws.close()
    cfg = (tmp_path / "old" / "caretwin.toml")
    cfg.write_text(cfg.read_text().replace(f'schema_version = "{SCHEMA_VERSION}"', 'schema_version = "1.0.0"'))
    with Workspace.open(tmp_path / "old") as again:
        assert {"diagnoses", "claims", "member_features"} <= set(again.counts())
        again.con.execute("INSERT INTO regions VALUES ('R1', 'One', 'unknown', NULL, NULL, NULL)")
    assert f'schema_version = "{SCHEMA_VERSION}"' in cfg.read_text()
