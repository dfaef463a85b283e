"""The audit trail: every read of person-level data and every change, as an append-only, hash-chained log.

Each entry carries FHIR AuditEvent's fields (type, subtype, action, recorded, outcome, purpose of use, agent,
source, entity) and two hashes: the previous entry's, and its own, an HMAC-SHA256 (RFC 2104) under a key
derived from the workspace key over the previous hash and its own contents. Editing an entry breaks its
hash; deleting, inserting or reordering entries breaks the chain; and the newest entry's number and hash are
also kept apart from the database, in `WORKSPACE/audit.head`, so removing entries from the end is caught too.
`verify` says which entry is wrong and how. Without the key, nobody can rewrite the chain to hide a change.

Appends are serialised across processes (a lock file beside the head, and the `audit_tip` row inside the
database), so the chain has one order however many servers and commands write to it.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import hmac
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from caretwin import __version__
from caretwin.governance.store import audit_events, audit_tip, store_for

# What happened, as codes of DICOM's audit event types (the codes FHIR R4's audit-event-type value set uses)
KINDS: dict[str, tuple[str, str]] = {
    "login": ("110114", "User Authentication"),
    "read": ("110110", "Patient Record"),
    "query": ("110112", "Query"),
    "change": ("110100", "Application Activity"),
    "export": ("110106", "Export"),
    "security": ("110113", "Security Alert"),
}
ACTIONS = ("C", "R", "U", "D", "E")  # create, read, update, delete, execute
OUTCOMES = {"0": "success", "4": "minor failure", "8": "serious failure", "12": "major failure"}
# our purposes of use as HL7 v3 ActReason (PurposeOfUse) codes
PURPOSE_CODES = {
    "care_management": "CAREMGT", "operations": "HOPERAT", "planning": "POPHLTH", "research": "HRESCH",
    "quality_improvement": "HQUALIMP", "audit": "HCOMPL", "administration": "HSYSADMIN",
}
DCM = "http://dicom.nema.org/resources/ontology/DCM"
_DISPLAY = dict(KINDS.values())  # code -> words
HEAD = "audit.head"


@dataclass(frozen=True)
class Entry:
    seq: int
    recorded: str
    type: str
    subtype: str
    action: str
    outcome: str
    purpose: str
    agent: str
    agent_role: str
    source: str
    entity_type: str
    entity_id: str | None
    detail: str
    prev_hash: str
    hash: str

    def content(self) -> str:
        """What the hash covers: everything but the entry's number and its own hash."""
        return json.dumps([self.recorded, self.type, self.subtype, self.action, self.outcome, self.purpose,
                           self.agent, self.agent_role, self.source, self.entity_type, self.entity_id, self.detail],
                          separators=(",", ":"), ensure_ascii=False)


