"""The production compose file, checked with the real tools (issue 15, "What to build" 3).

- ``docker-compose config`` (Debian's docker-compose 1.29) validates ``docker/compose.yaml``
  with the required variables set, refuses it without them, and its parsed output is the
  topology: which services, that only the proxy publishes ports (HTTPS, HJ 212, MQTT over
  TLS), the roles of each EcoSense instance, the secrets (files, never values in the
  environment), health checks and restart policies.
- ``nginx -t`` (Debian's nginx with its stream module) accepts ``docker/nginx/nginx.conf``.
  The upstreams name compose services, which nginx resolves when it loads the file; no
  container engine runs here, so the test checks a generated copy in which only those host
  names (mapped to 127.0.0.1), the certificate, log and pid paths are replaced, and the
  Debian module is loaded (the official image has it built in). The copy is then run for real
  on free ports, proving the HTTPS API balanced over two gateways, the dashboard's WebSocket
  upgrade and the HJ 212 port balanced with a PROXY line.
- The Dask scheduler's and workers' compose commands start here, their health checks pass
  and the workers register under their names; the broker's and the proxy's health checks
  pass against the running broker and nginx.
- Mosquitto (ECOSENSE_TEST_MOSQUITTO) runs ``docker/mosquitto/mosquitto.conf`` and its ACL
  file with only paths and ports changed: without TLS, with a wrong password or anonymous a
  device is refused; a device's user is refused on the internal listener; with TLS and its
  password it publishes to its station's topics only and reads its own results only.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from ecosense.config import _KEYS
from tests.conftest import require_service
from tests.integration.test_tls import self_signed

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
NGINX_CONF = ROOT / "docker" / "nginx" / "nginx.conf"
MOSQUITTO_CONF = ROOT / "docker" / "mosquitto" / "mosquitto.conf"
MOSQUITTO_ACL = ROOT / "docker" / "mosquitto" / "acl"
DOCKER_COMPOSE = os.environ.get("ECOSENSE_TEST_DOCKER_COMPOSE", "/usr/bin/docker-compose")
NGINX = os.environ.get("ECOSENSE_TEST_NGINX", "/usr/sbin/nginx")
MOSQUITTO = os.environ.get("ECOSENSE_TEST_MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
#: Debian's nginx has the stream module as a dynamic module; the official image, built in
DEBIAN_STREAM = Path("/usr/lib/nginx/modules/ngx_stream_module.so")

ECOSENSE_SERVICES = {"gateway-1", "gateway-2", "jobs-1", "jobs-2", "dashboard"}
DASK_SERVICES = {"dask-scheduler", "dask-worker-1", "dask-worker-2"}
SERVICES = ECOSENSE_SERVICES | DASK_SERVICES | {"timescaledb", "mosquitto", "proxy"}
SECRET_FILES = (
    "db_password",
    "database_url",
    "admin_token",
    "mqtt_url",
    "mqtt_passwd",
    "mqtt_internal_passwd",
    "tls.crt",
    "tls.key",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------- docker-compose
def compose(*args: str, secrets: Path | None) -> subprocess.CompletedProcess[str]:
    """``docker-compose -f docker/compose.yaml ARGS`` with ``ECOSENSE_SECRETS`` set (or
    removed), in a clean environment."""
    require_service("docker-compose", Path(DOCKER_COMPOSE).exists())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECOSENSE_", "COMPOSE_"))}
    if secrets is not None:
        env["ECOSENSE_SECRETS"] = str(secrets)
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The parsed ``docker-compose config`` of the file (secret files present, empty)."""
    secrets = tmp_path_factory.mktemp("secrets")
    for name in SECRET_FILES:
        (secrets / name).write_text("x\n")
    quiet = compose("config", "-q", secrets=secrets)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == ""
    out = compose("config", secrets=secrets)
    assert out.returncode == 0, out.stderr
    parsed: dict[str, Any] = yaml.safe_load(out.stdout)
    return parsed


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's volumes, target → source (``config`` writes them short or long)."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v["source"], v["target"]
        out[target] = source
    return out


def test_the_secrets_folder_is_required() -> None:
    out = compose("config", "-q", secrets=None)
    assert out.returncode != 0
    assert "set ECOSENSE_SECRETS" in out.stderr


