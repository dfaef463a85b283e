"""The model registry: every model version with its card, and who approved it for what.

A version is a draft until someone approves it for named purposes of use; it can be retired.
Scoring for an operational purpose (care management, operations) with a version not approved
for that purpose is refused. The card covers the source attributes ONC's HTI-1 rule asks of
predictive decision support interventions (45 CFR 170.315(b)(11)): intended use and users,
out-of-scope use, training data and its demographics, fairness approach and results,
validation, monitoring and update schedule.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from caretwin._version import __version__
from caretwin.errors import CaretwinError
from caretwin.files import new_folder
from caretwin.governance.audit import Actor, audited
from caretwin.workspace import Workspace

STATUSES = ("draft", "approved", "retired")
PURPOSES = ("care_management", "operations", "planning", "research", "quality_improvement")
OPERATIONAL = ("care_management", "operations")  # purposes that act on people or services
MODELS_DDL = """CREATE TABLE IF NOT EXISTS _models (
    name VARCHAR NOT NULL, version INTEGER NOT NULL, status VARCHAR NOT NULL, approved_for VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL, changed_at TIMESTAMP NOT NULL, changed_by VARCHAR, card VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
)"""


@dataclass
class ModelCard:
    """What a reader needs to judge a model version (HTI-1 source attributes)."""

    name: str
    outcome: str  # what it predicts, and over what horizon
    intended_use: str
    intended_users: str
    out_of_scope: str
    training_data: dict[str, Any]  # source, period, rows, persons, outcome rate
    demographics: dict[str, dict[str, float | None]]  # feature -> group -> share of the training data (None:
    # a group of 1-10 people, or its partner, suppressed)
    fairness_approach: str
    fairness_results: list[dict[str, Any]]  # by group: feature, group, n, its metrics, flagged
    validation: dict[str, Any]  # held-out metrics with intervals, and how the split was made
    monitoring: str
    update_schedule: str
    version: int = 0
    status: str = "draft"
    approved_for: list[str] = field(default_factory=list)
    code_version: str = __version__

    def markdown(self) -> str:
        v = self.validation
        lines = [f"# Model card: {self.name}, version {self.version} ({self.status})", "",
                 f"**Predicts:** {self.outcome}", f"**Intended use:** {self.intended_use}",
                 f"**Intended users:** {self.intended_users}", f"**Out of scope:** {self.out_of_scope}",
                 f"**Approved for:** {', '.join(self.approved_for) or 'nothing yet (draft)'}", "",
                 "## Training data", *[f"- {k}: {val}" for k, val in self.training_data.items()], "",
                 "## Who is in the training data"]
        for feature, shares in self.demographics.items():
            lines.append(f"- {feature}: " + ", ".join(f"{g} {'(fewer than 11 people)' if s is None else f'{s:.1%}'}"
                                                      for g, s in shares.items()))
        lines += ["", "## Validation", *[f"- {k}: {val}" for k, val in v.items()], "",
                  "## Fairness", self.fairness_approach, ""]
        if self.fairness_results:
            cols = [k for k in self.fairness_results[0] if k not in ("feature", "group", "flagged")]
            lines += ["| group | " + " | ".join(c.replace("_", " ") for c in cols) + " | flagged |",
                      "|---" * (len(cols) + 2) + "|"]
            lines += [f"| {r['feature']}={r['group']} | " + " | ".join(estimate_text(r[c]) for c in cols)
                      + f" | {_flags(r['flagged'])} |" for r in self.fairness_results]
        lines += ["", "## Monitoring", self.monitoring, "", "## Updates", self.update_schedule, "",
                  f"caretwin {self.code_version}"]
        return "\n".join(lines) + "\n"


def _folder(ws: Workspace, name: str, version: int) -> Path:
    return ws.path / "models" / name / f"v{version}"


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]{0,63}", name):
        raise CaretwinError(f"model name {name!r}: use lower-case letters, digits, _ and - (up to 64)")


def register(ws: Workspace, model: Any, card: ModelCard, by: str | None = None, *,
             actor: Actor | None = None) -> ModelCard:
    """Store a fitted model and its card as the next version of `card.name`, as a draft (recorded)."""
    _check_name(card.name)
    ws.con.execute(MODELS_DDL)
    last = ws.con.execute("SELECT max(version) FROM _models WHERE name = ?", [card.name]).fetchone()[0]
    card.version, card.status, card.approved_for = (last or 0) + 1, "draft", []
    target = _folder(ws, card.name, card.version)
    with new_folder(target) as tmp:
        with open(tmp / "model.pkl", "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
        (tmp / "card.json").write_text(json.dumps(asdict(card), indent=1, default=str))
        (tmp / "card.md").write_text(card.markdown())
        # the row is written before the folder is renamed into place: a failed insert leaves no folder
        with audited(ws, actor, kind="change", action="C", subtype="models.register", entity_type="model",
                     entity_id=f"{card.name}/v{card.version}", detail={"by": by}) as event, ws.transaction() as con:
            now = datetime.now(UTC).replace(tzinfo=None)
            con.execute("INSERT INTO _models VALUES (?, ?, 'draft', '[]', ?, ?, ?, ?)",
                        [card.name, card.version, now, now, by, json.dumps(asdict(card), default=str)])
            event.record()
    return card


def get_card(ws: Workspace, name: str, version: int | None = None) -> ModelCard:
    """A version's card with its current status (the latest version when none is named)."""
    ws.con.execute(MODELS_DDL)
    sql = "SELECT card, status, approved_for, version FROM _models WHERE name = ?"
    row = ws.con.execute(sql + (" AND version = ?" if version else " ORDER BY version DESC LIMIT 1"),
                         [name, version] if version else [name]).fetchone()
    if row is None:
        raise CaretwinError(f"no model {name!r}" + (f" version {version}" if version else "") + " in the registry")
    c = ModelCard(**{k: v for k, v in json.loads(row[0]).items()})
    c.status, c.approved_for, c.version = row[1], json.loads(row[2]), row[3]
    return c


