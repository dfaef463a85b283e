"""The governance store: users, sessions, the audit trail, the review queue and background jobs, in a SQL
database reached through SQLAlchemy.

The embedded default is a SQLite file in the workspace (`governance.sqlite`); a server names another
database (PostgreSQL) with `database_url` or `CARETWIN_DATABASE_URL`. Tables are created and upgraded by the
Alembic migrations in `migrations/`, so a store made by an older caretwin is brought up to date on open.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

users = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("disabled_at", sa.DateTime),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.DateTime),
)
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 of the token; the token is never stored
    sa.Column("user_name", sa.String(64), sa.ForeignKey("users.name"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
)
audit_events = sa.Table(
    "audit_events", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("recorded", sa.String(32), nullable=False),  # ISO 8601 UTC, as hashed
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("subtype", sa.String(64), nullable=False),
    sa.Column("action", sa.String(1), nullable=False),
    sa.Column("outcome", sa.String(2), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("agent_role", sa.String(32), nullable=False),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(255)),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
audit_tip = sa.Table(  # one row, updated with every append: it serialises writers (a row lock)
    "audit_tip", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

review_flags = sa.Table(  # a model's flag on a member (a pseudonym), waiting for a person's decision
    "review_flags", metadata,
    sa.Column("flag_id", sa.String(32), primary_key=True),
    sa.Column("member_id", sa.String(64), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("previous_score", sa.Float),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("why", sa.String(255), nullable=False),
    sa.Column("reasons", sa.Text),  # JSON, worked out on first look
    sa.Column("features", sa.Text),  # JSON: what the flag was scored on
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, deferred, decided
    sa.Index("ix_review_flags_queue", "status", "model"),
)
review_decisions = sa.Table(
    "review_decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flag_id", sa.String(32), sa.ForeignKey("review_flags.flag_id"), nullable=False, index=True),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reviewer", sa.String(64), nullable=False),
    sa.Column("decided_at", sa.DateTime, nullable=False),
)
jobs = sa.Table(  # background work started through the API, kept across restarts
    "jobs", metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # queued, running, done, failed, cancelled
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("result", sa.Text),  # JSON
    sa.Column("error", sa.Text),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("runner", sa.String(255), nullable=False),  # host:pid of the process running it
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(workspace: Path, url: str | None = None) -> str:
    return url or os.environ.get("CARETWIN_DATABASE_URL") or f"sqlite:///{Path(workspace).absolute() / 'governance.sqlite'}"


def upgrade(engine: Engine) -> None:
    """Bring the store's tables up to the newest migration."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


_engines: dict[str, Engine] = {}


def store_for(ws) -> Engine:
    """The governance store of an open workspace (the database it was opened with, or its own SQLite file)."""
    return engine_for(ws.path, ws.database)


def engine_for(workspace: Path, url: str | None = None) -> Engine:
    """The (cached) engine for a workspace's store: one pool per database in a process."""
    key = database_url(workspace, url)
    if key in _engines and key.startswith("sqlite:///") and not Path(key.removeprefix("sqlite:///")).exists():
        _engines.pop(key).dispose()  # the file was removed (a workspace replaced): make and migrate it anew
    if key not in _engines:
        _engines[key] = connect(workspace, url)
    return _engines[key]


def connect(workspace: Path, url: str | None = None) -> Engine:
    """An engine on the workspace's governance store, migrated to the newest schema."""
    engine = sa.create_engine(database_url(workspace, url), future=True)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _):  # wait for a writer instead of failing at once; enforce foreign keys
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 10000")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()
    upgrade(engine)
    return engine
