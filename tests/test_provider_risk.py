"""Provider early warning: the strained provider comes first, with its reasons in words."""

from datetime import timedelta

import pytest

from caretwin.ingest import ingest
from caretwin.risk.providers import provider_warnings


@pytest.fixture()
def loaded(workspace, extract_csv):
    ingest(workspace, extract_csv)
    return workspace


def test_a_provider_losing_staff_and_missing_visits_rises_to_the_top_with_its_reasons(loaded):
    ws = loaded
    before = {r.provider_id: r for r in provider_warnings(ws)}
    assert before and all(0 <= r.index <= 100 for r in before.values())
    # pick a typical HCBS provider and make its last eight weeks go wrong
    target = sorted((r for r in before.values() if r.service_line == "hcbs"), key=lambda r: abs(r.index - 50))[0]
    last = ws.con.execute("SELECT max(week_start) FROM workforce").fetchone()[0]
    start = last - timedelta(weeks=7)
    with ws.transaction() as con:
        con.execute("UPDATE workforce SET separations = headcount // 4 + 2, vacancies = headcount, "
                    "overtime_hours = 12 * headcount, training_completion = 0.5 "
                    "WHERE provider_id = ? AND week_start >= ?", [target.provider_id, start])
    after = provider_warnings(ws)
    top = after[0]
    assert top.provider_id == target.provider_id
    assert top.index > 85 and top.trend > 20
    words = [d.words for d in top.drivers]
    assert any(w.startswith("staff turnover:") and w.endswith("a year") for w in words)
    assert any(w.startswith("vacancies:") for w in words) and any(w.startswith("overtime:") for w in words)
    assert [d.score for d in top.drivers] == sorted((d.score for d in top.drivers), reverse=True)
