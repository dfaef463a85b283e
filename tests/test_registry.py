"""The model registry: versions are drafts until a person approves them for named purposes."""

import numpy as np
import pytest

from caretwin.errors import CaretwinError
from caretwin.risk.models import LogisticRisk
from caretwin.risk.registry import ModelCard, approve, get_card, list_models, load_for, register, retire


def a_card(**over):
    fields = dict(
        name="readmission-30d", outcome="readmission within 30 days of discharge",
        intended_use="rank members for transitional-care outreach", intended_users="care coordinators",
        out_of_scope="coverage or eligibility decisions; children", training_data={"rows": 1000, "period": "2024"},
        demographics={"sex": {"female": 0.55, "male": 0.45}},
        fairness_approach="calibration gap and false-negative rate by group, with bootstrap intervals",
        fairness_results=[{"feature": "sex", "group": "female", "auc": "0.70", "calibration_gap": "0.01",
                           "false_negative_rate": "0.40", "flagged": False}],
        validation={"auc": "0.70 (0.66 to 0.74)", "split": "by person"},
        monitoring="monthly calibration by group", update_schedule="refit yearly or when calibration drifts")
    fields.update(over)
    return ModelCard(**fields)


@pytest.fixture()
def model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    return LogisticRisk().fit(x, (x[:, 0] + rng.normal(size=300) > 0).astype(int))


def test_a_registered_model_is_a_draft_that_operations_cannot_use(workspace, model):
    c = register(workspace, model, a_card(), by="analyst")
    assert (c.version, c.status, c.approved_for) == (1, "draft", [])
    assert register(workspace, model, a_card(), by="analyst").version == 2
    with pytest.raises(CaretwinError, match="not approved for care_management"):
        load_for(workspace, "readmission-30d", 1, "care_management")
    assert load_for(workspace, "readmission-30d", 1, "planning").predict_proba(np.zeros((1, 2))).shape == (1, 2)


def test_approval_is_for_named_purposes_by_a_named_person_and_retirement_ends_use(workspace, model):
    register(workspace, model, a_card())
    with pytest.raises(CaretwinError, match="purposes must be some of"):
        approve(workspace, "readmission-30d", 1, ["anything"], by="medical director")
    with pytest.raises(CaretwinError, match="name of the person"):
        approve(workspace, "readmission-30d", 1, ["care_management"], by="")
    approve(workspace, "readmission-30d", 1, ["care_management"], by="medical director")
    assert load_for(workspace, "readmission-30d", 1, "care_management") is not None
    with pytest.raises(CaretwinError, match="not approved for operations"):
        load_for(workspace, "readmission-30d", 1, "operations")
    assert list_models(workspace)[0]["changed_by"] == "medical director"
    retire(workspace, "readmission-30d", 1, by="medical director")
    with pytest.raises(CaretwinError, match="retired"):
        load_for(workspace, "readmission-30d", 1, "planning")


def test_the_card_covers_the_hti1_source_attributes(workspace, model):
    register(workspace, model, a_card())
    approve(workspace, "readmission-30d", 1, ["care_management"], by="medical director")
    text = (workspace.path / "models" / "readmission-30d" / "v1" / "card.md").read_text()
    for heading in ("**Intended use:**", "**Intended users:**", "**Out of scope:**", "## Training data",
                    "## Who is in the training data", "## Validation", "## Fairness", "## Monitoring", "## Updates"):
        assert heading in text
    assert "**Approved for:** care_management" in text
    assert get_card(workspace, "readmission-30d").status == "approved"
    with pytest.raises(CaretwinError, match="model name"):
        register(workspace, model, a_card(name="../escape"))


def test_the_models_commands_list_show_approve_and_retire(workspace, model):
    from typer.testing import CliRunner

    from caretwin.cli import app

    register(workspace, model, a_card())
    workspace.close()
    run = CliRunner().invoke
    ws = str(workspace.path)
    res = run(app, ["models", "approve", ws, "readmission-30d", "1", "--purpose", "care_management", "--by", "Dr Lee"])
    assert res.exit_code == 0, res.output
    res = run(app, ["models", "list", ws])
    assert "readmission-30d" in res.output and "approved" in res.output and "Dr Lee" in res.output
    assert "**Approved for:** care_management" in run(app, ["models", "show", ws, "readmission-30d"]).output
    assert run(app, ["models", "retire", ws, "readmission-30d", "1", "--by", "Dr Lee"]).exit_code == 0
    res = run(app, ["models", "approve", ws, "readmission-30d", "1", "--purpose", "operations", "--by", "Dr Lee"])
    assert res.exit_code == 2 and "retired" in res.output


def test_a_cards_fairness_table_reads_as_figures_not_dicts():
    auc = {"value": 0.6140, "low": 0.5744, "high": 0.6444}
    card = a_card(demographics={"age_band": {"0-17": None, "18-44": 0.6}},
                  fairness_results=[{"feature": "age_band", "group": "0-17", "n": 4109, "auc": auc,
                                     "flagged": ["false-negative rate", "AUC"]}])
    text = card.markdown()
    assert "| age_band=0-17 | 4109 | 0.61 (0.57 to 0.64) | yes: false-negative rate, AUC |" in text
    assert "0-17 (fewer than 11 people)" in text and "{'" not in text
