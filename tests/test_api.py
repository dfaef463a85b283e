"""The governed REST API: every route x every role, refusals audited, suppression for aggregate roles,
hostile input, and a scenario run as a background job."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient

from caretwin.api.app import create_app
from caretwin.governance.policy import PURPOSES, ROLES, authorize
from caretwin.governance.store import engine_for
from caretwin.governance.users import add_user
from caretwin.ingest import ingest
from caretwin.risk.registry import approve, register
from caretwin.risk.review import score
from caretwin.risk.train import fit_outcome

PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module")
def served(tmp_path_factory, extract_csv):
    from caretwin import Workspace

    root = tmp_path_factory.mktemp("api")
    ws = Workspace.create(root / "ws")
    ingest(ws, extract_csv)
    f = fit_outcome(ws, "ed_90d", lookback_days=60, n_boot=10)
    card = register(ws, f.model, f.card, by="analyst")
    approve(ws, card.name, card.version, ["care_management"], by="medical director")
    score(ws, card.name)
    (ws.path / "scenarios").mkdir()
    (ws.path / "scenarios" / "baseline.yaml").write_text(
        "name: baseline\nbaseline: defaults\nhorizon_weeks: 8\nreplications: 3\nseed: 1\n")
    ws.close()
    for role in ROLES:
        add_user(engine_for(root / "ws"), role, role, PASSWORD)
    client = TestClient(create_app(root / "ws"))
    tokens = {role: client.post("/api/session", json={"name": role, "password": PASSWORD}).json()["token"]
              for role in ROLES}
    return client, tokens


def as_(tokens, role, purpose=None):
    return {"Authorization": f"Bearer {tokens[role]}", "X-Purpose-Of-Use": purpose or sorted(PURPOSES[role])[0]}


def sample_requests(client, tokens):
    """One well-formed request for every route of the API (a new route must be added here)."""
    h = as_(tokens, "care_coordinator")
    flag = client.get("/api/review/flags", headers=h).json()[0]["flag_id"]
    model = client.get("/api/models", headers=h).json()[0]
    return {
        ("GET", "/api/status"): {},
        ("POST", "/api/ingest"): {"files": {"files": ("not a data file.txt", b"x")}},
        ("GET", "/api/quality"): {},
        ("POST", "/api/calibrations"): {},
        ("GET", "/api/aggregates/members"): {"params": {"by": "region"}},
        ("GET", "/api/runs"): {},
        ("GET", "/api/comparisons"): {"params": {"run": ["nope1", "nope2"]}},
        ("GET", "/api/reports"): {"params": {"run": ["nope1", "nope2"]}},
        ("POST", "/api/scenario-runs"): {"json": {"files": ["missing.yaml"]}},
        ("GET", "/api/jobs/{job_id}"): {"path": {"job_id": "nojob"}},
        ("DELETE", "/api/jobs/{job_id}"): {"path": {"job_id": "nojob"}},
        ("GET", "/api/review/flags"): {},
        ("GET", "/api/review/flags/{flag_id}"): {"path": {"flag_id": flag}},
        ("POST", "/api/review/flags/{flag_id}/identity"): {"path": {"flag_id": "unknown"}},
        ("POST", "/api/review/flags/{flag_id}/decision"): {"path": {"flag_id": "unknown"},
                                                            "json": {"decision": "defer", "reason": "matrix"}},
        ("GET", "/api/models"): {},
        ("GET", "/api/models/{name}/{version}"): {"path": {"name": model["name"], "version": model["version"]}},
        ("POST", "/api/models/{name}/{version}/approval"): {"path": {"name": model["name"], "version": model["version"]},
                                                            "json": {"purposes": ["planning"]}},
        ("GET", "/api/audit"): {},
        ("GET", "/api/audit/verify"): {},
        ("GET", "/api/audit/export"): {},
        ("GET", "/api/users"): {},
        ("POST", "/api/users"): {"json": {"name": "matrix-user", "role": "bogus", "password": PASSWORD}},
    }


def guarded_routes(app):
    """(method, path, action) of every route that checks a policy action."""
    out = []
    for route in app.routes:
        deps = getattr(getattr(route, "dependant", None), "dependencies", [])
        actions = [getattr(d.call, "action", None) for d in deps if getattr(d.call, "action", None)]
        for method in getattr(route, "methods", ()):
            if actions:
                out.append((method, route.path, actions[0]))
    return out


def test_every_route_for_every_role_is_allowed_or_refused_as_the_policy_says(served):
    client, tokens = served
    samples = sample_requests(client, tokens)
    routes = guarded_routes(client.app)
    assert {(m, p) for m, p, _ in routes} == set(samples)  # every guarded route is in the matrix
    for method, path, action in routes:
        s = samples[(method, path)]
        url = path.format(**s.get("path", {}))
        for role in ROLES:
            purpose = sorted(PURPOSES[role])[0]
            res = client.request(method, url, headers=as_(tokens, role, purpose), params=s.get("params"),
                                 json=s.get("json"), files=s.get("files"))
            expected = authorize(role, action, purpose).allowed
            assert (res.status_code != 403) == expected, (method, path, role, res.status_code, res.text)
            assert res.status_code < 500, (method, path, role, res.text)


def test_without_a_session_or_a_purpose_nothing_is_served(served):
    client, tokens = served
    assert client.get("/api/status").status_code == 401
    assert client.get("/api/status", headers={"Authorization": "Bearer forged"}).status_code == 401
    res = client.get("/api/status", headers={"Authorization": f"Bearer {tokens['analyst']}"})
    assert res.status_code == 400 and "purpose of use" in res.json()["detail"]
    # the right role for the wrong purpose
    res = client.get("/api/review/flags", headers=as_(tokens, "care_coordinator", "research"))
    assert res.status_code == 403 and "care_management" in res.json()["detail"]


def test_an_executives_request_for_person_level_data_is_refused_and_audited(served):
    client, tokens = served
    res = client.get("/api/review/flags", headers=as_(tokens, "executive", "planning"))
    assert res.status_code == 403
    trail = client.get("/api/audit", headers=as_(tokens, "auditor"), params={"limit": 1000}).json()
    refusal = [e for e in trail if e["agent"] == "executive" and e["subtype"] == "review.read"]
    assert refusal and refusal[-1]["outcome"] == "4" and refusal[-1]["type"] == "110113"


def test_aggregates_hide_small_cells_from_analysts_but_not_from_care_coordinators(served):
    client, tokens = served
    params = {"by": ["region", "race_ethnicity"]}
    analyst = client.get("/api/aggregates/members", headers=as_(tokens, "analyst"), params=params).json()
    coordinator = client.get("/api/aggregates/members", headers=as_(tokens, "care_coordinator"), params=params).json()
    true = {tuple(c["key"].values()): c["count"] for c in coordinator["cells"]}
    assert any(1 <= n <= 10 for n in true.values())  # the county has small cells to hide
    for c in analyst["cells"]:
        n = true[tuple(c["key"].values())]
        if 1 <= n <= 10:
            assert c["suppressed"] and c["count"] is None and c["share"] is None
    assert analyst["total"] == coordinator["total"] and not any(c["suppressed"] for c in coordinator["cells"])


def _shown_lines(answer):
    """Every line of an aggregate answer a reader can add up: (its values, its total), None for a hidden one."""
    by, cells = answer["by"], answer["cells"]
    value = {tuple(c["key"].values()): c["count"] for c in cells}
    rows = sorted({k[0] for k in value})
    lines = [([answer["row_totals"][str(r)] for r in rows], answer["total"])]
    if len(by) == 1:
        return lines + [([value[(r,)] for r in rows], answer["total"])]
    cols = sorted({k[1] for k in value})
    lines.append(([answer["column_totals"][str(c)] for c in cols], answer["total"]))
    lines += [([value.get((r, c)) for c in cols], answer["row_totals"][str(r)]) for r in rows]
    lines += [([value.get((r, c)) for r in rows], answer["column_totals"][str(c)]) for c in cols]
    return lines


def test_no_count_of_1_to_10_can_be_read_or_worked_out_from_aggregates(served):
    # as an executive and an analyst: cells, row and column totals and the total, with filters narrowing to a
    # region, a race and a sex; then differencing, a query less the same query with one filter fewer
    client, tokens = served
    truth = client.get("/api/aggregates/members", headers=as_(tokens, "care_coordinator"),
                       params={"by": ["region", "race_ethnicity"]}).json()
    regions = sorted({c["key"]["region"] for c in truth["cells"]})
    assert any(1 <= c["count"] <= 10 for c in truth["cells"])  # there are small cells to protect
    queries = [({"by": ["region"]}, []), ({"by": ["race_ethnicity"]}, []), ({"by": ["region", "race_ethnicity"]}, [])]
    queries += [({"by": ["race_ethnicity"]}, [f"region:{r}"]) for r in regions]
    queries += [({"by": ["race_ethnicity", "sex"]}, [f"region:{r}"]) for r in regions]
    queries += [({"by": ["region"]}, ["sex:female"]), ({"by": ["race_ethnicity"]}, [f"region:{regions[0]}", "sex:female"])]
    for role, purpose in (("executive", "planning"), ("analyst", "planning")):
        h = as_(tokens, role, purpose)
        answers = {}
        for params, filters in queries:
            res = client.get("/api/aggregates/members", headers=h, params={**params, "filter": filters})
            if res.status_code == 403:
                assert "fewer than 11 members" in res.json()["detail"]
                continue
            a = answers[(tuple(params["by"]), tuple(filters))] = res.json()
            for values, total in _shown_lines(a):
                assert all(v is None or not 1 <= v <= 10 for v in [*values, total]), (role, params, filters)
                hidden = [v for v in values if v is None]
                if total is not None:
                    assert len(hidden) != 1, (role, params, filters)  # one hidden value is the total less the rest
                    assert not 1 <= total - sum(v for v in values if v is not None) <= 10 or not hidden
                elif not hidden:
                    assert sum(values) == 0 or sum(values) > 10  # a hidden total is not the sum of shown values
        for (by, filters), a in answers.items():
            for k in range(len(filters)):
                wider = answers.get((by, filters[:k] + filters[k + 1:]))
                if wider is None:
                    continue
                narrow = {tuple(c["key"].values()): c["count"] for c in a["cells"]}
                for c in wider["cells"]:
                    n = narrow.get(tuple(c["key"].values()))
                    if c["count"] is not None and n is not None:
                        assert not 1 <= c["count"] - n <= 10, (role, by, filters, c)


def test_hostile_filters_sorts_and_file_names_are_refused_or_harmless(served):
    client, tokens = served
    h = as_(tokens, "analyst")
    res = client.get("/api/aggregates/members", headers=h, params={"filter": "region:R01' OR '1'='1"})
    assert res.status_code == 200 and res.json()["total"] == 0  # bound as a value: no member has that region
    assert client.get("/api/aggregates/members", headers=h,
                      params={"by": "region; DROP TABLE members"}).status_code == 400
    assert client.get("/api/aggregates/members", headers=h, params={"sort": "count; --"}).status_code == 422
    # numbers past what the databases hold are refused, not a server error
    coordinator, auditor = as_(tokens, "care_coordinator"), as_(tokens, "auditor")
    for path, name, who in (("/api/review/flags", "offset", coordinator), ("/api/audit", "after", auditor)):
        assert client.get(path, headers=who, params={name: 10**30}).status_code == 422
        assert client.get(path, headers=who, params={name: 2**62}).status_code == 200
    assert client.get("/api/status", headers=h).json()["tables"]["members"] > 0  # still there
    for name in ("../caretwin.toml", "../../etc/passwd", "/etc/passwd", "baseline.yaml/../../x.yaml"):
        res = client.post("/api/scenario-runs", headers=h, json={"files": [name]})
        assert res.status_code == 400 and "not a scenario file" in res.json()["detail"]


def test_log_in_attempts_are_limited_and_logs_hold_no_secrets(served, caplog):
    client, tokens = served
    caplog.set_level(logging.DEBUG)
    codes = [client.post("/api/session", json={"name": "analyst", "password": "wrong guess 123"}).status_code
             for _ in range(12)]
    assert codes[0] == 401 and codes[-1] == 429
    flag = client.get("/api/review/flags", headers=as_(tokens, "care_coordinator")).json()[0]
    client.get(f"/api/review/flags/{flag['flag_id']}", headers=as_(tokens, "care_coordinator"))
    text = caplog.text
    assert PASSWORD not in text and tokens["analyst"] not in text and "p_" not in text


def test_a_scenario_run_is_a_background_job_with_progress_and_an_auditor_can_verify_the_trail(served):
    client, tokens = served
    h = as_(tokens, "analyst")
    job = client.post("/api/scenario-runs", headers=h, json={"files": ["baseline.yaml"], "replications": 3}).json()
    assert job["status"] in ("queued", "running")
    job = wait(client, job, h)
    assert job["status"] == "done", job["error"]
    assert job["done"] == job["total"] > 0 and len(job["result"]) == 1
    assert job["result"][0] in {r["run_id"] for r in client.get("/api/runs", headers=h).json()}
    verified = client.get("/api/audit/verify", headers=as_(tokens, "auditor")).json()
    assert verified == {"intact": True, "problems": []}
    export = client.get("/api/audit/export", headers=as_(tokens, "auditor"))
    assert export.headers["content-type"].startswith("application/fhir+ndjson") and export.text.count("\n") > 10


def test_a_job_belongs_to_whoever_started_it_and_cancelling_it_is_recorded(served, extract_csv):
    client, tokens = served
    analyst, executive, admin = as_(tokens, "analyst"), as_(tokens, "executive"), as_(tokens, "admin")
    job = client.post("/api/scenario-runs", headers=analyst, json={"files": ["baseline.yaml"]}).json()
    for method in ("GET", "DELETE"):  # someone else's job is no job at all
        res = client.request(method, f"/api/jobs/{job['job_id']}", headers=executive)
        assert res.status_code == 404, (method, res.text)
    cancelled = client.delete(f"/api/jobs/{job['job_id']}", headers=analyst)
    assert cancelled.status_code == 200
    trail = client.get("/api/audit", headers=as_(tokens, "auditor"), params={"limit": 1000}).json()
    assert any(e["subtype"] == "job.cancel" and e["agent"] == "analyst" and e["entity_id"] == job["job_id"] for e in trail)
    wait(client, job, analyst)
    # the admin follows their own upload
    regions = next(p for p in extract_csv.iterdir() if p.name.startswith("regions"))
    upload = client.post("/api/ingest", headers=admin, files=[("files", (regions.name, regions.read_bytes()))]).json()
    assert wait(client, upload, admin)["status"] == "done"


def wait(client, job, headers):
    for _ in range(600):
        job = client.get(f"/api/jobs/{job['job_id']}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not finish")


def test_quality_and_calibration_through_the_api(served):
    client, tokens = served
    report = client.get("/api/quality", headers=as_(tokens, "executive")).json()
    assert report["results"] and {"pass", "fail"} <= set(report["summary"])
    h = as_(tokens, "analyst")
    job = wait(client, client.post("/api/calibrations", headers=h).json(), h)
    assert job["status"] == "done", job["error"]
    assert job["result"]["estimated"] > 10 and (client.app.state.server.path / "calibrated.toml").is_file()


def test_an_upload_is_ingested_as_a_job_and_names_and_sizes_are_checked(served, extract_csv):
    client, tokens = served
    h = as_(tokens, "analyst")
    before = client.get("/api/status", headers=h).json()["tables"]["regions"]
    files = [("files", (p.name, p.read_bytes())) for p in sorted(extract_csv.iterdir()) if p.name.startswith("regions")
             or p.name == "manifest.json"]
    job = client.post("/api/ingest", headers=h, files=files).json()
    job = wait(client, job, h)
    assert job["status"] == "done", job["error"]
    assert client.get("/api/status", headers=h).json()["tables"]["regions"] == before  # the same regions, replaced
    uploads = client.app.state.server.path / "uploads"
    assert uploads.stat().st_mode & 0o077 == 0 and not any(uploads.iterdir())  # the raw files went with the load
    job = wait(client, client.post("/api/ingest", headers=h, files=[("files", ("members.csv", b"member_id\nM1\n"))]).json(), h)
    assert job["status"] == "failed" and not any(uploads.iterdir())  # and with a refused one
    root = str(client.app.state.server.path.resolve())
    assert "WORKSPACE/uploads/" in job["error"] and root not in job["error"]  # no server path in the answer
    for name in ("../regions.csv", "..%2Fregions.csv", "/etc/passwd.csv", "regions.csv/..", ".hidden.csv"):
        res = client.post("/api/ingest", headers=h, files=[("files", (name, b"region_id\n"))])
        assert res.status_code == 400 and "plain, distinct names" in res.json()["detail"], name
    kept = set(uploads.iterdir())
    small = TestClient(create_app(client.app.state.server.path, max_upload=1000))
    res = small.post("/api/ingest", headers=h, files=[("files", ("regions.csv", b"x" * 5000))])
    assert res.status_code == 413 and set(uploads.iterdir()) == kept  # nothing of a refused upload is kept


def test_the_server_keeps_users_sessions_and_audit_in_the_named_database(workspace, database_url):
    from caretwin.governance.store import engine_for as store

    add_user(store(workspace.path, database_url), "exec", "executive", PASSWORD)
    client = TestClient(create_app(workspace.path, database=database_url))
    token = client.post("/api/session", json={"name": "exec", "password": PASSWORD}).json()["token"]
    h = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "planning"}
    assert client.get("/api/status", headers=h).status_code == 200
    assert client.get("/api/review/flags", headers=h).status_code == 403
    trail = client.app.state.server.trail
    assert [e.subtype for e in trail.entries()] == ["session.create", "review.read"] and trail.verify() == []


def test_jobs_are_kept_in_the_store_outlive_the_server_and_can_be_cancelled_from_another(workspace, database_url):
    import socket
    import subprocess
    import threading

    from caretwin.api.jobs import Jobs
    from caretwin.governance.store import engine_for as store
    from caretwin.governance.store import jobs as table

    engine = store(workspace.path, database_url)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that has ended: its unfinished job is an orphan
    with engine.begin() as conn:
        conn.execute(table.insert().values(job_id="orphan", kind="scenario runs", owner="jo", status="running", done=3,
                                           total=10, cancel_requested=False, runner=f"{socket.gethostname()}:{gone.pid}",
                                           created_at="2026-01-01T00:00:00+00:00", updated_at="2026-01-01T00:00:00+00:00"))
    server = TestClient(create_app(workspace.path, database=database_url)).app.state.server
    orphan = server.jobs.get("orphan")
    assert orphan.status == "failed" and "server stopped" in orphan.error and orphan.done == 3

    def finished(jobs, job_id):
        for _ in range(200):
            if (job := jobs.get(job_id)).status not in ("queued", "running"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish")

    done = server.jobs.start("sum", "jo", lambda progress, cancelled: {"total": sum(range(10))})
    assert finished(Jobs(engine), done.job_id).result == {"total": 45}  # read by another process's view

    started = threading.Event()

    def forever(progress, cancelled):
        for i in range(10_000):
            progress(i, 10_000)
            if i == 40:  # after a progress report was written (they are written every 0.5 s at most)
                started.set()
            if cancelled():
                raise RuntimeError("stopped")
            time.sleep(0.02)

    job = server.jobs.start("loop", "jo", forever)
    assert started.wait(10)
    Jobs(engine).cancel(job.job_id)  # asked through the store, as another server process would
    job = finished(server.jobs, job.job_id)
    assert job.status == "cancelled" and job.error is None and 0 < job.done < 10_000
