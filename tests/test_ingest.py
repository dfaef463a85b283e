"""Loading canonical extracts: all or nothing, located errors, no duplicates, pseudonymised people."""

import json
import re

import duckdb
import pytest

from caretwin import ValidationError, ingest
from caretwin.errors import CaretwinError
from caretwin.governance.privacy import pseudonymise


def manifest_rows(extract):
    return json.loads((extract / "manifest.json").read_text())["rows"]


def source_counts(workspace):
    """Rows in the tables a source can load (derived tables are rebuilt by caretwin)."""
    return {k: v for k, v in workspace.counts().items() if k not in ("claims", "member_features")}


def test_a_clean_extract_loads_every_row(workspace, extract_csv):
    report = ingest(workspace, extract_csv)
    assert source_counts(workspace) == manifest_rows(extract_csv)
    assert report.inserted == manifest_rows(extract_csv)
    assert [ld["load_id"] for ld in workspace.loads()] == [1]


def test_parquet_loads_the_same_rows_as_csv(workspace, extract_parquet, extract_csv):
    ingest(workspace, extract_parquet)
    assert source_counts(workspace) == manifest_rows(extract_csv)


def test_loading_the_same_extract_twice_does_not_duplicate(workspace, extract_csv):
    ingest(workspace, extract_csv)
    second = ingest(workspace, extract_csv)
    assert source_counts(workspace) == manifest_rows(extract_csv)
    assert sum(second.inserted.values()) == 0
    assert second.replaced == manifest_rows(extract_csv)
    assert len(workspace.loads()) == 2


def test_member_ids_are_pseudonymised_with_the_workspace_key(workspace, extract_csv):
    ingest(workspace, extract_csv)
    stored = {r[0] for r in workspace.con.execute("SELECT member_id FROM members").fetchall()}
    assert pseudonymise("M00000001", workspace.key()) in stored
    assert not any(re.fullmatch(r"M\d+", s) for s in stored)
    orphans = workspace.con.execute(
        "SELECT count(*) FROM visits WHERE member_id NOT IN (SELECT member_id FROM members)"
    ).fetchone()[0]
    assert orphans == 0  # every table's member_id was hashed with the same key


