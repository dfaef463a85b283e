"""Who may do what, and for which purposes: the whole authorisation policy, in one place.

Every request names an action (below) and a purpose of use. It is allowed when the user's role holds the
action and the purpose is one the role may act for. Only roles in `PERSON_LEVEL` see records about a
person; every aggregate shown to another role has small cells suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass

from caretwin.governance.audit import PURPOSE_CODES

ROLES = ("admin", "analyst", "care_coordinator", "executive", "auditor")
PERSON_LEVEL = frozenset({"care_coordinator"})

# purposes of use each role may act for (HL7 v3 PurposeOfUse codes in caretwin.governance.audit)
PURPOSES: dict[str, frozenset[str]] = {
    "admin": frozenset({"administration", "operations"}),
    "analyst": frozenset({"planning", "operations", "research", "quality_improvement"}),
    "care_coordinator": frozenset({"care_management"}),
    "executive": frozenset({"planning", "operations"}),
    "auditor": frozenset({"audit"}),
}

_ALL = frozenset(ROLES)
ACTIONS: dict[str, frozenset[str]] = {
    "status.read": _ALL,
    "quality.read": frozenset({"admin", "analyst", "executive"}),
    "data.ingest": frozenset({"admin", "analyst"}),
    "model.calibrate": frozenset({"analyst"}),
    "scenario.run": frozenset({"analyst"}),
    "scenario.read": frozenset({"analyst", "executive"}),
    "report.read": frozenset({"analyst", "executive"}),
    "aggregate.read": frozenset({"analyst", "executive", "care_coordinator"}),
    "person.read": PERSON_LEVEL,
    "review.read": PERSON_LEVEL,
    "review.decide": PERSON_LEVEL,
    "models.read": frozenset({"admin", "analyst", "executive", "auditor", "care_coordinator"}),
    "models.train": frozenset({"analyst"}),
    "models.approve": frozenset({"admin"}),
    "audit.read": frozenset({"auditor"}),
    "users.manage": frozenset({"admin"}),
}

# actions on a person's record; at the command line without log-in (role `local`) they need one of these purposes
PERSON_LEVEL_ACTIONS = frozenset(a for a, roles in ACTIONS.items() if roles == PERSON_LEVEL)
PERSON_PURPOSES = frozenset({"care_management", "quality_improvement", "audit"})


# each action in words, for refusals a person reads ("the executive role may not open the risk review queue")
ACTION_WORDS = {
    "status.read": "see the workspace's status", "quality.read": "see the data-quality report",
    "data.ingest": "load data", "model.calibrate": "calibrate the twin", "scenario.run": "run scenarios",
    "scenario.read": "see scenario runs and comparisons", "report.read": "read board reports",
    "aggregate.read": "see aggregate figures", "person.read": "open a person's record",
    "review.read": "open the risk review queue", "review.decide": "decide risk flags",
    "models.read": "see model cards", "models.train": "train models", "models.approve": "approve models",
    "audit.read": "read the audit trail", "users.manage": "manage users",
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def authorize(role: str, action: str, purpose: str) -> Decision:
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    if role not in ACTIONS[action]:
        return Decision(False, f"the {role.replace('_', ' ')} role may not {ACTION_WORDS[action]}")
    if purpose not in PURPOSES.get(role, ()):
        allowed = ", ".join(sorted(PURPOSES.get(role, ())))
        return Decision(False, f"the {role} role may not act for {purpose!r} (its purposes: {allowed})")
    return Decision(True, "allowed")


def authorize_local(action: str, purpose: str) -> Decision:
    """For the workspace's own user at the command line or in a notebook (role `local`, no log-in): any purpose
    of use we know, but an action on a person's record only for a purpose that needs one."""
    if purpose not in PURPOSE_CODES:
        return Decision(False, f"{purpose!r} is not a purpose of use; choose one of: {', '.join(PURPOSE_CODES)}")
    if action in PERSON_LEVEL_ACTIONS and purpose not in PERSON_PURPOSES:
        return Decision(False, f"to {ACTION_WORDS[action]} the purpose must be one of "
                               f"{', '.join(sorted(PERSON_PURPOSES))}, not {purpose!r}")
    return Decision(True, "allowed")
