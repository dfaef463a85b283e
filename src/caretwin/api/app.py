"""The governed REST API (`caretwin serve`): what the CLI does, behind log-in, roles and purposes of use.

Every request but log-in carries a session token (`Authorization: Bearer ...`) and states its purpose of use
(`X-Purpose-Of-Use`). Each route names one action of `caretwin.governance.policy`; a refusal is answered
403 and recorded in the audit trail. Reads of person-level data and every change are recorded too.
Aggregates go to roles without person-level access with small cells suppressed.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from caretwin import __version__
from caretwin.api.jobs import Job, Jobs
from caretwin.errors import CaretwinError
from caretwin.governance import users as accounts
from caretwin.ingest import FORMATS
from caretwin.governance.audit import Actor, trail_for
from caretwin.governance.policy import PERSON_LEVEL, authorize
from caretwin.governance.store import store_for
from caretwin.governance.suppression import small, suppress_with_margins, with_margins
from caretwin.workspace import Workspace

LOGIN_LIMIT = 10  # log-in attempts per client address per minute, on top of the per-account lockout
MAX_UPLOAD = 512 * 1024 * 1024  # bytes per ingest request, all files together
UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.(csv|parquet|ndjson|json|jsonl|toml)(\.gz)?$")
CHUNK = 1024 * 1024
SCENARIO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.ya?ml$")

# dimensions an aggregate may be broken down or filtered by, as SQL over members m and regions r
DIMENSIONS = {
    "region": "m.region_id", "sex": "m.sex", "race_ethnicity": "coalesce(m.race_ethnicity, 'unknown')",
    "rurality": "coalesce(r.rurality, 'unknown')", "acuity_tier": "CAST(coalesce(m.acuity_tier, 0) AS VARCHAR)",
    "age_band": """CASE WHEN a.end_year - m.birth_year < 18 THEN '0-17' WHEN a.end_year - m.birth_year < 45 THEN '18-44'
        WHEN a.end_year - m.birth_year < 65 THEN '45-64' WHEN a.end_year - m.birth_year < 75 THEN '65-74'
        WHEN a.end_year - m.birth_year < 85 THEN '75-84' ELSE '85+' END""",
}


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    purpose: str
    client: str = ""  # the address the request came from

    def actor(self) -> Actor:
        """The same person as the services record them, with where they asked from."""
        return Actor(self.name, self.role, self.purpose, f"server, from {self.client}" if self.client else "server")

    def reviewing(self) -> dict[str, str]:
        """The same person as the review queue's functions take them."""
        return {"reviewer": self.name, "role": self.role, "purpose": self.purpose, "where": self.actor().where}


