"""The topic catalogue's derived names (pure)."""

from __future__ import annotations

from streamapp.topics import dlq_topic, due_topic, is_waiting_retry, main_topic, retry_topic


def test_retry_topic_names_lead_back_to_the_main_topic() -> None:
    assert retry_topic("p.orders.commands", 3) == "p.orders.commands.retry.3"
    assert due_topic("p.orders.commands") == "p.orders.commands.retry.due"
    for name in ("p.orders.commands.retry.3", "p.orders.commands.retry.due", "p.orders.commands"):
        assert main_topic(name) == "p.orders.commands"
    assert main_topic("weird.retry.x") == "weird.retry.x"


def test_dlq_and_waiting_retry_names() -> None:
    assert dlq_topic("p.orders.commands") == "p.orders.commands.dlq"
    assert dlq_topic("p.orders.commands.dlq") == "p.orders.commands.dlq"
    assert is_waiting_retry("p.orders.commands.retry.2")
    assert not is_waiting_retry("p.orders.commands.retry.due")
    assert not is_waiting_retry("p.orders.commands")
