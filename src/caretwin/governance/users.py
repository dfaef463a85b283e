"""Local users: argon2id password hashes (RFC 9106), sessions as random tokens with an expiry, and log-in
attempts limited per user (after `MAX_FAILURES` wrong passwords the account waits `LOCKOUT`).

Only a SHA-256 of each token is stored, so a copy of the database gives no usable session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy.engine import Engine

from caretwin.errors import CaretwinError
from caretwin.governance.audit import Actor, Audited, AuditTrail
from caretwin.governance.policy import ROLES
from caretwin.governance.store import sessions, users

MIN_PASSWORD = 12
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION = timedelta(hours=8)
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a real password")  # checked for unknown names, so they take as long as known ones


@dataclass(frozen=True)
class User:
    name: str
    role: str
    active: bool


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _changing(engine: Engine, trail: AuditTrail | None):
    """A store transaction for a change to the accounts, in which `trail` (when given) records it too."""
    return trail.transaction() if trail is not None else engine.begin()


def _record(trail: AuditTrail | None, conn: sa.Connection, actor: Actor | None, **event) -> None:
    if trail is not None:
        Audited(trail, conn, actor or Actor.local("administration"), event).record()


def add_user(engine: Engine, name: str, role: str, password: str, *, trail: AuditTrail | None = None,
             actor: Actor | None = None, by: str | None = None) -> User:
    """Add an account; with `trail`, the addition is recorded in it in the same transaction (as done by `actor`,
    the operating-system user unless given; `by` names the person who asked, in addition)."""
    if role not in ROLES:
        raise CaretwinError(f"role must be one of: {', '.join(ROLES)}")
    if not name or len(name) > 64 or not name.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise CaretwinError("user name: 1-64 letters, digits, '.', '_' or '-'")
    if len(password) < MIN_PASSWORD:
        raise CaretwinError(f"password: at least {MIN_PASSWORD} characters")
    with _changing(engine, trail) as conn:
        if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
            raise CaretwinError(f"user {name!r} already exists")
        conn.execute(users.insert().values(name=name, role=role, password_hash=_hasher.hash(password), active=True,
                                           created_at=_now(), failed_logins=0))
        _record(trail, conn, actor, kind="change", action="C", subtype="users.add", entity_type="user",
                entity_id=name, detail={"role": role, **({"by": by} if by else {})})
    return User(name, role, True)


def disable_user(engine: Engine, name: str, *, trail: AuditTrail | None = None, actor: Actor | None = None,
                 by: str | None = None) -> None:
    """Disable an account and end its sessions (the record stays, for the audit trail); with `trail`, recorded."""
    with _changing(engine, trail) as conn:
        if not conn.execute(users.update().where(users.c.name == name).values(active=False, disabled_at=_now())).rowcount:
            raise CaretwinError(f"no user {name!r}")
        conn.execute(sessions.update().where(sessions.c.user_name == name).values(revoked=True))
        _record(trail, conn, actor, kind="change", action="U", subtype="users.disable", entity_type="user",
                entity_id=name, detail={"by": by} if by else {})


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        return [User(r.name, r.role, r.active) for r in
                conn.execute(sa.select(users.c.name, users.c.role, users.c.active).order_by(users.c.name))]


def log_in(engine: Engine, name: str, password: str, *, ttl: timedelta = SESSION) -> tuple[str, User]:
    """A new session token for the right password; a refusal says only that the log-in failed."""
    refused = CaretwinError("log-in failed: wrong name or password, or the account is disabled or locked")
    now = _now()
    with engine.begin() as conn:  # a refusal is raised after the block, so the failure count is committed
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        ok = False
        if row is None or not row.active or (row.locked_until and row.locked_until > now):
            try:  # unknown, disabled and locked accounts take as long to refuse as a wrong password
                _hasher.verify(_DUMMY, password)
            except VerificationError:
                pass
        else:
            try:
                ok = _hasher.verify(row.password_hash, password)
            except VerificationError:
                failures = row.failed_logins + 1
                locked = failures >= MAX_FAILURES
                conn.execute(users.update().where(users.c.name == name).values(
                    failed_logins=0 if locked else failures, locked_until=now + LOCKOUT if locked else None))
        if ok:
            token = secrets.token_urlsafe(32)
            conn.execute(users.update().where(users.c.name == name).values(failed_logins=0, locked_until=None))
            conn.execute(sessions.insert().values(token_hash=_digest(token), user_name=name, created_at=now,
                                                  expires_at=now + ttl, revoked=False))
    if not ok:
        raise refused
    return token, User(row.name, row.role, True)


def record_log_in(trail: AuditTrail, name: str, user: User | None, *, where: str = "",
                  purpose: str = "administration", refused: str | None = None) -> None:
    """Record a log-in: `user` when it succeeded, else (`user` None, or a `refused` reason) a refusal of the
    name that was tried. Every door (the API, the dashboard, the command line) records through here."""
    ok = user is not None and refused is None
    detail = {**({"from": where} if where else {}), **({"refused": refused} if refused else {})}
    throttled = refused is not None and user is None  # refused before any password was checked
    trail.record(kind="security" if throttled else "login", action="E", subtype="session.create",
                 agent=user.name if user else name[:64], role=user.role if user else "unknown",
                 purpose=purpose if ok else "administration", entity_type="session", outcome="0" if ok else "4",
                 detail=detail)


def user_for(engine: Engine, token: str) -> User | None:
    """The user a live session token belongs to, or None (unknown, expired, revoked or disabled)."""
    q = (sa.select(users.c.name, users.c.role).join(sessions, sessions.c.user_name == users.c.name)
         .where(sessions.c.token_hash == _digest(token), sessions.c.expires_at > _now(),
                sessions.c.revoked.is_(False), users.c.active.is_(True)))
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return User(row.name, row.role, True) if row else None


def log_out(engine: Engine, token: str, *, trail: AuditTrail | None = None, purpose: str = "administration") -> None:
    """End a session; with `trail`, the log-out is recorded in it in the same transaction, as its user."""
    with _changing(engine, trail) as conn:
        row = conn.execute(sa.select(users.c.name, users.c.role).join(sessions, sessions.c.user_name == users.c.name)
                           .where(sessions.c.token_hash == _digest(token), sessions.c.revoked.is_(False))).first()
        conn.execute(sessions.update().where(sessions.c.token_hash == _digest(token)).values(revoked=True))
        if row is not None:
            _record(trail, conn, Actor(row.name, row.role, purpose, "server"), kind="login", action="E",
                    subtype="session.end", entity_type="session")
