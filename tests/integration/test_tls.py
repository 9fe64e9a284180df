"""HTTPS for the HTTP API (issue 13, "What to build" 7: ``--tls-cert/--tls-key``), through
``ecosense up`` with its connection caps and header time-out in front; and the gateway's
database connections made as ``ecosense_gateway``, not the superuser."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import httpx
import psycopg
import pytest

from ecosense.config import load_settings
from ecosense.errors import EcosenseError
from ecosense.runner import tls_files
from ecosense.testing import running

pytestmark = pytest.mark.integration


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files): with
    the ``cryptography`` package when installed, else the ``openssl`` command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor openssl is available")
        args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        args += ["-days", "2", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)]
        args += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        subprocess.run(
            ["openssl", *args],
            check=True,
            capture_output=True,
        )
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    return cert, key


def superuser_url(data_dir: Path) -> str:
    """The embedded server's superuser over its socket (postmaster.pid's line 5)."""
    socket_dir = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()[4]
    return f"host={socket_dir} dbname=ecosense user=postgres"


def test_up_serves_https_with_the_given_certificate_and_connects_as_the_gateway(
    tmp_path: Path,
) -> None:
    cert, key = self_signed(tmp_path)
    data = tmp_path / "data"
    env = {"ECOSENSE_JOBS_INTERVAL_SECONDS": "0"}
    with running(data, "--tls-cert", str(cert), "--tls-key", str(key), env=env) as platform:
        assert platform.http.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))
        answer = httpx.get(platform.http + "/healthz", verify=trusted, timeout=10)
        assert answer.status_code == 200, answer.text
        with pytest.raises(httpx.ConnectError):  # the certificate is checked: not trusted
            httpx.get(platform.http + "/healthz", timeout=10)
        plain = "http://" + platform.http.removeprefix("https://")
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
            httpx.get(plain + "/healthz", timeout=5)
        stations = httpx.get(platform.http + "/api/v1/stations", verify=trusted, timeout=10)
        assert stations.status_code == 200

        with psycopg.connect(superuser_url(data)) as conn:
            users = {
                str(r[0])
                for r in conn.execute(
                    "SELECT usename FROM pg_stat_activity"
                    " WHERE datname = 'ecosense' AND pid <> pg_backend_pid()"
                )
            }
        # the gateway's pool; the owner's connections were closed once started
        assert users == {"ecosense_gateway"}, users


def test_a_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    """Checked before anything starts, not a gateway thread dying with a traceback."""
    cert, _ = self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = self_signed(other)
    settings = replace(load_settings({}), tls_cert=cert, tls_key=wrong_key)
    with pytest.raises(EcosenseError, match="TLS: cannot use certificate"):
        tls_files(settings)
    assert tls_files(replace(settings, tls_key=tmp_path / "key.pem"))["ssl_certfile"] == str(cert)
