"""The dashboard's pages, served by `caretwin serve` beside the REST API and governed the same way.

A person logs in with a form; the session token travels in an HttpOnly, SameSite=Strict cookie, with the
purpose of use they chose. Every page names one policy action, as every API route does: a refusal is a
page saying why (and is audited), reads of person-level data and every change are recorded. Forms that
change something carry a token derived from the session (a second guard against cross-site requests).
Nothing is fetched from elsewhere: styles, the one script and the charts (SVG) come from this package.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from caretwin.api.app import (
    MAX_UPLOAD,
    SCENARIO_NAME,
    Principal,
    Refused,
    Server,
    create_app,
)
from caretwin.errors import CaretwinError
from caretwin.governance import users as accounts
from caretwin.governance.policy import ACTIONS, PERSON_LEVEL, PURPOSES, ROLES, authorize
from caretwin.model.schema import TABLES
from caretwin.quality import Thresholds, run_quality
from caretwin.quality.lineage import lineage
from caretwin.reports.board import describe, render_sections, report_html
from caretwin.reports.charts import tile_grid
from caretwin.risk.providers import FACTORS, provider_warnings
from caretwin.risk.registry import approve as approve_version
from caretwin.risk.context import reidentify
from caretwin.risk.registry import estimate_text, get_card, list_models
from caretwin.risk.review import count_flags, flag_member, list_flags, score_text, show
from caretwin.risk.review import decide as record_decision
from caretwin.scenarios import compare
from caretwin.scenarios.spec import load_scenario
from caretwin.simulate.results import list_runs
from caretwin.web.overview import overview

SESSION, PURPOSE = "caretwin_session", "caretwin_purpose"
PAGE_SIZE = 50
# the menu: (path, label, action a role needs to see it)
MENU = (("/overview", "Overview", "aggregate.read"), ("/quality", "Data quality", "quality.read"),
        ("/scenarios", "Scenarios", "scenario.read"), ("/review", "Risk review", "review.read"),
        ("/providers", "Providers", "aggregate.read"), ("/equity", "Equity", "models.read"),
        ("/governance", "Governance", "models.read"))


def _tls(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a proxy on this host that says so in
    X-Forwarded-Proto, which uvicorn trusts from 127.0.0.1): then cookies are sent over HTTPS only."""
    return request.url.scheme == "https"


def landing(role: str, wanted: str = "/overview") -> str:
    """Where a role starts: the page it asked for when the role may see it, else the first menu page it may."""
    action = next((a for path, _, a in MENU if path == wanted), None)
    if action is None or role in ACTIONS[action]:
        return wanted
    return next((path for path, _, a in MENU if role in ACTIONS[a]), "/login")


PURPOSE_WORDS = {"care_management": "care management", "operations": "operations", "planning": "planning",
                 "research": "research", "quality_improvement": "quality improvement", "audit": "audit",
                 "administration": "administration"}

templates = Environment(loader=PackageLoader("caretwin.web", "templates"), autoescape=select_autoescape(),
                        trim_blocks=True, lstrip_blocks=True)
templates.filters["pct"] = lambda v, digits=0: "–" if v is None else f"{v * 100:.{digits}f}%"
templates.filters["num"] = lambda v, digits=0: "–" if v is None else f"{v:,.{digits}f}"
templates.filters["signed"] = lambda v, digits=0: "–" if v is None else f"{v:+,.{digits}f}"




templates.filters["estimate"] = estimate_text


class LogIn(Exception):
    """No live session: the page sends the browser to the log-in form."""

    def __init__(self, next_path: str):
        self.next_path = next_path


class PageRefused(Exception):
    def __init__(self, status: int, reason: str, who: Principal | None):
        self.status, self.reason, self.who = status, reason, who


def csrf_token(token: str) -> str:
    return hmac.new(b"caretwin form", token.encode(), hashlib.sha256).hexdigest()[:32]


def create_site(workspace: str | Path, *, database: str | None = None, max_upload: int = MAX_UPLOAD) -> FastAPI:
    """The REST API (`caretwin.api.app.create_app`) with the dashboard's pages beside it: what `caretwin serve` runs."""
    app = create_app(workspace, database=database, max_upload=max_upload)
    mount(app, app.state.server)
    return app


