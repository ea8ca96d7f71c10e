"""Consumer group timing and static membership settings (docs/scaling.md "Failover")."""

from __future__ import annotations

import pytest

from streamapp.app import create_app, faust_options
from streamapp.settings import Settings, SettingsError, load_settings


def test_defaults_bound_a_dead_workers_wait_to_three_seconds_on_the_embedded_kafka() -> None:
    settings = Settings()
    assert (settings.session_timeout_ms, settings.consumer_heartbeat_interval_ms) == (3000, 1000)
    options = faust_options(settings)
    assert options["broker_session_timeout"] == pytest.approx(3.0)
    assert options["broker_heartbeat_interval"] == pytest.approx(1.0)


def test_external_brokers_get_the_stock_kafka_minimum_unless_set() -> None:
    external = Settings(bootstrap_servers="kafka-1:9092")
    assert external.session_timeout_ms == 6000  # a stock Kafka refuses less
    assert faust_options(external)["broker_session_timeout"] == pytest.approx(6.0)
    assert Settings(local_kafka_nodes=3).session_timeout_ms == 6000  # not yet run at 3 s
    chosen = Settings(bootstrap_servers="kafka-1:9092", consumer_session_timeout_ms=3000)
    assert chosen.session_timeout_ms == 3000
    with pytest.raises(SettingsError, match=">= 0"):
        Settings(consumer_session_timeout_ms=-1)
    with pytest.raises(SettingsError, match="would refuse"):  # below the embedded minimum
        Settings(consumer_session_timeout_ms=900, consumer_heartbeat_interval_ms=300)


def test_heartbeat_must_fit_three_times_into_the_session() -> None:
    assert Settings(consumer_session_timeout_ms=6000, consumer_heartbeat_interval_ms=2000)
    with pytest.raises(SettingsError) as refused:
        Settings(consumer_session_timeout_ms=6000, consumer_heartbeat_interval_ms=2001)
    assert "consumer_heartbeat_interval_ms (2001)" in str(refused.value)
    assert "consumer_session_timeout_ms (6000)" in str(refused.value)
    # The old default session (10 s) with the new heartbeat is fine; a 2 s session is not.
    assert Settings(consumer_session_timeout_ms=10000)
    with pytest.raises(SettingsError, match="a third"):
        load_settings(None, {"STREAMAPP_CONSUMER_SESSION_TIMEOUT_MS": "2000"})


def test_session_timeout_stays_within_fausts_request_timeout() -> None:
    assert Settings(consumer_session_timeout_ms=90000)
    with pytest.raises(SettingsError, match="request timeout"):
        Settings(consumer_session_timeout_ms=90001)


def test_static_membership_gives_each_worker_its_own_instance_id() -> None:
    assert Settings().group_instance_id is None
    orders = Settings(consumer_static_membership=True, web_port=6066)
    assert orders.group_instance_id == "streamapp-127.0.0.1-6066"
    assert faust_options(orders)["consumer_group_instance_id"] == "streamapp-127.0.0.1-6066"
    other = Settings(consumer_static_membership=True, service="inventory", web_port=6166)
    assert other.group_instance_id == "streamapp-inventory-127.0.0.1-6166"
    assert Settings(consumer_static_membership=True, web_port=6067).group_instance_id != (
        orders.group_instance_id
    )


def test_the_retry_relay_group_uses_the_same_timing() -> None:
    """Its consumer group holds the retry topics' partitions: with aiokafka's 10 s default
    they would move long after the worker's main partitions."""
    app = create_app(Settings(consumer_heartbeat_interval_ms=900))
    assert (app.retry_relay.session_timeout_ms, app.retry_relay.heartbeat_interval_ms) == (
        3000,
        900,
    )