class Refused(Exception):
    """A request that may not go ahead: its HTTP status and the reason in plain words."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Decision(BaseModel):
    decision: str = Field(pattern="^(accept|override|defer)$")
    reason: str = Field(min_length=1, max_length=2000)


class Approval(BaseModel):
    purposes: list[str] = Field(min_length=1, max_length=10)


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: str
    password: str = Field(min_length=12, max_length=1024)


class ScenarioRun(BaseModel):
    files: list[str] = Field(min_length=1, max_length=10, description="Scenario files in WORKSPACE/scenarios/.")
    replications: int | None = Field(default=None, ge=1, le=10_000)
    seed: int | None = None


class Server:
    """What the routes share: the workspace (one connection per thread), the governance store, the jobs."""

    def __init__(self, workspace: Path, database: str | None, max_upload: int = MAX_UPLOAD):
        self.path = Path(workspace).absolute()
        self.database = database
        self.max_upload = max_upload
        self._local = threading.local()
        ws = self.workspace()  # a clear error now for a folder that is not a workspace
        self.engine = store_for(ws)
        self.trail = trail_for(ws)
        self.jobs = Jobs(self.engine, self.public)
        self._logins: dict[str, deque[float]] = defaultdict(deque)
        self._logins_lock = threading.Lock()
        # the workspace's own tables for runs, models and reviews, made now: created lazily by concurrent
        # requests, each on its own connection, they would conflict
        from caretwin.risk.registry import list_models
        from caretwin.risk.review import prepare
        from caretwin.simulate.results import list_runs

        list_runs(ws)
        list_models(ws)
        prepare(ws)

    def workspace(self) -> Workspace:
        """This thread's workspace (DuckDB connections are not shared between threads)."""
        ws = getattr(self._local, "ws", None)
        if ws is None:
            ws = self._local.ws = Workspace.open(self.path, self.database)
        return ws

    def principal(self, token: str, purpose: str, action: str, client: str = "") -> Principal:
        """Who is asking, if their session is live and their role may do `action` for `purpose`; a refusal is
        audited. Raises `Refused` (401: no live session; 400: no purpose; 403: not allowed)."""
        user = accounts.user_for(self.engine, token) if token else None
        if user is None:
            raise Refused(401, "log in first")
        if not purpose:
            raise Refused(400, "state the purpose of use")
        decision = authorize(user.role, action, purpose)
        if not decision.allowed:
            self.trail.record(kind="security", action="E", subtype=action, agent=user.name, role=user.role,
                              purpose=purpose[:32], entity_type="request", outcome="4",
                              detail={"refused": decision.reason})
            raise Refused(403, decision.reason)
        return Principal(user.name, user.role, purpose, client)

    def record(self, who: Principal, **event: Any) -> None:
        """An audit event done by the requester, for their stated purpose."""
        self.trail.record(agent=who.name, role=who.role, purpose=who.purpose, **event)

    def job_of(self, who: Principal, job_id: str) -> Job:
        """The requester's own job; another person's is answered as no job at all."""
        job = self.jobs.get(job_id)
        if job.owner != who.name:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    def cancel_job(self, who: Principal, job_id: str) -> Job:
        """Cancel the requester's own job (recorded)."""
        job = self.job_of(who, job_id)
        self.record(who, kind="change", action="D", subtype="job.cancel", entity_type="job", entity_id=job_id,
                    detail={"kind": job.kind})
        return self.jobs.cancel(job_id)

    def start_scenarios(self, who: Principal, names: list[str], replications: int | None = None,
                        seed: int | None = None) -> Job:
        """Run scenario files of WORKSPACE/scenarios/ as a background job (recorded)."""
        folder = self.path / "scenarios"
        for name in names:  # plain names inside the workspace's scenarios folder, nothing else
            if not SCENARIO_NAME.match(name) or not (folder / name).is_file():
                raise HTTPException(400, f"{name!r}: not a scenario file in the workspace's scenarios folder")
        self.record(who, kind="change", action="E", subtype="scenario.run", entity_type="scenario",
                    detail={"files": names})
        files = [folder / n for n in names]

        def work(progress, cancelled):
            from caretwin.scenarios import run_scenarios as run_all

            def report(done: int, total: int) -> None:
                if cancelled():
                    raise _Cancelled()
                progress(done, total)

            return [r.run_id for r in run_all(self.path, files, replications=replications, seed=seed,
                                              progress=report, actor=who.actor())]

        return self.jobs.start("scenario runs", who.name, work)

    def public(self, text: str) -> str:
        """An error's words with the server's own folders named WORKSPACE (no absolute path leaves the server)."""
        for folder in sorted({str(self.path.resolve()), str(self.path.absolute())}, key=len, reverse=True):
            text = text.replace(folder, "WORKSPACE")
        return text

    def login_allowed(self, client: str, name: str) -> bool:
        """Whether this address may try to log in again now (LOGIN_LIMIT a minute); a refusal is recorded."""
        now = time.monotonic()
        with self._logins_lock:
            q = self._logins[client]
            while q and now - q[0] > 60:
                q.popleft()
            q.append(now)
            allowed = len(q) <= LOGIN_LIMIT
        if not allowed:
            accounts.record_log_in(self.trail, name, None, where=client,
                                   refused="too many log-in attempts from this address")
        return allowed


