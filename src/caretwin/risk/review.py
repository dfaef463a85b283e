"""The human review queue: models flag, people decide.

Scoring with an approved model puts a flag in the queue for each member whose risk is at or above
the model's operating threshold, or has risen by `rise` since their last score, with the features it was
scored on; its reasons in words are worked out when a reviewer first opens it (scoring a million members
stays fast) and kept. A flag leaves the
queue only with a recorded decision (accept or override, each with a reason); a deferral is recorded
and keeps it in the queue. Every look at a flag (list or show) is recorded with who, when and why,
in the workspace's audit trail (`caretwin.governance.audit`).

Scores stay in the workspace (DuckDB); flags and decisions are kept in the governance store, beside the
audit trail (the workspace's SQLite file, or the server's PostgreSQL database), so a decision and its audit
event are one transaction.
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
import sqlalchemy as sa

from caretwin.errors import CaretwinError
from caretwin.files import spreadsheet_safe
from caretwin.governance.audit import LOCAL, PURPOSE_CODES, Actor, audited, trail_for
from caretwin.governance.store import review_decisions, review_flags, store_for
from caretwin.risk.context import member_history
from caretwin.risk.dataset import OUTCOMES, data_span, features_at, predict, reasons
from caretwin.risk.registry import get_card, load_for, load_version
from caretwin.workspace import Workspace

DECISIONS = ("accept", "override", "defer")
SCORES_DDL = """CREATE TABLE IF NOT EXISTS _risk_scores (member_id VARCHAR NOT NULL, model VARCHAR NOT NULL,
    version INTEGER NOT NULL, as_of DATE NOT NULL, score DOUBLE NOT NULL, scored_at TIMESTAMP NOT NULL)"""
LEGACY = ("_review_flags", "_review_decisions")  # where the queue was kept before it moved to the governance store


def prepare(ws: Workspace) -> None:
    """Create the scores table in the workspace, and move a queue kept there by an earlier caretwin into the
    governance store (a no-op, without catalog writes, when there is nothing to do)."""
    have = {r[0] for r in ws.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "_risk_scores" in have and not have & set(LEGACY):
        return  # no catalog write, so concurrent readers do not conflict
    with ws.transaction() as con:
        con.execute(SCORES_DDL)
        if "_review_flags" not in have:
            return
        flags = _rows(con, "_review_flags")
        decisions = _rows(con, "_review_decisions") if "_review_decisions" in have else []
        known = {c.name for c in review_flags.columns}
        with store_for(ws).begin() as conn:  # committed before the old tables go, so nothing is lost
            moved = set(conn.scalars(sa.select(review_flags.c.flag_id)))  # by an earlier, interrupted move
            flags = [f for f in flags if f["flag_id"] not in moved]
            decisions = [d for d in decisions if d["flag_id"] not in moved]
            if flags:
                conn.execute(review_flags.insert(), [{k: v for k, v in f.items() if k in known} for f in flags])
            if decisions:
                conn.execute(review_decisions.insert(), decisions)
        for table in reversed(LEGACY):
            con.execute(f"DROP TABLE IF EXISTS {table}")


def _rows(con, table: str) -> list[dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def score(ws: Workspace, model: str, *, version: int | None = None, purpose: str = "care_management",
          rise: float = 0.10, capacity: int | None = None, actor: Actor | None = None) -> dict[str, int]:
    """Score everyone at risk on the last day of data (the enrolled; for readmission, members discharged in
    the last 30 days) with an approved model version, and queue the flags; returns counts. The scoring is
    recorded as done by `actor` (the operating-system user unless given) for `purpose`.

    `rise` is in points of probability, or for a cost model a share of its operating threshold. `capacity` is
    how many flags the reviewers can work through before the next scoring (default: the workspace's
    `[review] capacity`, else no limit): the queue is topped up to it, highest risk first, and the members
    above the threshold left out are counted (`over_capacity`), not queued, so the queue stays one people can
    finish."""
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
    with store_for(ws).connect() as conn:
        open_ = set(conn.scalars(sa.select(review_flags.c.member_id).where(
            review_flags.c.model == model, review_flags.c.status.in_(("open", "deferred")))))
    before = np.array([prev.get(m, np.nan) for m in members], dtype=float)
    high = p >= threshold
    rose = ~np.isnan(before) & (p - np.nan_to_num(before) >= rise * (threshold if amount else 1.0))
    waiting = np.fromiter((m in open_ for m in members), bool, len(members))  # np.isin is quadratic on strings
    flag = (high | rose) & ~waiting
    idx = np.flatnonzero(flag)
    capacity = capacity if capacity is not None else ws.config.get("review", {}).get("capacity")
    over = 0
    if capacity is not None:
        room = max(int(capacity) - len(open_), 0)
        idx = idx[np.argsort(-p[idx], kind="stable")]  # highest risk first
        over, idx = max(len(idx) - room, 0), np.sort(idx[:room])
    now = _now()
    n = len(members)
    scores = pa.table({"member_id": members.astype(str), "model": [model] * n,
                       "version": pa.array([card.version] * n, pa.int32()), "as_of": pa.array([as_of] * n, pa.date32()),
                       "score": p, "scored_at": pa.array([now] * n, pa.timestamp("us"))})
    rise_words = [f"rose by ${p[i] - before[i]:,.0f}" if amount else f"rose by {p[i] - before[i]:.0%}" for i in idx]
    flags = [{"flag_id": uuid.uuid4().hex[:12], "member_id": str(members[i]), "model": model, "version": card.version,
              "outcome": outcome, "as_of": as_of, "score": float(p[i]),
              "previous_score": None if np.isnan(before[i]) else float(before[i]), "threshold": threshold,
              "why": "above the threshold" if high[i] else w, "reasons": None, "features": json.dumps(X[i].tolist()),
              "created_at": now, "status": "open"} for i, w in zip(idx, rise_words)]
    # the flags and their audit event commit only if the scores do (the scores are committed first, inside)
    with audited(ws, actor or Actor.local(purpose), kind="change", action="C", subtype="risk.score",
                 entity_type="model", entity_id=f"{model}/v{card.version}",
                 detail={"scored": len(members), "flagged": len(flags), "as_of": str(as_of),
                         **({"capacity": int(capacity), "over_capacity": over} if capacity is not None else {})}
                 ) as event:
        if flags:
            event.conn.execute(review_flags.insert(), flags)
        event.record()
        with ws.transaction() as con:
            con.register("_new_rows", scores)
            con.execute("INSERT INTO _risk_scores BY NAME SELECT * FROM _new_rows")
            con.unregister("_new_rows")
    return {"scored": int(len(members)), "flagged": int(len(idx)), "already_open": int(((high | rose) & ~flag).sum()),
            "over_capacity": over}


def _explain(ws: Workspace, flags: list[dict[str, Any]]) -> None:
    """Fill in the reasons of the flags that have none yet, worked out from the features each was scored on and
    the model version that scored it (the same inputs give the same reasons whenever they are asked for), one
    model load and one batch per version, and keep them."""
    todo = [f for f in flags if f.get("reasons") is None]
    for model, version in sorted({(f["model"], f["version"]) for f in todo}):
        batch = [f for f in todo if (f["model"], f["version"]) == (model, version)]
        typical = get_card(ws, model, version).training_data["typical values"]
        X = np.array([json.loads(f["features"]) for f in batch], dtype=float)
        said = reasons(load_version(ws, model, version), X, np.array([typical[n] for n in typical]), list(typical))
        with store_for(ws).begin() as conn:
            for f, words in zip(batch, said):
                f["reasons"] = json.dumps(words)
                conn.execute(review_flags.update().where(review_flags.c.flag_id == f["flag_id"])
                             .values(reasons=f["reasons"]))


def score_text(outcome: str, value: float) -> str:
    """A score as a reader expects it: a probability, or an amount for cost models."""
    return f"${value:,.0f}" if OUTCOMES[outcome].kind == "amount" else f"{value:.1%}"




def _log(ws: Workspace, reviewer: str, role: str, purpose: str, what: str, flag_id: str | None = None,
         member_id: str | None = None, conn: sa.Connection | None = None, where: str = "server",
         **detail: Any) -> None:
    """Record a look or a change in the workspace's audit trail (member ids are pseudonyms already)."""
    if not reviewer:
        raise CaretwinError("say who is reviewing (a reviewer name)")
    kind, action = {"list": ("query", "E"), "show": ("read", "R"), "decide": ("change", "U"),
                    "export": ("export", "R")}[what]
    # at the command line or in a notebook the operating-system user is who acted; the reviewer's name is kept too
    actor = Actor.local(purpose) if role == LOCAL else Actor(reviewer, role, purpose, where)
    if actor.name != reviewer:
        detail = {"reviewer": reviewer, **detail}
    if actor.where:
        detail = {**detail, "from": actor.where}
    if purpose not in PURPOSE_CODES:  # a look for no known purpose is refused, and the refusal recorded
        trail_for(ws).record(kind="security", action=action, subtype=f"review.{what}", agent=actor.name, role=role,
                             purpose=purpose[:64], entity_type="review_queue", outcome="4",
                             detail={**detail, "refused": "unknown purpose of use"})
        raise CaretwinError(f"{purpose!r} is not a purpose of use; choose one of: {', '.join(PURPOSE_CODES)}")
    trail_for(ws).record(kind=kind, action=action, subtype=f"review.{what}", agent=actor.name, role=role,
                         purpose=purpose, entity_type="member" if member_id else "review_queue", entity_id=member_id,
                         detail={"flag": flag_id, **detail} if flag_id else detail, conn=conn)