def test_the_services_and_only_the_proxy_publishes(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == SERVICES
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"proxy"}
    ports = {int(p["published"]): int(p["target"]) for p in services["proxy"]["ports"]}
    assert ports == {443: 443, 80: 80, 9212: 9212, 8883: 8883}  # HTTPS, redirect, HJ 212, MQTT
    for name, s in services.items():
        assert "network_mode" not in s, name
        assert set(s["networks"]) == {"backend"}, name
    assert services["timescaledb"]["image"].endswith("-pg15")
    assert "timescaledb-data" in config["volumes"]
    assert mounts(services["timescaledb"]) == {"/var/lib/postgresql/data": "timescaledb-data"}


def _roles(service: dict[str, Any]) -> str:
    command = service["command"]
    assert command[0] == "up"
    return str(command[command.index("--roles") + 1])


def test_the_roles_of_each_instance(config: dict[str, Any]) -> None:
    services = config["services"]
    assert {name: _roles(services[name]) for name in ECOSENSE_SERVICES} == {
        "gateway-1": "gateway",
        "gateway-2": "gateway",
        "jobs-1": "jobs",
        "jobs-2": "jobs",
        "dashboard": "dashboard",
    }
    for name in ("jobs-1", "jobs-2"):
        env = services[name]["environment"]
        assert env["ECOSENSE_DASK_SCHEDULER"] == "tcp://dask-scheduler:8786"
    scheduler = services["dask-scheduler"]
    assert scheduler["entrypoint"] == ["dask"] and scheduler["command"][:3] == [
        "scheduler",
        "--port",
        "8786",
    ]
    for name in ("dask-worker-1", "dask-worker-2"):
        worker = services[name]
        assert worker["entrypoint"] == ["dask"]
        assert worker["command"][:2] == ["worker", "tcp://dask-scheduler:8786"]
        assert worker["command"][worker["command"].index("--name") + 1] == name
    # every EcoSense instance and Dask process runs the one EcoSense image
    images = {services[n]["image"] for n in ECOSENSE_SERVICES | DASK_SERVICES}
    assert images == {"ecosense:latest"}
    for name in ECOSENSE_SERVICES:
        assert "--host" in services[name]["command"] and "0.0.0.0" in services[name]["command"]
    # each instance its own data dir (spool, logs): a volume of its own
    data = {n: mounts(services[n]) for n in ECOSENSE_SERVICES}
    assert all(set(m) == {"/var/lib/ecosense"} for m in data.values()), data
    sources = [m["/var/lib/ecosense"] for m in data.values()]
    assert len(set(sources)) == len(sources) and set(sources) <= set(config["volumes"])


