"""The human review queue: models flag, people decide.

Scoring with an approved model puts a flag in the queue for each member whose risk is at or above
the model's operating threshold, or has risen by `rise` since their last score, with the features it was
scored on; its reasons in words are worked out when a reviewer first opens it (scoring a million members
stays fast) and kept. A flag leaves the
queue only with a recorded decision (accept or override, each with a reason); a deferral is recorded
and keeps it in the queue. Every look at a flag (list or show) is recorded with who, when and why,
in the workspace's audit trail (`caretwin.governance.audit`).
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from caretwin.errors import CaretwinError
from caretwin.governance.audit import trail_for
from caretwin.risk.dataset import OUTCOMES, data_span, features_at, predict, reasons
from caretwin.risk.registry import get_card, load_for, load_version
from caretwin.workspace import Workspace

DECISIONS = ("accept", "override", "defer")
DDL = (
    """CREATE TABLE IF NOT EXISTS _risk_scores (member_id VARCHAR NOT NULL, model VARCHAR NOT NULL,
        version INTEGER NOT NULL, as_of DATE NOT NULL, score DOUBLE NOT NULL, scored_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS _review_flags (flag_id VARCHAR PRIMARY KEY, member_id VARCHAR NOT NULL,
        model VARCHAR NOT NULL, version INTEGER NOT NULL, outcome VARCHAR NOT NULL, as_of DATE NOT NULL,
        score DOUBLE NOT NULL, previous_score DOUBLE, threshold DOUBLE NOT NULL, why VARCHAR NOT NULL,
        reasons VARCHAR, created_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL, features VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS _review_decisions (flag_id VARCHAR NOT NULL, decision VARCHAR NOT NULL,
        reason VARCHAR NOT NULL, reviewer VARCHAR NOT NULL, decided_at TIMESTAMP NOT NULL)""",
)


def prepare(ws: Workspace) -> None:
    """Create or bring up to date the queue's tables (a no-op, without catalog writes, when they are current)."""
    have = {r[0] for r in ws.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if {"_risk_scores", "_review_flags", "_review_decisions"} <= have:
        nullable = dict(ws.con.execute("SELECT column_name, is_nullable FROM information_schema.columns "
                                       "WHERE table_name = '_review_flags'").fetchall())
        if "features" in nullable and nullable["reasons"] == "YES":
            return  # nothing to create or change: no catalog write, so concurrent readers do not conflict
    with ws.transaction() as con:
        for ddl in DDL:
            con.execute(ddl)
        # queues made before reasons were worked out on first look
        con.execute("ALTER TABLE _review_flags ADD COLUMN IF NOT EXISTS features VARCHAR")
        con.execute("ALTER TABLE _review_flags ALTER COLUMN reasons DROP NOT NULL")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def score(ws: Workspace, model: str, *, version: int | None = None, purpose: str = "care_management",
          rise: float = 0.10) -> dict[str, int]:
    """Score everyone at risk on the last day of data (the enrolled; for readmission, members discharged in
    the last 30 days) with an approved model version, and queue the flags; returns counts.

    `rise` is in points of probability, or for a cost model a share of its operating threshold."""
    card = get_card(ws, model, version)
    est = load_for(ws, model, card.version, purpose)  # refuses a version not approved for this purpose
    try:
        outcome = card.training_data["outcome key"]
        threshold = float(card.validation["operating threshold"])
        card.training_data["typical values"]  # needed later, to put the reasons in words
    except KeyError as exc:
        raise CaretwinError(f"{model} v{card.version} has no {exc.args[0]!r} on its card: train it with "
                            "caretwin.risk.train.fit_outcome") from None
    prepare(ws)
    _, as_of = data_span(ws)
    members, X = features_at(ws, outcome, as_of)
    p = predict(est, X) if len(members) else np.empty(0)
    amount = OUTCOMES[outcome].kind == "amount"
    prev = dict(ws.con.execute(
        "SELECT member_id, arg_max(score, scored_at) FROM _risk_scores WHERE model = ? GROUP BY 1", [model]).fetchall())
    open_ = {m for (m,) in ws.con.execute(
        "SELECT member_id FROM _review_flags WHERE model = ? AND status IN ('open', 'deferred')", [model]).fetchall()}
    before = np.array([prev.get(m, np.nan) for m in members], dtype=float)
    high = p >= threshold
    rose = ~np.isnan(before) & (p - np.nan_to_num(before) >= rise * (threshold if amount else 1.0))
    waiting = np.fromiter((m in open_ for m in members), bool, len(members))  # np.isin is quadratic on strings
    flag = (high | rose) & ~waiting
    idx = np.flatnonzero(flag)
    now = _now()
    n, k = len(members), len(idx)
    scores = pa.table({"member_id": members.astype(str), "model": [model] * n,
                       "version": pa.array([card.version] * n, pa.int32()), "as_of": pa.array([as_of] * n, pa.date32()),
                       "score": p, "scored_at": pa.array([now] * n, pa.timestamp("us"))})
    rise_words = [f"rose by ${p[i] - before[i]:,.0f}" if amount else f"rose by {p[i] - before[i]:.0%}" for i in idx]
    flags = pa.table({
        "flag_id": [uuid.uuid4().hex[:12] for _ in range(k)], "member_id": members[idx].astype(str),
        "model": [model] * k, "version": pa.array([card.version] * k, pa.int32()), "outcome": [outcome] * k,
        "as_of": pa.array([as_of] * k, pa.date32()), "score": p[idx],
        "previous_score": pa.array(before[idx], mask=np.isnan(before[idx])), "threshold": [threshold] * k,
        "why": ["above the threshold" if high[i] else w for i, w in zip(idx, rise_words)],
        "reasons": pa.nulls(k, pa.string()), "created_at": pa.array([now] * k, pa.timestamp("us")),
        "status": ["open"] * k, "features": [json.dumps(row) for row in X[idx].tolist()]})
    with ws.transaction() as con:
        for name, table in (("_risk_scores", scores), ("_review_flags", flags)):
            con.register("_new_rows", table)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _new_rows")
            con.unregister("_new_rows")
    return {"scored": int(len(members)), "flagged": int(len(idx)), "already_open": int(((high | rose) & ~flag).sum())}


def _explain(ws: Workspace, flag: dict[str, Any]) -> str:
    """A flag's reasons, worked out on first look from the features it was scored on and the model version
    that scored it (the same inputs give the same reasons whenever they are asked for), then kept."""
    card = get_card(ws, flag["model"], flag["version"])
    typical = card.training_data["typical values"]
    est = load_version(ws, flag["model"], flag["version"])
    X = np.array([json.loads(flag["features"])], dtype=float)
    words = json.dumps(reasons(est, X, np.array([typical[n] for n in typical]), list(typical))[0])
    with ws.transaction() as con:
        con.execute("UPDATE _review_flags SET reasons = ? WHERE flag_id = ?", [words, flag["flag_id"]])
    return words


def score_text(outcome: str, value: float) -> str:
    """A score as a reader expects it: a probability, or an amount for cost models."""
    return f"${value:,.0f}" if OUTCOMES[outcome].kind == "amount" else f"{value:.1%}"


def _log(ws: Workspace, reviewer: str, role: str, purpose: str, what: str, flag_id: str | None = None,
         member_id: str | None = None, **detail: Any) -> None:
    """Record a look or a change in the workspace's audit trail (member ids are pseudonyms already)."""
    if not reviewer:
        raise CaretwinError("say who is reviewing (a reviewer name)")
    kind, action = {"list": ("query", "E"), "show": ("read", "R"), "decide": ("change", "U"),
                    "export": ("export", "R")}[what]
    trail_for(ws).record(kind=kind, action=action, subtype=f"review.{what}", agent=reviewer, role=role,
                         purpose=purpose, entity_type="member" if member_id else "review_queue", entity_id=member_id,
                         detail={"flag": flag_id, **detail} if flag_id else detail)


LOCAL = "local"  # the role recorded for someone at the workspace's own command line


def list_flags(ws: Workspace, *, reviewer: str, role: str = LOCAL, purpose: str = "care_management",
               include_decided: bool = False) -> list[dict[str, Any]]:
    """The queue (open and deferred flags, highest risk first); looking at it is recorded."""
    prepare(ws)
    _log(ws, reviewer, role, purpose, "list")
    where = "" if include_decided else "WHERE status IN ('open', 'deferred')"
    cur = ws.con.execute(f"SELECT flag_id, model, version, outcome, as_of, score, why, status FROM _review_flags "
                         f"{where} ORDER BY score DESC, flag_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def show(ws: Workspace, flag_id: str, *, reviewer: str, role: str = LOCAL,
         purpose: str = "care_management") -> dict[str, Any]:
    """One flag with its reasons and decisions so far; opening it is recorded."""
    prepare(ws)
    cur = ws.con.execute("SELECT * FROM _review_flags WHERE flag_id = ?", [flag_id])
    row = cur.fetchone()
    if row is None:
        raise CaretwinError(f"no flag {flag_id!r} in the review queue")
    flag = dict(zip([d[0] for d in cur.description], row))
    _log(ws, reviewer, role, purpose, "show", flag_id, flag["member_id"])
    if flag["reasons"] is None:
        flag["reasons"] = _explain(ws, flag)
    flag["reasons"] = json.loads(flag["reasons"])
    del flag["features"]
    flag["decisions"] = [dict(zip(("decision", "reason", "reviewer", "decided_at"), r)) for r in ws.con.execute(
        "SELECT decision, reason, reviewer, decided_at FROM _review_decisions WHERE flag_id = ? ORDER BY decided_at",
        [flag_id]).fetchall()]
    return flag


def decide(ws: Workspace, flag_id: str, decision: str, reason: str, *, reviewer: str, role: str = LOCAL,
           purpose: str = "care_management") -> str:
    """Record a person's decision on a flag; accept and override close it, defer keeps it in the queue."""
    if decision not in DECISIONS:
        raise CaretwinError(f"decision must be one of: {', '.join(DECISIONS)}")
    if not reason or not reason.strip():
        raise CaretwinError("a decision needs a reason")
    if not reviewer:
        raise CaretwinError("say who is deciding (a reviewer name)")
    prepare(ws)
    row = ws.con.execute("SELECT status, member_id FROM _review_flags WHERE flag_id = ?", [flag_id]).fetchone()
    if row is None:
        raise CaretwinError(f"no flag {flag_id!r} in the review queue")
    if row[0] == "decided":
        raise CaretwinError(f"flag {flag_id} is already decided")
    status = "deferred" if decision == "defer" else "decided"
    with ws.transaction() as con:
        con.execute("INSERT INTO _review_decisions VALUES (?, ?, ?, ?, ?)",
                    [flag_id, decision, reason.strip(), reviewer, _now()])
        con.execute("UPDATE _review_flags SET status = ? WHERE flag_id = ?", [status, flag_id])
        # inside the transaction: if the trail cannot record the decision, the decision is not made
        _log(ws, reviewer, role, purpose, "decide", flag_id, row[1], decision=decision)
    return status


def export_decisions(ws: Workspace, path: str | Path, *, reviewer: str, role: str = LOCAL,
                     purpose: str = "quality_improvement") -> int:
    """Every decision with its flag, as CSV (written aside, then renamed); returns the rows written."""
    prepare(ws)
    _log(ws, reviewer, role, purpose, "export", file=Path(path).name)
    rows = ws.con.execute("""
        SELECT d.flag_id, f.member_id, f.model, f.version, f.outcome, f.as_of, round(f.score, 4), f.why,
               d.decision, d.reason, d.reviewer, d.decided_at
        FROM _review_decisions d JOIN _review_flags f USING (flag_id) ORDER BY d.decided_at, d.flag_id""").fetchall()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["flag_id", "member_id", "model", "version", "outcome", "as_of", "score", "why", "decision",
                    "reason", "reviewer", "decided_at"])
        w.writerows(rows)
    os.replace(tmp, path)
    return len(rows)
