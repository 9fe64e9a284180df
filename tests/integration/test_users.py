"""Users, tokens and station grades (issue 13, "What to build" 1 and 2), against PostgreSQL.

Issue 13: "``ecosense users add NAME --role ROLE [--password-stdin]`` (reads one line, without
its newline; prints a generated password on the last line otherwise), ``ecosense users
list``, ``ecosense users role NAME ROLE``, ``ecosense users disable NAME``. Passwords hashed with
a maintained library (Argon2). ``POST /api/v1/auth/token`` … answers ``{"access_token",
"token_type": "bearer", "expires_in"}``; tokens expire; failures are throttled per user and
per address (429 with ``Retry-After``)."
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api import auth
from api.ratelimit import RateLimits
from ecosense.app import create_app
from ecosense.cli import main
from sensors.stations import Station
from store import audit, users
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "break-glass-secret"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(list(args))
    out = capsys.readouterr()
    # stderr's line naming the data dir in use (issue 14) left out: the result stays last
    err = [x for x in out.err.splitlines() if not x.startswith("ecosense: data dir ")]
    return code, out.out.splitlines() + err


@pytest.fixture
def ctx(store: PostgresStore) -> ServiceContext:
    return ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    # the failure throttling is tested here: the sign-in request rate in front of it (10 a
    # minute by default, test_rate_limits.py) raised, explicitly
    with TestClient(create_app(ctx, RateLimits(auth="1000/minute"))) as c:
        yield c


def sign_in(client: TestClient, name: str, password: str) -> tuple[int, dict[str, object]]:
    r = client.post("/api/v1/auth/token", data={"username": name, "password": password})
    return r.status_code, r.json() | {"_headers": dict(r.headers)}


def test_users_commands(
    cli_env: Path,
    store: PostgresStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, lines = run(capsys, "users", "add", "alice", "--role", "analyst")
    assert code == 0
    generated = lines[-1]
    assert len(generated) >= 20 and " " not in generated
    # --password-stdin: one line, without its newline
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\nignored\n"))
    code, lines = run(capsys, "users", "add", "bob", "--role", "viewer", "--password-stdin")
    assert code == 0 and "s3cret" not in "\n".join(lines)
    with store.connection() as conn:
        found = users.credentials(conn, "bob")
        assert found is not None and found[1].startswith("$argon2id$")
        assert found[0].role.label == "viewer"
    code, lines = run(capsys, "users", "add", "bob", "--role", "viewer")
    assert code == 1 and "exists" in lines[-1]
    code, lines = run(capsys, "users", "role", "bob", "reviewer")
    assert code == 0
    code, lines = run(capsys, "users", "disable", "alice")
    assert code == 0
    code, lines = run(capsys, "users", "list")
    assert code == 0 and lines == ["alice\tanalyst\tdisabled", "bob\treviewer\tactive"]
    code, lines = run(capsys, "users", "role", "nobody", "admin")
    assert code == 1 and "no user nobody" in lines[-1]
    with pytest.raises(SystemExit):
        main(["users", "add", "eve", "--role", "root"])
    capsys.readouterr()


def test_users_enable_and_new_password(
    cli_env: Path,
    store: PostgresStore,
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found trying issue 13 as a new user: "a disabled user cannot be re-enabled, and no
    password can be reset" (``users role`` on a disabled user said nothing of it)."""
    monkeypatch.setattr("sys.stdin", io.StringIO("first-pass\n"))
    assert run(capsys, "users", "add", "vera", "--role", "viewer", "--password-stdin")[0] == 0
    status, body = sign_in(client, "vera", "first-pass")
    assert status == 200
    old_token = {"Authorization": f"Bearer {body['access_token']}"}
    assert run(capsys, "users", "disable", "vera")[0] == 0
    code, lines = run(capsys, "users", "role", "vera", "analyst")
    assert code == 0 and "disabled" in lines[-1] and "users enable" in lines[-1]
    assert sign_in(client, "vera", "first-pass")[0] == 401
    code, lines = run(capsys, "users", "enable", "vera")
    assert code == 0 and "enabled" in lines[-1]
    assert sign_in(client, "vera", "first-pass")[0] == 200
    assert client.get("/api/v1/alerts", headers=old_token).status_code == 401  # stays revoked
    status, body = sign_in(client, "vera", "first-pass")
    live = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/v1/alerts", headers=live).status_code == 200
    # a new password: the old one and its tokens stop working at once
    code, lines = run(capsys, "users", "password", "vera")
    assert code == 0
    generated = lines[-1]
    assert client.get("/api/v1/alerts", headers=live).status_code == 401
    assert sign_in(client, "vera", "first-pass")[0] == 401
    assert sign_in(client, "vera", generated)[0] == 200
    monkeypatch.setattr("sys.stdin", io.StringIO("third pass\n"))
    assert run(capsys, "users", "password", "vera", "--password-stdin")[0] == 0
    assert sign_in(client, "vera", "third pass")[0] == 200
    code, lines = run(capsys, "users", "enable", "nobody")
    assert code == 1 and "no user nobody" in lines[-1]
    with store.connection() as conn:
        actions = {e.action for e in audit.read(conn, limit=1000)}
    assert {"user.enable", "user.password"} <= actions