SORTS = {  # how the queue can be ordered: each a key on a flag, ties broken by the flag id
    "risk": lambda f: (-f["score"], f["flag_id"]),
    "region": lambda f: (f["region_id"] or "~", -f["score"], f["flag_id"]),
    "reason": lambda f: (f["why"] != "above the threshold", f["why"], -f["score"], f["flag_id"]),
    "oldest": lambda f: (f["created_at"], -f["score"], f["flag_id"]),
}
REASONS = ("threshold", "rise")  # why a flag was raised: above the model's threshold, or a large rise


def list_flags(ws: Workspace, *, reviewer: str, role: str = LOCAL, purpose: str = "care_management",
               include_decided: bool = False, limit: int | None = None, offset: int = 0,
               region: str | None = None, why: str | None = None, model: str | None = None,
               sort: str = "risk", where: str = "server") -> list[dict[str, Any]]:
    """The queue (open and deferred flags), a page of it with `limit` and `offset`, each with the member's
    region and the reasons in words. `region`, `why` (threshold or rise) and `model` narrow it; `sort` orders
    it by risk (highest first), region, reason or oldest. Looking at it is recorded, with the filters."""
    if sort not in SORTS:
        raise CaretwinError(f"sort must be one of: {', '.join(SORTS)}")
    if why not in (None, *REASONS):
        raise CaretwinError(f"why must be one of: {', '.join(REASONS)}")
    prepare(ws)
    asked = {k: v for k, v in (("region", region), ("why", why), ("model", model), ("sort", sort)) if v}
    _log(ws, reviewer, role, purpose, "list", where=where, **asked)
    f = review_flags.c
    q = sa.select(f.flag_id, f.member_id, f.model, f.version, f.outcome, f.as_of, f.score, f.why, f.status,
                  f.created_at, f.reasons, f.features)
    if not include_decided:
        q = q.where(f.status.in_(("open", "deferred")))
    if model:
        q = q.where(f.model == model)
    if why:
        q = q.where((f.why == "above the threshold") if why == "threshold" else (f.why != "above the threshold"))
    with store_for(ws).connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    places = _regions(ws, [r["member_id"] for r in rows])
    for r in rows:
        r["region_id"] = places.get(r["member_id"])
    if region:
        rows = [r for r in rows if r["region_id"] == region]
    rows.sort(key=SORTS[sort])
    page = rows[offset:None if limit is None else offset + limit]
    _explain(ws, page)
    for r in page:
        r["reasons"] = json.loads(r["reasons"])
        del r["features"], r["member_id"]  # the queue names flags; a member's pseudonym is for `show`
    return page