class AuditTrail:
    """The trail of one workspace: `record` appends, `verify` checks, `export` writes FHIR AuditEvents."""

    def __init__(self, engine: Engine, folder: Path, key: bytes):
        self.engine = engine
        self.folder = Path(folder)
        self._key = hmac.new(key, b"caretwin audit trail", hashlib.sha256).digest()
        self.source = f"caretwin {__version__} on {socket.gethostname()}"

    def _mac(self, prev_hash: str, content: str) -> str:
        return hmac.new(self._key, f"{prev_hash}\n{content}".encode(), hashlib.sha256).hexdigest()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.folder / "audit.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A transaction on the store in which `record(..., conn=)` appends: a change made in it and the
        event recording it are committed together or not at all. (The append lock is taken first, always.)"""
        with self._locked(), self.engine.begin() as conn:
            yield conn

    def record(self, *, kind: str, action: str, subtype: str, agent: str, role: str, purpose: str,
               entity_type: str, entity_id: str | None = None, outcome: str = "0",
               detail: dict[str, Any] | None = None, conn: sa.Connection | None = None) -> int:
        """Append one event; returns its number. Person identifiers must already be pseudonyms. With `conn`
        (from `transaction()`), the event is part of that transaction."""
        if kind not in KINDS or action not in ACTIONS or outcome not in OUTCOMES:
            raise ValueError(f"audit event: kind in {list(KINDS)}, action in {ACTIONS}, outcome in {list(OUTCOMES)}")
        if conn is None:
            with self.transaction() as conn:
                return self.record(kind=kind, action=action, subtype=subtype, agent=agent, role=role, purpose=purpose,
                                   entity_type=entity_type, entity_id=entity_id, outcome=outcome, detail=detail,
                                   conn=conn)
        recorded = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        conn.execute(audit_tip.update().where(audit_tip.c.id == 1).values(seq=audit_tip.c.seq))  # take the lock
        seq, prev = conn.execute(sa.select(audit_tip.c.seq, audit_tip.c.hash).where(audit_tip.c.id == 1)).one()
        e = Entry(seq + 1, recorded, KINDS[kind][0], subtype, action, outcome, purpose, agent, role, self.source,
                  entity_type, entity_id, json.dumps(detail or {}, sort_keys=True), prev, "")
        h = self._mac(prev, e.content())
        conn.execute(audit_events.insert().values(**{**e.__dict__, "hash": h}))
        conn.execute(audit_tip.update().where(audit_tip.c.id == 1).values(seq=e.seq, hash=h))
        self._write_head(e.seq, h)  # before the commit: a failed commit leaves the head ahead, which verify reports
        return e.seq

    def _write_head(self, seq: int, h: str) -> None:
        body = {"seq": seq, "hash": h, "mac": self._mac("head", f"{seq}:{h}")}
        tmp = self.folder / f".{HEAD}.tmp"
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self.folder / HEAD)

    def entries(self, *, after: int = 0, limit: int | None = None) -> list[Entry]:
        q = sa.select(audit_events).where(audit_events.c.seq > after).order_by(audit_events.c.seq)
        with self.engine.connect() as conn:
            return [Entry(**r._mapping) for r in conn.execute(q.limit(limit) if limit else q)]

    def checkpoint(self) -> dict[str, Any]:
        """The trail's newest entry, signed, for an auditor to keep outside the workspace: `verify` given it later
        finds a trail rolled back or wiped together with its head, which the trail alone cannot show."""
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(audit_events.c.seq, audit_events.c.hash)
                                .order_by(audit_events.c.seq.desc()).limit(1)).first()
        seq, h = (last.seq, last.hash) if last else (0, "")
        taken = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return {"seq": seq, "hash": h, "taken": taken, "mac": self._mac("checkpoint", f"{seq}:{h}:{taken}")}

    def verify(self, checkpoints: list[dict[str, Any]] = ()) -> list[str]:
        """Every problem found, each naming the entry; an empty list means the trail is intact. With
        `checkpoints` (from `checkpoint`, kept elsewhere), each checkpointed entry must still be there."""
        rows = self.entries()
        problems: list[str] = []
        position = {r.hash: i for i, r in enumerate(rows)}
        for i, r in enumerate(rows):
            if self._mac(r.prev_hash, r.content()) != r.hash:
                problems.append(f"entry {r.seq} was edited: its contents no longer match its hash")
            before = rows[i - 1] if i else None
            if r.prev_hash == (before.hash if before else ""):
                if before and r.seq != before.seq + 1:
                    problems.append(f"entry {r.seq} was renumbered: it follows entry {before.seq}")
                continue
            j = position.get(r.prev_hash)
            if j is not None and j > i:
                problems.append(f"entry {r.seq} is out of order: it belongs after entry {rows[j].seq}")
            elif j is not None:
                extra = ", ".join(str(x.seq) for x in rows[j + 1:i])
                problems.append(f"entries {extra} were inserted: entry {r.seq} follows entry {rows[j].seq}")
            elif before and r.seq > before.seq + 1:
                gone = f"{before.seq + 1}" if r.seq == before.seq + 2 else f"{before.seq + 1} to {r.seq - 1}"
                problems.append(f"entry {gone} was deleted: entry {r.seq} follows entry {before.seq}")
            else:
                problems.append(f"entry {r.seq} does not follow entry {before.seq if before else '(start)'}: "
                                "an entry before it was deleted or rewritten")
        problems += self._check_head(rows)
        by_seq = {r.seq: r for r in rows}
        for c in checkpoints:
            if self._mac("checkpoint", f"{c.get('seq')}:{c.get('hash')}:{c.get('taken')}") != c.get("mac"):
                problems.append(f"the checkpoint of {c.get('taken')} is not this trail's, or was altered")
            elif c["seq"] and c["seq"] not in by_seq:
                problems.append(f"entry {c['seq']}, which the checkpoint of {c['taken']} holds, is gone: the trail "
                                "was rolled back or wiped")
            elif c["seq"] and by_seq[c["seq"]].hash != c["hash"]:
                problems.append(f"entry {c['seq']} is not the entry the checkpoint of {c['taken']} holds: rewritten")
        return problems

    def _check_head(self, rows: list[Entry]) -> list[str]:
        path = self.folder / HEAD
        if not path.exists():
            return [f"the head record ({HEAD}) is missing"] if rows else []
        head = json.loads(path.read_text())
        if self._mac("head", f"{head['seq']}:{head['hash']}") != head.get("mac"):
            return [f"the head record ({HEAD}) was altered"]
        last = rows[-1] if rows else None
        n = last.seq if last else 0
        if head["seq"] > n:
            gone = f"{n + 1}" if head["seq"] == n + 1 else f"{n + 1} to {head['seq']}"
            return [f"entry {gone} was removed from the end: the log ends at entry {n} but the head records "
                    f"entry {head['seq']}"]
        if head["seq"] < n:
            return [f"entries {head['seq'] + 1} to {n} come after the recorded head: added outside caretwin"]
        if last and last.hash != head["hash"]:
            return [f"entry {n} is not the entry the head records: it was replaced"]
        return []

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one()

    def ndjson(self) -> Iterator[str]:
        """Every entry as a FHIR R4 AuditEvent, one JSON object per line."""
        for e in self.entries():
            yield json.dumps(to_fhir(e), separators=(",", ":")) + "\n"

    def export(self, path: Path) -> int:
        """Write `ndjson()` to a file (written aside, then renamed); returns the entries written."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        n = 0
        with open(tmp, "w") as fh:
            for n, line in enumerate(self.ndjson(), 1):
                fh.write(line)
        os.replace(tmp, path)
        return n


