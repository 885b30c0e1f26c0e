"""`store:` in config.yaml and PGSTORE_DSN."""

from __future__ import annotations

import pytest

from cliproxy.config import ConfigError, parse_config
from cliproxy.store.settings import redacted, store_settings


def test_no_store_section_and_no_env_means_no_store():
    assert store_settings(parse_config("port: 1\n"), {}) is None


def test_store_section_is_read_and_validated():
    config = parse_config("store:\n  type: postgres\n  dsn: host=db dbname=cp\n  optional: true\n")
    settings = store_settings(config, {})
    assert settings is not None
    assert (settings.dsn, settings.optional) == ("host=db dbname=cp", True)


def test_pgstore_dsn_selects_postgres_and_the_file_wins_over_it():
    assert store_settings(parse_config("port: 1\n"), {"PGSTORE_DSN": "host=a"}).dsn == "host=a"
    config = parse_config("store: {type: postgres, dsn: 'host=b'}\n")
    assert store_settings(config, {"PGSTORE_DSN": "host=a"}).dsn == "host=b"


@pytest.mark.parametrize(
    "text, path",
    [
        ("store:\n  type: mysql\n", "store.type"),
        ("store:\n  dsn: not a dsn\n", "store.dsn"),
        ("store:\n  type: postgres\n  usage-retention-days: 0\n", "store.usage-retention-days"),
        ("store:\n  type: postgres\n  usage-retention: 0s\n", "store.usage-retention"),
        ("store:\n  type: postgres\n  usage-retention: soon\n", "store.usage-retention"),
    ],
)
def test_bad_store_values_name_the_key(text, path):
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert path in str(e.value)


def test_usage_retention_is_a_duration_or_a_number_of_days():
    def kept(text):
        return store_settings(parse_config(text), {}).usage_retention_seconds

    assert kept("store: {type: postgres, usage-retention: 720h}\n") == 720 * 3600
    assert kept("store: {type: postgres, usage-retention-days: 7}\n") == 7 * 86400
    assert kept("store: {type: postgres}\n") == 30 * 86400


def test_passwords_never_reach_messages():
    assert "s3cret" not in redacted("postgresql://u:s3cret@db/x")
    assert "s3cret" not in redacted("host=db password=s3cret dbname=x")
