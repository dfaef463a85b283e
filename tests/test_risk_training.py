"""A person-level model from the workspace: examples before and after each cut-off, an honest
evaluation, a filled card, and reasons in words."""

import numpy as np
import pytest

from caretwin.ingest import ingest
from caretwin.risk.dataset import build, reasons
from caretwin.risk.registry import load_for, register
from caretwin.risk.train import fit_outcome


@pytest.fixture()
def loaded(workspace, extract_csv):
    ingest(workspace, extract_csv)
    return workspace


def test_examples_use_only_the_past_for_features_and_the_future_for_labels(loaded):
    ex = build(loaded, "ed_90d", lookback_days=60)
    assert len(set(ex.cutoff)) >= 2 and ex.X.shape == (len(ex.y), len(ex.names))
    # a member's label at a cut-off is an ED visit in the 90 days after it, never one on or before it
    c = ex.cutoff[0]
    i = np.flatnonzero(ex.cutoff == c)
    ed_after = {m for (m,) in loaded.con.execute(
        "SELECT DISTINCT member_id FROM encounters WHERE encounter_class = 'emergency' "
        "AND admit_date > ? AND admit_date <= ? + 90", [c, c]).fetchall()}
    assert {m for m, y in zip(ex.member_id[i], ex.y[i]) if y} == ed_after & set(ex.member_id[i])
    with pytest.raises(ValueError, match="outcome must be one of"):
        build(loaded, "everything")


def test_a_workspace_model_is_evaluated_on_unseen_members_and_registered_as_a_draft(loaded):
    f = fit_outcome(loaded, "ed_90d", lookback_days=60, n_boot=20)
    auc = f.evaluation["auc"]
    assert auc.low < auc.value < auc.high and auc.value > 0.55  # synthetic county: acuity drives ED use
    assert "no member in both sets" in f.card.validation["split"]
    assert set(f.card.demographics) == {"sex", "race_ethnicity", "age_band", "region"}
    card = register(loaded, f.model, f.card, by="analyst")
    model = load_for(loaded, card.name, card.version, "planning")
    ex = build(loaded, "ed_90d", lookback_days=60)
    top = np.argsort(-model.predict_proba(ex.X)[:, 1])[:5]
    why = reasons(model, ex.X[top], f.reference, f.names)
    assert all(why) and all(w.endswith("points)") for ws in why for w in ws)


def test_flags_wait_for_a_person_and_every_look_is_recorded(loaded, tmp_path):
    import csv

    from caretwin.errors import CaretwinError
    from caretwin.risk.registry import approve
    from caretwin.risk.review import decide, export_decisions, list_flags, score, show

    f = fit_outcome(loaded, "ed_90d", lookback_days=60, n_boot=10)
    card = register(loaded, f.model, f.card, by="analyst")
    with pytest.raises(CaretwinError, match="not approved for care_management"):
        score(loaded, card.name)  # a draft cannot put people in a queue
    approve(loaded, card.name, card.version, ["care_management"], by="medical director")
    counts = score(loaded, card.name)
    assert counts["flagged"] > 0 and counts["scored"] > counts["flagged"]
    assert score(loaded, card.name)["flagged"] == 0  # open flags are not queued twice
    queue = list_flags(loaded, reviewer="coordinator")
    assert len(queue) == counts["flagged"] and queue[0]["score"] >= queue[-1]["score"]
    first = show(loaded, queue[0]["flag_id"], reviewer="coordinator")
    assert first["reasons"] and first["why"] == "above the threshold"
    with pytest.raises(CaretwinError, match="needs a reason"):
        decide(loaded, first["flag_id"], "accept", " ", reviewer="coordinator")
    assert decide(loaded, first["flag_id"], "defer", "waiting for the GP's letter", reviewer="coordinator") == "deferred"
    assert first["flag_id"] in {q["flag_id"] for q in list_flags(loaded, reviewer="coordinator")}
    assert decide(loaded, first["flag_id"], "override", "already in transitional care", reviewer="coordinator") == "decided"
    assert first["flag_id"] not in {q["flag_id"] for q in list_flags(loaded, reviewer="coordinator")}
    assert export_decisions(loaded, tmp_path / "decisions.csv") == 2
    rows = list(csv.DictReader(open(tmp_path / "decisions.csv")))
    assert [r["decision"] for r in rows] == ["defer", "override"] and rows[1]["reason"] == "already in transitional care"
    looks = loaded.con.execute("SELECT action, count(*) FROM _review_access GROUP BY 1 ORDER BY 1").fetchall()
    assert looks == [("list", 3), ("show", 1)]
    # the same through the commands
    from typer.testing import CliRunner

    from caretwin.cli import app

    second = list_flags(loaded, reviewer="coordinator")[0]["flag_id"]
    loaded.close()
    run, ws = CliRunner().invoke, str(loaded.path)
    assert "new flags" in run(app, ["risk", "score", ws, "--model", card.name]).output
    assert second in run(app, ["review", "list", ws, "--reviewer", "coordinator"]).output
    shown = run(app, ["review", "show", ws, second, "--reviewer", "coordinator"])
    assert shown.exit_code == 0 and "  - " in shown.output
    res = run(app, ["review", "decide", ws, second, "--decision", "accept", "--reason", "call booked",
                    "--reviewer", "coordinator"])
    assert res.exit_code == 0 and "now decided" in res.output
    assert "3 decisions" in run(app, ["review", "export", ws, str(tmp_path / "all.csv")]).output
    res = run(app, ["review", "decide", ws, second, "--decision", "maybe", "--reason", "x", "--reviewer", "c"])
    assert res.exit_code == 2 and "accept, override, defer" in res.output
