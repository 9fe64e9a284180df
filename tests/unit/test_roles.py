"""The grant model of store/roles.py as a policy: what no component may ever do."""

from __future__ import annotations

import pytest

from store import roles

WRITES = {"INSERT", "UPDATE", "DELETE"}


def _can(component: str, table: str) -> set[str]:
    role = roles.ROLES[component]
    return {p for t, _c, r, p in roles.expected() if t == table and r == role}


def test_no_component_deletes_readings_nor_changes_the_audit() -> None:
    for component in roles.ROLES:
        assert "DELETE" not in _can(component, "observations")
        assert _can(component, "observation_versions") & {"UPDATE", "DELETE"} == set()
        assert _can(component, "audit_log") & {"UPDATE", "DELETE"} == set()


def _columns(component: str, table: str, privilege: str) -> set[str | None]:
    role = roles.ROLES[component]
    return {c for t, c, r, p in roles.expected() if t == table and r == role and p == privilege}


def test_the_reader_writes_no_data_and_reads_no_credentials() -> None:
    data = ["observations", "streams", "sources", "aggregates", "qc_flags", "assessments"]
    assert all(_can("reader", t) == {"SELECT"} for t in data)
    # the duty officer's decisions only (issue 14, item 5): an alert's life cycle columns (not
    # its rule, station, value or message), a review, the webhook event; never a DELETE
    assert _columns("reader", "alerts", "UPDATE") == {
        "state", "acknowledged_at", "acknowledged_by", "acknowledge_comment", "closed_at",
        "closed_by", "close_comment",
    }  # fmt: skip
    assert _can("reader", "alerts") == {"SELECT", "UPDATE"}
    assert _can("reader", "reviews") == {"SELECT", "INSERT"}
    assert _can("reader", "alert_notifications") == {"SELECT", "INSERT"}
    assert _can("reader", "devices") == set()
    assert not any(_can("reader", t) for t in roles.TABLES if t.startswith("quarantine"))


def test_the_gateway_writes_no_derived_series_and_jobs_no_users() -> None:
    for table in ("qc_flags", "aggregates", "assessments", "emissions", "zonal_stats"):
        assert _can("gateway", table) == {"SELECT"}
    for table in ("users", "sessions", "login_failures", "devices", "audit_log"):
        assert _can("jobs", table) == set()
    assert _can("jobs", "observations") == {"SELECT"}


def test_only_known_privileges_render() -> None:
    text = " ".join(s.as_string(None) for s in roles.grant_sql())
    assert 'GRANT SELECT, UPDATE ("password_hash", "updated_at") ON TABLE "users"' in text
    assert "TRUNCATE" not in text and "ALL PRIVILEGES" not in text
    with pytest.raises(ValueError, match="unknown privilege"):
        roles._privilege_sql("TRUNCATE")


def test_settings_name_each_component_s_url_and_tls_files_together() -> None:
    from ecosense.config import load_settings
    from ecosense.errors import ConfigError

    base = {"ECOSENSE_CONFIG": "", "ECOSENSE_DATABASE_URL": "postgresql://owner@db/ecosense"}
    s = load_settings(base)
    assert (s.gateway_database_url, s.jobs_database_url, s.reader_database_url) == (None,) * 3
    s = load_settings({**base, "ECOSENSE_READER_DATABASE_URL": "postgresql://ecosense_reader@db/e"})
    assert s.reader_database_url == "postgresql://ecosense_reader@db/e"
    with pytest.raises(ConfigError, match="set both or none"):
        load_settings({**base, "ECOSENSE_TLS_CERT": "/etc/ecosense/api.pem"})
    s = load_settings({**base, "ECOSENSE_TLS_CERT": "a.pem", "ECOSENSE_TLS_KEY": "a.key"})
    assert s.tls_cert is not None and s.tls_cert.is_absolute() and s.tls_key is not None