def _regions(ws: Workspace, members: list[str]) -> dict[str, str]:
    """Each member's region, read from the workspace in one query."""
    if not members:
        return {}
    ws.con.register("_asked", pa.table({"member_id": sorted(set(members))}))
    try:
        return dict(ws.con.execute("SELECT m.member_id, m.region_id FROM members m JOIN _asked USING (member_id)")
                    .fetchall())
    finally:
        ws.con.unregister("_asked")


def count_flags(ws: Workspace) -> dict[str, int]:
    """How many flags are open, deferred and decided (counts only: no look at a person, nothing recorded)."""
    with store_for(ws).connect() as conn:
        have = dict(conn.execute(sa.select(review_flags.c.status, sa.func.count()).group_by(review_flags.c.status)).all())
    return {s: int(have.get(s, 0)) for s in ("open", "deferred", "decided")}


def _decisions(conn: sa.Connection, flag_id: str) -> list[dict[str, Any]]:
    d = review_decisions.c
    return [dict(r._mapping) for r in conn.execute(
        sa.select(d.decision, d.reason, d.reviewer, d.decided_at).where(d.flag_id == flag_id).order_by(d.id))]


def flag_member(ws: Workspace, flag_id: str) -> str:
    """The pseudonym a flag is about (for a step that records its own look, such as re-identification)."""
    with store_for(ws).connect() as conn:
        member = conn.scalar(sa.select(review_flags.c.member_id).where(review_flags.c.flag_id == flag_id))
    if member is None:
        raise CaretwinError(f"no flag {flag_id!r} in the review queue")
    return member


