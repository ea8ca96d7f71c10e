"""The app's topic catalogue: declared topics, changelogs (compacted), prefix, partitions."""

from __future__ import annotations

import pytest

from streamapp.app import faust_options
from streamapp.kafka.topics import TopicError, TopicSpec, merge_specs
from streamapp.settings import Settings


def test_app_declares_every_topic_it_uses() -> None:
    from streamapp.app import app

    specs = {s.name: s for s in app.topic_specs()}
    prefix, app_id = app.settings.topic_prefix, app.conf.id
    probes = specs[f"{prefix}streamapp.probes"]
    changelog = specs[f"{app_id}-probes-changelog"]
    assert probes.partitions == changelog.partitions == app.settings.partitions
    assert changelog.compacted and not probes.compacted
    assert specs[f"{app_id}-__assignor-__leader"].partitions == 1
    # every agent's source topic and every table's changelog is in the catalogue
    for agent in app.agents.values():
        assert set(agent.channel.topics) <= set(specs)
    for table in app.tables.values():
        assert table.changelog_topic.get_topic_name() in specs


def test_conflicting_declarations_are_an_error() -> None:
    with pytest.raises(TopicError, match="declared twice"):
        merge_specs([TopicSpec("a", 8, 1), TopicSpec("a", 4, 1)])
    assert merge_specs([TopicSpec("b", 8, 1), TopicSpec("a", 8, 1), TopicSpec("b", 8, 1)]) == [
        TopicSpec("a", 8, 1),
        TopicSpec("b", 8, 1),
    ]


def test_faust_options_follow_the_settings() -> None:
    options = faust_options(
        Settings(
            bootstrap_servers="k1:9092,k2:9092",
            web_port=7000,
            producer_acks="1",
            producer_compression="gzip",
            producer_linger_ms=20,
            consumer_session_timeout_ms=6000,
            consumer_heartbeat_interval_ms=2000,
        )
    )
    assert options["broker"] == "kafka://k1:9092;kafka://k2:9092"
    assert options["store"] == "rocksdb://"
    assert options["datadir"] == "tables/streamapp-7000"
    assert options["canonical_url"] == "http://127.0.0.1:7000"
    assert options["producer_acks"] == 1
    assert options["producer_compression_type"] == "gzip"
    assert options["producer_linger"] == pytest.approx(0.02)
    assert options["broker_session_timeout"] == pytest.approx(6.0)
    assert options["broker_heartbeat_interval"] == pytest.approx(2.0)
    assert options["consumer_group_instance_id"] is None  # dynamic membership by default
    assert faust_options(Settings())["producer_acks"] == -1
    assert faust_options(Settings())["producer_compression_type"] is None


def test_every_consumer_runs_a_main_agent_and_a_due_agent_on_its_retry_topics() -> None:
    """ResilientConsumer's wiring (streamapp.resilience.gate): per consumer an agent on
    the main topics and `<name>.due` on exactly their `.retry.due` topics."""
    from streamapp.app import app
    from streamapp.topics import due_topic

    agents = {str(agent.name): agent for agent in app.agents.values()}
    dues = {name: agent for name, agent in agents.items() if name.endswith(".due")}
    assert dues, sorted(agents)
    for name, due in dues.items():
        main = agents[name.removesuffix(".due")]
        main_topics = set(main.channel.topics)
        assert set(due.channel.topics) == {due_topic(t) for t in main_topics}, name
        assert not any(t.endswith(".retry.due") for t in main_topics), name
