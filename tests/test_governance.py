"""Governance: the hash-chained audit trail catches every kind of tampering and names the entry; users and
sessions; the authorisation policy."""

from datetime import timedelta

import numpy as np

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from caretwin.cli import app
from caretwin.errors import CaretwinError
from caretwin.governance import users as U
from caretwin.governance.audit import AuditTrail
from caretwin.governance.policy import ACTION_WORDS, ACTIONS, PERSON_LEVEL, PURPOSES, ROLES, authorize
from caretwin.governance.store import connect, engine_for
from caretwin.governance.suppression import suppress_table


@pytest.fixture()
def trail(tmp_path, database_url):
    t = AuditTrail(connect(tmp_path, database_url), tmp_path, b"k" * 32)
    for i in range(1, 7):
        t.record(kind="read", action="R", subtype="review.show", agent="jo", role="care_coordinator",
                 purpose="care_management", entity_type="member", entity_id=f"p_{i:03d}")
    assert t.verify() == []
    return t


def sql(trail, *statements):
    with trail.engine.begin() as conn:
        for s in statements:
            conn.execute(sa.text(s))


def test_an_edited_entry_is_named(trail):
    sql(trail, "UPDATE audit_events SET entity_id = 'p_999' WHERE seq = 3")
    assert trail.verify() == ["entry 3 was edited: its contents no longer match its hash"]


def test_deleting_the_last_entry_is_caught_by_the_head_kept_apart(trail):
    sql(trail, "DELETE FROM audit_events WHERE seq = 6", "UPDATE audit_tip SET seq = 5")
    assert trail.verify() == ["entry 6 was removed from the end: the log ends at entry 5 but the head records entry 6"]


def test_a_deleted_entry_in_the_middle_is_named(trail):
    sql(trail, "DELETE FROM audit_events WHERE seq = 4")
    assert trail.verify() == ["entry 4 was deleted: entry 5 follows entry 3"]


def test_reordered_entries_are_named(trail):
    sql(trail, "UPDATE audit_events SET seq = 100 WHERE seq = 2", "UPDATE audit_events SET seq = 2 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 100")
    problems = trail.verify()
    assert "entry 2 is out of order: it belongs after entry 3" in problems


def test_an_inserted_entry_is_named(trail):
    # a forged entry slipped in after entry 2, the later ones renumbered to make room
    sql(trail, "UPDATE audit_events SET seq = seq + 100 WHERE seq > 2", "UPDATE audit_events SET seq = seq - 99 WHERE seq > 100",
        """INSERT INTO audit_events SELECT 3, recorded, type, subtype, action, outcome, purpose, 'mallory',
           agent_role, source, entity_type, entity_id, detail, hash, 'forged' FROM audit_events WHERE seq = 2""")
    problems = trail.verify()
    assert "entry 3 was edited: its contents no longer match its hash" in problems
    assert "entries 3 were inserted: entry 4 follows entry 2" in problems


def test_entries_added_behind_the_heads_back_and_an_altered_head_are_caught(trail):
    sql(trail, """INSERT INTO audit_events SELECT 7, recorded, type, subtype, action, outcome, purpose, agent,
                  agent_role, source, entity_type, entity_id, detail, hash, 'x' FROM audit_events WHERE seq = 6""")
    assert "entries 7 to 7 come after the recorded head: added outside caretwin" in trail.verify()
    head = trail.folder / "audit.head"
    head.write_text(head.read_text().replace('"seq": 6', '"seq": 7'))
    assert "the head record (audit.head) was altered" in trail.verify()


def test_a_rollback_or_wipe_with_its_head_is_caught_by_a_checkpoint_kept_elsewhere(trail):
    # the trail and its head alone cannot tell a trail cut back to entry 4 with entry 4's head restored, nor one
    # wiped with its head; a checkpoint the auditor kept of entry 6 can
    head = trail.folder / "audit.head"
    older = None
    for _ in range(2):
        older = older or head.read_text()
        trail.record(kind="read", action="R", subtype="review.show", agent="jo", role="care_coordinator",
                     purpose="care_management", entity_type="member", entity_id="p_x")
    kept = [trail.checkpoint()]
    assert kept[0]["seq"] == 8 and trail.verify(kept) == []
    sql(trail, "DELETE FROM audit_events WHERE seq > 6", "UPDATE audit_tip SET seq = 6")
    head.write_text(older)
    assert trail.verify() == []  # undetectable from inside
    assert trail.verify(kept) == [f"entry 8, which the checkpoint of {kept[0]['taken']} holds, is gone: the trail "
                                  "was rolled back or wiped"]
    sql(trail, "DELETE FROM audit_events", "UPDATE audit_tip SET seq = 0, hash = ''")
    head.unlink()
    assert trail.verify() == [] and len(trail.verify(kept)) == 1
    forged = [{**kept[0], "seq": 0, "hash": ""}]
    assert trail.verify(forged) == [f"the checkpoint of {kept[0]['taken']} is not this trail's, or was altered"]


def test_export_is_valid_fhir_r4_audit_events(trail, tmp_path):
    import json

    from fhir.resources.R4B.auditevent import AuditEvent

    assert trail.export(tmp_path / "audit.ndjson") == 6
    lines = (tmp_path / "audit.ndjson").read_text().splitlines()
    events = [AuditEvent.model_validate(json.loads(line)) for line in lines]
    assert events[0].action == "R" and events[0].purposeOfEvent[0].coding[0].code == "CAREMGT"
    assert events[2].entity[0].what.identifier.value == "p_003"


