"""A person-level model from the workspace: examples before and after each cut-off, an honest
evaluation, a filled card, and reasons in words."""

import getpass
import json

import numpy as np
import pytest

from caretwin.errors import CaretwinError
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
    with pytest.raises(CaretwinError, match="outcome must be one of"):
        build(loaded, "everything")


def test_one_extract_trains_the_same_model_in_workspaces_with_different_keys(extract_csv, tmp_path):
    # persons are split and resampled by their arrival in the workspace, not by their keyed pseudonyms
    from caretwin import Workspace

    fits = []
    for name in ("a", "b"):
        with Workspace.create(tmp_path / name) as ws:
            ingest(ws, extract_csv)
            f = fit_outcome(ws, "ed_90d", lookback_days=60, n_boot=10)
            fits.append((f.card.validation, {k: (e.value, e.low, e.high) for k, e in f.evaluation.items()}))
    assert fits[0] == fits[1]


def test_a_workspace_model_is_evaluated_on_unseen_members_and_registered_as_a_draft(loaded):
    f = fit_outcome(loaded, "ed_90d", lookback_days=60, n_boot=20)
    auc = f.evaluation["auc"]
    assert auc.low < auc.value < auc.high and auc.value > 0.55  # synthetic county: acuity drives ED use
    assert "no member in both sets" in f.card.validation["split"]
    assert set(f.card.demographics) == {"sex", "race_ethnicity", "age_band", "region", "rurality"}
    card = register(loaded, f.model, f.card, by="analyst")
    model = load_for(loaded, card.name, card.version, "planning")
    ex = build(loaded, "ed_90d", lookback_days=60)
    top = np.argsort(-model.predict_proba(ex.X)[:, 1])[:5]
    why = reasons(model, ex.X[top], f.reference, f.names)
    assert all(why) and all(w.endswith("points)") for ws in why for w in ws)


def test_flags_wait_for_a_person_and_every_look_is_recorded(loaded, tmp_path, database_url):
    """The queue kept in the governance store: the workspace's SQLite file, or a server's PostgreSQL."""
    import csv

    import sqlalchemy as sa

    from caretwin.errors import CaretwinError
    from caretwin.governance.store import review_decisions, review_flags, store_for
    from caretwin.risk.registry import approve
    from caretwin.risk.review import decide, export_decisions, list_flags, score, show

    loaded.database = database_url

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
    assert export_decisions(loaded, tmp_path / "decisions.csv", reviewer="quality lead") == 2
    rows = list(csv.DictReader(open(tmp_path / "decisions.csv")))
    assert [r["decision"] for r in rows] == ["defer", "override"] and rows[1]["reason"] == "already in transitional care"
    with store_for(loaded).connect() as conn:  # flags and decisions are rows of the named database
        assert conn.scalar(sa.select(sa.func.count()).select_from(review_flags)) == counts["flagged"]
        assert conn.scalar(sa.select(sa.func.count()).select_from(review_decisions)) == 2
    assert list_flags(loaded, reviewer="coordinator", limit=2, offset=1) == \
        list_flags(loaded, reviewer="coordinator")[1:3]
    from caretwin.governance.audit import trail_for

    trail = trail_for(loaded)
    # in a notebook the operating-system user is who acted; the reviewer's name is kept beside it
    me = getpass.getuser()
    looks = [(e.subtype, e.action, e.agent, json.loads(e.detail).get("reviewer")) for e in trail.entries()]
    assert looks.count(("review.list", "E", me, "coordinator")) == 5
    assert looks.count(("review.show", "R", me, "coordinator")) == 1
    assert [e.subtype for e in trail.entries() if e.subtype in ("review.decide", "review.export")] == \
        ["review.decide", "review.decide", "review.export"]
    shown = next(e for e in trail.entries() if e.subtype == "review.show")
    assert shown.entity_type == "member" and shown.entity_id == first["member_id"] and trail.verify() == []
    # the same through the commands
    from typer.testing import CliRunner

    from caretwin.cli import app

    second = list_flags(loaded, reviewer="coordinator")[0]["flag_id"]
    loaded.close()
    ws, db = str(loaded.path), ["--database", database_url]

    def run(*args):
        return CliRunner().invoke(app, [*args, *db] if args[0] in ("review", "risk") and args[1] != "train" else args)

    assert "new flags" in run("risk", "score", ws, "--model", card.name).output
    assert second in run("review", "list", ws, "--reviewer", "coordinator").output
    shown = run("review", "show", ws, second, "--reviewer", "coordinator")
    assert shown.exit_code == 0 and "  - " in shown.output
    res = run("review", "decide", ws, second, "--decision", "accept", "--reason", "call booked",
              "--reviewer", "coordinator")
    assert res.exit_code == 0 and "now decided" in res.output
    assert "3 decisions" in run("review", "export", ws, str(tmp_path / "all.csv"), "--reviewer", "qa").output
    res = run("review", "decide", ws, second, "--decision", "maybe", "--reason", "x", "--reviewer", "c")
    assert res.exit_code == 2 and "accept, override, defer" in res.output
    trained = run("risk", "train", ws, "--outcome", "ed_90d", "--lookback-days", "60")
    assert trained.exit_code == 0 and f"registered {card.name} v{card.version + 1} (draft)" in trained.output
    assert "auc: " in trained.output and "caretwin models approve" in trained.output
    res = run("risk", "train", ws, "--outcome", "everything")
    assert res.exit_code == 2 and "outcome must be one of" in res.output
    # a look for a purpose that is not one of the policy's is refused, and the refusal (of the policy's action) is in the trail
    from caretwin import Workspace

    res = run("review", "list", ws, "--reviewer", "coordinator", "--purpose", "marketing")
    assert res.exit_code != 0 and "'marketing' is not a purpose of use" in res.output
    with Workspace.open(loaded.path, database_url) as again:
        refused = trail_for(again).entries()[-1]
    assert (refused.subtype, refused.outcome, refused.purpose) == ("review.read", "4", "marketing")
    # a reason written as a spreadsheet formula is exported as text a spreadsheet shows and never runs
    with Workspace.open(loaded.path, database_url) as again:
        flag = list_flags(again, reviewer="coordinator")[0]["flag_id"]
        decide(again, flag, "defer", '=HYPERLINK("http://x.invalid","see")', reviewer="coordinator")
        export_decisions(again, tmp_path / "formula.csv", reviewer="qa")
    rows = list(csv.DictReader(open(tmp_path / "formula.csv")))
    assert rows[-1]["reason"] == "'=HYPERLINK(\"http://x.invalid\",\"see\")"


