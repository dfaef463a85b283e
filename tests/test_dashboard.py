"""The dashboard's pages behind log-in and the role policy: every page x every role, forms that change
something need the session's form token, errors in plain words, and nothing fetched from elsewhere."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from caretwin.governance.policy import PURPOSES, ROLES, authorize
from caretwin.web.views import create_site
PASSWORD = "a long enough passphrase"  # conftest.GOVERNED_PASSWORD


@pytest.fixture(scope="module")
def site(governed_workspace):
    return create_site(governed_workspace())


_clients: dict[tuple, TestClient] = {}


def logged_in(app, role: str, purpose: str | None = None) -> TestClient:
    """A browser-like client with a live session (one per role: log-ins are limited to 10 a minute)."""
    key = (id(app), role, purpose)
    if key in _clients:
        return _clients[key]
    client = _clients[key] = TestClient(app)
    res = client.post("/login", data={"name": role, "password": PASSWORD, "purpose": purpose or sorted(PURPOSES[role])[0],
                                      "next": "/overview"}, follow_redirects=False)
    assert res.status_code == 303, res.text
    return client


def form_token(client: TestClient, path: str = "/overview") -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path).text).group(1)


def pages(app) -> dict[str, str]:
    """Every GET page of the dashboard with the policy action it names."""
    found = {}
    for r in app.routes:
        if "GET" not in getattr(r, "methods", ()) or r.path.startswith("/api") or not hasattr(r, "dependant"):
            continue
        actions = [d.call.action for d in r.dependant.dependencies if hasattr(d.call, "action")]
        if actions:
            found[r.path] = actions[0]
    return found


def test_every_page_for_every_role_is_shown_or_refused_as_the_policy_says(site):
    paths = pages(site)
    assert {"/overview", "/quality", "/scenarios", "/review", "/review/{flag_id}", "/providers", "/equity",
            "/governance", "/governance/audit", "/governance/users"} <= set(paths)
    flag = logged_in(site, "care_coordinator").get("/review").text
    flag_id = re.search(r'href="/review/([0-9a-f]+)"', flag).group(1)
    fill = {"flag_id": flag_id, "job_id": "nojob", "name": "ed_90d", "version": "1"}
    for role in ROLES:
        client = logged_in(site, role)
        for path, action in paths.items():
            url = path.format(**fill)
            res = client.get(url, params={"run": ["a", "b"]} if "compare" in path or "report" in path else None)
            if authorize(role, action, sorted(PURPOSES[role])[0]).allowed:
                assert res.status_code in (200, 400, 404), (role, url, res.status_code, res.text[:300])
            else:
                assert res.status_code == 403 and "may not" in res.text, (role, url)


def test_pages_need_a_log_in_and_a_wrong_password_is_said_plainly(site):
    client = TestClient(site)
    res = client.get("/review?offset=50", follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/login?next=/review%3Foffset%3D50"
    res = client.post("/login", data={"name": "analyst", "password": "wrong", "purpose": "planning"})
    assert res.status_code == 401 and "wrong name or password" in res.text
    res = client.post("/login", data={"name": "executive", "password": PASSWORD, "purpose": "care_management"})
    assert res.status_code == 403 and "you may work for operations or planning" in res.text
    res = client.post("/login", data={"name": "analyst", "password": PASSWORD, "purpose": "planning",
                                      "next": "https://elsewhere.example/"}, follow_redirects=False)
    assert res.headers["location"] == "/overview"  # no redirects to other sites


def test_forms_that_change_something_need_the_sessions_form_token(site):
    client = logged_in(site, "care_coordinator")
    flag_id = re.search(r'href="/review/([0-9a-f]+)"', client.get("/review").text).group(1)
    res = client.post(f"/review/{flag_id}", data={"decision": "defer", "reason": "forged", "csrf": "0" * 32})
    assert res.status_code == 403 and "did not come from caretwin" in res.text
    res = client.post(f"/review/{flag_id}", data={"decision": "defer", "reason": "  ", "csrf": form_token(client)})
    assert res.status_code == 400 and "needs a reason" in res.text
    res = client.post(f"/review/{flag_id}", data={"decision": "defer", "reason": "waiting for the GP",
                                                  "csrf": form_token(client)})
    assert res.status_code == 200 and "stays in the queue" in res.text


def test_a_scenario_with_mistakes_is_not_saved_and_every_problem_is_listed(site):
    client = logged_in(site, "analyst")
    folder = site.state.server.path / "scenarios"
    before = sorted(p.name for p in folder.iterdir())
    res = client.post("/scenarios/files", data={"name": "bad", "csrf": form_token(client),
                                                "text": "name: bad\nextends: baseline.yaml\nhorizon_weeks: -3\nshocks:\n  - meteor: {}\n"})
    assert res.status_code == 400 and "was not saved" in res.text
    assert "horizon_weeks" in res.text and "meteor" in res.text and "bad.yaml" in res.text
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing left behind
    res = client.post("/scenarios/files", data={"name": "<script>x</script>", "csrf": form_token(client), "text": "name: x\n"})
    assert res.status_code == 400 and "<script>x" not in res.text  # refused, and escaped when shown
    res = client.post("/scenarios/files", data={"name": "wage-rise", "csrf": form_token(client),
                                                "text": "name: wage rise\nextends: baseline.yaml\n"})
    assert res.status_code == 200 and "Saved wage-rise.yaml" in res.text and (folder / "wage-rise.yaml").is_file()


def test_an_analyst_sees_no_overview_figure_resting_on_1_to_10_people_a_care_coordinator_sees_them(site):
    from caretwin.web.overview import overview

    ws = site.state.server.workspace()
    for open_, hidden in zip(overview(ws, person_level=True), overview(ws, person_level=False)):
        shown = {r.region_id: r for r in hidden.regions}
        # each figure, the count of people or events it rests on, and whether the analyst still sees it
        figures = [("members", r.members, shown[r.region_id].members is not None) for r in open_.regions]
        figures += [("waiting", r.waiting, shown[r.region_id].waiting is not None) for r in open_.regions]
        figures += [("median wait", r.starts, shown[r.region_id].median_wait_days is not None) for r in open_.regions]
        figures += [("ED rate", r.ed_count, shown[r.region_id].ed_per_1000 is not None) for r in open_.regions]
        figures += [(f"{line} occupancy", n, shown[r.region_id].occupancy[line] is not None)
                    for r in open_.regions for line, n in r.stays.items()]
        assert not [f for f in figures if 1 <= f[1] <= 10 and f[2]], "a figure resting on 1-10 is shown"
        for name in ("members", "waiting"):  # never the only hidden count in a column: a total would give it away
            assert sum(not f[2] and f[1] > 0 for f in figures if f[0] == name) != 1, name
        assert any(1 <= f[1] <= 10 for f in figures)  # the county has small cells to hide
    page = logged_in(site, "analyst").get("/overview").text
    assert "Capacity and occupancy by service line" in page and "suppressed" in page


def test_the_pages_load_nothing_from_elsewhere(site):
    client = logged_in(site, "analyst")
    for path in ("/overview", "/quality", "/scenarios", "/providers", "/equity", "/governance"):
        html = client.get(path).text
        refs = re.findall(r'(?:src|href)="([^"#]+)"', html)
        assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), (path, refs)
    assert client.get("/static/caretwin.css").status_code == 200
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would load scripts from a CDN
    # and the browser is told so: this origin only, no framing, no sniffing, no referrer, nothing cached
    for path in ("/overview", "/api/status", "/login"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store", path


def test_errors_on_pages_are_pages_in_plain_words_and_the_api_keeps_json(site):
    client = logged_in(site, "care_coordinator")
    res = client.get("/review/nosuchflag")
    assert res.status_code == 400 and res.headers["content-type"].startswith("text/html")
    assert "No flag &#39;nosuchflag&#39; in the review queue." in res.text
    res = client.get("/no/such/page")
    assert res.status_code == 404 and "There is no such page." in res.text
    res = client.get("/api/jobs/nojob", headers={"Authorization": "Bearer x", "X-Purpose-Of-Use": "care_management"})
    assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer" and "log in first" in res.json()["detail"]


def test_a_link_from_elsewhere_cannot_put_its_own_words_on_a_page(site):
    client = logged_in(site, "analyst")
    res = client.get("/scenarios", params={"message": "Your account is locked: call 555-0100", "sig": "0" * 32})
    assert res.status_code == 200 and "555-0100" not in res.text


def test_an_approval_records_the_same_event_from_the_api_the_dashboard_and_the_command_line(governed_workspace):
    # the service records it, so each door gives one event of the same shape; only who acted differs
    import getpass

    from typer.testing import CliRunner

    from caretwin.cli import app as cli
    from caretwin.governance.audit import trail_for
    from caretwin.risk.registry import list_models
    from caretwin.workspace import Workspace

    root = governed_workspace()
    site = create_site(root)
    with Workspace.open(root) as ws:
        name, version = next((m["name"], m["version"]) for m in list_models(ws))
        seen = trail_for(ws).count()
    api = TestClient(site)
    token = api.post("/api/session", json={"name": "admin", "password": PASSWORD}).json()
    res = api.post(f"/api/models/{name}/{version}/approval", json={"purposes": ["planning"]},
                   headers={"Authorization": f"Bearer {token['token']}", "X-Purpose-Of-Use": "operations"})
    assert res.status_code == 200, res.text
    page = logged_in(site, "admin", "operations")
    res = page.post(f"/governance/models/{name}/{version}", follow_redirects=False,
                    data={"purposes": ["research"], "csrf": form_token(page, f"/governance/models/{name}/{version}")})
    assert res.status_code == 303, res.text
    res = CliRunner().invoke(cli, ["models", "approve", str(root), name, str(version), "--purpose", "operations",
                                   "--by", "medical director"])
    assert res.exit_code == 0, res.output
    with Workspace.open(root) as ws:
        events = [e for e in trail_for(ws).entries(after=seen) if e.subtype == "models.approve"]
    shapes = {(e.type, e.subtype, e.action, e.entity_type, e.entity_id, e.outcome) for e in events}
    assert len(events) == 3 and len(shapes) == 1, events
    assert [(e.agent, e.agent_role) for e in events] == [("admin", "admin"), ("admin", "admin"),
                                                         (getpass.getuser(), "local")]


def test_changing_purpose_logging_out_and_a_log_in_flood_are_recorded(governed_workspace):
    from caretwin.api.app import LOGIN_LIMIT
    from caretwin.governance.audit import trail_for
    from caretwin.workspace import Workspace

    root = governed_workspace()
    site = create_site(root)
    page = TestClient(site)
    assert page.post("/login", data={"name": "analyst", "password": PASSWORD, "purpose": "planning", "next": "/overview"},
                     follow_redirects=False).status_code == 303
    assert page.post("/purpose", data={"purpose": "research", "csrf": form_token(page)},
                     follow_redirects=False).status_code == 303
    assert page.post("/logout", data={"csrf": form_token(page)}, follow_redirects=False).status_code == 303
    for _ in range(LOGIN_LIMIT):
        page.post("/login", data={"name": "analyst", "password": "wrong guess", "purpose": "planning"})
    assert page.post("/login", data={"name": "analyst", "password": "wrong guess", "purpose": "planning"}).status_code == 429
    with Workspace.open(root) as ws:
        events = [(e.subtype, e.agent, e.purpose, e.outcome) for e in trail_for(ws).entries()]
    assert ("session.purpose", "analyst", "research", "0") in events
    assert ("session.end", "analyst", "research", "0") in events
    assert events[-1] == ("session.create", "analyst", "administration", "4")  # the refused attempt, by its address


def test_every_role_lands_on_a_page_it_may_see_and_no_page_shows_a_python_repr(governed_workspace):
    # the auditor and admin may not see the overview: they start on their first menu page, with no refusal
    # recorded; and no page prints a dict or a JSON list where words belong (equity cells, "approved for")
    from caretwin.web.views import MENU

    leaked = re.compile(r"\{&#39;|\[&#39;|\{&#34;|\[&#34;|&#34;\]")
    site = create_site(governed_workspace())  # its own log-in limiter: five log-ins here
    for role in ROLES:
        client = TestClient(site)
        res = client.post("/login", data={"name": role, "password": PASSWORD, "purpose": sorted(PURPOSES[role])[0],
                                          "next": "/overview"}, follow_redirects=True)
        assert res.status_code == 200 and "Refused" not in res.text, (role, res.url)
        assert client.get("/", follow_redirects=True).status_code == 200, role
        for path, _, action in MENU:
            if authorize(role, action, sorted(PURPOSES[role])[0]).allowed:
                page = client.get(path)
                assert page.status_code == 200 and not leaked.search(page.text), (role, path, leaked.search(page.text))


def test_session_cookies_are_secure_when_the_browser_came_over_https(site):
    for base, secure in (("https://testserver", True), ("http://testserver", False)):
        res = TestClient(site, base_url=base).post("/login", data={"name": "analyst", "password": PASSWORD,
                                                                   "purpose": "planning"}, follow_redirects=False)
        cookies = res.headers.get_list("set-cookie")
        assert res.status_code == 303 and len(cookies) == 2
        assert all(("; secure" in c.lower()) == secure and "httponly" in c.lower() for c in cookies), cookies


def test_a_coordinator_narrows_the_queue_and_sees_the_members_last_year_beside_a_flag(site):
    client = logged_in(site, "care_coordinator")
    page = client.get("/review", params={"region": "R01", "sort": "oldest"}).text
    rows = re.findall(r"<tr><td><a href=\"/review/([0-9a-f]+)\">.*?</td><td>.*?</td><td>([^<]*)</td>", page)
    assert rows and {region for _, region in rows} == {"R01"}
    assert '<option value="R01" selected>' in page and '<option value="oldest" selected>' in page
    flag = client.get(f"/review/{rows[0][0]}").text
    assert "The member's last year" in flag and re.search(r"From \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d: ", flag)
    assert client.get("/review", params={"sort": "name"}).status_code in (400, 422)


def test_a_review_decision_records_the_same_event_from_the_api_the_dashboard_and_the_command_line(
        governed_workspace):
    import getpass

    from typer.testing import CliRunner

    from caretwin.cli import app as cli
    from caretwin.governance.audit import trail_for
    from caretwin.risk.review import list_flags
    from caretwin.workspace import Workspace

    root = governed_workspace()
    site = create_site(root)
    with Workspace.open(root) as ws:
        flags = [f["flag_id"] for f in list_flags(ws, reviewer="setup", limit=3)]
        seen = trail_for(ws).count()
    api = TestClient(site)
    token = api.post("/api/session", json={"name": "care_coordinator", "password": PASSWORD}).json()["token"]
    res = api.post(f"/api/review/flags/{flags[0]}/decision", json={"decision": "defer", "reason": "by the API"},
                   headers={"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "care_management"})
    assert res.status_code == 200, res.text
    page = logged_in(site, "care_coordinator")
    res = page.post(f"/review/{flags[1]}", follow_redirects=False, data={
        "decision": "defer", "reason": "on the page", "csrf": form_token(page, f"/review/{flags[1]}")})
    assert res.status_code == 303, res.text
    res = CliRunner().invoke(cli, ["review", "decide", str(root), flags[2], "--decision", "defer", "--reason",
                                   "at the command line", "--reviewer", "A. Coordinator"])
    assert res.exit_code == 0, res.output
    with Workspace.open(root) as ws:
        events = [e for e in trail_for(ws).entries(after=seen) if e.subtype == "review.decide"]
    shapes = {(e.type, e.subtype, e.action, e.entity_type, e.outcome, e.purpose) for e in events}
    assert len(events) == 3 and len(shapes) == 1, events
    assert [(e.agent, e.agent_role) for e in events] == [("care_coordinator", "care_coordinator")] * 2 + [
        (getpass.getuser(), "local")]
    assert '"reviewer": "A. Coordinator"' in events[-1].detail  # the name given, beside who acted


def test_a_coordinator_asks_who_a_flag_is_about_and_the_look_is_recorded(governed_workspace, extract_csv):
    import csv
    import shutil

    from caretwin.governance.audit import trail_for
    from caretwin.governance.privacy import pseudonymise
    from caretwin.workspace import Workspace

    root = governed_workspace()
    shutil.copy(extract_csv / "members.csv", root / "roster.csv")  # the agency's own list of its members
    with Workspace.open(root) as ws:
        ws.configure("review", roster="roster.csv")
        key = ws.key()
    site = create_site(root)
    client = TestClient(site)
    client.post("/login", data={"name": "care_coordinator", "password": PASSWORD, "purpose": "care_management"})
    flag_id = re.search(r'href="/review/([0-9a-f]+)"', client.get("/review").text).group(1)
    res = client.post(f"/review/{flag_id}/identity", data={"csrf": form_token(client, f"/review/{flag_id}")})
    member = re.search(r"<code>(p_[0-9a-f]+)</code>", res.text).group(1)
    agency_id = re.search(r"<strong>([^<]+)</strong>", res.text).group(1)
    assert res.status_code == 200 and pseudonymise(agency_id, key) == member
    assert agency_id in {r["member_id"] for r in csv.DictReader((root / "roster.csv").open())}
    assert client.post(f"/review/{flag_id}/identity", data={"csrf": "0" * 64}).status_code in (400, 403)
    with Workspace.open(root) as ws:
        looks = [e for e in trail_for(ws).entries() if e.subtype == "member.reidentify"]
    assert [(e.agent, e.entity_id, e.outcome) for e in looks] == [("care_coordinator", member, "0")]
