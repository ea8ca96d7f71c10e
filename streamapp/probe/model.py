"""Probe messages and the per-key probe record (pure: no faust import)."""

from __future__ import annotations

from typing import Any

import orjson

from streamapp.messages import iso_utc

MAX_PROBE_BYTES = 64 * 1024


class InvalidProbe(ValueError):
    """A probe record that cannot be used; ``reason`` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def encode_probe(probe_id: str, sent_at: str | None = None) -> bytes:
    return orjson.dumps({"probeId": probe_id, "sentAt": sent_at or iso_utc()})


def parse_probe(key: bytes | None, raw: bytes | None) -> dict[str, str]:
    """Decode and check a probe record; raise InvalidProbe with a reason otherwise."""
    if not key:
        raise InvalidProbe("no_key", "probe record has no key")
    if raw is None:
        raise InvalidProbe("empty", "probe record has no value")
    if len(raw) > MAX_PROBE_BYTES:
        raise InvalidProbe("too_large", f"probe record of {len(raw)} bytes > {MAX_PROBE_BYTES}")
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidProbe("undecodable", f"probe record is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidProbe("invalid", "probe record must be a JSON object")
    probe_id, sent_at = value.get("probeId"), value.get("sentAt")
    if not isinstance(probe_id, str) or not probe_id:
        raise InvalidProbe("invalid", "probeId must be a non-empty string")
    if not isinstance(sent_at, str):
        raise InvalidProbe("invalid", "sentAt must be an ISO-8601 string")
    return {"probeId": probe_id, "sentAt": sent_at}


def record_probe(
    previous: dict[str, Any] | None,
    probe: dict[str, str],
    partition: int,
    offset: int,
    seen_at: str,
) -> dict[str, Any] | None:
    """The key's new probe record, or None when this source record was applied already.

    At-least-once delivery replays records after a crash (the table and its changelog
    may be ahead of the committed offset). A key always lives in one partition, so the
    source offset is a per-key version: an offset at or below the one recorded is a
    replay and changes nothing.
    """
    if previous and previous["partition"] == partition and offset <= previous["offset"]:
        return None
    count = int(previous["count"]) if previous else 0
    return {
        "count": count + 1,
        "lastProbeId": probe["probeId"],
        "lastSentAt": probe["sentAt"],
        "lastSeenAt": seen_at,
        "partition": partition,
        "offset": offset,
    }
