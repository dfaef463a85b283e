"""The dashboard in a real browser (headless Chromium driven by Playwright) against `caretwin serve`'s
application on 127.0.0.1: the journeys a person makes, checked by what they would see. Screenshots are
saved under test-artefacts/dashboard/.

Chromium comes from Debian (`apt-get install chromium`; .ci/run does it). Without it these tests are
skipped locally, and fail under CI (CARETWIN_REQUIRE_BROWSER), so they cannot pass by not running.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from caretwin.governance.store import engine_for
PASSWORD = "a long enough passphrase"  # conftest.GOVERNED_PASSWORD
ARTEFACTS = Path(__file__).parents[1] / "test-artefacts" / "dashboard"
CHROMIUM = os.environ.get("CARETWIN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def base_url(governed_workspace):
    """The governed test workspace (6 weeks, 8 replications a scenario), served on a free loopback port."""
    import uvicorn

    from caretwin.web.views import create_site

    root = governed_workspace(weeks=6, replications=8)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_site(root), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", root
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CARETWIN_REQUIRE_BROWSER"):
            pytest.fail(f"CARETWIN_REQUIRE_BROWSER is set but there is no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page(browser, base_url):
    """A fresh browser tab (laptop-sized) that records every address it asks for."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=base_url[0])
    tab = context.new_page()
    tab.asked = []
    tab.on("request", lambda r: tab.asked.append(r.url))
    yield tab
    assert all(u.startswith(base_url[0]) for u in tab.asked), [u for u in tab.asked if not u.startswith(base_url[0])]
    context.close()


def log_in(page, name: str, purpose: str) -> None:
    page.goto("/")
    assert "/login" in page.url  # every page is behind the log-in
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("I am working for").select_option(purpose)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def unlabelled_controls(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
        .map(e => e.outerHTML)""")


def test_an_analyst_logs_in_and_sees_the_system_by_region(page):
    log_in(page, "analyst", "planning")
    assert page.get_by_role("heading", level=1).inner_text() == "The system today"
    assert page.get_by_role("table").first.locator("caption").inner_text().startswith("Share of capacity in use")
    assert page.locator("svg[role=img] title").first.text_content()  # the tile map has a text alternative
    assert page.get_by_role("link", name="Overview").get_attribute("aria-current") == "page"
    assert page.get_by_role("link", name="Risk review").count() == 0  # not offered to an analyst
    page.keyboard.press("Tab")  # the first stop of the keyboard is the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    assert unlabelled_controls(page) == []
    page.screenshot(path=ARTEFACTS / "overview.png", full_page=True)
    page.goto("/quality")
    expect(page.get_by_role("heading", name="By category and severity")).to_be_visible()
    page.locator("details.check summary").first.click()  # drill down into a check
    page.screenshot(path=ARTEFACTS / "quality.png")


def test_a_scenario_run_shows_its_progress_and_ends_at_the_comparison(page):
    progress: list[tuple[int, int, str]] = []

    def seen(response):
        if response.url.endswith("/progress"):
            job = response.json()
            progress.append((job["done"], job["total"], job["status"]))

    page.on("response", seen)
    log_in(page, "analyst", "planning")
    page.get_by_role("link", name="Scenarios").click()
    page.wait_for_url("**/scenarios")
    assert unlabelled_controls(page) == []
    page.get_by_label("Baseline (what the others are compared with)").select_option("baseline.yaml")
    page.get_by_role("checkbox", name="surge.yaml").check()
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"))
    job_url = page.url
    assert re.search(r"/jobs/[0-9a-f]+$", job_url)
    expect(page.get_by_label("Progress")).to_be_visible()
    page.screenshot(path=ARTEFACTS / "scenario-progress.png")
    page.wait_for_url("**/scenarios/compare?**", timeout=180_000)  # the script follows the job to the comparison
    expect(page.get_by_role("heading", name="Executive summary")).to_be_visible()
    expect(page.get_by_role("heading", name="Where services fail")).to_be_visible()
    expect(page.get_by_role("link", name="Download the board report (HTML)")).to_be_visible()
    page.screenshot(path=ARTEFACTS / "scenario-comparison.png", full_page=True)
    done = [d for d, _, _ in progress]
    assert progress and done == sorted(done)  # the page followed the job, and its progress never went back
    final = page.request.get(f"{job_url}/progress").json()
    assert final["status"] == "done" and final["done"] == final["total"] > 0  # every replication of both


def test_a_care_coordinator_decides_a_flag_and_it_leaves_the_queue(page):
    log_in(page, "care_coordinator", "care_management")
    page.get_by_role("link", name="Risk review").click()
    page.wait_for_url("**/review")
    first = page.get_by_role("link", name=re.compile(r"^Open flag ")).first
    flag_id = first.inner_text().removeprefix("Open flag ")
    first.click()
    page.wait_for_url(f"**/review/{flag_id}")
    expect(page.get_by_role("heading", name="What drives the score")).to_be_visible()
    assert page.locator("ul.reasons li").count() >= 1
    assert unlabelled_controls(page) == []
    page.get_by_label("Override: no action, the model is wrong here").check()
    page.get_by_label("Reason (required, recorded)").fill("already in a transitional care programme")
    page.screenshot(path=ARTEFACTS / "review-flag.png", full_page=True)
    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_role("status")).to_have_text(f"Flag {flag_id}: override recorded; it has left the queue.")
    expect(page.get_by_role("link", name=f"Open flag {flag_id}")).to_have_count(0)
    page.screenshot(path=ARTEFACTS / "review-queue.png")


def test_an_executive_is_refused_the_review_queue_and_the_refusal_is_audited(page, base_url):
    from caretwin.governance.audit import AuditTrail

    log_in(page, "executive", "planning")
    assert page.get_by_role("link", name="Risk review").count() == 0
    res = page.goto("/review")
    assert res.status == 403
    assert page.get_by_role("alert").inner_text() == "The executive role may not open the risk review queue."
    page.screenshot(path=ARTEFACTS / "executive-refused.png")
    from caretwin import Workspace

    with Workspace.open(base_url[1]) as ws:
        trail = AuditTrail(engine_for(ws.path), ws.path, ws.key())
        refused = [e for e in trail.entries() if e.agent == "executive" and e.outcome == "4"]
    assert refused and refused[-1].subtype == "review.read" and trail.verify() == []


def test_every_role_lands_on_a_page_it_may_see_and_every_menu_page_reads_as_words(browser, base_url):
    from caretwin.governance.policy import PURPOSES, ROLES

    leaked = re.compile(r"\{'|\['|\{\"|\[\"|\"\]|<built-in|object at 0x")
    for role in ROLES:
        context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=base_url[0])
        tab = context.new_page()
        log_in(tab, role, sorted(PURPOSES[role])[0])
        assert tab.get_by_role("alert").count() == 0 and tab.get_by_role("heading", level=1).count() == 1, role
        menu = [a.get_attribute("href") for a in tab.locator("nav a[href^='/']").all()]
        assert menu, role
        for href in menu:
            res = tab.goto(href)
            text = tab.locator("main").inner_text()
            assert res.status == 200 and not leaked.search(text), (role, href, leaked.search(text))
            assert unlabelled_controls(tab) == [], (role, href)
        tab.screenshot(path=ARTEFACTS / f"landing-{role}.png")
        context.close()
