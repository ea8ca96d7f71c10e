"""A trace's sequence diagram as SVG, drawn on the server (pure).

One lane per node (a header and a vertical lifeline), one arrow per edge from top to
bottom in the trace's causal order, each labelled with its event type and its offset
from the trace's first event. Failures are red, compensations orange and dashed, the
saga's end bold (green when the trace completed); an edge from a lane to itself (a saga
timeout) is a loop.

Every string in a trace comes from Kafka records, i.e. from anyone who can produce: each
one is escaped here, cut to a bounded length for display and stripped of characters XML
cannot carry, so the SVG is well-formed XML whatever the input. The structure is meant
for machines too: ``<g class="lane" data-lane=…>`` per lane and ``<g class="hop"
data-event-id=… data-from=… data-to=… data-kind=…>`` per arrow. The same trace always
gives the same bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

KINDS = ("normal", "failure", "compensation", "terminal")

#: Characters XML 1.0 cannot carry (even escaped); replaced by U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

#: Geometry, in px. A character of the 12 px label font is about CHAR_W wide.
CHAR_W = 7.0
GUTTER = 84  # left column: each hop's "+N ms"
TOP = 12
HEADER_H = 30
FIRST_ROW = TOP + HEADER_H + 40
ROW_H = 40
LOOP_W = 34
MIN_GAP, MAX_GAP = 150, 260
MAX_LABEL = 34  # longer event types are cut (the full text is in the hop's <title>)
MARGIN = 16

STYLE = """
.sequence .lane line{stroke:#94a3b8;stroke-width:1.5;stroke-dasharray:4 4}
.sequence .lane rect{fill:#e2e8f0;stroke:#64748b;stroke-width:1}
.sequence .lane.client rect{fill:#f1f5f9;stroke-dasharray:3 3}
.sequence .lane text{font:600 13px system-ui,sans-serif;fill:#0f172a;text-anchor:middle}
.sequence .row{fill:#f8fafc}
.sequence .hop line,.sequence .hop path{fill:none;stroke-width:1.8}
.sequence .hop text{font:12px system-ui,sans-serif;paint-order:stroke;stroke:#fff;stroke-width:4px}
.sequence .hop text.at{font:11px ui-monospace,monospace;fill:#64748b;text-anchor:end}
.sequence .hop.normal line,.sequence .hop.normal path{stroke:#334155}
.sequence .hop.normal text.label{fill:#1e293b}
.sequence .hop.failure line,.sequence .hop.failure path{stroke:#dc2626}
.sequence .hop.failure text.label{fill:#b91c1c;font-weight:600}
.sequence .hop.compensation line,.sequence .hop.compensation path{stroke:#ea580c;
stroke-dasharray:6 4}
.sequence .hop.compensation text.label{fill:#c2410c;font-style:italic}
.sequence .hop.terminal line,.sequence .hop.terminal path{stroke-width:3}
.sequence .hop.terminal.ok line,.sequence .hop.terminal.ok path{stroke:#15803d}
.sequence .hop.terminal.ok text.label{fill:#166534;font-weight:700}
.sequence .hop.terminal.bad line,.sequence .hop.terminal.bad path{stroke:#b91c1c}
.sequence .hop.terminal.bad text.label{fill:#991b1b;font-weight:700}
"""

#: Arrowhead colour per marker id (one marker per hop look).
_MARKERS = {
    "normal": "#334155",
    "failure": "#dc2626",
    "compensation": "#ea580c",
    "terminal-ok": "#15803d",
    "terminal-bad": "#b91c1c",
}


def clean(value: Any) -> str:
    """Any value as text XML can carry (invalid characters become U+FFFD)."""
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def esc(value: Any) -> str:
    """Text for an XML/HTML text node or a double- or single-quoted attribute."""
    return html.escape(clean(value), quote=True)


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def at_ms_text(value: Any) -> str:
    """``+<n> ms`` for a hop's offset (``+? ms`` when it is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "+? ms"
    return f"+{int(value)} ms"


def _lanes(trace: Mapping[str, Any]) -> list[str]:
    """Lane ids: the trace's nodes in order, then any node only an edge names."""
    lanes: dict[str, None] = {}
    for node in _dicts(trace.get("nodes")):
        lanes.setdefault(clean(node.get("id")), None)
    for edge in _dicts(trace.get("edges")):
        lanes.setdefault(clean(edge.get("from")), None)
        lanes.setdefault(clean(edge.get("to")), None)
    return list(lanes)


def _labels(trace: Mapping[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for node in _dicts(trace.get("nodes")):
        labels.setdefault(clean(node.get("id")), clean(node.get("label", node.get("id"))))
    return labels


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _kind(edge: Mapping[str, Any]) -> str:
    kind = edge.get("kind")
    return kind if isinstance(kind, str) and kind in KINDS else "normal"


def lane_gap(edges: Sequence[Mapping[str, Any]]) -> int:
    """Distance between lifelines: wide enough for the longest label, within bounds."""
    longest = max((len(shorten(clean(e.get("eventType")), MAX_LABEL)) for e in edges), default=0)
    return int(min(MAX_GAP, max(MIN_GAP, longest * CHAR_W + 24)))


def sequence_svg(trace: Mapping[str, Any]) -> str:
    """The trace's sequence diagram: an ``<svg>`` element, well-formed XML."""
    lanes = _lanes(trace)
    labels = _labels(trace)
    edges = _dicts(trace.get("edges"))
    gap = lane_gap(edges)
    x_of = {lane: GUTTER + gap // 2 + i * gap for i, lane in enumerate(lanes)}
    completed = trace.get("status") == "COMPLETED"
    bottom = FIRST_ROW + max(len(edges), 1) * ROW_H - ROW_H // 2
    height = bottom + MARGIN

    right = GUTTER + len(lanes) * gap
    for edge in edges:  # a loop's label runs right of its lane
        if clean(edge.get("from")) == clean(edge.get("to")):
            label = shorten(clean(edge.get("eventType")), MAX_LABEL)
            right = max(right, x_of[clean(edge.get("to"))] + LOOP_W + 10 + int(len(label) * CHAR_W))
    width = right + MARGIN

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sequence" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(f"sequence diagram: {len(lanes)} lanes, {len(edges)} hops")}">',
        f"<title>{esc(trace.get('correlationId'))}</title>",
        f"<style>{STYLE}</style>",
        "<defs>",
        *(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" '
            f'orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for name, colour in _MARKERS.items()
        ),
        "</defs>",
        '<g class="rows">',
        *(
            f'<rect class="row" x="0" y="{FIRST_ROW + i * ROW_H - ROW_H // 2}" '
            f'width="{width}" height="{ROW_H}"/>'
            for i in range(1, len(edges), 2)
        ),
        "</g>",
        '<g class="lanes">',
    ]
    box_w = gap - 20
    for lane in lanes:
        x = x_of[lane]
        label = shorten(labels.get(lane, lane), max(int((box_w - 12) / 7.5), 4))
        lane_class = "lane client" if lane == "client" else "lane"
        out.append(
            f'<g class="{lane_class}" data-lane="{esc(lane)}">'
            f"<title>{esc(labels.get(lane, lane))}</title>"
            f'<line x1="{x}" y1="{TOP + HEADER_H}" x2="{x}" y2="{bottom}"/>'
            f'<rect x="{x - box_w // 2}" y="{TOP}" width="{box_w}" height="{HEADER_H}" rx="6"/>'
            f'<text x="{x}" y="{TOP + HEADER_H // 2 + 5}">{esc(label)}</text>'
            "</g>"
        )
    out += ["</g>", '<g class="hops">']
    for index, edge in enumerate(edges):
        out.append(_hop(index, edge, x_of, completed))
    out += ["</g>", "</svg>"]
    return "".join(out)


def _hop(index: int, edge: Mapping[str, Any], x_of: Mapping[str, int], completed: bool) -> str:
    source, target = clean(edge.get("from")), clean(edge.get("to"))
    kind = _kind(edge)
    classes = f"hop {kind}"
    marker = kind
    if kind == "terminal":
        look = "ok" if completed else "bad"
        classes += f" {look}"
        marker = f"terminal-{look}"
    event_type = clean(edge.get("eventType"))
    label = esc(shorten(event_type, MAX_LABEL))
    at = at_ms_text(edge.get("atMs"))
    y = FIRST_ROW + index * ROW_H
    x1, x2 = x_of[source], x_of[target]
    tip = f"{event_type}\n{source} → {target}\n{at}\nevent {clean(edge.get('eventId'))}"
    head = (
        f'<g class="{classes}" data-index="{index}" data-event-id="{esc(edge.get("eventId"))}" '
        f'data-from="{esc(source)}" data-to="{esc(target)}" data-kind="{kind}">'
        f"<title>{esc(tip)}</title>"
        f'<text class="at" x="{GUTTER - 10}" y="{y + 4}">{esc(at)}</text>'
    )
    if x1 == x2:  # a lane to itself: a loop out to the right and back
        body = (
            f'<path d="M{x1},{y - 8} h{LOOP_W} v16 h-{LOOP_W - 2}" '
            f'marker-end="url(#arrow-{marker})"/>'
            f'<text class="label" x="{x1 + LOOP_W + 8}" y="{y + 4}">{label}</text>'
        )
    else:
        tip_x = x2 - 2 if x2 > x1 else x2 + 2  # the arrowhead ends on the lifeline
        body = (
            f'<line x1="{x1}" y1="{y}" x2="{tip_x}" y2="{y}" marker-end="url(#arrow-{marker})"/>'
            f'<text class="label" x="{(x1 + x2) // 2}" y="{y - 7}" '
            f'text-anchor="middle">{label}</text>'
        )
    return f"{head}{body}</g>"
