"""Audit lives in the services: every public function that changes a workspace or its governance store records
its own event, so the command line, the API, the dashboard and a notebook are audited alike."""

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

PACKAGE = Path(__file__).parents[1] / "src" / "caretwin"
CHANGES = {"transaction", "begin"}  # opening a workspace or store transaction: `ws.transaction()`, `engine.begin()`
RECORDS = {"audited", "record", "Audited", "_log"}  # what writes an audit event
# changes that are not a person's action on the data, each with its reason
NOT_ACTIONS = {
    ("governance/store.py", "upgrade"): "creates or migrates the store's own tables",
    ("governance/store.py", "store_for"): "opens (and on first use creates) the store",
    ("governance/store.py", "engine_for"): "opens (and on first use creates) the store",
    ("governance/store.py", "connect"): "opens (and on first use creates) the store",
    ("risk/review.py", "prepare"): "creates the scores table and moves an old queue, changing no content",
    ("governance/users.py", "log_in"): "the server records each log-in with the client's address (session.create)",
}


def state_changing_functions(package: Path = PACKAGE) -> dict[tuple[str, str], bool]:
    """Every public module-level function that opens a transaction, itself or through a function of its own
    module, mapped to whether it (or such a function) records an audit event."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        funcs = {n.name: n for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        called = {}
        for name, fn in funcs.items():
            calls = [n.func for n in ast.walk(fn) if isinstance(n, ast.Call)]
            called[name] = ({f.id for f in calls if isinstance(f, ast.Name)},
                            {f.attr for f in calls if isinstance(f, ast.Attribute)})

        def reaches(name: str, marks: set[str], seen: frozenset = frozenset()) -> bool:
            names, attrs = called[name]
            return bool((names | attrs) & marks) or any(
                reaches(c, marks, seen | {name}) for c in names if c in funcs and c not in seen | {name})

        for name in funcs:
            if not name.startswith("_") and reaches(name, CHANGES):
                found[(str(path.relative_to(package)), name)] = reaches(name, RECORDS)
    return found


def test_every_public_function_that_changes_state_records_an_audit_event():
    found = state_changing_functions()
    assert ("ingest/canonical.py", "ingest_canonical") in found and ("risk/registry.py", "approve") in found
    silent = sorted(k for k, audited in found.items() if not audited and k not in NOT_ACTIONS)
    assert silent == [], f"these change state without recording an audit event: {silent}"
    assert not set(NOT_ACTIONS) - set(found), "an exemption names a function that no longer changes state"
    assert not [k for k in NOT_ACTIONS if found[k]], "an exempt function now records its events: drop the exemption"


def test_the_walk_finds_a_service_whose_audit_call_was_removed(tmp_path):
    # the same walk over a copy of the registry with its `audited(...)` taken out flags `approve` and `register`
    copy = tmp_path / "risk"
    copy.mkdir()
    source = (PACKAGE / "risk" / "registry.py").read_text()
    assert "with audited(" in source
    (copy / "registry.py").write_text(source.replace("with audited(", "with _nothing(").replace("event.record()", "pass"))
    found = state_changing_functions(tmp_path)
    assert not found[("risk/registry.py", "approve")] and not found[("risk/registry.py", "register")]


@pytest.fixture()
def with_model(workspace, extract_csv):
    from caretwin.ingest import ingest
    from caretwin.risk.registry import register
    from caretwin.risk.train import fit_outcome

    ingest(workspace, extract_csv)
    f = fit_outcome(workspace, "ed_90d", lookback_days=60, n_boot=10)
    card = register(workspace, f.model, f.card, by="analyst")
    return workspace, card


def test_a_cli_approval_records_the_operating_system_user_and_the_approver(with_model):
    import getpass

    from caretwin.cli import app
    from caretwin.governance.audit import trail_for

    ws, card = with_model
    ws.close()
    res = CliRunner().invoke(app, ["models", "approve", str(ws.path), card.name, str(card.version), "--purpose",
                                   "operations", "--by", "Someone"])
    assert res.exit_code == 0, res.output
    from caretwin import Workspace

    with Workspace.open(ws.path) as again:
        events = trail_for(again).entries()
    subtypes = [e.subtype for e in events]
    # the load, its derived table, the training (a read of every member), the registration and the approval, each
    # recorded by the service itself
    assert subtypes == ["data.ingest", "data.enrich", "model.train", "models.register", "models.approve"], subtypes
    approval = events[-1]
    assert (approval.agent, approval.agent_role) == (getpass.getuser(), "local")
    assert '"by": "Someone"' in approval.detail and '"operations"' in approval.detail
    assert approval.entity_id == f"{card.name}/v{card.version}"


def test_person_level_reads_at_the_command_line_need_a_purpose_that_allows_them(with_model):
    import getpass

    from caretwin import Workspace
    from caretwin.cli import app
    from caretwin.governance.audit import trail_for

    ws, _ = with_model
    ws.close()
    res = CliRunner().invoke(app, ["review", "list", str(ws.path), "--purpose", "planning"])
    assert res.exit_code == 2 and "the purpose must be one of" in res.output
    with Workspace.open(ws.path) as again:
        refused = trail_for(again).entries()[-1]
    assert (refused.subtype, refused.outcome, refused.agent, refused.purpose) == \
        ("review.read", "4", getpass.getuser(), "planning")
    assert CliRunner().invoke(app, ["review", "list", str(ws.path)]).exit_code == 0  # care_management by default


def test_a_workspace_that_requires_log_in_acts_as_the_logged_in_user_with_their_role(with_model, tmp_path,
                                                                                      monkeypatch):
    from caretwin import Workspace
    from caretwin.cli import app
    from caretwin.governance.access import session_file
    from caretwin.governance.audit import trail_for
    from caretwin.governance.store import store_for
    from caretwin.governance.users import add_user

    ws, card = with_model
    monkeypatch.setenv("CARETWIN_SESSIONS", str(tmp_path / "sessions"))
    for name, role in (("dana", "executive"), ("cy", "care_coordinator")):
        add_user(store_for(ws), name, role, "long enough password")
    ws.close()
    with (ws.path / "caretwin.toml").open("a") as f:
        f.write("\n[access]\nrequire_login = true\n")
    cli = lambda *a, **kw: CliRunner().invoke(app, [str(x) for x in a], **kw)  # noqa: E731
    res = cli("review", "list", ws.path)
    assert res.exit_code == 2 and "requires log-in" in res.output
    assert cli("login", ws.path, "--user", "dana", "--password", "wrong password!").exit_code == 2
    assert cli("login", ws.path, "--user", "dana", input="long enough password\n").exit_code == 0
    with Workspace.open(ws.path) as again:
        assert session_file(again).stat().st_mode & 0o777 == 0o600
    res = cli("review", "list", ws.path, "--purpose", "planning")
    assert res.exit_code == 2 and "may not open the risk review queue" in res.output
    assert cli("login", ws.path, "--user", "cy", "--password", "long enough password").exit_code == 0
    assert cli("review", "list", ws.path).exit_code == 0
    res = cli("models", "approve", ws.path, card.name, card.version, "--purpose", "operations", "--by", "cy")
    assert res.exit_code == 2 and "may not approve models" in res.output
    assert "logged out" in cli("logout", ws.path).output
    assert cli("review", "list", ws.path).exit_code == 2
    with Workspace.open(ws.path) as again:
        trail = trail_for(again)
        events = [(e.subtype, e.agent, e.agent_role, e.outcome) for e in trail.entries()]
        listed = [e for e in trail.entries() if e.subtype == "review.list"][-1]
        assert trail.verify() == []
    import json
    import socket

    assert json.loads(listed.detail)["from"] == socket.gethostname()  # this machine, not "server"
    assert events[-7:] == [
        ("session.create", "dana", "unknown", "4"), ("session.create", "dana", "executive", "0"),
        ("review.read", "dana", "executive", "4"), ("session.create", "cy", "care_coordinator", "0"),
        ("review.list", "cy", "care_coordinator", "0"), ("models.approve", "cy", "care_coordinator", "4"),
        ("session.end", "cy", "care_coordinator", "0")]
