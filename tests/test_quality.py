"""The quality engine finds injected defects, reports them in a stable shape, and is readable."""

import json
from collections import defaultdict

import pytest

from caretwin import Workspace
from caretwin.governance.privacy import pseudonymise
from caretwin.ingest import ingest
from caretwin.model.schema import table
from caretwin.quality import Thresholds, lineage, render_html, run_quality
from caretwin.synth import CountyParams, write_extract

# Which checks answer for each kind of injected defect (by check-name prefix).
FAMILIES = {
    "missing_required": ("required:",),
    "inconsistent_value": ("value_set:",),
    "duplicate_key": ("unique:",),
    "impossible_date": ("row:", "range:"),
    "orphan_foreign_key": ("foreign_key:",),
}


@pytest.fixture(scope="module")
def defective(tmp_path_factory):
    """A synthetic county with 1% of rows defective, loaded with quarantine, and its quality report."""
    extract = write_extract(CountyParams(members=3000, regions=5, months=6, seed=23),
                            tmp_path_factory.mktemp("dq") / "extract", defects=0.01)
    ws = Workspace.create(tmp_path_factory.mktemp("dqws") / "ws")
    ingest(ws, extract.path)
    yield ws, extract.manifest["defects"]["items"], run_quality(ws, keys=True)
    ws.close()


def _expected_key(item, key: bytes) -> str:
    t = table(item["table"])
    k = dict(item["key"])
    if item["column"] in k and item["kind"] != "duplicate_key":  # the defect changed a key column
        k[item["column"]] = item["injected"]
    for c in t.primary_key:
        if t.column(c).pseudonymised and k[c] is not None:
            k[c] = pseudonymise(str(k[c]), key)
    return json.dumps(k, sort_keys=True)


def test_at_least_95_percent_of_each_kind_of_defect_is_found_with_95_percent_precision(defective):
    ws, items, report = defective
    flagged = defaultdict(set)  # kind -> {(table, key)}
    for r in report.results:
        for kind, prefixes in FAMILIES.items():
            if r.check.startswith(prefixes):
                flagged[kind] |= {(r.table, k) for k in r.keys}
    injected = defaultdict(set)
    for it in items:
        injected[it["kind"]].add((it["table"], _expected_key(it, ws.key())))
    scores = {}
    for kind in FAMILIES:
        assert len(injected[kind]) >= 20, f"too few {kind} defects to score"
        found = injected[kind] & flagged[kind]
        recall = len(found) / len(injected[kind])
        precision = len(found) / len(flagged[kind]) if flagged[kind] else 0.0
        scores[kind] = (round(recall, 3), round(precision, 3), len(injected[kind]))
    print("recall, precision, injected by kind:", scores)
    for kind, (recall, precision, _) in scores.items():
        assert recall >= 0.95, (kind, scores)
        assert precision >= 0.95, (kind, scores)


def test_every_result_carries_the_documented_fields(defective):
    _, _, report = defective
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["schema"] == "caretwin.quality/1"
    fields = {"check", "table", "field", "category", "context", "severity", "threshold_pct", "threshold_note",
              "status", "violating", "denominator", "pct", "examples", "repaired", "description", "detail"}
    for r in doc["results"]:
        assert fields <= set(r), r["check"]
        assert r["category"] in ("conformance", "completeness", "plausibility")
        assert r["context"] in ("verification", "validation")
        assert r["severity"] in ("fatal", "convention", "characterisation")
        assert r["status"] in ("pass", "fail", "not_applicable", "error")
    assert doc["summary"]["checks"] == len(doc["results"])


def test_examples_never_show_a_source_identifier(defective):
    _, _, report = defective
    text = json.dumps(report.to_dict())
    assert '"M0' not in text  # synthetic member ids look like M00000001; only pseudonyms may appear


def test_quarantined_rows_count_against_their_rule(defective):
    ws, items, report = defective
    missing = [it for it in items if it["kind"] == "missing_required" and it["table"] == "visits"]
    by_check = {r.check: r for r in report.results}
    for it in missing:
        assert by_check[f"required:visits.{it['column']}"].status == "fail"