def test_secrets_are_files_and_every_setting_exists(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(config["secrets"]) == {
        "db_password",
        "database_url",
        "admin_token",
        "mqtt_url",
        "mqtt_passwd",
        "mqtt_internal_passwd",
        "tls_cert",
        "tls_key",
    }
    for name, s in services.items():
        env = s.get("environment") or {}
        mounted = {x["source"] for x in s.get("secrets", [])}
        for key, value in env.items():
            if key.startswith("ECOSENSE_"):
                setting = key.removeprefix("ECOSENSE_").removesuffix("_FILE").lower()
                assert setting in _KEYS, f"{name}: {key} names no setting of ecosense/config.py"
            if key.endswith("_FILE"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in mounted, f"{name}: {key} reads a secret it does not mount"
            # no secret value in the environment, only its file
            assert key not in (
                "ECOSENSE_DATABASE_URL",
                "ECOSENSE_ADMIN_TOKEN",
                "ECOSENSE_MQTT_URL",
                "POSTGRES_PASSWORD",
            ), name
            assert "postgresql://" not in str(value) and "mqtt://" not in str(value), name
    for name in ECOSENSE_SERVICES:
        env = services[name]["environment"]
        assert env["ECOSENSE_DATABASE_URL_FILE"] == "/run/secrets/database_url"
        assert env["ECOSENSE_ADMIN_TOKEN_FILE"] == "/run/secrets/admin_token"
    # both gateways subscribe to MQTT, each with its own client id kept in its own data volume,
    # in one shared subscription (ingest/mqtt.py)
    subscribers = {
        n for n in ECOSENSE_SERVICES if "ECOSENSE_MQTT_URL_FILE" in services[n]["environment"]
    }
    assert subscribers == {"gateway-1", "gateway-2"}
    for name in subscribers:
        assert services[name]["environment"]["ECOSENSE_MQTT_URL_FILE"] == "/run/secrets/mqtt_url"
        assert "mqtt_url" in {x["source"] for x in services[name]["secrets"]}
    volumes = {n: str(services[n]["volumes"][0]).split(":")[0] for n in subscribers}
    assert len(set(volumes.values())) == 2, volumes  # two data dirs: two client ids
    db = services["timescaledb"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert {x["source"] for x in services["mosquitto"]["secrets"]} == {
        "mqtt_passwd",
        "mqtt_internal_passwd",
        "tls_cert",
        "tls_key",
    }
    assert {x["source"] for x in services["proxy"]["secrets"]} == {"tls_cert", "tls_key"}
    # every secret file is one docs/deploy.md tells the operator to make
    section = (ROOT / "docs" / "deploy.md").read_text().split("## Secrets")[1].split("\n## ")[0]
    for secret in config["secrets"].values():
        name = Path(secret["file"]).name
        assert f"`{name}`" in section, f"docs/deploy.md's table lacks {name}"
        assert f" {name}" in section.split("```sh")[1], f"docs/deploy.md does not make {name}"
    # the files the brokers' and proxy's configuration name are the ones compose mounts
    mosquitto = MOSQUITTO_CONF.read_text()
    nginx = NGINX_CONF.read_text()
    for secret in ("mqtt_passwd", "mqtt_internal_passwd", "tls_cert", "tls_key"):
        assert f"/run/secrets/{secret}\n" in mosquitto
    for secret in ("tls_cert", "tls_key"):
        assert f"/run/secrets/{secret};" in nginx


def test_health_checks_restarts_and_the_proxy_address(config: dict[str, Any]) -> None:
    services = config["services"]
    for name, s in services.items():
        assert s.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert s["restart"] == "unless-stopped", name
    for name in ECOSENSE_SERVICES:
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "http://127.0.0.1:8080/healthz" in test, name
        assert services[name]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    # the gateways trust exactly the proxy's fixed address for X-Forwarded-For and PROXY lines
    proxy_ip = services["proxy"]["networks"]["backend"]["ipv4_address"]
    for name in ECOSENSE_SERVICES:
        assert services[name]["environment"]["ECOSENSE_TRUSTED_PROXIES"] == proxy_ip
    # nginx balances over exactly the gateway services, on their ports
    upstream = re.findall(r"server (gateway-\d):(\d+)", NGINX_CONF.read_text())
    assert sorted(upstream) == sorted(
        [("gateway-1", "8080"), ("gateway-2", "8080"), ("gateway-1", "9212"), ("gateway-2", "9212")]
    )
    for name in ("gateway-1", "gateway-2"):
        command = services[name]["command"]
        assert command[command.index("--http-port") + 1] == "8080"
        assert command[command.index("--hj212-port") + 1] == "9212"
    dash = services["dashboard"]["command"]
    assert dash[dash.index("--dashboard-port") + 1] == "8501"
    assert "server dashboard:8501;" in NGINX_CONF.read_text()
    # the broker's configuration and ACL are the repository's files
    broker = mounts(services["mosquitto"])
    assert Path(broker["/mosquitto/config/mosquitto.conf"]) == MOSQUITTO_CONF
    assert Path(broker["/mosquitto/config/acl"]) == MOSQUITTO_ACL
    assert broker["/mosquitto/data"] == "mosquitto-data"
    assert Path(mounts(services["proxy"])["/etc/nginx/nginx.conf"]) == NGINX_CONF


# --------------------------------------------------------------------------- nginx
def nginx_copy(
    folder: Path,
    cert: Path,
    key: Path,
    upstreams: dict[tuple[str, int], int] | None = None,
    listens: dict[int, int] | None = None,
) -> tuple[Path, str]:
    """``docker/nginx/nginx.conf`` for this machine: the compose host names mapped to
    127.0.0.1 (``upstreams``: ``("gateway-1", 8080)`` → a local port), the listening ports
    changed (``listens``: 443 → a free port on 127.0.0.1), the secrets' and logs' paths into
    ``folder``, Debian's stream module loaded. Returns the file and the original's lines that
    were changed (for the test to check that nothing else was)."""
    text = NGINX_CONF.read_text()
    out = text.replace("/run/secrets/tls_cert", str(cert))
    out = out.replace("/run/secrets/tls_key", str(key))
    out = out.replace("/var/log/nginx/", f"{folder}/").replace(
        "/var/run/nginx.pid", f"{folder}/pid"
    )
    for (host, port), local in (upstreams or {}).items():
        out = out.replace(f"server {host}:{port} ", f"server 127.0.0.1:{local} ")
        out = out.replace(f"server {host}:{port};", f"server 127.0.0.1:{local};")
    out = re.sub(r"server (gateway-\d|dashboard|mosquitto):", "server 127.0.0.1:", out)
    for port, local in (listens or {}).items():
        out = re.sub(rf"listen {port}\b", f"listen 127.0.0.1:{local}", out)
    if DEBIAN_STREAM.exists():
        out = f"load_module {DEBIAN_STREAM};\n" + out
    path = folder / "nginx.conf"
    path.write_text(out)
    changed = sorted(set(text.splitlines()) - set(out.splitlines()))
    return path, "\n".join(changed)


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def test_nginx_accepts_the_configuration(tmp_path: Path, tls_pair: tuple[Path, Path]) -> None:
    require_service("nginx", Path(NGINX).exists())
    conf, changed = nginx_copy(tmp_path, *tls_pair)
    # only host names, secrets' and logs' paths differ from the file in the repository
    for line in changed.splitlines():
        assert re.search(r"gateway-\d|dashboard:|mosquitto:|/run/secrets/|/var/(log|run)/", line)
    out = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "test is successful" in out.stderr
    # and a mistake is caught (the test can fail): a directive nginx does not know
    conf.write_text(conf.read_text().replace("proxy_protocol on;", "proxy_protocoll on;"))
    bad = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "proxy_protocoll" in bad.stderr


class _Backend(BaseHTTPRequestHandler):
    """A stand-in gateway or dashboard: answers with its name and the headers it got."""

    name = "?"

    def do_GET(self) -> None:
        body = (
            f"{self.name}|{self.headers.get('Upgrade', '')}|{self.headers.get('Connection', '')}"
            f"|{self.headers.get('X-Forwarded-For', '')}"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _http_backend(name: str) -> tuple[ThreadingHTTPServer, int]:
    handler = type(f"Backend_{name}", (_Backend,), {"name": name})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _tcp_backend(name: str, seen: list[tuple[str, bytes]]) -> tuple[socket.socket, int]:
    """A stand-in HJ 212 listener: records the first line of each connection."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n" not in data:
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    data += chunk
                seen.append((name, data.split(b"\r\n")[0]))
                conn.sendall(b"ok\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_nginx_balances_the_api_and_hj212_and_upgrades_the_websocket(
    config: dict[str, Any], tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    """The generated copy run for real: HTTPS to the API reaches both gateways in turn, the
    dashboard gets the WebSocket upgrade, port 80 redirects, HJ 212 connections go to both
    gateways each opening with a PROXY line naming the client."""
    require_service("nginx", Path(NGINX).exists())
    servers = {n: _http_backend(n) for n in ("gateway-1", "gateway-2", "dashboard")}
    seen: list[tuple[str, bytes]] = []
    tcp = {n: _tcp_backend(n, seen) for n in ("gateway-1", "gateway-2")}
    listen = {p: free_port() for p in (443, 80, 9212, 8883)}
    upstreams = {
        ("gateway-1", 8080): servers["gateway-1"][1],
        ("gateway-2", 8080): servers["gateway-2"][1],
        ("dashboard", 8501): servers["dashboard"][1],
        ("gateway-1", 9212): tcp["gateway-1"][1],
        ("gateway-2", 9212): tcp["gateway-2"][1],
    }
    conf, _ = nginx_copy(tmp_path, *tls_pair, upstreams=upstreams, listens=listen)
    conf.write_text("daemon off;\n" + conf.read_text())
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen[443]), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, stderr.read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.2)
        context = ssl.create_default_context(cafile=str(tls_pair[0]))
        with httpx.Client(verify=context, base_url=f"https://localhost:{listen[443]}") as c:
            names = [c.get("/api/v1/stations").text.split("|")[0] for _ in range(4)]
            assert sorted(names) == ["gateway-1", "gateway-1", "gateway-2", "gateway-2"]
            assert c.get("/healthz").text.split("|")[0].startswith("gateway-")
            # OGC API – Features, the API definition and its pages are the gateways' too
            for path in ("/ogc", "/ogc/collections/stations/items", "/openapi.json", "/docs"):
                assert c.get(path).text.split("|")[0].startswith("gateway-"), path
            assert c.get("/docs-assets/swagger-ui.css").text.startswith("gateway-")
            for path in ("/ogcx", "/documents", "/open-data"):
                assert c.get(path).text.split("|")[0] == "dashboard", path
            ws = c.get(
                "/_stcore/stream", headers={"Upgrade": "websocket", "Connection": "Upgrade"}
            ).text.split("|")
            assert ws[:3] == ["dashboard", "websocket", "upgrade"]
            assert ws[3] == "127.0.0.1"  # X-Forwarded-For: the client
            page = c.get("/").text.split("|")
            assert page[0] == "dashboard" and page[2] == "close"
        plain = httpx.get(f"http://127.0.0.1:{listen[80]}/api/v1/stations")
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
        # the proxy service's own health check (compose), on the port 80 here
        check = config["services"]["proxy"]["healthcheck"]["test"]
        assert check[0] == "CMD-SHELL"
        line = check[1].replace("http://127.0.0.1/", f"http://127.0.0.1:{listen[80]}/")
        if shutil.which("curl"):
            assert subprocess.run(["sh", "-c", line], timeout=30).returncode == 0
        assert httpx.get(f"http://127.0.0.1:{listen[80]}/nginx-health").text == "ok\n"
        for i in range(4):
            with socket.create_connection(("127.0.0.1", listen[9212]), timeout=5) as s:
                s.sendall(f"##0001QN={i}\r\n".encode())
                assert s.recv(16).startswith(b"ok")
        deadline = time.monotonic() + 10
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(n for n, _ in seen) == ["gateway-1", "gateway-1", "gateway-2", "gateway-2"]
        assert all(line.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ") for _, line in seen)
    finally:
        proc.terminate()
        proc.wait(10)
        for server, _ in servers.values():
            server.shutdown()
            server.server_close()
        for srv, _ in tcp.values():
            srv.close()


# --------------------------------------------------------------------------- Mosquitto
DEVICE, DEVICE_PW = "S1", "pw-" + uuid.uuid4().hex[:8]
INTERNAL, INTERNAL_PW = "ecosense", "pw-" + uuid.uuid4().hex[:8]


@pytest.fixture
def mosquitto(tls_pair: tuple[Path, Path]) -> Iterator[tuple[int, int, Path]]:
    """The repository's broker configuration and ACL with only paths and ports changed
    (the listeners on free loopback ports); returns (TLS port, internal port, CA file).

    The files are in a folder of their own readable by the ``mosquitto`` user: started as
    root, Mosquitto drops to that user before it reads them, as the image does."""
    require_service("Mosquitto", Path(MOSQUITTO).exists())
    require_service("mosquitto_passwd", Path(MOSQUITTO_PASSWD).exists())
    folder = Path(tempfile.mkdtemp(prefix="ecosense-mosquitto-"))
    try:
        folder.chmod(0o755)
        cert, key = (shutil.copy(p, folder / p.name) for p in tls_pair)
        Path(key).chmod(0o644)
        shutil.copy(MOSQUITTO_ACL, folder / "acl")
        for name, user, password in (
            ("mqtt_passwd", DEVICE, DEVICE_PW),
            ("mqtt_internal_passwd", INTERNAL, INTERNAL_PW),
        ):
            # the operator's command (docs/deploy.md, "Secrets")
            subprocess.run(
                [MOSQUITTO_PASSWD, "-b", "-c", str(folder / name), user, password],
                check=True,
                capture_output=True,
            )
            (folder / name).chmod(0o644)
        (folder / "data").mkdir()
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("mosquitto")
                os.chown(folder / "data", entry.pw_uid, entry.pw_gid)
            except KeyError:
                pass
        tls_port, plain_port = free_port(), free_port()
        text = MOSQUITTO_CONF.read_text()
        conf = (
            text.replace("listener 8883\n", f"listener {tls_port} 127.0.0.1\n")
            .replace("listener 1883\n", f"listener {plain_port} 127.0.0.1\n")
            .replace("/run/secrets/tls_cert", str(cert))
            .replace("/run/secrets/tls_key", str(key))
            .replace("/run/secrets/", f"{folder}/")
            .replace("/mosquitto/config/acl", str(folder / "acl"))
            .replace("/mosquitto/data/", f"{folder}/data/")
        )
        changed = set(text.splitlines()) - set(conf.splitlines())
        assert {line.split()[0] for line in changed} == {  # paths and ports, nothing else
            "listener",
            "password_file",
            "certfile",
            "keyfile",
            "acl_file",
            "persistence_location",
        }
        (folder / "mosquitto.conf").write_text(conf)
        log = (folder / "log").open("wb")
        proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(folder / "mosquitto.conf")], stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    for port in (tls_port, plain_port):
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None, (folder / "log").read_text()
                    assert time.monotonic() < deadline, "mosquitto did not start"
                    time.sleep(0.1)
            yield tls_port, plain_port, Path(cert)
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _connect(
    port: int, user: str | None, password: str | None, ca: Path | None
) -> tuple[str, mqtt.Client]:
    """Connect (TLS when ``ca`` is given) and wait for the broker's answer: ``"Success"``, the
    refusal's reason, or ``"disconnected …"`` when the broker closed the connection."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-" + uuid.uuid4().hex[:8])
    if user is not None:
        client.username_pw_set(user, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    answered = threading.Event()
    outcome: dict[str, str] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        outcome.setdefault("rc", str(rc))
        answered.set()

    def on_disconnect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        outcome.setdefault("rc", f"disconnected {rc}")
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect("localhost", port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return f"failed {exc!r}", client
    client.loop_start()
    answered.wait(10)
    if outcome.get("rc") != "Success":
        client.loop_stop()
    return outcome.get("rc", "no answer"), client


def test_mosquitto_refuses_devices_without_tls_or_the_right_password(
    mosquitto: tuple[int, int, Path],
) -> None:
    tls_port, plain_port, ca = mosquitto
    refused = {
        "no TLS": _connect(tls_port, DEVICE, DEVICE_PW, None)[0],
        "wrong password": _connect(tls_port, DEVICE, "wrong", ca)[0],
        "anonymous": _connect(tls_port, None, None, ca)[0],
        "internal user on the device listener": _connect(tls_port, INTERNAL, INTERNAL_PW, ca)[0],
        "device on the internal listener": _connect(plain_port, DEVICE, DEVICE_PW, None)[0],
        "anonymous on the internal listener": _connect(plain_port, None, None, None)[0],
    }
    assert all(rc != "Success" for rc in refused.values()), refused
    assert refused["wrong password"] == "Not authorized"
    ok, client = _connect(tls_port, DEVICE, DEVICE_PW, ca)
    assert ok == "Success"
    client.disconnect()
    client.loop_stop()


def test_the_brokers_health_check(config: dict[str, Any], mosquitto: tuple[int, int, Path]) -> None:
    """The mosquitto service's compose health check (a listening socket on 1883 in
    /proc/net), run here with the internal listener's port: it passes, and fails for a port
    nobody listens on."""
    check = config["services"]["mosquitto"]["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL" and ":075B$$" in check[1]  # 1883; $$ is compose's $
    line = check[1].replace("$$", "$")

    def run(port: int) -> int:
        command = line.replace(":075B$", f":{port:04X}$")
        return subprocess.run(["sh", "-c", command], timeout=30).returncode

    assert run(mosquitto[1]) == 0
    assert run(free_port()) != 0


def test_a_device_publishes_and_reads_only_its_own_topics(
    mosquitto: tuple[int, int, Path],
) -> None:
    tls_port, plain_port, ca = mosquitto
    rc, ecosense = _connect(plain_port, INTERNAL, INTERNAL_PW, None)
    assert rc == "Success"
    rc, device = _connect(tls_port, DEVICE, DEVICE_PW, ca)
    assert rc == "Success"
    taken: list[tuple[str, bytes]] = []
    answers: list[tuple[str, bytes]] = []
    ecosense.on_message = lambda _c, _u, m: taken.append((m.topic, m.payload))
    device.on_message = lambda _c, _u, m: answers.append((m.topic, m.payload))
    subscribed = threading.Event()
    ecosense.on_subscribe = lambda *_: subscribed.set()
    try:
        # EcoSense's own subscription (ingest/mqtt.py)
        ecosense.subscribe([("ecosense/v1/+/json", 1), ("ecosense/v1/+/lp", 1)])
        assert subscribed.wait(10)
        device_subscribed = threading.Event()
        device.on_subscribe = lambda *_: device_subscribed.set()
        device.subscribe([("ecosense/v1/S2/result", 1), ("ecosense/v1/S1/result", 1)])
        assert device_subscribed.wait(10)
        # another station's topic first, then its own: on one connection, in order
        for topic in ("ecosense/v1/S2/json", "ecosense/v1/S1/lp", "ecosense/v1/S1/json"):
            device.publish(topic, topic.encode(), qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while len(taken) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert taken == [
            ("ecosense/v1/S1/lp", b"ecosense/v1/S1/lp"),
            ("ecosense/v1/S1/json", b"ecosense/v1/S1/json"),
        ]
        # EcoSense answers both stations; the device reads only its own results
        for station in ("S2", "S1"):
            topic = f"ecosense/v1/{station}/result"
            ecosense.publish(topic, station.encode(), qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while not answers and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert answers == [("ecosense/v1/S1/result", b"S1")]
        # and EcoSense's user may not publish readings (its ACL only reads them)
        ecosense.publish("ecosense/v1/S1/json", b"forged", qos=1).wait_for_publish(10)
        time.sleep(0.5)
        assert len(taken) == 2
    finally:
        for c in (ecosense, device):
            c.disconnect()
            c.loop_stop()


# --------------------------------------------------------------------------- Dask, health checks
def _health_command(service: dict[str, Any], ports: dict[str, int]) -> list[str]:
    """A service's compose health check (``CMD`` form) to run here: this Python, and the
    container's ports (``"8787"`` …) mapped to local ones."""
    test = list(service["healthcheck"]["test"])
    assert test[0] == "CMD" and test[1] == "python"
    command = [sys.executable, *test[2:]]
    for port, local in ports.items():
        command = [c.replace(f":{port}/", f":{local}/") for c in command]
    return command


def _healthy(command: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(command, capture_output=True, timeout=30).returncode != 0:
        assert time.monotonic() < deadline, f"never healthy: {command}"
        time.sleep(0.5)


def test_the_dask_services_start_and_their_health_checks_answer(
    config: dict[str, Any], tmp_path: Path
) -> None:
    """The scheduler's and workers' compose commands, run with this Python on loopback ports
    (``--host 127.0.0.1`` added; the ports, the scheduler's address changed): each health
    check passes, and the scheduler has both workers under their names."""
    from distributed import Client

    services = config["services"]
    port, board = free_port(), free_port()
    env = dict(os.environ)
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        scheduler = [
            c.replace("8786", str(port)).replace(":8787", f"127.0.0.1:{board}")
            for c in services["dask-scheduler"]["command"]
        ]
        log = (tmp_path / "scheduler.log").open("wb")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "dask", *scheduler, "--host", "127.0.0.1"],
                stdout=log,
                stderr=log,
                env=env,
                cwd=tmp_path,
            )
        )
        _healthy(_health_command(services["dask-scheduler"], {"8787": board}))
        health = {}
        for name in ("dask-worker-1", "dask-worker-2"):
            worker_board = free_port()
            command = [
                c.replace("tcp://dask-scheduler:8786", f"tcp://127.0.0.1:{port}").replace(
                    ":8789", f"127.0.0.1:{worker_board}"
                )
                for c in services[name]["command"]
            ]
            log = (tmp_path / f"{name}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dask", *command, "--host", "127.0.0.1"],
                    stdout=log,
                    stderr=log,
                    env=env,
                    cwd=tmp_path,
                )
            )
            health[name] = _health_command(services[name], {"8789": worker_board})
        for command in health.values():
            _healthy(command)
        with Client(f"tcp://127.0.0.1:{port}", timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            names = {w["name"] for w in client.scheduler_info()["workers"].values()}
        assert names == {"dask-worker-1", "dask-worker-2"}
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for log in logs:
            log.close()
