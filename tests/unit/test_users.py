"""Users, roles, passwords and the audit trail (spec §7.3), through the command line."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from app.cli import main
from app.store import audit, users
from app.store.db import open_engine


def run(home, *argv, stdin: str | None = None, monkeypatch=None, capsys=None):
    if stdin is not None:
        import io
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--home", str(home), *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_add_list_passwd_role_remove(home, monkeypatch, capsys):
    code, out, err = run(home, "users", "add", "alice", "--role", "admin", "--full-name", "Alice Admin",
                         "--password-stdin", stdin="correct horse\n", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "Administrator" in out
    code, _, err = run(home, "users", "add", "rob", "--role", "reading", "--password-stdin",
                       stdin="radiology 1\n", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    code, out, _ = run(home, "users", "list", "--json", capsys=capsys)
    listed = {u["name"]: u for u in json.loads(out)}
    assert listed["alice"]["role"] == "admin" and listed["alice"]["full_name"] == "Alice Admin"
    assert listed["rob"]["role"] == "reading" and listed["rob"]["last_login"] is None

    engine = open_engine(home)
    assert users.login(engine, "rob", "radiology 1").role == "reading"
    with pytest.raises(users.UserError, match="Wrong user name or password"):
        users.login(engine, "rob", "radiology 2")

    code, _, err = run(home, "users", "passwd", "rob", "--password-stdin", stdin="new secret 2\n",
                       monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    with pytest.raises(users.UserError):
        users.login(engine, "rob", "radiology 1")
    assert users.login(engine, "rob", "new secret 2").name == "rob"

    code, _, err = run(home, "users", "role", "rob", "technologist", capsys=capsys)
    assert code == 0, err
    assert users.get_user(engine, "rob").may("delete") and not users.get_user(engine, "rob").may("settings")

    code, _, err = run(home, "users", "remove", "rob", capsys=capsys)
    assert code == 0, err
    assert [u.name for u in users.list_users(engine)] == ["alice"]
    engine.dispose()


def test_passwords_are_never_stored_in_clear(home, monkeypatch, capsys):
    run(home, "users", "add", "alice", "--role", "admin", "--password-stdin", stdin="correct horse\n",
        monkeypatch=monkeypatch, capsys=capsys)
    raw = (home / "lightbox.db").read_bytes() + (home / "lightbox.db-wal").read_bytes() \
        if (home / "lightbox.db-wal").exists() else (home / "lightbox.db").read_bytes()
    assert b"correct horse" not in raw
    with sqlite3.connect(home / "lightbox.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM app_user WHERE name='alice'").fetchone()
    assert stored.startswith("scrypt$131072$8$1$")
    assert users.verify_password("correct horse", stored) and not users.verify_password("correct horsE", stored)
    # two users with one password get different hashes (random salt)
    assert users.hash_password("correct horse") != users.hash_password("correct horse")


@pytest.mark.parametrize("argv, stdin, message", [
    (("users", "add", "bob", "--role", "reading", "--password-stdin"), "short\n", "at least 8"),
    (("users", "add", "bob", "--role", "reading", "--password-stdin"), "bob\n", "at least 8"),
    (("users", "add", "bob bob", "--role", "reading", "--password-stdin"), "long enough\n", "no spaces"),
    (("users", "add", "bob", "--role", "reading", "--password-stdin"), "\n", "no password"),
    (("users", "passwd", "nobody", "--password-stdin"), "long enough\n", "no user 'nobody'"),
    (("users", "remove", "nobody"), None, "no user 'nobody'"),
])
def test_refusals_say_what_to_do(home, monkeypatch, capsys, argv, stdin, message):
    code, _, err = run(home, *argv, stdin=stdin, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2
    assert message in err


def test_the_last_administrator_stays(home, monkeypatch, capsys):
    for name, role in (("alice", "admin"), ("rob", "reading")):
        run(home, "users", "add", name, "--role", role, "--password-stdin", stdin="long enough\n",
            monkeypatch=monkeypatch, capsys=capsys)
    code, _, err = run(home, "users", "remove", "alice", capsys=capsys)
    assert code == 2 and "last administrator" in err
    code, _, err = run(home, "users", "role", "alice", "reading", capsys=capsys)
    assert code == 2 and "At least one administrator" in err
    engine = open_engine(home)
    assert users.get_user(engine, "alice").role == "admin"
    engine.dispose()


def test_wrong_passwords_lock_the_account_for_a_while(home, monkeypatch, capsys):
    run(home, "users", "add", "rob", "--role", "reading", "--password-stdin", stdin="radiology 1\n",
        monkeypatch=monkeypatch, capsys=capsys)
    engine = open_engine(home)
    now = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
    for _ in range(users.MAX_FAILURES):
        with pytest.raises(users.UserError, match="Wrong"):
            users.login(engine, "rob", "guess", now=now)
    with pytest.raises(users.UserError, match="locked for 5 more minute"):
        users.login(engine, "rob", "radiology 1", now=now + timedelta(seconds=30))
    assert users.login(engine, "rob", "radiology 1", now=now + users.LOCKOUT + timedelta(seconds=1)).name == "rob"
    engine.dispose()


def test_audit_trail_records_who_did_what(home, monkeypatch, capsys):
    run(home, "users", "add", "alice", "--role", "admin", "--password-stdin", stdin="correct horse\n",
        monkeypatch=monkeypatch, capsys=capsys)
    run(home, "config", "set", "node.max_associations", "20", capsys=capsys)
    engine = open_engine(home)
    users.login(engine, "alice", "correct horse")
    with pytest.raises(users.UserError):
        users.login(engine, "mallory", "whatever1")
    engine.dispose()

    code, out, _ = run(home, "audit", "--json", capsys=capsys)
    assert code == 0
    rows = json.loads(out)
    actions = [(r["actor"], r["action"], r["outcome"]) for r in rows]
    os_actor = users.os_actor()
    assert (os_actor, "user-add", "success") in actions
    assert (os_actor, "settings", "success") in actions
    assert ("alice", "login", "success") in actions
    assert ("mallory", "login", "failure") in actions
    assert any(r["detail"] == "node.max_associations = 20" for r in rows)
    # newest first, and filters work
    assert rows[0]["action"] == "login" and rows[0]["actor"] == "mallory"
    code, out, _ = run(home, "audit", "--user", "alice", "--json", capsys=capsys)
    assert [r["action"] for r in json.loads(out)] == ["login"]
    code, out, _ = run(home, "audit", "--since", "2999-01-01", "--json", capsys=capsys)
    assert json.loads(out) == []


def test_audit_search_by_patient(tmp_path):
    engine = open_engine(tmp_path)
    audit.log(engine, "rob", "export", "CD for the referrer", patient_id="PAT-7", patient_name="Doe^Jane")
    audit.log(engine, "rob", "print", "film", patient_id="PAT-8", patient_name="Roe^Richard")
    assert [r["action"] for r in audit.search(engine, patient="Doe")] == ["export"]
    assert [r["action"] for r in audit.search(engine, patient="PAT-8")] == ["print"]
    engine.dispose()
