"""Loading canonical extracts: all or nothing, located errors, no duplicates, pseudonymised people."""

import json
import re

import duckdb
import pytest

from caretwin import ValidationError, ingest
from caretwin.governance.privacy import pseudonymise


def manifest_rows(extract):
    return json.loads((extract / "manifest.json").read_text())["rows"]


def test_a_clean_extract_loads_every_row(workspace, extract_csv):
    report = ingest(workspace, extract_csv)
    assert workspace.counts() == manifest_rows(extract_csv)
    assert report.inserted == manifest_rows(extract_csv)
    assert [ld["load_id"] for ld in workspace.loads()] == [1]


def test_parquet_loads_the_same_rows_as_csv(workspace, extract_parquet, extract_csv):
    ingest(workspace, extract_parquet)
    assert workspace.counts() == manifest_rows(extract_csv)


def test_loading_the_same_extract_twice_does_not_duplicate(workspace, extract_csv):
    ingest(workspace, extract_csv)
    second = ingest(workspace, extract_csv)
    assert workspace.counts() == manifest_rows(extract_csv)
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
        ingest(workspace, editable_extract)
    hits = [p for p in err.value.problems if p.file.endswith(f"{table}.csv") and p.row == row]
    assert hits, err.value
    assert reason in hits[0].reason
    assert hits[0].column in (column, None)
    assert sum(workspace.counts().values()) == 0


def test_a_missing_required_column_is_named(workspace, editable_extract):
    path = editable_extract / "providers.csv"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * EXCLUDE (service_line) FROM read_csv('{path}', all_varchar=true)) TO '{path}' (HEADER)")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract)
    assert any(p.column == "service_line" and "missing from the header" in p.reason for p in err.value.problems)


def test_duplicate_keys_point_at_both_rows(workspace, editable_extract):
    path = editable_extract / "referrals.csv"
    lines = path.read_text().splitlines()
    lines.append(lines[3])  # data row 3 again, as the last row
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract)
    (dup,) = [p for p in err.value.problems if "duplicate key" in p.reason]
    assert dup.row == len(lines) - 1 and "same as row 3" in dup.reason


def test_a_failed_load_leaves_earlier_loads_untouched(workspace, extract_csv, editable_extract):
    ingest(workspace, extract_csv)
    before = workspace.counts()
    _corrupt(editable_extract / "members.csv", 1, "enrollment_start", "01/02/2024")
    with pytest.raises(ValidationError):
        ingest(workspace, editable_extract)
    assert workspace.counts() == before
    assert len(workspace.loads()) == 1


def test_errors_list_many_problems_up_to_the_limit(workspace, editable_extract):
    for row in range(1, 30):
        _corrupt(editable_extract / "visits.csv", row, "hours", "x")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract, error_limit=10)
    assert len(err.value.problems) == 10 and err.value.truncated


def test_person_identifiers_never_appear_in_error_messages(workspace, editable_extract):
    _corrupt(editable_extract / "visits.csv", 3, "member_id", "M77777777")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract)
    assert "M77777777" not in str(err.value)
    assert any(p.column == "member_id" and p.row == 3 for p in err.value.problems)


def test_malformed_csv_rows_are_located(workspace, editable_extract):
    path = editable_extract / "regions.csv"
    lines = path.read_text().splitlines()
    lines[2] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as err:
        ingest(workspace, editable_extract)
    assert any(p.row == 2 and "malformed" in p.reason for p in err.value.problems)