# ------------------------------------------------------------------ outcomes that need a longer history
@pytest.fixture(scope="module")
def year_and_more(tmp_path_factory):
    """A small county with 15 months of history: enough for a 12-month horizon after 60 days of look-back."""
    from caretwin import Workspace
    from caretwin.synth import CountyParams, write_extract

    root = tmp_path_factory.mktemp("long")
    extract = write_extract(CountyParams(members=1500, regions=4, months=15, seed=21), root / "extract").path
    ws = Workspace.create(root / "ws")
    ingest(ws, extract)
    yield ws
    ws.close()


def test_readmission_examples_are_discharges_with_the_stay_among_the_features(year_and_more):
    ws = year_and_more
    ex = build(ws, "readmission_30d", lookback_days=60)
    assert ex.names[-4:] == ["length_of_stay", "emergency_admission", "discharged_to_facility",
                             "discharged_with_services"]
    stays = ws.con.execute("""SELECT member_id, discharge_date, discharge_date - admit_date, discharge_disposition,
        EXISTS (SELECT 1 FROM encounters r WHERE r.member_id = e.member_id AND r.encounter_class = 'inpatient'
                AND r.admit_date > e.discharge_date AND r.admit_date <= e.discharge_date + 30)
        FROM encounters e WHERE encounter_class = 'inpatient' AND discharge_date IS NOT NULL""").fetchall()
    by_key = {(m, d): (los, disp, back) for m, d, los, disp, back in stays}
    assert len(ex.y) > 50
    for m, c, x, y in zip(ex.member_id, ex.cutoff.astype(object), ex.X, ex.y):
        los, disp, back = by_key[(m, c)]  # every example is a discharge, cut off on its day
        assert disp not in ("died", "transfer") and x[ex.names.index("length_of_stay")] == los and y == back