def test_thresholds_file_overrides_a_check_and_keeps_its_note(defective, tmp_path):
    ws, _, _ = defective
    f = tmp_path / "thresholds.toml"
    f.write_text('[checks."gap_in_time"]\nthreshold_pct = 100\nnote = "referrals are sparse in small counties"\n')
    report = run_quality(ws, thresholds=Thresholds.load(f))
    gaps = [r for r in report.results if r.check.startswith("gap_in_time:")]
    assert gaps and all(r.status != "fail" for r in gaps)
    assert all("sparse" in r.threshold_note for r in gaps)


def test_a_thresholds_entry_without_a_note_is_refused(tmp_path):
    f = tmp_path / "thresholds.toml"
    f.write_text('[checks."gap_in_time"]\nthreshold_pct = 100\n')
    with pytest.raises(Exception, match="note"):
        Thresholds.load(f)


def test_under_represented_groups_are_flagged_against_a_census_table(workspace, extract_csv, tmp_path):
    ingest(workspace, extract_csv)
    census = tmp_path / "census.csv"
    observed = dict(workspace.con.execute("SELECT sex, count(*) FROM members GROUP BY 1").fetchall())
    n = sum(observed.values())
    # a reference that expects twice as many men as the data has
    male = min(0.95, 2 * observed["male"] / n)
    census.write_text(f"dimension,group,share\nsex,male,{male}\nsex,female,{1 - male}\n")
    report = run_quality(workspace, thresholds=Thresholds.load(None, census))
    by = {r.check: r for r in report.results}
    assert by["representation:members.sex=male"].status == "fail"
    assert by["representation:members.sex=female"].status == "pass"
    assert by["representation:members.sex=male"].detail["ratio"] < 0.8


def test_the_html_report_is_self_contained_and_says_what_failed(defective):
    _, _, report = defective
    page = render_html(report)
    assert "<script src" not in page and "http://" not in page and "https://" not in page
    assert "What failed" in page and "fatal check" in page


def test_lineage_records_inputs_rules_and_row_flow(defective):
    ws, _, _ = defective
    (visits,) = lineage(ws, "visits")
    assert visits["step"] == "ingest" and visits["inputs"][0]["file"].endswith("visits.csv")
    assert visits["rows_in"] >= visits["rows_out"] + visits["rows_quarantined"]
    assert visits["rules"]["schema"] and visits["rules"]["cleanse.exact_duplicate"] == "1"
    (features,) = lineage(ws, "member_features")
    assert features["step"] == "enrich" and {i["table"] for i in features["inputs"]} == {"members", "encounters", "diagnoses"}


def test_a_month_missing_from_a_busy_table_is_a_gap_but_a_quiet_month_is_not(workspace, extract_csv):
    ingest(workspace, extract_csv)
    by = {r.check: r for r in run_quality(workspace).results}
    assert by["gap_in_time:visits"].status == "pass"
    month = workspace.con.execute("""SELECT date_trunc('month', scheduled_date) AS mo FROM visits GROUP BY 1
        QUALIFY mo > min(mo) OVER () AND mo < max(mo) OVER () ORDER BY count(*) DESC LIMIT 1""").fetchone()[0]
    workspace.con.execute("DELETE FROM visits WHERE date_trunc('month', scheduled_date) = ?", [month])
    gap = {r.check: r for r in run_quality(workspace).results}["gap_in_time:visits"]
    assert gap.status == "fail" and gap.examples == [{"month": str(month)[:7]}]


def test_a_provider_feed_that_stops_for_a_month_is_a_gap_for_that_provider(workspace, extract_csv):
    ingest(workspace, extract_csv)
    provider, month = workspace.con.execute("""
        SELECT provider_id, date_trunc('month', scheduled_date) AS m FROM visits GROUP BY ALL
        HAVING m > (SELECT min(scheduled_date) + 40 FROM visits) AND m < (SELECT max(scheduled_date) - 70 FROM visits)
        ORDER BY count(*) DESC LIMIT 1""").fetchone()
    workspace.con.execute("DELETE FROM visits WHERE provider_id = ? AND date_trunc('month', scheduled_date) = ?",
                          [provider, month])
    gap = {r.check: r for r in run_quality(workspace).results}["gap_in_time:visits.by_provider_id"]
    assert {"provider_id": provider, "month": str(month)[:7]} in gap.examples
