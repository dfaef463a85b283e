"""Property tests: any valid table passes; each kind of corruption is caught at its row and column."""

import csv
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caretwin import ValidationError, Workspace, ingest
from caretwin.model.schema import RURALITY

region_rows = st.lists(
    st.fixed_dictionaries({
        "name": st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)
                  .filter(lambda s: s.strip()),
        "rurality": st.sampled_from(RURALITY),
        "population": st.integers(0, 10_000_000),
        "lat": st.floats(-90, 90, allow_nan=False),
        "lon": st.floats(-180, 180, allow_nan=False),
    }),
    min_size=1, max_size=30,
)
CORRUPTIONS = {
    "population": ("-5", "outside the allowed range"),
    "rurality": ("metro", "not one of"),
    "lat": ("north", "not a valid float"),
    "name": ("", "required value is missing"),
}


def write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["region_id", *rows[0].keys()])
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({"region_id": f"R{i}", **r})
    return path


FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(rows=region_rows)
def test_valid_regions_always_load(tmp_path_factory, rows):
    tmp = tmp_path_factory.mktemp("p")
    with Workspace.create(tmp / "ws") as ws:
        ingest(ws, write(tmp / "regions.csv", rows))
        assert ws.counts()["regions"] == len(rows)


@FAST
@given(rows=region_rows, data=st.data())
def test_each_corruption_is_caught_where_it_is(tmp_path_factory, rows, data):
    column = data.draw(st.sampled_from(sorted(CORRUPTIONS)))
    row = data.draw(st.integers(0, len(rows) - 1))
    value, reason = CORRUPTIONS[column]
    rows[row] = {**rows[row], column: value}
    tmp = tmp_path_factory.mktemp("p")
    with Workspace.create(tmp / "ws") as ws:
        with pytest.raises(ValidationError) as err:
            ingest(ws, write(tmp / "regions.csv", rows), on_error="reject")
        assert [(p.row, p.column) for p in err.value.problems] == [(row + 1, column)]
        assert reason in err.value.problems[0].reason
        assert ws.counts()["regions"] == 0
        # by default the same row is quarantined, with its reason, and every other row loads
        report = ingest(ws, tmp / "regions.csv")
        assert report.quarantined == {"regions": 1} and ws.counts()["regions"] == len(rows) - 1
        (src_row, reason_text) = ws.con.execute("SELECT source_row, reason FROM _quarantine").fetchone()
        assert src_row == row + 1 and reason in reason_text
