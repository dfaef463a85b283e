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
