"""Who is acting at the command line or in a notebook, for which purpose, and whether they may.

By default the actor is the operating-system user and host (role `local`). A workspace shared by several
people on one machine can require log-in instead (`[access] require_login = true` in its `caretwin.toml`):
`caretwin login` then opens a session as one of the workspace's users, its token kept in a file only the
operating-system user can read, and every command acts as that user, with that user's role and purposes.

This attributes work to a named person and keeps each role to its actions; it is not a wall against someone
who can write the workspace folder itself (file permissions are that wall).
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

from caretwin.errors import CaretwinError
from caretwin.governance.audit import LOCAL, Actor, trail_for
from caretwin.governance.policy import Decision, authorize, authorize_local
from caretwin.governance.store import store_for
from caretwin.files import write_private
from caretwin.governance.users import User, log_in, log_out, record_log_in, user_for


def access_config(ws) -> dict:
    return ws.config.get("access", {})


def requires_login(ws) -> bool:
    return bool(access_config(ws).get("require_login", False))


def default_purpose(ws, fallback: str) -> str:
    """The purpose recorded when a command names none: the workspace's `[access] purpose`, else `fallback`."""
    return str(access_config(ws).get("purpose", fallback))


def session_file(ws) -> Path:
    """Where this operating-system user's session for `ws` is kept (`CARETWIN_SESSIONS` overrides the folder)."""
    folder = Path(os.environ.get("CARETWIN_SESSIONS")
                  or Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "caretwin" / "sessions")
    return folder / f"{hashlib.sha256(str(ws.path.resolve()).encode()).hexdigest()[:24]}.token"


def cli_log_in(ws, name: str, password: str) -> User:
    """Open a session as `name` for this operating-system user (recorded, refused or not)."""
    trail, where = trail_for(ws), socket.gethostname()
    try:
        token, user = log_in(store_for(ws), name, password)
    except CaretwinError:
        record_log_in(trail, name, None, where=where)
        raise
    path = session_file(ws)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, token)
    record_log_in(trail, name, user, where=where)
    return user


def cli_log_out(ws) -> bool:
    """End this operating-system user's session for `ws`; False when there was none."""
    path = session_file(ws)
    if not path.exists():
        return False
    log_out(store_for(ws), path.read_text().strip(), trail=trail_for(ws))
    path.unlink()
    return True


def cli_user(ws) -> User | None:
    """The user whose live session this operating-system user holds for `ws`, if any."""
    path = session_file(ws)
    return user_for(store_for(ws), path.read_text().strip()) if path.exists() else None


def cli_actor(ws, action: str, purpose: str) -> Actor:
    """The actor for `action` at the command line, or a refusal (recorded in the trail) naming why.

    Logged in, the user's role and purposes apply (see `policy`). Not logged in, where the workspace allows it,
    the operating-system user acts with role `local`: any purpose of use we know, but person-level actions
    only for a purpose that needs a person's record."""
    if requires_login(ws):
        user = cli_user(ws)
        if user is None:
            raise CaretwinError(f"{ws.path.name} requires log-in at the command line: run `caretwin login "
                                f"{ws.path} --user NAME` first (or log in again: sessions end after 8 hours)")
        actor = Actor(user.name, user.role, purpose, socket.gethostname())
    else:
        actor = Actor.local(purpose)
    decision = allowed(actor, action)
    if not decision.allowed:
        trail_for(ws).record(kind="security", action="E", subtype=action, agent=actor.name, role=actor.role,
                             purpose=purpose[:64], entity_type="policy", outcome="4",
                             detail={"refused": decision.reason, "from": actor.where})
        raise CaretwinError(decision.reason)
    return actor


def allowed(actor: Actor, action: str) -> Decision:
    """The policy's answer for `actor`: their role's, or the local user's (`policy.authorize_local`)."""
    return authorize_local(action, actor.purpose) if actor.role == LOCAL else \
        authorize(actor.role, action, actor.purpose)


__all__ = ["LOCAL", "allowed", "cli_actor", "cli_log_in", "cli_log_out", "cli_user", "default_purpose", "requires_login"]