def to_fhir(e: Entry) -> dict[str, Any]:
    """One entry as a FHIR R4 AuditEvent resource."""
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent", "id": f"caretwin-{e.seq}",
        "type": {"system": DCM, "code": e.type, "display": _DISPLAY.get(e.type, e.type)},
        "subtype": [{"system": "urn:caretwin:operation", "code": e.subtype}],
        "action": e.action, "recorded": e.recorded, "outcome": e.outcome,
        "agent": [{"type": {"coding": [{"system": "urn:caretwin:role", "code": e.agent_role}]},
                   "who": {"display": e.agent}, "requestor": True}],
        "source": {"observer": {"display": e.source}},
        "entity": [{"what": {"identifier": {"system": f"urn:caretwin:{e.entity_type}", "value": e.entity_id}}
                    if e.entity_id else {"display": e.entity_type},
                    "description": e.entity_type,
                    "detail": [{"type": "caretwin", "valueString": e.detail}]}],
        "extension": [{"url": "urn:caretwin:audit-chain",
                       "extension": [{"url": "sequence", "valueInteger": e.seq},
                                     *([{"url": "previousHash", "valueString": e.prev_hash}] if e.prev_hash else []),
                                     {"url": "hash", "valueString": e.hash}]}],
    }
    if e.purpose in PURPOSE_CODES:
        resource["purposeOfEvent"] = [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": PURPOSE_CODES[e.purpose]}],
            "text": e.purpose}]
    return resource


def trail_for(ws) -> AuditTrail:
    """The audit trail of an open workspace (its governance store, its folder, its key)."""
    return AuditTrail(store_for(ws), ws.path, ws.key())


LOCAL = "local"  # the role recorded for someone at the workspace's own command line or notebook


@dataclass(frozen=True)
class Actor:
    """Who acts, for which purpose, from where: the logged-in user on the server (their role), else the
    operating-system user at the command line or in a notebook (role `local`)."""

    name: str
    role: str = LOCAL
    purpose: str = "operations"
    where: str = ""

    @classmethod
    def local(cls, purpose: str = "operations") -> Actor:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # a container user with no name: the number is still who it was
            name = f"uid {os.getuid()}"
        return cls(name, LOCAL, purpose, socket.gethostname())


class Audited:
    """An audit event waiting to be written in the store transaction of `audited`; `record` writes it (call it
    last inside the workspace's own transaction, so that an event that cannot be written undoes the change)."""

    def __init__(self, trail: AuditTrail, conn: sa.Connection, actor: Actor, event: dict[str, Any]):
        self.trail, self.conn, self.actor, self.event, self.done = trail, conn, actor, event, False

    def record(self, **more: Any) -> None:
        e = {**self.event, **more}
        detail = {**(e.pop("detail", None) or {}), **({"from": self.actor.where} if self.actor.where else {})}
        self.trail.record(agent=self.actor.name, role=self.actor.role, purpose=self.actor.purpose, detail=detail,
                          conn=self.conn, **e)
        self.done = True


@contextmanager
def audited(ws, actor: Actor | None, **event: Any) -> Iterator[Audited]:
    """A change to the workspace and its audit event, committed together: the event is written in a store
    transaction that commits only when the block succeeds, and is recorded at the end of the block unless the
    block recorded it already (with the entity it made, say). `actor` defaults to the operating-system user."""
    trail = trail_for(ws)
    with trail.transaction() as conn:
        pending = Audited(trail, conn, actor or Actor.local(), event)
        yield pending
        if not pending.done:
            pending.record()


def record_event(ws, actor: Actor | None, **event: Any) -> None:
    """Record one event on its own (a read of person-level data, a file written), as `actor` (default: the
    operating-system user)."""
    with audited(ws, actor, **event):
        pass
