"""The human review queue: models flag, people decide.

Scoring with an approved model puts a flag in the queue for each member whose risk is at or above
the model's operating threshold, or has risen by `rise` since their last score. A flag leaves the
queue only with a recorded decision (accept or override, each with a reason); a deferral is recorded
and keeps it in the queue. Every look at a flag (list or show) is recorded with who, when and why,
so the audit trail (issue 8) can take these records over.
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
from caretwin.risk.dataset import data_span, features_at, reasons
from caretwin.risk.registry import get_card, load_for
from caretwin.workspace import Workspace

DECISIONS = ("accept", "override", "defer")
DDL = (
    """CREATE TABLE IF NOT EXISTS _risk_scores (member_id VARCHAR NOT NULL, model VARCHAR NOT NULL,
        version INTEGER NOT NULL, as_of DATE NOT NULL, score DOUBLE NOT NULL, scored_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS _review_flags (flag_id VARCHAR PRIMARY KEY, member_id VARCHAR NOT NULL,
        model VARCHAR NOT NULL, version INTEGER NOT NULL, outcome VARCHAR NOT NULL, as_of DATE NOT NULL,
        score DOUBLE NOT NULL, previous_score DOUBLE, threshold DOUBLE NOT NULL, why VARCHAR NOT NULL,
        reasons VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS _review_decisions (flag_id VARCHAR NOT NULL, decision VARCHAR NOT NULL,
        reason VARCHAR NOT NULL, reviewer VARCHAR NOT NULL, decided_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS _review_access (accessed_at TIMESTAMP NOT NULL, reviewer VARCHAR NOT NULL,
        purpose VARCHAR NOT NULL, action VARCHAR NOT NULL, flag_id VARCHAR, member_id VARCHAR)""",
)


def _ready(ws: Workspace) -> None:
    for ddl in DDL:
        ws.con.execute(ddl)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def score(ws: Workspace, model: str, *, version: int | None = None, purpose: str = "care_management",
          rise: float = 0.10) -> dict[str, int]:
    """Score every enrolled member with an approved model version and queue the flags; returns counts."""
    card = get_card(ws, model, version)
    est = load_for(ws, model, card.version, purpose)  # refuses a version not approved for this purpose
    try:
        outcome = card.training_data["outcome key"]
        threshold = float(card.validation["operating threshold"])
        typical = card.training_data["typical values"]
    except KeyError as exc:
        raise CaretwinError(f"{model} v{card.version} has no {exc.args[0]!r} on its card: train it with "
                            "caretwin.risk.train.fit_outcome") from None
    _ready(ws)
    _, as_of = data_span(ws)
    members, X = features_at(ws, outcome, as_of)
    p = est.predict_proba(X)[:, 1] if len(members) else np.empty(0)
    prev = dict(ws.con.execute(
        "SELECT member_id, arg_max(score, scored_at) FROM _risk_scores WHERE model = ? GROUP BY 1", [model]).fetchall())
    open_ = {m for (m,) in ws.con.execute(
        "SELECT member_id FROM _review_flags WHERE model = ? AND status IN ('open', 'deferred')", [model]).fetchall()}
    before = np.array([prev.get(m, np.nan) for m in members], dtype=float)
    high = p >= threshold
    rose = ~np.isnan(before) & (p - np.nan_to_num(before) >= rise)
    flag = (high | rose) & ~np.isin(members, list(open_))
    idx = np.flatnonzero(flag)
    why = reasons(est, X[idx], np.array([typical[n] for n in typical]), list(typical)) if len(idx) else []
    now = _now()
    scores = pa.table({"member_id": members.astype(str), "model": [model] * len(members),
                       "version": pa.array([card.version] * len(members), pa.int32()),
                       "as_of": pa.array([as_of] * len(members), pa.date32()), "score": p,
                       "scored_at": pa.array([now] * len(members), pa.timestamp("us"))})
    flags = [(uuid.uuid4().hex[:12], str(members[i]), model, card.version, outcome, as_of, float(p[i]),
              None if np.isnan(before[i]) else float(before[i]), threshold,
              "above the threshold" if high[i] else f"rose by {p[i] - before[i]:.0%}", json.dumps(w), now)
             for i, w in zip(idx, why)]
    with ws.transaction() as con:
        con.register("_new_scores", scores)
        con.execute("INSERT INTO _risk_scores SELECT * FROM _new_scores")
        con.unregister("_new_scores")
        if flags:
            con.executemany("INSERT INTO _review_flags VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')", flags)
    return {"scored": int(len(members)), "flagged": int(len(idx)), "already_open": int(((high | rose) & ~flag).sum())}


def _log(ws: Workspace, reviewer: str, purpose: str, action: str, flag_id: str | None = None,
         member_id: str | None = None) -> None:
    if not reviewer:
        raise CaretwinError("say who is reviewing (a reviewer name)")
    with ws.transaction() as con:
        con.execute("INSERT INTO _review_access VALUES (?, ?, ?, ?, ?, ?)",
                    [_now(), reviewer, purpose, action, flag_id, member_id])


def list_flags(ws: Workspace, *, reviewer: str, purpose: str = "care_management",
               include_decided: bool = False) -> list[dict[str, Any]]:
    """The queue (open and deferred flags, highest risk first); looking at it is recorded."""
    _ready(ws)
    _log(ws, reviewer, purpose, "list")
    where = "" if include_decided else "WHERE status IN ('open', 'deferred')"
    cur = ws.con.execute(f"SELECT flag_id, model, version, outcome, as_of, score, why, status FROM _review_flags "
                         f"{where} ORDER BY score DESC, flag_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def show(ws: Workspace, flag_id: str, *, reviewer: str, purpose: str = "care_management") -> dict[str, Any]:
    """One flag with its reasons and decisions so far; opening it is recorded."""
    _ready(ws)
    cur = ws.con.execute("SELECT * FROM _review_flags WHERE flag_id = ?", [flag_id])
    row = cur.fetchone()
    if row is None:
        raise CaretwinError(f"no flag {flag_id!r} in the review queue")
    flag = dict(zip([d[0] for d in cur.description], row))
    _log(ws, reviewer, purpose, "show", flag_id, flag["member_id"])
    flag["reasons"] = json.loads(flag["reasons"])
    flag["decisions"] = [dict(zip(("decision", "reason", "reviewer", "decided_at"), r)) for r in ws.con.execute(
        "SELECT decision, reason, reviewer, decided_at FROM _review_decisions WHERE flag_id = ? ORDER BY decided_at",
        [flag_id]).fetchall()]
    return flag


def decide(ws: Workspace, flag_id: str, decision: str, reason: str, *, reviewer: str) -> str:
    """Record a person's decision on a flag; accept and override close it, defer keeps it in the queue."""
    if decision not in DECISIONS:
        raise CaretwinError(f"decision must be one of: {', '.join(DECISIONS)}")
    if not reason or not reason.strip():
        raise CaretwinError("a decision needs a reason")
    if not reviewer:
        raise CaretwinError("say who is deciding (a reviewer name)")
    _ready(ws)
    row = ws.con.execute("SELECT status FROM _review_flags WHERE flag_id = ?", [flag_id]).fetchone()
    if row is None:
        raise CaretwinError(f"no flag {flag_id!r} in the review queue")
    if row[0] == "decided":
        raise CaretwinError(f"flag {flag_id} is already decided")
    status = "deferred" if decision == "defer" else "decided"
    with ws.transaction() as con:
        con.execute("INSERT INTO _review_decisions VALUES (?, ?, ?, ?, ?)",
                    [flag_id, decision, reason.strip(), reviewer, _now()])
        con.execute("UPDATE _review_flags SET status = ? WHERE flag_id = ?", [status, flag_id])
    return status


def export_decisions(ws: Workspace, path: str | Path) -> int:
    """Every decision with its flag, as CSV (written aside, then renamed); returns the rows written."""
    _ready(ws)
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