def mount(app: FastAPI, server: Server) -> None:
    """Add the dashboard's pages and static files to the API's application."""
    get = functools.partial(app.get, include_in_schema=False)  # pages are not part of the API's schema
    post = functools.partial(app.post, include_in_schema=False)
    app.mount("/static", StaticFiles(packages=[("caretwin.web", "static")]), name="static")

    cache: dict[str, tuple[Any, Any]] = {}
    cache_lock = threading.Lock()

    def cached(name: str, make: Callable[[], Any], *also: Any) -> Any:
        """`make()`, kept until the workspace's data change (a load writes lineage) or `also` does."""
        ws = server.workspace()
        key = (*ws.con.execute("SELECT count(*), max(recorded_at) FROM _lineage").fetchone(), *also)
        with cache_lock:
            hit = cache.get(name)
        if hit and hit[0] == key:
            return hit[1]
        value = make()
        with cache_lock:
            cache[name] = (key, value)
        return value

    def render(request: Request, template: str, who: Principal | None, status_code: int = 200, **context: Any) -> HTMLResponse:
        token = request.cookies.get(SESSION, "")
        menu = [(path, label) for path, label, action in MENU
                if who and any(authorize(who.role, action, p).allowed for p in PURPOSES[who.role])]
        html = templates.get_template(template).render(
            request=request, who=who, menu=menu, path=request.url.path, csrf=csrf_token(token) if token else "",
            purposes=sorted(PURPOSES[who.role]) if who else [], purpose_words=PURPOSE_WORDS,
            message=_message(request), **context)
        return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})

    def _who(request: Request) -> Principal | None:
        """Who is logged in on this browser, if anyone (no policy check)."""
        user = accounts.user_for(server.engine, request.cookies.get(SESSION, ""))
        return Principal(user.name, user.role, request.cookies.get(PURPOSE, "")) if user else None

    def page(action: str):
        def check(request: Request) -> Principal:
            token = request.cookies.get(SESSION, "")
            try:
                return server.principal(token, request.cookies.get(PURPOSE, ""), action,
                                        request.client.host if request.client else "")
            except Refused as exc:
                if exc.status in (400, 401):
                    raise LogIn(request.url.path + (f"?{request.url.query}" if request.url.query else "")) from None
                raise PageRefused(exc.status, exc.reason, _who(request)) from None
        check.action = action  # read by the authorisation-matrix test
        return Depends(check)

    def checked_form(request: Request, csrf: str) -> None:
        if not hmac.compare_digest(csrf, csrf_token(request.cookies.get(SESSION, ""))):
            raise PageRefused(403, "this form has expired or did not come from caretwin; open the page again", None)

    @app.exception_handler(LogIn)
    def _log_in(request: Request, exc: LogIn) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(PageRefused)
    def _refused(request: Request, exc: PageRefused) -> HTMLResponse:
        return render(request, "refused.html", exc.who, status_code=exc.status, reason=exc.reason, status=exc.status)

    # errors on a page are a page in plain words; the API keeps answering JSON
    api_user_error = app.exception_handlers[CaretwinError]

    @app.exception_handler(CaretwinError)
    def _user_error(request: Request, exc: CaretwinError) -> Response:
        if request.url.path.startswith("/api"):
            return api_user_error(request, exc)
        return render(request, "refused.html", _who(request), status_code=400, reason=server.public(str(exc)), status=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(("/api", "/static", "/openapi.json")) or request.url.path.endswith("/progress"):
            return await http_exception_handler(request, exc)
        reason = "there is no such page" if exc.status_code == 404 and exc.detail == "Not Found" else str(exc.detail)
        return render(request, "refused.html", _who(request), status_code=exc.status_code, reason=reason,
                      status=exc.status_code)

    # ------------------------------------------------------------------ log-in
    @get("/")
    def home(request: Request) -> RedirectResponse:
        user = accounts.user_for(server.engine, request.cookies.get(SESSION, ""))
        return RedirectResponse(landing(user.role) if user else "/overview", status_code=303)

    @get("/login")
    def login_form(request: Request, next: str = "/overview") -> HTMLResponse:  # noqa: A002
        return render(request, "login.html", None, next=_local(next), all_purposes=list(PURPOSE_WORDS))

    @post("/login")
    def login(request: Request, name: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=1024)],
              purpose: Annotated[str, Form(max_length=32)], next: Annotated[str, Form()] = "/overview") -> Response:  # noqa: A002
        def again(reason: str, status: int) -> HTMLResponse:
            return render(request, "login.html", None, status_code=status, next=_local(next), error=reason,
                          name=name, chosen=purpose, all_purposes=list(PURPOSE_WORDS))

        client = request.client.host if request.client else "unknown"
        if not server.login_allowed(client, name):
            return again("Too many log-in attempts from this computer. Wait a minute, then try again.", 429)
        try:
            token, user = accounts.log_in(server.engine, name, password)
        except CaretwinError as exc:
            accounts.record_log_in(server.trail, name, None, where=client)
            return again(f"{str(exc)[:1].upper()}{str(exc)[1:].rstrip('.')}.", 401)
        if purpose not in PURPOSES[user.role]:
            accounts.log_out(server.engine, token)
            accounts.record_log_in(server.trail, name, user, where=client,
                                   refused=f"the {user.role} role may not act for {purpose[:32]!r}")
            words = " or ".join(PURPOSE_WORDS[p] for p in sorted(PURPOSES[user.role]))
            return again(f"As {_a(user.role)} you may work for {words}; choose one of those.", 403)
        accounts.record_log_in(server.trail, name, user, where=client, purpose=purpose)
        res = RedirectResponse(landing(user.role, _local(next)), status_code=303)
        for key, value in ((SESSION, token), (PURPOSE, purpose)):
            res.set_cookie(key, value, httponly=True, samesite="strict", max_age=8 * 3600, secure=_tls(request))
        return res

    @post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
        checked_form(request, csrf)
        accounts.log_out(server.engine, request.cookies.get(SESSION, ""), trail=server.trail,
                         purpose=request.cookies.get(PURPOSE) or "administration")
        res = RedirectResponse("/login?logged_out=1", status_code=303)
        res.delete_cookie(SESSION)
        res.delete_cookie(PURPOSE)
        return res

    @post("/purpose")
    def change_purpose(request: Request, purpose: Annotated[str, Form(max_length=32)],
                       csrf: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/overview") -> RedirectResponse:  # noqa: A002
        checked_form(request, csrf)
        user = accounts.user_for(server.engine, request.cookies.get(SESSION, ""))
        if user is None:
            raise LogIn(_local(next))
        if purpose not in PURPOSES[user.role]:
            raise PageRefused(403, f"the {user.role} role may not act for {purpose!r}", None)
        server.trail.record(kind="login", action="U", subtype="session.purpose", agent=user.name, role=user.role,
                            purpose=purpose, entity_type="session",
                            detail={"from": request.cookies.get(PURPOSE) or "", "to": purpose})
        res = RedirectResponse(_local(next), status_code=303)
        res.set_cookie(PURPOSE, purpose, httponly=True, samesite="strict", max_age=8 * 3600, secure=_tls(request))
        return res

    # ------------------------------------------------------------------ overview and data quality
    @get("/overview")
    def overview_page(request: Request, who: Principal = page("aggregate.read")) -> HTMLResponse:
        person_level = who.role in PERSON_LEVEL
        now, before = cached(f"overview:{person_level}", lambda: overview(server.workspace(), person_level=person_level))
        # authorised over staffed hours (over 100%: booked beyond the staff, worked as overtime or missed); a region
        # with no HCBS agency, or none whose use the data hold, has nothing in use: not 0%
        tiles = [(r.region_id, r.occupancy.get("hcbs"), r.rurality) for r in now.regions]
        past = {r.region_id: r for r in before.regions}
        return render(request, "overview.html", who, now=now, before=before, past=past,
                      tiles=Markup(tile_grid("HCBS hours booked over hours staffed", tiles, missing="no HCBS")))

    @get("/quality")
    def quality_page(request: Request, who: Principal = page("quality.read"),
                     table: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
        ws = server.workspace()
        own = server.path / "quality.toml"
        report = cached("quality", lambda: run_quality(ws, thresholds=Thresholds.load(own if own.is_file() else None),
                                                         actor=who.actor()),
                        own.stat().st_mtime if own.is_file() else None)
        names = [t.name for t in TABLES if not t.derived]
        chosen = table if table in names else None
        return render(request, "quality.html", who, report=report, summary=report.summary(), tables=names,
                      chosen=chosen, lineage=lineage(ws, chosen) if chosen else [])

    # ------------------------------------------------------------------ scenarios
    def scenario_files() -> list[str]:
        folder = server.path / "scenarios"
        return sorted(p.name for p in folder.iterdir() if SCENARIO_NAME.match(p.name)) if folder.is_dir() else []

    @get("/scenarios")
    def scenarios_page(request: Request, who: Principal = page("scenario.read"),
                       edit: Annotated[str | None, Query(max_length=100)] = None) -> HTMLResponse:
        files = scenario_files()
        text = (server.path / "scenarios" / edit).read_text() if edit in files else ""
        return render(request, "scenarios.html", who, files=files, runs=list_runs(server.workspace()),
                      can_run=authorize(who.role, "scenario.run", who.purpose).allowed,
                      file_name=edit if edit in files else "", text=text)

    @post("/scenarios/files")
    def save_scenario(request: Request, name: Annotated[str, Form(max_length=100)], text: Annotated[str, Form(max_length=100_000)],
                      csrf: Annotated[str, Form()] = "", who: Principal = page("scenario.run")) -> Response:
        checked_form(request, csrf)
        name = name.strip()
        name = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
        folder = server.path / "scenarios"
        problems: list[str] = []
        if not SCENARIO_NAME.match(name):
            problems = ["The file name may use letters, digits, '-', '_' and '.', and must start with a letter or digit."]
        else:
            folder.mkdir(exist_ok=True)
            tmp = folder / f".{name}.checking.yaml"  # beside the others, so `extends` finds its parent
            tmp.write_text(text)
            try:
                load_scenario(tmp)
            except CaretwinError as exc:
                problems = [str(p).replace(str(tmp), name) for p in getattr(exc, "problems", [exc])]
            if problems:
                tmp.unlink()
            else:
                os.replace(tmp, folder / name)
                server.record(who, kind="change", action="U", subtype="scenario.save", entity_type="scenario",
                              entity_id=name)
                return _done(request, "/scenarios", f"Saved {name}.")
        return render(request, "scenarios.html", who, status_code=400, files=scenario_files(),
                      runs=list_runs(server.workspace()), can_run=True, file_name=name, text=text, problems=problems)

    @post("/scenarios/run")
    def run_scenarios(request: Request, baseline: Annotated[str, Form()], csrf: Annotated[str, Form()] = "",
                      files: Annotated[list[str], Form()] = [],  # noqa: B006
                      replications: Annotated[int | None, Form(ge=2, le=1000)] = None,
                      who: Principal = page("scenario.run")) -> RedirectResponse:
        checked_form(request, csrf)
        try:
            job = server.start_scenarios(who, [baseline, *(f for f in files if f != baseline)], replications)
        except HTTPException as exc:
            raise PageRefused(exc.status_code, exc.detail, who) from None
        return RedirectResponse(f"/jobs/{job.job_id}", status_code=303)

    @get("/jobs/{job_id}")
    def job_page(request: Request, job_id: str, who: Principal = page("scenario.run")) -> HTMLResponse:
        return render(request, "job.html", who, job=server.job_of(who, job_id))

    @get("/jobs/{job_id}/progress")
    def job_progress(job_id: str, who: Principal = page("scenario.run")) -> JSONResponse:
        """What the job page's script polls (with the session cookie)."""
        job = asdict(server.job_of(who, job_id))
        if job["status"] == "done" and job["kind"] == "scenario runs" and job["result"]:
            runs = job["result"]  # in the order of the files: the baseline first
            job["next"] = "/scenarios/compare?" + "&".join(f"run={r}" for r in runs) if len(runs) > 1 else "/scenarios"
        return JSONResponse(job)

    @get("/scenarios/compare")
    def compare_page(request: Request, run: Annotated[list[str], Query()] = [],  # noqa: B006
                     baseline: Annotated[str | None, Query(max_length=64)] = None,
                     who: Principal = page("scenario.read")) -> HTMLResponse:
        run = [baseline, *(r for r in run if r != baseline)] if baseline else run
        if len(run) < 2:
            raise PageRefused(400, "choose a baseline run and at least one other run to compare", who)
        c = compare(server.workspace(), run)
        return render(request, "compare.html", who, describe=describe(c), body=Markup(render_sections(c)), runs=run)

    @get("/scenarios/report")
    def report_download(run: Annotated[list[str], Query()] = [],  # noqa: B006
                        who: Principal = page("report.read")) -> HTMLResponse:
        if len(run) < 2:
            raise PageRefused(400, "choose a baseline run and at least one other run", who)
        name = f"caretwin-report-{run[0]}.html"
        return HTMLResponse(report_html(server.workspace(), run, actor=who.actor(), file=name), headers={
            "Content-Disposition": f'attachment; filename="{name}"'})

    # ------------------------------------------------------------------ risk review
    @get("/review")
    def review_page(request: Request, who: Principal = page("review.read"),
                    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
                    region: Annotated[str | None, Query(max_length=64)] = None,
                    why: Annotated[str | None, Query(pattern="^(|threshold|rise)$")] = None,
                    sort: Annotated[str, Query(pattern="^(risk|region|reason|oldest)$")] = "risk") -> HTMLResponse:
        ws = server.workspace()
        chosen = {"region": region or None, "why": why or None, "sort": sort}
        rows = list_flags(ws, **who.reviewing(), limit=PAGE_SIZE, offset=offset,
                          **chosen)
        regions = [r for (r,) in ws.con.execute("SELECT region_id FROM regions ORDER BY 1").fetchall()]
        capacity = ws.config.get("review", {}).get("capacity")
        query = "&".join(f"{k}={v}" for k, v in chosen.items() if v)
        return render(request, "review.html", who, rows=rows, counts=count_flags(ws), offset=offset,
                      page_size=PAGE_SIZE, score_text=score_text, regions=regions, chosen=chosen, query=query,
                      capacity=capacity)

    @get("/review/{flag_id}")
    def flag_page(request: Request, flag_id: str, who: Principal = page("person.read")) -> HTMLResponse:
        flag = show(server.workspace(), flag_id, **who.reviewing())
        return render(request, "flag.html", who, flag=flag, score_text=score_text,
                      can_decide=authorize(who.role, "review.decide", who.purpose).allowed)

    @post("/review/{flag_id}/identity")
    def identify(request: Request, flag_id: str, csrf: Annotated[str, Form()] = "",
                 who: Principal = page("person.read")) -> HTMLResponse:
        checked_form(request, csrf)
        ws = server.workspace()
        member = flag_member(ws, flag_id)
        found = reidentify(ws, member, actor=who.actor())
        return render(request, "identity.html", who, flag_id=flag_id, member=member, found=found)

    @post("/review/{flag_id}")
    def decide(request: Request, flag_id: str, decision: Annotated[str, Form(pattern="^(accept|override|defer)$")],
               reason: Annotated[str, Form(max_length=2000)], csrf: Annotated[str, Form()] = "",
               who: Principal = page("review.decide")) -> Response:
        checked_form(request, csrf)
        if not reason.strip():
            raise PageRefused(400, "a decision needs a reason: say why, in a few words", who)
        status = record_decision(server.workspace(), flag_id, decision, reason, **who.reviewing())
        words = "stays in the queue (deferred)" if status == "deferred" else "has left the queue"
        return _done(request, "/review", f"Flag {flag_id}: {decision} recorded; it {words}.")

    # ------------------------------------------------------------------ providers and equity
    @get("/providers")
    def providers_page(request: Request, who: Principal = page("aggregate.read")) -> HTMLResponse:
        return render(request, "providers.html", who, providers=provider_warnings(server.workspace()),
                      factors=FACTORS)

    @get("/equity")
    def equity_page(request: Request, who: Principal = page("models.read")) -> HTMLResponse:
        ws = server.workspace()
        latest: dict[str, int] = {}
        for m in list_models(ws):
            latest[m["name"]] = max(latest.get(m["name"], 0), m["version"])
        cards = [get_card(ws, name, v) for name, v in sorted(latest.items())]
        person_level = who.role in PERSON_LEVEL
        return render(request, "equity.html", who, cards=cards, hidden=lambda r: not person_level and 0 < r.get("n", 11) <= 10)

    # ------------------------------------------------------------------ governance
    @get("/governance")
    def governance_page(request: Request, who: Principal = page("models.read")) -> HTMLResponse:
        return render(request, "governance.html", who, models=list_models(server.workspace()),
                      can_audit=authorize(who.role, "audit.read", who.purpose).allowed,
                      can_manage=authorize(who.role, "users.manage", who.purpose).allowed)

    @get("/governance/models/{name}/{version}")
    def card_page(request: Request, name: str, version: int, who: Principal = page("models.read")) -> HTMLResponse:
        return render(request, "card.html", who, card=get_card(server.workspace(), name, version),
                      can_approve=authorize(who.role, "models.approve", who.purpose).allowed,
                      all_purposes=list(PURPOSE_WORDS))

    @post("/governance/models/{name}/{version}")
    def approve(request: Request, name: str, version: int, purposes: Annotated[list[str], Form()],
                csrf: Annotated[str, Form()] = "", who: Principal = page("models.approve")) -> RedirectResponse:
        checked_form(request, csrf)
        approve_version(server.workspace(), name, version, purposes, by=who.name, actor=who.actor())
        return _done(request, f"/governance/models/{name}/{version}", "Approved.")

    @get("/governance/audit")
    def audit_page(request: Request, who: Principal = page("audit.read"),
                   after: Annotated[int, Query(ge=0, le=2**62)] = 0) -> HTMLResponse:
        server.record(who, kind="query", action="E", subtype="audit.read", entity_type="audit_trail",
                      detail={"after": after, "limit": PAGE_SIZE})
        total = server.trail.count()
        start = after or max(total - PAGE_SIZE, 0)
        return render(request, "audit.html", who, entries=server.trail.entries(after=start, limit=PAGE_SIZE),
                      problems=server.trail.verify(), total=total, start=start, page_size=PAGE_SIZE)

    @get("/governance/users")
    def users_page(request: Request, who: Principal = page("users.manage")) -> HTMLResponse:
        return render(request, "users.html", who, users=accounts.list_users(server.engine), roles=ROLES)

    @post("/governance/users")
    def add_user(request: Request, name: Annotated[str, Form(max_length=64)], role: Annotated[str, Form()],
                 password: Annotated[str, Form(max_length=1024)], csrf: Annotated[str, Form()] = "",
                 who: Principal = page("users.manage")) -> Response:
        checked_form(request, csrf)
        try:
            u = accounts.add_user(server.engine, name, role, password, trail=server.trail, actor=who.actor())
        except CaretwinError as exc:
            return render(request, "users.html", who, status_code=400, users=accounts.list_users(server.engine),
                          roles=ROLES, error=str(exc), name=name, chosen=role)
        return _done(request, "/governance/users", f"Added {u.name} ({u.role}).")



def _done(request: Request, path: str, message: str) -> RedirectResponse:
    """Back to a page that says what was done. The message is signed for this session, so a link made
    elsewhere cannot put words of its own on a caretwin page."""
    sig = csrf_token(request.cookies.get(SESSION, "") + "|" + message)
    return RedirectResponse(f"{path}?message={quote(message)}&sig={sig}", status_code=303)


def _message(request: Request) -> str:
    if request.query_params.get("logged_out") == "1":
        return "You are logged out."
    message, sig = request.query_params.get("message", ""), request.query_params.get("sig", "")
    token = request.cookies.get(SESSION, "")
    return message if message and token and hmac.compare_digest(sig, csrf_token(token + "|" + message)) else ""


def _local(path: str) -> str:
    """Only paths of this site (no open redirects to other sites)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/overview"


def _a(role: str) -> str:
    words = role.replace("_", " ")
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


__all__ = ["create_site", "mount"]
