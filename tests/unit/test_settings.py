from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from streamapp.settings import Settings, SettingsError, describe_settings, env_var, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_matches_the_defaults() -> None:
    # config/streamapp.toml documents the defaults: it must not silently differ from them.
    loaded = load_settings(config_file=ROOT / "config" / "streamapp.toml", environ={})
    assert loaded == Settings().replace(local_kafka_cache_dir=loaded.local_kafka_cache_dir)
    assert loaded.local_kafka_cache_dir == Path("~/.cache/streamapp/kafka").expanduser()


def test_every_setting_is_in_the_shipped_config_file() -> None:
    doc = tomllib.loads((ROOT / "config" / "streamapp.toml").read_text())
    keys = {
        f"{table}_{key}" if isinstance(values, dict) else table
        for table, values in doc.items()
        for key in (values if isinstance(values, dict) else [None])
    }
    assert keys == {name for name, *_ in describe_settings()}


def test_env_overrides_file_and_file_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("partitions = 3\n[web]\nport = 7000\n[local_kafka]\nport = 1234\n")
    settings = load_settings(config, {"STREAMAPP_WEB_PORT": "7100", "STREAMAPP_TOPIC_PREFIX": "x."})
    assert settings.partitions == 3
    assert settings.web_port == 7100
    assert settings.local_kafka_port == 1234
    assert settings.topic("orders.commands") == "x.orders.commands"


def test_config_path_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('app_id = "other"\n')
    assert load_settings(environ={"STREAMAPP_CONFIG": str(config)}).app_id == "other"
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={"STREAMAPP_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STREAMAPP_PARTITIONS": "many"}, "STREAMAPP_PARTITIONS: partitions must be int"),
        ({"STREAMAPP_PARTITIONS": "0"}, "partitions must be >= 1"),
        ({"STREAMAPP_PRODUCER_ACKS": "2"}, "producer_acks must be one of 0, 1, all"),
        ({"STREAMAPP_PROCESSING_GUARANTEE": "maybe"}, "processing_guarantee must be one of"),
        ({"STREAMAPP_LOG_LEVEL": "loud"}, "log_level must be one of"),
    ],
)
def test_bad_values_are_rejected_with_their_source(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(None, environ)


def test_unknown_keys_and_bad_toml_are_rejected(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[web]\nprot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'web_prot'"):
        load_settings(config, {})
    config.write_text("partitions = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config, {})


def test_local_broker_unless_bootstrap_servers_set() -> None:
    local = Settings()
    assert local.uses_local_kafka and local.bootstrap == "127.0.0.1:19092"
    external = Settings(bootstrap_servers=" k1:9092,k2:9092 ")
    assert not external.uses_local_kafka and external.bootstrap == "k1:9092,k2:9092"


def test_each_worker_gets_its_own_table_directory() -> None:
    assert Settings(web_port=6066).worker_data_dir == Path("tables/streamapp-6066")
    assert Settings(web_port=6067).worker_data_dir != Settings(web_port=6066).worker_data_dir


def test_env_var_names() -> None:
    assert env_var("local_kafka_port") == "STREAMAPP_LOCAL_KAFKA_PORT"
    assert all(var.startswith("STREAMAPP_") and doc for _, var, _, doc in describe_settings())


def test_a_step_deadline_shorter_than_the_retry_budget_is_refused_naming_both() -> None:
    # The old defaults: 30 s deadline, 1+2+4+8+16 s of retries (+10 % jitter = 34.1 s).
    assert Settings().retry_policy.budget_ms() == 34100
    with pytest.raises(SettingsError) as refused:
        Settings(saga_step_timeout_ms=30000)
    assert "saga_step_timeout_ms" in str(refused.value)
    assert "retry_max_attempts" in str(refused.value)
    assert "34100" in str(refused.value)
    # Fewer retries fit the shorter deadline.
    assert Settings(saga_step_timeout_ms=30000, retry_max_attempts=4).saga_step_timeout_ms


def test_compensations_are_not_given_up_while_their_retries_wait() -> None:
    with pytest.raises(SettingsError, match="saga_max_compensation_attempts"):
        Settings(saga_compensation_timeout_ms=5000, saga_max_compensation_attempts=2)


def test_web_server_binds_loopback_by_default() -> None:
    assert Settings().web_bind == "127.0.0.1"
    assert load_settings(environ={"STREAMAPP_WEB_BIND": "0.0.0.0"}).web_bind == "0.0.0.0"