def _corrupt(path, row, column, value):
    """Set one field of a CSV data row (1-based) by rewriting the file with DuckDB-free text edits."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "table, row, column, value, reason",
    [
        ("encounters", 5, "admit_date", "2024-02-30", "not a valid date"),
        ("members", 9, "birth_year", "nineteen", "not a valid integer"),
        ("visits", 12, "hours", "1.5h", "not a valid float"),
        ("members", 3, "sex", "Q", "not one of"),
        ("visits", 4, "status", "", "required value is missing"),
        ("authorizations", 2, "end_date", "1999-01-01", "end_date is before start_date"),
        ("visits", 7, "provider_id", "P99999", "refers to no row of providers"),
    ],
)
def test_a_corrupted_field_is_refused_with_its_location(workspace, editable_extract, table, row, column, value, reason):
    _corrupt(editable_extract / f"{table}.csv", row, column, value)
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract, on_error="reject")
    hits = [p for p in err.value.problems if p.file.endswith(f"{table}.csv") and p.row == row]
    assert hits, err.value
    assert reason in hits[0].reason
    assert hits[0].column in (column, None)
    assert sum(source_counts(workspace).values()) == 0


def test_a_missing_required_column_is_named(workspace, editable_extract):
    path = editable_extract / "providers.csv"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * EXCLUDE (service_line) FROM read_csv('{path}', all_varchar=true)) TO '{path}' (HEADER)")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract, on_error="reject")
    assert any(p.column == "service_line" and "missing from the header" in p.reason for p in err.value.problems)


def _append_copy_of_row(path, row, change=None):
    lines = path.read_text().splitlines()
    copy = lines[row]
    if change:
        copy = copy.replace(*change, 1)
    lines.append(copy)
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def test_an_exact_duplicate_row_is_dropped_and_logged_as_a_repair(workspace, editable_extract, extract_csv):
    _append_copy_of_row(editable_extract / "referrals.csv", 3)
    report = ingest(workspace, editable_extract, on_error="reject")
    assert source_counts(workspace) == manifest_rows(extract_csv)
    assert report.repaired == {"referrals": 1}
    (rule,) = workspace.con.execute("SELECT rule FROM _repairs").fetchone()
    assert rule == "exact_duplicate"


def test_conflicting_duplicate_keys_point_at_both_rows(workspace, editable_extract):
    row = (editable_extract / "referrals.csv").read_text().splitlines()[3]
    status = row.rsplit(",", 1)[1]
    last = _append_copy_of_row(editable_extract / "referrals.csv", 3, change=("," + status, ",withdrawn" if status != "withdrawn" else ",closed"))
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract, on_error="reject")
    (dup,) = [p for p in err.value.problems if "duplicate key" in p.reason]
    assert dup.row == last and "same as row 3" in dup.reason


def test_rows_that_break_rules_are_quarantined_with_reasons_and_the_rest_load(workspace, editable_extract, extract_csv):
    _corrupt(editable_extract / "members.csv", 9, "birth_year", "nineteen")
    _corrupt(editable_extract / "visits.csv", 4, "status", "")
    report = ingest(workspace, editable_extract)
    expected = manifest_rows(extract_csv)
    assert report.quarantined["visits"] >= 1
    assert workspace.counts()["members"] == expected["members"] - 1
    rows = workspace.con.execute(
        "SELECT table_name, source_row, rules, reason, record FROM _quarantine ORDER BY table_name, source_row").fetchall()
    by_rule = {rule: (table, row, reason, record) for table, row, rules, reason, record in rows for rule in rules}
    assert by_rule["type:members.birth_year"][:2] == ("members", 9)
    assert by_rule["required:visits.status"][:2] == ("visits", 4)
    # the quarantined member's own rows follow it, marked as a cascade rather than as new defects
    cascades = [r for r in rows if any(x.startswith("foreign_key_cascade:") for x in r[2])]
    member = json.loads(by_rule["type:members.birth_year"][3])["member_id"]
    assert member.startswith("p_")  # stored pseudonymised even in quarantine
    assert all(json.loads(r[4])["member_id"] == member for r in cascades)
    assert sum(source_counts(workspace).values()) + sum(report.quarantined.values()) == sum(expected.values())


def test_misspelt_codes_are_repaired_when_unambiguous(workspace, editable_extract, extract_csv):
    _corrupt(editable_extract / "providers.csv", 2, "service_line", "Home Health")
    _corrupt(editable_extract / "encounters.csv", 3, "primary_diagnosis", "e119")
    report = ingest(workspace, editable_extract, on_error="reject")
    assert report.repaired == {"providers": 1, "encounters": 1}
    fixes = dict(workspace.con.execute("SELECT rule, after FROM _repairs").fetchall())
    assert fixes == {"value_set_spelling": "home_health", "icd10_dot": "E11.9"}


def test_a_failed_load_leaves_earlier_loads_untouched(workspace, extract_csv, editable_extract):
    ingest(workspace, extract_csv)
    before = workspace.counts()
    _corrupt(editable_extract / "members.csv", 1, "enrollment_start", "01/02/2024")
    with pytest.raises(ValidationError):
        ingest(workspace, editable_extract, on_error="reject")
    assert workspace.counts() == before
    assert len(workspace.loads()) == 1


def test_errors_list_many_problems_up_to_the_limit(workspace, editable_extract):
    for row in range(1, 30):
        _corrupt(editable_extract / "visits.csv", row, "hours", "x")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract, error_limit=10, on_error="reject")
    assert len(err.value.problems) == 10 and err.value.truncated


def test_person_identifiers_never_appear_in_error_messages(workspace, editable_extract):
    _corrupt(editable_extract / "visits.csv", 3, "member_id", "M77777777")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract, on_error="reject")
    assert "M77777777" not in str(err.value)
    assert any(p.column == "member_id" and p.row == 3 for p in err.value.problems)


def test_malformed_csv_rows_are_located(workspace, editable_extract):
    path = editable_extract / "regions.csv"
    lines = path.read_text().splitlines()
    lines[2] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract, on_error="reject")
    assert any(p.row == 2 and "malformed" in p.reason for p in err.value.problems)


def test_a_malformed_line_is_quarantined_by_place_without_its_content(workspace, editable_extract):
    # a members line that cannot be parsed still holds a raw member id; quarantine keeps its file, line and reason
    path = editable_extract / "members.csv"
    lines = path.read_text().splitlines()
    raw_id = lines[3].split(",")[0]
    lines[3] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    ingest(workspace, editable_extract)
    rows = workspace.con.execute("SELECT source_row, rules, reason, record FROM _quarantine WHERE table_name = 'members'"
                                 ).fetchall()
    assert any(row == 3 and rules == ["malformed:members"] for row, rules, _, _ in rows), rows
    assert not any(raw_id in str(r) for r in rows)


def test_a_quote_that_never_closes_refuses_the_file_at_its_row_instead_of_losing_the_rest(workspace, editable_extract):
    path = editable_extract / "members.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",", ',"', 1)  # row 2's birth year opens a quote that nothing closes
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract)  # even when bad rows would be quarantined
    hit = next(p for p in err.value.problems if p.file.endswith("members.csv"))
    assert hit.row == 2 and f"the {len(lines) - 3:,} lines after it would be lost" in hit.reason
    assert sum(source_counts(workspace).values()) == 0


@pytest.mark.parametrize("value", ["inf", "-Infinity", "NaN"])
def test_a_capacity_that_is_not_a_finite_number_is_quarantined_with_its_reason(workspace, editable_extract, value):
    _corrupt(editable_extract / "providers.csv", 1, "capacity", value)
    report = ingest(workspace, editable_extract)
    assert report.quarantined["providers"] == 1
    (reason,) = workspace.con.execute("SELECT reason FROM _quarantine WHERE table_name = 'providers'").fetchone()
    assert "not a finite number" in reason
    assert workspace.con.execute("SELECT count(*) FROM providers WHERE NOT isfinite(capacity)").fetchone() == (0,)


def test_a_symbolic_link_in_the_source_is_refused_unless_asked(workspace, editable_extract, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    (editable_extract / "complaints.csv").rename(outside)
    (editable_extract / "complaints.csv").symlink_to(outside)
    with pytest.raises(CaretwinError, match="complaints.csv: a symbolic link"):
        ingest(workspace, editable_extract)
    assert sum(source_counts(workspace).values()) == 0
    assert ingest(workspace, editable_extract, follow_links=True).inserted["complaints"] > 0


def test_a_gzip_that_expands_past_reason_is_refused_before_it_is_read(workspace, editable_extract):
    import gzip

    bomb = editable_extract / "complaints.csv.gz"
    (editable_extract / "complaints.csv").unlink()
    with gzip.open(bomb, "wb", compresslevel=9) as fh:  # about 300 MiB of zeros in well under a megabyte
        fh.write((editable_extract / "members.csv").read_text().splitlines()[0].encode() + b"\n")
        for _ in range(300):
            fh.write(b"\0" * (1 << 20))
    assert bomb.stat().st_size < (1 << 20)
    with pytest.raises(CaretwinError, match="decompression bomb"):
        ingest(workspace, editable_extract)
    assert sum(source_counts(workspace).values()) == 0
