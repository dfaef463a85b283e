"""The review queue as a care coordinator uses it: kept to what the team can work through, narrowed and
ordered, each flag with the member's last year beside it, and a governed way back to the agency's own id."""

from __future__ import annotations

import csv
import json

import pytest

from caretwin import Workspace
from caretwin.errors import CaretwinError
from caretwin.governance.audit import Actor, trail_for
from caretwin.governance.privacy import pseudonymise
from caretwin.ingest import ingest
from caretwin.risk.context import reidentify
from caretwin.risk.registry import approve, register
from caretwin.risk.review import list_flags, score, show
from caretwin.risk.train import fit_outcome

CAPACITY = 40
UNKNOWN = "p_" + "0" * 20  # a pseudonym of nobody


@pytest.fixture(scope="module")
def queued(tmp_path_factory, extract_csv):
    ws = Workspace.create(tmp_path_factory.mktemp("queue") / "ws")
    ingest(ws, extract_csv)
    f = fit_outcome(ws, "ed_90d", lookback_days=60, n_boot=10)
    card = register(ws, f.model, f.card, by="analyst")
    approve(ws, card.name, card.version, ["care_management"], by="medical director")
    counts = score(ws, card.name, capacity=CAPACITY)
    yield ws, card, counts, f.threshold
    ws.close()


def test_the_queue_is_kept_to_its_capacity_with_the_highest_risks_first(queued):
    ws, card, counts, threshold = queued
    above = [s for (s,) in ws.con.execute("SELECT score FROM _risk_scores WHERE score >= ?", [threshold]).fetchall()]
    assert len(above) > CAPACITY  # the county has more people above the threshold than the team can see
    assert counts["flagged"] == CAPACITY and counts["over_capacity"] == len(above) - CAPACITY
    queue = list_flags(ws, reviewer="coordinator")
    assert sorted(f["score"] for f in queue) == sorted(above, reverse=True)[:CAPACITY][::-1]
    again = score(ws, card.name, capacity=CAPACITY)  # a full queue takes no more
    assert again["flagged"] == 0 and again["over_capacity"] > 0
    event = [e for e in trail_for(ws).entries() if e.subtype == "risk.score"][-1]
    assert json.loads(event.detail)["over_capacity"] == again["over_capacity"]


def test_the_queue_can_be_narrowed_by_region_and_reason_and_ordered(queued):
    ws, *_ = queued
    everyone = list_flags(ws, reviewer="coordinator")
    assert all(f["region_id"] and f["reasons"] is not None for f in everyone)
    assert all("points)" in r for f in everyone for r in f["reasons"])  # reasons in words, with their weight
    region = everyone[0]["region_id"]
    here = list_flags(ws, reviewer="coordinator", region=region)
    assert here and {f["region_id"] for f in here} == {region}
    assert len(here) == sum(f["region_id"] == region for f in everyone)
    assert {f["why"] for f in list_flags(ws, reviewer="coordinator", why="threshold")} == {"above the threshold"}
    by_region = list_flags(ws, reviewer="coordinator", sort="region")
    assert [f["region_id"] for f in by_region] == sorted(f["region_id"] for f in everyone)
    assert list_flags(ws, reviewer="coordinator", sort="region", limit=5, offset=5) == by_region[5:10]
    with pytest.raises(CaretwinError, match="sort must be one of"):
        list_flags(ws, reviewer="coordinator", sort="name")
    looked = [json.loads(e.detail) for e in trail_for(ws).entries() if e.subtype == "review.list"]
    assert any(d.get("region") == region and d["sort"] == "risk" for d in looked)  # the filters are recorded


def test_a_flag_shows_the_members_last_year(queued):
    ws, *_ = queued
    busiest = max(list_flags(ws, reviewer="coordinator"), key=lambda f: f["score"])
    flag = show(ws, busiest["flag_id"], reviewer="coordinator")
    h = flag["history"]
    ed = ws.con.execute("""SELECT count(*) FROM encounters WHERE member_id = ? AND encounter_class = 'emergency'
                           AND admit_date BETWEEN ? AND ?""", [flag["member_id"], h.since, h.until]).fetchone()[0]
    assert h.counts["ED visits"] == ed and h.until == flag["as_of"] and h.region_id == busiest["region_id"]
    assert [e.day for e in h.events] == sorted((e.day for e in h.events), reverse=True)
    assert str(ed) in h.summary() or ed == 0


def test_a_pseudonym_is_turned_back_into_the_agencys_id_only_for_those_allowed_and_always_recorded(queued,
                                                                                                   extract_csv):
    ws, *_ = queued
    roster = extract_csv / "members.csv"
    raw = next(csv.DictReader(roster.open()))["member_id"]
    member = pseudonymise(raw, ws.key())
    coordinator = Actor("cy", "care_coordinator", "care_management", "server")
    assert reidentify(ws, member, roster, actor=coordinator) == raw
    with pytest.raises(CaretwinError, match="executive role may not open a person's record"):
        reidentify(ws, member, roster, actor=Actor("dana", "executive", "planning", "server"))
    with pytest.raises(CaretwinError, match="not in members.csv"):
        reidentify(ws, UNKNOWN, roster, actor=coordinator)
    events = [e for e in trail_for(ws).entries() if e.subtype == "member.reidentify"][-3:]
    assert [(e.agent, e.outcome, e.entity_id) for e in events] == [
        ("cy", "0", member), ("dana", "4", member), ("cy", "4", UNKNOWN)]
    assert not any(raw in e.content() for e in trail_for(ws).entries())  # the agency's id is never recorded
