"""Users, roles and passwords (spec §7.3: every user logs in with an own password; service
technicians have a separate one for configuration and maintenance).

Passwords are stored as scrypt hashes (RFC 7914, in Python's standard library) with a
random salt per password and OWASP's minimum cost (N=2^17, r=8, p=1: 128 MiB, a few tenths
of a second per attempt), never in clear. Five wrong passwords in a row lock the account
for five minutes.

The command line acts with the rights of the operating-system user who owns the data
home: it needs no password, and its actions are audited as ``os:<login>``.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from app.store import audit
from app.store.schema import app_user

# Role -> what it may do. The GUI asks `allowed(role, capability)`; nothing else decides.
ROLES: dict[str, frozenset[str]] = {
    "reading": frozenset({"browse", "view", "send", "export", "print", "import", "query"}),
    "technologist": frozenset({"browse", "view", "send", "export", "print", "import", "query",
                               "worklist", "correct", "delete"}),
    "admin": frozenset({"browse", "view", "send", "export", "print", "import", "query",
                        "worklist", "correct", "delete", "settings", "users", "audit"}),
    "service": frozenset({"browse", "view", "send", "export", "print", "import", "query",
                          "worklist", "correct", "delete", "settings", "users", "audit", "logs"}),
}
ROLE_NAMES = {"reading": "Radiologist (reading)", "technologist": "Technologist",
              "admin": "Administrator", "service": "Service technician"}

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=5)
MIN_PASSWORD = 8
_SCRYPT = {"n": 2 ** 17, "r": 8, "p": 1}
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
# checked when the user name is unknown: well-formed, with the real cost, matching nothing
_DUMMY_HASH = "scrypt$131072$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


class UserError(Exception):
    """A refused user operation, with a message for the user."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    full_name: str | None
    created_at: datetime | None
    last_login: datetime | None

    def may(self, capability: str) -> bool:
        return allowed(self.role, capability)


def allowed(role: str, capability: str) -> bool:
    return capability in ROLES.get(role, frozenset())


def os_actor() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name (containers): still an OS user
        return f"os:uid{os.getuid()}"


# -- password hashes ------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, maxmem=256 * 2**20, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), maxmem=256 * 2**20, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def check_password_rules(name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"The password must have at least {MIN_PASSWORD} characters.")
    if password.lower() == name.lower():
        raise UserError("The password must not be the user name.")


# -- the user table -------------------------------------------------------------------------
def _row_to_user(row) -> User:
    return User(row.name, row.role, row.full_name, row.created_at, row.last_login)


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        return [_row_to_user(r) for r in conn.execute(select(app_user).order_by(app_user.c.name))]


def get_user(engine: Engine, name: str) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(select(app_user).where(app_user.c.name == name)).first()
    return _row_to_user(row) if row else None


def has_users(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(app_user)).scalar())


def _admins(conn) -> int:
    return conn.execute(select(func.count()).select_from(app_user)
                        .where(app_user.c.role.in_(("admin", "service")))).scalar()


def add_user(engine: Engine, name: str, role: str, password: str, *, full_name: str | None = None,
             actor: str) -> User:
    if not _NAME.match(name):
        raise UserError("A user name has 1 to 64 letters, digits or . _ @ - (no spaces).")
    if role not in ROLES:
        raise UserError(f"Unknown role '{role}'; choose one of {', '.join(ROLES)}.")
    check_password_rules(name, password)
    with engine.begin() as conn:
        if conn.execute(select(app_user.c.name).where(func.lower(app_user.c.name) == name.lower())).first():
            raise UserError(f"There is already a user '{name}'.")
        conn.execute(insert(app_user).values(name=name, role=role, full_name=full_name or None,
                                             password_hash=hash_password(password), failed_logins=0))
        audit.record(conn, actor, "user-add", f"{name} ({role})")
    return get_user(engine, name)


def set_password(engine: Engine, name: str, password: str, *, actor: str) -> None:
    check_password_rules(name, password)
    with engine.begin() as conn:
        done = conn.execute(update(app_user).where(app_user.c.name == name)
                            .values(password_hash=hash_password(password), failed_logins=0, locked_until=None))
        if not done.rowcount:
            raise UserError(f"There is no user '{name}'.")
        audit.record(conn, actor, "user-password", name)


def set_role(engine: Engine, name: str, role: str, *, actor: str) -> None:
    if role not in ROLES:
        raise UserError(f"Unknown role '{role}'; choose one of {', '.join(ROLES)}.")
    with engine.begin() as conn:
        done = conn.execute(update(app_user).where(app_user.c.name == name).values(role=role))
        if not done.rowcount:
            raise UserError(f"There is no user '{name}'.")
        if not _admins(conn):
            raise UserError("At least one administrator or service account must remain.")
        audit.record(conn, actor, "user-role", f"{name} -> {role}")


def remove_user(engine: Engine, name: str, *, actor: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(delete(app_user).where(app_user.c.name == name))
        if not done.rowcount:
            raise UserError(f"There is no user '{name}'.")
        if not _admins(conn) and conn.execute(select(func.count()).select_from(app_user)).scalar():
            raise UserError("This is the last administrator or service account; add another one first.")
        audit.record(conn, actor, "user-remove", name)


def login(engine: Engine, name: str, password: str, *, now: datetime | None = None) -> User:
    """The user, if the password is right and the account not locked; UserError otherwise.
    Every attempt is audited (and a failure's bookkeeping committed before it is reported)."""
    now = now or datetime.now(timezone.utc)
    with engine.begin() as conn:
        refusal = _check_login(conn, name, password, now)
    if refusal:
        raise UserError(refusal)
    return get_user(engine, name)


def _check_login(conn, name: str, password: str, now: datetime) -> str | None:
    row = conn.execute(select(app_user).where(app_user.c.name == name)).first()
    if row is None:
        # same work as a real check, so that timing does not tell which names exist
        verify_password(password, _DUMMY_HASH)
        audit.record(conn, name or "?", "login", "unknown user", outcome="failure")
        return "Wrong user name or password."
    locked = row.locked_until
    if locked is not None and locked.tzinfo is None:
        locked = locked.replace(tzinfo=timezone.utc)
    if locked is not None and locked > now:
        audit.record(conn, name, "login", "account locked", outcome="failure")
        minutes = max(1, int((locked - now).total_seconds() // 60) + 1)
        return (f"Too many wrong passwords: the account is locked for {minutes} more minute(s), "
                "or until an administrator sets a new password.")
    if not verify_password(password, row.password_hash):
        failures = (row.failed_logins or 0) + 1
        values = {"failed_logins": failures}
        if failures >= MAX_FAILURES:
            values.update(failed_logins=0, locked_until=now + LOCKOUT)
        conn.execute(update(app_user).where(app_user.c.name == name).values(**values))
        audit.record(conn, name, "login", f"wrong password ({failures})", outcome="failure")
        return "Wrong user name or password."
    conn.execute(update(app_user).where(app_user.c.name == name)
                 .values(failed_logins=0, locked_until=None, last_login=now))
    audit.record(conn, name, "login", row.role)
    return None