def test_classify_station(
    cli_env: Path, store: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.upsert_stations([Station("P1", "Plant", "cems", 116.4, 39.9)])
    code, lines = run(capsys, "classify", "station", "P1", "--class", "restricted")
    assert code == 0 and lines[-1] == "station P1 (cems): restricted"
    code, lines = run(capsys, "classify", "station", "P1", "--class", "default")
    assert code == 0 and lines[-1].startswith("station P1 (cems): sensitive")
    code, lines = run(capsys, "classify", "station", "NOPE", "--class", "public")
    assert code == 1 and "no station NOPE" in lines[-1]


def _add(store: PostgresStore, name: str, role: str, password: str) -> None:
    from access import Role
    from access.passwords import hash_password

    with store.connection() as conn:
        users.add_user(conn, name, Role.parse(role), hash_password(password))


def test_token_sign_in_and_use(store: PostgresStore, client: TestClient) -> None:
    _add(store, "vera", "viewer", "pw-vera")
    status, body = sign_in(client, "vera", "pw-vera")
    assert status == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 8 * 3600
    token = str(body["access_token"])
    headers = {"Authorization": f"Bearer {token}"}
    # a viewer reads alerts (internal), not the webhook events (sensitive)
    assert client.get("/api/v1/alerts", headers=headers).status_code == 200
    assert client.get("/api/v1/alerts/webhooks", headers=headers).status_code == 403
    # the server keeps the token's hash only
    with store.connection() as conn:
        assert users.user_for_session(conn, hash_secret(token)) is not None
        rows = conn.execute("SELECT token_hash FROM sessions").fetchall()
    assert rows == [(hash_secret(token),)]
    # wrong password, unknown user: 401
    assert sign_in(client, "vera", "nope")[0] == 401
    assert sign_in(client, "nobody", "pw-vera")[0] == 401
    # disabled: no sign-in, and the token stops working at once
    with store.connection() as conn:
        users.disable(conn, "vera")
    assert client.get("/api/v1/alerts", headers=headers).status_code == 401
    assert sign_in(client, "vera", "pw-vera")[0] == 401


def test_tokens_expire(store: PostgresStore, ctx: ServiceContext) -> None:
    _add(store, "ann", "analyst", "pw-ann")
    short = ServiceContext(
        store, ctx.admin_token_hash, ctx.timezone, token_ttl=timedelta(seconds=1)
    )
    with TestClient(create_app(short)) as client:
        status, body = sign_in(client, "ann", "pw-ann")
        assert status == 200 and body["expires_in"] == 1
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert client.get("/api/v1/alerts", headers=headers).status_code == 200
        time.sleep(1.2)
        assert client.get("/api/v1/alerts", headers=headers).status_code == 401


def test_failed_sign_ins_are_throttled_per_user(store: PostgresStore, client: TestClient) -> None:
    _add(store, "olga", "operator", "right")
    for _ in range(auth.USER_FAILURES):
        assert sign_in(client, "olga", "wrong")[0] == 401
    status, body = sign_in(client, "olga", "right")  # even the right password now waits
    assert status == 429
    headers = body["_headers"]
    assert isinstance(headers, dict)
    retry = int(headers["retry-after"])
    assert 0 < retry <= auth.WINDOW.total_seconds()
    # the window passed (failures aged in SQL): the right password works again
    with store.connection() as conn:
        conn.execute("UPDATE login_failures SET at = at - interval '16 minutes'")
    assert sign_in(client, "olga", "right")[0] == 200


def test_failed_sign_ins_are_throttled_per_address(
    store: PostgresStore, client: TestClient
) -> None:
    _add(store, "rita", "reviewer", "right")
    for i in range(auth.ADDRESS_FAILURES):
        assert sign_in(client, f"guess{i}", "wrong")[0] == 401
    assert sign_in(client, "rita", "right")[0] == 429  # same address, another user


@pytest.mark.parametrize(
    "form",
    [
        {"username": "a\x00b", "password": "x"},
        {"username": "x" * 500, "password": "x"},
        {"username": "vera", "password": "p" * 5000},
        {"username": "vera", "password": ""},
    ],
    ids=["nul", "long-name", "long-password", "empty-password"],
)
def test_unusable_sign_in_forms_are_401_not_500(client: TestClient, form: dict[str, str]) -> None:
    r = client.post("/api/v1/auth/token", data=form)
    assert r.status_code in (401, 422), r.text