def _set(ws: Workspace, name: str, version: int, status: str, approved_for: list[str], by: str | None,
         actor: Actor | None) -> ModelCard:
    c = get_card(ws, name, version)
    if c.status == "retired":
        raise CaretwinError(f"{name} version {version} is retired; register a new version instead")
    subtype = "models.approve" if status == "approved" else "models.retire"
    with audited(ws, actor, kind="change", action="U", subtype=subtype, entity_type="model",
                 entity_id=f"{name}/v{version}", detail={"by": by, "purposes": approved_for}) as event, \
            ws.transaction() as con:
        con.execute("UPDATE _models SET status = ?, approved_for = ?, changed_at = ?, changed_by = ? "
                    "WHERE name = ? AND version = ?",
                    [status, json.dumps(approved_for), datetime.now(UTC).replace(tzinfo=None), by, name, version])
        event.record()
    c.status, c.approved_for = status, approved_for
    (_folder(ws, name, version) / "card.md").write_text(c.markdown())
    return c


def approve(ws: Workspace, name: str, version: int, purposes: list[str], by: str, *,
            actor: Actor | None = None) -> ModelCard:
    """Approve a version for named purposes of use (a person's decision, recorded with their name, `by`, beside
    who made the change, `actor`: the operating-system user unless given)."""
    bad = [p for p in purposes if p not in PURPOSES]
    if bad or not purposes:
        raise CaretwinError(f"purposes must be some of: {', '.join(PURPOSES)}" + (f" (not {bad[0]!r})" if bad else ""))
    if not by:
        raise CaretwinError("an approval needs the name of the person approving")
    purposes = sorted(set(get_card(ws, name, version).approved_for) | set(purposes))
    return _set(ws, name, version, "approved", purposes, by, actor)


def retire(ws: Workspace, name: str, version: int, by: str, *, actor: Actor | None = None) -> ModelCard:
    """Retire a version: it can no longer score, for any purpose (recorded)."""
    return _set(ws, name, version, "retired", [], by, actor)


def load_for(ws: Workspace, name: str, version: int, purpose: str) -> Any:
    """The fitted model, for a purpose: operational use needs an approval for that purpose."""
    if purpose not in PURPOSES:
        raise CaretwinError(f"purpose must be one of: {', '.join(PURPOSES)}")
    c = get_card(ws, name, version)
    if c.status == "retired":
        raise CaretwinError(f"{name} version {version} is retired and cannot score")
    if purpose in OPERATIONAL and purpose not in c.approved_for:
        raise CaretwinError(f"{name} version {version} is not approved for {purpose} "
                            f"(status {c.status}; approved for: {', '.join(c.approved_for) or 'nothing'})")
    return load_version(ws, name, version)


def load_version(ws: Workspace, name: str, version: int) -> Any:
    """The fitted model of a version whatever its status: to explain scores it has given, never to score anew."""
    get_card(ws, name, version)  # a clear error for an unknown version
    with open(_folder(ws, name, version) / "model.pkl", "rb") as f:
        return pickle.load(f)  # the workspace's own file, written by `register`


def list_models(ws: Workspace) -> list[dict[str, Any]]:
    ws.con.execute(MODELS_DDL)
    cur = ws.con.execute("SELECT name, version, status, approved_for, created_at, changed_at, changed_by "
                         "FROM _models ORDER BY name, version")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    for r in rows:
        r["approved_for"] = json.loads(r["approved_for"])
    return rows


__all__ = ["OPERATIONAL", "PURPOSES", "STATUSES", "ModelCard", "approve", "get_card", "list_models", "load_for",
           "load_version", "register", "retire"]


def _flags(flagged: bool | list[str]) -> str:
    """A group's flags in words (cards written before flags were per metric hold a yes or no)."""
    return ("yes: " + ", ".join(flagged)) if isinstance(flagged, list | tuple) and flagged else \
        ("yes" if flagged else "")


def estimate_text(v: Any, digits: int = 2) -> str:
    """An estimate with its interval ({value, low, high}) in figures, "0.61 (0.57 to 0.64)"; a number as a number."""
    if isinstance(v, dict) and "value" in v:
        if v["value"] is None:
            return "–"
        interval = f" ({v['low']:.{digits}f} to {v['high']:.{digits}f})" if v.get("low") is not None else ""
        return f"{v['value']:.{digits}f}{interval}"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return "–" if v is None else str(v)