def test_placement_and_cost_labels_follow_their_definitions(year_and_more):
    ws = year_and_more
    ex = build(ws, "placement_12m", lookback_days=60)
    c = ex.cutoff[0].astype(object)
    placed = {m for (m,) in ws.con.execute("""SELECT DISTINCT member_id FROM encounters WHERE encounter_class = 'snf'
        AND admit_date > ? AND admit_date <= ? + 365
        AND (discharge_date IS NULL OR discharge_date - admit_date >= 90)""", [c, c]).fetchall()}
    first = ex.cutoff == ex.cutoff[0]
    assert {m for m, y in zip(ex.member_id[first], ex.y[first]) if y} == placed & set(ex.member_id[first])

    cost = build(ws, "cost_12m", lookback_days=60)
    assert cost.y.dtype == float and (cost.y >= 0).all() and (cost.y > 0).mean() > 0.05
    # recompute a few members' year by hand: unit costs times each kind of use inside (cut-off, cut-off + 365]
    unit = dict(ws.con.execute("SELECT item, arg_max(cost, year) FROM unit_costs GROUP BY 1").fetchall())
    end = c + __import__("datetime").timedelta(days=365)
    for i in np.flatnonzero((cost.cutoff == cost.cutoff[0]) & (cost.y > 0))[:5]:
        m, total = cost.member_id[i], 0.0
        for cls, admit, discharge in ws.con.execute(
                "SELECT encounter_class, admit_date, discharge_date FROM encounters WHERE member_id = ?", [m]).fetchall():
            stop = min(discharge or end, end)
            if admit > end or (discharge or admit) <= c:
                continue
            days = max((stop - max(admit, c)).days, 1)
            if cls == "emergency":
                total += unit["ed_visit"]
            elif cls in ("inpatient", "snf"):
                total += days * unit[f"{cls}_day"]
            elif cls == "crisis":
                total += days * unit["csu_day"] if (discharge or admit) > admit else unit["mobile_crisis_episode"]
        for line, hours in ws.con.execute("""SELECT a.service_line, v.hours FROM visits v JOIN authorizations a
                USING (authorization_id) WHERE v.member_id = ? AND v.status = 'delivered'
                AND v.scheduled_date > ? AND v.scheduled_date <= ?""", [m, c, end]).fetchall():
            total += hours * unit["hcbs_hour"] if line == "hcbs" else unit["home_health_visit"]
        assert cost.y[i] == pytest.approx(total)


def test_a_cost_model_is_judged_by_its_predictive_ratio_and_flags_in_dollars(year_and_more):
    from caretwin.risk.registry import approve
    from caretwin.risk.review import list_flags, score, show

    ws = year_and_more
    f = fit_outcome(ws, "cost_12m", lookback_days=60, n_boot=20)
    assert set(f.evaluation) == {"r2", "mean_absolute_error", "predictive_ratio", "top_decile_capture"}
    ratio = f.evaluation["predictive_ratio"]
    # 1,500 members with heavy-tailed costs, split by pseudonym (which differs with each workspace's key): the
    # ratio on held-out members varies from one workspace to the next, so only its sanity is checked here;
    # unbiasedness is tested on simulated costs with a fixed seed (test_risk.py)
    assert 0.5 < ratio.value < 2 and ratio.low < ratio.value < ratio.high
    assert "mean cost" in f.card.training_data and "predictive ratio" in f.card.markdown()
    card = register(ws, f.model, f.card, by="analyst")
    approve(ws, card.name, card.version, ["care_management"], by="medical director")
    assert score(ws, card.name)["flagged"] > 0
    top = show(ws, list_flags(ws, reviewer="coordinator")[0]["flag_id"], reviewer="coordinator")
    assert top["score"] >= top["threshold"] and top["reasons"] and all("(+$" in r for r in top["reasons"])


def test_a_queue_kept_in_the_workspace_by_an_earlier_caretwin_moves_to_the_store(workspace, tmp_path):
    from datetime import date, datetime

    from caretwin.risk.review import export_decisions, list_flags, prepare

    con = workspace.con  # the tables as caretwin 0.x kept them in DuckDB
    con.execute("""CREATE TABLE _review_flags (flag_id VARCHAR PRIMARY KEY, member_id VARCHAR NOT NULL,
        model VARCHAR NOT NULL, version INTEGER NOT NULL, outcome VARCHAR NOT NULL, as_of DATE NOT NULL,
        score DOUBLE NOT NULL, previous_score DOUBLE, threshold DOUBLE NOT NULL, why VARCHAR NOT NULL,
        reasons VARCHAR, created_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL, features VARCHAR)""")
    con.execute("CREATE TABLE _review_decisions (flag_id VARCHAR NOT NULL, decision VARCHAR NOT NULL, "
                "reason VARCHAR NOT NULL, reviewer VARCHAR NOT NULL, decided_at TIMESTAMP NOT NULL)")
    for i, status in enumerate(("open", "decided")):
        con.execute("INSERT INTO _review_flags VALUES (?, ?, 'ed', 1, 'ed_90d', ?, ?, NULL, 0.3, 'above the threshold', "
                    "'[\"why\"]', ?, ?, '[1.0]')", [f"f{i}", f"m{i}", date(2025, 1, 31), 0.5 - i / 10,
                                                   datetime(2025, 2, 1), status])
    con.execute("INSERT INTO _review_decisions VALUES ('f1', 'accept', 'called', 'jo', ?)", [datetime(2025, 2, 2)])
    prepare(workspace)
    assert [f["flag_id"] for f in list_flags(workspace, reviewer="jo", include_decided=True)] == ["f0", "f1"]
    assert export_decisions(workspace, tmp_path / "d.csv", reviewer="qa") == 1
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "_review_flags" not in tables and "_review_decisions" not in tables and "_risk_scores" in tables
