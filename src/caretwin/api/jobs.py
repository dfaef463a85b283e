"""Background jobs: long work (scenario runs) runs in its own thread, so requests never wait for it. A job
reports its progress, can be cancelled (it stops at its next progress report), and keeps its result or its
error in plain words."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

Progress = Callable[[int, int], None]


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
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def _set(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)

    def start(self, kind: str, owner: str, work: Callable[[Progress, Callable[[], bool]], Any]) -> Job:
        """Run `work(progress, cancelled)` in a thread; returns the queued job at once."""
        job = Job(uuid.uuid4().hex[:12], kind, owner, "queued")
        stop = threading.Event()
        with self._lock:
            self._jobs[job.job_id], self._cancel[job.job_id] = job, stop

        def run() -> None:
            self._set(job.job_id, status="running")
            try:
                result = work(lambda d, t: self._set(job.job_id, done=d, total=t), stop.is_set)
            except Exception as exc:  # the job's outcome, shown to its owner; the server goes on
                status = "cancelled" if stop.is_set() else "failed"
                self._set(job.job_id, status=status, error=None if stop.is_set() else str(exc))
            else:
                self._set(job.job_id, status="cancelled" if stop.is_set() else "done", result=result)

        threading.Thread(target=run, name=f"job-{job.job_id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise HTTPException(404, f"no job {job_id!r}")
            return self._jobs[job_id]

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status in ("queued", "running"):
            self._cancel[job_id].set()
        return self.get(job_id)