def test_users_log_in_with_argon2_hashed_passwords_and_sessions_expire(tmp_path, database_url):
    engine = connect(tmp_path, database_url)
    U.add_user(engine, "jo", "care_coordinator", "correct horse battery")
    with pytest.raises(CaretwinError, match="at least 12"):
        U.add_user(engine, "al", "analyst", "short")
    with pytest.raises(CaretwinError, match="role must be one of"):
        U.add_user(engine, "al", "superuser", "long enough password")
    stored = engine.connect().execute(sa.text("SELECT password_hash FROM users")).scalar()
    assert stored.startswith("$argon2id$") and "horse" not in stored
    token, user = U.log_in(engine, "jo", "correct horse battery")
    assert U.user_for(engine, token) == user and user.role == "care_coordinator"
    assert token not in str(engine.connect().execute(sa.text("SELECT * FROM sessions")).fetchall())
    old, _ = U.log_in(engine, "jo", "correct horse battery", ttl=timedelta(seconds=-1))
    assert U.user_for(engine, old) is None  # expired
    U.log_out(engine, token)
    assert U.user_for(engine, token) is None
    with pytest.raises(CaretwinError, match="log-in failed"):
        U.log_in(engine, "nobody", "correct horse battery")


def test_repeated_wrong_passwords_lock_the_account_and_disabling_ends_sessions(tmp_path, database_url):
    engine = connect(tmp_path, database_url)
    U.add_user(engine, "jo", "analyst", "correct horse battery")
    token, _ = U.log_in(engine, "jo", "correct horse battery")
    for _ in range(U.MAX_FAILURES):
        with pytest.raises(CaretwinError):
            U.log_in(engine, "jo", "wrong password guess")
    with pytest.raises(CaretwinError, match="log-in failed"):  # locked, even with the right password
        U.log_in(engine, "jo", "correct horse battery")
    U.disable_user(engine, "jo")
    assert U.user_for(engine, token) is None and not U.list_users(engine)[0].active


def test_the_policy_keeps_person_level_data_to_care_coordinators_and_the_trail_to_auditors():
    assert not authorize("executive", "person.read", "planning").allowed
    assert not authorize("analyst", "review.read", "planning").allowed
    assert authorize("care_coordinator", "review.read", "care_management").allowed
    refused = authorize("care_coordinator", "review.read", "research")
    assert not refused.allowed and "care_management" in refused.reason  # right role, wrong purpose
    assert [r for r in ROLES if authorize(r, "audit.read", "audit").allowed] == ["auditor"]
    assert [r for r in ROLES if authorize(r, "users.manage", "administration").allowed] == ["admin"]
    assert set(PURPOSES) == set(ROLES) and PERSON_LEVEL <= set(ROLES)
    assert all(roles <= set(ROLES) for roles in ACTIONS.values())
    assert set(ACTION_WORDS) == set(ACTIONS)  # every refusal can say what was refused, in words


def test_users_and_audit_commands(workspace, tmp_path, database_url):
    run, ws, db = CliRunner().invoke, str(workspace.path), ["--database", database_url]
    res = run(app, ["users", "add", ws, "ana", "--role", "analyst", *db], env={"CARETWIN_PASSWORD": "a long passphrase"})
    assert res.exit_code == 0 and "added ana (analyst)" in res.output
    assert "ana" in run(app, ["users", "list", ws, *db]).output
    assert run(app, ["users", "disable", ws, "ana", *db]).exit_code == 0
    ok = run(app, ["audit", "verify", ws, *db])
    assert ok.exit_code == 0 and "intact: 2 entries" in ok.output
    assert "2 audit events" in run(app, ["audit", "export", ws, str(tmp_path / "a.ndjson"), *db]).output
    kept = tmp_path / "auditor" / "checkpoints.ndjson"
    kept.parent.mkdir()
    assert "checkpoint of entry 3 appended" in run(app, ["audit", "checkpoint", ws, str(kept), *db]).output
    assert run(app, ["audit", "verify", ws, "--checkpoints", str(kept), *db]).exit_code == 0
    with engine_for(workspace.path, database_url).begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET agent = 'someone else' WHERE seq = 1"))
    bad = run(app, ["audit", "verify", ws, *db])
    assert bad.exit_code == 1 and "entry 1 was edited" in bad.output


# ------------------------------------------------------------------ small cells in two-way tables
def recoverable(counts, hide, limit=10):
    """What an adversary learns from row and column totals: the sum hidden in each line."""
    c = np.asarray(counts, float)
    sums = [c[i][hide[i]].sum() for i in range(c.shape[0])] + [c[:, j][hide[:, j]].sum() for j in range(c.shape[1])]
    singles = [c[i][hide[i]][0] for i in range(c.shape[0]) if hide[i].sum() == 1] + \
              [c[:, j][hide[:, j]][0] for j in range(c.shape[1]) if hide[:, j].sum() == 1]
    return [s for s in sums if 1 <= s <= limit] + [s for s in singles if s >= 1]


def test_a_row_with_one_small_cell_hides_a_partner_in_its_row_and_column():
    counts = np.array([[120, 4, 300], [80, 95, 210], [60, 70, 40]])
    hide = suppress_table(counts)
    assert hide[0, 1] and hide.sum() >= 4  # the 4, a partner in its row, one in its column, and their crossing
    assert recoverable(counts, hide) == []  # no count 1-10 follows from the totals or percentages


def test_two_small_cells_in_a_line_are_not_left_to_add_up_to_a_small_count():
    counts = np.array([[3, 4, 200, 150], [90, 80, 70, 60]])
    hide = suppress_table(counts)
    assert recoverable(counts, hide) == [] and hide[0, :2].all()


def test_zeros_may_show_and_a_table_without_small_cells_is_untouched():
    counts = np.array([[0, 50], [40, 30]])
    assert not suppress_table(counts).any()