def show(ws: Workspace, flag_id: str, *, reviewer: str, role: str = LOCAL,
         purpose: str = "care_management", where: str = "server") -> dict[str, Any]:
    """One flag with its reasons, the member's history over the year before it (`context.History`) and the
    decisions so far; opening it is recorded."""
    prepare(ws)
    with store_for(ws).connect() as conn:
        row = conn.execute(sa.select(review_flags).where(review_flags.c.flag_id == flag_id)).first()
        if row is None:
            raise CaretwinError(f"no flag {flag_id!r} in the review queue")
        flag = dict(row._mapping)
        flag["decisions"] = _decisions(conn, flag_id)
    _log(ws, reviewer, role, purpose, "show", flag_id, flag["member_id"], where=where)
    _explain(ws, [flag])
    flag["reasons"] = json.loads(flag["reasons"])
    flag["history"] = member_history(ws, flag["member_id"], flag["as_of"])
    del flag["features"]
    return flag


def decide(ws: Workspace, flag_id: str, decision: str, reason: str, *, reviewer: str, role: str = LOCAL,
           purpose: str = "care_management", where: str = "server") -> str:
    """Record a person's decision on a flag; accept and override close it, defer keeps it in the queue."""
    if decision not in DECISIONS:
        raise CaretwinError(f"decision must be one of: {', '.join(DECISIONS)}")
    if not reason or not reason.strip():
        raise CaretwinError("a decision needs a reason")
    if not reviewer:
        raise CaretwinError("say who is deciding (a reviewer name)")
    prepare(ws)
    f = review_flags.c
    status = "deferred" if decision == "defer" else "decided"
    # one transaction: the decision, the flag's new status and the audit event, or none of them
    with trail_for(ws).transaction() as conn:
        row = conn.execute(sa.select(f.status, f.member_id).where(f.flag_id == flag_id).with_for_update()).first()
        if row is None:
            raise CaretwinError(f"no flag {flag_id!r} in the review queue")
        if row.status == "decided":
            raise CaretwinError(f"flag {flag_id} is already decided")
        conn.execute(review_decisions.insert().values(flag_id=flag_id, decision=decision, reason=reason.strip(),
                                                      reviewer=reviewer, decided_at=_now()))
        conn.execute(review_flags.update().where(f.flag_id == flag_id).values(status=status))
        _log(ws, reviewer, role, purpose, "decide", flag_id, row.member_id, conn=conn, where=where,
             decision=decision)
    return status


def export_decisions(ws: Workspace, path: str | Path, *, reviewer: str, role: str = LOCAL,
                     purpose: str = "quality_improvement", where: str = "server") -> int:
    """Every decision with its flag, as CSV (written aside, then renamed; text that a spreadsheet would run as a
    formula is quoted); returns the rows written."""
    prepare(ws)
    _log(ws, reviewer, role, purpose, "export", file=Path(path).name, where=where)
    d, f = review_decisions.c, review_flags.c
    q = (sa.select(d.flag_id, f.member_id, f.model, f.version, f.outcome, f.as_of, f.score, f.why, d.decision,
                   d.reason, d.reviewer, d.decided_at)
         .join_from(review_decisions, review_flags, d.flag_id == f.flag_id).order_by(d.decided_at, d.id))
    with store_for(ws).connect() as conn:
        rows = [list(r) for r in conn.execute(q)]
    for r in rows:
        r[6] = round(r[6], 4)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["flag_id", "member_id", "model", "version", "outcome", "as_of", "score", "why", "decision",
                    "reason", "reviewer", "decided_at"])
        w.writerows([spreadsheet_safe(v) for v in r] for r in rows)  # reasons are free text
    os.replace(tmp, path)
    return len(rows)
