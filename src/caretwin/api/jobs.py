"""Background jobs: long work (ingest, calibration, scenario runs) runs in its own thread, so requests never
wait for it. A job reports its progress, can be cancelled (it stops at its next progress report), and keeps
its result or its error in plain words.

Jobs are kept in the governance store, so their state outlives the request that started them, can be read
by any server process on the same database, and survives a restart: a job whose process is gone is marked
failed, with the reason, when a server on the same host starts.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import HTTPException
from sqlalchemy.engine import Engine

from caretwin.governance.store import jobs

Progress = Callable[[int, int], None]
REPORT_EVERY = 0.5  # seconds between progress writes (and checks for a cancellation from another process)
UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    owner: str
    status: str  # queued, running, done, failed, cancelled
    done: int = 0
    total: int = 0
    result: Any = None
    error: str | None = None
    created_at: str = ""
    updated_at: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Jobs:
    """The jobs of one server process, kept in the governance store."""

    def __init__(self, engine: Engine, public: Callable[[str], str] = str) -> None:
        self.engine, self.public = engine, public  # `public`: an error's words as its owner may read them
        self.host = socket.gethostname()
        self.runner = f"{self.host}:{os.getpid()}"
        self._cancel: dict[str, threading.Event] = {}
        self._orphans()

    def _orphans(self) -> None:
        """Mark failed the unfinished jobs of processes on this host that are gone (a stop or a crash)."""
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(jobs.c.job_id, jobs.c.runner).where(jobs.c.status.in_(UNFINISHED))).all()
            gone = [r.job_id for r in rows if r.runner.rpartition(":")[0] == self.host
                    and not _alive(int(r.runner.rpartition(":")[2]))]
            if gone:
                conn.execute(jobs.update().where(jobs.c.job_id.in_(gone)).values(
                    status="failed", error="the server stopped before the job finished; start it again",
                    updated_at=_now()))

    def _set(self, job_id: str, **changes: Any) -> None:
        if "result" in changes:
            changes["result"] = json.dumps(changes["result"])
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(**changes, updated_at=_now()))

    def _reporter(self, job_id: str, stop: threading.Event) -> Progress:
        last = [0.0]

        def report(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] < REPORT_EVERY and done < total:
                return
            last[0] = now
            self._set(job_id, done=done, total=total)
            with self.engine.connect() as conn:  # a cancellation asked of another server process
                if conn.scalar(sa.select(jobs.c.cancel_requested).where(jobs.c.job_id == job_id)):
                    stop.set()
        return report

    def start(self, kind: str, owner: str, work: Callable[[Progress, Callable[[], bool]], Any]) -> Job:
        """Run `work(progress, cancelled)` in a thread; returns the queued job at once. `work` returns
        something JSON can write."""
        job_id, now = uuid.uuid4().hex[:12], _now()
        with self.engine.begin() as conn:
            conn.execute(jobs.insert().values(job_id=job_id, kind=kind, owner=owner, status="queued", done=0, total=0,
                                              cancel_requested=False, runner=self.runner, created_at=now,
                                              updated_at=now))
        stop = self._cancel[job_id] = threading.Event()

        def run() -> None:
            self._set(job_id, status="running")
            try:
                result = work(self._reporter(job_id, stop), stop.is_set)
            except Exception as exc:  # the job's outcome, shown to its owner; the server goes on
                self._set(job_id, status="cancelled" if stop.is_set() else "failed",
                          error=None if stop.is_set() else self.public(str(exc)))
            else:
                self._set(job_id, status="cancelled" if stop.is_set() else "done", result=result)
            finally:
                self._cancel.pop(job_id, None)

        threading.Thread(target=run, name=f"job-{job_id}", daemon=True).start()
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).first()
        if row is None:
            raise HTTPException(404, f"no job {job_id!r}")
        r = row._mapping
        return Job(**{name: r[name] for name in Job.__dataclass_fields__ if name != "result"},
                   result=json.loads(r["result"]) if r["result"] else None)

    def cancel(self, job_id: str) -> Job:
        """Ask a queued or running job to stop (here, or through the store in whichever process runs it)."""
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.job_id == job_id, jobs.c.status.in_(UNFINISHED))
                         .values(cancel_requested=True, updated_at=_now()))
        if job_id in self._cancel:
            self._cancel[job_id].set()
        return self.get(job_id)