# every answer: only this server's own scripts, styles and images; no framing; no type sniffing; no referrer
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def create_app(workspace: str | Path, *, database: str | None = None, max_upload: int = MAX_UPLOAD) -> FastAPI:
    server = Server(Path(workspace), database, max_upload)
    # no /docs or /redoc: FastAPI's pages for them load scripts from a CDN, and nothing here may
    app = FastAPI(title="caretwin", version=__version__, docs_url=None, redoc_url=None,
                  description="The governed API of a caretwin workspace. Every request states a purpose of use.")
    app.state.server = server

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):  # answers may be about people: never kept by a cache
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(CaretwinError)
    def _user_error(request: Request, exc: CaretwinError) -> JSONResponse:
        return JSONResponse({"detail": server.public(str(exc))}, status_code=400)

    record = server.record

    def allowed(action: str):
        def check(request: Request, authorization: Annotated[str | None, Header()] = None,
                  x_purpose_of_use: Annotated[str | None, Header()] = None) -> Principal:
            token = (authorization or "").removeprefix("Bearer ").strip()
            try:
                return server.principal(token, (x_purpose_of_use or "").strip(), action,
                                        request.client.host if request.client else "")
            except Refused as exc:
                if exc.status == 401:
                    raise HTTPException(401, "log in first (POST /api/session), then send the token as a Bearer "
                                        "token", headers={"WWW-Authenticate": "Bearer"}) from None
                if exc.status == 400:
                    raise HTTPException(400, "state the purpose of use in the X-Purpose-Of-Use header") from None
                raise HTTPException(exc.status, exc.reason) from None
        check.action = action  # read by the authorisation-matrix test and the docs
        return Depends(check)

    # ------------------------------------------------------------------ sessions
    @app.get("/api/health", tags=["status"])
    def health() -> dict[str, str]:
        """Liveness, without log-in."""
        return {"status": "ok", "version": __version__}

    @app.post("/api/session", tags=["session"])
    def log_in(body: Login, request: Request) -> dict[str, Any]:
        """Exchange a name and password for a session token."""
        client = request.client.host if request.client else "unknown"
        if not server.login_allowed(client, body.name):
            raise HTTPException(429, "too many log-in attempts from this address; wait a minute")
        try:
            token, user = accounts.log_in(server.engine, body.name, body.password)
        except CaretwinError as exc:
            accounts.record_log_in(server.trail, body.name, None, where=client)
            raise HTTPException(401, str(exc)) from None
        accounts.record_log_in(server.trail, body.name, user, where=client)
        return {"token": token, "name": user.name, "role": user.role}

    @app.delete("/api/session", tags=["session"])
    def log_out(authorization: Annotated[str | None, Header()] = None) -> dict[str, str]:
        accounts.log_out(server.engine, (authorization or "").removeprefix("Bearer ").strip(), trail=server.trail)
        return {"status": "logged out"}

    # ------------------------------------------------------------------ workspace
    @app.get("/api/status", tags=["status"])
    def status(who: Principal = allowed("status.read")) -> dict[str, Any]:
        """Table counts and date ranges of the workspace."""
        ws = server.workspace()
        s = ws.status()
        return {"name": s.name, "tables": s.tables, "date_ranges": s.date_ranges, "caretwin_version": __version__}

    @app.get("/api/aggregates/members", tags=["aggregates"])
    def members_by(
        who: Principal = allowed("aggregate.read"),
        by: Annotated[list[str], Query(description=f"One or two of: {', '.join(DIMENSIONS)}.")] = ["region"],  # noqa: B006
        filter: Annotated[list[str], Query(description="dimension:value, e.g. region:R01.")] = [],  # noqa: A002,B006
        sort: Annotated[str, Query(pattern="^(key|count|-count)$")] = "key",
    ) -> dict[str, Any]:
        """Enrolled members counted by one or two dimensions, with their row and column totals. Counts of 1-10
        are hidden (with partner cells, so no total gives them away) unless the role sees person-level data."""
        return _members_by(server, who, by, filter, sort)

    @app.post("/api/ingest", tags=["data"], status_code=202)
    def upload(files: list[UploadFile], who: Principal = allowed("data.ingest"),
               format: Annotated[str, Query(pattern=f"^({'|'.join(FORMATS)})$")] = "auto",  # noqa: A002
               ) -> dict[str, Any]:
        """Upload an extract's files (a canonical extract, FHIR NDJSON, Synthea CSV or an HSDS directory) and
        load them as a background job; a failed load leaves the workspace as it was."""
        import shutil
        import uuid

        names = [f.filename or "" for f in files]
        bad = [n for n in names if not UPLOAD_NAME.match(n)]
        if bad or len(set(names)) != len(names):
            raise HTTPException(400, f"file names must be plain, distinct names of data files (not {bad[:1] or names})")
        (server.path / "uploads").mkdir(mode=0o700, exist_ok=True)  # raw source data: owner-only, gone after the load
        folder = server.path / "uploads" / uuid.uuid4().hex[:12]
        folder.mkdir(mode=0o700)
        written = 0
        try:
            for f in files:
                with open(os.open(folder / f.filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                    while chunk := f.file.read(CHUNK):
                        written += len(chunk)
                        if written > server.max_upload:
                            raise HTTPException(413, f"the upload is over {server.max_upload:,} bytes")
                        out.write(chunk)
        except HTTPException:
            shutil.rmtree(folder)
            raise
        record(who, kind="change", action="C", subtype="data.upload", entity_type="upload", entity_id=folder.name,
               detail={"files": names, "bytes": written})

        def work(progress, cancelled):
            from caretwin.ingest import ingest

            try:
                ws = Workspace.open(server.path, server.database)  # the job's own connection
                try:
                    report = ingest(ws, folder, format=format, actor=who.actor())
                finally:
                    ws.close()
            finally:  # loaded or refused, the raw files (names, addresses, identifiers) are not kept
                shutil.rmtree(folder, ignore_errors=True)
            return {"load_id": report.load_id, "inserted": report.inserted, "quarantined": report.quarantined,
                    "warnings": report.warnings}

        return asdict(server.jobs.start("ingest", who.name, work))

    @app.get("/api/quality", tags=["data"])
    def quality(who: Principal = allowed("quality.read")) -> dict[str, Any]:
        """The data-quality report (the workspace's own quality.toml thresholds when it has one)."""
        from caretwin.quality import Thresholds, run_quality

        own = server.path / "quality.toml"
        return run_quality(server.workspace(), thresholds=Thresholds.load(own if own.is_file() else None),
                           actor=who.actor()).to_dict()

    @app.post("/api/calibrations", tags=["data"], status_code=202)
    def calibrate(who: Principal = allowed("model.calibrate"), seed: int = 0) -> dict[str, Any]:
        """Estimate the engine's parameters from history into WORKSPACE/calibrated.toml, as a background job."""

        def work(progress, cancelled):
            from caretwin.simulate.calibrated import calibrate_to

            ws = Workspace.open(server.path, server.database)  # the job's own connection
            try:
                cal, _ = calibrate_to(ws, server.path / "calibrated.toml", seed=seed, actor=who.actor())
            finally:
                ws.close()
            return {"window": [str(cal.window.start), str(cal.window.end)],
                    "estimated": sum(e.supported for e in cal.estimates)}

        return asdict(server.jobs.start("calibration", who.name, work))

    # ------------------------------------------------------------------ scenarios
    @app.get("/api/runs", tags=["scenarios"])
    def runs(who: Principal = allowed("scenario.read")) -> list[dict[str, Any]]:
        from caretwin.simulate.results import list_runs

        ws = server.workspace()
        return [{k: (str(v) if k in ("created_at", "start_date") else v) for k, v in r.items()}
                for r in list_runs(ws)]

    @app.get("/api/comparisons", tags=["scenarios"])
    def comparison(who: Principal = allowed("scenario.read"),
                   run: Annotated[list[str], Query(min_length=2, description="Baseline run id, then others.")] = []  # noqa: B006
                   ) -> Response:
        """Paired differences, failure risk by region, who bears the gap (suppressed), value for money."""
        from caretwin.scenarios import compare

        ws = server.workspace()
        return Response(compare(ws, run).to_json(), media_type="application/json")

    @app.get("/api/reports", tags=["scenarios"], response_class=HTMLResponse)
    def report(who: Principal = allowed("report.read"),
               run: Annotated[list[str], Query(min_length=2)] = []) -> HTMLResponse:  # noqa: B006
        """The board report of a comparison, as one self-contained HTML page."""
        from caretwin.reports.board import report_html

        return HTMLResponse(report_html(server.workspace(), run, actor=who.actor()))

    @app.post("/api/scenario-runs", tags=["scenarios"], status_code=202)
    def run_scenarios(body: ScenarioRun, who: Principal = allowed("scenario.run")) -> dict[str, Any]:
        """Start scenario runs as a background job; follow it at /api/jobs/{id}."""
        return asdict(server.start_scenarios(who, body.files, body.replications, body.seed))

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def job(job_id: str, who: Principal = allowed("status.read")) -> dict[str, Any]:
        return asdict(server.job_of(who, job_id))

    @app.delete("/api/jobs/{job_id}", tags=["jobs"])
    def cancel(job_id: str, who: Principal = allowed("status.read")) -> dict[str, Any]:
        return asdict(server.cancel_job(who, job_id))

    # ------------------------------------------------------------------ risk review
    @app.get("/api/review/flags", tags=["review"])
    def flags(who: Principal = allowed("review.read"), include_decided: bool = False,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
              region: Annotated[str | None, Query(max_length=64)] = None,
              why: Annotated[str | None, Query(pattern="^(threshold|rise)$")] = None,
              model: Annotated[str | None, Query(max_length=64)] = None,
              sort: Annotated[str, Query(pattern="^(risk|region|reason|oldest)$")] = "risk") -> list[dict[str, Any]]:
        """A page of the queue (open and deferred flags), each with its region and reasons in words; narrowed
        by region, why (threshold or rise) and model, ordered by risk (highest first), region, reason or oldest."""
        from caretwin.risk.review import list_flags

        ws = server.workspace()
        rows = list_flags(ws, **who.reviewing(), include_decided=include_decided,
                          limit=limit, offset=offset, region=region, why=why, model=model, sort=sort)
        return [{**r, "as_of": str(r["as_of"]), "created_at": str(r["created_at"])} for r in rows]

    @app.get("/api/review/flags/{flag_id}", tags=["review"])
    def flag(flag_id: str, who: Principal = allowed("person.read")) -> dict[str, Any]:
        from caretwin.risk.review import show

        ws = server.workspace()
        f = show(ws, flag_id, **who.reviewing())
        return jsonable_encoder({**f, "history": asdict(f["history"])})

    @app.post("/api/review/flags/{flag_id}/identity", tags=["review"])
    def identity(flag_id: str, who: Principal = allowed("person.read")) -> dict[str, str]:
        """Who a flag is about, as the agency's own member id, from the roster the workspace names (recorded)."""
        from caretwin.risk.context import reidentify
        from caretwin.risk.review import flag_member

        ws = server.workspace()
        member = flag_member(ws, flag_id)
        return {"flag_id": flag_id, "member_id": member, "agency_id": reidentify(ws, member, actor=who.actor())}

    @app.post("/api/review/flags/{flag_id}/decision", tags=["review"])
    def decide(flag_id: str, body: Decision, who: Principal = allowed("review.decide")) -> dict[str, str]:
        from caretwin.risk.review import decide as record_decision

        ws = server.workspace()
        status = record_decision(ws, flag_id, body.decision, body.reason, **who.reviewing())
        return {"flag_id": flag_id, "status": status}

    # ------------------------------------------------------------------ models
    @app.get("/api/models", tags=["models"])
    def models(who: Principal = allowed("models.read")) -> list[dict[str, Any]]:
        from caretwin.risk.registry import list_models

        ws = server.workspace()
        return [{k: (str(v) if k.endswith("_at") else v) for k, v in r.items()} for r in list_models(ws)]

    @app.get("/api/models/{name}/{version}", tags=["models"])
    def model_card(name: str, version: int, who: Principal = allowed("models.read")) -> dict[str, Any]:
        from caretwin.risk.registry import get_card

        ws = server.workspace()
        return asdict(get_card(ws, name, version))

    @app.post("/api/models/{name}/{version}/approval", tags=["models"])
    def approve(name: str, version: int, body: Approval, who: Principal = allowed("models.approve")) -> dict[str, Any]:
        from caretwin.risk.registry import approve as approve_version

        ws = server.workspace()
        card = approve_version(ws, name, version, body.purposes, by=who.name, actor=who.actor())
        return {"name": card.name, "version": card.version, "status": card.status, "approved_for": card.approved_for}

    # ------------------------------------------------------------------ audit and users
    @app.get("/api/audit", tags=["audit"])
    def audit(who: Principal = allowed("audit.read"), after: Annotated[int, Query(ge=0, le=2**62)] = 0,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        record(who, kind="query", action="E", subtype="audit.read", entity_type="audit_trail",
               detail={"after": after, "limit": limit})
        return [asdict(e) for e in server.trail.entries(after=after, limit=limit)]

    @app.get("/api/audit/verify", tags=["audit"])
    def verify(who: Principal = allowed("audit.read")) -> dict[str, Any]:
        problems = server.trail.verify()
        return {"intact": not problems, "problems": problems}

    @app.get("/api/audit/export", tags=["audit"])
    def export(who: Principal = allowed("audit.read")) -> Response:
        """The trail as FHIR R4 AuditEvent resources, one per line."""
        record(who, kind="export", action="R", subtype="audit.export", entity_type="audit_trail")
        return Response("".join(server.trail.ndjson()), media_type="application/fhir+ndjson")

    @app.get("/api/users", tags=["users"])
    def users(who: Principal = allowed("users.manage")) -> list[dict[str, Any]]:
        return [asdict(u) for u in accounts.list_users(server.engine)]

    @app.post("/api/users", tags=["users"], status_code=201)
    def add_user(body: NewUser, who: Principal = allowed("users.manage")) -> dict[str, Any]:
        u = accounts.add_user(server.engine, body.name, body.role, body.password, trail=server.trail,
                              actor=who.actor())
        return asdict(u)

    return app


class _Cancelled(Exception):
    """Raised inside a job's progress report when someone cancelled it."""


MIN_FILTERED = 11  # a filter may not narrow the members counted to 1-10 (for roles without person-level access)


def _member_counts(con, by: list[str], filters: list[str]) -> tuple[np.ndarray, list, list]:
    """Enrolled members counted by one or two dimensions under `dimension:value` filters, as a table with its
    row and column keys."""
    where, params = [], []
    for f in filters:
        dim, _, value = f.partition(":")
        if dim not in DIMENSIONS or not value:
            raise HTTPException(400, f"filter {f!r}: write dimension:value, a dimension of: {', '.join(DIMENSIONS)}")
        where.append(f"{DIMENSIONS[dim]} = ?")
        params.append(value)  # values are bound, never spliced into the SQL
    keys = [DIMENSIONS[b] for b in by]
    sql = f"""SELECT {', '.join(f'{k} AS k{i}' for i, k in enumerate(keys))}, count(*) AS n
        FROM members m LEFT JOIN regions r ON r.region_id = m.region_id,
             (SELECT year(max(admit_date)) AS end_year FROM encounters) a
        WHERE m.enrollment_end IS NULL AND m.death_date IS NULL {''.join(' AND ' + w for w in where)}
        GROUP BY ALL"""
    rows = con.execute(sql, params).fetchall()
    rows_k = sorted({r[0] for r in rows})
    cols_k = sorted({r[1] for r in rows}) if len(by) == 2 else [None]
    at_row, at_col = {k: i for i, k in enumerate(rows_k)}, {k: j for j, k in enumerate(cols_k)}
    counts = np.zeros((len(rows_k), len(cols_k)))
    for r in rows:
        counts[at_row[r[0]], at_col[r[1] if len(by) == 2 else None]] = r[-1]
    return counts, rows_k, cols_k


def _members_by(server: Server, who: Principal, by: list[str], filters: list[str], sort: str) -> dict[str, Any]:
    if not 1 <= len(by) <= 2 or len(set(by)) != len(by) or any(b not in DIMENSIONS for b in by):
        raise HTTPException(400, f"by: one or two different dimensions of: {', '.join(DIMENSIONS)}")
    if len(filters) > 3:
        raise HTTPException(400, "at most three filters")
    con = server.workspace().con
    counts, rows_k, cols_k = _member_counts(con, by, filters)
    person_level = who.role in PERSON_LEVEL
    R, C = counts.shape
    if person_level:
        hide = np.zeros((R + 1, C + 1), bool)
    else:
        if filters and 0 < counts.sum() < MIN_FILTERED:
            raise HTTPException(403, f"these filters narrow the count to fewer than {MIN_FILTERED} members")
        # every value the same query with fewer filters would show, less this one, must not be 1-10 either
        # (a differencing attack: region R01 less region R01 among women is the men of R01)
        also = np.zeros((R + 1, C + 1), bool)
        for k in range(len(filters)):
            for fewer in itertools.combinations(filters, k):
                wider, rows_w, cols_w = _member_counts(con, by, list(fewer))  # its keys include this answer's
                ri, cj = [rows_w.index(r) for r in rows_k], [cols_w.index(c) for c in cols_k]
                mine = np.zeros_like(wider)  # this answer on the wider one's keys
                mine[np.ix_(ri, cj)] = counts
                also |= small(with_margins(wider) - with_margins(mine))[np.ix_(ri + [len(rows_w)], cj + [len(cols_w)])]
        hide = suppress_with_margins(counts, also)
    table = with_margins(counts)
    total = float(table[-1, -1])
    show_total = not hide[-1, -1]
    cells = []
    for i, a in enumerate(rows_k):
        for j, b in enumerate(cols_k):
            key = {by[0]: a} | ({by[1]: b} if len(by) == 2 else {})
            shown = not hide[i, j]
            cells.append({"key": key, "count": int(counts[i, j]) if shown else None,
                          "share": round(100 * counts[i, j] / total, 1) if shown and show_total and total else None,
                          "suppressed": not shown})
    if sort != "key":
        cells.sort(key=lambda c: (c["count"] is None, -(c["count"] or 0) if sort == "-count" else (c["count"] or 0)))
    shown = lambda i, j: None if hide[i, j] else int(table[i, j])  # noqa: E731
    return {"by": by, "filters": filters, "cells": cells, "total": shown(R, C),
            "row_totals": {str(a): shown(i, C) for i, a in enumerate(rows_k)},
            "column_totals": {str(b): shown(R, j) for j, b in enumerate(cols_k)} if len(by) == 2 else {},
            "suppression": "none: person-level role" if person_level else
            "counts of 1-10 hidden, in cells, totals and what a query with fewer filters gives away by difference, "
            "with partner values so that no total or share gives them away"}


__all__ = ["DIMENSIONS", "Principal", "create_app"]
